package runner

import (
	"context"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/kneepipe/kneepipe/runner/uptodate"
	"github.com/kneepipe/kneepipe/stages"
)

// Given supplies a stage's outputs instead of computing them: a sharded
// run's listing (recorded once by its plan), or the per-object stages'
// outputs merged from the shards' parts. The records stay the caller's
// to release; the run holds its own references.
type Given struct {
	Outputs  map[string]arrow.RecordBatch
	Objects  stages.Objects
	Stats    map[string]int64
	Failures []stages.Failure
	Warnings []string
	Why      string // for run.json, e.g. "merged from 4 shards"
}

// RunStages runs only the named stages of the pipeline, reading the
// outputs of every stage in opts.Given, and returns what run.json would
// say and the named stages' outputs (the caller releases them). It takes
// the cache lock, writes no artifact and no run.json: a shard's pieces go
// where the caller puts them. Every input of a named stage must be named
// or given.
func RunStages(ctx context.Context, cfg *Config, opts Options, names []string) (*Report, map[string]map[string]arrow.RecordBatch, error) {
	x := newExecution(cfg, opts, false)
	x.only = names
	defer x.close()
	if err := x.checkOnly(); err != nil {
		return nil, nil, err
	}
	err := x.lockCache(ctx)
	if err == nil {
		err = x.run(ctx)
	}
	var outs map[string]map[string]arrow.RecordBatch
	if err == nil {
		outs, err = x.take(ctx)
	}
	x.saves.Wait()
	return x.report(err), outs, err
}

// checkOnly rejects a subset whose stages read a stage neither named nor
// given.
func (x *execution) checkOnly() error {
	for _, st := range x.cfg.Stages {
		if !slices.Contains(x.only, st.Name) {
			continue
		}
		for _, ref := range st.Inputs {
			if !slices.Contains(x.only, ref.Stage) && x.opts.Given[ref.Stage] == nil {
				return fmt.Errorf("stage %s reads %s, which is neither run nor given", st.Name, ref.Stage)
			}
		}
	}
	return nil
}

// inPart says whether a stage belongs to this run: every stage, or for
// RunStages the named and given ones.
func (x *execution) inPart(name string) bool {
	return x.only == nil || slices.Contains(x.only, name) || x.opts.Given[name] != nil
}

// take returns the named stages' outputs, retained for the caller.
func (x *execution) take(ctx context.Context) (map[string]map[string]arrow.RecordBatch, error) {
	out := map[string]map[string]arrow.RecordBatch{}
	for _, name := range x.only {
		sr := x.runs[name]
		recs := map[string]arrow.RecordBatch{}
		for _, p := range sr.st.Kind.Outputs {
			rec, err := sr.outs.get(ctx, x.env.Mem, p.Name)
			if err != nil {
				for _, m := range out {
					releaseAll(m)
				}
				releaseAll(recs)
				return nil, fmt.Errorf("stage %s: %w", name, err)
			}
			rec.Retain()
			recs[p.Name] = rec
		}
		out[name] = recs
	}
	return out, nil
}

// useGiven takes a stage's outputs from opts.Given. They are keyed by
// content, as a volatile stage's are, so the stages after them hit the
// cache when the same outputs are given again.
func (x *execution) useGiven(sr *stageRun, g *Given) error {
	if err := checkOutputs(sr.st.Kind, &stages.Result{Outputs: g.Outputs}); err != nil {
		return err
	}
	for _, rec := range g.Outputs {
		rec.Retain()
	}
	sr.outs.set(g.Outputs)
	res := &stages.Result{Outputs: g.Outputs, Objects: g.Objects, Stats: g.Stats, Failures: g.Failures, Warnings: g.Warnings, Partial: len(g.Failures) > 0}
	sr.summary = resultSummary(res)
	sr.key = uptodate.ContentKey(sr.desc.Key(), outputDigests(sr.st.Kind, g.Outputs))
	sr.why = g.Why
	return nil
}
