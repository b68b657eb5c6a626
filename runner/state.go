package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/atomicfile"
	"github.com/kneepipe/kneepipe/internal/table"
	"github.com/kneepipe/kneepipe/runner/cache"
	"github.com/kneepipe/kneepipe/runner/uptodate"
	"github.com/kneepipe/kneepipe/stages"
)

// runRecord is what the latest run of one pipeline file computed, for the
// next plan's explanations and for `cache gc`. Each pipeline sharing a
// cache has its own, <cache>/state/runs/<hash of the file's path>.json, so
// gc keeps the entries of all of them.
type runRecord struct {
	Pipeline string                     `json:"pipeline"` // absolute path of the pipeline file
	Stages   map[string]uptodate.Record `json:"stages"`
	// Artifacts are the sources of the artifacts written, whose stored
	// copies `cache gc` keeps.
	Artifacts []cache.Key `json:"artifacts,omitempty"`
}

func runsDir(cacheDir string) string { return filepath.Join(cacheDir, "state", "runs") }

// latestRunPath is a copy of the latest run's record, whatever the
// pipeline: a pipeline file that never ran on the cache (an edited copy)
// is explained against it. Older kneepipe kept only this one.
func latestRunPath(cacheDir string) string { return filepath.Join(cacheDir, "state", "last-run.json") }

// pipelineID is how a pipeline file is named in the cache's state.
func pipelineID(file string) string {
	if abs, err := filepath.Abs(file); err == nil {
		file = abs
	}
	return file
}

func runRecordPath(cacheDir, pipeline string) string {
	var h cache.Hasher
	h.Add("pipeline", pipeline)
	return filepath.Join(runsDir(cacheDir), string(h.Key()[:16])+".json")
}

// readRunRecord reads the record of the pipeline's latest run, or when it
// never ran on the cache, of the latest run; nil when there is none.
func readRunRecord(cacheDir, pipeline string) (*runRecord, error) {
	r, err := readRecordFile(runRecordPath(cacheDir, pipeline))
	if errors.Is(err, fs.ErrNotExist) {
		r, err = readRecordFile(latestRunPath(cacheDir))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return r, err
}

func readRecordFile(path string) (*runRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r runRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// readAllRunRecords reads the record of every pipeline that ran on the
// cache (and the latest run's copy, which older kneepipe kept alone).
func readAllRunRecords(cacheDir string) ([]*runRecord, error) {
	paths, err := filepath.Glob(filepath.Join(runsDir(cacheDir), "*.json"))
	if err != nil {
		return nil, err
	}
	paths = append(paths, latestRunPath(cacheDir))
	var out []*runRecord
	for _, p := range paths {
		r, err := readRecordFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// remember records this run for the next plan and `cache gc`: every stage
// that ended with an output key.
func (x *execution) remember() error {
	r := runRecord{Pipeline: x.pipeline, Stages: map[string]uptodate.Record{}, Artifacts: x.artifactSources}
	for name, sr := range x.runs {
		if sr.key != "" && sr.err == nil {
			r.Stages[name] = sr.record()
		}
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	path := runRecordPath(x.opts.CacheDir, x.pipeline)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(path, data); err != nil {
		return err
	}
	return atomicfile.WriteBytes(latestRunPath(x.opts.CacheDir), data)
}

// ErrNotCache means `cache gc` was pointed at a directory kneepipe did not
// make.
var ErrNotCache = errors.New("not a kneepipe cache")

// GC removes the cache entries, stored artifacts and export shards that
// the latest run of no pipeline sharing the cache references. It touches nothing, and makes
// no lock file, in a directory that is not a cache.
func GC(ctx context.Context, cacheDir string, wait time.Duration, log *slog.Logger) (cache.Removed, error) {
	if err := checkIsCache(cacheDir); err != nil {
		return cache.Removed{}, err
	}
	unlock, err := lockCache(ctx, cacheDir, time.Now().Add(wait), log)
	if err != nil {
		return cache.Removed{}, err
	}
	defer unlock()
	records, err := readAllRunRecords(cacheDir)
	if err != nil {
		return cache.Removed{}, err
	}
	if len(records) == 0 {
		return cache.Removed{}, errors.New("no run recorded in this cache yet: nothing to compare against")
	}
	entries := map[cache.Key]bool{}
	artifacts := map[cache.Key]bool{}
	for _, r := range records {
		for _, s := range r.Stages {
			entries[s.Key] = true
		}
		for _, k := range r.Artifacts {
			artifacts[k] = true
		}
	}
	store := cache.Store{Root: cacheDir}
	removed, err := store.GC(entries, artifacts)
	if err != nil {
		return removed, err
	}
	removed.StoredFiles, err = gcExportFiles(ctx, store, records, log)
	return removed, err
}

// exportKind is the kind whose state holds stored files: its shards, in
// state/export-<hash>/<stages.ExportFilesDir>/<sha256>, listed by SHA-256
// in its cached output.
const exportKind = "export"

// gcExportFiles removes the export shards that no recorded export
// stage's cached output lists, and leftovers of interrupted writes. An
// entry that cannot be read keeps every shard: gc never removes what it
// cannot prove unused.
func gcExportFiles(ctx context.Context, store cache.Store, records []*runRecord, log *slog.Logger) (int, error) {
	dirs, err := filepath.Glob(filepath.Join(store.Root, "state", exportKind+"-*", stages.ExportFilesDir))
	if err != nil || len(dirs) == 0 {
		return 0, err
	}
	keep := map[string]bool{}
	for _, r := range records {
		for name, s := range r.Stages {
			if s.Kind != exportKind {
				continue
			}
			if err := exportedSums(ctx, store, s.Key, keep); err != nil {
				log.Warn("cache gc: export files kept", "stage", name, "err", err)
				return 0, nil
			}
		}
	}
	removed := 0
	for _, dir := range dirs {
		des, err := os.ReadDir(dir)
		if err != nil {
			return removed, err
		}
		for _, d := range des {
			if keep[d.Name()] {
				continue
			}
			if err := os.Remove(filepath.Join(dir, d.Name())); err != nil {
				return removed, err
			}
			removed++
		}
	}
	return removed, nil
}

// exportedSums adds the SHA-256 of every file an export entry lists.
func exportedSums(ctx context.Context, store cache.Store, k cache.Key, keep map[string]bool) error {
	e, err := store.Lookup(k)
	if err != nil {
		return err
	}
	if recordedOnly(e) { // `cache: never`: which shards it wrote is not stored
		return fmt.Errorf("cache entry %s records its outputs without storing them", k)
	}
	outs, err := loadEntry(ctx, memory.NewGoAllocator(), e)
	if err != nil {
		return err
	}
	defer releaseAll(outs)
	for _, rec := range outs {
		sums, err := table.StringCol(rec, "sha256")
		if err != nil {
			return fmt.Errorf("cache entry %s: %w", k, err)
		}
		for i := range sums.Len() {
			keep[sums.Value(i)] = true
		}
	}
	return nil
}

// checkIsCache accepts a directory holding what a run leaves in a cache:
// its lock file, entries or state.
func checkIsCache(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: no such directory: %w", dir, ErrNotCache)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory: %w", dir, ErrNotCache)
	}
	for _, name := range []string{"lock", "entries", "state"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%s holds no lock, entries or state: %w (nothing removed)", strings.TrimSuffix(dir, "/"), ErrNotCache)
}
