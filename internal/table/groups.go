package table

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"runtime"
	"slices"
	"strconv"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/safe"
)

// AppendKey appends the key of row i over cols to buf: each column's Text,
// length-prefixed so that no value can fake a column boundary. String and
// int64 cells are appended without allocating.
func AppendKey(buf []byte, cols []arrow.Array, i int) []byte {
	for _, c := range cols {
		start := len(buf)
		buf = append(buf, "0000000000:"...) // room for the length, fixed width
		buf = appendText(buf, c, i)
		n := len(buf) - start - 11
		for p := start + 9; p >= start; p-- { // zero-padded decimal length
			buf[p] = byte('0' + n%10)
			n /= 10
		}
	}
	return buf
}

// nullText is a null cell's Text in a key.
const nullText = "\x00null"

func appendText(buf []byte, c arrow.Array, i int) []byte {
	if c.IsNull(i) {
		return append(buf, nullText...)
	}
	switch a := c.(type) {
	case *array.String:
		return append(buf, a.Value(i)...)
	case *array.Int64:
		return strconv.AppendInt(buf, a.Value(i), 10)
	case *array.Dictionary:
		if s, ok := AsStrings(a); ok {
			if s.IsNull(i) {
				return append(buf, nullText...)
			}
			return append(buf, s.Value(i)...)
		}
		return append(buf, a.ValueStr(i)...)
	default:
		return append(buf, a.ValueStr(i)...)
	}
}

// keyCol is one key column, its form looked up once.
type keyCol struct {
	a   arrow.Array
	str *StringCells // a string column, plain or dictionary-encoded
}

func keyCols(cols []arrow.Array) []keyCol {
	out := make([]keyCol, len(cols))
	for i, c := range cols {
		out[i].a = c
		out[i].str, _ = AsStrings(c)
	}
	return out
}

// cellKey is cell i's Text: a string cell's bytes in place (no copy),
// others built in *buf and valid until *buf is next used.
func (c *keyCol) cellKey(i int, buf *[]byte) string {
	if s := c.str; s != nil {
		if s.IsNull(i) {
			return nullText
		}
		return s.Value(i)
	}
	*buf = appendText((*buf)[:0], c.a, i)
	return unsafe.String(unsafe.SliceData(*buf), len(*buf))
}

// rowHash hashes row i's key over cols from its cells' Texts: two rows
// have the same key (AppendKey) exactly when every cell's Text is equal.
func rowHash(seed maphash.Seed, cols []keyCol, i int, buf *[]byte) uint64 {
	if len(cols) == 1 {
		return maphash.String(seed, cols[0].cellKey(i, buf))
	}
	var h uint64
	for c := range cols {
		h = (h ^ maphash.String(seed, cols[c].cellKey(i, buf))) * 0x9e3779b97f4a7c15
	}
	return h ^ h>>29
}

// sameKey says whether row i of a and row j of b have the same key.
func sameKey(a []keyCol, i int, b []keyCol, j int, bufA, bufB *[]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for c := range a {
		if a[c].cellKey(i, bufA) != b[c].cellKey(j, bufB) {
			return false
		}
	}
	return true
}

// Groups numbers the distinct keys of a table's rows (see AppendKey) in
// order of first appearance, so that the numbers do not depend on the hash
// seed. It hashes each key's cells in place (maphash over a string cell's
// bytes) instead of building a string per row: at 10M rows of 97-byte
// file ids a map of strings is gigabytes of garbage. Equal hashes are
// confirmed by comparing the cells.
//
// The table is open addressing over one []uint64 (a slot is the hash's
// high half and the group number: one cache line read per probe, where a
// Go map read two or three), and the hashes of the next rows are computed
// in batches that read their slots ahead, so that the cache misses of a
// batch overlap instead of following one another (at 10M rows the misses
// were a quarter of the run).
//
// When every key column is dictionary-encoded and their dictionaries are
// no bigger than the rows, rows are grouped by their dictionary codes
// instead (see codeKeys): an array indexed by the codes, no hashing of
// text per row.
type Groups struct {
	cols  []keyCol
	seed  maphash.Seed
	slots []uint64 // hash>>32<<32 | group+1, 0 when empty; linear probing
	first []int32  // per group: the row it first appeared in
	ahead batch
	buf   []byte // scratch for cells that are not strings
	buf2  []byte
	codes *codeKeys // set: grouping by codes, slots unused
	// Lookup's columns of another table, their forms looked up once.
	foreign     []arrow.Array
	foreignKeys []keyCol
	byText      *Groups // for Lookup in code mode: the groups by Text
}

// batch holds the hashes of rows start..start+n-1 of cols.
type batch struct {
	cols     []keyCol
	start, n int
	h        [batchRows]uint64
	touched  uint64 // the slots read ahead, summed so the reads stay
}

const batchRows = 32

// NewGroups prepares to group rows of cols; rows is a size hint.
func NewGroups(cols []arrow.Array, rows int) *Groups {
	g := &Groups{cols: keyCols(cols), seed: maphash.MakeSeed()}
	if g.codes = newCodeKeys(g.cols, rows); g.codes == nil {
		g.slots = make([]uint64, slotsFor(rows))
	} else {
		rows = min(rows, len(g.codes.group)) // no more groups than keys
	}
	g.first = make([]int32, 0, rows)
	return g
}

// slotsFor is the table size for n groups: a power of two at most 3/4 full.
func slotsFor(n int) int {
	return 1 << max(4, bits.Len(uint(n+n/3)))
}

// Add returns the group of row i of the grouped columns, and whether the
// row opened it.
func (g *Groups) Add(i int) (int, bool) {
	if c := g.codes; c != nil {
		k := c.key(i)
		if grp := c.group[k]; grp > 0 {
			return int(grp - 1), false
		}
		c.group[k] = int32(len(g.first) + 1)
		g.first = append(g.first, int32(i))
		return len(g.first) - 1, true
	}
	return g.add(i, g.hash(g.cols, i))
}

// add is Add for row i, whose hash is h.
func (g *Groups) add(i int, h uint64) (int, bool) {
	grp, pos, ok := g.find(h, g.cols, i)
	if ok {
		return grp, false
	}
	if (len(g.first)+1)*4 > len(g.slots)*3 {
		g.grow()
		_, pos, _ = g.find(h, g.cols, i)
	}
	grp = len(g.first)
	g.slots[pos] = h>>32<<32 | uint64(grp+1)
	g.first = append(g.first, int32(i))
	return grp, true
}

// Lookup returns the group whose key equals that of row i of cols (columns
// of another table, in the grouped columns' order), if any.
func (g *Groups) Lookup(cols []arrow.Array, i int) (int, bool) {
	if g.codes != nil {
		if g.byText == nil {
			g.byText = g.textGroups()
		}
		return g.byText.Lookup(cols, i)
	}
	if !slices.Equal(g.foreign, cols) {
		g.foreign, g.foreignKeys = slices.Clone(cols), keyCols(cols)
	}
	grp, _, ok := g.find(g.hash(g.foreignKeys, i), g.foreignKeys, i)
	return grp, ok
}

// textGroups is g grouped by Text (the same group numbers): what Lookup
// needs when g groups by codes.
func (g *Groups) textGroups() *Groups {
	t := &Groups{cols: g.cols, seed: g.seed, slots: make([]uint64, slotsFor(len(g.first))), first: make([]int32, 0, len(g.first))}
	for _, r := range g.first {
		t.add(int(r), rowHash(t.seed, t.cols, int(r), &t.buf))
	}
	return t
}

// Matches says for each row of col whether its Text is a key of g (whose
// keys are one column). For a dictionary column with fewer values than
// rows each value is looked up once.
func (g *Groups) Matches(col arrow.Array) []bool {
	n := col.Len()
	out := make([]bool, n)
	cols := []arrow.Array{col}
	s, ok := AsStrings(col)
	if !ok || s.Dictionary() == nil || s.Dictionary().Len() >= n {
		for i := range n {
			_, out[i] = g.Lookup(cols, i)
		}
		return out
	}
	values := []arrow.Array{s.Dictionary()}
	found := make([]bool, s.Dictionary().Len())
	for k := range found {
		_, found[k] = g.Lookup(values, k)
	}
	nulls := []arrow.Array{array.MakeArrayOfNull(memory.DefaultAllocator, arrow.BinaryTypes.String, 1)}
	defer nulls[0].Release()
	_, nullFound := g.Lookup(nulls, 0)
	for i := range n {
		if s.IsNull(i) {
			out[i] = nullFound
		} else {
			out[i] = found[s.Code(i)]
		}
	}
	return out
}

// find returns the group of row i of cols, whose hash is h, or the empty
// slot where it would go.
func (g *Groups) find(h uint64, cols []keyCol, i int) (grp, pos int, ok bool) {
	mask := len(g.slots) - 1
	tag := h >> 32
	for p := int(h) & mask; ; p = (p + 1) & mask {
		s := g.slots[p]
		if s == 0 {
			return 0, p, false
		}
		if s>>32 == tag {
			grp := int(uint32(s)) - 1
			if sameKey(cols, i, g.cols, int(g.first[grp]), &g.buf, &g.buf2) {
				return grp, p, true
			}
		}
	}
}

// grow doubles the table, hashing each group's key again.
func (g *Groups) grow() {
	old := g.slots
	g.slots = make([]uint64, 2*len(old))
	mask := len(g.slots) - 1
	for _, s := range old {
		if s == 0 {
			continue
		}
		grp := int(uint32(s)) - 1
		h := rowHash(g.seed, g.cols, int(g.first[grp]), &g.buf)
		p := int(h) & mask
		for g.slots[p] != 0 {
			p = (p + 1) & mask
		}
		g.slots[p] = s
	}
}

// hash returns the hash of row i of cols. Rows asked for in order are
// hashed a batch ahead (see Groups).
func (g *Groups) hash(cols []keyCol, i int) uint64 {
	b := &g.ahead
	if slices.Equal(b.cols, cols) && i >= b.start && i < b.start+b.n {
		return b.h[i-b.start]
	}
	if len(cols) == 0 || i != 0 && !(slices.Equal(b.cols, cols) && i == b.start+b.n) {
		return rowHash(g.seed, cols, i, &g.buf) // not in order
	}
	// A copy: a caller may reuse its slice for the columns of another table.
	b.cols, b.start, b.n = append(b.cols[:0], cols...), i, min(batchRows, cols[0].a.Len()-i)
	for j := range b.n {
		b.h[j] = rowHash(g.seed, cols, i+j, &g.buf)
	}
	// A tight loop of independent reads: the processor has all of them in
	// flight at once.
	mask := len(g.slots) - 1
	var sum uint64
	for _, h := range b.h[:b.n] {
		sum += g.slots[int(h)&mask]
	}
	b.touched += sum
	return b.h[0]
}

// Len is the number of groups.
func (g *Groups) Len() int { return len(g.first) }

// First is the row group grp first appeared in.
func (g *Groups) First(grp int) int { return int(g.first[grp]) }

// codeKeys numbers a row's key by its dictionary codes: per column the
// code of the value's first entry in the dictionary (canon, as a
// dictionary may hold a value twice), len(dictionary) for a null, mixed
// into one index of group.
type codeKeys struct {
	cols   []*StringCells
	nulls  []bool    // per column: it has nulls
	canon  [][]int32 // nil when the dictionary holds each value once
	size   []int     // per column: the dictionary's length, the null code
	stride []int
	group  []int32 // per key: group+1, 0 when none yet
}

// newCodeKeys groups by codes when every column is dictionary-encoded and
// the keys possible (the product of the dictionaries' sizes, each plus
// one for null) are at most a few times the rows; else nil.
func newCodeKeys(cols []keyCol, rows int) *codeKeys {
	if len(cols) == 0 {
		return nil
	}
	c := &codeKeys{}
	size := 1
	for _, k := range cols {
		if k.str == nil || k.str.Dictionary() == nil || k.str.Dictionary().Len() > max(rows, 1<<10) {
			return nil
		}
		m := k.str.Dictionary().Len() + 1
		if size > (4*rows+1<<10)/m {
			return nil
		}
		c.cols = append(c.cols, k.str)
		c.stride = append(c.stride, size)
		size *= m
	}
	for _, s := range c.cols {
		c.canon = append(c.canon, canonical(s.Dictionary()))
		c.size = append(c.size, s.Dictionary().Len())
		c.nulls = append(c.nulls, s.NullN() > 0)
	}
	c.group = make([]int32, size)
	return c
}

// canonical maps each entry of a dictionary to the first entry of the
// same Text (a null entry: to len(dict), the null key), or is nil when
// each entry is its own (as in the dictionaries ReadCSV makes).
//
// The entries are split among the cores by a cheap mix of their bytes
// (spread), each part grouped on its own: equal values fall in the same
// part, so each part finds the first of its values as one pass would, and
// the map does not depend on the split (at 10M rows the 5M file ids took
// 0.7 s on one core).
func canonical(dict *array.String) []int32 {
	return canonicalIn(dict, max(1, min(runtime.GOMAXPROCS(0), dict.Len()/canonicalMin)))
}

// canonicalIn is canonical in parts parts.
func canonicalIn(dict *array.String, parts int) []int32 {
	out := make([]int32, dict.Len())
	moved := make([]bool, parts) // a part mapped an entry to another
	seed := maphash.MakeSeed()
	g := safe.NewGroup(nil)
	for p := range parts {
		g.Go(func() { moved[p] = canonicalPart(dict, seed, p, parts, out) })
	}
	if err := g.Wait(); err != nil {
		panic(err) // in the caller's goroutine, which the stage's recovers
	}
	if !slices.Contains(moved, true) {
		return nil
	}
	return out
}

// canonicalMin is the fewest entries a part of canonical's work is given.
const canonicalMin = 64 << 10

// canonicalPart fills out for the entries of dict in part p of parts
// (null entries in part 0), and says whether one of them is not its own.
func canonicalPart(dict *array.String, seed maphash.Seed, p, parts int, out []int32) bool {
	n := dict.Len()
	cols := keyCols([]arrow.Array{dict})
	g := &Groups{cols: cols, seed: seed, slots: make([]uint64, slotsFor(n/parts+n/parts/8)), first: make([]int32, 0, n/parts+n/parts/8)}
	moved := false
	var ks [batchRows]int
	var hs [batchRows]uint64
	for k := 0; k < n; {
		m := 0
		for ; k < n && m < batchRows; k++ {
			if dict.IsNull(k) {
				if p == 0 {
					out[k] = int32(n)
					moved = true
				}
				continue
			}
			v := dict.Value(k)
			if parts > 1 && spread(v)%uint64(parts) != uint64(p) {
				continue
			}
			ks[m], hs[m] = k, maphash.String(seed, v)
			m++
		}
		// The batch's slots read first: their cache misses overlap.
		mask := len(g.slots) - 1
		for _, h := range hs[:m] {
			g.ahead.touched += g.slots[int(h)&mask]
		}
		for j, k := range ks[:m] {
			grp, _ := g.add(k, hs[j])
			out[k] = g.first[grp]
			moved = moved || out[k] != int32(k)
		}
	}
	return moved
}

// spread mixes a value's length and its first and last 8 bytes: equal
// values spread alike, and it costs far less than hashing 97 bytes.
func spread(v string) uint64 {
	x := uint64(len(v))
	if len(v) >= 8 {
		x ^= binary.LittleEndian.Uint64([]byte(v[:8]))
		x ^= binary.LittleEndian.Uint64([]byte(v[len(v)-8:])) * 0x9e3779b97f4a7c15
	} else {
		for i := range len(v) {
			x = x<<8 | uint64(v[i])
		}
	}
	x *= 0xbf58476d1ce4e5b9
	return x >> 32
}

// key is row i's index into group.
func (c *codeKeys) key(i int) int {
	k := 0
	for j, s := range c.cols {
		var code int
		switch {
		case c.nulls[j] && s.arr.IsNull(i):
			code = c.size[j]
		case c.canon[j] == nil:
			code = s.Code(i)
		default:
			code = int(c.canon[j][s.Code(i)])
		}
		k += code * c.stride[j]
	}
	return k
}
