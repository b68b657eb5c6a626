package table

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
)

func sampleRecord(mem memory.Allocator) arrow.RecordBatch {
	return New(
		Strings(mem, "relative_path", []string{"MedicalExpert-I/0Normal/NormalG0 (1).png", "MildG2 (3, copy).png", `q"z`, ""}),
		Int64s(mem, "severity", []int64{0, 2, 4, 0}, []bool{true, true, true, false}),
		Timestamps(mem, "last_modified", []arrow.Timestamp{ts("2024-01-02T03:04:05Z"), ts("2024-01-02T03:04:05.5Z"), 0, ts("1999-12-31T23:59:59.999999Z")}),
	)
}

func writeParquetFile(t *testing.T, rec arrow.RecordBatch, path string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteParquet(&b, rec); err != nil {
		t.Fatalf("WriteParquet: %v", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestParquetRoundTrip(t *testing.T) {
	mem := checkedMem(t)
	rec := sampleRecord(mem)
	defer rec.Release()
	dir := t.TempDir()
	first := writeParquetFile(t, rec, filepath.Join(dir, "a.parquet"))

	back, err := ReadParquet(context.Background(), mem, filepath.Join(dir, "a.parquet"))
	if err != nil {
		t.Fatalf("ReadParquet: %v", err)
	}
	defer back.Release()
	if !back.Schema().Equal(rec.Schema()) {
		t.Errorf("schema changed:\nwrote %v\nread  %v", rec.Schema(), back.Schema())
	}
	if !array.RecordEqual(rec, back) {
		t.Errorf("data changed:\nwrote %v\nread  %v", rec, back)
	}
	// The timezone survives, so the CSV of the read-back record is the same.
	if w, g := writeCSV(t, rec), writeCSV(t, back); w != g {
		t.Errorf("CSV differs after round trip:\n%s\n%s", w, g)
	}
	second := writeParquetFile(t, back, filepath.Join(dir, "b.parquet"))
	if !bytes.Equal(first, second) {
		t.Errorf("re-writing the read record gives different bytes (%d vs %d)", len(first), len(second))
	}
}

func TestParquetDeterministic(t *testing.T) {
	mem := checkedMem(t)
	a, b := sampleRecord(mem), sampleRecord(mem)
	defer a.Release()
	defer b.Release()
	dir := t.TempDir()
	if !bytes.Equal(writeParquetFile(t, a, filepath.Join(dir, "a")), writeParquetFile(t, b, filepath.Join(dir, "b"))) {
		t.Error("two writes of equal records differ")
	}
}

func TestParquetEmpty(t *testing.T) {
	mem := checkedMem(t)
	rec := New(Strings(mem, "relative_path", nil), Int64s(mem, "severity", nil, nil))
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "e.parquet")
	writeParquetFile(t, rec, path)
	back, err := ReadParquet(context.Background(), mem, path)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Release()
	if back.NumRows() != 0 || !back.Schema().Equal(rec.Schema()) {
		t.Errorf("got %d rows, schema %v", back.NumRows(), back.Schema())
	}
}

// More rows than one row group: the reader's chunks are concatenated into
// one array per column, values and order intact.
func TestParquetSeveralRowGroups(t *testing.T) {
	mem := checkedMem(t)
	n := rowGroupRows*2 + 3
	vals := make([]int64, n)
	for i := range vals {
		vals[i] = int64(i) * 7
	}
	rec := New(Int64s(mem, "v", vals, nil))
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "big.parquet")
	writeParquetFile(t, rec, path)
	back, err := ReadParquet(context.Background(), mem, path)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Release()
	if back.NumRows() != int64(n) {
		t.Fatalf("read %d rows, want %d", back.NumRows(), n)
	}
	col := back.Column(0).(*array.Int64)
	for _, i := range []int{0, rowGroupRows - 1, rowGroupRows, 2 * rowGroupRows, n - 1} {
		if col.Value(i) != int64(i)*7 {
			t.Errorf("v[%d] = %d, want %d", i, col.Value(i), i*7)
		}
	}
}

func TestReadParquetErrors(t *testing.T) {
	mem := checkedMem(t)
	dir := t.TempDir()
	if _, err := ReadParquet(context.Background(), mem, filepath.Join(dir, "missing.parquet")); !os.IsNotExist(err) {
		t.Errorf("missing file: err = %v, want not-exist", err)
	}
	bad := filepath.Join(dir, "bad.parquet")
	os.WriteFile(bad, []byte("a,b\n1,2\n"), 0o644)
	_, err := ReadParquet(context.Background(), mem, bad)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte(bad)) {
		t.Errorf("not parquet: err = %v, want an error naming %s", err, bad)
	}
}

// A string column too varied for one dictionary page made arrow-go list
// the column's page encodings in map order: the same data gave different
// footers. Each write must give the same bytes.
func TestWriteParquetDeterministicForLargeVariedColumns(t *testing.T) {
	mem := memory.NewGoAllocator()
	vals := make([]string, 200_000)
	for i := range vals {
		vals[i] = fmt.Sprintf("%064x", uint64(i)*0x9e3779b97f4a7c15)
	}
	rec := New(Strings(mem, "file_id", vals))
	defer rec.Release()
	var first []byte
	for i := range 4 {
		var buf bytes.Buffer
		if err := WriteParquet(&buf, rec); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = buf.Bytes()
			continue
		}
		if !bytes.Equal(first, buf.Bytes()) {
			t.Fatalf("write %d differs from the first (%d vs %d bytes)", i+1, buf.Len(), len(first))
		}
	}
}

// A string column Snappy cannot shrink (hex ids) is stored uncompressed,
// the others Snappy-compressed; both read back as written.
func TestParquetIncompressibleColumnUncompressed(t *testing.T) {
	mem := checkedMem(t)
	const n = 4000
	rng := rand.New(rand.NewPCG(5, 6))
	ids := make([]string, n)
	paths := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%016x%016x%016x", rng.Uint64(), rng.Uint64(), rng.Uint64())
		paths[i] = fmt.Sprintf("MedicalExpert-I/0Normal/NormalG0 (%d).png", i)
	}
	rec := New(Strings(mem, "file_id", ids), Strings(mem, "relative_path", paths))
	defer rec.Release()
	if !incompressible(rec.Column(0)) || incompressible(rec.Column(1)) {
		t.Fatalf("incompressible: ids %v, paths %v; want true, false", incompressible(rec.Column(0)), incompressible(rec.Column(1)))
	}
	path := filepath.Join(t.TempDir(), "t.parquet")
	data := writeParquetFile(t, rec, path)
	r, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for rg := range r.NumRowGroups() {
		md := r.MetaData().RowGroup(rg)
		for c, want := range []compress.Compression{compress.Codecs.Uncompressed, compress.Codecs.Snappy} {
			cc, err := md.ColumnChunk(c)
			if err != nil {
				t.Fatal(err)
			}
			if got := cc.Compression(); got != want {
				t.Errorf("row group %d column %d: %v, want %v", rg, c, got, want)
			}
		}
	}
	back, err := ReadParquet(context.Background(), mem, path)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Release()
	if !array.RecordEqual(back, rec) {
		t.Errorf("read back differs")
	}
	again := writeParquetFile(t, rec, path)
	if !bytes.Equal(data, again) {
		t.Errorf("two writes differ")
	}
}
