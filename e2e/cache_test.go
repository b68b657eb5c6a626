package e2e

// Issue 3 end to end: the stage cache, incremental fetch, kill -9, damaged
// entries, the lock, plan and cache gc. Tests that change a bucket work on
// their own bucket in the scratch server (scratchServer), never on the
// shared sample bucket, and count GETs per bucket in its access log.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// bucketSeq makes bucket names unique within the process (go test -count=N).
var bucketSeq atomic.Int64

// newBucket makes an empty bucket named base-N on the scratch server and
// returns its name and the folder its datasets/ prefix maps to.
func newBucket(t *testing.T, srv *s3Server, base string) (bkt, dir string) {
	t.Helper()
	bkt = fmt.Sprintf("%s-%d", base, bucketSeq.Add(1))
	dir = filepath.Join(srv.data, bkt, filepath.FromSlash(prefix))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return bkt, dir
}

// sampleBucket makes a bucket holding a copy of testdata/sample.
func sampleBucket(t *testing.T, srv *s3Server, base string) (bkt, dir string) {
	t.Helper()
	bkt, dir = newBucket(t, srv, base)
	if err := copyTree(repoPath(sampleDir), dir); err != nil {
		t.Fatal(err)
	}
	return bkt, dir
}

// runBucket runs `kneepipe run -f file` on s3://bkt/datasets/ through
// endpoint (the scratch server's, or a proxy in front of it) and checks
// that the secret shows up in none of its output.
func runBucket(t *testing.T, srv *s3Server, endpoint, bkt, file, out, cache string, extra ...string) result {
	t.Helper()
	res := kneepipe(t, srvEnv(srv), bucketArgs(endpoint, bkt, file, out, cache, extra...)...)
	assertNoSecret(t, srv.secretKey, res, out, cache)
	return res
}

func srvEnv(srv *s3Server) []string {
	return []string{"AWS_ACCESS_KEY_ID=" + srv.accessKey, "AWS_SECRET_ACCESS_KEY=" + srv.secretKey}
}

func bucketArgs(endpoint, bkt, file, out, cache string, extra ...string) []string {
	args := []string{"run", "-f", file, "--out", out, "--cache", cache,
		"--source", "s3://" + bkt + "/" + prefix, "--endpoint", endpoint, "--region", region}
	return append(args, extra...)
}

// background is a kneepipe process running while the test does other things.
type background struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	err            error
}

func startKneepipe(t *testing.T, env []string, args ...string) *background {
	t.Helper()
	b := &background{done: make(chan struct{})}
	b.cmd = exec.Command(binary, args...)
	b.cmd.Dir = repoRoot
	b.cmd.Env = append(baseEnv(), env...)
	b.cmd.Stdout, b.cmd.Stderr = &b.stdout, &b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		b.err = b.cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			b.cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

func (b *background) running() bool {
	select {
	case <-b.done:
		return false
	default:
		return true
	}
}

// wait waits for the process to exit (at most kneepipeTimeout).
func (b *background) wait(t *testing.T) result {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(kneepipeTimeout):
		b.cmd.Process.Kill()
		<-b.done
		t.Fatalf("kneepipe %v did not finish within %s\nstderr:\n%s", b.cmd.Args[1:], kneepipeTimeout, b.stderr.String())
	}
	res := result{stdout: b.stdout.String(), stderr: b.stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case b.err == nil:
	case errors.As(b.err, &exitErr) && exitErr.ExitCode() >= 0:
		res.code = exitErr.ExitCode()
	case errors.As(b.err, &exitErr):
		res.code = -1 // killed by a signal
	default:
		t.Fatalf("kneepipe %v: %v", b.cmd.Args[1:], b.err)
	}
	return res
}

// synthPNG is a small real PNG whose pixels (and so bytes and file_id)
// are determined by id.
func synthPNG(t *testing.T, id int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 6, 4))
	x := uint64(id)*0x9E3779B97F4A7C15 + 1
	for i := range img.Pix {
		x ^= x >> 31
		x *= 0xBF58476D1CE4E5B9
		img.Pix[i] = uint8(x >> 56)
	}
	img.Set(0, 0, color.Gray{Y: uint8(id)})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeObject(t *testing.T, dir, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// editedCopy writes a copy of the pipeline file src with each old string
// (which must occur exactly once) replaced by its new one.
func editedCopy(t *testing.T, src string, pairs ...string) string {
	t.Helper()
	data, err := os.ReadFile(repoPath(src))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for i := 0; i+1 < len(pairs); i += 2 {
		if n := strings.Count(s, pairs[i]); n != 1 {
			t.Fatalf("%s: %q occurs %d times, want 1 (the file changed: update the test)", src, pairs[i], n)
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	path := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(src), ".yaml")+"-edited.yaml")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// statuses returns each stage's run.json status.
func statuses(rep runReport) map[string]string {
	m := map[string]string{}
	for _, st := range rep.Stages {
		m[st.Name] = st.Status
	}
	return m
}

func wantStatuses(t *testing.T, what string, rep runReport, want map[string]string) {
	t.Helper()
	if got := statuses(rep); !reflect.DeepEqual(got, want) {
		var why []string
		for _, st := range rep.Stages {
			why = append(why, fmt.Sprintf("%s: %s (%s)", st.Name, st.Status, st.Why))
		}
		t.Errorf("%s: stage statuses\n  got  %v\n  want %v\n%s", what, got, want, strings.Join(why, "\n"))
	}
}

// allStatus is every stage of want with one status, but list "ok": the
// listing always runs.
func allStatus(stages map[string]stageWant, status string) map[string]string {
	m := map[string]string{}
	for name := range stages {
		m[name] = status
	}
	m["list"] = "ok"
	return m
}

func stageReport(t *testing.T, rep runReport, name string) (status, why string, counts map[string]int64) {
	t.Helper()
	for _, st := range rep.Stages {
		if st.Name == name {
			return st.Status, st.Why, st.Counts
		}
	}
	t.Fatalf("run.json has no stage %s", name)
	return "", "", nil
}

// downloaded is the fetch stage's counts.downloaded in run.json.
func downloaded(t *testing.T, rep runReport) int64 {
	t.Helper()
	_, _, counts := stageReport(t, rep, "fetch")
	return counts["downloaded"]
}

// entryDir finds the cache entry that stage wrote, by its manifest.
func entryDir(t *testing.T, cache, stage string) string {
	t.Helper()
	manifests, _ := filepath.Glob(filepath.Join(cache, "entries", "*", "manifest.json"))
	var found []string
	for _, m := range manifests {
		data, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		var man struct{ Stage string }
		if err := json.Unmarshal(data, &man); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if man.Stage == stage {
			found = append(found, filepath.Dir(m))
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d cache entries of stage %s in %s, want 1: %v", len(found), stage, cache, found)
	}
	return found[0]
}

func entryKeys(t *testing.T, cache string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(cache, "entries"))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, d := range des {
		if d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			keys = append(keys, d.Name())
		}
	}
	sort.Strings(keys)
	return keys
}

// fetchStateDir is fetch-hash's record of hashed objects in a cache.
func fetchStateDir(t *testing.T, cache string) string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(cache, "state", "fetch-hash-*"))
	if len(dirs) != 1 {
		t.Fatalf("%d fetch-hash state dirs in %s, want 1: %v", len(dirs), cache, dirs)
	}
	return dirs[0]
}

// journalKeys reads the keys recorded in a fetch-hash journal file (one
// "crc32c json" line per hashed object); a line cut short is not counted.
func journalKeys(t *testing.T, path string) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return keys
	}
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	complete := bytes.HasSuffix(data, []byte("\n"))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if !complete && len(lines) > 0 {
		lines = lines[:len(lines)-1]
	}
	for _, l := range lines {
		_, body, ok := strings.Cut(l, " ")
		var rec struct {
			K string `json:"k"`
		}
		if !ok || json.Unmarshal([]byte(body), &rec) != nil || rec.K == "" {
			t.Fatalf("%s: unexpected line %q", path, l)
		}
		keys[rec.K] = true
	}
	return keys
}

// csvColumn returns one column of a CSV artifact, header excluded.
func csvColumn(t *testing.T, path, name string) []string {
	t.Helper()
	recs := readCSV(t, path)
	c := column(t, recs[0], name)
	var out []string
	for _, r := range recs[1:] {
		out = append(out, r[c])
	}
	return out
}

// Issue 3 (a): adding N objects costs exactly N GETs; deleted objects
// leave the outputs; a changed object is fetched again; and every
// incremental result equals a clean run's on a fresh cache.
func TestIncrementalFetch(t *testing.T) {
	srv := scratchServer(t)
	bkt, data := sampleBucket(t, srv, "e2e-incremental")
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	gets := func() int { return srv.requests(t, "GetObject", bkt) }

	// step runs the notebook incrementally and then cleanly, checks the
	// incremental run's GETs and accounting, and that both wrote the same.
	step := func(name string, wantGets, listed int) string {
		t.Helper()
		out := filepath.Join(dir, name)
		before := gets()
		res := runBucket(t, srv, srv.endpoint, bkt, notebookFile, out, cache)
		wantCode(t, res, 0, name)
		if got := gets() - before; got != wantGets {
			t.Errorf("%s: %d GETs, want %d", name, got, wantGets)
		}
		rep := readReport(t, out)
		if got := downloaded(t, rep); got != int64(wantGets) {
			t.Errorf("%s: run.json fetch counts.downloaded = %d, want %d", name, got, wantGets)
		}
		checkObjects(t, rep, int64(listed), int64(listed), 0, 0)
		if n := len(readLines(t, filepath.Join(out, "raw_data.csv"))) - 1; n != listed {
			t.Errorf("%s: raw_data.csv has %d rows, want %d", name, n, listed)
		}
		clean := filepath.Join(dir, name+"-clean")
		before = gets()
		wantCode(t, runBucket(t, srv, srv.endpoint, bkt, notebookFile, clean, filepath.Join(dir, name+"-cache")), 0, name+" clean run")
		if got := gets() - before; got != listed {
			t.Errorf("%s clean run: %d GETs, want %d", name, got, listed)
		}
		sameArtifacts(t, out, clean, len(notebookArtifacts))
		return out
	}

	out := step("cold", sampleObjects, sampleObjects)
	for _, name := range notebookCSVs {
		sameFile(t, filepath.Join(out, name), repoPath(goldenDir+"/"+name))
	}

	// Add 10 new images, graded by both experts.
	const added = 10
	addedIDs := map[string]string{} // relative path -> file_id
	for i := range added {
		ex := []string{"MedicalExpert-I", "MedicalExpert-II"}[i%2]
		rel := fmt.Sprintf("%s/2Mild/Added (%d).png", ex, i)
		b := synthPNG(t, 1000+i/2)
		writeObject(t, data, rel, b)
		addedIDs[rel] = fileID(t, filepath.Join(data, filepath.FromSlash(rel)))
	}
	out = step("added", added, sampleObjects+added)
	for rel := range addedIDs {
		if n := srv.keyGets(t, bkt, prefix+rel); n != 2 { // once incrementally, once by the clean run
			t.Errorf("added %s: fetched %d times by the two runs, want 2", rel, n)
		}
	}
	raw := readCSV(t, filepath.Join(out, "raw_data.csv"))
	rp, id := column(t, raw[0], "relative_path"), column(t, raw[0], "file_id")
	found := 0
	for _, r := range raw[1:] {
		if want, ok := addedIDs[r[rp]]; ok {
			found++
			if r[id] != want {
				t.Errorf("raw_data.csv: %s has file_id %s, want %s", r[rp], r[id], want)
			}
		}
	}
	if found != added {
		t.Errorf("raw_data.csv has %d of the %d added objects", found, added)
	}

	// Delete 3 objects and change 1 (same key, new bytes and size).
	deleted := []string{"MedicalExpert-I/0Normal/NormalG0 (1).png", "MedicalExpert-II/4Severe/SevereG4 (8).png", "MedicalExpert-I/2Mild/Added (0).png"}
	for _, rel := range deleted {
		if err := os.Remove(filepath.Join(data, filepath.FromSlash(rel))); err != nil {
			t.Fatal(err)
		}
	}
	const changed = "MedicalExpert-II/1Doubtful/DoubtfulG1 (2).png"
	oldID := fileID(t, filepath.Join(data, filepath.FromSlash(changed)))
	writeObject(t, data, changed, synthPNG(t, 2000))
	newID := fileID(t, filepath.Join(data, filepath.FromSlash(changed)))
	if oldID == newID {
		t.Fatal("the changed object has the same bytes")
	}
	changedBefore := srv.keyGets(t, bkt, prefix+changed)
	out = step("changed", 1, sampleObjects+added-len(deleted))
	if n := srv.keyGets(t, bkt, prefix+changed) - changedBefore; n != 2 { // incremental + clean
		t.Errorf("changed object fetched %d times by the two runs, want 2", n)
	}
	paths := csvColumn(t, filepath.Join(out, "raw_data.csv"), "relative_path")
	ids := csvColumn(t, filepath.Join(out, "raw_data.csv"), "file_id")
	for _, rel := range deleted {
		for _, p := range paths {
			if p == rel {
				t.Errorf("deleted object %s is still in raw_data.csv", rel)
			}
		}
	}
	var changedIDs []string
	for i, p := range paths {
		if p == changed {
			changedIDs = append(changedIDs, ids[i])
		}
	}
	if len(changedIDs) != 1 || changedIDs[0] != newID {
		t.Errorf("changed object %s: file_ids %v in raw_data.csv, want the new %s only", changed, changedIDs, newID)
	}

	// And nothing changed: zero GETs, every stage but the listing cached.
	out = filepath.Join(dir, "noop")
	before := gets()
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, notebookFile, out, cache), 0, "no-op rerun")
	if got := gets() - before; got != 0 {
		t.Errorf("no-op rerun: %d GETs, want 0", got)
	}
	wantStatuses(t, "no-op rerun", readReport(t, out), allStatus(notebookStages, "cached"))
	sameArtifacts(t, out, filepath.Join(dir, "changed"), len(notebookArtifacts))
}

// notebookArtifactNames are the artifacts of examples/notebook.yaml.
var notebookArtifactNames = []string{"raw_data", "deleted_paths", "different_severity", "normalized_data", "agreement_matrix", "duplicate_conflicts"}

func artifactStatuses(status string) map[string]string {
	m := map[string]string{}
	for _, a := range notebookArtifactNames {
		m[a] = status
	}
	return m
}

func wantArtifactStatus(t *testing.T, what string, rep runReport, want map[string]string) {
	t.Helper()
	if !reflect.DeepEqual(rep.ArtifactStatus, want) {
		t.Errorf("%s: artifact_status %v, want %v", what, rep.ArtifactStatus, want)
	}
}

// Issue 3 (a), rewriting artifacts: a no-op run into a new --out copies
// the bytes the cache kept of each artifact (checked against their
// checksums) rather than rendering them again; into the same --out it
// leaves them alone. A kept file edited through --out (on one file system
// the cache keeps a hard link) is detected, and that artifact rendered again.
func TestArtifactsFromCache(t *testing.T) {
	srv := scratchServer(t)
	bkt, _ := sampleBucket(t, srv, "e2e-artifacts")
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	run := func(name string) (string, result) {
		t.Helper()
		out := filepath.Join(dir, name)
		before := srv.requests(t, "GetObject", bkt)
		res := runBucket(t, srv, srv.endpoint, bkt, notebookFile, out, cache)
		wantCode(t, res, 0, name)
		if n := srv.requests(t, "GetObject", bkt) - before; name != "first" && n != 0 {
			t.Errorf("%s: %d GETs, want 0", name, n)
		}
		return out, res
	}
	first, _ := run("first")
	wantArtifactStatus(t, "first run", readReport(t, first), artifactStatuses("written"))
	raw := filepath.Join(first, "raw_data.csv")
	stBefore, err := os.Stat(raw)
	if err != nil {
		t.Fatal(err)
	}

	_, _ = run("first")
	wantArtifactStatus(t, "rerun into the same --out", readReport(t, first), artifactStatuses("unchanged"))
	if st, _ := os.Stat(raw); !st.ModTime().Equal(stBefore.ModTime()) || !os.SameFile(st, stBefore) {
		t.Error("rerun into the same --out replaced raw_data.csv")
	}

	second, _ := run("second")
	wantArtifactStatus(t, "run into a new --out", readReport(t, second), artifactStatuses("copied"))
	sameArtifacts(t, first, second, len(notebookArtifacts))

	// Append to first/raw_data.csv in place, as `echo >> file` does.
	f, err := os.OpenFile(raw, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("edited,by,hand\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()

	third, res := run("third")
	want := artifactStatuses("copied")
	want["raw_data"] = "written"
	wantArtifactStatus(t, "run after raw_data.csv was edited in place", readReport(t, third), want)
	sameArtifacts(t, second, third, len(notebookArtifacts)) // second holds copies: untouched
	warned := false
	for _, l := range warnLines(res.stderr) {
		warned = warned || (strings.Contains(l, "artifact=raw_data") && strings.Contains(l, "checksum"))
	}
	if !warned {
		t.Errorf("no WARN line about raw_data's damaged stored copy; stderr:\n%s", res.stderr)
	}

	// The edited --out is repaired from the copy the third run kept.
	_, _ = run("first")
	want = artifactStatuses("unchanged")
	want["raw_data"] = "copied"
	wantArtifactStatus(t, "rerun into the edited --out", readReport(t, first), want)
	sameArtifacts(t, second, first, len(notebookArtifacts))

	// A run copies the previous run's artifacts while the listing runs,
	// guessing nothing changed. With dedupe's parameters changed, five
	// artifacts come from new stage outputs, and deleted_paths is now CSV
	// only: the guessed copies must be dropped (deleted_paths.parquet
	// among them), and nothing temporary left in --out.
	changed := editedCopy(t, notebookFile,
		"params: {on: [expert, file_id], check: severity}", "params: {on: [expert, file_id], check: severity_label}",
		"    name: deleted_paths\n", "    name: deleted_paths\n    formats: [csv]\n")
	out := filepath.Join(dir, "changed")
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, changed, out, cache), 0, "changed run")
	want = artifactStatuses("written")
	want["raw_data"] = "copied"
	wantArtifactStatus(t, "run with dedupe's parameters changed", readReport(t, out), want)
	if left, _ := filepath.Glob(filepath.Join(out, "*.tmp-kneepipe")); len(left) > 0 {
		t.Errorf("temporary files left in --out: %v", left)
	}
	var wantFiles []string
	for _, f := range artifactFiles(t, second) {
		if f != "deleted_paths.parquet" {
			wantFiles = append(wantFiles, f)
		}
	}
	if got := artifactFiles(t, out); strings.Join(got, ",") != strings.Join(wantFiles, ",") {
		t.Errorf("changed run wrote %v, want %v", got, wantFiles)
	}
	if des, _ := os.ReadDir(out); len(des) != len(wantFiles)+1 { // + run.json
		var names []string
		for _, d := range des {
			names = append(names, d.Name())
		}
		t.Errorf("--out holds %v, want the artifacts and run.json only", names)
	}
}

// Issue 3 (b): changing one stage's parameters reruns that stage and the
// stages after it, nothing else, and downloads nothing.
func TestParamChangeRerunsDependents(t *testing.T) {
	srv := scratchServer(t)
	bkt, _ := sampleBucket(t, srv, "e2e-params")
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	first := filepath.Join(dir, "first")
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, notebookFile, first, cache), 0, "first run")
	wantStatuses(t, "first run", readReport(t, first), allStatus(notebookStages, "ok"))

	cases := []struct {
		name string
		edit []string
		want map[string]string
		whys map[string]string
		rows map[string]int // data rows of CSV artifacts
	}{
		{
			// A stage nothing depends on: it alone reruns. (mode: keep would
			// make it different_severity's twin, served from that entry.)
			name: "filter by_column",
			edit: []string{"params: {column: file_id, mode: drop}", "params: {column: file_id, by_column: file_id, mode: drop}"},
			want: map[string]string{"list": "ok", "fetch": "cached", "data": "cached", "unique_data": "cached", "cross_check": "cached",
				"different_severity": "cached", "normalized_data": "ok"},
			whys: map[string]string{"normalized_data": "params changed: by_column"},
			rows: map[string]int{"normalized_data.csv": 90, "different_severity.csv": 9},
		},
		{
			// A stage in the middle: it and the four after it rerun.
			name: "dedupe check",
			edit: []string{"params: {on: [expert, file_id], check: severity}", "params: {on: [expert, file_id], check: severity_label}"},
			want: map[string]string{"list": "ok", "fetch": "cached", "data": "cached", "unique_data": "ok", "cross_check": "ok",
				"different_severity": "ok", "normalized_data": "ok"},
			whys: map[string]string{"unique_data": "params changed: check", "cross_check": "input changed: rows",
				"different_severity": "input changed: by", "normalized_data": "input changed: by"},
			rows: map[string]int{"normalized_data.csv": 90, "different_severity.csv": 9, "deleted_paths.csv": 8},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := editedCopy(t, notebookFile, c.edit...)
			out := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
			before := srv.requests(t, "GetObject", bkt)
			wantCode(t, runBucket(t, srv, srv.endpoint, bkt, file, out, cache), 0, c.name)
			if got := srv.requests(t, "GetObject", bkt) - before; got != 0 {
				t.Errorf("%d GETs, want 0", got)
			}
			rep := readReport(t, out)
			wantStatuses(t, c.name, rep, c.want)
			for stage, want := range c.whys {
				if _, why, _ := stageReport(t, rep, stage); why != want {
					t.Errorf("stage %s: why %q, want %q", stage, why, want)
				}
			}
			for name, want := range c.rows {
				if n := len(readLines(t, filepath.Join(out, name))) - 1; n != want {
					t.Errorf("%s: %d rows, want %d", name, n, want)
				}
			}

			// Back to the original file: everything comes from the cache
			// again (and the next case's reasons compare with it).
			again := out + "-original"
			before = srv.requests(t, "GetObject", bkt)
			wantCode(t, runBucket(t, srv, srv.endpoint, bkt, notebookFile, again, cache), 0, "original again")
			if got := srv.requests(t, "GetObject", bkt) - before; got != 0 {
				t.Errorf("original again: %d GETs, want 0", got)
			}
			wantStatuses(t, "original again", readReport(t, again), allStatus(notebookStages, "cached"))
			sameArtifacts(t, first, again, len(notebookArtifacts))
		})
	}
}

// Issue 3 (c): kill -9 in the middle of fetch-hash, then rerun: only what
// was not checkpointed is downloaded again, and the outputs equal a clean
// run's on a fresh cache.
func TestKillDuringFetch(t *testing.T) {
	srv := scratchServer(t)
	const objects = 3000
	const concurrency = 4
	bkt, data := newBucket(t, srv, "e2e-kill")
	grades := []string{"0Normal/NormalG0", "1Doubtful/DoubtfulG1", "2Mild/MildG2", "3Moderate/ModerateG3", "4Severe/SevereG4"}
	for i := range objects {
		img := i / 2
		g := img % 5
		ex := "MedicalExpert-I"
		if i%2 == 1 {
			ex = "MedicalExpert-II"
			if img%7 == 0 { // the second expert disagrees on every 7th image
				g = (g + 1) % 5
			}
		}
		writeObject(t, data, fmt.Sprintf("%s/%s (%d).png", ex, grades[g], img), synthPNG(t, img))
	}
	// The proxy lets `served` GETs through and holds the rest: past the
	// first checkpoint (every 256 objects, or a second), short of the
	// second. The workers hand each object to the record before their next
	// GET, so once all of them wait at the proxy the record is as full as
	// it will get, and its last objects are not on disk yet.
	const served = 300
	proxy := newFaultProxy(t, srv.endpoint, bkt)
	proxy.holdAfter(served)
	t.Cleanup(proxy.release)
	file := withConcurrency(t, fmt.Sprint(concurrency))
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	killedOut := filepath.Join(dir, "killed")

	bg := startKneepipe(t, srvEnv(srv), bucketArgs(proxy.URL, bkt, file, killedOut, cache)...)
	proxy.awaitHeld(t, bg, concurrency)
	logs, _ := filepath.Glob(filepath.Join(cache, "state", "fetch-hash-*", "log"))
	if len(logs) != 1 {
		t.Fatalf("fetch-hash records %v, want one\nstderr:\n%s", logs, bg.stderr.String())
	}
	log := logs[0]
	// A checkpoint taken by the clock at the last object leaves nothing
	// unrecorded: then let one more object through (the clock allows no
	// second checkpoint that soon).
	fetched := served
	for tries := 0; len(journalKeys(t, log)) >= fetched; tries++ {
		if tries == 3 {
			t.Fatalf("every one of %d fetched objects is on disk in the record: the kill would not be between checkpoints", fetched)
		}
		proxy.admit(1)
		fetched++
		proxy.awaitHeld(t, bg, concurrency)
	}
	if err := bg.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if res := bg.wait(t); res.code != -1 {
		t.Fatalf("the run ended with exit code %d before it was killed\nstderr:\n%s", res.code, res.stderr)
	}
	proxy.idle(t)
	checkpointed := len(journalKeys(t, log))
	t.Logf("killed after %d objects fetched, %d of them checkpointed", fetched, checkpointed)
	if checkpointed == 0 || checkpointed >= fetched {
		t.Fatalf("%d objects checkpointed of %d fetched, want some but not all", checkpointed, fetched)
	}
	if lost := fetched - checkpointed; lost > 256 {
		t.Errorf("%d fetched objects not checkpointed, want at most 256 (one checkpoint's worth)", lost)
	}
	if files := artifactFiles(t, killedOut); len(files) != 0 {
		t.Errorf("the killed run left artifacts: %v", files)
	}

	// Rerun through the same endpoint (the record is kept per source). The
	// proxy counts its GETs exactly: none of the killed run's is in flight.
	proxy.release()
	sent, _ := proxy.stats()
	out := filepath.Join(dir, "resumed")
	res := runBucket(t, srv, proxy.URL, bkt, file, out, cache)
	wantCode(t, res, 0, "rerun after kill -9")
	resent, _ := proxy.stats()
	want := objects - checkpointed
	if got := resent - sent; got != want {
		t.Errorf("rerun: %d GETs, want %d (%d objects minus the %d checkpointed; %d were fetched but not checkpointed)", got, want, objects, checkpointed, fetched-checkpointed)
	}
	rep := readReport(t, out)
	if got := downloaded(t, rep); got != int64(want) {
		t.Errorf("rerun: run.json downloaded %d, want %d (the objects not checkpointed)", got, want)
	}
	checkObjects(t, rep, objects, objects, 0, 0)

	// A clean run on a fresh cache, straight to the server with the
	// shipped concurrency, writes the same bytes.
	clean := filepath.Join(dir, "clean")
	before := srv.requests(t, "GetObject", bkt)
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, notebookFile, clean, filepath.Join(dir, "clean-cache")), 0, "clean run")
	// One GET per object, apart from the hedges and retries run.json counts
	// (a loaded machine makes some first-byte times slow enough to hedge).
	cleanRep := readReport(t, clean)
	_, _, cc := stageReport(t, cleanRep, "fetch")
	if cc["downloaded"] != objects {
		t.Errorf("clean run: run.json downloaded %d, want %d", cc["downloaded"], objects)
	}
	extra := int(cc["hedged"] + cc["retried"])
	if got := srv.requests(t, "GetObject", bkt) - before; got != objects+extra {
		t.Errorf("clean run: %d GETs, want %d (%d objects, %d hedged, %d retried)", got, objects+extra, objects, cc["hedged"], cc["retried"])
	}
	sameArtifacts(t, out, clean, len(notebookArtifacts))
	if n := len(readLines(t, filepath.Join(out, "raw_data.csv"))) - 1; n != objects {
		t.Errorf("raw_data.csv: %d rows, want %d", n, objects)
	}
}

// warnLines are the WARN records of a text log.
func warnLines(stderr string) []string {
	var out []string
	for _, l := range stderrLines(stderr) {
		if strings.Contains(l, " level=WARN ") {
			out = append(out, l)
		}
	}
	return out
}

// Issue 3 (d): a damaged cache entry (a flipped byte, a truncated file)
// and a damaged line of fetch-hash's record are detected and recomputed,
// never used.
func TestDamagedCacheRecomputed(t *testing.T) {
	srv := scratchServer(t)
	bkt, _ := sampleBucket(t, srv, "e2e-damaged")
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	first := filepath.Join(dir, "first")
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, notebookFile, first, cache), 0, "first run")

	// Flip a byte in the middle of fetch's rows, cut normalized_data's
	// manifest in half (its rows are recorded, not stored: cache: auto).
	flip := filepath.Join(entryDir(t, cache, "fetch"), "rows.parquet")
	b, err := os.ReadFile(flip)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(flip, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(entryDir(t, cache, "normalized_data"), "manifest.json")
	st, err := os.Stat(cut)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(cut, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	// And damage the record of the 10th hashed object (a hex digit of its
	// hash changes: the line fails its checksum).
	snap := filepath.Join(fetchStateDir(t, cache), "snapshot")
	lines := readLines(t, snap)
	if len(lines) != sampleObjects {
		t.Fatalf("fetch record: %d lines, want %d", len(lines), sampleObjects)
	}
	var rec struct {
		K      string `json:"k"`
		SHA256 string `json:"sha256"`
	}
	if _, body, _ := strings.Cut(lines[9], " "); json.Unmarshal([]byte(body), &rec) != nil || len(rec.SHA256) != 64 {
		t.Fatalf("fetch record line 10: %q", lines[9])
	}
	i := strings.Index(lines[9], rec.SHA256) + 10
	digit := byte('0')
	if lines[9][i] == '0' {
		digit = '1'
	}
	lines[9] = lines[9][:i] + string(digit) + lines[9][i+1:]
	if err := os.WriteFile(snap, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	second := filepath.Join(dir, "second")
	before := srv.requests(t, "GetObject", bkt)
	keyBefore := srv.keyGets(t, bkt, rec.K)
	res := runBucket(t, srv, srv.endpoint, bkt, notebookFile, second, cache)
	wantCode(t, res, 0, "run over the damaged cache")
	t.Logf("stderr of the run over the damaged cache:\n%s", res.stderr)
	if got := srv.requests(t, "GetObject", bkt) - before; got != 1 {
		t.Errorf("%d GETs, want 1 (the object whose record line was damaged)", got)
	}
	if got := srv.keyGets(t, bkt, rec.K) - keyBefore; got != 1 {
		t.Errorf("%s fetched %d times, want 1 (its record line was damaged)", rec.K, got)
	}
	rep := readReport(t, second)
	want := allStatus(notebookStages, "cached")
	want["fetch"], want["normalized_data"] = "ok", "ok"
	wantStatuses(t, "run over the damaged cache", rep, want)
	for _, stage := range []string{"fetch", "normalized_data"} {
		if _, why, _ := stageReport(t, rep, stage); !strings.Contains(why, "damaged") {
			t.Errorf("stage %s: why %q, want it to say the entry is damaged", stage, why)
		}
	}
	if got := downloaded(t, rep); got != 1 {
		t.Errorf("fetch downloaded %d, want 1", got)
	}
	checkObjects(t, rep, 99, 99, 0, 0)
	sameArtifacts(t, first, second, len(notebookArtifacts))
	warns := warnLines(res.stderr)
	if !strings.Contains(strings.Join(warns, "\n"), "damaged lines") {
		t.Errorf("no warning about the damaged record line; WARN lines:\n%s", strings.Join(warns, "\n"))
	}

	t.Run("warning for damaged entries", func(t *testing.T) {
		for _, stage := range []string{"fetch", "normalized_data"} {
			ok := false
			for _, l := range warns {
				ok = ok || (strings.Contains(l, "stage="+stage) && strings.Contains(l, "damaged"))
			}
			if !ok {
				t.Errorf("no WARN line about stage %s's damaged cache entry; WARN lines:\n%s", stage, strings.Join(warns, "\n"))
			}
		}
	})

	t.Run("entries healed", func(t *testing.T) {
		third := filepath.Join(dir, "third")
		res := runBucket(t, srv, srv.endpoint, bkt, notebookFile, third, cache)
		wantCode(t, res, 0, "third run")
		sameArtifacts(t, first, third, len(notebookArtifacts))
		wantStatuses(t, "third run", readReport(t, third), allStatus(notebookStages, "cached"))
	})
}

// Issue 3 (e): two runs on one cache: the second exits 4 at once with
// --wait 0, or waits its turn with a long --wait; the cache stays valid.
func TestConcurrentRunsLock(t *testing.T) {
	srv := scratchServer(t)
	bkt, _ := sampleBucket(t, srv, "e2e-lock")
	proxy := newFaultProxy(t, srv.endpoint, bkt)
	// The first run stays in fetch-hash (holding the lock) until released:
	// its GETs wait at the proxy.
	proxy.hold()
	t.Cleanup(proxy.release)
	file := withConcurrency(t, "4")
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	outA, outB, outC := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")

	a := startKneepipe(t, srvEnv(srv), bucketArgs(proxy.URL, bkt, file, outA, cache)...)
	proxy.awaitHeld(t, a, 4)

	// The first run holds the lock: --wait 0 gives up at once.
	start := time.Now()
	b := kneepipe(t, srvEnv(srv), bucketArgs(proxy.URL, bkt, file, outB, cache, "--wait", "0")...)
	took := time.Since(start)
	wantCode(t, b, 4, "second run with --wait 0")
	if took > 10*time.Second {
		t.Errorf("--wait 0 took %s to give up", took)
	}
	if verdict := lastLine(t, b); !strings.Contains(verdict, "locked by another kneepipe run") || !strings.Contains(verdict, "--wait") {
		t.Errorf("want the last line to say the cache is locked by another run and name --wait: %s", verdict)
	}
	// Issue 9 item 2: its run.json says so.
	if rep := readReport(t, outB); rep.Status != "failed" || !strings.Contains(rep.Error, "locked by another kneepipe run") {
		t.Errorf("locked-out run.json: status %q error %q, want failed and the lock", rep.Status, rep.Error)
	}

	// So does cache gc; plan reads without a lock (issue 9 item 12).
	gc := kneepipe(t, nil, "cache", "gc", "--cache", cache)
	wantCode(t, gc, 4, "cache gc while a run holds the lock")
	plan := kneepipe(t, srvEnv(srv), "plan", "-f", file, "--cache", cache, "--source", "s3://"+bkt+"/"+prefix, "--endpoint", proxy.URL, "--region", region)
	wantCode(t, plan, 0, "plan while a run holds the lock")

	// A long --wait queues behind the first run and then finds its outputs.
	c := startKneepipe(t, srvEnv(srv), bucketArgs(proxy.URL, bkt, file, outC, cache, "--wait", "50s")...)
	awaitOpen(t, c, filepath.Join(cache, "lock")) // from here on c waits for the lock a holds
	if !a.running() || !c.running() {
		t.Fatalf("a run ended while the first was held\nfirst:\n%s\nsecond:\n%s", a.stderr.String(), c.stderr.String())
	}
	if _, err := os.Stat(outC); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the waiting run created its --out %s before it had the lock (err %v)", outC, err)
	}
	proxy.release()
	resA, resC := a.wait(t), c.wait(t)
	wantCode(t, resA, 0, "first run")
	wantCode(t, resC, 0, "second run with --wait 50s")
	if gets := srv.requests(t, "GetObject", bkt); gets != sampleObjects {
		t.Errorf("%d GETs over the runs, want %d (the waiting run takes the first's outputs)", gets, sampleObjects)
	}
	wantStatuses(t, "first run", readReport(t, outA), allStatus(notebookStages, "ok"))
	wantStatuses(t, "waiting run", readReport(t, outC), allStatus(notebookStages, "cached"))
	for _, name := range notebookCSVs {
		sameFile(t, filepath.Join(outA, name), repoPath(goldenDir+"/"+name))
	}
	sameArtifacts(t, outA, outC, len(notebookArtifacts))

	// The cache is valid: a third run is served from it entirely.
	outD := filepath.Join(dir, "d")
	wantCode(t, runBucket(t, srv, proxy.URL, bkt, file, outD, cache), 0, "third run")
	if gets := srv.requests(t, "GetObject", bkt); gets != sampleObjects {
		t.Errorf("third run made %d GETs, want 0", gets-sampleObjects)
	}
	wantStatuses(t, "third run", readReport(t, outD), allStatus(notebookStages, "cached"))
	sameArtifacts(t, outA, outD, len(notebookArtifacts))
	if strings.Contains(resA.stderr+resC.stderr, "damaged") {
		t.Errorf("a run found a damaged entry:\n%s\n%s", resA.stderr, resC.stderr)
	}
}

// awaitOpen waits until the process bg has the file path open (as its
// /proc fd table shows; the file must exist), failing the test if it exits
// first or takes more than 30s.
func awaitOpen(t *testing.T, bg *background, path string) {
	t.Helper()
	path, err := filepath.EvalSymlinks(path) // the fd table names the real path
	if err != nil {
		t.Fatal(err)
	}
	fds := filepath.Join("/proc", strconv.Itoa(bg.cmd.Process.Pid), "fd")
	deadline := time.Now().Add(30 * time.Second)
	for {
		links, _ := os.ReadDir(fds)
		for _, l := range links {
			if target, err := os.Readlink(filepath.Join(fds, l.Name())); err == nil && target == path {
				return
			}
		}
		if !bg.running() {
			t.Fatalf("%v exited before opening %s\nstderr:\n%s", bg.cmd.Args[1:], path, bg.stderr.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v has not opened %s after 30s\nstderr:\n%s", bg.cmd.Args[1:], path, bg.stderr.String())
		}
		time.Sleep(5 * time.Millisecond) // polling: the kernel offers no event for another process's open
	}
}

var planLine = regexp.MustCompile(`^(\S+)\s+(\S+)\s+(runs|cached|would run)\s*(.*)$`)

// Issue 3 (f): plan says what would run and why without downloading or
// writing anything; cache gc keeps exactly what the latest run uses.
func TestPlanAndCacheGC(t *testing.T) {
	srv := scratchServer(t)
	bkt, _ := sampleBucket(t, srv, "e2e-plan")
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	// One pipeline file, edited in place below (gc keeps what the latest
	// run of every pipeline file uses).
	file := editedCopy(t, notebookFile)
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, file, filepath.Join(dir, "first"), cache), 0, "first run")
	firstKeys := entryKeys(t, cache)
	if len(firstKeys) != len(notebookStages) {
		t.Errorf("%d cache entries after the first run, want %d (one per stage)", len(firstKeys), len(notebookStages))
	}

	changed := editedCopy(t, notebookFile, "params: {on: [expert, file_id], check: severity}", "params: {on: [expert, file_id], check: severity_label}")
	if err := os.Rename(changed, file); err != nil {
		t.Fatal(err)
	}
	changed = file
	plan := func(file string) map[string][2]string {
		t.Helper()
		snap := snapshot(t, cache)
		gets, lists := srv.requests(t, "GetObject", bkt), srv.requests(t, "ListObjectsV2", bkt)
		res := kneepipe(t, srvEnv(srv), "plan", "-f", file, "--cache", cache,
			"--source", "s3://"+bkt+"/"+prefix, "--endpoint", srv.endpoint, "--region", region)
		wantCode(t, res, 0, "plan")
		assertNoSecret(t, srv.secretKey, res, cache)
		if got := srv.requests(t, "GetObject", bkt) - gets; got != 0 {
			t.Errorf("plan made %d GETs, want 0", got)
		}
		if got := srv.requests(t, "ListObjectsV2", bkt) - lists; got != sampleListRequests {
			t.Errorf("plan made %d list requests, want %d (one listing)", got, sampleListRequests)
		}
		if after := snapshot(t, cache); !reflect.DeepEqual(snap, after) {
			t.Errorf("plan changed the cache: %d files before, %d after", len(snap), len(after))
		}
		rows := map[string][2]string{}
		lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
		if len(lines) != len(notebookStages)+1 || !strings.HasPrefix(lines[0], "STAGE") {
			t.Fatalf("plan printed:\n%s", res.stdout)
		}
		for _, l := range lines[1:] {
			m := planLine.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("plan line %q", l)
			}
			rows[m[1]] = [2]string{m[3], m[4]}
		}
		return rows
	}
	got := plan(changed)
	want := map[string][2]string{
		"list":               {"runs", "reads the source: always runs"},
		"fetch":              {"cached", "definition and inputs unchanged"},
		"data":               {"cached", "definition and inputs unchanged"},
		"unique_data":        {"would run", "params changed: check"},
		"cross_check":        {"would run", "input changed: rows"},
		"different_severity": {"would run", "input changed: by"},
		"normalized_data":    {"would run", "input changed: by"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plan of the changed file:\n  got  %v\n  want %v", got, want)
	}

	// Run the changed file: four new entries; gc drops the four they
	// replace, and the stored copies of the five artifacts made from them
	// (raw_data comes from an unchanged stage).
	changedOut := filepath.Join(dir, "changed")
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, changed, changedOut, cache), 0, "changed run")
	if n := len(entryKeys(t, cache)); n != len(notebookStages)+4 {
		t.Errorf("%d cache entries after the changed run, want %d", n, len(notebookStages)+4)
	}
	res := kneepipe(t, nil, "cache", "gc", "--cache", cache)
	wantCode(t, res, 0, "cache gc")
	if want := "removed 4 cache entries, 5 stored artifacts and 0 stored export files\n"; res.stdout != want {
		t.Errorf("cache gc printed %q, want %q", res.stdout, want)
	}
	var latest []string
	for _, st := range readReport(t, changedOut).Stages {
		latest = append(latest, st.Fingerprint)
	}
	sort.Strings(latest)
	if kept := entryKeys(t, cache); !reflect.DeepEqual(kept, latest) {
		t.Errorf("entries after gc:\n  %v\nwant the latest run's fingerprints:\n  %v", kept, latest)
	}

	// The plan and a run after gc: all cached, zero GETs, same bytes.
	for name, row := range plan(changed) {
		if want := map[bool]string{true: "runs", false: "cached"}[name == "list"]; row[0] != want {
			t.Errorf("plan after gc: %s %s (%s), want %s", name, row[0], row[1], want)
		}
	}
	out := filepath.Join(dir, "after-gc")
	before := srv.requests(t, "GetObject", bkt)
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, changed, out, cache), 0, "run after gc")
	if got := srv.requests(t, "GetObject", bkt) - before; got != 0 {
		t.Errorf("run after gc: %d GETs, want 0", got)
	}
	wantStatuses(t, "run after gc", readReport(t, out), allStatus(notebookStages, "cached"))
	wantArtifactStatus(t, "run after gc", readReport(t, out), artifactStatuses("copied"))
	sameArtifacts(t, changedOut, out, len(notebookArtifacts))

	// --force=STAGE recomputes that stage only (its outputs are the same,
	// so the stages after it keep their cache entries).
	forced := filepath.Join(dir, "forced")
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, changed, forced, cache, "--force=unique_data"), 0, "run --force=unique_data")
	wantForced := allStatus(notebookStages, "cached")
	wantForced["unique_data"] = "ok"
	rep := readReport(t, forced)
	wantStatuses(t, "run --force=unique_data", rep, wantForced)
	if _, why, _ := stageReport(t, rep, "unique_data"); why != "forced" {
		t.Errorf("--force=unique_data: why %q, want forced", why)
	}
	sameArtifacts(t, changedOut, forced, len(notebookArtifacts))
}

// sameOutputs requires two --out dirs to hold the same files with the same
// bytes (run.json aside: it has timings).
func sameOutputs(t *testing.T, a, b string) {
	t.Helper()
	sa, sb := snapshot(t, a), snapshot(t, b)
	delete(sa, "run.json")
	delete(sb, "run.json")
	if len(sa) == 0 {
		t.Fatalf("%s holds no output but run.json", a)
	}
	if !reflect.DeepEqual(sortedKeys(sa), sortedKeys(sb)) {
		t.Fatalf("different files:\n%s: %v\n%s: %v", a, sortedKeys(sa), b, sortedKeys(sb))
	}
	for name := range sa {
		if sa[name] != sb[name] {
			t.Errorf("%s differs between %s and %s (%d vs %d bytes)%s", name, a, b, len(sa[name]), len(sb[name]), firstDiff([]byte(sa[name]), []byte(sb[name])))
		}
	}
}

// Issue 3 (a) for the shipped pipeline.yaml as a whole (whatever stages it
// has): a cold run makes one GET per listed object (fetch-hash keeps the
// images export and report read), a no-op rerun into a new --out none, and
// adding N objects costs N GETs.
func TestDefaultPipelineIncremental(t *testing.T) {
	srv := scratchServer(t)
	bkt, data := sampleBucket(t, srv, "e2e-default")
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	gets := func() int { return srv.requests(t, "GetObject", bkt) }
	run := func(name string) (string, int) {
		t.Helper()
		out := filepath.Join(dir, name)
		before := gets()
		wantCode(t, runBucket(t, srv, srv.endpoint, bkt, pipelineFile, out, cache), 0, name)
		return out, gets() - before
	}
	exportDownloaded := func(out string) int64 {
		t.Helper()
		_, _, counts := stageReport(t, readReport(t, out), "export")
		return counts["downloaded"]
	}
	cold, n := run("cold")
	if n != sampleObjects {
		t.Errorf("cold run: %d GETs, want one per listed object (%d)", n, sampleObjects)
	}
	if d := exportDownloaded(cold); d != 0 {
		t.Errorf("cold run: export downloaded %d, want 0 (fetch-hash kept every image)", d)
	}
	noop, n := run("noop")
	if n != 0 {
		t.Errorf("no-op rerun: %d GETs, want 0", n)
	}
	sameOutputs(t, cold, noop)

	const added = 2
	writeObject(t, data, "MedicalExpert-I/0Normal/Added (1).png", synthPNG(t, 3000))
	writeObject(t, data, "MedicalExpert-II/0Normal/Added (1).png", synthPNG(t, 3000))
	out, n := run("added")
	rep := readReport(t, out)
	if got := downloaded(t, rep); got != added {
		t.Errorf("fetch downloaded %d, want %d", got, added)
	}
	checkObjects(t, rep, sampleObjects+added, sampleObjects+added, 0, 0)
	// The two new objects are one image both experts agree on: it joins
	// the training set, from the image cache fetch-hash filled.
	if d := exportDownloaded(out); d != 0 {
		t.Errorf("export downloaded %d, want 0", d)
	}
	if n != added {
		var ran []string
		for _, st := range rep.Stages {
			if st.Status == "ok" {
				ran = append(ran, st.Name)
			}
		}
		t.Errorf("adding %d objects: %d GETs, want %d (stages that ran: %v)", added, n, added, ran)
	}
}
