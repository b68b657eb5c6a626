package stages

import (
	"slices"
	"strings"
	"testing"
)

// sortedGroups orders items as a string sort does, ties of the 8-byte
// prefix, short items and bytes above 0x7f included.
func TestSortedGroups(t *testing.T) {
	items := []string{"abcdefgh2", "abcdefgh10", "ab", "ab\x00", "", "\xffz", "abcdefgh", "b", "abcdefgh2", "a\x80"}
	if got, want := sortedItems(items), stringSorted(items); !slices.Equal(got, want) {
		t.Errorf("sortedGroups order %q, want %q", got, want)
	}
}

// Many items over many of the buckets sortedGroups sorts in, hex ids as
// the notebook's and arbitrary bytes: the order of a string sort.
func TestSortedGroupsManyBuckets(t *testing.T) {
	r := uint64(1)
	next := func() uint64 { r ^= r << 13; r ^= r >> 7; r ^= r << 17; return r }
	var items []string
	for i := range 20000 {
		var b []byte
		for range 1 + int(next()%12) {
			if i%2 == 0 {
				b = append(b, "0123456789abcdef"[next()%16])
			} else {
				b = append(b, byte(next()))
			}
		}
		items = append(items, string(b))
	}
	want := stringSorted(items)
	for parts := 1; parts <= 3; parts++ {
		order := sortedGroupsIn(len(items), func(g int) string { return items[g] }, parts)
		got := make([]string, len(order))
		for i, g := range order {
			got[i] = items[g]
		}
		if !slices.Equal(got, want) {
			t.Errorf("sortedGroups order in %d parts differs from a string sort", parts)
		}
	}
}

// sortedItems is items in sortedGroups' order.
func sortedItems(items []string) []string {
	order := sortedGroups(len(items), func(g int) string { return items[g] })
	got := make([]string, len(order))
	for i, g := range order {
		got[i] = items[g]
	}
	return got
}

func stringSorted(items []string) []string {
	want := slices.Clone(items)
	slices.SortFunc(want, strings.Compare)
	return want
}

// permuteRows puts row order[k] at k, cycles of every length included.
func TestPermuteRows(t *testing.T) {
	order := []int{3, 0, 4, 1, 2, 5, 7, 6}
	rows := make([]int, 2*len(order))
	for i := range rows {
		rows[i] = i
	}
	permuteRows(rows, 2, order)
	for k, src := range order {
		if rows[2*k] != 2*src || rows[2*k+1] != 2*src+1 {
			t.Fatalf("row %d holds %v, want row %d", k, rows[2*k:2*k+2], src)
		}
	}
}
