package shard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/table"
	"github.com/kneepipe/kneepipe/runner"
	"github.com/kneepipe/kneepipe/stages"
)

// Merge checks that every shard of W's plan left its part, merges the
// parts back into listing order and runs the rest of the pipeline on
// them as `kneepipe run` would (artifacts and run.json into opts.OutDir):
// the same rows in the same order give the same bytes. Its run.json
// accounts for all shards.
func Merge(ctx context.Context, cfg *runner.Config, opts runner.Options, w Work) (*runner.Report, error) {
	l, err := split(cfg)
	if err != nil {
		return nil, err
	}
	p, err := readPlan(ctx, w, cfg, l)
	if err != nil {
		return nil, err
	}
	mem := memory.NewGoAllocator()
	listing, err := readListing(ctx, w, mem, p.Listing)
	if err != nil {
		return nil, fmt.Errorf("the plan's listing: %w", err)
	}
	defer releaseRecs(listing)
	parts, err := readParts(ctx, w, mem, p)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, pt := range parts {
			releaseStages(pt.recs)
		}
	}()
	listObjects, listStats := splitCounts(p.ListCounts)
	given := map[string]*runner.Given{l.list.Name: {
		Outputs: listing, Objects: listObjects, Stats: listStats, Warnings: p.ListWarnings,
		Why: fmt.Sprintf("listed by plan %s", p.ID),
	}}
	defer func() {
		for name, g := range given {
			if name != l.list.Name {
				releaseRecs(g.Outputs)
			}
		}
	}()
	keys, err := table.StringCol(listing[l.port], "key")
	if err != nil {
		return nil, fmt.Errorf("the plan's listing: %w", err)
	}
	for _, st := range l.perObject {
		g, err := mergeStage(ctx, mem, st, keys, parts)
		if err != nil {
			return nil, fmt.Errorf("merge stage %s: %w", st.Name, err)
		}
		g.Why = fmt.Sprintf("merged from %d shards of plan %s", p.Shards, p.ID)
		given[st.Name] = g
	}
	for _, pt := range parts { // merged: the parts' memory is the run's now
		releaseStages(pt.recs)
	}
	parts = nil
	opts.Given = given
	return runner.Run(ctx, cfg, opts)
}

// loadedPart is one shard's manifest and records.
type loadedPart struct {
	rec  partRecord
	recs map[string]map[string]arrow.RecordBatch // stage, output
}

// readParts reads every shard's part, or fails naming each shard whose
// part is missing or does not belong to the plan.
func readParts(ctx context.Context, w Work, mem memory.Allocator, p *planRecord) ([]*loadedPart, error) {
	parts := make([]*loadedPart, p.Shards)
	var missing, stale []string
	release := func() {
		for _, pt := range parts {
			if pt != nil {
				releaseStages(pt.recs)
			}
		}
	}
	for i := range parts {
		x := Index{i, p.Shards}
		pt, err := readPart(ctx, w, mem, p, x)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, fmt.Sprint(i))
		case err != nil:
			stale = append(stale, fmt.Sprintf("%d (%v)", i, err))
		default:
			parts[i] = pt
		}
	}
	if len(missing)+len(stale) == 0 {
		return parts, nil
	}
	release()
	var msg []string
	if len(missing) > 0 {
		msg = append(msg, fmt.Sprintf("shards %s of %d have no part in %s", strings.Join(missing, ", "), p.Shards, w))
	}
	if len(stale) > 0 {
		msg = append(msg, fmt.Sprintf("shards %s: stale", strings.Join(stale, "; ")))
	}
	return nil, fmt.Errorf("%s: run those shards (kneepipe shard run --shard I/%d) and merge again", strings.Join(msg, "; "), p.Shards)
}

func readPart(ctx context.Context, w Work, mem memory.Allocator, p *planRecord, x Index) (*loadedPart, error) {
	data, err := w.Get(ctx, partName(x))
	if err != nil {
		return nil, err
	}
	var pr partRecord
	if err := json.Unmarshal(data, &pr); err != nil {
		return nil, fmt.Errorf("%s: %w", partName(x), err)
	}
	if pr.Format != format || pr.Plan != p.ID || pr.Shard != x.I || pr.Shards != x.N {
		return nil, fmt.Errorf("made for plan %s, not %s", pr.Plan, p.ID)
	}
	pt := &loadedPart{rec: pr, recs: map[string]map[string]arrow.RecordBatch{}}
	for _, st := range p.Stages {
		if _, ok := pr.Stages[st]; !ok {
			releaseStages(pt.recs)
			return nil, fmt.Errorf("%s lacks stage %s", partName(x), st)
		}
		pt.recs[st] = map[string]arrow.RecordBatch{}
	}
	for name, f := range pr.Files {
		st, out, _ := strings.Cut(name, ".")
		if pt.recs[st] == nil {
			continue // a stage the plan does not run
		}
		rec, err := readFile(ctx, w, mem, f)
		if errors.Is(err, fs.ErrNotExist) {
			// A file gone under its manifest is a damaged part, not a missing one.
			err = fmt.Errorf("%s is gone: the part is damaged", f.Name)
		}
		if err != nil {
			releaseStages(pt.recs)
			return nil, err
		}
		pt.recs[st][out] = rec
	}
	return pt, nil
}

// mergeStage joins a per-object stage's parts into listing order and
// adds up its accounting. Each part's rows keep the listing's order and
// stem from distinct keys, so walking the listing once and taking the
// next row of the key's shard when it is that key rebuilds the order of
// a one-machine run.
func mergeStage(ctx context.Context, mem memory.Allocator, st *runner.Stage, keys *table.StringCells, parts []*loadedPart) (*runner.Given, error) {
	g := &runner.Given{Outputs: map[string]arrow.RecordBatch{}}
	release := func() {
		for _, rec := range g.Outputs {
			rec.Release()
		}
	}
	for _, port := range st.Kind.Outputs {
		rec, err := mergeOutput(ctx, mem, port.Name, st.Name, keys, parts)
		if err != nil {
			release()
			return nil, fmt.Errorf("output %s: %w", port.Name, err)
		}
		g.Outputs[port.Name] = rec
	}
	failed := map[string]stages.Failure{}
	for _, pt := range parts {
		ps := pt.rec.Stages[st.Name]
		g.Objects.Listed += ps.Objects.Listed
		g.Objects.Accepted += ps.Objects.Accepted
		g.Objects.Rejected += ps.Objects.Rejected
		g.Objects.Failed += ps.Objects.Failed
		g.Objects.Skipped += ps.Objects.Skipped
		for k, v := range ps.Stats {
			if g.Stats == nil {
				g.Stats = map[string]int64{}
			}
			g.Stats[k] += v
		}
		g.Warnings = append(g.Warnings, ps.Warnings...)
		for _, f := range ps.Failures {
			failed[f.Key] = stages.Failure{Key: f.Key, Err: errors.New(f.Error), Attempts: f.Attempts}
		}
	}
	for i := range keys.Len() { // failures in listing order, as one run lists them
		if f, ok := failed[keys.Value(i)]; ok {
			g.Failures = append(g.Failures, f)
		}
	}
	return g, nil
}

func mergeOutput(ctx context.Context, mem memory.Allocator, port, stage string, keys *table.StringCells, parts []*loadedPart) (arrow.RecordBatch, error) {
	recs := make([]arrow.RecordBatch, len(parts))
	partKeys := make([]*table.StringCells, len(parts))
	offsets := make([]int, len(parts))
	off := 0
	for s, pt := range parts {
		rec := pt.recs[stage][port]
		if rec == nil {
			return nil, fmt.Errorf("shard %d has no such output", s)
		}
		k, err := table.StringCol(rec, "key")
		if err != nil {
			return nil, fmt.Errorf("a per-object output needs the key column: %w", err)
		}
		recs[s], partKeys[s], offsets[s] = rec, k, off
		off += int(rec.NumRows())
	}
	all, err := concat(mem, recs[0].Schema(), recs)
	if err != nil {
		return nil, err
	}
	defer all.Release()
	next := make([]int, len(parts))
	idx := make([]int, 0, off)
	for i := range keys.Len() {
		key := keys.Value(i)
		s := Of(key, len(parts))
		if next[s] < partKeys[s].Len() && partKeys[s].Value(next[s]) == key {
			idx = append(idx, offsets[s]+next[s])
			next[s]++
		}
	}
	if len(idx) != off {
		return nil, fmt.Errorf("%d of %d rows in the parts match no listed key of their shard in order", off-len(idx), off)
	}
	return table.Take(ctx, mem, all, idx)
}
