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
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
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
	last, err := readLastRun(opts.CacheDir)
	if err != nil {
		opts.Log.Warn("previous run record unreadable; plans will say less", "err", err)
	}
	force := map[string]bool{}
	for _, f := range opts.Force {
		force[f] = true
	}
	x.checker = func(st *Stage) uptodate.Checker {
		var c uptodate.Checker = uptodate.Fingerprint{Store: x.store, Last: last}
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
		rep.Artifacts, runErr = x.writeArtifacts()
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

func saveEntry(store cache.Store, sr *stageRun) error {
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

// lastRun is <cache>/state/last-run.json: what the latest run computed,
// for the next plan's explanations and for `cache gc`.
type lastRun struct {
	Stages map[string]uptodate.Record `json:"stages"`
}

func lastRunPath(cacheDir string) string {
	return filepath.Join(cacheDir, "state", "last-run.json")
}

func readLastRun(cacheDir string) (map[string]uptodate.Record, error) {
	data, err := os.ReadFile(lastRunPath(cacheDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var lr lastRun
	if err := json.Unmarshal(data, &lr); err != nil {
		return nil, fmt.Errorf("%s: %w", lastRunPath(cacheDir), err)
	}
	return lr.Stages, nil
}

func (x *execution) writeLastRun() error {
	lr := lastRun{Stages: map[string]uptodate.Record{}}
	for name, sr := range x.runs {
		if sr.key != "" && !sr.failed {
			lr.Stages[name] = sr.record
		}
	}
	data, err := json.MarshalIndent(lr, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(lastRunPath(x.opts.CacheDir)), 0o755); err != nil {
		return err
	}
	return cache.WriteFileAtomic(lastRunPath(x.opts.CacheDir), data)
}

// GC removes cache entries the latest run does not reference.
func GC(cacheDir string, wait time.Duration) (int, error) {
	unlock, err := lockCache(cacheDir, wait)
	if err != nil {
		return 0, err
	}
	defer unlock()
	last, err := readLastRun(cacheDir)
	if err != nil {
		return 0, err
	}
	if last == nil {
		return 0, errors.New("no run recorded in this cache yet: nothing to compare against")
	}
	keep := map[cache.Key]bool{}
	for _, r := range last {
		keep[r.Key] = true
	}
	return cache.Store{Root: cacheDir}.GC(keep)
}

// writeArtifacts writes every artifact to a temporary file first and
// renames them all only when every one was written: a failed run leaves
// the previous artifacts as they were. An artifact whose source (stage
// output and artifact settings) is what last wrote the files now in --out,
// with the same checksums, is left alone: a no-op run neither reads its
// stage output nor rewrites it, and the files keep their modification time.
func (x *execution) writeArtifacts() ([]string, error) {
	recordPath := x.artifactRecordPath()
	prev := readArtifactRecord(recordPath)
	next := artifactRecord{}
	var staged []stagedFile
	var names []string
	cleanup := func() {
		for _, p := range staged {
			os.Remove(p.tmp)
		}
	}
	for _, a := range x.cfg.Artifacts {
		source := x.artifactSource(a)
		if old, ok := prev[a.Name]; ok && old.Source == source && x.unchanged(old.Files) {
			next[a.Name] = old
			names = append(names, slices.Collect(maps.Keys(old.Files))...)
			continue
		}
		rec, err := x.runs[a.From.Stage].output(context.Background(), x.env.Mem, a.From.Output)
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("artifact %s: %w", a.Name, err)
		}
		files, release, err := artifactFiles(a, rec)
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("artifact %s: %w", a.Name, err)
		}
		written := writtenArtifact{Source: source, Files: map[string]string{}}
		for _, f := range files {
			dst := filepath.Join(x.opts.OutDir, f.name)
			tmp := dst + ".tmp-kneepipe"
			err := os.MkdirAll(filepath.Dir(dst), 0o755)
			var sum string
			if err == nil {
				sum, err = writeSynced(tmp, f.write)
			}
			if err != nil {
				release()
				cleanup()
				return nil, fmt.Errorf("artifact %s: %w", f.name, err)
			}
			staged = append(staged, stagedFile{tmp, dst})
			written.Files[filepath.ToSlash(f.name)] = sum
		}
		release()
		next[a.Name] = written
	}
	for _, p := range staged {
		if err := os.Rename(p.tmp, p.dst); err != nil {
			cleanup()
			return nil, err
		}
		rel, _ := filepath.Rel(x.opts.OutDir, p.dst)
		names = append(names, filepath.ToSlash(rel))
	}
	if err := writeArtifactRecord(recordPath, next); err != nil {
		x.opts.Log.Warn("could not record the artifacts written; the next run rewrites them", "err", err)
	}
	sort.Strings(names)
	return names, nil
}

// artifactRecord remembers, per artifact, what produced the files in --out
// and their SHA-256, in the cache's state (one record per --out folder).
type artifactRecord map[string]writtenArtifact

type writtenArtifact struct {
	Source string            `json:"source"`
	Files  map[string]string `json:"files"` // path under --out -> sha256
}

func (x *execution) artifactRecordPath() string {
	abs, err := filepath.Abs(x.opts.OutDir)
	if err != nil {
		abs = x.opts.OutDir
	}
	var h cache.Hasher
	h.Add("out", abs)
	return filepath.Join(x.opts.CacheDir, "state", "artifacts-"+string(h.Key()[:16])+".json")
}

// artifactSource identifies what an artifact's files are made from.
func (x *execution) artifactSource(a *Artifact) string {
	var h cache.Hasher
	h.Add("output", string(x.runs[a.From.Stage].key)+"/"+a.From.Output).
		Add("name", a.Name).
		Add("formats", strings.Join(a.Formats, ",")).
		Add("columns", strings.Join(a.Columns, ","))
	for _, k := range slices.Sorted(maps.Keys(a.Rename)) {
		h.Add("rename:"+k, a.Rename[k])
	}
	return string(h.Key())
}

// unchanged says whether every file is in --out with the recorded SHA-256.
func (x *execution) unchanged(files map[string]string) bool {
	for name, sum := range files {
		got, err := cache.FileSHA256(filepath.Join(x.opts.OutDir, filepath.FromSlash(name)))
		if err != nil || got != sum {
			return false
		}
	}
	return len(files) > 0
}

func readArtifactRecord(path string) artifactRecord {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var r artifactRecord
	if json.Unmarshal(data, &r) != nil {
		return nil
	}
	return r
}

func writeArtifactRecord(path string, r artifactRecord) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return cache.WriteFileAtomic(path, data)
}

type stagedFile struct{ tmp, dst string }

type artifactFile struct {
	name  string // relative to --out
	write func(io.Writer) error
}

// artifactFiles lists the files one artifact writes. CSV and Parquet hold
// the selected columns; "files" writes each row of a (name, content) table
// as a file in the artifact's folder.
func artifactFiles(a *Artifact, rec arrow.RecordBatch) ([]artifactFile, func(), error) {
	if len(a.Formats) == 1 && a.Formats[0] == "files" {
		names, err := table.StringCol(rec, "name")
		if err != nil {
			return nil, nil, err
		}
		ci, err := table.Index(rec, "content")
		if err != nil {
			return nil, nil, err
		}
		content, ok := rec.Column(ci).(*array.Binary)
		if !ok {
			return nil, nil, fmt.Errorf("column content is %s, want binary", rec.Column(ci).DataType())
		}
		var out []artifactFile
		for i := range names.Len() {
			name := filepath.Join(a.Name, filepath.FromSlash(names.Value(i)))
			if !filepath.IsLocal(name) {
				return nil, nil, fmt.Errorf("file name %q leaves the output folder", names.Value(i))
			}
			data := content.Value(i)
			out = append(out, artifactFile{name, func(w io.Writer) error { _, err := w.Write(data); return err }})
		}
		return out, func() {}, nil
	}
	sel, err := table.Select(rec, a.Columns, a.Rename)
	if err != nil {
		return nil, nil, err
	}
	var out []artifactFile
	for i, f := range a.Formats {
		write := func(w io.Writer) error { return table.WriteParquet(w, sel) }
		if f == "csv" {
			write = func(w io.Writer) error { return table.WriteCSV(w, sel) }
		}
		out = append(out, artifactFile{a.Files()[i], write})
	}
	return out, sel.Release, nil
}

// writeSynced writes path through write, syncs it, and returns the
// content's SHA-256.
func writeSynced(path string, write func(io.Writer) error) (string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if err := write(io.MultiWriter(f, h)); err != nil {
		f.Close()
		os.Remove(path)
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
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
