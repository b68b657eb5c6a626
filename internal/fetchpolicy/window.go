package fetchpolicy

import (
	"slices"
	"sync"
)

// Window keeps the last Size samples of one measure (seconds to the first
// byte, say) and answers quantiles over them: recent, so that a server that
// slows down for a while moves the threshold with it, and bounded in memory.
type Window struct {
	mu     sync.Mutex
	ring   []float64
	next   int
	filled bool
	sorted []float64 // ring sorted, rebuilt lazily after an Add
	dirty  bool
}

// NewWindow keeps the last size samples (at least 1).
func NewWindow(size int) *Window { return &Window{ring: make([]float64, max(size, 1))} }

// Add records a sample.
func (w *Window) Add(x float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ring[w.next] = x
	w.next++
	if w.next == len(w.ring) {
		w.next, w.filled = 0, true
	}
	w.dirty = true
}

// Len is the number of samples held.
func (w *Window) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lenLocked()
}

func (w *Window) lenLocked() int {
	if w.filled {
		return len(w.ring)
	}
	return w.next
}

// Quantile returns the q-quantile (0..1, nearest rank) of the samples held;
// false when there are none.
func (w *Window) Quantile(q float64) (float64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.lenLocked()
	if n == 0 {
		return 0, false
	}
	if w.dirty {
		w.sorted = append(w.sorted[:0], w.ring[:n]...)
		slices.Sort(w.sorted)
		w.dirty = false
	}
	i := int(q*float64(n)+0.999999) - 1 // nearest rank: ceil(q*n), from 1
	return w.sorted[min(max(i, 0), n-1)], true
}
