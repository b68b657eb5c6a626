package fetchpolicy

import (
	"context"
	"testing"
)

func acquire(t *testing.T, a *AIMD) Slot {
	t.Helper()
	s, err := a.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A throttled answer halves the limit once per round: answers to requests
// sent before the decrease do not decrease it again.
func TestAIMDDecreasesOncePerRound(t *testing.T) {
	a := NewAIMD(1, 16)
	var round []Slot
	for range 16 {
		round = append(round, acquire(t, a))
	}
	for _, s := range round {
		s.Done(true) // the whole round was throttled
	}
	if got := a.Limit(); got != 8 {
		t.Fatalf("limit %d after a throttled round of 16, want 8", got)
	}
	s := acquire(t, a) // sent after the decrease
	s.Done(true)
	if got := a.Limit(); got != 4 {
		t.Errorf("limit %d after a throttled request of the next round, want 4", got)
	}
}

func TestAIMDFloorAndRecovery(t *testing.T) {
	a := NewAIMD(2, 16)
	for range 10 {
		acquire(t, a).Done(true)
	}
	if got := a.Limit(); got != 2 {
		t.Fatalf("limit %d after ten throttled rounds, want the floor 2", got)
	}
	// Additive increase: about one more per round of successes.
	n := 0
	for a.Limit() < 16 {
		acquire(t, a).Done(false)
		if n++; n > 1000 {
			t.Fatalf("limit %d after 1000 successes, want back to 16", a.Limit())
		}
	}
	if n < 14*2 || n > 16*16 {
		t.Errorf("%d successes to climb from 2 to 16, want additive (between 28 and 256)", n)
	}
	acquire(t, a).Done(false)
	if got := a.Limit(); got != 16 {
		t.Errorf("limit %d, want capped at 16", got)
	}
}

// Acquire waits while the limit is reached, and gives up with its context.
func TestAIMDAdmitsUpToTheLimit(t *testing.T) {
	a := NewAIMD(1, 2)
	s1, s2 := acquire(t, a), acquire(t, a)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Acquire(ctx); err == nil {
		t.Fatal("a third request was admitted with a limit of 2")
	}
	got := make(chan Slot)
	go func() {
		s, err := a.Acquire(context.Background())
		if err == nil {
			got <- s
		}
	}()
	s1.Done(false)
	s3 := <-got // admitted once a slot was released
	s2.Done(false)
	s3.Done(false)
}
