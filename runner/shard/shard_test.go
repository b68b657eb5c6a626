package shard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kneepipe/kneepipe/runner"
	"github.com/kneepipe/kneepipe/stages"
)

// sampleDir copies the bundled sample into a temporary directory and adds
// objects fetch-hash rejects (not a PNG, empty) and a key the listing
// rejects (not UTF-8), so that every output of the listing and of the
// per-object stage has rows to split and merge.
func sampleDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := os.CopyFS(dir, os.DirFS("../../testdata/sample"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"MedicalExpert-I/0Normal/zz-not-a.png": "text", "MedicalExpert-II/0Normal/empty.png": "", "MedicalExpert-II/0Normal/bad\xff.png": "x"} {
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func load(t *testing.T, src string, edit func(string) string) *runner.Config {
	t.Helper()
	data, err := os.ReadFile("../../pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if edit != nil {
		text = edit(text)
	}
	none := func(string) (string, bool) { return "", false }
	cfg, err := runner.Parse("pipeline.yaml", []byte(text), stages.Builtin(), none)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Source.URI = src
	return cfg
}

func opts(cache, out string) runner.Options {
	return runner.Options{CacheDir: cache, OutDir: out}
}

// shardAll plans n shards and runs each, every one with its own cache.
func shardAll(t *testing.T, cfg *runner.Config, w Work, n int) {
	t.Helper()
	ctx := context.Background()
	if _, err := Plan(ctx, cfg, opts(t.TempDir(), ""), w, n); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := RunShard(ctx, cfg, opts(t.TempDir(), ""), w, Index{i, n}); err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
	}
}

// readTree reads every file under dir but run.json, by slash path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "run.json" {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readReport(t *testing.T, path string) runner.Report {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep runner.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestMergeIsByteIdenticalToRun(t *testing.T) {
	src := sampleDir(t)
	cfg := load(t, src, nil)
	ctx := context.Background()
	one := t.TempDir()
	if _, err := runner.Run(ctx, cfg, opts(t.TempDir(), one)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 3, 7} {
		w := dirWork(t.TempDir())
		shardAll(t, cfg, w, n)
		merged := t.TempDir()
		if _, err := Merge(ctx, cfg, opts(t.TempDir(), merged), w); err != nil {
			t.Fatalf("%d shards: %v", n, err)
		}
		want, got := readTree(t, one), readTree(t, merged)
		if len(want) < 8 {
			t.Fatalf("one run wrote only %d files", len(want))
		}
		for name, b := range want {
			if !bytes.Equal(got[name], b) {
				t.Errorf("%d shards: %s differs from one run's", n, name)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%d shards: %d files, one run %d", n, len(got), len(want))
		}
		rep := readReport(t, filepath.Join(merged, "run.json"))
		oneRep := readReport(t, filepath.Join(one, "run.json"))
		if len(oneRep.Warnings) == 0 || !slices.Equal(rep.Warnings, oneRep.Warnings) {
			t.Errorf("%d shards: warnings %v, one run's %v", n, rep.Warnings, oneRep.Warnings)
		}
		o := rep.Objects
		if o.Listed != 102 || o.Rejected != 3 || o.Listed != o.Accepted+o.Rejected+o.Failed {
			t.Errorf("%d shards: merged accounting %+v", n, o)
		}
		var listed int64
		for i := range n {
			listed += readReport(t, filepath.Join(string(w), runJSONName(Index{i, n}))).Objects.Listed
		}
		if listed != 101 { // the key the listing rejected reaches no shard
			t.Errorf("%d shards: the shards' run.json list %d objects, want 101", n, listed)
		}
	}
}

func TestMergeNamesMissingAndStaleShards(t *testing.T) {
	src := sampleDir(t)
	cfg := load(t, src, nil)
	ctx := context.Background()
	w := dirWork(t.TempDir())
	if _, err := Plan(ctx, cfg, opts(t.TempDir(), ""), w, 4); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2} {
		if _, err := RunShard(ctx, cfg, opts(t.TempDir(), ""), w, Index{i, 4}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Merge(ctx, cfg, opts(t.TempDir(), t.TempDir()), w)
	if err == nil || !strings.Contains(err.Error(), "shards 1, 3 of 4 have no part") {
		t.Fatalf("merge with shards 1 and 3 missing: %v", err)
	}
	// A new plan (the bucket changed) makes the parts made before stale.
	if err := os.WriteFile(filepath.Join(src, "MedicalExpert-I", "new.png"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Plan(ctx, cfg, opts(t.TempDir(), ""), w, 4); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 3} {
		if _, err := RunShard(ctx, cfg, opts(t.TempDir(), ""), w, Index{i, 4}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = Merge(ctx, cfg, opts(t.TempDir(), t.TempDir()), w)
	if err == nil || !strings.Contains(err.Error(), "shards 0 (made for plan") || !strings.Contains(err.Error(), "; 2 (made for plan") {
		t.Fatalf("merge with shards 0 and 2 stale: %v", err)
	}
}

func TestShardRunIsIdempotentAndLeavesOthersAlone(t *testing.T) {
	cfg := load(t, sampleDir(t), nil)
	ctx := context.Background()
	w := dirWork(t.TempDir())
	if _, err := Plan(ctx, cfg, opts(t.TempDir(), ""), w, 3); err != nil {
		t.Fatal(err)
	}
	x := Index{1, 3}
	var manifests [][]byte
	for range 2 { // a retried task, with a fresh cache as on another node
		if _, err := RunShard(ctx, cfg, opts(t.TempDir(), ""), w, x); err != nil {
			t.Fatal(err)
		}
		m, err := w.Get(ctx, partName(x))
		if err != nil {
			t.Fatal(err)
		}
		manifests = append(manifests, m)
	}
	if !bytes.Equal(manifests[0], manifests[1]) {
		t.Error("a retried shard wrote another part")
	}
	files := readTree(t, filepath.Join(string(w), "parts"))
	if len(files) != 5 { // three outputs, the manifest and the shard's run.json
		names := []string{}
		for n := range files {
			names = append(names, n)
		}
		t.Errorf("parts hold %v, want shard 1's three outputs, manifest and run.json", names)
	}
	for name := range files {
		if !strings.HasPrefix(name, "1-of-3") {
			t.Errorf("shard 1 wrote %s", name)
		}
	}
}

func TestPlanBelongsToItsPipeline(t *testing.T) {
	src := sampleDir(t)
	cfg := load(t, src, nil)
	ctx := context.Background()
	w := dirWork(t.TempDir())
	if _, err := Plan(ctx, cfg, opts(t.TempDir(), ""), w, 2); err != nil {
		t.Fatal(err)
	}
	// Concurrency is tuning: it may differ between the plan and a shard.
	edit := func(old, new string) func(string) string {
		return func(s string) string {
			if !strings.Contains(s, old) {
				t.Fatalf("pipeline has no %q to edit", old)
			}
			return strings.Replace(s, old, new, 1)
		}
	}
	tuned := load(t, src, edit("concurrency: 64", "concurrency: 3"))
	if _, err := RunShard(ctx, tuned, opts(t.TempDir(), ""), w, Index{0, 2}); err != nil {
		t.Fatalf("another concurrency: %v", err)
	}
	other := load(t, src, edit("concurrency: 64", "concurrency: 64, expect: any"))
	if _, err := RunShard(ctx, other, opts(t.TempDir(), ""), w, Index{1, 2}); err == nil || !strings.Contains(err.Error(), "another definition") {
		t.Errorf("shard of another pipeline: %v", err)
	}
	if _, err := RunShard(ctx, cfg, opts(t.TempDir(), ""), w, Index{1, 3}); err == nil || !strings.Contains(err.Error(), "has 2 shards") {
		t.Errorf("shard 1/3 of a 2-shard plan: %v", err)
	}
	if _, err := Merge(ctx, other, opts(t.TempDir(), t.TempDir()), w); err == nil || !strings.Contains(err.Error(), "another definition") {
		t.Errorf("merge of another pipeline: %v", err)
	}
	if _, err := RunShard(ctx, cfg, opts(t.TempDir(), ""), dirWork(t.TempDir()), Index{0, 2}); err == nil || !strings.Contains(err.Error(), "no plan") {
		t.Errorf("shard without a plan: %v", err)
	}
}

// The assignment is part of W's format: a plan made by one kneepipe is
// run by another.
func TestOfIsStable(t *testing.T) {
	got := []int{Of("", 4), Of("a", 4), Of("datasets/MedicalExpert-I/0Normal/NormalG0 (1).png", 7), Of("k", 1)}
	want := []int{1, 0, 6, 0} // FNV-1a 64 mod n, as any implementation computes it
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("Of #%d = %d, want %d", i, got[i], want[i])
		}
	}
	if err := (Index{4, 4}).Check(); err == nil {
		t.Error("4/4 accepted")
	}
}

func TestWorkNotFound(t *testing.T) {
	_, err := dirWork(t.TempDir()).Get(context.Background(), "parts/0-of-1.json")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
}

// A shard run again on its own cache takes fetch-hash from the cache: the
// part must still be the same bytes.
func TestShardRunAgainOnItsCache(t *testing.T) {
	cfg := load(t, sampleDir(t), nil)
	ctx := context.Background()
	w := dirWork(t.TempDir())
	if _, err := Plan(ctx, cfg, opts(t.TempDir(), ""), w, 2); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	var manifests [][]byte
	for range 2 {
		rep, err := RunShard(ctx, cfg, opts(cache, ""), w, Index{0, 2})
		if err != nil {
			t.Fatal(err)
		}
		m, err := w.Get(ctx, partName(Index{0, 2}))
		if err != nil {
			t.Fatal(err)
		}
		manifests = append(manifests, m)
		if len(manifests) == 2 && rep.Stages[1].Status != runner.StatusCached {
			t.Errorf("second run: fetch %s, want cached", rep.Stages[1].Status)
		}
	}
	if !bytes.Equal(manifests[0], manifests[1]) {
		t.Errorf("the part differs when fetch-hash comes from the cache:\n%s\n%s", manifests[0], manifests[1])
	}
}
