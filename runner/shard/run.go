package shard

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/runner"
	"github.com/kneepipe/kneepipe/stages"
)

// RunShard runs the per-object stages on shard x's objects of W's plan
// and writes the shard's part: its outputs, run.json, and last its
// manifest. It writes nothing of other shards. A retried or duplicated
// task writes the same part: outputs are deterministic and named by
// content. opts.CacheDir should be the shard's own: fetch-hash's record
// there lets a killed shard resume without fetching again.
func RunShard(ctx context.Context, cfg *runner.Config, opts runner.Options, w Work, x Index) (*runner.Report, error) {
	if err := x.Check(); err != nil {
		return nil, err
	}
	l, err := split(cfg)
	if err != nil {
		return nil, err
	}
	p, err := readPlan(ctx, w, cfg, l)
	if err != nil {
		return nil, err
	}
	if p.Shards != x.N {
		return nil, fmt.Errorf("shard %s: the plan in %s has %d shards", x, w, p.Shards)
	}
	mem := memory.NewGoAllocator()
	sub, err := readListing(ctx, w, mem, p.ShardListings[x.I])
	if err != nil {
		return nil, fmt.Errorf("shard %s of the plan's listing: %w", x, err)
	}
	defer releaseRecs(sub)
	opts.Given = map[string]*runner.Given{l.list.Name: {
		Outputs: sub,
		Objects: stages.Objects{Listed: sub[l.port].NumRows()},
		Why:     fmt.Sprintf("shard %s of plan %s", x, p.ID),
	}}
	rep, outs, err := runner.RunStages(ctx, cfg, opts, l.names())
	defer releaseStages(outs)
	if err == nil {
		err = writePart(ctx, w, p, l, x, rep, outs)
	}
	if rep != nil {
		if err != nil {
			rep.Status, rep.Error = runner.RunFailed, err.Error()
		}
		if werr := putJSON(ctx, w, runJSONName(x), rep); werr != nil && err == nil {
			err = fmt.Errorf("run.json: %w", werr)
		}
	}
	if err == nil && rep.Status == runner.RunPartial {
		err = fmt.Errorf("%w: %d of %d in shard %s could not be fetched (listed under failures in %s); running the shard again retries them",
			runner.ErrObjectsFailed, rep.Objects.Failed, rep.Objects.Listed, x, runJSONName(x))
	}
	return rep, err
}

// readListing reads the listing's outputs named by the plan.
func readListing(ctx context.Context, w Work, mem memory.Allocator, files map[string]file) (map[string]arrow.RecordBatch, error) {
	out := map[string]arrow.RecordBatch{}
	for name, f := range files {
		rec, err := readFile(ctx, w, mem, f)
		if err != nil {
			releaseRecs(out)
			return nil, err
		}
		out[name] = rec
	}
	return out, nil
}

// writePart writes the outputs, each a file named by its content, then
// the manifest that makes the part count.
func writePart(ctx context.Context, w Work, p *planRecord, l *layout, x Index, rep *runner.Report, outs map[string]map[string]arrow.RecordBatch) error {
	part := partRecord{Format: format, Plan: p.ID, Shard: x.I, Shards: x.N, Files: map[string]file{}, Stages: map[string]partStage{}}
	for _, st := range l.perObject {
		for _, port := range st.Kind.Outputs {
			rec := outs[st.Name][port.Name]
			data, err := encode(rec)
			if err != nil {
				return fmt.Errorf("stage %s output %s: %w", st.Name, port.Name, err)
			}
			sum := digest(data)
			f := file{Name: fmt.Sprintf("parts/%s/%s.%s-%s.arrows", x.name(), st.Name, port.Name, sum[:16]), SHA256: sum, Rows: rec.NumRows()}
			if err := w.Put(ctx, f.Name, data); err != nil {
				return fmt.Errorf("write part: %w", err)
			}
			part.Files[st.Name+"."+port.Name] = f
		}
	}
	kinds := map[string]stages.Kind{}
	for _, st := range l.perObject {
		kinds[st.Name] = st.Kind
	}
	for _, sr := range rep.Stages {
		if !slices.Contains(p.Stages, sr.Name) {
			continue
		}
		objects, stats := splitCounts(sr.Counts)
		// The work this task did (fetch's downloaded: 0 when its cache
		// had the stage) is in its run.json; the part holds what any task
		// computing it would hold.
		for _, name := range kinds[sr.Name].RunStats {
			delete(stats, name)
		}
		if len(stats) == 0 {
			stats = nil
		}
		ps := partStage{Objects: objects, Stats: stats, Warnings: stageWarnings(rep, sr.Name)}
		for _, f := range rep.Failures {
			if f.Stage == sr.Name {
				ps.Failures = append(ps.Failures, failure{Key: f.Key, Error: f.Error, Attempts: f.Attempts})
			}
		}
		part.Stages[sr.Name] = ps
	}
	return putJSON(ctx, w, partName(x), part)
}

// splitCounts reads run.json's counts of a stage back into object counts
// and its other figures.
func splitCounts(c map[string]int64) (stages.Objects, map[string]int64) {
	o := stages.Objects{Listed: c["listed"], Accepted: c["accepted"], Rejected: c["rejected"], Failed: c["failed"], Skipped: c["skipped"]}
	stats := maps.Clone(c)
	for _, k := range []string{"listed", "accepted", "rejected", "failed", "skipped"} {
		delete(stats, k)
	}
	if len(stats) == 0 {
		stats = nil
	}
	return o, stats
}

func putJSON(ctx context.Context, w Work, name string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return w.Put(ctx, name, append(data, '\n'))
}
