package runner

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/source"
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
	// Wait is how long to wait for another run's cache or --out lock.
	Wait time.Duration
	// Given supplies stages' outputs instead of computing them (see
	// Given); a sharded run's merge gives the listing and the parts.
	Given map[string]*Given
}

// execution is one run (or plan) of a pipeline. A run goes through its
// phases in one direction, each in its own file:
//
//	load     (this file)     locks, the source, the pipeline's previous run
//	plan     (this file)     one stageRun per stage, its consumers counted
//	execute  (schedule.go)   stages concurrently; step.go is one stage
//	publish  (artifacts.go)  the artifacts into --out, staged while the stages run
//	record   (this file, state.go)  run.json, and the record for the next run
type execution struct {
	cfg      *Config
	opts     Options
	dry      bool // plan: run only volatile stages, decide the rest
	start    time.Time
	deadline time.Time // for the locks
	pipeline string    // the pipeline file, as the cache's state names it
	order    []*Stage
	only     []string // RunStages: the stages to run; nil: all

	env     *stages.Env
	store   cache.Store
	checker func(*Stage) uptodate.Checker
	runs    map[string]*stageRun
	saves   sync.WaitGroup // cache writes in flight
	// runCtx is the run's context, which ends only on Ctrl-C (not when a
	// stage fails): cache writes outlive their stage and stop only then.
	runCtx context.Context
	unlock []func()

	// Set by publish.
	artifacts       []string
	artifactStatus  map[string]string
	artifactSources []cache.Key
}

// Run executes the pipeline: independent stages concurrently, each stage
// taken from the cache when up to date or computed and cached as Parquet,
// then the artifacts and run.json written into opts.OutDir. run.json is
// written whatever happens once --out is usable and this run's; the
// error returned is the one it records.
func Run(ctx context.Context, cfg *Config, opts Options) (*Report, error) {
	x := newExecution(cfg, opts, false)
	defer x.close()
	err := x.lockCache(ctx)
	outDeadline := x.deadline
	if err != nil {
		outDeadline = time.Now() // only to record the failure: do not wait
	}
	if oerr := x.lockOut(ctx, outDeadline); oerr != nil {
		// --out is unusable, or another run's: its run.json is not this
		// run's to replace.
		return nil, cmp.Or(err, oerr)
	}
	if err == nil {
		err = x.run(ctx)
	}
	return x.record(err)
}

// Plan says which stages a run would compute and why, without computing
// them: it runs only the stages that read the source (one listing, no
// downloads) and checks the cache for the rest. It writes nothing and
// takes no lock, so it works while a run holds the cache; what it reads
// is what that run had finished.
func Plan(ctx context.Context, cfg *Config, opts Options) (*Report, error) {
	x := newExecution(cfg, opts, true)
	defer x.close()
	err := x.run(ctx)
	rep := x.report(err)
	return rep, err
}

func newExecution(cfg *Config, opts Options, dry bool) *execution {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Progress == nil {
		opts.Progress = func(string, int) stages.Progress { return nopProgress{} }
	}
	now := time.Now()
	return &execution{
		cfg: cfg, opts: opts, dry: dry, start: now, deadline: now.Add(opts.Wait),
		pipeline: pipelineID(cfg.File), store: cache.Store{Root: opts.CacheDir},
		env: &stages.Env{Mem: memory.NewGoAllocator(), Log: opts.Log, Progress: opts.Progress, ImageCache: imageCacheDir(opts.CacheDir)},
	}
}

// imageCacheDir is the image cache every stage shares, by SHA-256: one
// for all kinds and sources, so that the images fetch-hash keeps are
// those export reads. `cache gc` leaves it alone (it holds no run's
// outputs, only bytes any run may ask for again).
func imageCacheDir(cacheDir string) string {
	if cacheDir == "" {
		return ""
	}
	return filepath.Join(cacheDir, "images")
}

// run goes through the phases after the locks: load, plan, execute,
// publish, and the record for the next run.
func (x *execution) run(ctx context.Context) error {
	if err := x.load(ctx); err != nil {
		return err
	}
	x.plan()
	if x.dry || x.only != nil {
		return x.execute(ctx) // a part of a run publishes and records nothing
	}
	arts := x.startArtifacts(ctx)
	err := x.execute(ctx)
	if err == nil {
		err = x.publish(arts)
	} else {
		arts.abandon()
	}
	if rerr := x.remember(); rerr != nil {
		x.opts.Log.Warn("could not record this run for the next plan", "err", rerr)
	}
	return err
}

func (x *execution) lockCache(ctx context.Context) error {
	unlock, err := lockCache(ctx, x.opts.CacheDir, x.deadline, x.opts.Log)
	if err == nil {
		x.unlock = append(x.unlock, unlock)
	}
	return err
}

func (x *execution) lockOut(ctx context.Context, deadline time.Time) error {
	unlock, err := lockOut(ctx, x.opts.OutDir, deadline, x.opts.Log)
	if err == nil {
		x.unlock = append(x.unlock, unlock)
	}
	return err
}

// load orders the stages, opens the source and reads the pipeline's
// previous run.
func (x *execution) load(ctx context.Context) error {
	order, err := Order(x.cfg.Stages)
	if err != nil {
		return err
	}
	for _, st := range order {
		if x.inPart(st.Name) {
			x.order = append(x.order, st)
		}
	}
	if needsSource(x.order) {
		src := x.cfg.Source
		src.Connections = connections(x.order)
		if x.env.Store, err = source.Open(ctx, src, x.opts.Lookup); err != nil {
			return err
		}
	}
	var lastStages map[string]uptodate.Record
	if last, err := readRunRecord(x.opts.CacheDir, x.pipeline); err != nil {
		x.opts.Log.Warn("previous run record unreadable; plans will say less", "err", err)
	} else if last != nil {
		lastStages = last.Stages
	}
	force := map[string]bool{}
	for _, f := range x.opts.Force {
		force[f] = true
	}
	x.checker = func(st *Stage) uptodate.Checker {
		var c uptodate.Checker = uptodate.Fingerprint{Store: x.store, Last: lastStages}
		if st.Kind.Volatile {
			c = uptodate.Always{}
		}
		return uptodate.Force{Stages: force, Next: c}
	}
	return nil
}

// plan makes one stageRun per stage, counting who reads each of its
// outputs: downstream inputs and, in a run, artifacts; RunStages' caller
// takes every output of its stages.
func (x *execution) plan() {
	readers := map[string]map[string]int{}
	read := func(ref Ref) {
		if readers[ref.Stage] == nil {
			readers[ref.Stage] = map[string]int{}
		}
		readers[ref.Stage][ref.Output]++
	}
	for _, st := range x.order {
		for _, ref := range st.Inputs {
			read(ref)
		}
	}
	if x.only == nil && !x.dry {
		for _, a := range x.cfg.Artifacts {
			read(a.From)
		}
	}
	x.runs = map[string]*stageRun{}
	for _, st := range x.order {
		whole := 1 // the stage's own hold
		if slices.Contains(x.only, st.Name) {
			whole++ // taken by RunStages' caller
		}
		x.runs[st.Name] = &stageRun{st: st, done: make(chan struct{}), outs: newOutputs(st.Name, whole, readers[st.Name])}
	}
}

// close waits for cache writes, releases what outputs are left and the
// locks.
func (x *execution) close() {
	x.saves.Wait()
	for _, sr := range x.runs {
		sr.outs.release()
	}
	for i := len(x.unlock) - 1; i >= 0; i-- {
		x.unlock[i]()
	}
	x.unlock = nil
}

// report is run.json for what the run did and the error it ends with.
func (x *execution) report(err error) *Report {
	rep := &Report{Pipeline: x.cfg.File, Source: x.cfg.Source.URI, Stages: []*StageReport{}, Failures: []Failure{}, Warnings: []Warning{},
		Artifacts: x.artifacts, ArtifactStatus: x.artifactStatus}
	if rep.Artifacts == nil {
		rep.Artifacts = []string{}
	}
	partial := false
	for _, st := range x.order {
		sr := x.runs[st.Name]
		if sr == nil {
			break // the run ended before its plan
		}
		rep.Stages = append(rep.Stages, sr.stageReport())
		if sr.summary == nil {
			continue
		}
		rep.Objects.add(sr.summary.Objects)
		partial = partial || sr.summary.Partial
		for _, w := range sr.summary.Warnings {
			rep.Warnings = append(rep.Warnings, Warning{Stage: st.Name, Message: w})
		}
		for _, f := range sr.summary.Failures {
			rep.Failures = append(rep.Failures, Failure{Stage: st.Name, Key: f.Key, Error: f.Err.Error(), Attempts: f.Attempts})
		}
	}
	rep.Seconds = time.Since(x.start).Seconds()
	switch {
	case err != nil:
		rep.Status, rep.Error = RunFailed, err.Error()
	case partial:
		rep.Status = RunPartial
	default:
		rep.Status = RunOK
	}
	return rep
}

// record writes run.json and returns the run's error: err, or for a run
// that finished without some objects, ErrObjectsFailed.
func (x *execution) record(err error) (*Report, error) {
	x.saves.Wait() // a stage's cache write belongs to the run's time
	rep := x.report(err)
	if rep.Status == RunPartial {
		err = fmt.Errorf("%w: %d of %d could not be fetched (listed under failures in run.json); the next run retries them", ErrObjectsFailed, rep.Objects.Failed, rep.Objects.Listed)
	}
	if werr := writeReport(filepath.Join(x.opts.OutDir, "run.json"), rep); werr != nil {
		err = cmp.Or(err, fmt.Errorf("run.json: %w", werr))
	}
	return rep, err
}

type nopProgress struct{}

func (nopProgress) Add(int) {}
func (nopProgress) Done()   {}
