package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/source"
	"github.com/kneepipe/kneepipe/internal/table"
	"github.com/kneepipe/kneepipe/runner/cache"
	"github.com/kneepipe/kneepipe/stages"
)

// Options are the run's settings that are not part of the pipeline file.
type Options struct {
	OutDir   string
	CacheDir string
	Lookup   func(string) (string, bool) // environment, with .env behind it
	Log      *slog.Logger
	// Progress makes a progress reporter; nil reports nothing.
	Progress func(label string, total int) stages.Progress
}

// Stage statuses in run.json.
const (
	StatusOK      = "ok"
	StatusCached  = "cached"
	StatusFailed  = "failed"
	StatusSkipped = "skipped" // an input failed
)

// Report is run.json.
type Report struct {
	Pipeline  string         `json:"pipeline"`
	Source    string         `json:"source,omitempty"`
	Status    string         `json:"status"` // ok, partial (some objects failed), failed
	Seconds   float64        `json:"seconds"`
	Objects   ObjectCounts   `json:"objects"`
	Stages    []*StageReport `json:"stages"`
	Artifacts []string       `json:"artifacts"`
	Error     string         `json:"error,omitempty"`
}

// ObjectCounts accounts for every listed object.
type ObjectCounts struct {
	Listed   int64 `json:"listed"`
	Accepted int64 `json:"accepted"`
	Rejected int64 `json:"rejected"`
	Failed   int64 `json:"failed"`
}

// StageReport is one stage's line in run.json.
type StageReport struct {
	Name        string           `json:"name"`
	Kind        string           `json:"kind"`
	Status      string           `json:"status"`
	RowsIn      int64            `json:"rows_in"`
	RowsOut     int64            `json:"rows_out"`
	Outputs     map[string]int64 `json:"outputs,omitempty"`
	Seconds     float64          `json:"seconds"`
	Fingerprint string           `json:"fingerprint,omitempty"`
	Error       string           `json:"error,omitempty"`
}

// ErrObjectsFailed marks a run that finished but could not fetch some
// objects; the CLI maps it to its own exit code.
var ErrObjectsFailed = errors.New("some objects failed")

type stageRun struct {
	st      *Stage
	report  *StageReport
	done    chan struct{}
	outputs map[string]arrow.RecordBatch
	key     cache.Key
	counts  map[string]int64
	failed  bool
}

// Run executes the pipeline: independent stages concurrently, each stage
// output cached as Parquet under its fingerprint, then the artifacts and
// run.json written into opts.OutDir.
func Run(ctx context.Context, cfg *Config, opts Options) (*Report, error) {
	start := time.Now()
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(string, int) stages.Progress { return nopProgress{} }
	}
	order, err := Order(cfg.Stages)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("out dir: %w", err)
	}
	env := &stages.Env{Mem: memory.NewGoAllocator(), Log: log, Progress: progress}
	if needsSource(order) {
		src := cfg.Source
		src.Connections = maxConcurrency(order)
		if env.Store, err = source.Open(ctx, src, opts.Lookup); err != nil {
			return nil, err
		}
	}
	store := cache.Store{Root: opts.CacheDir}
	rep := &Report{Pipeline: cfg.File, Source: cfg.Source.URI, Artifacts: []string{}}

	runs := map[string]*stageRun{}
	for _, st := range order {
		sr := &stageRun{st: st, done: make(chan struct{}), report: &StageReport{Name: st.Name, Kind: st.Kind.Name}}
		runs[st.Name] = sr
		rep.Stages = append(rep.Stages, sr.report)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var writes sync.WaitGroup // background cache writes
	for _, st := range order {
		sr := runs[st.Name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(sr.done)
			if err := runStage(ctx, sr, runs, env, store, &writes, cfg); err != nil {
				sr.failed = true
				if sr.report.Status == "" {
					sr.report.Status = StatusFailed
					sr.report.Error = err.Error()
					log.Error("stage failed", "stage", st.Name, "err", err)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	writes.Wait()
	defer func() {
		for _, sr := range runs {
			for _, rec := range sr.outputs {
				rec.Release()
			}
		}
	}()

	var runErr error
	for _, st := range order {
		sr := runs[st.Name]
		if sr.report.Status == StatusFailed && runErr == nil {
			runErr = fmt.Errorf("stage %s: %s", st.Name, sr.report.Error)
		}
		rep.Objects.Listed += sr.counts["listed"]
		rep.Objects.Accepted += sr.counts["accepted"]
		rep.Objects.Rejected += sr.counts["rejected"]
		rep.Objects.Failed += sr.counts["failed"]
	}
	if runErr == nil {
		if ctx.Err() != nil {
			runErr = ctx.Err()
		} else {
			rep.Artifacts, runErr = writeArtifacts(cfg, runs, opts.OutDir)
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	switch {
	case runErr != nil:
		rep.Status = "failed"
		rep.Error = runErr.Error()
	case rep.Objects.Failed > 0:
		rep.Status = "partial"
		runErr = fmt.Errorf("%w: %d of %d could not be fetched (see the fetch stage's failed output)", ErrObjectsFailed, rep.Objects.Failed, rep.Objects.Listed)
	default:
		rep.Status = "ok"
	}
	if err := writeReport(filepath.Join(opts.OutDir, "run.json"), rep); err != nil && runErr == nil {
		runErr = err
	}
	return rep, runErr
}

// runStage waits for the stage's inputs, then takes its outputs from the
// cache or computes and caches them.
func runStage(ctx context.Context, sr *stageRun, runs map[string]*stageRun, env *stages.Env, store cache.Store, writes *sync.WaitGroup, cfg *Config) error {
	in := map[string]arrow.RecordBatch{}
	var fp cache.Hasher
	fp.Add("kind", sr.st.Kind.Name).Add("params", string(sr.st.Params.Canonical()))
	if sr.st.Kind.Source {
		fp.Add("source", cfg.Source.URI).Add("endpoint", cfg.Source.Endpoint)
	}
	for _, port := range sortedKeys(sr.st.Inputs) {
		ref := sr.st.Inputs[port]
		up := runs[ref.Stage]
		select {
		case <-up.done:
		case <-ctx.Done():
			sr.report.Status = StatusSkipped
			return ctx.Err()
		}
		if up.failed {
			sr.report.Status = StatusSkipped
			sr.report.Error = "input " + ref.String() + " failed"
			return errors.New(sr.report.Error)
		}
		rec := up.outputs[ref.Output]
		in[port] = rec
		sr.report.RowsIn += rec.NumRows()
		fp.Add("input:"+port, string(up.key)+"/"+ref.Output)
	}
	start := time.Now()
	defer func() { sr.report.Seconds = time.Since(start).Seconds() }()
	log := env.Log.With("stage", sr.st.Name)

	// A stage that reads the outside world always runs; the others are
	// taken from the cache when their fingerprint matches.
	volatile := sr.st.Kind.Volatile
	if !volatile {
		sr.key = fp.Key()
		outs, counts, err := loadCached(ctx, env.Mem, store, sr.key)
		switch {
		case err == nil:
			sr.outputs, sr.counts = outs, counts
			sr.report.Status = StatusCached
			sr.report.Fingerprint = string(sr.key)
			sr.report.Outputs, sr.report.RowsOut = rowCounts(sr.st.Kind, outs)
			log.Info("stage cached", "rows_out", sr.report.RowsOut)
			return nil
		case !errors.Is(err, cache.ErrMiss):
			log.Warn("cache entry unusable, recomputing", "err", err)
		}
	}

	log.Info("stage started", "kind", sr.st.Kind.Name, "rows_in", sr.report.RowsIn)
	res, err := sr.st.Impl.Run(ctx, env, in)
	if err != nil {
		return err
	}
	for _, p := range sr.st.Kind.Outputs {
		if res.Outputs[p.Name] == nil {
			return fmt.Errorf("kind %s produced no %q output", sr.st.Kind.Name, p.Name)
		}
	}
	sr.outputs, sr.counts = res.Outputs, res.Counts
	if volatile {
		// Fingerprint by content, so downstream stages hit the cache when
		// the listing or file did not change.
		var buf bytes.Buffer
		for _, p := range sr.st.Kind.Outputs {
			buf.Reset()
			if err := table.WriteParquet(&buf, res.Outputs[p.Name]); err != nil {
				return err
			}
			fp.Add("content:"+p.Name, cache.Digest(buf.Bytes()))
		}
		sr.key = fp.Key()
	}
	sr.report.Status = StatusOK
	sr.report.Fingerprint = string(sr.key)
	sr.report.Outputs, sr.report.RowsOut = rowCounts(sr.st.Kind, res.Outputs)
	log.Info("stage done", "rows_out", sr.report.RowsOut, "seconds", time.Since(start).Seconds())

	if sr.counts["failed"] > 0 {
		// Not cached: the next run must retry the objects that failed.
		return nil
	}
	writes.Add(1)
	go func() {
		defer writes.Done()
		if err := saveCached(store, sr); err != nil {
			log.Warn("could not cache stage output", "err", err)
		}
	}()
	return nil
}

func rowCounts(k stages.Kind, outs map[string]arrow.RecordBatch) (map[string]int64, int64) {
	m := map[string]int64{}
	for name, rec := range outs {
		m[name] = rec.NumRows()
	}
	return m, m[k.Outputs[0].Name]
}

func loadCached(ctx context.Context, mem memory.Allocator, store cache.Store, key cache.Key) (map[string]arrow.RecordBatch, map[string]int64, error) {
	m, paths, err := store.Lookup(key)
	if err != nil {
		return nil, nil, err
	}
	outs := map[string]arrow.RecordBatch{}
	for name, p := range paths {
		rec, err := table.ReadParquet(ctx, mem, p)
		if err != nil {
			for _, r := range outs {
				r.Release()
			}
			return nil, nil, err
		}
		outs[name] = rec
	}
	return outs, m.Counts, nil
}

func saveCached(store cache.Store, sr *stageRun) error {
	w, err := store.Create(sr.key, sr.st.Name, sr.st.Kind.Name)
	if err != nil {
		return err
	}
	for _, name := range sortedKeys(sr.outputs) {
		rec := sr.outputs[name]
		if err := w.Add(name, rec.NumRows(), func(out io.Writer) error { return table.WriteParquet(out, rec) }); err != nil {
			w.Abort()
			return err
		}
	}
	if err := w.Commit(sr.counts); err != nil {
		w.Abort()
		return err
	}
	return nil
}

// writeArtifacts writes every artifact to a temporary file first and
// renames them all only when every one was written: a failed run leaves
// the previous artifacts as they were.
func writeArtifacts(cfg *Config, runs map[string]*stageRun, outDir string) ([]string, error) {
	type pending struct{ tmp, dst string }
	var done []pending
	cleanup := func() {
		for _, p := range done {
			os.Remove(p.tmp)
		}
	}
	for _, a := range cfg.Artifacts {
		rec := runs[a.From.Stage].outputs[a.From.Output]
		sel, err := table.Select(rec, a.Columns, a.Rename)
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("artifact %s: %w", a.Name, err)
		}
		for i, f := range a.Formats {
			dst := filepath.Join(outDir, a.Files()[i])
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				sel.Release()
				cleanup()
				return nil, err
			}
			tmp := dst + ".tmp-kneepipe"
			err := writeSynced(tmp, func(w io.Writer) error {
				if f == "csv" {
					return table.WriteCSV(w, sel)
				}
				return table.WriteParquet(w, sel)
			})
			if err != nil {
				sel.Release()
				cleanup()
				return nil, fmt.Errorf("artifact %s: %w", a.Files()[i], err)
			}
			done = append(done, pending{tmp, dst})
		}
		sel.Release()
	}
	var names []string
	for _, p := range done {
		if err := os.Rename(p.tmp, p.dst); err != nil {
			cleanup()
			return nil, err
		}
		rel, _ := filepath.Rel(outDir, p.dst)
		names = append(names, filepath.ToSlash(rel))
	}
	sort.Strings(names)
	return names, nil
}

func writeSynced(path string, write func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

func writeReport(path string, rep *Report) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return cache.WriteFileAtomic(path, append(data, '\n'))
}

func needsSource(list []*Stage) bool {
	for _, st := range list {
		if st.Kind.Source {
			return true
		}
	}
	return false
}

// maxConcurrency sizes the HTTP pool for the busiest stage.
func maxConcurrency(list []*Stage) int {
	n := 16
	for _, st := range list {
		if st.Kind.Name == "fetch-hash" {
			n = max(n, int(st.Params.Int("concurrency")))
		}
	}
	return n
}

type nopProgress struct{}

func (nopProgress) Add(int) {}
func (nopProgress) Done()   {}
