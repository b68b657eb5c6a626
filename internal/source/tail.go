package source

import (
	"context"
	"io"
	"sync/atomic"
	"time"

	"github.com/kneepipe/kneepipe/internal/fetchpolicy"
	"github.com/kneepipe/kneepipe/internal/safe"
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

// NewTail serves a fetch of at most concurrency requests at once, never
// throttled below a quarter of that: a store that throttles a share of
// requests whatever the rate (a proxy's fault mix, a noisy neighbour)
// throttles some request of nearly every round, and AIMD would otherwise
// settle at one or two requests in flight, where one stalled body holds
// the whole fetch. Hedges are at most 5 % of its requests.
func NewTail(concurrency int) *Tail {
	t := &Tail{hedge: fetchpolicy.DefaultHedge(), budget: fetchpolicy.NewBudget(0.05, 2), limit: fetchpolicy.NewAIMD(concurrency/4, concurrency)}
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
// the others are cancelled. When one fails while another is still out,
// that one is watched in turn, up to maxHedges hedges; when the last
// hedge fails, the requests still out (all found slow) are given up and
// the round fails with its error. Hedges are outside the
// concurrency limit (the budget bounds them) so that a throttled fetch
// still cuts its stalls short.
func hedged[T any](ctx context.Context, t *Tail, stall time.Duration, s Store, key string, read func(io.Reader, Version) (T, error)) (T, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the losers
	results := make(chan outcome[T], 1+maxHedges)
	headers := make(chan sized, 1+maxHedges)
	send := func(id int) {
		go func() {
			var o outcome[T]
			if p := safe.Call(func() {
				o.v, o.err = once(ctx, stall, s, key, read, &probe{hedge: t.hedge, id: id, sized: headers})
			}); p != nil {
				o.err = p
			}
			o.hedge = id > 0
			results <- o
		}()
	}
	t.budget.Request()
	send(0)
	w := hedgeWatch{h: t.hedge, since: time.Now(), size: -1}
	timer := time.NewTimer(w.wait(time.Now()))
	defer timer.Stop()
	pending, hedges := 1, 0
	for {
		select {
		case o := <-results:
			if p, ok := o.err.(*safe.PanicError); ok {
				panic(p) // the request's panic, as when it is not hedged
			}
			pending--
			if o.err == nil {
				if o.hedge {
					t.counts.hedgeWon.Add(1)
				}
				return o.v, nil
			}
			if pending == 0 || (o.hedge && hedges == maxHedges) {
				// The last hedge failed: what is still out was found slow,
				// so the round ends and Fetch retries (after a backoff).
				var zero T
				return zero, o.err
			}
			// A failed hedge leaves a request already found slow: hedge
			// again at once. A failed request leaves its hedge, which may
			// be slow too: watch it from now.
			w = hedgeWatch{h: t.hedge, id: -1, since: time.Now(), size: -1}
			if o.hedge {
				w.since = time.Time{}
			}
			timer.Reset(w.wait(time.Now()))
		case hd := <-headers:
			if hd.id == w.id {
				w.since, w.size = time.Now(), hd.size
				timer.Reset(w.wait(time.Now()))
			}
		case now := <-timer.C:
			if hedges == maxHedges {
				continue
			}
			if d := w.wait(now); d > 0 {
				timer.Reset(d)
				continue
			}
			if !t.budget.Take() {
				timer.Reset(t.hedge.Floor) // the budget grows with requests
				continue
			}
			hedges++
			pending++
			t.counts.hedged.Add(1)
			send(hedges)
			// The hedge may be slow as well: it is watched in turn.
			w = hedgeWatch{h: t.hedge, id: hedges, since: now, size: -1}
			timer.Reset(w.wait(now))
		}
	}
}

// maxHedges bounds the hedges of one request.
const maxHedges = 3

// hedgeWatch says how long until the request it watches (id: 0 the
// request, then its hedges) is due for a hedge: since it was sent (size <
// 0) its headers are measured, since its headers its body. Before enough
// requests were measured it looks again after the hedge's floor.
type hedgeWatch struct {
	h     fetchpolicy.Hedge
	id    int
	since time.Time
	size  int64
}

func (w hedgeWatch) wait(now time.Time) time.Duration {
	after, ok := w.h.FirstByteAfter()
	if w.size >= 0 {
		after, ok = w.h.BodyAfter(w.size)
	}
	if !ok {
		return w.h.Floor
	}
	return max(w.since.Add(after).Sub(now), 0)
}

// sized says request id's headers came, announcing size bytes.
type sized struct {
	id   int
	size int64
}

// probe records a request's latencies into the hedge's windows and tells
// hedged when its headers came.
type probe struct {
	hedge fetchpolicy.Hedge
	id    int
	sized chan<- sized
}

func (p *probe) headers(size int64) {
	if p != nil {
		p.sized <- sized{p.id, size}
	}
}

func (p *probe) done(firstByte, body time.Duration, size int64) {
	if p != nil {
		p.hedge.Observe(firstByte, body, size)
	}
}
