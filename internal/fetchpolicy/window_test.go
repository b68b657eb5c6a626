package fetchpolicy

import "testing"

func TestWindowQuantiles(t *testing.T) {
	w := NewWindow(100)
	if _, ok := w.Quantile(0.99); ok {
		t.Fatal("an empty window has a quantile")
	}
	for i := 100; i >= 1; i-- {
		w.Add(float64(i))
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 50}, {0.99, 99}, {1, 100}, {0, 1}, {0.001, 1}} {
		if got, _ := w.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
}

// Only the last Size samples count: a slow spell moves the quantiles, and
// so does its end.
func TestWindowForgetsOldSamples(t *testing.T) {
	w := NewWindow(10)
	for range 10 {
		w.Add(1)
	}
	for range 10 {
		w.Add(5)
	}
	if got, _ := w.Quantile(0.5); got != 5 || w.Len() != 10 {
		t.Errorf("median %v of %d samples, want 5 of 10", got, w.Len())
	}
	w.Add(2)
	if got, _ := w.Quantile(0); got != 2 {
		t.Errorf("min %v after a new sample, want 2", got)
	}
}
