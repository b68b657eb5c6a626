package shard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/table"
	"github.com/kneepipe/kneepipe/runner"
	"github.com/kneepipe/kneepipe/runner/cache"
)

// Planned is what Plan recorded.
type Planned struct {
	ID       string
	Listed   int64
	PerShard []int64
}

// Plan lists the source once (the pipeline's listing stage), records the
// listing and the plan under w, and assigns every object to one of n
// shards by Of. The listing is written before plan.json, so a plan is
// there whole or not at all; a new plan makes every older part stale.
func Plan(ctx context.Context, cfg *runner.Config, opts runner.Options, w Work, n int) (*Planned, error) {
	if err := (Index{0, n}).Check(); err != nil {
		return nil, err
	}
	l, err := split(cfg)
	if err != nil {
		return nil, err
	}
	rep, outs, err := runner.RunStages(ctx, cfg, opts, []string{l.list.Name})
	if err != nil {
		return nil, err
	}
	defer releaseStages(outs)
	// Every output whole, for the merge; each shard's rows of it apart, so
	// that a shard reads 1/N of the listing.
	p := planRecord{Format: format, Shards: n, Pipeline: fingerprint(cfg, l), Source: cfg.Source.URI,
		ListStage: l.list.Name, Stages: l.names(), Listing: map[string]file{},
		ShardListings: make([]map[string]file, n), PerShard: make([]int64, n)}
	for _, sr := range rep.Stages {
		if sr.Name == l.list.Name {
			p.ListCounts = sr.Counts
		}
	}
	p.ListWarnings = stageWarnings(rep, l.list.Name)
	var h cache.Hasher
	h.Add("pipeline", p.Pipeline).Add("shards", fmt.Sprint(n))
	for i := range p.ShardListings {
		p.ShardListings[i] = map[string]file{}
	}
	for _, port := range l.list.Kind.Outputs {
		rec := outs[l.list.Name][port.Name]
		if p.Listing[port.Name], err = putRecord(ctx, w, "listing."+port.Name, rec); err != nil {
			return nil, err
		}
		h.Add("listing."+port.Name, p.Listing[port.Name].SHA256)
		parts, err := splitByKey(ctx, rec, n)
		if err != nil {
			return nil, fmt.Errorf("listing stage %s output %s: %w", l.list.Name, port.Name, err)
		}
		for i, r := range parts {
			f, err := p.Listing[port.Name], error(nil)
			if r != nil {
				f, err = putRecord(ctx, w, "listing."+port.Name+"."+Index{i, n}.name(), r)
				r.Release()
			}
			if err != nil {
				return nil, err
			}
			p.ShardListings[i][port.Name] = f
			if port.Name == l.port {
				p.PerShard[i] = f.Rows
			}
		}
	}
	p.ID = string(h.Key()[:16])
	js, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := w.Put(ctx, planName, append(js, '\n')); err != nil {
		return nil, fmt.Errorf("write the plan: %w", err)
	}
	return &Planned{ID: p.ID, Listed: p.Listing[l.port].Rows, PerShard: p.PerShard}, nil
}

// splitByKey cuts a record into each shard's rows, in their order; a
// record without a key column goes to every shard whole (nil parts).
func splitByKey(ctx context.Context, rec arrow.RecordBatch, n int) ([]arrow.RecordBatch, error) {
	if _, err := table.Index(rec, "key"); err != nil {
		return make([]arrow.RecordBatch, n), nil
	}
	keys, err := table.StringCol(rec, "key")
	if err != nil {
		return nil, err
	}
	idx := make([][]int, n)
	for i := range keys.Len() {
		s := Of(keys.Value(i), n)
		idx[s] = append(idx[s], i)
	}
	mem := memory.NewGoAllocator()
	out := make([]arrow.RecordBatch, 0, n)
	for _, rows := range idx {
		r, err := table.Take(ctx, mem, rec, rows)
		if err != nil {
			for _, o := range out {
				o.Release()
			}
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// putRecord writes a record under a name that carries its digest, so a
// reader holding an older plan never reads a newer plan's file.
func putRecord(ctx context.Context, w Work, base string, rec arrow.RecordBatch) (file, error) {
	data, err := encode(rec)
	if err != nil {
		return file{}, err
	}
	sum := digest(data)
	f := file{Name: "plan/" + base + "-" + sum[:16] + ".arrows", SHA256: sum, Rows: rec.NumRows()}
	if err := w.Put(ctx, f.Name, data); err != nil {
		return file{}, fmt.Errorf("write %s: %w", f.Name, err)
	}
	return f, nil
}

// readPlan reads W's plan and checks that the pipeline is the one it was
// made for.
func readPlan(ctx context.Context, w Work, cfg *runner.Config, l *layout) (*planRecord, error) {
	data, err := w.Get(ctx, planName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no plan in %s: run kneepipe shard plan first", w)
	}
	if err != nil {
		return nil, fmt.Errorf("read the plan: %w", err)
	}
	var p planRecord
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s in %s: %w", planName, w, err)
	}
	switch {
	case p.Format != format:
		return nil, fmt.Errorf("the plan in %s is of format %d, this kneepipe reads %d: run kneepipe shard plan again", w, p.Format, format)
	case p.Pipeline != fingerprint(cfg, l):
		return nil, fmt.Errorf("the plan in %s was made for another definition of stages %s, %v or another source: run kneepipe shard plan again", w, l.list.Name, l.names())
	case p.Shards < 1 || len(p.PerShard) != p.Shards || len(p.ShardListings) != p.Shards || p.Listing[l.port].Name == "":
		return nil, fmt.Errorf("%s in %s: damaged (shards %d)", planName, w, p.Shards)
	}
	return &p, nil
}

// readFile reads a record named by the plan or a manifest, checking its
// digest.
func readFile(ctx context.Context, w Work, mem memory.Allocator, f file) (arrow.RecordBatch, error) {
	data, err := w.Get(ctx, f.Name)
	if err != nil {
		return nil, err
	}
	if digest(data) != f.SHA256 {
		return nil, fmt.Errorf("%s in %s: content differs from its record (replaced or damaged)", f.Name, w)
	}
	rec, err := decode(mem, data)
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", f.Name, w, err)
	}
	if rec.NumRows() != f.Rows {
		rec.Release()
		return nil, fmt.Errorf("%s in %s: %d rows, its record says %d", f.Name, w, rec.NumRows(), f.Rows)
	}
	return rec, nil
}

// stageWarnings are one stage's warnings in a report.
func stageWarnings(rep *runner.Report, stage string) []string {
	var out []string
	for _, w := range rep.Warnings {
		if w.Stage == stage {
			out = append(out, w.Message)
		}
	}
	return out
}

func releaseStages(outs map[string]map[string]arrow.RecordBatch) {
	for _, m := range outs {
		releaseRecs(m)
	}
}

func releaseRecs(recs map[string]arrow.RecordBatch) {
	for _, rec := range recs {
		rec.Release()
	}
}
