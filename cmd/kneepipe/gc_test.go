package main

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// gcPercent reads GOGC without changing it.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// waitGCPercent collects until GOGC is in lo..hi, failing after 5 s.
func waitGCPercent(t *testing.T, lo, hi int, why string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p := gcPercent(); p < lo || p > hi; p = gcPercent() {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC %d %s, want %d..%d", p, why, lo, hi)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

func TestTuneGC(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetGCPercent(gcPercent())
	debug.SetGCPercent(100)

	defer tuneGC()()
	if got, want := gcPercent(), 100*firstHeapGoal/(4<<20); got != want {
		t.Fatalf("GOGC before the first collection = %d, want %d (a %d MB first goal)", got, want, firstHeapGoal>>20)
	}
	runtime.GC()
	waitGCPercent(t, 100, 100, "after the first collection of a small heap")

	// A live heap of 4×headroom (and the test's own few MB) collects
	// after growing by about a quarter of it.
	big := make([]byte, 4*headroom)
	for i := range big {
		big[i] = byte(i)
	}
	waitGCPercent(t, 22, 25, "with a big live heap")
	runtime.KeepAlive(big)
	big = nil
	waitGCPercent(t, 100, 100, "once the big heap is garbage")
}

func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 100}, {headroom, 100}, {2 * headroom, 50}, {4 * headroom, 25},
		{5 * headroom, 20}, {10 * headroom, minGCPercent}, {100 * headroom, minGCPercent},
	} {
		if got := gcPercentFor(c.live); got != c.want {
			t.Errorf("gcPercentFor(%d MB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

func TestTuneGCLeavesUserSettings(t *testing.T) {
	defer debug.SetGCPercent(gcPercent())
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv("GOGC", "")
			t.Setenv("GOMEMLIMIT", "")
			t.Setenv(env, "200")
			debug.SetGCPercent(150)
			defer tuneGC()()
			if got := gcPercent(); got != 150 {
				t.Errorf("%s set: GOGC changed to %d", env, got)
			}
		})
	}
}
