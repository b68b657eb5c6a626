package source

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/kneepipe/kneepipe/internal/safe"
)

// A panic in a listing worker is parallel's error; every worker panicking
// does not leave the loop that starts them waiting.
func TestParallelPanicIsError(t *testing.T) {
	items := make([]string, 20)
	for i := range items {
		items[i] = fmt.Sprint(i)
	}
	err := parallel(context.Background(), items, 2, func(context.Context, string) error {
		var m map[string]int
		m["boom"]++
		return nil
	})
	if _, ok := errors.AsType[*safe.PanicError](err); !ok {
		t.Fatalf("err = %v, want the workers' panic", err)
	}
}
