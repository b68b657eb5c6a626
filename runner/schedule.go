package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// execute starts every stage at once; each waits for its inputs (see
// runStage), so independent stages run concurrently. The first stage to
// fail cancels the rest, and its error is the run's (not logged: the
// caller prints it); an interrupted run ends with the context's cause.
func (x *execution) execute(ctx context.Context) error {
	x.runCtx = ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, st := range x.order {
		sr := x.runs[st.Name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			x.runStage(ctx, sr)
			if sr.status() != StatusFailed {
				return
			}
			err := fmt.Errorf("stage %s: %w", st.Name, sr.err)
			mu.Lock()
			isFirst := first == nil && ctx.Err() == nil
			if isFirst {
				first = err
			}
			mu.Unlock()
			if !isFirst && !endedBy(ctx, sr.err) {
				// The run's error is printed once, by the caller; a
				// failure besides it is logged here.
				x.opts.Log.Error("stage failed", "stage", st.Name, "err", sr.err)
			}
			cancel(err)
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return context.Cause(ctx)
}

// endedBy says whether err is only the end of ctx (Ctrl-C, or another
// stage's failure): the run's error already says that.
func endedBy(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, ctx.Err()) || errors.Is(err, context.Cause(ctx)))
}
