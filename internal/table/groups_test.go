package table

import (
	"bytes"
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

func TestAppendKeyIsInjective(t *testing.T) {
	mem := checkedMem(t)
	// Pairs of rows whose naive concatenation would be equal.
	a := Strings(mem, "a", []string{"ab", "a", "", "1"})
	defer a.Array.Release()
	b := Strings(mem, "b", []string{"c", "bc", "abc", "x"})
	defer b.Array.Release()
	ib := array.NewInt64Builder(mem)
	ib.AppendValues([]int64{1, 12}, nil)
	ib.AppendNull()
	ints := ib.NewArray()
	ib.Release()
	defer ints.Release()
	cols := []arrow.Array{a.Array, b.Array}
	seen := map[string]int{}
	for i := range 3 {
		k := string(AppendKey(nil, cols, i))
		if j, dup := seen[k]; dup {
			t.Errorf("rows %d and %d have the same key %q", j, i, k)
		}
		seen[k] = i
	}
	// An int64 1 and the string "1" have the same Text, so the same key, as
	// Text-based matching always had.
	if got, want := string(AppendKey(nil, []arrow.Array{ints}, 0)), string(AppendKey(nil, []arrow.Array{a.Array}, 3)); got != want {
		t.Errorf("int64 1 key %q, string \"1\" key %q", got, want)
	}
	if got := string(AppendKey(nil, []arrow.Array{ints}, 2)); got != "0000000005:\x00null" {
		t.Errorf("null key %q", got)
	}
}

func TestGroups(t *testing.T) {
	mem := checkedMem(t)
	vals := []string{"x", "y", "x", "z", "y", "x"}
	col := Strings(mem, "k", vals)
	defer col.Array.Release()
	g := NewGroups([]arrow.Array{col.Array}, 0)
	var got []int
	var opened []bool
	for i := range vals {
		grp, isNew := g.Add(i)
		got = append(got, grp)
		opened = append(opened, isNew)
	}
	if want := []int{0, 1, 0, 2, 1, 0}; !slices.Equal(got, want) {
		t.Errorf("groups %v, want %v", got, want)
	}
	if want := []bool{true, true, false, true, false, false}; !slices.Equal(opened, want) {
		t.Errorf("opened %v, want %v", opened, want)
	}
	if g.Len() != 3 || g.First(2) != 3 {
		t.Errorf("Len %d, First(2) %d; want 3, 3", g.Len(), g.First(2))
	}
	other := Strings(mem, "o", []string{"z", "w"})
	defer other.Array.Release()
	if grp, ok := g.Lookup([]arrow.Array{other.Array}, 0); !ok || grp != 2 {
		t.Errorf("Lookup(z) = %d, %v; want 2, true", grp, ok)
	}
	if _, ok := g.Lookup([]arrow.Array{other.Array}, 1); ok {
		t.Errorf("Lookup(w) found a group")
	}
}

// Keys whose hashes collide are told apart by their bytes.
func TestGroupsHashCollision(t *testing.T) {
	mem := checkedMem(t)
	col := Strings(mem, "k", []string{"a", "b", "a", "b"})
	defer col.Array.Release()
	g := NewGroups([]arrow.Array{col.Array}, 0)
	// Every key under one hash: probing must keep "a" and "b" apart.
	for i := range 4 {
		grp, isNew := g.add(i, 42)
		if grp != i%2 || isNew != (i < 2) {
			t.Errorf("row %d: group %d (new %v), want %d (new %v)", i, grp, isNew, i%2, i < 2)
		}
	}
	if g.Len() != 2 {
		t.Errorf("%d groups, want 2", g.Len())
	}
}

func TestTakeSorted(t *testing.T) {
	mem := checkedMem(t)
	rec := New(Strings(mem, "a", []string{"x", "y", "z"}), Int64s(mem, "b", []int64{1, 2, 3}, nil))
	defer rec.Release()
	for _, c := range []struct {
		idx    []int
		want   string
		shared bool
	}{
		{[]int{0, 1, 2}, "a,b\nx,1\ny,2\nz,3\n", true},
		{[]int{1, 2}, "a,b\ny,2\nz,3\n", true},
		{[]int{0, 2}, "a,b\nx,1\nz,3\n", false},
		{nil, "a,b\n", false},
	} {
		out, err := TakeSorted(context.Background(), mem, rec, c.idx)
		if err != nil {
			t.Fatal(err)
		}
		if got := writeCSV(t, out); got != c.want {
			t.Errorf("TakeSorted(%v) = %q, want %q", c.idx, got, c.want)
		}
		shared := out.NumRows() > 0 && out.Column(0).Data().Buffers()[2] == rec.Column(0).Data().Buffers()[2]
		if shared != c.shared {
			t.Errorf("TakeSorted(%v) shares the input's buffers: %v, want %v", c.idx, shared, c.shared)
		}
		out.Release()
	}
}

// Groups numbers keys as a map of AppendKey strings does, whatever the
// columns (one string column is keyed in place, others through AppendKey),
// the size hint (the table grows), nulls, and the order rows come in
// (in order they are hashed in batches ahead).
func TestGroupsMatchesAMap(t *testing.T) {
	mem := checkedMem(t)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 5000
	strs := make([]string, n)
	valid := make([]bool, n)
	ints := make([]int64, n)
	for i := range n {
		strs[i] = strconv.Itoa(rng.IntN(700))
		valid[i] = rng.IntN(20) != 0
		ints[i] = int64(rng.IntN(900))
	}
	strs[7], valid[7] = nullText, true // the text of a null, in a string cell
	sb := array.NewStringBuilder(mem)
	sb.AppendValues(strs, valid)
	sc := sb.NewArray()
	sb.Release()
	defer sc.Release()
	ib := array.NewInt64Builder(mem)
	ib.AppendValues(ints, valid)
	ic := ib.NewArray()
	ib.Release()
	defer ic.Release()
	inOrder := make([]int, n)
	for i := range inOrder {
		inOrder[i] = i
	}
	shuffled := slices.Clone(inOrder)
	rng.Shuffle(n, func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, c := range []struct {
		name string
		cols []arrow.Array
	}{{"string", []arrow.Array{sc}}, {"int64", []arrow.Array{ic}}, {"two", []arrow.Array{sc, ic}}} {
		for _, hint := range []int{0, n} {
			for oi, order := range [][]int{inOrder, shuffled} {
				ref := map[string]int{}
				g := NewGroups(c.cols, hint)
				for _, i := range order {
					k := string(AppendKey(nil, c.cols, i))
					want, seen := ref[k]
					if !seen {
						want = len(ref)
						ref[k] = want
					}
					grp, isNew := g.Add(i)
					if grp != want || isNew == seen {
						t.Fatalf("%s hint %d order %d: row %d group %d (new %v), want %d (new %v)", c.name, hint, oi, i, grp, isNew, want, !seen)
					}
				}
				if g.Len() != len(ref) {
					t.Errorf("%s: %d groups, want %d", c.name, g.Len(), len(ref))
				}
				for _, i := range order[:500] {
					grp, ok := g.Lookup(c.cols, i)
					if want := ref[string(AppendKey(nil, c.cols, i))]; !ok || grp != want {
						t.Errorf("%s: Lookup(%d) = %d, %v; want %d", c.name, i, grp, ok, want)
					}
				}
			}
		}
	}
	// An int64 column looked up in a string column's groups: the same Text
	// is the same key.
	g := NewGroups([]arrow.Array{sc}, 0)
	texts := map[string]bool{}
	for i := range n {
		g.Add(i)
		texts[string(AppendKey(nil, []arrow.Array{sc}, i))] = true
	}
	for i := range n {
		_, ok := g.Lookup([]arrow.Array{ic}, i)
		k := string(AppendKey(nil, []arrow.Array{ic}, i))
		if found := texts[k]; ok != found {
			t.Fatalf("Lookup of int64 row %d (%q): %v, want %v", i, k, ok, found)
		}
	}
}

// A caller may look up the tables of several batches through one slice,
// setting its columns in place: the hashes read ahead for one table are
// not those of the next.
func TestGroupsLookupReusedSlice(t *testing.T) {
	mem := checkedMem(t)
	base := Strings(mem, "k", []string{"x", "y"})
	defer base.Array.Release()
	first := Strings(mem, "k", []string{"p", "q"})
	defer first.Array.Release()
	second := Strings(mem, "k", []string{"y", "x"})
	defer second.Array.Release()
	grouped := []arrow.Array{base.Array}
	g := NewGroups(grouped, 2)
	for i := range 2 {
		g.Add(i)
	}
	grouped[0] = first.Array // Groups keeps its own slice
	cols := []arrow.Array{first.Array}
	if _, ok := g.Lookup(cols, 0); ok {
		t.Fatal("p found")
	}
	cols[0] = second.Array
	if grp, ok := g.Lookup(cols, 1); !ok || grp != 0 {
		t.Errorf("Lookup(x) through a reused slice = %d, %v; want 0, true", grp, ok)
	}
	if grp, ok := g.Lookup([]arrow.Array{base.Array}, 1); !ok || grp != 1 {
		t.Errorf("Lookup(y) = %d, %v; want 1, true", grp, ok)
	}
}

// FuzzGroups holds Groups to a map of AppendKey strings over rows of one
// or two columns read from the input: each byte a row, its low bits the
// key (a small alphabet, so keys repeat), 0xff a null. The seeds are the
// edges: no row, one, all equal, all null, enough distinct keys to grow.
func FuzzGroups(f *testing.F) {
	f.Add([]byte{}, false)
	f.Add([]byte{1}, true)
	f.Add(bytes.Repeat([]byte{7}, 100), false)
	f.Add(bytes.Repeat([]byte{0xff}, 40), true)
	grow := make([]byte, 600)
	for i := range grow {
		grow[i] = byte(i*37) &^ 0x80
	}
	f.Add(grow, false)
	f.Add(grow, true)
	f.Fuzz(func(t *testing.T, data []byte, two bool) {
		mem := checkedMem(t)
		sb, ib := array.NewStringBuilder(mem), array.NewInt64Builder(mem)
		defer sb.Release()
		defer ib.Release()
		for _, b := range data {
			if b == 0xff {
				sb.AppendNull()
				ib.AppendNull()
				continue
			}
			sb.Append(strconv.Itoa(int(b & 0x7f)))
			ib.Append(int64(b >> 5))
		}
		sc, ic := sb.NewArray(), ib.NewArray()
		defer sc.Release()
		defer ic.Release()
		cols := []arrow.Array{sc}
		if two {
			cols = append(cols, ic)
		}
		ref := map[string]int{}
		g := NewGroups(cols, 0)
		for i := range data {
			k := string(AppendKey(nil, cols, i))
			want, seen := ref[k]
			if !seen {
				want = len(ref)
				ref[k] = want
			}
			if grp, isNew := g.Add(i); grp != want || isNew == seen || g.First(grp) > i {
				t.Fatalf("row %d: group %d (new %v), want %d (new %v)", i, grp, isNew, want, !seen)
			}
		}
		if g.Len() != len(ref) {
			t.Fatalf("%d groups, want %d", g.Len(), len(ref))
		}
		for i := len(data) - 1; i >= 0; i-- {
			if grp, ok := g.Lookup(cols, i); !ok || grp != ref[string(AppendKey(nil, cols, i))] {
				t.Fatalf("Lookup(%d) = %d, %v", i, grp, ok)
			}
		}
	})
}

// canonical maps each dictionary entry to the first of its value (a null
// to len), nil when every entry is its own, whatever the number of parts
// it is split in.
func TestCanonicalParts(t *testing.T) {
	mem := checkedMem(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, dup := range []bool{false, true} {
		b := array.NewStringBuilder(mem)
		const n = 200_000
		var vals []string
		for k := range n {
			switch {
			case dup && k%1000 == 999:
				b.AppendNull()
				vals = append(vals, "")
				continue
			case dup && k > 0 && rng.IntN(10) == 0:
				vals = append(vals, vals[rng.IntN(k)])
			default:
				vals = append(vals, strconv.Itoa(k)+strings.Repeat("x", rng.IntN(12))+"/"+strconv.Itoa(k%7))
			}
			b.Append(vals[k])
		}
		dict := b.NewStringArray()
		b.Release()
		want := make([]int32, n)
		first := map[string]int32{}
		moved := false
		for k, v := range vals {
			if dict.IsNull(k) {
				want[k], moved = n, true
				continue
			}
			if _, ok := first[v]; !ok {
				first[v] = int32(k)
			}
			want[k] = first[v]
			moved = moved || want[k] != int32(k)
		}
		if !moved {
			want = nil
		}
		for parts := 1; parts <= 3; parts++ {
			if got := canonicalIn(dict, parts); !slices.Equal(got, want) {
				t.Errorf("duplicates %v, %d parts: the map differs from the reference", dup, parts)
			}
		}
		dict.Release()
	}
}
