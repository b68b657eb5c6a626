package safe

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
