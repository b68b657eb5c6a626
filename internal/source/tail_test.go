package source

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kneepipe/kneepipe/internal/fetchpolicy"
)

// scriptStore answers the n-th Get (from 1, over all keys) as script says.
type scriptStore struct {
	mu     sync.Mutex
	gets   int
	script func(ctx context.Context, n int) (io.ReadCloser, Version, error)
}

func (s *scriptStore) List(context.Context, func(Object) error) error { return nil }
func (s *scriptStore) URI(key string) string                          { return key }

func (s *scriptStore) Get(ctx context.Context, key string) (io.ReadCloser, Version, error) {
	s.mu.Lock()
	s.gets++
	n := s.gets
	s.mu.Unlock()
	return s.script(ctx, n)
}

const body = "png bytes"

func served() (io.ReadCloser, Version, error) {
	return io.NopCloser(strings.NewReader(body)), Version{Size: int64(len(body))}, nil
}

// stalled is a body that sends half its bytes, then nothing until its
// request is cancelled, which it reports on cancelled.
type stalled struct {
	ctx       context.Context
	sent      bool
	cancelled chan struct{}
}

func (s *stalled) Read(p []byte) (int, error) {
	if !s.sent {
		s.sent = true
		return copy(p, body[:4]), nil
	}
	<-s.ctx.Done()
	close(s.cancelled)
	return 0, s.ctx.Err()
}

// primedTail has seen 64 fast requests, so that a slow one is hedged at
// the floor, lowered to 10 ms.
func primedTail(concurrency int) *Tail {
	t := NewTail(concurrency)
	t.hedge.Floor = 10 * time.Millisecond
	for range 64 {
		t.hedge.Observe(time.Millisecond, time.Millisecond, 1000)
	}
	return t
}

func fetchBody(t *testing.T, r Retry, s Store) (string, int, error) {
	t.Helper()
	return Fetch(context.Background(), r, s, "k", func(b io.Reader, _ Version) (string, error) {
		data, err := io.ReadAll(b)
		if err == nil && len(data) != len(body) {
			err = fmt.Errorf("got %d bytes", len(data))
		}
		return string(data), err
	})
}

// awaitClosed fails the test if ch is not closed within 10 s.
func awaitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("not %s after 10 s", what)
	}
}

// A body that stalls is hedged long before the stall timeout: the hedge's
// body wins and the stalled request is cancelled.
func TestHedgeWinsOverAStalledBody(t *testing.T) {
	cancelled := make(chan struct{})
	s := &scriptStore{script: func(ctx context.Context, n int) (io.ReadCloser, Version, error) {
		if n == 1 {
			return io.NopCloser(&stalled{ctx: ctx, cancelled: cancelled}), Version{Size: int64(len(body))}, nil
		}
		return served()
	}}
	tail := primedTail(4)
	got, n, err := fetchBody(t, Retry{Attempts: 1, Stall: time.Hour, Tail: tail}, s)
	if err != nil || got != body || n != 1 {
		t.Fatalf("body %q, attempts %d, err %v; want the body from the hedge in one attempt", got, n, err)
	}
	awaitClosed(t, cancelled, "the stalled request cancelled")
	if st := tail.Stats(); st.Hedged != 1 || st.HedgeWon != 1 || st.Retried != 0 {
		t.Errorf("stats %+v, want one hedge, won, no retry", st)
	}
}

// A hedge that fails while the request is still out is followed by
// another.
func TestFailedHedgeIsHedgedAgain(t *testing.T) {
	s := &scriptStore{script: func(ctx context.Context, n int) (io.ReadCloser, Version, error) {
		switch n {
		case 1:
			return io.NopCloser(&stalled{ctx: ctx, cancelled: make(chan struct{})}), Version{Size: int64(len(body))}, nil
		case 2:
			return nil, Version{}, fmt.Errorf("%w: 503 SlowDown", ErrThrottled)
		}
		return served()
	}}
	tail := primedTail(4)
	if got, _, err := fetchBody(t, Retry{Attempts: 1, Stall: time.Hour, Tail: tail}, s); err != nil || got != body {
		t.Fatalf("body %q, err %v; want the second hedge's body", got, err)
	}
	if st := tail.Stats(); st.Hedged != 2 || st.HedgeWon != 1 || s.gets != 3 {
		t.Errorf("stats %+v, %d GETs; want 2 hedges, one won, 3 GETs", st, s.gets)
	}
}

// Headers that do not come are hedged too.
func TestHedgeWinsOverLateHeaders(t *testing.T) {
	cancelled := make(chan struct{})
	s := &scriptStore{script: func(ctx context.Context, n int) (io.ReadCloser, Version, error) {
		if n == 1 {
			<-ctx.Done()
			close(cancelled)
			return nil, Version{}, ctx.Err()
		}
		return served()
	}}
	tail := primedTail(4)
	if got, _, err := fetchBody(t, Retry{Attempts: 1, Stall: time.Hour, Tail: tail}, s); err != nil || got != body {
		t.Fatalf("body %q, err %v; want the hedge's body", got, err)
	}
	awaitClosed(t, cancelled, "the late request cancelled")
	if st := tail.Stats(); st.Hedged != 1 || st.HedgeWon != 1 {
		t.Errorf("stats %+v, want one hedge, won", st)
	}
}

// Without samples there is nothing to call slow: no hedge, and the stall
// timeout ends the request.
func TestNoHedgeBeforeSamples(t *testing.T) {
	s := &scriptStore{script: func(ctx context.Context, n int) (io.ReadCloser, Version, error) {
		return io.NopCloser(&stalled{ctx: ctx, cancelled: make(chan struct{})}), Version{Size: int64(len(body))}, nil
	}}
	tail := NewTail(4)
	_, _, err := fetchBody(t, Retry{Attempts: 1, Stall: 50 * time.Millisecond, Tail: tail}, s)
	if err == nil || !strings.Contains(err.Error(), "no data for 50ms") {
		t.Fatalf("err %v, want the stall timeout", err)
	}
	if st := tail.Stats(); st.Hedged != 0 || s.gets != 1 {
		t.Errorf("stats %+v, %d GETs; want no hedge", st, s.gets)
	}
}

// Hedges stay within the budget (5 % of requests plus 2): past it a stall
// waits for the stall timeout.
func TestHedgesWithinBudget(t *testing.T) {
	s := &scriptStore{script: func(ctx context.Context, n int) (io.ReadCloser, Version, error) {
		return io.NopCloser(&stalled{ctx: ctx, cancelled: make(chan struct{})}), Version{Size: int64(len(body))}, nil
	}}
	tail := primedTail(4)
	_, _, err := fetchBody(t, Retry{Attempts: 2, Stall: 50 * time.Millisecond, Tail: tail}, s)
	if err == nil {
		t.Fatal("every request stalled, yet the fetch succeeded")
	}
	// Two rounds: each its request; the first round's is hedged (burst),
	// the second's too (burst); both hedges stall as well.
	if st := tail.Stats(); st.Hedged != 2 || st.HedgeWon != 0 || s.gets != 4 {
		t.Errorf("stats %+v, %d GETs; want 2 hedges, none won, 4 GETs", st, s.gets)
	}
	_, _, err = fetchBody(t, Retry{Attempts: 1, Stall: 50 * time.Millisecond, Tail: tail}, s)
	if st := tail.Stats(); err == nil || st.Hedged != 2 || s.gets != 5 {
		t.Errorf("stats %+v, %d GETs, err %v; want no third hedge (3 requests allow 2.15)", st, s.gets, err)
	}
}

// Throttled answers are counted, retried and lower the fetch's limit.
func TestThrottlingLowersTheLimit(t *testing.T) {
	s := &scriptStore{script: func(ctx context.Context, n int) (io.ReadCloser, Version, error) {
		if n <= 3 {
			return nil, Version{}, fmt.Errorf("%w: 503 SlowDown", ErrThrottled)
		}
		return served()
	}}
	tail := NewTail(16)
	got, n, err := fetchBody(t, Retry{Attempts: 1, Stall: time.Hour, Backoff: time.Millisecond, Tail: tail}, s)
	if err != nil || got != body || n != 4 {
		t.Fatalf("body %q, requests %d, err %v; want the body after 3 throttled answers", got, n, err)
	}
	st := tail.Stats()
	if st.Throttled != 3 || st.Retried != 3 || st.LowestLimit != 4 {
		t.Errorf("stats %+v, want 3 throttled, 3 retried, the limit halved to its floor, a quarter: 4", st)
	}
	if l := tail.limit.Limit(); l != 4 {
		t.Errorf("limit %d after one success, want 4 (1/limit more per success)", l)
	}
}

// A hedge that stalls as well is watched and hedged in turn.
func TestStalledHedgeIsHedgedAgain(t *testing.T) {
	s := &scriptStore{script: func(ctx context.Context, n int) (io.ReadCloser, Version, error) {
		if n <= 2 {
			return io.NopCloser(&stalled{ctx: ctx, cancelled: make(chan struct{})}), Version{Size: int64(len(body))}, nil
		}
		return served()
	}}
	tail := primedTail(4)
	got, _, err := fetchBody(t, Retry{Attempts: 1, Stall: time.Hour, Tail: tail}, s)
	if err != nil || got != body {
		t.Fatalf("body %q, err %v; want the second hedge's body", got, err)
	}
	if st := tail.Stats(); st.Hedged != 2 || st.HedgeWon != 1 || s.gets != 3 {
		t.Errorf("stats %+v, %d GETs; want 2 hedges, one won, 3 GETs", st, s.gets)
	}
}

// A request sent before the fetch had measured enough requests is hedged
// once it has: the first requests of a fetch are not left to the stall
// timeout.
func TestEarlyRequestHedgedOnceMeasured(t *testing.T) {
	started := make(chan struct{})
	s := &scriptStore{script: func(ctx context.Context, n int) (io.ReadCloser, Version, error) {
		if n == 1 {
			close(started)
			return io.NopCloser(&stalled{ctx: ctx, cancelled: make(chan struct{})}), Version{Size: int64(len(body))}, nil
		}
		return served()
	}}
	tail := NewTail(4)
	tail.hedge.Floor = 10 * time.Millisecond
	type res struct {
		body string
		err  error
	}
	done := make(chan res, 1)
	go func() {
		got, _, err := fetchBody(t, Retry{Attempts: 1, Stall: time.Hour, Tail: tail}, s)
		done <- res{got, err}
	}()
	<-started
	for range 64 { // the other workers' requests, measured meanwhile
		tail.hedge.Observe(time.Millisecond, time.Millisecond, 1000)
	}
	select {
	case r := <-done:
		if r.err != nil || r.body != body {
			t.Fatalf("body %q, err %v; want the hedge's body", r.body, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the early request was not hedged within 10 s")
	}
	if st := tail.Stats(); st.Hedged != 1 || st.HedgeWon != 1 {
		t.Errorf("stats %+v, want one hedge, won", st)
	}
}

// When the last hedge fails too, the stalled request is given up: the
// round fails and is retried, rather than waiting for the stall timeout.
func TestLastHedgeFailedGivesUpTheRound(t *testing.T) {
	cancelled := make(chan struct{})
	s := &scriptStore{script: func(ctx context.Context, n int) (io.ReadCloser, Version, error) {
		switch {
		case n == 1:
			return io.NopCloser(&stalled{ctx: ctx, cancelled: cancelled}), Version{Size: int64(len(body))}, nil
		case n <= 1+maxHedges:
			return nil, Version{}, fmt.Errorf("%w: 503 SlowDown", ErrThrottled)
		}
		return served()
	}}
	tail := primedTail(4)
	tail.budget = fetchpolicy.NewBudget(0, maxHedges)
	got, n, err := fetchBody(t, Retry{Attempts: 1, Stall: time.Hour, Backoff: time.Millisecond, Tail: tail}, s)
	if err != nil || got != body || n != 2 {
		t.Fatalf("body %q, requests %d, err %v; want the body from a second round (the first ended throttled)", got, n, err)
	}
	awaitClosed(t, cancelled, "the stalled request given up")
	if st := tail.Stats(); st.Hedged != maxHedges || st.Throttled != 1 || s.gets != 2+maxHedges {
		t.Errorf("stats %+v, %d GETs; want %d hedges, the round throttled once, %d GETs", st, s.gets, maxHedges, 2+maxHedges)
	}
}
