package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/kneepipe/kneepipe/internal/safe"
	"github.com/kneepipe/kneepipe/runner/cache"
	"github.com/kneepipe/kneepipe/runner/uptodate"
	"github.com/kneepipe/kneepipe/stages"
)

// stageRun is one stage in one run. The stage's own goroutine sets the
// fields below done before it closes done; everyone else reads them after.
// The stage's status is derived from them (see status), never kept apart.
type stageRun struct {
	st   *Stage
	outs *outputs
	done chan struct{}

	desc    uptodate.Stage // what the up-to-date decision looked at
	key     cache.Key      // cache key; by content for a volatile or partial result
	why     string
	entry   *cache.Entry // set when taken from the cache
	summary *summary     // set when computed or taken from the cache
	rowsIn  int64
	seconds float64
	// inputBytes is the size of the inputs a computed stage read, for its
	// cache policy.
	inputBytes int64
	// keepsInputs: taken from a recorded-only entry, the stage holds its
	// inputs until its outputs are released (see recompute.go).
	keepsInputs bool
	err         error
}

// summary is what run.json says of a stage's outputs, from a computation
// or from a cache entry's manifest.
type summary struct {
	Rows     map[string]int64 // rows per output
	Objects  stages.Objects
	Stats    map[string]int64
	Partial  bool
	Failures []stages.Failure
	Warnings []string
}

// skipError means the stage did not start: an input failed, or the run
// was ending.
type skipError struct{ cause error }

func (e skipError) Error() string { return "not run: " + e.cause.Error() }
func (e skipError) Unwrap() error { return e.cause }

func (sr *stageRun) status() string {
	var skip skipError
	switch {
	case errors.As(sr.err, &skip):
		return StatusSkipped
	case sr.err != nil:
		return StatusFailed
	case sr.entry != nil:
		return StatusCached
	case sr.summary == nil:
		return StatusWouldRun
	}
	return StatusOK
}

// record is what the next run's plan and `cache gc` need of this stage.
func (sr *stageRun) record() uptodate.Record {
	return uptodate.Record{Key: sr.key, Kind: sr.desc.Kind, Params: sr.desc.Params, Inputs: sr.desc.Inputs}
}

// runStage waits for the stage's inputs, then takes its outputs from the
// cache or computes them. It releases its hold on its inputs' outputs when
// it ends, whatever happened.
func (x *execution) runStage(ctx context.Context, sr *stageRun) {
	defer close(sr.done)
	defer collectAfter(sr) // after the holds are given back, before the next stages start
	defer sr.outs.done()   // the stage's own hold (see newOutputs)
	defer func() {
		if sr.keepsInputs {
			return
		}
		for _, ref := range sr.st.Inputs {
			x.runs[ref.Stage].outs.doneWith(ref.Output)
		}
	}()
	if sr.err = x.awaitInputs(ctx, sr); sr.err != nil {
		return
	}
	start := time.Now()
	sr.err = x.decideAndRun(ctx, sr)
	sr.seconds = time.Since(start).Seconds()
}

// bigInputs is the size of a computed stage's inputs from which its end
// starts a garbage collection (see collectAfter).
const bigInputs = 64 << 20

// collectAfter collects garbage when a stage that read big inputs has
// ended, before the stages after it start. Its working memory, and the
// inputs it was the last to read, are garbage then, but the heap goal
// still counts them as live (the last collection ran during the stage):
// the next stages could allocate as much again before any of it is
// reused. At 10M rows that was a fifth of the peak RSS, after cross-check.
// Arrow's buffers hold no pointers, so the collection costs little.
func collectAfter(sr *stageRun) {
	if sr.inputBytes >= bigInputs {
		runtime.GC()
	}
}

// awaitInputs waits for every upstream stage and describes this stage for
// the up-to-date decision.
func (x *execution) awaitInputs(ctx context.Context, sr *stageRun) error {
	st := sr.st
	sr.desc = uptodate.Stage{
		Name: st.Name, Kind: st.Kind.Name, Params: st.Params.Fingerprinted(),
		Inputs: map[string]cache.Key{}, Volatile: st.Kind.Volatile,
	}
	if st.Used != nil {
		// The columns kept are part of what the entry stores.
		sr.desc.Params[usedParam] = st.Used
	}
	if st.Kind.Source {
		sr.desc.Source = x.cfg.Source.URI + " " + x.cfg.Source.Endpoint
	}
	for _, port := range slices.Sorted(maps.Keys(st.Inputs)) {
		ref := st.Inputs[port]
		up := x.runs[ref.Stage]
		select {
		case <-up.done:
		case <-ctx.Done():
			return skipError{context.Cause(ctx)}
		}
		if up.err != nil {
			return skipError{fmt.Errorf("input %s failed", ref)}
		}
		if up.summary != nil {
			sr.rowsIn += up.summary.Rows[ref.Output]
		}
		sr.desc.Inputs[port] = up.key + cache.Key("/"+ref.Output)
	}
	return nil
}

// decideAndRun asks the stage's checker whether it is up to date and takes
// its outputs from the cache, or computes them (a plan computes only
// volatile stages whose inputs are known).
func (x *execution) decideAndRun(ctx context.Context, sr *stageRun) error {
	st := sr.st
	if g := x.opts.Given[st.Name]; g != nil {
		return x.useGiven(sr, g)
	}
	log := x.opts.Log.With("stage", st.Name)
	d := x.checker(st).Check(sr.desc)
	if d.Damaged != nil {
		log.Warn("cache entry damaged; recomputing the stage", "err", d.Damaged)
	}
	sr.key, sr.why = d.Key, d.Why
	if !d.Run {
		sr.entry, sr.summary = d.Entry, entrySummary(d.Entry, st.Kind.RunStats)
		sr.outs.fromEntry(d.Entry)
		sr.keepsInputs = x.recomputable(sr)
		log.Info("stage cached", "rows_out", sr.summary.Rows[st.Kind.Outputs[0].Name])
		return nil
	}
	if x.dry && (!st.Kind.Volatile || x.inputUnknown(sr)) {
		return nil // would run
	}
	in, err := x.inputRecords(ctx, st)
	if err != nil {
		return err
	}
	for _, rec := range in {
		sr.inputBytes += recordBytes(rec)
	}
	log.Info("stage started", "kind", st.Kind.Name, "rows_in", sr.rowsIn, "why", d.Why)
	start := time.Now()
	env := *x.env
	env.StateDir = x.stateDir(sr.desc)
	env.Forced = d.Forced
	env.Used = st.Used
	res, err := runImpl(ctx, st.Impl, &env, in, log)
	if err != nil {
		return err
	}
	narrow(st, res.Outputs)
	if err := checkOutputs(st.Kind, res); err != nil {
		releaseAll(res.Outputs)
		return err
	}
	sr.outs.set(res.Outputs)
	sr.summary = resultSummary(res)
	if st.Kind.Volatile || res.Partial {
		// Key what an outside read returned by its content, so the stages
		// after it hit the cache when the listing or file did not change.
		// A partial result (some objects failed) is keyed by content too:
		// the stages after it must not be cached under the keys a complete
		// result will have.
		sr.key = uptodate.ContentKey(d.Key, outputDigests(st.Kind, res.Outputs))
	}
	log.Info("stage done", "rows_out", sr.summary.Rows[st.Kind.Outputs[0].Name], "seconds", time.Since(start).Seconds())
	if !x.dry && !res.Partial {
		// A plan stores nothing; a partial result is not cached, so that
		// the next run retries the objects that failed.
		x.save(sr, log)
	}
	return nil
}

// runImpl runs the stage's code, turning a panic in it into the stage's
// error: one kind's bug fails its stage (exit 1, run.json written), not
// the process. A panic in a goroutine the stage started comes back as a
// *safe.PanicError in its error. The stack goes to the log for the bug
// report.
func runImpl(ctx context.Context, impl stages.Stage, env *stages.Env, in map[string]arrow.RecordBatch, log *slog.Logger) (res *stages.Result, err error) {
	if p := safe.Call(func() { res, err = impl.Run(ctx, env, in) }); p != nil {
		res, err = nil, p
	}
	if p, ok := errors.AsType[*safe.PanicError](err); ok {
		log.Error("stage panicked", "panic", fmt.Sprint(p.Value), "stack", string(p.Stack))
	}
	return res, err
}

// inputUnknown says whether a plan left an input uncomputed.
func (x *execution) inputUnknown(sr *stageRun) bool {
	for _, ref := range sr.st.Inputs {
		if x.runs[ref.Stage].summary == nil {
			return true
		}
	}
	return false
}

func checkOutputs(k stages.Kind, res *stages.Result) error {
	for _, p := range k.Outputs {
		if res.Outputs[p.Name] == nil {
			return fmt.Errorf("kind %s produced no %q output", k.Name, p.Name)
		}
	}
	return nil
}

func resultSummary(res *stages.Result) *summary {
	rows := map[string]int64{}
	for name, rec := range res.Outputs {
		rows[name] = rec.NumRows()
	}
	return &summary{Rows: rows, Objects: res.Objects, Stats: res.Stats, Partial: res.Partial, Failures: res.Failures, Warnings: res.Warnings}
}

// stateDir is where a stage keeps state between runs (fetch-hash's
// record of what it hashed), one per kind and source.
func (x *execution) stateDir(d uptodate.Stage) string {
	var h cache.Hasher
	h.Add("kind", d.Kind).Add("source", d.Source)
	return filepath.Join(x.opts.CacheDir, "state", d.Kind+"-"+string(h.Key()[:16]))
}

// usedParam keys a stage's Used among its fingerprinted parameters; no
// parameter has parentheses in its name.
const usedParam = "(columns used)"

// narrow drops the columns of each output that nobody downstream reads
// (st.Used), sharing the arrays of the rest.
func narrow(st *Stage, outs map[string]arrow.RecordBatch) {
	for name, cols := range st.Used {
		if rec, ok := outs[name]; ok && cols != nil {
			outs[name] = stages.UsedColumns(rec, cols)
			rec.Release()
		}
	}
}
