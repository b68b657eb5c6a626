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
	order := sortedGroups(len(items), func(g int) string { return items[g] })
	got := make([]string, len(order))
	for i, g := range order {
		got[i] = items[g]
	}
	want := slices.Clone(items)
	slices.SortFunc(want, strings.Compare)
	if !slices.Equal(got, want) {
		t.Errorf("sortedGroups order %q, want %q", got, want)
	}
}
