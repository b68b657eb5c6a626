package fetchpolicy

import (
	"context"
	"sync"
)

// AIMD limits the requests in flight of one fetch, the way TCP limits its
// window: each request that succeeds raises the limit by 1/limit (about one
// more per round of requests), and a throttled answer (503 SlowDown) halves
// it. A throttling server then sees the whole fetch slow down, not one
// worker; the limit climbs back when throttling stops. One decrease per
// round: the answers to requests sent before the last decrease say nothing
// about the lowered rate, so they do not lower it again.
type AIMD struct {
	mu       sync.Mutex
	limit    float64
	min, max float64
	inflight int
	seq      uint64 // requests started
	epoch    uint64 // seq at the last decrease
	wake     chan struct{}
}

// Backoff is the factor applied to the limit on a throttled answer.
const Backoff = 0.5

// NewAIMD starts at hi requests in flight and never goes below lo.
func NewAIMD(lo, hi int) *AIMD {
	lo = max(lo, 1)
	hi = max(hi, lo)
	return &AIMD{limit: float64(hi), min: float64(lo), max: float64(hi), wake: make(chan struct{})}
}

// Slot is one request's admission; Done reports how it ended.
type Slot struct {
	a   *AIMD
	seq uint64
}

// Acquire waits until a request may start (fewer than the limit in flight).
func (a *AIMD) Acquire(ctx context.Context) (Slot, error) {
	a.mu.Lock()
	for a.inflight >= int(a.limit) {
		wake := a.wake
		a.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return Slot{}, ctx.Err()
		}
		a.mu.Lock()
	}
	a.inflight++
	a.seq++
	s := Slot{a, a.seq}
	a.mu.Unlock()
	return s, nil
}

// Done releases the slot: throttled says the answer was a 503 SlowDown;
// otherwise the request counts as a success for the limit (a failure of
// another kind says nothing about the rate).
func (s Slot) Done(throttled bool) {
	a := s.a
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inflight--
	switch {
	case throttled && s.seq > a.epoch:
		a.limit = max(a.min, a.limit*Backoff)
		a.epoch = a.seq
	case !throttled:
		a.limit = min(a.max, a.limit+1/a.limit)
	}
	close(a.wake)
	a.wake = make(chan struct{})
}

// Limit is the current limit, rounded down.
func (a *AIMD) Limit() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return int(a.limit)
}
