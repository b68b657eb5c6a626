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

func TestDelayFirstGC(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetGCPercent(gcPercent())
	debug.SetGCPercent(100)

	delayFirstGC()
	if got, want := gcPercent(), 100*firstHeapGoal/(4<<20); got != want {
		t.Fatalf("GOGC before the first collection = %d, want %d (a %d MB first goal)", got, want, firstHeapGoal>>20)
	}
	runtime.GC()
	deadline := time.Now().Add(5 * time.Second)
	for gcPercent() != 100 {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC still %d after the first collection, want 100", gcPercent())
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

func TestDelayFirstGCLeavesUserSettings(t *testing.T) {
	defer debug.SetGCPercent(gcPercent())
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv("GOGC", "")
			t.Setenv("GOMEMLIMIT", "")
			t.Setenv(env, "200")
			debug.SetGCPercent(150)
			delayFirstGC()
			if got := gcPercent(); got != 150 {
				t.Errorf("%s set: GOGC changed to %d", env, got)
			}
		})
	}
}
