package table

import (
	"bytes"
	"hash/maphash"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// AppendKey appends the key of row i over cols to buf: each column's Text,
// length-prefixed so that no value can fake a column boundary. String and
// int64 cells are appended without allocating.
func AppendKey(buf []byte, cols []arrow.Array, i int) []byte {
	for _, c := range cols {
		start := len(buf)
		buf = append(buf, "0000000000:"...) // room for the length, fixed width
		switch {
		case c.IsNull(i):
			buf = append(buf, "\x00null"...)
		default:
			switch a := c.(type) {
			case *array.String:
				buf = append(buf, a.Value(i)...)
			case *array.Int64:
				buf = strconv.AppendInt(buf, a.Value(i), 10)
			default:
				buf = append(buf, a.ValueStr(i)...)
			}
		}
		n := len(buf) - start - 11
		for p := start + 9; p >= start; p-- { // zero-padded decimal length
			buf[p] = byte('0' + n%10)
			n /= 10
		}
	}
	return buf
}

// Groups numbers the distinct keys of a table's rows (see AppendKey) in
// order of first appearance. It hashes each key's bytes (maphash) instead
// of building a string per row: at 10M rows of 97-byte file ids a map of
// strings is gigabytes of garbage. Equal hashes are confirmed by comparing
// the keys' bytes.
type Groups struct {
	cols  []arrow.Array
	seed  maphash.Seed
	head  map[uint64]int32 // hash -> newest group with that hash
	next  []int32          // per group: the previous group with the same hash, or -1
	first []int32          // per group: the row it first appeared in
	buf   []byte
	buf2  []byte
}

// NewGroups prepares to group rows of cols; rows is a size hint.
func NewGroups(cols []arrow.Array, rows int) *Groups {
	return &Groups{
		cols:  cols,
		seed:  maphash.MakeSeed(),
		head:  make(map[uint64]int32, rows),
		next:  make([]int32, 0, rows),
		first: make([]int32, 0, rows),
	}
}

// Add returns the group of row i of the grouped columns, and whether the
// row opened it.
func (g *Groups) Add(i int) (int, bool) {
	g.buf = AppendKey(g.buf[:0], g.cols, i)
	return g.add(i, maphash.Bytes(g.seed, g.buf))
}

// add is Add for the key in g.buf, whose hash is h.
func (g *Groups) add(i int, h uint64) (int, bool) {
	if grp, ok := g.find(h, g.buf); ok {
		return grp, false
	}
	grp := int32(len(g.first))
	prev, ok := g.head[h]
	if !ok {
		prev = -1
	}
	g.head[h] = grp
	g.next = append(g.next, prev)
	g.first = append(g.first, int32(i))
	return int(grp), true
}

// Lookup returns the group whose key equals that of row i of cols (columns
// of another table, in the grouped columns' order), if any.
func (g *Groups) Lookup(cols []arrow.Array, i int) (int, bool) {
	g.buf = AppendKey(g.buf[:0], cols, i)
	return g.find(maphash.Bytes(g.seed, g.buf), g.buf)
}

func (g *Groups) find(h uint64, key []byte) (int, bool) {
	grp, ok := g.head[h]
	if !ok {
		return 0, false
	}
	for ; grp >= 0; grp = g.next[grp] {
		g.buf2 = AppendKey(g.buf2[:0], g.cols, int(g.first[grp]))
		if bytes.Equal(g.buf2, key) {
			return int(grp), true
		}
	}
	return 0, false
}

// Len is the number of groups.
func (g *Groups) Len() int { return len(g.first) }

// First is the row group grp first appeared in.
func (g *Groups) First(grp int) int { return int(g.first[grp]) }
