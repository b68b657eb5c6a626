package table

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// dictOf makes a dictionary column over values (which may repeat a value
// or hold a null) from codes (-1: a null row).
func dictOf(t *testing.T, mem memory.Allocator, values []string, nullValue int, codes []int) arrow.Array {
	t.Helper()
	b := array.NewStringBuilder(mem)
	for k, v := range values {
		if k == nullValue {
			b.AppendNull()
		} else {
			b.Append(v)
		}
	}
	vals := b.NewStringArray()
	b.Release()
	return dictionaryOf(mem, vals, len(codes), func(k int) (int32, bool) { return int32(max(codes[k], 0)), codes[k] >= 0 })
}

// The same cells, plain or dictionary-encoded (a dictionary with a value
// twice, a null value and null rows), group the same way, match the same
// way and are taken the same way.
func TestDictionaryColumnsLikePlain(t *testing.T) {
	mem := checkedMem(t)
	rng := rand.New(rand.NewPCG(3, 4))
	values := []string{"a", "b", "a", "", "x", "null?", "b2"}
	const nullValue = 5
	const n = 3000
	codes := make([]int, n)
	for i := range codes {
		codes[i] = rng.IntN(len(values)+1) - 1
	}
	other := make([]int, n)
	for i := range other {
		other[i] = rng.IntN(3)
	}
	d1 := dictOf(t, mem, values, nullValue, codes)
	defer d1.Release()
	d2 := dictOf(t, mem, []string{"p", "q", "r"}, -1, other)
	defer d2.Release()
	p1, err := Plain(mem, d1)
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Release()
	p2, err := Plain(mem, d2)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Release()
	if p1.DataType().ID() != arrow.STRING {
		t.Fatalf("Plain made %s", p1.DataType())
	}
	for i := range n {
		if Text(d1, i) != Text(p1, i) {
			t.Fatalf("row %d: Text %q, plain %q", i, Text(d1, i), Text(p1, i))
		}
	}
	// A slice of a column without nulls (as the Parquet writer takes a row
	// group) made plain holds the slice's cells.
	sl := array.NewSlice(d2, 100, 200)
	psl, err := Plain(mem, sl)
	if err != nil {
		t.Fatal(err)
	}
	for k := range 100 {
		if Text(psl, k) != Text(p2, 100+k) {
			t.Fatalf("sliced row %d: %q, want %q", k, Text(psl, k), Text(p2, 100+k))
		}
	}
	psl.Release()
	sl.Release()
	dict := []arrow.Array{d1, d2}
	plain := []arrow.Array{p1, p2}
	gd, gp := NewGroups(dict, n), NewGroups(plain, n)
	if gd.codes == nil {
		t.Fatal("dictionary keys not grouped by code")
	}
	for i := range n {
		a, an := gd.Add(i)
		b, bn := gp.Add(i)
		if a != b || an != bn {
			t.Fatalf("row %d: by code group %d (new %v), by text %d (new %v)", i, a, an, b, bn)
		}
	}
	// Lookup from plain columns into the groups by code, and the reverse.
	for i := range n {
		a, aok := gd.Lookup(plain, i)
		b, bok := gp.Lookup(dict, i)
		if a != b || aok != bok || !aok {
			t.Fatalf("row %d: Lookup %d %v and %d %v", i, a, aok, b, bok)
		}
	}
	// Matches: a set of a few values, the dictionary matched per value.
	set := Strings(mem, "s", []string{"a", "", "zz"})
	defer set.Array.Release()
	g := NewGroups([]arrow.Array{set.Array}, 3)
	for i := range 3 {
		g.Add(i)
	}
	md, mp := g.Matches(d1), g.Matches(p1)
	if !slices.Equal(md, mp) {
		t.Error("Matches differ between the dictionary and the plain column")
	}
	// Take copies codes over the same dictionary, and the same cells.
	idx := []int{5, 0, n - 1, 17, 17, 3}
	rec := New(Column{"d", d1}, Column{"p", p1})
	d1.Retain()
	p1.Retain()
	defer rec.Release()
	taken, err := Take(context.Background(), mem, rec, idx)
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Release()
	td := taken.Column(0).(*array.Dictionary)
	if td.Dictionary().Data() != d1.(*array.Dictionary).Dictionary().Data() {
		t.Error("Take copied the dictionary")
	}
	for k := range idx {
		if Text(taken.Column(0), k) != Text(taken.Column(1), k) {
			t.Errorf("taken row %d: %q, plain %q", k, Text(taken.Column(0), k), Text(taken.Column(1), k))
		}
	}
	// CSV and Parquet artifacts are the same bytes in either form.
	plainRec := New(Column{"d", p1}, Column{"o", p2})
	p1.Retain()
	p2.Retain()
	defer plainRec.Release()
	dictRec := New(Column{"d", d1}, Column{"o", d2})
	d1.Retain()
	d2.Retain()
	defer dictRec.Release()
	if a, b := writeCSV(t, dictRec), writeCSV(t, plainRec); a != b {
		t.Error("CSV of the dictionary columns differs from the plain ones'")
	}
	var pa, pb bytes.Buffer
	if err := WriteParquet(&pa, dictRec); err != nil {
		t.Fatal(err)
	}
	if err := WriteParquet(&pb, plainRec); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pa.Bytes(), pb.Bytes()) {
		t.Error("Parquet artifact of the dictionary columns differs from the plain ones'")
	}
}

// ReadCSV codes a repeated column in a dictionary in order of first
// appearance, the same in one pass and in pieces of any size, and the
// stage cache's Parquet gives it back dictionary-encoded, the same cells.
func TestReadCSVDictionaryDeterministic(t *testing.T) {
	mem := checkedMem(t)
	var sb strings.Builder
	sb.WriteString("e,id\n")
	for i := range 4000 {
		sb.WriteString("E" + strconv.Itoa(i%3) + "," + strconv.Itoa((i*7919)%1500) + "\n")
	}
	src := sb.String()
	one, err := ReadCSV(mem, strings.NewReader(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Release()
	e, _ := StringCol(one, "e")
	if e.Dictionary() == nil || e.Dictionary().Len() != 3 || e.Dictionary().Value(0) != "E0" || e.Dictionary().Value(2) != "E2" {
		t.Fatalf("e is %s, dictionary %v", one.Column(0).DataType(), e.Dictionary())
	}
	if one.Column(0).(*array.Dictionary).Indices().DataType().ID() != arrow.INT8 {
		t.Errorf("3 values coded as %s, want int8", one.Column(0).(*array.Dictionary).Indices().DataType())
	}
	for _, chunk := range []int{1, 100, 4096, 1 << 20} {
		pieces, err := readCSVChunked(mem, strings.NewReader(src), nil, int64(len(src)), chunk, maxStringBytes)
		if err != nil {
			t.Fatal(err)
		}
		if !array.RecordEqual(one, pieces) {
			t.Errorf("chunk %d: pieces read differently from one pass", chunk)
		}
		pieces.Release()
	}
	if got := writeCSV(t, one); got != src {
		t.Error("written back, the CSV differs")
	}
	var buf bytes.Buffer
	if err := WriteParquetFast(&buf, one); err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/c.parquet"
	if err := writeFile(path, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	back, err := ReadParquet(context.Background(), mem, path)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Release()
	for c := range 2 {
		if _, ok := back.Column(c).(*array.Dictionary); !ok {
			t.Errorf("column %d read back from the cache as %s", c, back.Column(c).DataType())
		}
	}
	if !sameCells(t, one, back) {
		t.Error("read back from the cache, the cells differ")
	}
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o644) }

// Take on enough rows to gather on every core gives each column's cells
// at the indices, whatever its form: dictionary codes of every width with
// and without null rows (copied straight), plain strings, int64 and a
// type compute.TakeArray takes; dictionaries are shared, not copied.
func TestTakeManyRowsEveryForm(t *testing.T) {
	mem := checkedMem(t)
	rng := rand.New(rand.NewPCG(8, 9))
	const n = takeOnCores + 1000
	codes := func(values, nulls int) []int {
		out := make([]int, n)
		for i := range out {
			if out[i] = rng.IntN(values); nulls > 0 && rng.IntN(nulls) == 0 {
				out[i] = -1
			}
		}
		return out
	}
	values := func(m int) []string {
		out := make([]string, m)
		for k := range out {
			out[k] = "v" + strconv.Itoa(k)
		}
		return out
	}
	bools := array.NewBooleanBuilder(mem)
	ints := array.NewInt64Builder(mem)
	strs := array.NewStringBuilder(mem)
	for i := range n {
		bools.Append(i%3 == 0)
		ints.Append(int64(i * 7))
		strs.Append(strconv.Itoa(i))
	}
	cols := []Column{
		{"d8", dictOf(t, mem, values(100), -1, codes(100, 0))},
		{"d16", dictOf(t, mem, values(1000), -1, codes(1000, 0))},
		{"d32", dictOf(t, mem, values(40000), -1, codes(40000, 0))},
		{"d8nulls", dictOf(t, mem, values(100), -1, codes(100, 5))},
		{"plain", strs.NewArray()},
		{"ints", ints.NewArray()},
		{"bools", bools.NewArray()},
	}
	bools.Release()
	ints.Release()
	strs.Release()
	rec := New(cols...)
	defer rec.Release()
	idx := make([]int, n)
	for k := range idx {
		idx[k] = rng.IntN(n)
	}
	taken, err := Take(context.Background(), mem, rec, idx)
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Release()
	for c := range int(rec.NumCols()) {
		for k, i := range idx {
			if got, want := Text(taken.Column(c), k), Text(rec.Column(c), i); got != want {
				t.Fatalf("column %s row %d: %q, want %q (row %d)", rec.ColumnName(c), k, got, want, i)
			}
		}
		if d, ok := rec.Column(c).(*array.Dictionary); ok {
			if taken.Column(c).(*array.Dictionary).Dictionary().Data() != d.Dictionary().Data() {
				t.Errorf("column %s: Take copied the dictionary", rec.ColumnName(c))
			}
		}
	}
}
