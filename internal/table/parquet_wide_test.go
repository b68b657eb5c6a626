package table

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
)

// wideRecord is shaped like fetch-hash's output with fingerprints: a key
// per row and a 4393-byte binary value, null in every 7th row, the values
// repeating (copies of one image share a fingerprint).
func wideRecord(mem memory.Allocator, rows int) arrow.RecordBatch {
	r := rand.New(rand.NewPCG(3, 4))
	distinct := make([][]byte, 100)
	for i := range distinct {
		distinct[i] = make([]byte, 4393)
		for j := range distinct[i] {
			distinct[i][j] = byte(r.Uint32())
		}
	}
	keys := make([]string, rows)
	b := array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary)
	defer b.Release()
	for i := range rows {
		keys[i] = "datasets/c1/" + string(rune('a'+i%26))
		if i%7 == 3 {
			b.AppendNull()
		} else {
			b.Append(distinct[i%len(distinct)])
		}
	}
	return New(Strings(mem, "key", keys), Column{Name: "fingerprint", Array: b.NewArray()})
}

// A table with wide values is written in small pages (widePages), and
// reads back the same.
func TestParquetFastWideRoundTrip(t *testing.T) {
	mem := checkedMem(t)
	rec := wideRecord(mem, 3300)
	defer rec.Release()
	if widePages(rec) == nil {
		t.Fatal("widePages: no properties for a table of 4.4 KB values")
	}
	var buf bytes.Buffer
	if err := WriteParquetFast(&buf, rec); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "wide.parquet")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := f.RowGroup(0).GetColumnPageReader(1)
	if err != nil {
		t.Fatal(err)
	}
	pages, size := 0, 0
	for pr.Next() {
		if p := pr.Page(); p.Type() == file.PageTypeDataPage {
			pages++
			size = max(size, len(p.Data()))
		}
	}
	f.Close()
	if pages < 10 || size > 2*widePageBytes {
		t.Errorf("fingerprint column in %d data pages of up to %d bytes, want pages of ~%d", pages, size, widePageBytes)
	}
	back, err := ReadParquet(context.Background(), mem, path)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Release()
	if !array.RecordEqual(rec, back) {
		t.Error("wide table changed in the round trip")
	}
}

// BenchmarkWriteParquetFastWide writes a table shaped like fetch-hash's
// output with fingerprints (3300 rows of 4.4 KB) as the stage cache does,
// with widePages and with arrow-go's default batches and pages.
func BenchmarkWriteParquetFastWide(b *testing.B) {
	rec := wideRecord(memory.NewGoAllocator(), 3300)
	b.Run("wide-pages", func(b *testing.B) {
		for b.Loop() {
			if err := WriteParquetFast(io.Discard, rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("defaults", func(b *testing.B) {
		for b.Loop() {
			if err := writeParquet(io.Discard, rec, fastProps(nil), false); err != nil {
				b.Fatal(err)
			}
		}
	})
}
