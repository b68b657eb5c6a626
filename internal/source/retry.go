package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// Retry reads objects the way object stores need: a transient failure
// costs a retry (capped exponential backoff with jitter), not the object.
type Retry struct {
	Attempts int           // tries per object, at least 1
	Stall    time.Duration // an attempt whose body stops arriving this long is cut off
}

// Read opens key and hands its body to read. A failure of the request or
// of read (a short or damaged body, say) is retried; a permanent one
// (missing object, refused credentials) is not. It returns the attempts
// made and the last error.
func (r Retry) Read(ctx context.Context, s Store, key string, read func(io.Reader) error) (int, error) {
	_, n, err := Fetch(ctx, r, s, key, func(body io.Reader, _ Version) (struct{}, error) { return struct{}{}, read(body) })
	return n, err
}

// Fetch is Read for a reader that makes something of the bytes: read gets
// each attempt's body with the version the answer describes, and the value
// of the attempt that succeeds is returned.
func Fetch[T any](ctx context.Context, r Retry, s Store, key string, read func(io.Reader, Version) (T, error)) (T, int, error) {
	for attempt := 1; ; attempt++ {
		v, err := once(ctx, r.Stall, s, key, read)
		if err == nil {
			return v, attempt, nil
		}
		if attempt >= r.Attempts || ctx.Err() != nil || Permanent(err) {
			return v, attempt, err
		}
		backoff := min(100*time.Millisecond<<(attempt-1), 5*time.Second)
		select {
		case <-time.After(backoff/2 + rand.N(backoff/2+1)):
		case <-ctx.Done():
			return v, attempt, err
		}
	}
}

func once[T any](ctx context.Context, stall time.Duration, s Store, key string, read func(io.Reader, Version) (T, error)) (T, error) {
	var zero T
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(stall, func() { cancel(fmt.Errorf("no data for %s", stall)) })
	defer watchdog.Stop()
	// A store that retries a request itself (the S3 SDK after a 503) restarts
	// the watchdog with each attempt: its backoff is not a stall.
	ctx = WithAttemptHook(ctx, func() { watchdog.Reset(stall) })
	body, ver, err := s.Get(ctx, key)
	if err != nil {
		return zero, withCause(ctx, err)
	}
	defer body.Close()
	v, err := read(stallReader{body, watchdog, stall}, ver)
	if err != nil {
		return zero, withCause(ctx, err)
	}
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

type attemptHookKey struct{}

// WithAttemptHook returns a context whose store calls hook at the start of
// every attempt of a request it retries internally.
func WithAttemptHook(ctx context.Context, hook func()) context.Context {
	return context.WithValue(ctx, attemptHookKey{}, hook)
}

// attemptStarted calls the context's attempt hook, if any.
func attemptStarted(ctx context.Context) {
	if hook, ok := ctx.Value(attemptHookKey{}).(func()); ok {
		hook()
	}
}
