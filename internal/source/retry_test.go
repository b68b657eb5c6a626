package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// flakyStore fails the first `fail` Gets of every key with err, then serves
// body; a stall body blocks until the context ends.
type flakyStore struct {
	fail  int
	err   error
	body  string
	stall bool
	gets  int
}

func (f *flakyStore) List(context.Context, func(Object) error) error { return nil }
func (f *flakyStore) URI(key string) string                          { return key }

func (f *flakyStore) Get(ctx context.Context, key string) (io.ReadCloser, Version, error) {
	f.gets++
	if f.gets <= f.fail {
		return nil, Version{}, f.err
	}
	if f.stall {
		return io.NopCloser(blockingReader{ctx}), Version{Size: -1}, nil
	}
	return io.NopCloser(strings.NewReader(f.body)), Version{Size: int64(len(f.body))}, nil
}

type blockingReader struct{ ctx context.Context }

func (b blockingReader) Read([]byte) (int, error) {
	<-b.ctx.Done()
	return 0, b.ctx.Err()
}

func readAll(got *string) func(io.Reader) error {
	return func(r io.Reader) error {
		b, err := io.ReadAll(r)
		*got = string(b)
		return err
	}
}

func TestRetryRecoversFromTransientFailures(t *testing.T) {
	s := &flakyStore{fail: 2, err: errors.New("503 SlowDown"), body: "png bytes"}
	var got string
	n, err := Retry{Attempts: 4, Stall: time.Second}.Read(context.Background(), s, "k", readAll(&got))
	if err != nil || n != 3 || got != "png bytes" {
		t.Fatalf("attempts %d, err %v, body %q; want 3, nil, the body", n, err, got)
	}
}

func TestRetryGivesUpAfterAttempts(t *testing.T) {
	s := &flakyStore{fail: 100, err: errors.New("500 InternalError")}
	var got string
	n, err := Retry{Attempts: 3, Stall: time.Second}.Read(context.Background(), s, "k", readAll(&got))
	if n != 3 || s.gets != 3 || err == nil || !strings.Contains(err.Error(), "InternalError") {
		t.Fatalf("attempts %d, gets %d, err %v; want 3, 3 and the last error", n, s.gets, err)
	}
}

func TestRetryDoesNotRetryPermanentFailures(t *testing.T) {
	s := &flakyStore{fail: 100, err: fmt.Errorf("%w: access denied", ErrPermanent)}
	var got string
	n, err := Retry{Attempts: 4, Stall: time.Second}.Read(context.Background(), s, "k", readAll(&got))
	if n != 1 || s.gets != 1 || !errors.Is(err, ErrPermanent) {
		t.Fatalf("attempts %d, gets %d, err %v; want one attempt and the permanent error", n, s.gets, err)
	}
}

func TestRetryRetriesWhatReadRefuses(t *testing.T) {
	s := &flakyStore{body: "short"}
	calls := 0
	n, err := Retry{Attempts: 2, Stall: time.Second}.Read(context.Background(), s, "k", func(io.Reader) error {
		calls++
		if calls == 1 {
			return errors.New("got 5 bytes, listing says 9")
		}
		return nil
	})
	if err != nil || n != 2 || s.gets != 2 {
		t.Fatalf("attempts %d, gets %d, err %v; want a second GET after the refused body", n, s.gets, err)
	}
}

func TestRetryCutsOffAStalledBody(t *testing.T) {
	s := &flakyStore{stall: true}
	var got string
	n, err := Retry{Attempts: 2, Stall: 20 * time.Millisecond}.Read(context.Background(), s, "k", readAll(&got))
	if n != 2 || err == nil || !strings.Contains(err.Error(), "no data for 20ms") {
		t.Fatalf("attempts %d, err %v; want 2 attempts ending in the stall cause", n, err)
	}
}

// A throttled answer costs no attempt: it asks for a slower pace, not
// for giving up on the object (up to maxThrottled of them).
func TestRetryThrottledCostsNoAttempt(t *testing.T) {
	s := &flakyStore{fail: 5, err: fmt.Errorf("%w: 503 SlowDown", ErrThrottled), body: "png bytes"}
	var got string
	n, err := Retry{Attempts: 2, Stall: time.Second, Backoff: time.Millisecond}.Read(context.Background(), s, "k", readAll(&got))
	if err != nil || n != 6 || got != "png bytes" {
		t.Fatalf("requests %d, err %v, body %q; want 6 (5 throttled), nil, the body", n, err, got)
	}
	s = &flakyStore{fail: 100, err: fmt.Errorf("%w: 503 SlowDown", ErrThrottled)}
	n, err = Retry{Attempts: 2, Stall: time.Second, Backoff: time.Millisecond}.Read(context.Background(), s, "k", readAll(&got))
	if !Throttled(err) || n != maxThrottled+2 {
		t.Fatalf("requests %d, err %v; want %d (the throttled allowance, then the attempts) and the throttled error", n, err, maxThrottled+2)
	}
}
