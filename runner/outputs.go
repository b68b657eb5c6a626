package runner

import (
	"context"
	"fmt"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/runner/cache"
)

// outputs holds one stage's output records for as long as anyone needs
// them, and releases each one after its last reader is done: at 10M rows a
// table nobody reads any more is memory the next stage could use. Holds
// are counted per output, so that an artifact of a small output (dedupe's
// removed rows) does not keep a big one (its kept rows) until the run
// ends. A cached stage's records are read from its entry on first use, so
// that a no-op run reads only what an artifact or a recomputed stage needs.
type outputs struct {
	stage string

	mu sync.Mutex
	// whole counts holds on every output: the stage's own until its run
	// ends, a cache write, RunStages' caller. holds counts holds on one
	// output: downstream inputs and artifacts.
	whole   int
	holds   map[string]int
	recs    map[string]arrow.RecordBatch
	entry   *cache.Entry
	loadErr error
	// For an entry that records outputs without storing them: compute
	// them, and give back the stage's holds on its inputs (see
	// recompute.go).
	recompute func(context.Context, memory.Allocator) (map[string]arrow.RecordBatch, error)
	onRelease func()
}

// newOutputs counts the holds on a stage's outputs: readers per output
// (downstream inputs and artifacts), and whole holds on all of them, one
// for the stage itself until its run ends (so that outputs nobody reads
// are released then).
func newOutputs(stage string, whole int, readers map[string]int) *outputs {
	holds := map[string]int{}
	for name, n := range readers {
		holds[name] = n
	}
	return &outputs{stage: stage, whole: whole, holds: holds}
}

// set stores computed records.
func (o *outputs) set(recs map[string]arrow.RecordBatch) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.recs = recs
}

// fromEntry makes the outputs readable from a cache entry.
func (o *outputs) fromEntry(e *cache.Entry) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.entry = e
}

// recomputeWith makes the entry's outputs computed by compute when first
// read; onRelease runs once when they are released.
func (o *outputs) recomputeWith(compute func(context.Context, memory.Allocator) (map[string]arrow.RecordBatch, error), onRelease func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.recompute, o.onRelease = compute, onRelease
}

// get returns one output, reading a cached entry the first time. The
// caller must hold the output (not have given its hold back yet).
func (o *outputs) get(ctx context.Context, mem memory.Allocator, name string) (arrow.RecordBatch, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.recs == nil && o.entry != nil && o.loadErr == nil {
		if o.recompute != nil {
			o.recs, o.loadErr = o.recompute(ctx, mem)
		} else {
			o.recs, o.loadErr = loadEntry(ctx, mem, o.entry)
		}
		if o.loadErr != nil {
			o.loadErr = fmt.Errorf("load cached outputs: %w", o.loadErr)
		} else {
			o.releaseUnheld() // loaded whole: drop what nobody reads
		}
	}
	if o.loadErr != nil {
		return nil, o.loadErr
	}
	rec, ok := o.recs[name]
	if !ok {
		return nil, fmt.Errorf("stage %s has no output %q", o.stage, name)
	}
	return rec, nil
}

// hold adds a whole hold, for a reader the count did not foresee (the
// cache write).
func (o *outputs) hold() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.whole++
}

// done gives back one whole hold.
func (o *outputs) done() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.whole--
	o.releaseUnheld()
}

// doneWith gives back one reader's hold on the named output.
func (o *outputs) doneWith(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.holds[name]--
	o.releaseUnheld()
}

// releaseUnheld releases the records nobody holds any more, once no whole
// hold is left; when no output is held at all, everything goes.
func (o *outputs) releaseUnheld() {
	if o.whole > 0 {
		return
	}
	held := false
	for name, n := range o.holds {
		if n > 0 {
			held = true
			continue
		}
		if rec, ok := o.recs[name]; ok {
			rec.Release()
			delete(o.recs, name)
		}
	}
	for name, rec := range o.recs {
		if _, counted := o.holds[name]; !counted {
			rec.Release() // an output no reader was counted for
			delete(o.recs, name)
		}
	}
	if !held {
		o.releaseLocked()
	}
}

// release drops the records whatever the holds (the run is over).
func (o *outputs) release() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.releaseLocked()
}

func (o *outputs) releaseLocked() {
	releaseAll(o.recs)
	o.recs = nil
	o.entry = nil // nobody may read it again
	if o.onRelease != nil {
		o.onRelease()
		o.onRelease = nil
	}
}

func releaseAll(recs map[string]arrow.RecordBatch) {
	for _, rec := range recs {
		rec.Release()
	}
}
