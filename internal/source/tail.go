package source

import (
	"context"
	"io"
	"sync/atomic"
	"time"

	"github.com/kneepipe/kneepipe/internal/fetchpolicy"
)

// Tail is what the requests of one fetch share against an object store's
// long tail: the recent latencies that decide when a slow request is sent
// again in parallel (a hedge; the stall timeout stays the backstop), the
// budget that bounds hedges, the concurrency limit that throttled answers
// lower, and the counts run.json reports. A nil *Tail hedges nothing and
// limits nothing.
type Tail struct {
	hedge  fetchpolicy.Hedge
	budget *fetchpolicy.Budget
	limit  *fetchpolicy.AIMD
	counts tailCounts
}

type tailCounts struct {
	hedged, hedgeWon, retried, throttled atomic.Int64
	lowest                               atomic.Int64 // lowest concurrency limit reached
}

// NewTail serves a fetch of at most concurrency requests at once; hedges
// are at most 5 % of its requests.
func NewTail(concurrency int) *Tail {
	t := &Tail{hedge: fetchpolicy.DefaultHedge(), budget: fetchpolicy.NewBudget(0.05, 2), limit: fetchpolicy.NewAIMD(1, concurrency)}
	t.counts.lowest.Store(int64(concurrency))
	return t
}

// TailStats are the counts of one fetch.
type TailStats struct {
	Hedged    int64 // hedges sent
	HedgeWon  int64 // hedges that finished first
	Retried   int64 // requests sent again after a failure or a throttled answer
	Throttled int64 // throttled answers (503 SlowDown)
	// LowestLimit is the lowest the concurrency limit fell to.
	LowestLimit int64
}

// Stats returns the counts so far.
func (t *Tail) Stats() TailStats {
	c := &t.counts
	return TailStats{c.hedged.Load(), c.hedgeWon.Load(), c.retried.Load(), c.throttled.Load(), c.lowest.Load()}
}

func (t *Tail) count(f func(*tailCounts)) {
	if t != nil {
		f(&t.counts)
	}
}

// attempt makes one request for key within the fetch's concurrency limit,
// hedged when it is slow. A nil Tail makes one plain request.
func attempt[T any](ctx context.Context, t *Tail, stall time.Duration, s Store, key string, read func(io.Reader, Version) (T, error)) (T, error) {
	if t == nil {
		return once(ctx, stall, s, key, read, nil)
	}
	slot, err := t.limit.Acquire(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := hedged(ctx, t, stall, s, key, read)
	slot.Done(Throttled(err))
	if l := int64(t.limit.Limit()); l < t.counts.lowest.Load() {
		t.counts.lowest.Store(l) // racy minimum: a report figure, not a decision
	}
	return v, err
}

type outcome[T any] struct {
	v     T
	err   error
	hedge bool
}

// hedged sends the request and, once it is slower than the recent ones
// (its headers late, or its body late for its size) and the budget allows,
// the same request again: the first to bring a body read accepts wins,
// the others are cancelled. A hedge that fails while the request is still
// out is followed by another, up to maxHedges. Hedges are outside the
// concurrency limit (the budget bounds them) so that a throttled fetch
// still cuts its stalls short.
func hedged[T any](ctx context.Context, t *Tail, stall time.Duration, s Store, key string, read func(io.Reader, Version) (T, error)) (T, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the losers
	results := make(chan outcome[T], 1+maxHedges)
	headers := make(chan int64, 1)
	send := func(hedge bool, p *probe) {
		go func() {
			v, err := once(ctx, stall, s, key, read, p)
			results <- outcome[T]{v, err, hedge}
		}()
	}
	t.budget.Request()
	send(false, &probe{hedge: t.hedge, sized: headers})
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	arm := func(d time.Duration, ok bool) {
		timer.Stop()
		if ok {
			timer.Reset(d)
		}
	}
	arm(t.hedge.FirstByteAfter())
	pending, hedges := 1, 0
	var first error
	for {
		select {
		case o := <-results:
			pending--
			if o.err == nil {
				if o.hedge {
					t.counts.hedgeWon.Add(1)
				}
				return o.v, nil
			}
			if first == nil {
				first = o.err
			}
			if pending == 0 {
				var zero T
				return zero, first
			}
			if o.hedge && hedges < maxHedges {
				arm(t.hedge.FirstByteAfter())
			}
		case size := <-headers:
			if hedges == 0 {
				arm(t.hedge.BodyAfter(size))
			}
		case <-timer.C:
			if hedges < maxHedges && t.budget.Take() {
				hedges++
				pending++
				t.counts.hedged.Add(1)
				send(true, &probe{hedge: t.hedge})
			}
		}
	}
}

// maxHedges bounds the hedges of one request.
const maxHedges = 2

// probe records a request's latencies into the hedge's windows and tells
// hedged when its headers came (with the body's size).
type probe struct {
	hedge fetchpolicy.Hedge
	sized chan<- int64
}

func (p *probe) headers(size int64) {
	if p != nil && p.sized != nil {
		p.sized <- size
	}
}

func (p *probe) done(firstByte, body time.Duration, size int64) {
	if p != nil {
		p.hedge.Observe(firstByte, body, size)
	}
}
