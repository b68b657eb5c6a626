package e2e

// Issue 4 end to end: transient faults injected by faultProxy are retried
// into the same bytes; a permanent failure costs one object; every listed
// object is accounted for; config errors touch nothing; an unreachable
// endpoint or a missing bucket fail clearly and quickly.

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// s3Client talks to the scratch server directly (uploads, listings).
func s3Client(srv *s3Server) *s3.Client {
	return s3.New(s3.Options{
		Region:                     region,
		BaseEndpoint:               aws.String(srv.endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(srv.accessKey, srv.secretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// uploadSample PUTs testdata/sample into bkt under prefix, so that every
// object has the plain-MD5 ETag of a single-part upload (files placed in
// the data dir have none), and checks the listing says so.
func uploadSample(t *testing.T, srv *s3Server, base string) string {
	t.Helper()
	bkt, _ := newBucket(t, srv, base)
	putSample(t, srv, bkt, nil)
	return bkt
}

// putSample PUTs testdata/sample into bkt under prefix, the keys in
// multipart as multipart uploads, and checks the listing's ETags: the MD5
// for single-part objects, a "-1" one for multipart ones.
func putSample(t *testing.T, srv *s3Server, bkt string, multipart map[string]bool) {
	t.Helper()
	cl, ctx := s3Client(srv), context.Background()
	md5s := map[string]string{}
	root := repoPath(sampleDir)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		key := prefix + filepath.ToSlash(rel)
		sum := md5.Sum(data)
		md5s[key] = hex.EncodeToString(sum[:])
		if multipart[key] {
			putMultipart(t, srv, bkt, key, data)
			return nil
		}
		_, err = cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bkt), Key: aws.String(key), Body: bytes.NewReader(data)})
		return err
	})
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	n := 0
	p := s3.NewListObjectsV2Paginator(cl, &s3.ListObjectsV2Input{Bucket: aws.String(bkt), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		for _, o := range page.Contents {
			n++
			key, etag := aws.ToString(o.Key), strings.Trim(aws.ToString(o.ETag), `"`)
			if multipart[key] != strings.HasSuffix(etag, "-1") || (!multipart[key] && etag != md5s[key]) {
				t.Fatalf("%s: ETag %q (MD5 %s, multipart %v): not what the test needs", key, etag, md5s[key], multipart[key])
			}
		}
	}
	if n != len(md5s) {
		t.Fatalf("listing has %d objects, uploaded %d", n, len(md5s))
	}
}

// withExtraArtifacts writes a copy of the notebook pipeline (params edited
// as pairs say) that also writes fetch's failed and rejected outputs and
// map-severity's rejected rows.
func withExtraArtifacts(t *testing.T, pairs ...string) string {
	t.Helper()
	path := editedCopy(t, notebookFile, pairs...)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = f.WriteString(`  - from: fetch.failed
    name: failed
    formats: [csv]
  - from: fetch.rejected
    name: fetch_rejected
    formats: [csv]
  - from: data.rejected
    name: rejected
    formats: [csv]
`)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

var extraArtifacts = []string{"failed.csv", "fetch_rejected.csv", "rejected.csv"}

// sameArtifactsExcept is sameArtifacts leaving out some files.
func sameArtifactsExcept(t *testing.T, a, b string, want int, except ...string) {
	t.Helper()
	skip := map[string]bool{}
	for _, e := range except {
		skip[e] = true
	}
	var fa, fb []string
	for _, f := range artifactFiles(t, a) {
		if !skip[f] {
			fa = append(fa, f)
		}
	}
	for _, f := range artifactFiles(t, b) {
		if !skip[f] {
			fb = append(fb, f)
		}
	}
	if strings.Join(fa, ",") != strings.Join(fb, ",") || len(fa) < want {
		t.Fatalf("artifact sets differ or are short (want %d):\n%s: %v\n%s: %v", want, a, fa, b, fb)
	}
	for _, f := range fa {
		sameFile(t, filepath.Join(a, f), filepath.Join(b, f))
	}
}

// csvRows reads a CSV artifact as maps, one per row.
func csvRows(t *testing.T, path string) []map[string]string {
	t.Helper()
	recs := readCSV(t, path)
	var out []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}

// lastLine is the CLI's final "kneepipe: ..." verdict on stderr.
func lastLine(t *testing.T, res result) string {
	t.Helper()
	lines := stderrLines(res.stderr)
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "kneepipe: ") {
		t.Fatalf("stderr does not end with a \"kneepipe: ...\" line:\n%s", res.stderr)
	}
	return lines[len(lines)-1]
}

// Issue 4 (g): 503 SlowDown, connection resets, bodies cut short, stalls
// and bodies damaged in transit are retried: the run exits 0 with the
// artifacts of a run without faults.
func TestTransientFaultsRetried(t *testing.T) {
	srv := scratchServer(t)
	bkt := uploadSample(t, srv, "e2e-faults")
	file := withExtraArtifacts(t, "params: {concurrency: 64}", "params: {concurrency: 64, stall_timeout: 1s}")
	dir := t.TempDir()

	ref := filepath.Join(dir, "ref")
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, file, ref, filepath.Join(dir, "ref-cache")), 0, "run without faults")
	for _, name := range notebookCSVs {
		sameFile(t, filepath.Join(ref, name), repoPath(goldenDir+"/"+name))
	}

	proxy := newFaultProxy(t, srv.endpoint, bkt)
	proxy.set(faultRates{SlowDown: 0.20, Reset: 0.03, Cut: 0.05, Stall: 0.02, Flip: 0.03}, 0)
	out := filepath.Join(dir, "faults")
	gets := srv.requests(t, "GetObject", bkt)
	start := time.Now()
	res := runBucket(t, srv, proxy.URL, bkt, file, out, filepath.Join(dir, "cache"))
	took := time.Since(start)
	if res.code == 3 {
		t.Logf("failed.csv:\n%s", strings.Join(readLines(t, filepath.Join(out, "failed.csv")), "\n"))
	}
	wantCode(t, res, 0, "run through the fault proxy")
	sent, injected := proxy.stats()
	t.Logf("%d GETs through the proxy in %s, faults injected: %v; %d reached the server", sent, took.Round(time.Millisecond), injected, srv.requests(t, "GetObject", bkt)-gets)
	for _, f := range []fault{faultSlowDown, faultReset, faultCut, faultStall, faultFlip} {
		if injected[f] == 0 {
			t.Errorf("no %s fault was injected: the test proves nothing about it (change the proxy seed)", f)
		}
	}
	if sent <= sampleObjects {
		t.Errorf("%d GETs through the proxy for %d objects: nothing was retried", sent, sampleObjects)
	}
	rep := readReport(t, out)
	if rep.Status != "ok" {
		t.Errorf("run.json status %q, want ok", rep.Status)
	}
	checkObjects(t, rep, 99, 99, 0, 0)
	if got := downloaded(t, rep); got != sampleObjects {
		t.Errorf("downloaded %d, want %d", got, sampleObjects)
	}
	sameArtifacts(t, ref, out, len(notebookArtifacts)+len(extraArtifacts))
	if n := len(stderrLines(res.stderr)); n >= sampleObjects {
		t.Errorf("%d stderr lines: retries are logged per object\n%s", n, res.stderr)
	}
}

// Issue 4 (h): a key that always fails costs that object only: exit code
// 3, failed.csv names it with the error and attempts, the rest is complete,
// and the next run GETs only that key.
func TestPermanentFailureCostsOneObject(t *testing.T) {
	srv := scratchServer(t)
	bkt, data := sampleBucket(t, srv, "e2e-permanent")
	const rel = "MedicalExpert-I/3Moderate/ModerateG3 (6).png" // U1: graded by expert I only
	key := prefix + rel
	file := withExtraArtifacts(t)
	dir := t.TempDir()

	// The reference: the same bucket without that object.
	aside := filepath.Join(dir, "aside.png")
	if err := os.Rename(filepath.Join(data, filepath.FromSlash(rel)), aside); err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(dir, "ref")
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, file, ref, filepath.Join(dir, "ref-cache")), 0, "reference run without the object")
	checkObjects(t, readReport(t, ref), 98, 98, 0, 0)
	if err := os.Rename(aside, filepath.Join(data, filepath.FromSlash(rel))); err != nil {
		t.Fatal(err)
	}

	proxy := newFaultProxy(t, srv.endpoint, bkt)
	proxy.fail(key, fault500)
	cache := filepath.Join(dir, "cache")
	out := filepath.Join(dir, "partial")
	gets := srv.requests(t, "GetObject", bkt)
	start := time.Now()
	res := runBucket(t, srv, proxy.URL, bkt, file, out, cache)
	took := time.Since(start)
	wantCode(t, res, 3, "run with one key failing")
	_, injected := proxy.stats()
	t.Logf("failed after %d requests for the key in %s", injected[fault500], took.Round(time.Millisecond))
	if got := srv.requests(t, "GetObject", bkt) - gets; got != sampleObjects-1 {
		t.Errorf("%d GETs reached the server, want %d", got, sampleObjects-1)
	}
	if n := injected[fault500]; n < 4 || n > 4*3 {
		t.Errorf("the failing key was requested %d times, want 4 attempts (each at most 3 tries by the SDK)", n)
	}
	if verdict := lastLine(t, res); !strings.Contains(verdict, "1 of 99") {
		t.Errorf("verdict %q does not say 1 of 99 objects failed", verdict)
	}
	rep := readReport(t, out)
	if rep.Status != "partial" {
		t.Errorf("run.json status %q, want partial", rep.Status)
	}
	checkObjects(t, rep, 99, 98, 0, 1)
	failed := csvRows(t, filepath.Join(out, "failed.csv"))
	if len(failed) != 1 || failed[0]["key"] != key || failed[0]["attempts"] != "4" ||
		!strings.Contains(failed[0]["error"], "500") || !strings.Contains(failed[0]["error"], "InternalError") {
		t.Errorf("failed.csv: %v, want one row: key %s, attempts 4, the 500 InternalError", failed, key)
	}
	if got := readLines(t, filepath.Join(out, "failed.csv"))[0]; got != "key,error,attempts" {
		t.Errorf("failed.csv header %q", got)
	}
	// Everything else is what a run over the other 98 objects writes.
	sameArtifactsExcept(t, ref, out, len(notebookArtifacts)+2, "failed.csv")

	// The fault is gone: the next run GETs only that key.
	proxy.fail(key, faultNone)
	again := filepath.Join(dir, "again")
	gets = srv.requests(t, "GetObject", bkt)
	res = runBucket(t, srv, proxy.URL, bkt, file, again, cache)
	wantCode(t, res, 0, "rerun without the fault")
	if got := srv.requests(t, "GetObject", bkt) - gets; got != 1 {
		t.Errorf("rerun: %d GETs, want 1", got)
	}
	if got := srv.keyGets(t, bkt, key); got != 1 {
		t.Errorf("rerun: the failed key was fetched %d times, want 1", got)
	}
	rep = readReport(t, again)
	if got := downloaded(t, rep); got != 1 {
		t.Errorf("rerun: downloaded %d, want 1", got)
	}
	if n := len(readLines(t, filepath.Join(again, "failed.csv"))); n != 1 {
		t.Errorf("rerun: failed.csv has %d lines, want the header only", n)
	}
	t.Run("rerun complete", func(t *testing.T) {
		for _, st := range rep.Stages {
			t.Logf("rerun stage %s: %s (%s) outputs %v", st.Name, st.Status, st.Why, st.Outputs)
		}
		checkObjects(t, rep, 99, 99, 0, 0)
		for _, name := range notebookCSVs {
			sameFile(t, filepath.Join(again, name), repoPath(goldenDir+"/"+name))
		}
		// And for good: a third run is the same.
		third := filepath.Join(dir, "third")
		wantCode(t, runBucket(t, srv, proxy.URL, bkt, file, third, cache), 0, "third run")
		checkObjects(t, readReport(t, third), 99, 99, 0, 0)
	})

	// fail_fast: the first failure for good fails the run, artifacts untouched.
	t.Run("fail_fast", func(t *testing.T) {
		const other = prefix + "MedicalExpert-II/2Mild/MildG2 (5).png"
		proxy.fail(other, fault403)
		ff := withExtraArtifacts(t, "params: {concurrency: 64}", "params: {concurrency: 64, fail_fast: true}")
		before := snapshot(t, again)
		res := runBucket(t, srv, proxy.URL, bkt, ff, again, filepath.Join(dir, "ff-cache"))
		wantCode(t, res, 1, "fail_fast run")
		if verdict := lastLine(t, res); !strings.Contains(verdict, other) || !strings.Contains(verdict, "access denied") {
			t.Errorf("verdict %q does not name %s and access denied", verdict, other)
		}
		after := snapshot(t, again)
		for name, data := range before {
			if name != "run.json" && after[name] != data {
				t.Errorf("%s changed by the failed run", name)
			}
		}
		if rep := readReport(t, again); rep.Status != "failed" {
			t.Errorf("run.json status %q, want failed", rep.Status)
		}
	})
}

// Issue 4 (i): every listed object ends accepted, rejected (with its
// reason) or failed, and run.json adds up.
func TestBadObjectsAccounted(t *testing.T) {
	srv := scratchServer(t)
	bkt, data := newBucket(t, srv, "e2e-bad")
	sample := func(rel string) []byte {
		b, err := os.ReadFile(filepath.Join(repoPath(sampleDir), filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := []string{
		"MedicalExpert-I/0Normal/NormalG0 (1).png", "MedicalExpert-II/0Normal/NormalG0 (1).png",
		"MedicalExpert-I/2Mild/MildG2 (1).png", "MedicalExpert-II/2Mild/MildG2 (1).png",
	}
	for _, rel := range good {
		writeObject(t, data, rel, sample(rel))
	}
	const denied = "MedicalExpert-II/3Moderate/Denied (1).png"
	writeObject(t, data, "MedicalExpert-I/0Normal/Empty (1).png", nil)
	writeObject(t, data, "MedicalExpert-I/1Doubtful/NotPNG (1).png", []byte("this is not a PNG\n"))
	writeObject(t, data, "stray.png", synthPNG(t, 1))
	writeObject(t, data, "MedicalExpert-I/0Normal/extra/Deep (1).png", synthPNG(t, 2))
	writeObject(t, data, "MedicalExpert-II/5Unknown/Odd (1).png", synthPNG(t, 3))
	writeObject(t, data, denied, synthPNG(t, 4))
	writeObject(t, data, "MedicalExpert-I/notes.txt", []byte("not listed: no .png suffix\n"))

	proxy := newFaultProxy(t, srv.endpoint, bkt)
	proxy.fail(prefix+denied, fault403)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	res := runBucket(t, srv, proxy.URL, bkt, withExtraArtifacts(t), out, filepath.Join(dir, "cache"))
	wantCode(t, res, 3, "run over the bad objects")
	rep := readReport(t, out)
	checkObjects(t, rep, 10, 4, 5, 1)
	if o := rep.Objects; o.Listed != o.Accepted+o.Rejected+o.Failed {
		t.Errorf("run.json: listed %d != accepted %d + rejected %d + failed %d", o.Listed, o.Accepted, o.Rejected, o.Failed)
	}
	wantOutputs := map[string]map[string]int64{
		"list":        {"objects": 10},
		"fetch":       {"rows": 7, "failed": 1, "rejected": 2},
		"data":        {"rows": 4, "rejected": 3},
		"unique_data": {"rows": 4, "removed": 0, "conflicts": 0},
	}
	for _, st := range rep.Stages {
		if st.Status != "ok" {
			t.Errorf("stage %s: status %s, want ok", st.Name, st.Status)
		}
		outputs, ok := wantOutputs[st.Name]
		if !ok {
			continue
		}
		delete(wantOutputs, st.Name)
		for name, want := range outputs {
			if got, ok := st.Outputs[name]; !ok || got != want {
				t.Errorf("stage %s: output %s has %d rows, want %d", st.Name, name, got, want)
			}
		}
	}
	for name := range wantOutputs {
		t.Errorf("run.json has no stage %s", name)
	}

	got := map[string]string{}
	for _, r := range csvRows(t, filepath.Join(out, "fetch_rejected.csv")) {
		got[r["key"]] = r["reason"]
	}
	want := map[string]string{
		prefix + "MedicalExpert-I/0Normal/Empty (1).png":    "empty object",
		prefix + "MedicalExpert-I/1Doubtful/NotPNG (1).png": "bytes are not a PNG",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fetch_rejected.csv:\n  got  %v\n  want %v", got, want)
	}

	got = map[string]string{}
	for _, r := range csvRows(t, filepath.Join(out, "rejected.csv")) {
		got[r["relative_path"]] = r["reason"]
	}
	const layout = "path does not match layout {expert}/{severity}/{file}"
	want = map[string]string{
		"stray.png": layout,
		"MedicalExpert-I/0Normal/extra/Deep (1).png": layout,
		"MedicalExpert-II/5Unknown/Odd (1).png":      `unknown grade label "5Unknown" (known: 0Normal, 1Doubtful, 2Mild, 3Moderate, 4Severe)`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rejected.csv:\n  got  %v\n  want %v", got, want)
	}

	failed := csvRows(t, filepath.Join(out, "failed.csv"))
	if len(failed) != 1 || failed[0]["key"] != prefix+denied || failed[0]["attempts"] != "1" || !strings.Contains(failed[0]["error"], "access denied") {
		t.Errorf("failed.csv: %v, want %s after 1 attempt (access denied is not retried)", failed, prefix+denied)
	}
	var raw []string
	for _, r := range csvRows(t, filepath.Join(out, "raw_data.csv")) {
		raw = append(raw, r["relative_path"])
	}
	sort.Strings(good)
	sort.Strings(raw)
	if !reflect.DeepEqual(raw, good) {
		t.Errorf("raw_data.csv rows %v, want %v", raw, good)
	}
}

// Issue 4 (j): a config error exits 2 with one file:line:column line
// before anything runs: an existing --out and --cache stay byte for byte,
// fresh ones are not created.
func TestConfigErrorTouchesNothing(t *testing.T) {
	dir := t.TempDir()
	existingOut, existingCache := filepath.Join(dir, "out"), filepath.Join(dir, "cache")
	wantCode(t, runLocal(t, nil, notebookFile, existingOut, existingCache), 0, "a good run first")
	outBefore, cacheBefore := snapshot(t, existingOut), snapshot(t, existingCache)

	cases := []struct {
		name     string
		old, new string
		at       string // the text the error points at
		near     string // in the last line holding this (default: at)
		msg      string
	}{
		{name: "unknown parameter", old: "params: {concurrency: 64}", new: "params: {concurrency: 64, bogus: 1}", at: "bogus", msg: `unknown parameter "bogus"`},
		{name: "unknown kind", old: "kind: fetch-hash", new: "kind: fetch-hsah", at: "fetch-hsah", msg: `unknown kind "fetch-hsah"`},
		{name: "wrong type", old: "params: {concurrency: 64}", new: "params: {concurrency: many}", at: "many", msg: "not an integer"},
		{name: "missing input", old: "inputs: {rows: fetch}", new: "inputs: {rows: fetched}", at: "fetched", msg: `no stage named "fetched"`},
		{name: "duplicate stage", old: "  - name: normalized_data", new: "  - name: different_severity", at: "name: different_severity", near: "  - name: different_severity", msg: `duplicate stage name "different_severity"`},
		{name: "unset variable", old: "uri: ${KNEEPIPE_SOURCE:-testdata/sample}", new: "uri: ${KNEEPIPE_E2E_UNSET}", at: "${KNEEPIPE_E2E_UNSET}", msg: "KNEEPIPE_E2E_UNSET is not set"},
		{name: "unknown key", old: "    params: {suffix: .png}", new: "    params: {suffix: .png}\n    bogus_key: 1", at: "bogus_key", msg: `unknown key "bogus_key"`},
		{name: "cycle", old: "inputs: {rows: fetch}", new: "inputs: {rows: normalized_data}", at: "name: data", near: "  - name: data ", msg: "cycle: data -> normalized_data -> cross_check -> unique_data -> data"},
		{name: "malformed YAML", old: "params: {suffix: .png}", new: "params: {suffix: .png", at: "params: {suffix: .png", msg: "YAML syntax"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := editedCopy(t, notebookFile, c.old, c.new)
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			near := c.near
			if near == "" {
				near = c.at
			}
			line, col := 0, 0
			for i, l := range strings.Split(string(data), "\n") {
				if strings.Contains(l, near) {
					line, col = i+1, strings.Index(l, c.at)+1
				}
			}
			if line == 0 {
				t.Fatalf("%q not found in the edited file", c.at)
			}
			pos := fmt.Sprintf("%s:%d:%d: ", file, line, col)
			if c.name == "malformed YAML" { // yaml.v3 gives no column: any will do
				pos = fmt.Sprintf("%s:%d:", file, line)
			}

			// Into the existing --out and --cache, and into fresh ones.
			freshOut, freshCache := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "cache")
			for _, dirs := range [][2]string{{existingOut, existingCache}, {freshOut, freshCache}} {
				res := kneepipe(t, nil, "run", "-f", file, "--out", dirs[0], "--cache", dirs[1])
				wantCode(t, res, 2, c.name)
				lines := stderrLines(res.stderr)
				if len(lines) != 1 || !strings.HasPrefix(lines[0], pos) || !strings.Contains(lines[0], c.msg) {
					t.Errorf("stderr %q, want one line starting %q and saying %q", res.stderr, pos, c.msg)
				}
				if res.stdout != "" {
					t.Errorf("stdout %q", res.stdout)
				}
			}
			if !reflect.DeepEqual(snapshot(t, existingOut), outBefore) {
				t.Errorf("the failed run changed --out")
			}
			if !reflect.DeepEqual(snapshot(t, existingCache), cacheBefore) {
				t.Errorf("the failed run changed --cache")
			}
			for _, d := range []string{freshOut, freshCache} {
				if _, err := os.Stat(d); err == nil {
					t.Errorf("the failed run created %s", d)
				}
			}
		})
	}
}

// Issue 4 (k): an unreachable endpoint and a missing bucket fail with
// exit code 1 and a message that says which, in bounded time, and print
// no secret.
func TestUnreachableEndpointAndMissingBucket(t *testing.T) {
	srv := scratchServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	const secret = "e2e-recognisable-secret-Zq8W2mKx"

	cases := []struct {
		name, endpoint, bucket, secret string
		says                           []string
	}{
		{"unreachable endpoint", "http://" + closed, bucket, secret, []string{closed, "connection refused", "s3://" + bucket + "/" + prefix}},
		{"missing bucket", srv.endpoint, "e2e-no-such-bucket", srv.secretKey, []string{"bucket does not exist", "s3://e2e-no-such-bucket/" + prefix}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			out, cache := filepath.Join(dir, "out"), filepath.Join(dir, "cache")
			env := []string{"AWS_ACCESS_KEY_ID=" + srv.accessKey, "AWS_SECRET_ACCESS_KEY=" + c.secret}
			start := time.Now()
			res := kneepipe(t, env, bucketArgs(c.endpoint, c.bucket, notebookFile, out, cache)...)
			took := time.Since(start)
			wantCode(t, res, 1, c.name)
			assertNoSecret(t, c.secret, res, out, cache)
			if took >= time.Minute {
				t.Errorf("took %s, want under a minute", took)
			}
			verdict := lastLine(t, res)
			t.Logf("%s after %s: %s", c.name, took.Round(time.Millisecond), verdict)
			for _, s := range c.says {
				if !strings.Contains(verdict, s) {
					t.Errorf("verdict lacks %q: %s", s, verdict)
				}
			}
			rep := readReport(t, out)
			if rep.Status != "failed" || rep.Error == "" {
				t.Errorf("run.json: status %q error %q, want failed with the error", rep.Status, rep.Error)
			}
			if files := artifactFiles(t, out); len(files) != 0 {
				t.Errorf("artifacts written: %v", files)
			}
		})
	}
}

// Issue 4 (g) for the shipped pipeline.yaml as a whole (whatever stages it
// has, the report's thumbnails included): the same faults, the same bytes.
func TestDefaultPipelineUnderFaults(t *testing.T) {
	srv := scratchServer(t)
	bkt := uploadSample(t, srv, "e2e-default-faults")
	// keep_images off: the export and the report's thumbnails GET their
	// images again, through the faults too.
	file := editedCopy(t, pipelineFile, "params: {concurrency: 64, fingerprint: true, keep_images: true}", "params: {concurrency: 64, fingerprint: true, keep_images: false, stall_timeout: 1s}")
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref")
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, file, ref, filepath.Join(dir, "ref-cache")), 0, "run without faults")

	proxy := newFaultProxy(t, srv.endpoint, bkt)
	proxy.set(faultRates{SlowDown: 0.20, Reset: 0.03, Cut: 0.05, Stall: 0.02, Flip: 0.03}, 0)
	out := filepath.Join(dir, "faults")
	res := runBucket(t, srv, proxy.URL, bkt, file, out, filepath.Join(dir, "cache"))
	sent, injected := proxy.stats()
	t.Logf("%d GETs through the proxy, faults injected: %v, %d of them into refetches of objects already fetched", sent, injected, proxy.refetchFaults())
	if len(injected) == 0 {
		t.Fatalf("the proxy injected no fault in %d GETs: the test proves nothing", sent)
	}
	t.Run("exit 0 and the same bytes", func(t *testing.T) {
		wantCode(t, res, 0, "run through the fault proxy")
		sameOutputs(t, ref, out)
	})
	// The report stage logs a warning for each thumbnail it gave up on:
	// under transient faults it must retry them all, so the report shows
	// what a run without faults shows.
	t.Run("no thumbnail lost", func(t *testing.T) {
		if proxy.refetchFaults() == 0 {
			t.Fatal("no fault hit a request for an object already fetched: the report's thumbnails met none (change the proxy seed)")
		}
		var warns []string
		for _, l := range warnLines(res.stderr) {
			if strings.Contains(l, "stage=report") || strings.Contains(l, "msg=report") {
				warns = append(warns, l)
			}
		}
		if len(warns) > 0 {
			t.Errorf("%d report warnings under transient faults (the report lost what it could not fetch):\n%s", len(warns), strings.Join(warns, "\n"))
		}
	})
}
