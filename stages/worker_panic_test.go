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
	"github.com/kneepipe/kneepipe/internal/source"
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
		if !ok || !strings.Contains(string(p.Stack), "worker_panic_test.go") {
			t.Errorf("concurrency %d: err %v carries no stack of the panic", conc, err)
		}
	}
}

// panicStore is a store whose Get panics.
type panicStore struct{ *flakyStore }

func (panicStore) Get(context.Context, string) (io.ReadCloser, source.Version, error) {
	panic("store bug")
}

// A panic in one of the export's image workers fails the stage with the
// panic as its error, and every worker panicking ends the loop that
// starts them.
func TestExportStorePanicIsStageError(t *testing.T) {
	env := testEnv(t)
	env.StateDir = t.TempDir()
	st, rows := exportInput(t, env, 12, identity(12))
	env.Store = panicStore{st}
	_, err := build(t, "export", "{formats: [webdataset], concurrency: 2}").Run(t.Context(), env, map[string]arrow.RecordBatch{"rows": rows})
	if p, ok := errors.AsType[*safe.PanicError](err); !ok || p.Value != "store bug" {
		t.Fatalf("err = %v, want the store's panic", err)
	}
}
