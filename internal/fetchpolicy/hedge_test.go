package fetchpolicy

import (
	"testing"
	"time"
)

func primed(firstByte, perByte float64, n int) Hedge {
	h := DefaultHedge()
	for range n {
		h.FirstByte.Add(firstByte)
		h.PerByte.Add(perByte)
	}
	return h
}

func TestHedgeWaitsForSamples(t *testing.T) {
	h := primed(0.01, 1e-8, 31)
	if _, ok := h.FirstByteAfter(); ok {
		t.Error("hedging after 31 samples of 32 needed")
	}
	if _, ok := h.BodyAfter(1000); ok {
		t.Error("hedging a body after 31 samples of 32 needed")
	}
	h.Observe(10*time.Millisecond, time.Millisecond, 100_000)
	if _, ok := h.FirstByteAfter(); !ok {
		t.Error("no hedging after 32 samples")
	}
}

// Past Factor times the p99: one slow sample in a hundred sets the p99.
func TestHedgeThresholds(t *testing.T) {
	h := primed(0.010, 1e-8, 99) // 10 ms to the headers, 10 ns a byte (100 MB/s)
	h.Floor = 20 * time.Millisecond
	h.Observe(40*time.Millisecond, 0, 0)
	h.FirstByte.Add(0.040) // two slow ones of 101: the p99 is 40 ms
	if d, _ := h.FirstByteAfter(); d != 120*time.Millisecond {
		t.Errorf("FirstByteAfter = %s, want 3 x 40 ms", d)
	}
	// 100 MB at 10 ns a byte takes 1 s: hedged after 3 s.
	if d, _ := h.BodyAfter(100_000_000); d != 3*time.Second {
		t.Errorf("BodyAfter(100 MB) = %s, want 3 s", d)
	}
	// A small body is allowed what the headers are.
	if d, _ := h.BodyAfter(1000); d != 120*time.Millisecond {
		t.Errorf("BodyAfter(1 KB) = %s, want the first-byte threshold", d)
	}
}

func TestHedgeFloor(t *testing.T) {
	h := primed(0.0001, 1e-10, 64) // 0.1 ms round trips on loopback
	if d, _ := h.FirstByteAfter(); d != h.Floor {
		t.Errorf("FirstByteAfter = %s, want the floor %s", d, h.Floor)
	}
}
