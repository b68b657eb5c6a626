package export

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The writers over 1650 images of ~1.7 kB (the shape of the real set's
// clean rows, smaller images), streamed to disk as the export stage does.
func BenchmarkWriteWebDataset(b *testing.B) {
	s, imgs := testSplit(b, memory.NewGoAllocator(), "train", 1650)
	var n int64
	for _, img := range imgs {
		n += int64(len(img))
	}
	b.SetBytes(n)
	for b.Loop() {
		if _, err := WriteWebDataset(context.Background(), &DirSink{Dir: b.TempDir()}, s, Options{LabelNames: labels, MaxShardBytes: 500 << 20, MaxShardSamples: 10000}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteHuggingFace(b *testing.B) {
	mem := memory.NewGoAllocator()
	s, imgs := testSplit(b, mem, "train", 1650)
	var n int64
	for _, img := range imgs {
		n += int64(len(img))
	}
	b.SetBytes(n)
	for b.Loop() {
		if _, err := WriteHuggingFace(context.Background(), mem, &DirSink{Dir: b.TempDir()}, s, Options{LabelNames: labels, MaxShardBytes: 500 << 20}); err != nil {
			b.Fatal(err)
		}
	}
}
