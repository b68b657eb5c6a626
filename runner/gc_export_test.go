package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/kneepipe/kneepipe/internal/imagecache"
	"github.com/kneepipe/kneepipe/internal/table"
	"github.com/kneepipe/kneepipe/stages"
)

// exportLike is a kind named export that stores one shard, whose bytes
// depend on its parameter, in its state as the export stage does
// (files/<sha256>) and lists it in its output.
func exportLike() stages.Registry {
	return stages.Registry{"export": {
		Name:    "export",
		Outputs: []stages.Port{{Name: "files"}},
		Params:  []stages.Param{{Name: "n", Type: stages.Int, Default: int64(1)}},
		New: func(p stages.Params) (stages.Stage, error) {
			return stageFunc(func(_ context.Context, env *stages.Env, _ map[string]arrow.RecordBatch) (*stages.Result, error) {
				data := fmt.Appendf(nil, "shard %d", p.Int("n"))
				s := sha256.Sum256(data)
				sum := hex.EncodeToString(s[:])
				dir := filepath.Join(env.StateDir, stages.ExportFilesDir)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return nil, err
				}
				path := filepath.Join(dir, sum)
				if err := os.WriteFile(path, data, 0o644); err != nil {
					return nil, err
				}
				files := table.New(table.Strings(env.Mem, "name", []string{"data/train-00000-of-00001.parquet"}), table.Strings(env.Mem, "path", []string{path}),
					table.Strings(env.Mem, "sha256", []string{sum}), table.Int64s(env.Mem, "size", []int64{int64(len(data))}, nil))
				return &stages.Result{Outputs: map[string]arrow.RecordBatch{"files": files}}, nil
			}), nil
		},
	}}
}

// cache gc removes export shards no recorded run lists (and a leftover of
// an interrupted write), and keeps those the latest run lists.
func TestGCRemovesUnlistedExportFiles(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	run := func(n int) {
		t.Helper()
		path := filepath.Join(dir, "p.yaml")
		src := fmt.Sprintf("version: 1\nstages:\n  - {name: e, kind: export, cache: always, params: {n: %d}}\n", n)
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path, exportLike(), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Run(context.Background(), cfg, opts); err != nil {
			t.Fatal(err)
		}
	}
	shards := func() []string {
		t.Helper()
		got, err := filepath.Glob(filepath.Join(opts.CacheDir, "state", "export-*", stages.ExportFilesDir, "*"))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	run(1)
	run(2)
	if got := shards(); len(got) != 2 {
		t.Fatalf("shards before gc: %v", got)
	}
	leftover := filepath.Join(filepath.Dir(shards()[0]), "writing-123")
	if err := os.WriteFile(leftover, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	removed, err := GC(context.Background(), opts.CacheDir, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256([]byte("shard 2"))
	want := hex.EncodeToString(s[:])
	if got := shards(); removed.StoredFiles != 2 || len(got) != 1 || filepath.Base(got[0]) != want {
		t.Errorf("gc removed %d stored files, left %v; want shard 2 (%s) alone", removed.StoredFiles, got, want)
	}
	// A second gc finds nothing more to remove.
	if removed, err := GC(context.Background(), opts.CacheDir, 0, slog.New(slog.DiscardHandler)); err != nil || removed.StoredFiles != 0 {
		t.Errorf("second gc: %+v, %v", removed, err)
	}
}

// An export whose outputs are only recorded (`cache: never`) does not say
// which shards it wrote: gc keeps them all.
func TestGCKeepsShardsOfARecordedOnlyExport(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	path := filepath.Join(dir, "p.yaml")
	for _, n := range []int{1, 2} {
		src := fmt.Sprintf("version: 1\nstages:\n  - {name: e, kind: export, cache: never, params: {n: %d}}\n", n)
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path, exportLike(), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Run(context.Background(), cfg, opts); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := GC(context.Background(), opts.CacheDir, 0, slog.New(slog.DiscardHandler))
	got, _ := filepath.Glob(filepath.Join(opts.CacheDir, "state", "export-*", stages.ExportFilesDir, "*"))
	if err != nil || removed.StoredFiles != 0 || len(got) != 2 {
		t.Errorf("gc: %+v, %v; left %v, want both shards", removed, err, got)
	}
}

// Every stage gets the same image cache, <cache>/images, whatever its kind
// (fetch-hash fills it, export reads it), and cache gc leaves it alone: it
// holds bytes by content that any later run may read.
func TestImageCacheSharedAndKeptByGC(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	img := []byte("image bytes")
	s := sha256.Sum256(img)
	sum := hex.EncodeToString(s[:])
	var mu sync.Mutex // the two stages may run at once
	seen := map[string]string{}
	kind := func(name string) stages.Kind {
		return stages.Kind{
			Name:    name,
			Outputs: []stages.Port{{Name: "rows"}},
			New: func(stages.Params) (stages.Stage, error) {
				return stageFunc(func(_ context.Context, env *stages.Env, _ map[string]arrow.RecordBatch) (*stages.Result, error) {
					mu.Lock()
					seen[name] = env.ImageCache
					mu.Unlock()
					if err := (imagecache.Cache{Dir: env.ImageCache}).Put(sum, img); err != nil {
						return nil, err
					}
					return &stages.Result{Outputs: map[string]arrow.RecordBatch{"rows": table.New(table.Strings(env.Mem, "x", []string{name}))}}, nil
				}), nil
			},
		}
	}
	path := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(path, []byte("version: 1\nstages:\n  - {name: a, kind: keep}\n  - {name: b, kind: read-it}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, stages.Registry{"keep": kind("keep"), "read-it": kind("read-it")}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), cfg, opts); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(opts.CacheDir, "images")
	if seen["keep"] != want || seen["read-it"] != want {
		t.Errorf("image caches %v, want %s for both", seen, want)
	}
	if _, err := GC(context.Background(), opts.CacheDir, 0, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	got, fetched, err := imagecache.Cache{Dir: want}.Get(context.Background(), sum, func(context.Context) ([]byte, error) { return img, nil })
	if err != nil || fetched || string(got) != string(img) {
		t.Errorf("after gc: fetched=%v err=%v; want the image still cached", fetched, err)
	}
}
