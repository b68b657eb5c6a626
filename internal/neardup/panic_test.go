package neardup

import (
	"context"
	"errors"
	"testing"

	"github.com/kneepipe/kneepipe/internal/safe"
)

// A panic in a verify worker (here a nil fingerprint) is verify's error,
// not a crash; every worker panicking does not leave the feed waiting.
func TestVerifyPanicIsError(t *testing.T) {
	cand := make([][2]int32, 10*256)
	for i := range cand {
		cand[i] = [2]int32{0, 1}
	}
	_, err := verify(context.Background(), []*Fingerprint{nil, nil}, cand, 0.5, 2)
	if _, ok := errors.AsType[*safe.PanicError](err); !ok {
		t.Fatalf("err = %v, want the workers' panic", err)
	}
}
