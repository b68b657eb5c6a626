package source

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// Retry reads objects the way object stores need: a transient failure
// costs a retry (capped exponential backoff with jitter), not the object.
// A throttled answer (503 SlowDown) costs no attempt: it is a request to
// slow down, retried up to maxThrottled times more.
type Retry struct {
	Attempts int           // tries per object, at least 1
	Stall    time.Duration // an attempt whose body stops arriving this long is cut off (the backstop: see Tail)
	Backoff  time.Duration // the first wait before a retry, doubled each time up to 5 s; 0: 100 ms
	// Tail, when set, is shared by the requests of one fetch: a slow
	// request is hedged and throttling lowers the fetch's concurrency.
	// Without it each request is on its own.
	Tail *Tail
}

// maxThrottled bounds the throttled answers one object may get.
const maxThrottled = 10

// Read opens key and hands its body to read. A failure of the request or
// of read (a short or damaged body, say) is retried; a permanent one
// (missing object, refused credentials) is not. It returns the requests
// made (throttled ones included) and the last error. read is never called
// concurrently: Read does not hedge.
func (r Retry) Read(ctx context.Context, s Store, key string, read func(io.Reader) error) (int, error) {
	r.Tail = nil
	_, n, err := Fetch(ctx, r, s, key, func(body io.Reader, _ Version) (struct{}, error) { return struct{}{}, read(body) })
	return n, err
}

// Fetch is Read for a reader that makes something of the bytes: read gets
// each request's body with the version the answer describes, and the value
// of the request that succeeds is returned. With r.Tail set, read may be
// called for two requests at once (a hedge): the first to succeed wins and
// the other's context is cancelled.
func Fetch[T any](ctx context.Context, r Retry, s Store, key string, read func(io.Reader, Version) (T, error)) (T, int, error) {
	throttled := 0
	for n := 1; ; n++ {
		v, err := attempt(ctx, r.Tail, r.Stall, s, key, read)
		if err == nil {
			return v, n, nil
		}
		if ctx.Err() != nil || Permanent(err) {
			return v, n, err
		}
		if Throttled(err) && throttled < maxThrottled {
			throttled++
			r.Tail.count(func(st *tailCounts) { st.throttled.Add(1) })
		} else if n-throttled >= r.Attempts {
			return v, n, err
		}
		r.Tail.count(func(st *tailCounts) { st.retried.Add(1) })
		backoff := min(cmp.Or(r.Backoff, 100*time.Millisecond)<<min(n-1, 6), 5*time.Second)
		select {
		case <-time.After(backoff/2 + rand.N(backoff/2+1)):
		case <-ctx.Done():
			return v, n, err
		}
	}
}

// once makes one request for key and hands its body to read, under the
// stall watchdog. When probe is set it learns when the headers came and
// how long the request took.
func once[T any](ctx context.Context, stall time.Duration, s Store, key string, read func(io.Reader, Version) (T, error), probe *probe) (T, error) {
	var zero T
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(stall, func() { cancel(fmt.Errorf("no data for %s", stall)) })
	defer watchdog.Stop()
	start := time.Now()
	body, ver, err := s.Get(ctx, key)
	if err != nil {
		return zero, withCause(ctx, err)
	}
	defer body.Close()
	headers := time.Now()
	probe.headers(ver.Size)
	v, err := read(stallReader{body, watchdog, stall}, ver)
	if err != nil {
		return zero, withCause(ctx, err)
	}
	probe.done(headers.Sub(start), time.Since(headers), ver.Size)
	return v, nil
}

// withCause prefers the reason a context was cancelled (a stall) to the
// bare "context canceled" the client reports.
func withCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// stallReader pushes the watchdog back on every read that brings bytes.
type stallReader struct {
	r     io.Reader
	timer *time.Timer
	stall time.Duration
}

func (s stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.timer.Reset(s.stall)
	}
	return n, err
}
