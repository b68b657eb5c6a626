package e2e

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func stderrLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// checkQuiet: no SDK checksum warning, and no log line per object.
func checkQuiet(t *testing.T, what, stderr string) {
	t.Helper()
	lines := stderrLines(stderr)
	for _, l := range lines {
		if strings.Contains(l, "Response has no supported checksum") {
			t.Errorf("%s: SDK checksum warning on stderr: %s", what, l)
			break
		}
	}
	if len(lines) >= sampleObjects {
		t.Errorf("%s: %d stderr lines for %d objects: something logs per object\n%s", what, len(lines), sampleObjects, stderr)
	}
	if len(lines) == 0 {
		t.Errorf("%s: no log on stderr at all", what)
	}
}

// Test 5: an S3 run's stderr is short, free of SDK noise, and with
// --log-format json made of JSON objects only.
func TestS3StderrQuiet(t *testing.T) {
	_, res := sharedNotebookS3(t)
	checkQuiet(t, "text log", res.stderr)

	dir := t.TempDir()
	res = runS3(t, notebookFile, filepath.Join(dir, "out"), filepath.Join(dir, "cache"), "--log-format", "json")
	wantCode(t, res, 0, "notebook with --log-format json")
	checkQuiet(t, "json log", res.stderr)
	finished := false
	for i, l := range stderrLines(res.stderr) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("stderr line %d is not JSON (%v): %s", i+1, err, l)
			continue
		}
		if rec["msg"] == "run finished" {
			finished = true
			if rec["status"] != "ok" || rec["listed"] != float64(sampleObjects) {
				t.Errorf("run finished record: status %v listed %v, want ok and %d", rec["status"], rec["listed"], sampleObjects)
			}
		}
	}
	if !finished {
		t.Errorf("no JSON \"run finished\" record on stderr:\n%s", res.stderr)
	}
	if res.stdout != "" {
		t.Errorf("run printed on stdout: %q", res.stdout)
	}
}

// snapshot reads every file under dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		files[filepath.ToSlash(rel)] = string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// Test 6: a wrong secret key fails the run with one clear message, leaks
// the secret nowhere and leaves the previous artifacts as they were.
func TestWrongSecretKey(t *testing.T) {
	good, _ := sharedNotebookS3(t)
	dir := t.TempDir()
	out, cache := filepath.Join(dir, "out"), filepath.Join(dir, "cache")
	if err := copyTree(good, out); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, out)

	const wrong = "e2e-wrong-secret-7Qx3Zk9PvT"
	args := append([]string{"run", "-f", notebookFile, "--out", out, "--cache", cache}, s3Args()...)
	gets := s3Requests(t, "GetObject")
	res := kneepipe(t, s3Env(wrong), args...)
	wantCode(t, res, 1, "run with a wrong secret key")
	assertNoSecret(t, wrong, res, out, cache)
	assertNoSecret(t, secretKey, res, out, cache)
	if got := s3Requests(t, "GetObject") - gets; got != 0 {
		t.Errorf("%d GETs after the listing was denied, want 0", got)
	}

	// The last line is the CLI's own verdict: what failed, why, and what
	// to check.
	t.Logf("stderr of the denied run:\n%s", res.stderr)
	lines := stderrLines(res.stderr)
	var verdicts []string
	for _, l := range lines {
		if strings.HasPrefix(l, "kneepipe: ") {
			verdicts = append(verdicts, l)
		}
	}
	if len(verdicts) != 1 || len(lines) == 0 || lines[len(lines)-1] != verdicts[0] {
		t.Fatalf("want exactly one final \"kneepipe: ...\" line, got %q\nstderr:\n%s", verdicts, res.stderr)
	}
	for _, want := range []string{"access denied", "check the access key and secret", s3Source, "list"} {
		if !strings.Contains(strings.ToLower(verdicts[0]), strings.ToLower(want)) {
			t.Errorf("error line lacks %q: %s", want, verdicts[0])
		}
	}

	// Artifacts untouched; run.json records the failed run.
	after := snapshot(t, out)
	for name, data := range before {
		if name == "run.json" {
			continue
		}
		if after[name] != data {
			t.Errorf("%s changed by the failed run", name)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("the failed run left %s in --out", name)
		}
	}
	rep := readReport(t, out)
	if rep.Status != "failed" || !strings.Contains(rep.Error, "access denied") {
		t.Errorf("run.json: status %q error %q, want failed and access denied", rep.Status, rep.Error)
	}
	listed := false
	for _, st := range rep.Stages {
		if st.Name == "list" {
			listed = true
			if st.Status != "failed" {
				t.Errorf("run.json: stage list status %q, want failed", st.Status)
			}
		}
	}
	if !listed {
		t.Errorf("run.json has no stage list: %+v", rep.Stages)
	}
}

// Test 7: validate, graph and stages.
func TestValidateGraphStages(t *testing.T) {
	pipelines := []struct {
		file              string
		stages, artifacts string
		names             []string
	}{
		{notebookFile, "7 stages", "6 artifacts", sortedKeys(notebookStages)},
		{fromCSVFile, "6 stages", "3 artifacts", []string{"raw", "data", "unique_data", "cross_check", "different_severity", "normalized_data"}},
		{pipelineFile, "12 stages", "15 artifacts", sortedKeys(pipelineStages)},
	}
	for _, p := range pipelines {
		t.Run(filepath.Base(p.file), func(t *testing.T) {
			res := kneepipe(t, nil, "validate", "-f", p.file)
			wantCode(t, res, 0, "validate")
			if want := p.file + ": ok (" + p.stages + ", " + p.artifacts + ")\n"; res.stdout != want {
				t.Errorf("validate printed %q, want %q", res.stdout, want)
			}

			res = kneepipe(t, nil, "graph", "-f", p.file)
			wantCode(t, res, 0, "graph")
			if !strings.HasPrefix(res.stdout, "flowchart LR\n") || !strings.Contains(res.stdout, "-->") {
				t.Errorf("graph (mermaid) output:\n%s", res.stdout)
			}
			for _, name := range p.names {
				if !strings.Contains(res.stdout, `["`+name+`<br/>`) {
					t.Errorf("graph (mermaid) has no node for stage %s:\n%s", name, res.stdout)
				}
			}
			res2 := kneepipe(t, nil, "graph", "--format", "mermaid", "-f", p.file)
			wantCode(t, res2, 0, "graph --format mermaid")
			if res2.stdout != res.stdout {
				t.Errorf("graph --format mermaid differs from the default format")
			}

			res = kneepipe(t, nil, "graph", "--format", "dot", "-f", p.file)
			wantCode(t, res, 0, "graph --format dot")
			if !strings.HasPrefix(res.stdout, "digraph pipeline {") || !strings.HasSuffix(res.stdout, "}\n") || !strings.Contains(res.stdout, "->") {
				t.Errorf("graph (dot) output:\n%s", res.stdout)
			}
			for _, name := range p.names {
				if !strings.Contains(res.stdout, "\n  \""+name+"\" [label=") {
					t.Errorf("graph (dot) has no node for stage %s:\n%s", name, res.stdout)
				}
			}
		})
	}

	res := kneepipe(t, nil, "graph", "--format", "svg", "-f", pipelineFile)
	wantCode(t, res, 2, "graph --format svg")

	res = kneepipe(t, nil, "stages")
	wantCode(t, res, 0, "stages")
	var kinds []string
	for _, l := range strings.Split(res.stdout, "\n") {
		if l != "" && !strings.HasPrefix(l, " ") {
			kinds = append(kinds, l)
		}
	}
	want := []string{"cross-check", "dedupe", "exclusions", "export", "fetch-hash", "filter", "list", "map-severity", "near-duplicates", "read", "report", "split"}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("stages lists %q, want %q", kinds, want)
	}
}
