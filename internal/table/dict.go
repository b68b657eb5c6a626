package table

import (
	"hash/maphash"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// dictBuilder collects a string column as its distinct values, end to end
// in order of first appearance, and a code per row: the form ReadCSV
// gives string columns. A file's expert, label and file id columns repeat
// their values (at 10M rows the 97-byte file ids, two rows each, were
// half the table), and a selection of rows then copies codes, not text.
//
// The values are found by open addressing over one []uint64 (a slot is
// the hash's high half and the code), as Groups does.
type dictBuilder struct {
	seed  maphash.Seed
	data  []byte
	ends  []int32  // ends[k+1]: the end of value k in data; ends[0] = 0
	slots []uint64 // hash>>32<<32 | code+1, 0 when empty
	codes []int32  // per row
	// A piece's dictionary (local) holds its values as the strings the
	// CSV reader made, not copied, and their hashes, for the merge.
	local   bool
	vals    []string
	hashes  []uint64
	touched uint64 // merge's read-ahead sums, kept so the reads stay
	last    string // the value of the last row added
}

// newDictBuilder makes a column's dictionary, or (local) a piece's.
func newDictBuilder(seed maphash.Seed, local bool) *dictBuilder {
	return &dictBuilder{seed: seed, ends: []int32{0}, slots: make([]uint64, 16), local: local}
}

// newLocalDict makes a piece's dictionary, sized for rows rows: with a
// table that does not grow, whatever the values (a table of 64K slots
// for a piece of 25K rows, 512 KB).
func newLocalDict(seed maphash.Seed, rows int) *dictBuilder {
	return &dictBuilder{seed: seed, local: true, slots: make([]uint64, slotsFor(rows)),
		codes: make([]int32, 0, rows), vals: make([]string, 0, rows), hashes: make([]uint64, 0, rows)}
}

// size is the number of distinct values.
func (d *dictBuilder) size() int {
	if d.local {
		return len(d.vals)
	}
	return len(d.ends) - 1
}

func (d *dictBuilder) value(k int) string {
	if d.local {
		return d.vals[k]
	}
	b := d.data[d.ends[k]:d.ends[k+1]]
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// add appends a row holding v. A value like the last row's takes its
// code without hashing: labels and folders come in runs.
func (d *dictBuilder) add(v string) {
	if n := len(d.codes); n > 0 && v == d.last {
		d.codes = append(d.codes, d.codes[n-1])
		return
	}
	d.last = v
	d.codes = append(d.codes, d.code(v, maphash.String(d.seed, v)))
}

// code returns v's code, whose hash is h, adding v if it is new.
func (d *dictBuilder) code(v string, h uint64) int32 {
	mask := len(d.slots) - 1
	tag := h >> 32
	p := int(h) & mask
	for ; d.slots[p] != 0; p = (p + 1) & mask {
		if s := d.slots[p]; s>>32 == tag {
			if k := int(uint32(s)) - 1; d.value(k) == v {
				return int32(k)
			}
		}
	}
	k := d.size()
	if (k+1)*4 > len(d.slots)*3 {
		d.resize(2 * len(d.slots))
		mask = len(d.slots) - 1
		for p = int(h) & mask; d.slots[p] != 0; p = (p + 1) & mask {
		}
	}
	d.slots[p] = tag<<32 | uint64(k+1)
	if d.local {
		d.vals, d.hashes = append(d.vals, v), append(d.hashes, h)
	} else {
		d.data = append(d.data, v...)
		d.ends = append(d.ends, int32(len(d.data)))
	}
	return int32(k)
}

// resize makes the table n slots (a power of two), hashing each value
// again.
func (d *dictBuilder) resize(n int) {
	d.slots = make([]uint64, n)
	mask := n - 1
	for k := range d.size() {
		var h uint64
		if d.local {
			h = d.hashes[k]
		} else {
			h = maphash.String(d.seed, d.value(k))
		}
		p := int(h) & mask
		for d.slots[p] != 0 {
			p = (p + 1) & mask
		}
		d.slots[p] = h>>32<<32 | uint64(k+1)
	}
}

// reserve sizes d for scale times what a piece's dictionary holds, so
// that it is not copied as it grows (make's memory is touched only when
// written).
func (d *dictBuilder) reserve(piece *dictBuilder, scale float64) {
	grow := func(n int) int { return int(float64(n) * scale) }
	text := 0
	for k := range piece.size() {
		text += len(piece.value(k))
	}
	d.data = append(make([]byte, 0, grow(text)), d.data...)
	d.ends = append(make([]int32, 0, grow(piece.size())+1), d.ends...)
	d.codes = append(make([]int32, 0, grow(len(piece.codes))), d.codes...)
	if n := slotsFor(grow(piece.size())); n > len(d.slots) {
		d.resize(n)
	}
}

// merge appends a piece's rows (the piece's values found or added here,
// with the hashes the piece kept).
func (d *dictBuilder) merge(piece *dictBuilder) {
	remap := make([]int32, piece.size())
	for lo := 0; lo < len(remap); lo += batchRows {
		hi := min(lo+batchRows, len(remap))
		// The slots of the batch read first, in a tight loop of
		// independent reads: their cache misses overlap (see Groups).
		mask := len(d.slots) - 1
		var sum uint64
		for _, h := range piece.hashes[lo:hi] {
			sum += d.slots[int(h)&mask]
		}
		d.touched += sum
		for k := lo; k < hi; k++ {
			remap[k] = d.code(piece.value(k), piece.hashes[k])
		}
	}
	for _, c := range piece.codes {
		d.codes = append(d.codes, remap[c])
	}
}

// array makes the dictionary column, over d's memory where it can.
func (d *dictBuilder) array(mem memory.Allocator) arrow.Array {
	values := array.NewData(arrow.BinaryTypes.String, d.size(),
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(d.ends)), memory.NewBufferBytes(d.data)}, nil, 0, 0)
	defer values.Release()
	n := len(d.codes)
	it := indexType(d.size())
	if it.ID() != arrow.INT32 {
		return newDictionary(mem, array.MakeFromData(values), it, n, func(k int) (int32, bool) { return d.codes[k], true })
	}
	dt := &arrow.DictionaryType{IndexType: it, ValueType: arrow.BinaryTypes.String}
	idx := array.NewData(dt, n, []*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(d.codes))}, nil, 0, 0)
	idx.SetDictionary(values)
	defer idx.Release()
	return array.MakeFromData(idx)
}

// DictColumn builds a dictionary string column row by row: for columns
// whose values repeat (the fields a stage cuts out of paths).
type DictColumn struct{ d *dictBuilder }

// NewDictColumn starts a column of about rows rows.
func NewDictColumn(rows int) *DictColumn {
	d := newDictBuilder(maphash.MakeSeed(), false)
	d.codes = make([]int32, 0, rows)
	return &DictColumn{d}
}

// Append adds a row holding v.
func (c *DictColumn) Append(v string) { c.d.add(v) }

// NewArray makes the column; c is not to be used after.
func (c *DictColumn) NewArray(mem memory.Allocator) arrow.Array { return c.d.array(mem) }
