package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// stageWant is one stage's expected line in run.json; the figures are
// testdata/README.md's.
type stageWant struct {
	kind    string
	outputs map[string]int64
}

var notebookStages = map[string]stageWant{
	"list":               {"list", map[string]int64{"objects": 99}},
	"fetch":              {"fetch-hash", map[string]int64{"rows": 99, "failed": 0, "rejected": 0}},
	"data":               {"map-severity", map[string]int64{"rows": 99, "rejected": 0}},
	"unique_data":        {"dedupe", map[string]int64{"rows": 91, "removed": 8, "conflicts": 0}},
	"cross_check":        {"cross-check", map[string]int64{"wide": 46, "matrix": 7, "disagreements": 5, "missing": 1, "kappa": 1}},
	"different_severity": {"filter", map[string]int64{"rows": 9}},
	"normalized_data":    {"filter", map[string]int64{"rows": 90}},
}

var notebookArtifacts = []string{
	"agreement_matrix.csv", "agreement_matrix.parquet",
	"deleted_paths.csv", "deleted_paths.parquet",
	"different_severity.csv", "different_severity.parquet",
	"duplicate_conflicts.csv", "duplicate_conflicts.parquet",
	"normalized_data.csv", "normalized_data.parquet",
	"raw_data.csv", "raw_data.parquet",
}

// checkStages compares run.json's stages with want: the same names, kinds,
// rows per named output (any other output must be empty), and every status
// equal to status(name).
func checkStages(t *testing.T, rep runReport, want map[string]stageWant, status func(name string) string) {
	t.Helper()
	seen := map[string]bool{}
	for _, st := range rep.Stages {
		w, ok := want[st.Name]
		if !ok {
			t.Errorf("run.json: unexpected stage %q", st.Name)
			continue
		}
		seen[st.Name] = true
		if st.Kind != w.kind {
			t.Errorf("stage %s: kind %q, want %q", st.Name, st.Kind, w.kind)
		}
		if s := status(st.Name); st.Status != s {
			t.Errorf("stage %s: status %q, want %q (error %q)", st.Name, st.Status, s, st.Error)
		}
		for name, rows := range st.Outputs {
			if _, ok := w.outputs[name]; !ok && rows != 0 {
				t.Errorf("stage %s: unexpected output %s with %d rows (want %v)", st.Name, name, rows, w.outputs)
			}
		}
		for name, rows := range w.outputs {
			if got, ok := st.Outputs[name]; !ok || got != rows {
				t.Errorf("stage %s: output %s has %d rows (present %v), want %d", st.Name, name, got, ok, rows)
			}
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("run.json: stage %q missing", name)
		}
	}
}

func checkObjects(t *testing.T, rep runReport, listed, accepted, rejected, failed int64) {
	t.Helper()
	o := rep.Objects
	if o.Listed != listed || o.Accepted != accepted || o.Rejected != rejected || o.Failed != failed {
		t.Errorf("run.json objects: listed %d accepted %d rejected %d failed %d, want %d/%d/%d/%d",
			o.Listed, o.Accepted, o.Rejected, o.Failed, listed, accepted, rejected, failed)
	}
}

// TestGoldensMatchReadme guards the goldens themselves, so that the
// byte-for-byte comparisons below cannot pass against emptied files.
func TestGoldensMatchReadme(t *testing.T) {
	rows := map[string]int{"raw_data.csv": 99, "deleted_paths.csv": 8, "different_severity.csv": 9, "normalized_data.csv": 90}
	for _, name := range notebookCSVs {
		recs := readCSV(t, repoPath(goldenDir+"/"+name))
		if got := len(recs) - 1; got != rows[name] {
			t.Errorf("golden %s: %d data rows, want %d (testdata/README.md)", name, got, rows[name])
		}
	}
	raw := readCSV(t, repoPath(goldenDir+"/raw_data.csv"))
	ids := map[string]bool{}
	for _, r := range raw[1:] {
		ids[r[1]] = true
	}
	if len(ids) != sampleFileIDs {
		t.Errorf("golden raw_data.csv: %d distinct file_ids, want %d", len(ids), sampleFileIDs)
	}
}

// Test 1: the notebook through S3 reproduces its four CSVs byte for byte.
func TestNotebookS3MatchesGoldens(t *testing.T) {
	out, _ := sharedNotebookS3(t)
	for _, name := range notebookCSVs {
		sameFile(t, filepath.Join(out, name), repoPath(goldenDir+"/"+name))
	}
	rep := readReport(t, out)
	if rep.Status != "ok" {
		t.Errorf("run.json status %q, want ok (error %q)", rep.Status, rep.Error)
	}
	if rep.Source != s3Source {
		t.Errorf("run.json source %q, want %q", rep.Source, s3Source)
	}
	checkObjects(t, rep, 99, 99, 0, 0)
	checkStages(t, rep, notebookStages, func(string) string { return "ok" })
	if got := strings.Join(rep.Artifacts, ","); got != strings.Join(notebookArtifacts, ",") {
		t.Errorf("run.json artifacts %v, want %v", rep.Artifacts, notebookArtifacts)
	}
	if got := artifactFiles(t, out); strings.Join(got, ",") != strings.Join(notebookArtifacts, ",") {
		t.Errorf("files in --out %v, want %v", got, notebookArtifacts)
	}
}

// Test 2: the same pipeline on the local sample (the file's default
// source) writes the same CSV and Parquet bytes as through S3.
func TestNotebookLocalMatchesS3(t *testing.T) {
	s3Out, _ := sharedNotebookS3(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	res := runLocal(t, nil, notebookFile, out, filepath.Join(dir, "cache"))
	wantCode(t, res, 0, "local notebook run")
	rep := readReport(t, out)
	if rep.Status != "ok" || rep.Source != sampleDir {
		t.Errorf("run.json: status %q source %q, want ok and %q", rep.Status, rep.Source, sampleDir)
	}
	checkObjects(t, rep, 99, 99, 0, 0)
	sameArtifacts(t, s3Out, out, len(notebookArtifacts))
	// Identity is possible only because no notebook artifact with rows
	// names where the object came from. (duplicate_conflicts keeps every
	// column, uri and etag included, but the sample has no conflicts.)
	for _, f := range artifactFiles(t, out) {
		if filepath.Ext(f) != ".csv" {
			continue
		}
		lines := readLines(t, filepath.Join(out, f))
		if strings.Contains(","+lines[0]+",", ",uri,") && len(lines) > 1 {
			t.Errorf("%s has a uri column and %d rows: %s", f, len(lines)-1, lines[0])
		}
	}
	for _, name := range notebookCSVs {
		if header := readLines(t, filepath.Join(out, name))[0]; strings.Contains(","+header+",", ",uri,") {
			t.Errorf("%s has a uri column: %s", name, header)
		}
	}
}

var concurrencyParam = regexp.MustCompile(`(?m)^(\s*params: \{concurrency: )64\}`)

// withConcurrency writes a copy of examples/notebook.yaml whose fetch
// stage uses n parallel downloads.
func withConcurrency(t *testing.T, n string) string {
	t.Helper()
	data, err := os.ReadFile(repoPath(notebookFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(concurrencyParam.FindAll(data, -1)); got != 1 {
		t.Fatalf("%s: %d `params: {concurrency: 64}` lines, want 1 (the file changed: update the test)", notebookFile, got)
	}
	path := filepath.Join(t.TempDir(), "notebook-concurrency-"+n+".yaml")
	if err := os.WriteFile(path, concurrencyParam.ReplaceAll(data, []byte("${1}"+n+"}")), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Test 3a: the artifacts do not depend on how many downloads run at once.
func TestDeterministicAcrossConcurrency(t *testing.T) {
	outs := map[string]string{}
	for _, n := range []string{"1", "64"} {
		file := withConcurrency(t, n)
		dir := t.TempDir()
		outs[n] = filepath.Join(dir, "out")
		gets := s3Requests(t, "GetObject")
		res := runS3(t, file, outs[n], filepath.Join(dir, "cache"))
		wantCode(t, res, 0, "notebook with concurrency "+n)
		if got := s3Requests(t, "GetObject") - gets; got != sampleObjects {
			t.Errorf("concurrency %s: %d GETs, want %d", n, got, sampleObjects)
		}
		rep := readReport(t, outs[n])
		checkObjects(t, rep, 99, 99, 0, 0)
		checkStages(t, rep, notebookStages, func(string) string { return "ok" })
	}
	sameArtifacts(t, outs["1"], outs["64"], len(notebookArtifacts))
	for _, name := range notebookCSVs {
		sameFile(t, filepath.Join(outs["1"], name), repoPath(goldenDir+"/"+name))
	}
}

// Test 3b: a rerun on a warm cache lists again but downloads nothing,
// takes every other stage from the cache and writes the same bytes.
// sampleListRequests is one listing of the sample with list_depth 2: the
// prefix with a delimiter, each expert folder with a delimiter, then each
// of the 10 grade folders flat (99 keys: one page each).
const sampleListRequests = 1 + 2 + 10

func TestWarmCacheRerun(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	first, second := filepath.Join(dir, "first"), filepath.Join(dir, "second")

	gets, lists := s3Requests(t, "GetObject"), s3Requests(t, "ListObjectsV2")
	wantCode(t, runS3(t, notebookFile, first, cache), 0, "first run")
	if got := s3Requests(t, "GetObject") - gets; got != sampleObjects {
		t.Errorf("first run: %d GETs, want %d", got, sampleObjects)
	}
	if got := s3Requests(t, "ListObjectsV2") - lists; got != sampleListRequests {
		t.Errorf("first run: %d ListObjectsV2 requests, want %d (the prefix, 2 experts, 10 grade folders)", got, sampleListRequests)
	}

	gets, lists = s3Requests(t, "GetObject"), s3Requests(t, "ListObjectsV2")
	wantCode(t, runS3(t, notebookFile, second, cache), 0, "rerun on a warm cache")
	if got := s3Requests(t, "GetObject") - gets; got != 0 {
		t.Errorf("rerun on a warm cache: %d GETs, want 0", got)
	}
	if got := s3Requests(t, "ListObjectsV2") - lists; got != sampleListRequests {
		t.Errorf("rerun: %d ListObjectsV2 requests, want %d (the listing always runs)", got, sampleListRequests)
	}

	rep := readReport(t, second)
	if rep.Status != "ok" {
		t.Errorf("rerun: status %q, want ok", rep.Status)
	}
	checkObjects(t, rep, 99, 99, 0, 0)
	checkStages(t, rep, notebookStages, func(name string) string {
		if name == "list" {
			return "ok"
		}
		return "cached"
	})
	sameArtifacts(t, first, second, len(notebookArtifacts))
}

// Test 8: the notebook's later steps from the S3 run's raw_data.csv
// reproduce the other three goldens.
func TestNotebookFromCSV(t *testing.T) {
	s3Out, _ := sharedNotebookS3(t)
	manifest := filepath.Join(s3Out, "raw_data.csv")
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	res := runLocal(t, []string{"MANIFEST=" + manifest}, fromCSVFile, out, filepath.Join(dir, "cache"))
	wantCode(t, res, 0, "notebook-from-csv")
	for _, name := range notebookCSVs[1:] {
		sameFile(t, filepath.Join(out, name), repoPath(goldenDir+"/"+name))
	}
	want := []string{
		"deleted_paths.csv", "deleted_paths.parquet",
		"different_severity.csv", "different_severity.parquet",
		"normalized_data.csv", "normalized_data.parquet",
	}
	if got := artifactFiles(t, out); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("artifacts %v, want %v", got, want)
	}
	if rep := readReport(t, out); rep.Status != "ok" {
		t.Errorf("run.json status %q, want ok", rep.Status)
	}

	// MANIFEST is what the read stage opens (its default is the golden
	// raw_data.csv itself, so the run above alone would not show it).
	missing := filepath.Join(dir, "no-such-manifest.csv")
	res = runLocal(t, []string{"MANIFEST=" + missing}, fromCSVFile, filepath.Join(dir, "out2"), filepath.Join(dir, "cache2"))
	wantCode(t, res, 1, "notebook-from-csv with a missing MANIFEST")
	if !strings.Contains(res.stderr, missing) {
		t.Errorf("stderr does not name the missing manifest %s:\n%s", missing, res.stderr)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// A rerun into the same --out leaves artifacts whose source did not change
// alone (same bytes, same modification time), and restores a file someone
// altered.
func TestRerunKeepsUnchangedArtifacts(t *testing.T) {
	dir := t.TempDir()
	out, cache := filepath.Join(dir, "out"), filepath.Join(dir, "cache")
	wantCode(t, runLocal(t, nil, notebookFile, out, cache), 0, "first run")
	raw, altered := filepath.Join(out, "raw_data.csv"), filepath.Join(out, "deleted_paths.csv")
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, f := range []string{raw, altered} {
		if err := os.Chtimes(f, old, old); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(altered)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(altered, []byte("relative_path\nedited by hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	wantCode(t, runLocal(t, nil, notebookFile, out, cache), 0, "rerun")
	if st, err := os.Stat(raw); err != nil || !st.ModTime().Equal(old) {
		t.Errorf("raw_data.csv was rewritten although nothing changed (mtime %v, want %v, err %v)", st.ModTime(), old, err)
	}
	if got, err := os.ReadFile(altered); err != nil || !bytes.Equal(got, golden) {
		t.Errorf("the hand-edited deleted_paths.csv was not restored:\n%s", got)
	}
	sameFile(t, repoPath("testdata/golden/notebook/raw_data.csv"), raw)
	if rep := readReport(t, out); len(rep.Artifacts) != len(notebookArtifacts) {
		t.Errorf("run.json lists %d artifacts, want %d", len(rep.Artifacts), len(notebookArtifacts))
	}
}
