package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// columnsPipeline lists a directory, hashes and grades the objects and
// de-duplicates them on the columns given.
func columnsPipeline(on string) string {
	return `version: 1
stages:
  - name: objects
    kind: list
  - name: hashed
    kind: fetch-hash
    inputs: {objects: objects}
  - name: graded
    kind: map-severity
    inputs: {rows: hashed}
  - name: unique
    kind: dedupe
    inputs: {rows: graded}
    params: {on: [` + on + `]}
artifacts:
  - from: unique
    name: clean
`
}

// A column no stage produces is a bad pipeline file (exit 2) for validate
// and for run, which stops before listing: the source does not exist, so
// a run that got as far as listing would exit 1.
func TestValidateRejectsUnknownColumn(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(file, []byte(columnsPipeline("file_id, expertt")), 0o644); err != nil {
		t.Fatal(err)
	}
	want := file + `:14:28: stage "unique": dedupe: parameter "on": rows has no column "expertt" (did you mean "expert"?)`
	for _, args := range [][]string{
		{"validate", "-f", file},
		{"run", "-f", file, "--source", filepath.Join(dir, "no-such-dir"), "--out", filepath.Join(dir, "out"), "--cache", filepath.Join(dir, "cache")},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		if code != exitConfig {
			t.Errorf("%s: exit %d, want %d; stderr: %s", args[0], code, exitConfig, stderr.String())
		}
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("%s: stderr %q, want %q in it", args[0], stderr.String(), want)
		}
	}
}

func TestValidateAcceptsKnownColumns(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(file, []byte(columnsPipeline("file_id, expert")), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"validate", "-f", file}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d, stderr: %s", code, stderr.String())
	}
}

// `kneepipe stages` prints each output's columns from the declaration the
// loader checks against.
func TestStagesPrintsColumns(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"stages", "dedupe", "list", "cross-check"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d, stderr: %s", code, stderr.String())
	}
	for _, want := range []string{
		"    conflicts      group int64, + the rows input's columns\n",
		"    objects        key string, relative_path string, uri string, size int64, etag string, last_modified timestamp\n",
		"    disagreements  file_id string, + one int64 grade column per rater, named by the rater\n",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stages output lacks %q:\n%s", want, stdout.String())
		}
	}
	stderr.Reset()
	if code := run(context.Background(), []string{"stages", "dedup"}, &stdout, &stderr); code != exitConfig || !strings.Contains(stderr.String(), `(did you mean "dedupe"?) (known: cross-check, dedupe, `) {
		t.Errorf("stages dedup: exit %d, stderr %q", code, stderr.String())
	}
}

// Optional inputs: `stages` marks them, and `graph` draws an edge for an
// optional input only when it is wired.
func TestOptionalInputsInStagesAndGraph(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"stages", "report"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d, stderr: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "  optional inputs (may be left unwired):\n    matrix ") || !strings.Contains(stdout.String(), "\n    splits         a split stage's rows") {
		t.Errorf("stages report:\n%s", stdout.String())
	}
	pipeline := filepath.Join(t.TempDir(), "p.yaml")
	src := "version: 1\nsource: {uri: .}\nstages:\n  - {name: list, kind: list}\n  - {name: fetch, kind: fetch-hash, inputs: {objects: list}}\n" +
		"  - {name: graded, kind: map-severity, inputs: {rows: fetch}}\n  - {name: c, kind: cross-check, inputs: {rows: graded}}\n" +
		"  - {name: s, kind: split, inputs: {rows: graded}}\n" +
		"  - {name: r, kind: report, inputs: {rows: graded, matrix: c.matrix, kappa: c.kappa, disagreements: c.disagreements, splits: s}}\n"
	if err := os.WriteFile(pipeline, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"graph", "-f", pipeline, "--format", "dot"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("graph: exit %d, stderr: %s", code, stderr.String())
	}
	dot := stdout.String()
	if !strings.Contains(dot, `"s" -> "r" [label="splits"]`) || strings.Contains(dot, `"" -> "r"`) || strings.Count(dot, `-> "r"`) != 5 {
		t.Errorf("graph:\n%s", dot)
	}
}
