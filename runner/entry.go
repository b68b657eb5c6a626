package runner

import (
	"context"
	"log/slog"
	"maps"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/table"
	"github.com/kneepipe/kneepipe/runner/cache"
	"github.com/kneepipe/kneepipe/stages"
)

// save stores a computed stage's outputs in the background, holding them
// until the write is done.
func (x *execution) save(sr *stageRun, log *slog.Logger) {
	sr.outs.hold()
	x.saves.Add(1)
	go func() {
		defer x.saves.Done()
		defer sr.outs.done()
		if err := saveEntry(x.runCtx, x.store, sr); err != nil && x.runCtx.Err() == nil {
			log.Warn("could not cache stage output", "err", err)
		}
	}()
}

// saveEntry stores a computed stage's outputs, unless an intact entry is
// already there under its key (an unchanged listing is keyed by its
// content, so every rerun computes it again): Commit would keep that one
// anyway, and encoding the outputs is most of the work.
func saveEntry(ctx context.Context, store cache.Store, sr *stageRun) error {
	if _, err := store.Lookup(sr.key); err == nil {
		return nil
	}
	w, err := store.Create(sr.key, sr.st.Name, sr.st.Kind.Name)
	if err != nil {
		return err
	}
	if err := storeOutputs(ctx, w, sr); err != nil {
		w.Abort()
		return err
	}
	w.Warnings(sr.summary.Warnings)
	if err := w.Commit(encodeCounts(sr.summary.Objects, sr.summary.Stats)); err != nil {
		w.Abort()
		return err
	}
	return nil
}

func loadEntry(ctx context.Context, mem memory.Allocator, e *cache.Entry) (map[string]arrow.RecordBatch, error) {
	outs := map[string]arrow.RecordBatch{}
	for name, p := range e.Paths {
		rec, err := table.ReadParquet(ctx, mem, p)
		if err != nil {
			releaseAll(outs)
			return nil, err
		}
		outs[name] = rec
	}
	return outs, nil
}

// entrySummary reads back what saveEntry stored of a stage's result. A
// stored result is never partial and lists no failures. The kind's
// runStats counted the work done when it was computed (fetch's
// downloaded); a cached stage did none this run: they read 0.
func entrySummary(e *cache.Entry, runStats []string) *summary {
	s := &summary{Rows: map[string]int64{}}
	for name, f := range e.Outputs {
		s.Rows[name] = f.Rows
	}
	s.Objects, s.Stats = decodeCounts(e.Counts)
	s.Warnings = e.Manifest.Warnings
	for _, name := range runStats {
		if _, ok := s.Stats[name]; ok {
			s.Stats[name] = 0
		}
	}
	return s
}

// Object counts are stored in a manifest's counts, and shown in run.json's,
// under these names; a stage's other figures sit beside them.
var objectCountNames = []string{"listed", "accepted", "rejected", "failed", "skipped"}

func objectFields(o *stages.Objects) []*int64 {
	return []*int64{&o.Listed, &o.Accepted, &o.Rejected, &o.Failed, &o.Skipped}
}

// encodeCounts flattens object counts (those not zero) and stats into one
// map, the form manifests and run.json have always had.
func encodeCounts(o stages.Objects, stats map[string]int64) map[string]int64 {
	m := maps.Clone(stats)
	if m == nil {
		m = map[string]int64{}
	}
	for i, p := range objectFields(&o) {
		if *p != 0 {
			m[objectCountNames[i]] = *p
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

func decodeCounts(m map[string]int64) (stages.Objects, map[string]int64) {
	var o stages.Objects
	stats := maps.Clone(m)
	for i, p := range objectFields(&o) {
		*p = m[objectCountNames[i]]
		delete(stats, objectCountNames[i])
	}
	return o, stats
}
