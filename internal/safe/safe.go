// Package safe keeps a panic in a goroutine a stage starts from crashing
// the process: the panic is recovered where it happens and comes back to
// the goroutine that waits for it as an error, which fails only that
// stage (the runner logs its stack).
package safe

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
)

// PanicError is a recovered panic: its value, and the stack of the
// goroutine that panicked (the waiter's stack would not show the bug).
type PanicError struct {
	Value any
	Stack []byte
}

func (p *PanicError) Error() string { return fmt.Sprintf("panic: %v", p.Value) }

// Call runs fn and returns the panic it raised, if any. A *PanicError
// raised again (by a goroutine passing on a helper's panic) is returned
// as it is, with its first stack.
func Call(fn func()) (p *PanicError) {
	defer func() {
		if r := recover(); r != nil {
			p = recovered(r)
		}
	}()
	fn()
	return nil
}

// Recover, deferred, turns a panic of the function deferring it into
// *err, for a goroutine that reports its outcome in a field rather than
// to a Group. It must be deferred directly (defer safe.Recover(&err)).
func Recover(err *error) {
	if r := recover(); r != nil {
		*err = recovered(r)
	}
}

func recovered(r any) *PanicError {
	if p, ok := r.(*PanicError); ok {
		return p
	}
	return &PanicError{Value: r, Stack: debug.Stack()}
}

// Group waits for goroutines like a sync.WaitGroup; the first panic in
// one is recovered, passed to cancel (so that the others and whatever
// feeds them stop) and returned by Wait.
type Group struct {
	wg     sync.WaitGroup
	cancel context.CancelCauseFunc
	mu     sync.Mutex
	first  *PanicError
}

// NewGroup returns a Group that cancels with cancel (nil: none) on a panic.
func NewGroup(cancel context.CancelCauseFunc) *Group { return &Group{cancel: cancel} }

// Go runs fn on a new goroutine.
func (g *Group) Go(fn func()) {
	g.wg.Go(func() {
		p := Call(fn)
		if p == nil {
			return
		}
		g.mu.Lock()
		if g.first == nil {
			g.first = p
		}
		g.mu.Unlock()
		if g.cancel != nil {
			g.cancel(p)
		}
	})
}

// Wait waits for every goroutine and returns the first panic, or nil.
func (g *Group) Wait() error {
	g.wg.Wait()
	if g.first != nil {
		return g.first
	}
	return nil
}

// ForEach runs jobs 0..n-1 on up to workers goroutines. newWorker is
// called once per goroutine (for scratch space of its own) and returns the
// function that does one job. It stops handing out jobs when ctx ends (and
// returns ctx's error) or a job panics (and returns that *PanicError).
func ForEach(ctx context.Context, n, workers int, newWorker func() func(job int)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	g := NewGroup(cancel)
	for range min(max(1, workers), max(1, n)) {
		g.Go(func() {
			do := newWorker()
			for j := range next {
				do(j)
			}
		})
	}
	var err error
feed:
	for j := range n {
		if err = ctx.Err(); err != nil {
			break
		}
		select {
		case next <- j:
		case <-ctx.Done(): // workers that panicked take no more
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	if perr := g.Wait(); perr != nil {
		return perr
	}
	return err
}
