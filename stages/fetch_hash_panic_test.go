package stages

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/kneepipe/kneepipe/internal/safe"
)

// A Store whose Get panics (a bug in a store, reached from fetch-hash's
// download workers through a hedged request's goroutine) fails the stage
// with the panic as its error, stack attached, instead of crashing the
// process; every worker panicking does not leave the feed waiting.
func TestFetchHashStorePanicIsStageError(t *testing.T) {
	store := newMemStore()
	for i := range 8 {
		store.put(fmt.Sprintf("%d.png", i), grayPNG(t, 2, 2, byte(i)))
	}
	store.serve = func(context.Context, string, int, []byte) (io.Reader, error) {
		var m map[string]int
		m["boom"]++ // a nil map
		return nil, nil
	}
	env := fetchEnv(t, store)
	listed := run(t, env, "list", build(t, "list", "{suffix: ''}"), nil)
	for _, conc := range []int{1, 3} {
		_, err := build(t, "fetch-hash", fmt.Sprintf("{concurrency: %d}", conc)).Run(t.Context(), env, map[string]arrow.RecordBatch{"objects": listed.Outputs["objects"]})
		if err == nil || !strings.Contains(err.Error(), "panic: assignment to entry in nil map") {
			t.Fatalf("concurrency %d: err = %v, want the store's panic", conc, err)
		}
		p, ok := errors.AsType[*safe.PanicError](err)
		if !ok || !strings.Contains(string(p.Stack), "fetch_hash_panic_test.go") {
			t.Errorf("concurrency %d: err %v carries no stack of the panic", conc, err)
		}
	}
}
