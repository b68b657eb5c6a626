package table

import (
	"bufio"
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// referenceCSV is the one-row-at-a-time writer WriteCSV replaced (fields
// as strings, quoted by strings.ContainsAny and ReplaceAll), kept to hold
// the chunked writer to the same bytes.
func referenceCSV(t *testing.T, rec arrow.RecordBatch) []byte {
	t.Helper()
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	row := make([]string, rec.NumCols())
	write := func() {
		for i, f := range row {
			if i > 0 {
				bw.WriteByte(',')
			}
			switch {
			case len(row) == 1 && f == "":
				bw.WriteString(`""`)
			case strings.ContainsAny(f, ",\"\n\r"):
				bw.WriteString(`"` + strings.ReplaceAll(f, `"`, `""`) + `"`)
			default:
				bw.WriteString(f)
			}
		}
		bw.WriteByte('\n')
	}
	for i := range row {
		row[i] = rec.ColumnName(i)
	}
	write()
	for r := range int(rec.NumRows()) {
		for c := range row {
			s, err := cellText(rec.Column(c), r)
			if err != nil {
				t.Fatal(err)
			}
			row[c] = s
		}
		write()
	}
	bw.Flush()
	return b.Bytes()
}

// randomCSVRecord has strings that need quoting (commas, quotes, line
// breaks, empty), nulls, ints and booleans, and a header that needs quoting.
func randomCSVRecord(mem memory.Allocator, n int, seed uint64) arrow.RecordBatch {
	rng := rand.New(rand.NewPCG(seed, 7))
	pieces := []string{"a", "MildG2 (3, copy).png", `q"z`, `""`, "\n", "\r\n", ",", "", "é", "0Normal"}
	strs := make([]string, n)
	valid := make([]bool, n)
	ints := make([]int64, n)
	bools := make([]bool, n)
	for i := range n {
		for range rng.IntN(4) {
			strs[i] += pieces[rng.IntN(len(pieces))]
		}
		valid[i] = rng.IntN(8) != 0
		ints[i] = rng.Int64N(2000) - 1000
		bools[i] = rng.IntN(2) == 0
	}
	sb := array.NewStringBuilder(mem)
	sb.AppendValues(strs, valid)
	ib := array.NewInt64Builder(mem)
	ib.AppendValues(ints, valid)
	bb := array.NewBooleanBuilder(mem)
	bb.AppendValues(bools, nil)
	cols := []arrow.Array{sb.NewArray(), ib.NewArray(), bb.NewArray()}
	sb.Release()
	ib.Release()
	bb.Release()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "path, quoted", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "grade", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "ok", Type: arrow.FixedWidthTypes.Boolean},
	}, nil)
	rec := array.NewRecordBatch(schema, cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// The chunked writer writes the bytes of the one-row-at-a-time writer for
// every chunk size (1 row to more than the table) and number of workers,
// one column or several.
func TestWriteCSVChunksEqualReference(t *testing.T) {
	mem := checkedMem(t)
	const n = 300
	rec := randomCSVRecord(mem, n, 1)
	defer rec.Release()
	single := array.NewRecordBatch(arrow.NewSchema(rec.Schema().Fields()[:1], nil), rec.Columns()[:1], n)
	defer single.Release()
	for _, r := range []arrow.RecordBatch{rec, single} {
		want := referenceCSV(t, r)
		for chunkRows := 1; chunkRows <= n+1; chunkRows++ {
			if chunkRows > 40 && chunkRows%37 != 0 && chunkRows < n-1 {
				continue // every small size, and a few large ones
			}
			for workers := 1; workers <= 3; workers++ {
				var b bytes.Buffer
				if err := writeCSVChunks(&b, r, chunkRows, workers); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b.Bytes(), want) {
					t.Fatalf("%d columns, %d rows a chunk, %d workers: %d bytes differ from the reference's %d", r.NumCols(), chunkRows, workers, b.Len(), len(want))
				}
			}
		}
	}
	var b bytes.Buffer
	if err := WriteCSV(&b, rec); err != nil || !bytes.Equal(b.Bytes(), referenceCSV(t, rec)) {
		t.Errorf("WriteCSV differs from the reference (%v)", err)
	}
}

// failAfter fails every write after the first n bytes.
type failAfter struct{ n int }

var errFull = errors.New("disk full")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, errFull
	}
	f.n -= len(p)
	return len(p), nil
}

// A failing writer or an unsupported column ends the chunked write with
// that error (the formatters done before it returns).
func TestWriteCSVChunksErrors(t *testing.T) {
	mem := checkedMem(t)
	rec := randomCSVRecord(mem, 3000, 2)
	defer rec.Release()
	for _, after := range []int{0, 10, 2000, 9000} {
		if err := writeCSVChunks(&failAfter{after}, rec, 7, 2); !errors.Is(err, errFull) {
			t.Errorf("writer failing after %d bytes: %v", after, err)
		}
	}
	fb := array.NewFloat32Builder(mem)
	for i := range 50 {
		fb.Append(float32(i))
	}
	bad := New(Strings(mem, "s", make([]string, 50)), Column{"f32", fb.NewArray()})
	fb.Release()
	defer bad.Release()
	if err := writeCSVChunks(&bytes.Buffer{}, bad, 3, 2); err == nil || !strings.Contains(err.Error(), `column "f32"`) {
		t.Errorf("float32 column: %v, want an error naming it", err)
	}
}

// maxWrite records the largest write.
type maxWrite struct{ max, total int }

func (m *maxWrite) Write(p []byte) (int, error) {
	m.max, m.total = max(m.max, len(p)), m.total+len(p)
	return len(p), nil
}

// Long rows are formatted in chunks of a few MB, not of 16K rows: 200
// rows of 64 KB are not one 13 MB buffer (and on many cores, many of them).
func TestWriteCSVChunksBoundedInBytes(t *testing.T) {
	mem := checkedMem(t)
	cells := make([]string, 200)
	for i := range cells {
		cells[i] = strings.Repeat(string(rune('a'+i%26)), 64<<10)
	}
	rec := New(Strings(mem, "s", cells), Strings(mem, "t", cells[:200]))
	defer rec.Release()
	var m maxWrite
	if err := WriteCSV(&m, rec); err != nil {
		t.Fatal(err)
	}
	if m.max > csvWriteBytes+2*(64<<10+3) || m.total != len(referenceCSV(t, rec)) {
		t.Errorf("largest write %d bytes of %d, want at most %d", m.max, m.total, csvWriteBytes)
	}
	if rows := csvChunkRows(rec, csvWriteRows, csvWriteBytes); rows < 1 || rows > 40 {
		t.Errorf("%d rows a chunk of 128 KB rows", rows)
	}
}

// Columns whose text needs no quoting are copied cell by cell without a
// search, and give the reference's bytes: plain and dictionary columns,
// clean or not (a comma past the first search block), a lone column with
// empty and null cells, a dictionary larger than its rows.
func TestWriteCSVUnquotedColumns(t *testing.T) {
	mem := checkedMem(t)
	long := strings.Repeat("x", 20<<10)
	clean := []string{"a", "", "0Normal", long, "b c"}
	dirty := []string{"a", "", long + ",", "q"}
	const n = 500
	codes := make([]int, n)
	for i := range codes {
		codes[i] = i%6 - 1 // -1: a null row
	}
	dirtyCodes := make([]int, n)
	for i := range dirtyCodes {
		dirtyCodes[i] = i % len(dirty)
	}
	big := make([]string, 2*n) // more values than rows, one needing quotes unused
	for i := range big {
		big[i] = "v" + strings.Repeat(",", i%2*(i/n))
	}
	cols := []arrow.Array{
		dictOf(t, mem, clean, -1, codes),
		dictOf(t, mem, dirty, -1, dirtyCodes),
		dictOf(t, mem, big, -1, dirtyCodes),
	}
	for _, c := range cols[:2] {
		p, err := Plain(mem, c)
		if err != nil {
			t.Fatal(err)
		}
		cols = append(cols, p)
	}
	for _, c := range cols {
		c.Retain()
	}
	all := New(colsNamed(cols)...)
	defer all.Release()
	if got := unquotedCols(all); !slices.Equal(got, []bool{true, false, false, true, false}) {
		t.Fatalf("unquotedCols = %v", got)
	}
	for _, pick := range [][]int{{0, 1, 2, 3, 4}, {0}, {3}, {1}} {
		var sel []arrow.Array
		for _, i := range pick {
			cols[i].Retain()
			sel = append(sel, cols[i])
		}
		rec := New(colsNamed(sel)...)
		defer rec.Release()
		plain := plainRec(t, rec)
		want := referenceCSV(t, plain)
		plain.Release()
		for _, workers := range []int{1, 2} {
			var b bytes.Buffer
			if err := writeCSVChunks(&b, rec, 77, workers); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				i := 0
				for i < min(b.Len(), len(want)) && b.Bytes()[i] == want[i] {
					i++
				}
				t.Errorf("columns %v, %d workers: differs from the reference at byte %d: %q, want %q", pick, workers, i, b.Bytes()[max(0, i-20):min(b.Len(), i+20)], want[max(0, i-20):min(len(want), i+20)])
			}
		}
	}
	for _, c := range cols {
		c.Release()
	}
}

// colsNamed names columns c0, c1, ... (retaining nothing: New takes them).
func colsNamed(arrs []arrow.Array) []Column {
	out := make([]Column, len(arrs))
	for i, a := range arrs {
		out[i] = Column{"c" + strconv.Itoa(i), a}
	}
	return out
}
