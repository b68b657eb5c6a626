package table

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func checkedMem(t *testing.T) *memory.CheckedAllocator {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

func writeCSV(t *testing.T, rec arrow.RecordBatch) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteCSV(&b, rec); err != nil {
		t.Fatalf("WriteCSV: %v", err)
	}
	return b.String()
}

func ts(s string) arrow.Timestamp {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return arrow.Timestamp(t.UnixMicro())
}

// The expected strings below were produced by pandas 1.5.3 (Debian bookworm,
// the version the goldens were made with): DataFrame.to_csv(index=False).
func TestWriteCSVStringQuoting(t *testing.T) {
	tests := []struct {
		name string
		val  string
		want string // the field as written
	}{
		{"plain", "MedicalExpert-I/0Normal/NormalG0 (1).png", "MedicalExpert-I/0Normal/NormalG0 (1).png"},
		{"comma", "MildG2 (3, copy).png", `"MildG2 (3, copy).png"`},
		{"double quote doubled", `q"z`, `"q""z"`},
		{"only quotes", `""`, `""""""`},
		{"newline", "l\nm", "\"l\nm\""},
		// pandas 1.5.3 on Python 3.11 leaves a lone \r unquoted; Python 3.12+
		// (and RFC 4180) quote it. kneepipe quotes it so the file reads back.
		{"carriage return", "c\rr", "\"c\rr\""},
		{"crlf", "a\r\nb", "\"a\r\nb\""},
		{"leading and trailing spaces not quoted", " sp ", " sp "},
		{"tab not quoted", "tab\tx", "tab\tx"},
		{"single quote not quoted", "a'b", "a'b"},
		{"hash and minus not quoted", "#-1", "#-1"},
		{"empty in a multi-column row", "", ""},
		{"unicode", "Колено, левое", `"Колено, левое"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := checkedMem(t)
			rec := New(Strings(mem, "a", []string{tt.val}), Int64s(mem, "b", []int64{7}, nil))
			defer rec.Release()
			want := "a,b\n" + tt.want + ",7\n"
			if got := writeCSV(t, rec); got != want {
				t.Errorf("WriteCSV(%q) =\n%q\nwant\n%q", tt.val, got, want)
			}
		})
	}
}

func TestWriteCSVSingleColumnEmpty(t *testing.T) {
	mem := checkedMem(t)
	b := array.NewStringBuilder(mem)
	b.Append("")
	b.AppendNull()
	b.Append("x")
	b.Append(" ")
	rec := New(Column{"a", b.NewArray()})
	b.Release()
	defer rec.Release()
	// pandas: pd.DataFrame({'a': ['', None, 'x', ' ']}).to_csv(index=False)
	want := "a\n\"\"\n\"\"\nx\n \n"
	if got := writeCSV(t, rec); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestWriteCSVEmptyHeaderName(t *testing.T) {
	mem := checkedMem(t)
	rec := New(Strings(mem, "", []string{""}))
	defer rec.Release()
	// pandas: pd.DataFrame({'': ['']}).to_csv(index=False) == '""\n""\n'
	if got, want := writeCSV(t, rec), "\"\"\n\"\"\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestWriteCSVHeaderQuoting(t *testing.T) {
	mem := checkedMem(t)
	rec := New(Int64s(mem, "a,b", []int64{1}, nil), Int64s(mem, `c"d`, []int64{2}, nil), Int64s(mem, "", []int64{3}, nil))
	defer rec.Release()
	// pandas: pd.DataFrame({'a,b':[1], 'c"d':[2], '':[3]}).to_csv(index=False)
	if got, want := writeCSV(t, rec), "\"a,b\",\"c\"\"d\",\n1,2,3\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestWriteCSVNullsAndInts(t *testing.T) {
	mem := checkedMem(t)
	sb := array.NewStringBuilder(mem)
	sb.AppendValues([]string{"x", "", "z"}, []bool{true, false, true})
	rec := New(
		Column{"s", sb.NewArray()},
		Int64s(mem, "n", []int64{math.MinInt64, 0, math.MaxInt64}, []bool{true, true, true}),
		Int64s(mem, "m", []int64{-1, 99, 5}, []bool{true, false, true}),
	)
	sb.Release()
	defer rec.Release()
	want := "s,n,m\n" +
		"x,-9223372036854775808,-1\n" +
		",0,\n" +
		"z,9223372036854775807,5\n"
	if got := writeCSV(t, rec); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestWriteCSVBool(t *testing.T) {
	mem := checkedMem(t)
	b := array.NewBooleanBuilder(mem)
	b.AppendValues([]bool{true, false, false}, []bool{true, true, false})
	rec := New(Column{"b", b.NewArray()}, Int64s(mem, "i", []int64{1, 2, 3}, nil))
	b.Release()
	defer rec.Release()
	if got, want := writeCSV(t, rec), "b,i\nTrue,1\nFalse,2\n,3\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestWriteCSVTimestamps(t *testing.T) {
	mem := checkedMem(t)
	rec := New(Timestamps(mem, "t", []arrow.Timestamp{
		ts("2024-01-02T03:04:05Z"),
		ts("2024-01-02T03:04:05.5Z"),
		ts("2024-01-02T03:04:05.000123Z"),
		ts("1969-12-31T23:59:59Z"),
		ts("2024-01-02T06:04:05+03:00"), // the instant is what counts: printed in UTC
	}))
	defer rec.Release()
	// pandas prints each tz-aware value with str(Timestamp): a fraction only
	// where the value has one.
	want := "t\n" +
		"2024-01-02 03:04:05+00:00\n" +
		"2024-01-02 03:04:05.500000+00:00\n" +
		"2024-01-02 03:04:05.000123+00:00\n" +
		"1969-12-31 23:59:59+00:00\n" +
		"2024-01-02 03:04:05+00:00\n"
	if got := writeCSV(t, rec); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestWriteCSVNanosecondTimestamps(t *testing.T) {
	mem := checkedMem(t)
	b := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"})
	base := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	b.AppendValues([]arrow.Timestamp{
		arrow.Timestamp(base),
		arrow.Timestamp(base + 500_000_000),
		arrow.Timestamp(base + 1),
		arrow.Timestamp(base + 123_456),
	}, nil)
	b.AppendNull()
	rec := New(Column{"t", b.NewArray()})
	b.Release()
	defer rec.Release()
	// pandas: pd.Series(pd.to_datetime([...], utc=True)).to_frame('t').to_csv(index=False)
	want := "t\n" +
		"2024-01-02 03:04:05+00:00\n" +
		"2024-01-02 03:04:05.500000+00:00\n" +
		"2024-01-02 03:04:05.000000001+00:00\n" +
		"2024-01-02 03:04:05.000123456+00:00\n" +
		"\"\"\n"
	if got := writeCSV(t, rec); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestWriteCSVFloats(t *testing.T) {
	mem := checkedMem(t)
	vals := []float64{1.0, 0.1, 1e6, 1e16, 1234567890123456, 1e-5, 0.0001, 123456789012345680.0, math.NaN(), math.Inf(1), math.Inf(-1), 1.5e300, math.Copysign(0, -1), 2.5}
	b := array.NewFloat64Builder(mem)
	b.AppendValues(vals, nil)
	b.AppendNull()
	rec := New(Column{"a", b.NewArray()}, Int64s(mem, "i", make([]int64, len(vals)+1), nil))
	b.Release()
	defer rec.Release()
	// pandas: the float column printed as Python's repr, NaN as an empty field.
	want := []string{"1.0", "0.1", "1000000.0", "1e+16", "1234567890123456.0", "1e-05", "0.0001", "1.2345678901234568e+17", "", "inf", "-inf", "1.5e+300", "-0.0", "2.5", ""}
	lines := strings.Split(strings.TrimSuffix(writeCSV(t, rec), "\n"), "\n")
	if len(lines) != len(want)+1 {
		t.Fatalf("got %d lines, want %d", len(lines), len(want)+1)
	}
	for i, w := range want {
		if got := strings.TrimSuffix(lines[i+1], ",0"); got != w {
			t.Errorf("row %d (%v): got %q, want %q", i, i, got, w)
		}
	}
}

func TestWriteCSVUnsupportedType(t *testing.T) {
	mem := checkedMem(t)
	b := array.NewFloat32Builder(mem)
	b.Append(1)
	rec := New(Column{"f32", b.NewArray()})
	b.Release()
	defer rec.Release()
	err := WriteCSV(&bytes.Buffer{}, rec)
	if err == nil || !strings.Contains(err.Error(), `column "f32"`) {
		t.Fatalf("WriteCSV(float32) error = %v, want one naming column f32", err)
	}
}

func TestWriteCSVNoRows(t *testing.T) {
	mem := checkedMem(t)
	rec := New(Strings(mem, "relative_path", nil))
	defer rec.Release()
	if got, want := writeCSV(t, rec), "relative_path\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestReadCSVRoundTrip(t *testing.T) {
	mem := checkedMem(t)
	paths := []string{"plain", "MildG2 (3, copy).png", `q"z`, "l\nm", "c\rr", " sp ", "", "Колено"}
	sizes := []int64{1, -2, 3, math.MaxInt64, math.MinInt64, 0, 7, 8}
	valid := []bool{true, true, true, true, true, false, true, true}
	rec := New(Strings(mem, "path", paths), Int64s(mem, "size", sizes, valid))
	defer rec.Release()
	text := writeCSV(t, rec)

	back, err := ReadCSV(mem, strings.NewReader(text), map[string]arrow.DataType{"size": arrow.PrimitiveTypes.Int64})
	if err != nil {
		t.Fatalf("ReadCSV: %v", err)
	}
	defer back.Release()
	if !sameCells(t, rec, back) {
		t.Errorf("round trip differs:\nwrote %v\nread  %v", rec, back)
	}
	if again := writeCSV(t, back); again != text {
		t.Errorf("re-written CSV differs:\n%q\n%q", text, again)
	}
}

func TestReadCSVUntypedColumnsAreStrings(t *testing.T) {
	mem := checkedMem(t)
	rec, err := ReadCSV(mem, strings.NewReader("a,b\n1,\n,x\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if rec.NumRows() != 2 || rec.NumCols() != 2 {
		t.Fatalf("shape %dx%d, want 2x2", rec.NumRows(), rec.NumCols())
	}
	for c := 0; c < 2; c++ {
		if !IsString(rec.Column(c).DataType()) {
			t.Errorf("column %d is %s, want string", c, rec.Column(c).DataType())
		}
		if rec.Column(c).NullN() != 0 {
			t.Errorf("column %d has %d nulls; an empty string field is an empty string", c, rec.Column(c).NullN())
		}
	}
	if got, _ := StringCol(rec, "a"); got.Value(0) != "1" {
		t.Errorf("a[0] = %q, want 1", got.Value(0))
	}
}

func TestReadCSVErrors(t *testing.T) {
	int64s := map[string]arrow.DataType{"n": arrow.PrimitiveTypes.Int64}
	tests := []struct {
		name  string
		text  string
		types map[string]arrow.DataType
		want  []string // substrings of the error
	}{
		{"empty file", "", nil, []string{"empty file"}},
		{"not an integer", "s,n\na,1\nb,2\nc,abc\n", int64s, []string{"line 4", `column "n"`, `"abc" is not an integer`}},
		{"integer overflow", "n\n1\n9223372036854775808\n", int64s, []string{"line 3", `"9223372036854775808"`}},
		{"float in int column", "s,n\nx,1.5\n", int64s, []string{"line 2", `"1.5"`}},
		{"line counted after a quoted newline", "s,n\n\"a\nb\",1\nc,x\n", int64s, []string{"line 4", `"x"`}},
		{"typed column not in header", "a,b\n1,2\n", int64s, []string{`typed column "n"`, "[a b]"}},
		{"unsupported type", "n\n1\n", map[string]arrow.DataType{"n": arrow.PrimitiveTypes.Float64}, []string{`column "n"`, "not supported"}},
		{"ragged row", "a,b\n1,2\n3\n", nil, []string{"line 3", "wrong number of fields"}},
		{"bare quote", "a\nx\"y\n", nil, []string{"line 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := checkedMem(t)
			rec, err := ReadCSV(mem, strings.NewReader(tt.text), tt.types)
			if err == nil {
				rec.Release()
				t.Fatalf("ReadCSV(%q) succeeded, want an error", tt.text)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestReadCSVHeaderOnly(t *testing.T) {
	mem := checkedMem(t)
	rec, err := ReadCSV(mem, strings.NewReader("expert,size\n"), map[string]arrow.DataType{"size": arrow.PrimitiveTypes.Int64})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if rec.NumRows() != 0 || !slices.Equal(Names(rec), []string{"expert", "size"}) {
		t.Errorf("got %d rows, columns %v", rec.NumRows(), Names(rec))
	}
	if rec.Column(1).DataType().ID() != arrow.INT64 {
		t.Errorf("size is %s, want int64", rec.Column(1).DataType())
	}
}

// A file that grows in width after its first rows still reads whole, as
// from a plain reader.
func TestReadCSVFileSized(t *testing.T) {
	mem := checkedMem(t)
	var sb strings.Builder
	sb.WriteString("id,n\n")
	const first = 4096
	for i := range 3 * first {
		fmt.Fprintf(&sb, "%s,%d\n", strings.Repeat("x", 1+i/first*50), i)
	}
	path := filepath.Join(t.TempDir(), "t.csv")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	types := map[string]arrow.DataType{"n": arrow.PrimitiveTypes.Int64}
	fromFile, err := ReadCSV(mem, f, types)
	if err != nil {
		t.Fatal(err)
	}
	defer fromFile.Release()
	if got := writeCSV(t, fromFile); got != sb.String() {
		t.Errorf("read from a file and written back: %d bytes, want %d", len(got), sb.Len())
	}
}

// sameCells says whether a and b hold the same columns and cells, string
// columns in either form.
func sameCells(t *testing.T, a, b arrow.RecordBatch) bool {
	t.Helper()
	pa, pb := plainRec(t, a), plainRec(t, b)
	defer pa.Release()
	defer pb.Release()
	return array.RecordEqual(pa, pb)
}

// plainRec is rec with its dictionary string columns plain.
func plainRec(t *testing.T, rec arrow.RecordBatch) arrow.RecordBatch {
	t.Helper()
	cols := make([]arrow.Array, rec.NumCols())
	for i, col := range rec.Columns() {
		c, err := Plain(memory.DefaultAllocator, col)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		cols[i] = c
	}
	return array.NewRecordBatch(plainSchema(rec.Schema()), cols, rec.NumRows())
}
