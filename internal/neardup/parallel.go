package neardup

import (
	"context"

	"github.com/kneepipe/kneepipe/internal/safe"
)

// parallel runs jobs 0..n-1 on up to workers goroutines. newWorker is
// called once per goroutine (for its own scratch space) and returns the
// function that does one job. A panic in a job is returned as an error and
// stops the feed; so does the end of ctx.
func parallel(ctx context.Context, n, workers int, newWorker func() func(job int)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	g := safe.NewGroup(cancel)
	for range max(1, workers) {
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
