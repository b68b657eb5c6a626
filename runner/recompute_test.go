package runner

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kneepipe/kneepipe/runner/cache"
	"github.com/kneepipe/kneepipe/stages"
)

// stageEntry reads the manifest of a stage's cache entry by its key.
func stageEntry(t *testing.T, dir string, rep Report, stage string) cache.Manifest {
	t.Helper()
	for _, s := range rep.Stages {
		if s.Name != stage {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, "cache", "entries", s.Fingerprint, "manifest.json"))
		if err != nil {
			t.Fatalf("stage %s: %v", stage, err)
		}
		var m cache.Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	t.Fatalf("no stage %s in run.json", stage)
	return cache.Manifest{}
}

// A stage with `cache: never` is recorded, not stored: a rerun takes it
// as up to date without computing it, and a stage after it that must run
// gets its outputs computed again from its inputs (here recomputed too).
func TestCachePolicyRecordsAndRecomputes(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	probes := 0
	k.probe = func(*stages.Env) { probes++ }
	cfg := k.pipeline(t, dir, "p.yaml", `stages:
  - {name: a, kind: gen, cache: never}
  - {name: b, kind: copy, inputs: {rows: a}, cache: never}
  - {name: c, kind: probe, inputs: {rows: b}, cache: always}
artifacts:
  - {from: c, name: c, formats: [csv]}
`)
	opts := testOptions(dir)
	if _, err := Run(context.Background(), cfg, opts); err != nil {
		t.Fatal(err)
	}
	rep := readRunJSON(t, opts.OutDir)
	for stage, stored := range map[string]bool{"a": false, "b": false, "c": true} {
		m := stageEntry(t, dir, rep, stage)
		if f := m.Outputs["rows"]; (f.Name != "") != stored || f.Rows != 3 {
			t.Errorf("stage %s: entry output %+v, want stored %v with 3 rows", stage, f, stored)
		}
	}

	// A no-op rerun (new --out, so the artifact is copied from the cache)
	// computes nothing.
	opts.OutDir = filepath.Join(dir, "out2")
	if _, err := Run(context.Background(), cfg, opts); err != nil {
		t.Fatal(err)
	}
	for _, s := range readRunJSON(t, opts.OutDir).Stages {
		if s.Status != StatusCached {
			t.Errorf("no-op rerun: stage %s is %s, want cached", s.Name, s.Status)
		}
	}
	if len(k.gen) != 1 || probes != 1 {
		t.Errorf("no-op rerun computed: gen ran %d times, probe %d, want 1 and 1", len(k.gen), probes)
	}

	// c must run: b is recomputed from a, a from nothing.
	opts.OutDir = filepath.Join(dir, "out3")
	opts.Force = []string{"c"}
	if _, err := Run(context.Background(), cfg, opts); err != nil {
		t.Fatal(err)
	}
	if len(k.gen) != 2 || probes != 2 {
		t.Errorf("forced c: gen ran %d times, probe %d, want 2 and 2", len(k.gen), probes)
	}
	data, err := os.ReadFile(filepath.Join(opts.OutDir, "c.csv"))
	if err != nil || string(data) != "key\nk\nkk\nkkk\n" {
		t.Errorf("c.csv = %q (%v)", data, err)
	}
	for i, rec := range k.gen {
		if rec.NumCols() != 0 {
			t.Errorf("gen table %d still held after the run", i)
		}
	}
}

func TestCachePolicyErrors(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	for src, want := range map[string]string{
		"stages:\n  - {name: a, kind: gen, cache: nevr}\n":   `p.yaml:2:33: stage "a": cache: "nevr" is not one of auto, always, never (did you mean "never"?)`,
		"stages:\n  - {name: a, kind: gen, cache: ''}\n":     `p.yaml:2:33: stage "a": cache: "" is not one of auto, always, never`,
		"stages:\n  - {name: a, kind: gen, cache: [auto]}\n": `p.yaml:2:33: stage "a": cache must be one of auto, always, never`,
	} {
		path := filepath.Join(dir, "p.yaml")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path, k.registry(), noEnv)
		if err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("%q: error %v, want ...%s", src, err, want)
		}
	}
}
