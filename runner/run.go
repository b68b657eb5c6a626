package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/source"
	"github.com/kneepipe/kneepipe/internal/table"
	"github.com/kneepipe/kneepipe/runner/cache"
	"github.com/kneepipe/kneepipe/runner/uptodate"
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
	// Force names stages to recompute; "*" recomputes all.
	Force []string
	// Wait is how long to wait for another run's cache lock.
	Wait time.Duration
}

// Stage statuses in run.json and plans.
const (
	StatusOK       = "ok"
	StatusCached   = "cached"
	StatusFailed   = "failed"
	StatusSkipped  = "skipped" // an input failed
	StatusWouldRun = "would run"
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
	// ArtifactStatus says per artifact how its files got into --out:
	// written (rendered from a stage output), copied (from the cache's
	// copy of identical bytes) or unchanged (already there).
	ArtifactStatus map[string]string `json:"artifact_status,omitempty"`
	Error          string            `json:"error,omitempty"`
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
	Why         string           `json:"why,omitempty"`
	RowsIn      int64            `json:"rows_in"`
	RowsOut     int64            `json:"rows_out"`
	Outputs     map[string]int64 `json:"outputs,omitempty"`
	Counts      map[string]int64 `json:"counts,omitempty"`
	Seconds     float64          `json:"seconds"`
	Fingerprint string           `json:"fingerprint,omitempty"`
	Error       string           `json:"error,omitempty"`
}

// ErrObjectsFailed marks a run that finished but could not fetch some
// objects; the CLI maps it to its own exit code.
var ErrObjectsFailed = errors.New("some objects failed")

// execution is one run (or plan) of a pipeline.
type execution struct {
	cfg     *Config
	opts    Options
	env     *stages.Env
	store   cache.Store
	checker func(*Stage) uptodate.Checker
	dry     bool // plan: run only volatile stages, decide the rest
	writes  sync.WaitGroup
	runs    map[string]*stageRun
	// artifactSources are the sources of the artifacts written, in order.
	artifactSources []cache.Key
}

type stageRun struct {
	st      *Stage
	report  *StageReport
	done    chan struct{}
	key     cache.Key
	counts  map[string]int64
	record  uptodate.Record
	failed  bool
	pending bool // dry run: would run, outputs unknown

	// A computed stage sets outputs; a cached one sets entry, and its
	// outputs are read on first use, so that a no-op run reads only what
	// an artifact or a recomputed stage needs.
	outputs  map[string]arrow.RecordBatch
	entry    *cache.Entry
	loadOnce sync.Once
	loadErr  error
}

// output returns one of the stage's outputs, reading a cached entry the
// first time one is asked for.
func (sr *stageRun) output(ctx context.Context, mem memory.Allocator, name string) (arrow.RecordBatch, error) {
	if sr.entry != nil {
		sr.loadOnce.Do(func() {
			sr.outputs, sr.loadErr = loadEntry(ctx, mem, sr.entry)
			if sr.loadErr != nil {
				sr.loadErr = fmt.Errorf("stage %s: load cached outputs: %w", sr.st.Name, sr.loadErr)
			}
		})
	}
	if sr.loadErr != nil {
		return nil, sr.loadErr
	}
	rec, ok := sr.outputs[name]
	if !ok {
		return nil, fmt.Errorf("stage %s has no output %q", sr.st.Name, name)
	}
	return rec, nil
}

// Run executes the pipeline: independent stages concurrently, each stage
// taken from the cache when up to date or computed and cached as Parquet,
// then the artifacts and run.json written into opts.OutDir.
func Run(ctx context.Context, cfg *Config, opts Options) (*Report, error) {
	return execute(ctx, cfg, opts, false)
}

// Plan says which stages a run would compute and why, without computing
// them: it runs only the stages that read the source (one listing, no
// downloads) and checks the cache for the rest. It writes nothing.
func Plan(ctx context.Context, cfg *Config, opts Options) (*Report, error) {
	return execute(ctx, cfg, opts, true)
}

func execute(ctx context.Context, cfg *Config, opts Options, dry bool) (*Report, error) {
	start := time.Now()
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Progress == nil {
		opts.Progress = func(string, int) stages.Progress { return nopProgress{} }
	}
	order, err := Order(cfg.Stages)
	if err != nil {
		return nil, err
	}
	unlock, err := lockCache(opts.CacheDir, opts.Wait)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !dry {
		if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
			return nil, fmt.Errorf("out dir: %w", err)
		}
	}
	x := &execution{cfg: cfg, opts: opts, dry: dry, store: cache.Store{Root: opts.CacheDir}, runs: map[string]*stageRun{}}
	x.env = &stages.Env{Mem: memory.NewGoAllocator(), Log: opts.Log, Progress: opts.Progress}
	if needsSource(order) {
		src := cfg.Source
		src.Connections = maxConcurrency(order)
		if x.env.Store, err = source.Open(ctx, src, opts.Lookup); err != nil {
			return nil, err
		}
	}
	var lastStages map[string]uptodate.Record
	if last, err := readLastRun(opts.CacheDir); err != nil {
		opts.Log.Warn("previous run record unreadable; plans will say less", "err", err)
	} else if last != nil {
		lastStages = last.Stages
	}
	force := map[string]bool{}
	for _, f := range opts.Force {
		force[f] = true
	}
	x.checker = func(st *Stage) uptodate.Checker {
		var c uptodate.Checker = uptodate.Fingerprint{Store: x.store, Last: lastStages}
		if st.Kind.Volatile {
			c = uptodate.Always{}
		}
		return uptodate.Force{Stages: force, Next: c}
	}

	rep := &Report{Pipeline: cfg.File, Source: cfg.Source.URI, Artifacts: []string{}}
	for _, st := range order {
		sr := &stageRun{st: st, done: make(chan struct{}), report: &StageReport{Name: st.Name, Kind: st.Kind.Name}}
		x.runs[st.Name] = sr
		rep.Stages = append(rep.Stages, sr.report)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, st := range order {
		sr := x.runs[st.Name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(sr.done)
			if err := x.stage(ctx, sr); err != nil {
				sr.failed = true
				if sr.report.Status == "" {
					sr.report.Status = StatusFailed
					sr.report.Error = err.Error()
					opts.Log.Error("stage failed", "stage", st.Name, "err", err)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	x.writes.Wait()
	defer x.release()

	var runErr error
	for _, st := range order {
		sr := x.runs[st.Name]
		if sr.report.Status == StatusFailed && runErr == nil {
			runErr = fmt.Errorf("stage %s: %s", st.Name, sr.report.Error)
		}
		rep.Objects.Listed += sr.counts["listed"]
		rep.Objects.Accepted += sr.counts["accepted"]
		rep.Objects.Rejected += sr.counts["rejected"]
		rep.Objects.Failed += sr.counts["failed"]
	}
	if runErr == nil && ctx.Err() != nil {
		runErr = ctx.Err()
	}
	if dry {
		rep.Seconds = time.Since(start).Seconds()
		return rep, runErr
	}
	if runErr == nil {
		rep.Artifacts, rep.ArtifactStatus, runErr = x.writeArtifacts()
	}
	if err := x.writeLastRun(); err != nil {
		opts.Log.Warn("could not record this run for the next plan", "err", err)
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

func (x *execution) release() {
	for _, sr := range x.runs {
		for _, rec := range sr.outputs {
			rec.Release()
		}
	}
}

// stage waits for the stage's inputs, asks its checker whether it is up to
// date, and takes its outputs from the cache or computes and caches them.
func (x *execution) stage(ctx context.Context, sr *stageRun) error {
	st := sr.st
	in := map[string]arrow.RecordBatch{}
	desc := uptodate.Stage{
		Name: st.Name, Kind: st.Kind.Name, Params: st.Params.Fingerprinted(),
		Inputs: map[string]cache.Key{}, Volatile: st.Kind.Volatile,
	}
	if st.Kind.Source {
		desc.Source = x.cfg.Source.URI + " " + x.cfg.Source.Endpoint
	}
	pending := false
	for _, port := range slices.Sorted(maps.Keys(st.Inputs)) {
		ref := st.Inputs[port]
		up := x.runs[ref.Stage]
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
		pending = pending || up.pending
		sr.report.RowsIn += up.report.Outputs[ref.Output]
		desc.Inputs[port] = up.key + cache.Key("/"+ref.Output)
	}
	start := time.Now()
	defer func() { sr.report.Seconds = time.Since(start).Seconds() }()
	log := x.opts.Log.With("stage", st.Name)

	d := x.checker(st).Check(desc)
	if d.Damaged != nil {
		log.Warn("cache entry damaged; recomputing the stage", "err", d.Damaged)
	}
	sr.key = d.Key
	sr.report.Why = d.Why
	sr.record = uptodate.Record{Key: d.Key, Kind: st.Kind.Name, Params: desc.Params, Inputs: desc.Inputs}
	if !d.Run {
		sr.entry, sr.counts = d.Entry, d.Entry.Counts
		sr.report.Status = StatusCached
		sr.report.Fingerprint = string(sr.key)
		sr.report.Outputs = map[string]int64{}
		for name, f := range d.Entry.Outputs {
			sr.report.Outputs[name] = f.Rows
		}
		sr.report.RowsOut = sr.report.Outputs[st.Kind.Outputs[0].Name]
		sr.report.Counts = sr.counts
		log.Info("stage cached", "rows_out", sr.report.RowsOut)
		return nil
	}
	if x.dry && (!st.Kind.Volatile || pending) {
		sr.pending = true
		sr.report.Status = StatusWouldRun
		return nil
	}
	for _, port := range slices.Sorted(maps.Keys(st.Inputs)) {
		ref := st.Inputs[port]
		rec, err := x.runs[ref.Stage].output(ctx, x.env.Mem, ref.Output)
		if err != nil {
			return err
		}
		in[port] = rec
	}

	log.Info("stage started", "kind", st.Kind.Name, "rows_in", sr.report.RowsIn, "why", d.Why)
	env := *x.env
	env.StateDir = x.stateDir(desc)
	res, err := st.Impl.Run(ctx, &env, in)
	if err != nil {
		return err
	}
	for _, p := range st.Kind.Outputs {
		if res.Outputs[p.Name] == nil {
			return fmt.Errorf("kind %s produced no %q output", st.Kind.Name, p.Name)
		}
	}
	sr.outputs, sr.counts = res.Outputs, res.Counts
	partial := sr.counts["failed"] > 0
	if st.Kind.Volatile || partial {
		// Key what an outside read returned by its content, so the stages
		// after it hit the cache when the listing or file did not change.
		// A partial result (some objects failed) is keyed by content too:
		// the stages after it must not be cached under the keys a complete
		// result will have.
		sr.key = uptodate.ContentKey(d.Key, outputDigests(st.Kind, res.Outputs))
		sr.record.Key = sr.key
	}
	sr.report.Status = StatusOK
	sr.report.Fingerprint = string(sr.key)
	sr.report.Outputs, sr.report.RowsOut = rowCounts(st.Kind, res.Outputs)
	sr.report.Counts = sr.counts
	log.Info("stage done", "rows_out", sr.report.RowsOut, "seconds", time.Since(start).Seconds())
	if x.dry || partial {
		// A plan stores nothing; a stage with failed objects is not cached
		// so that the next run retries them.
		return nil
	}
	x.writes.Add(1)
	go func() {
		defer x.writes.Done()
		if err := saveEntry(x.store, sr); err != nil {
			log.Warn("could not cache stage output", "err", err)
		}
	}()
	return nil
}

// outputDigests fingerprints a stage's outputs by their content, hashing
// the Arrow IPC stream of each (a copy of the buffers, no encoding work).
func outputDigests(k stages.Kind, outs map[string]arrow.RecordBatch) map[string]string {
	digests := map[string]string{}
	for _, p := range k.Outputs {
		h := sha256.New()
		w := ipc.NewWriter(h, ipc.WithSchema(outs[p.Name].Schema()))
		err := w.Write(outs[p.Name])
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			// Unhashable output: a key no later run can match.
			digests[p.Name] = "unhashable: " + err.Error()
			continue
		}
		digests[p.Name] = hex.EncodeToString(h.Sum(nil))
	}
	return digests
}

// stateDir is where a stage keeps state between runs (fetch-hash's
// record of what it hashed), one per kind and source.
func (x *execution) stateDir(d uptodate.Stage) string {
	var h cache.Hasher
	h.Add("kind", d.Kind).Add("source", d.Source)
	return filepath.Join(x.opts.CacheDir, "state", d.Kind+"-"+string(h.Key()[:16]))
}

func rowCounts(k stages.Kind, outs map[string]arrow.RecordBatch) (map[string]int64, int64) {
	m := map[string]int64{}
	for name, rec := range outs {
		m[name] = rec.NumRows()
	}
	return m, m[k.Outputs[0].Name]
}

func loadEntry(ctx context.Context, mem memory.Allocator, e *cache.Entry) (map[string]arrow.RecordBatch, error) {
	outs := map[string]arrow.RecordBatch{}
	for name, p := range e.Paths {
		rec, err := table.ReadParquet(ctx, mem, p)
		if err != nil {
			for _, r := range outs {
				r.Release()
			}
			return nil, err
		}
		outs[name] = rec
	}
	return outs, nil
}

// saveEntry stores a computed stage's outputs, unless an intact entry is
// already there under its key (an unchanged listing is keyed by its
// content, so every rerun computes it again): Commit would keep that one
// anyway, and encoding the outputs is most of the work.
func saveEntry(store cache.Store, sr *stageRun) error {
	if _, err := store.Lookup(sr.key); err == nil {
		return nil
	}
	w, err := store.Create(sr.key, sr.st.Name, sr.st.Kind.Name)
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(sr.outputs)) {
		rec := sr.outputs[name]
		if err := w.Add(name, rec.NumRows(), func(out io.Writer) error { return table.WriteParquetFast(out, rec) }); err != nil {
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
