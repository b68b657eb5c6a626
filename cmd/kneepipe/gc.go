package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// firstHeapGoal is how far the heap may grow before the first garbage
// collection. Go's default is 4 MB, which makes a short run (a no-op
// rerun: one listing, a few cache checks, 10 to 20 MB allocated in all)
// collect several times while it competes with the S3 server for the CPU;
// in benchmarks that cost it about a tenth of its time.
const firstHeapGoal = 32 << 20

// After the first collection the heap may grow by headroom past what the
// last collection found live (GOGC=100 up to a heap of that size), and
// never by less than minGCPercent of it. Go's default, growth by the live
// heap (GOGC=100), doubled kneepipe's peak memory on tables of millions of
// rows; their Arrow buffers hold no pointers, so a collection there costs
// little more than scanning the stacks, and collecting more often is cheap.
// With string columns dictionary-encoded a 10M-row table run holds about
// 1.5 GB live: a tenth of it in garbage is the bound (a fifth was 300 MB
// more peak for no time measured).
const (
	headroom     = 32 << 20
	minGCPercent = 10
)

// tuneGC sets the first heap goal to firstHeapGoal and then paces each
// collection by the live heap (gcPercentFor), unless the user set GOGC or
// GOMEMLIMIT. stop ends the pacing (for tests).
func tuneGC() (stop func()) {
	stopped := new(atomic.Bool)
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	// Before the first collection the goal is 4 MB scaled by GOGC/100.
	debug.SetGCPercent(100 * firstHeapGoal / (4 << 20))
	armPacer(stopped)
	return func() { stopped.Store(true) }
}

// gcPercentFor is the GOGC that lets a heap of live bytes grow by
// headroom, between minGCPercent and 100.
func gcPercentFor(live uint64) int {
	if live <= headroom {
		return 100
	}
	return max(int(100*headroom/live), minGCPercent)
}

// armPacer sets a finalizer that runs after the next collection (the one
// that finds its object unreachable), sets GOGC from the live heap that
// collection found, and arms itself again. The object must not come from
// the tiny allocator (under 16 bytes, no pointers), whose blocks are
// shared and may stay reachable.
func armPacer(stopped *atomic.Bool) {
	runtime.SetFinalizer(&gcPacer{}, func(*gcPacer) {
		if stopped.Load() {
			return
		}
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(s)
		if s[0].Value.Kind() == metrics.KindUint64 {
			debug.SetGCPercent(gcPercentFor(s[0].Value.Uint64()))
		} else {
			debug.SetGCPercent(100)
		}
		armPacer(stopped)
	})
}

type gcPacer struct{ _ [64]byte }
