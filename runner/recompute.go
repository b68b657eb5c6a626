package runner

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/table"
	"github.com/kneepipe/kneepipe/runner/cache"
	"github.com/kneepipe/kneepipe/runner/storepolicy"
)

// A stage's `cache:` policy (runner/storepolicy) may record its outputs
// without storing them. Such a stage is still up to date on a rerun; its
// outputs are computed again from its inputs only if something reads them
// (a recomputed downstream stage, an artifact not already in --out or the
// cache). So a no-op rerun recomputes nothing, and stores nothing big.

// storeOutputs writes the outputs into w, or only records them, as the
// stage's policy says.
func storeOutputs(ctx context.Context, w *cache.Writer, sr *stageRun) error {
	names := slices.Sorted(maps.Keys(sr.summary.Rows))
	recs := make([]arrow.RecordBatch, len(names))
	var bytes int64
	for i, name := range names {
		rec, err := sr.outs.get(ctx, nil, name)
		if err != nil {
			return err
		}
		recs[i] = rec
		bytes += recordBytes(rec)
	}
	st := sr.st
	if !st.policy().Store(storepolicy.Stage{Kind: st.Kind.Name, Volatile: st.Kind.Volatile, Source: st.Kind.Source, InBytes: sr.inputBytes, OutBytes: bytes}) {
		for i, name := range names {
			w.Record(name, recs[i].NumRows())
		}
		return nil
	}
	for i, name := range names {
		rec := recs[i]
		if err := w.Add(name, rec.NumRows(), func(out io.Writer) error { return table.WriteParquetFast(ctxWriter{ctx, out}, rec) }); err != nil {
			return err
		}
	}
	return nil
}

func (st *Stage) policy() storepolicy.Policy {
	if st.Cache == nil {
		return storepolicy.Auto{}
	}
	return st.Cache
}

// recordedOnly says whether a cache entry lacks the data of an output.
func recordedOnly(e *cache.Entry) bool {
	for name := range e.Outputs {
		if _, ok := e.Paths[name]; !ok {
			return true
		}
	}
	return false
}

// recomputable lets a stage taken from a recorded-only entry compute its
// outputs when they are first read. The stage then keeps its holds on its
// inputs until its own outputs are released (it reports true: runStage
// must not give them back).
func (x *execution) recomputable(sr *stageRun) bool {
	if !recordedOnly(sr.entry) {
		return false
	}
	st, entry := sr.st, sr.entry
	compute := func(ctx context.Context, mem memory.Allocator) (map[string]arrow.RecordBatch, error) {
		in, err := x.inputRecords(ctx, st)
		if err != nil {
			return nil, err
		}
		env := *x.env
		env.StateDir = x.stateDir(sr.desc)
		env.Used = st.Used
		log := x.opts.Log.With("stage", st.Name)
		log.Info("stage recomputed (its outputs are recorded, not stored)")
		res, err := runImpl(ctx, st.Impl, &env, in, log)
		if err != nil {
			return nil, fmt.Errorf("recompute: %w", err)
		}
		narrow(st, res.Outputs)
		if err := checkOutputs(st.Kind, res); err != nil {
			releaseAll(res.Outputs)
			return nil, err
		}
		for name, f := range entry.Outputs {
			if rec := res.Outputs[name]; rec == nil || rec.NumRows() != f.Rows {
				releaseAll(res.Outputs)
				return nil, fmt.Errorf("recompute: output %q differs from the cache entry's record of %d rows", name, f.Rows)
			}
		}
		return res.Outputs, nil
	}
	release := func() {
		for _, ref := range st.Inputs {
			x.runs[ref.Stage].outs.doneWith(ref.Output)
		}
	}
	sr.outs.recomputeWith(compute, release)
	return true
}

// inputRecords reads a stage's inputs from the stages before it.
func (x *execution) inputRecords(ctx context.Context, st *Stage) (map[string]arrow.RecordBatch, error) {
	in := map[string]arrow.RecordBatch{}
	for _, port := range slices.Sorted(maps.Keys(st.Inputs)) {
		ref := st.Inputs[port]
		rec, err := x.runs[ref.Stage].outs.get(ctx, x.env.Mem, ref.Output)
		if err != nil {
			return nil, fmt.Errorf("stage %s: %w", ref.Stage, err)
		}
		in[port] = rec
	}
	return in, nil
}

// recordBytes is the size of a record's buffers (a slice counts whole).
func recordBytes(rec arrow.RecordBatch) int64 {
	var n int64
	var add func(d arrow.ArrayData)
	add = func(d arrow.ArrayData) {
		for _, b := range d.Buffers() {
			if b != nil {
				n += int64(b.Len())
			}
		}
		for _, c := range d.Children() {
			add(c)
		}
	}
	for _, c := range rec.Columns() {
		add(c.Data())
		if s, ok := table.AsStrings(c); ok && s.Dictionary() != nil {
			// The text the cache would write: codes are not counted as
			// the values they stand for.
			n += int64(s.Len()) * int64(s.AvgLen()+4)
		}
	}
	return n
}
