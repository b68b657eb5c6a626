package main

import (
	"os"
	"runtime"
	"runtime/debug"
)

// firstHeapGoal is how far the heap may grow before the first garbage
// collection. Go's default is 4 MB, which makes a short run (a no-op
// rerun: one listing, a few cache checks, 10 to 20 MB allocated in all)
// collect several times while it competes with the S3 server for the CPU;
// in benchmarks that cost it about a tenth of its time. After the first
// collection the default GOGC=100 applies, so longer runs use memory as
// before.
const firstHeapGoal = 32 << 20

// delayFirstGC sets the first heap goal to firstHeapGoal, unless the user
// set GOGC or GOMEMLIMIT.
func delayFirstGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	// Before the first collection the goal is 4 MB scaled by GOGC/100.
	debug.SetGCPercent(100 * firstHeapGoal / (4 << 20))
	// A finalizer runs after the collection that finds its object
	// unreachable, here the first one. The object must not come from the
	// tiny allocator (under 16 bytes, no pointers), whose blocks are shared
	// and may stay reachable.
	runtime.SetFinalizer(&firstGC{}, func(*firstGC) { debug.SetGCPercent(100) })
}

type firstGC struct{ _ [64]byte }
