package safe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestGroupReturnsFirstPanicAndCancels(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	g := NewGroup(cancel)
	release := make(chan struct{})
	g.Go(func() { <-release }) // a worker that does not panic
	g.Go(func() {
		defer close(release)
		var m map[string]int
		m["boom"]++
	})
	err := g.Wait()
	p, ok := errors.AsType[*PanicError](err)
	if !ok || err.Error() != "panic: assignment to entry in nil map" || !strings.Contains(string(p.Stack), "safe_test.go") {
		t.Fatalf("Wait = %v, want the panic with its stack", err)
	}
	if cause := context.Cause(ctx); cause != err {
		t.Errorf("cancelled with %v, want the panic", cause)
	}
}

func TestGroupWithoutPanic(t *testing.T) {
	g := NewGroup(nil)
	n := make(chan int, 3)
	for i := range 3 {
		g.Go(func() { n <- i })
	}
	if err := g.Wait(); err != nil || len(n) != 3 {
		t.Fatalf("Wait = %v after %d of 3 goroutines", err, len(n))
	}
}

// A panic passed on by the goroutine that waited for it keeps the stack
// of the goroutine where it happened.
func TestCallKeepsFirstStack(t *testing.T) {
	first := Call(func() { panic("at the source") })
	again := Call(func() { panic(first) })
	if again != first {
		t.Errorf("re-raised panic %p became %p", first, again)
	}
	if Call(func() {}) != nil {
		t.Error("Call of a function that returns reports a panic")
	}
}

func TestRecover(t *testing.T) {
	var err error
	func() {
		defer Recover(&err)
		panic(fmt.Errorf("wrapped %d", 7))
	}()
	if _, ok := errors.AsType[*PanicError](err); !ok || err.Error() != "panic: wrapped 7" {
		t.Fatalf("err = %v, want the panic", err)
	}
}

func TestForEachRunsEveryJobOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{}
	workers := 0
	err := ForEach(context.Background(), 100, 4, func() func(int) {
		mu.Lock()
		workers++
		mu.Unlock()
		return func(j int) { mu.Lock(); seen[j]++; mu.Unlock() }
	})
	if err != nil || len(seen) != 100 || workers != 4 {
		t.Fatalf("err %v, %d jobs seen, %d workers; want nil, 100, 4", err, len(seen), workers)
	}
	for j, n := range seen {
		if n != 1 {
			t.Errorf("job %d ran %d times", j, n)
		}
	}
}

func TestForEachStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ran := 0
	err := ForEach(ctx, 1000, 1, func() func(int) {
		return func(j int) {
			ran++
			if j == 9 {
				cancel()
			}
		}
	})
	if !errors.Is(err, context.Canceled) || ran >= 1000 {
		t.Fatalf("err %v after %d jobs; want context.Canceled well before 1000", err, ran)
	}
}
