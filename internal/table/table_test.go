package table

import (
	"context"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

func TestTakeSelectSet(t *testing.T) {
	mem := checkedMem(t)
	rec := New(Strings(mem, "a", []string{"x", "y", "z"}), Int64s(mem, "b", []int64{1, 2, 3}, nil))
	defer rec.Release()

	took, err := Take(context.Background(), mem, rec, []int{2, 0, 2})
	if err != nil {
		t.Fatal(err)
	}
	defer took.Release()
	if got, want := writeCSV(t, took), "a,b\nz,3\nx,1\nz,3\n"; got != want {
		t.Errorf("Take = %q, want %q", got, want)
	}

	none, err := Take(context.Background(), mem, rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer none.Release()
	if none.NumRows() != 0 || none.NumCols() != 2 {
		t.Errorf("Take(nil) shape %dx%d, want 0x2", none.NumRows(), none.NumCols())
	}

	sel, err := Select(rec, []string{"b", "a"}, map[string]string{"a": "renamed"})
	if err != nil {
		t.Fatal(err)
	}
	defer sel.Release()
	if got, want := writeCSV(t, sel), "b,renamed\n1,x\n2,y\n3,z\n"; got != want {
		t.Errorf("Select = %q, want %q", got, want)
	}
	if _, err := Select(rec, []string{"nope"}, nil); err == nil || !strings.Contains(err.Error(), `no column "nope" (have [a b])`) {
		t.Errorf("Select(nope) error = %v", err)
	}

	cols := Columns(rec)
	cols = Set(cols, Int64s(mem, "a", []int64{7, 8, 9}, nil))
	cols = Set(cols, Strings(mem, "c", []string{"p", "q", "r"}))
	set := New(cols...)
	defer set.Release()
	if got, want := writeCSV(t, set), "a,b,c\n7,1,p\n8,2,q\n9,3,r\n"; got != want {
		t.Errorf("Set = %q, want %q", got, want)
	}
}

func TestTypedColumns(t *testing.T) {
	mem := checkedMem(t)
	rec := New(Strings(mem, "s", []string{"1"}), Int64s(mem, "i", []int64{1}, nil))
	defer rec.Release()
	if _, err := StringCol(rec, "i"); err == nil || !strings.Contains(err.Error(), `column "i" is int64, want string`) {
		t.Errorf("StringCol(i) error = %v", err)
	}
	if _, err := Int64Col(rec, "s"); err == nil || !strings.Contains(err.Error(), `column "s" is utf8, want int64`) {
		t.Errorf("Int64Col(s) error = %v", err)
	}
	if _, err := Int64Col(rec, "x"); err == nil || !strings.Contains(err.Error(), `no column "x"`) {
		t.Errorf("Int64Col(x) error = %v", err)
	}
	// Text makes an integer and its decimal string compare equal, and a null
	// unlike any string.
	s, _ := StringCol(rec, "s")
	i, _ := Int64Col(rec, "i")
	if Text(s.Array(), 0) != Text(i, 0) {
		t.Errorf("Text: %q != %q", Text(s.Array(), 0), Text(i, 0))
	}
	b := array.NewStringBuilder(mem)
	b.AppendNull()
	b.Append("")
	nulls := b.NewArray()
	b.Release()
	defer nulls.Release()
	if Text(nulls, 0) == Text(nulls, 1) {
		t.Error("Text: null equals the empty string")
	}
}

// Take keeps nulls in the columns it gathers itself (string, int64) and in
// those it leaves to compute.TakeArray (here bool).
func TestTakeNulls(t *testing.T) {
	mem := checkedMem(t)
	sb := array.NewStringBuilder(mem)
	sb.AppendValues([]string{"x", "", "z"}, []bool{true, false, true})
	bb := array.NewBooleanBuilder(mem)
	bb.AppendValues([]bool{true, false, false}, []bool{true, true, false})
	rec := New(Column{"s", sb.NewArray()}, Int64s(mem, "n", []int64{1, 0, 3}, []bool{true, false, true}), Column{"b", bb.NewArray()})
	sb.Release()
	bb.Release()
	defer rec.Release()
	took, err := Take(context.Background(), mem, rec, []int{1, 2, 1, 0})
	if err != nil {
		t.Fatal(err)
	}
	defer took.Release()
	if got, want := writeCSV(t, took), "s,n,b\n,,False\nz,3,\n,,False\nx,1,True\n"; got != want {
		t.Errorf("Take = %q, want %q", got, want)
	}
	for c := range 3 {
		if n := took.Column(c).NullN(); n != []int{2, 2, 1}[c] {
			t.Errorf("column %d: %d nulls, want %d", c, n, []int{2, 2, 1}[c])
		}
	}
	if _, err := Take(context.Background(), mem, rec, []int{3}); err == nil {
		t.Error("Take of row 3 of 3: no error")
	}
}

// Take, Strings and Int64s size their buffers exactly: arrow's builders
// would round 1500 rows up to 2048, a third more for every offsets,
// int64 and validity buffer.
func TestBuffersSizedExactly(t *testing.T) {
	mem := checkedMem(t)
	const n = 1500
	vals, ids, valid := make([]string, n), make([]int64, n), make([]bool, n)
	idx := make([]int, n)
	for i := range n {
		vals[i], ids[i], valid[i], idx[i] = strings.Repeat("v", i%7), int64(i), i%3 != 0, n-1-i
	}
	rec := New(Strings(mem, "s", vals), Int64s(mem, "i", ids, valid))
	defer rec.Release()
	took, err := Take(context.Background(), mem, rec, idx)
	if err != nil {
		t.Fatal(err)
	}
	defer took.Release()
	for _, r := range []arrow.RecordBatch{rec, took} {
		for c, col := range r.Columns() {
			for b, buf := range col.Data().Buffers() {
				if buf != nil && buf.Cap() > (buf.Len()+63)/64*64 {
					t.Errorf("column %d buffer %d: capacity %d for %d bytes", c, b, buf.Cap(), buf.Len())
				}
			}
		}
	}
	if got, want := took.Column(0).(*array.String).Value(0), vals[n-1]; got != want {
		t.Errorf("took s[0] = %q, want %q", got, want)
	}
	if i := took.Column(1).(*array.Int64); i.Value(1) != n-2 || i.IsValid(1) != valid[n-2] || i.NullN() != n/3 {
		t.Errorf("took i[1] = %d valid %v (nulls %d), want %d valid %v (nulls %d)", i.Value(1), i.IsValid(1), i.NullN(), n-2, valid[n-2], n/3)
	}
}
