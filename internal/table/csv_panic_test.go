package table

import (
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/safe"
)

// panicAfter serves data, then panics: a reader with a bug.
type panicAfter struct{ data *strings.Reader }

func (p panicAfter) Read(b []byte) (int, error) {
	if p.data.Len() == 0 {
		panic("reader bug")
	}
	return p.data.Read(b)
}

// A panic in the reader, met by the goroutine cutting a big file, is the
// read's error, not a crash.
func TestReadCSVChunkedReaderPanicIsError(t *testing.T) {
	src := "a,b\n" + strings.Repeat("x,1\n", 100)
	_, err := readCSVChunked(memory.NewGoAllocator(), panicAfter{strings.NewReader(src)}, nil, int64(len(src)), 64, maxStringBytes)
	if p, ok := errors.AsType[*safe.PanicError](err); !ok || p.Value != "reader bug" {
		t.Fatalf("err = %v, want the reader's panic", err)
	}
}
