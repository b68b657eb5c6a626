package report

import (
	"context"
	"errors"
	"testing"

	"github.com/kneepipe/kneepipe/internal/safe"
)

// A panic in a thumbnail worker is forEach's error, not a crash; every
// worker panicking does not leave the feed waiting.
func TestForEachPanicIsError(t *testing.T) {
	err := forEach(context.Background(), 50, 2, func(int) {
		var m map[string]int
		m["boom"]++
	})
	if _, ok := errors.AsType[*safe.PanicError](err); !ok {
		t.Fatalf("err = %v, want the workers' panic", err)
	}
}
