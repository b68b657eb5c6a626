package table

import (
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// StringCells reads a string column cell by cell, whichever form it has:
// plain Arrow strings, or dictionary-encoded (small integer codes into a
// string dictionary), the form ReadCSV gives its columns so that a value
// repeated on many rows is held once and a row selection copies only
// codes. Stages read string columns through it, never by type.
type StringCells struct {
	arr    arrow.Array
	values *array.String // the column itself, or its dictionary
	dict   *array.Dictionary
	i8     []int8
	i16    []int16
	i32    []int32
	width  int  // 0: plain, 1/2/4: the codes' bytes, -1: another index type
	dnulls bool // the dictionary itself holds nulls
}

// AsStrings views a as string cells, if it is a string column in either
// form.
func AsStrings(a arrow.Array) (*StringCells, bool) {
	switch c := a.(type) {
	case *array.String:
		return &StringCells{arr: a, values: c}, true
	case *array.Dictionary:
		values, ok := c.Dictionary().(*array.String)
		if !ok {
			return nil, false
		}
		s := &StringCells{arr: a, values: values, dict: c, width: -1, dnulls: values.NullN() > 0}
		switch ix := c.Indices().(type) {
		case *array.Int8:
			s.i8, s.width = ix.Int8Values(), 1
		case *array.Int16:
			s.i16, s.width = ix.Int16Values(), 2
		case *array.Int32:
			s.i32, s.width = ix.Int32Values(), 4
		}
		return s, true
	}
	return nil, false
}

// IsString says whether dt is a string column's type, plain or dictionary.
func IsString(dt arrow.DataType) bool {
	if d, ok := dt.(*arrow.DictionaryType); ok {
		dt = d.ValueType
	}
	return dt != nil && dt.ID() == arrow.STRING
}

// Len is the number of cells.
func (s *StringCells) Len() int { return s.arr.Len() }

// NullN is the number of null cells.
func (s *StringCells) NullN() int {
	if !s.dnulls {
		return s.arr.NullN()
	}
	n := 0
	for i := range s.Len() {
		if s.IsNull(i) {
			n++
		}
	}
	return n
}

// Array is the column viewed.
func (s *StringCells) Array() arrow.Array { return s.arr }

// Code is cell i's position in the dictionary (its row when plain).
func (s *StringCells) Code(i int) int {
	switch s.width {
	case 0:
		return i
	case 1:
		return int(s.i8[i])
	case 2:
		return int(s.i16[i])
	case 4:
		return int(s.i32[i])
	}
	return s.dict.GetValueIndex(i)
}

// IsNull says whether cell i is null.
func (s *StringCells) IsNull(i int) bool {
	if s.arr.IsNull(i) {
		return true
	}
	return s.dnulls && s.values.IsNull(s.Code(i))
}

// IsValid is !IsNull.
func (s *StringCells) IsValid(i int) bool { return !s.IsNull(i) }

// Value is cell i's text ("" when null); the string shares the column's
// memory.
func (s *StringCells) Value(i int) string {
	if s.width == 0 {
		return s.values.Value(i)
	}
	if s.arr.IsNull(i) {
		return ""
	}
	return s.values.Value(s.Code(i))
}

// Dictionary is the dictionary of a dictionary-encoded column, else nil.
func (s *StringCells) Dictionary() *array.String {
	if s.width == 0 {
		return nil
	}
	return s.values
}

// AvgLen is the average length of a cell's text, estimated from the
// values held (plain: exact).
func (s *StringCells) AvgLen() int {
	if s.values.Len() == 0 {
		return 0
	}
	return len(s.values.ValueBytes()) / s.values.Len()
}

// StringCol returns the named column, which must be a string column
// (plain or dictionary-encoded).
func StringCol(rec arrow.RecordBatch, name string) (*StringCells, error) {
	i, err := Index(rec, name)
	if err != nil {
		return nil, err
	}
	s, ok := AsStrings(rec.Column(i))
	if !ok {
		return nil, fmt.Errorf("column %q is %s, want string", name, rec.Column(i).DataType())
	}
	return s, nil
}

// Plain returns a as a plain string column when it is a dictionary one
// (a new array), else a retained. Writers for other tools use it, one
// slice at a time, so that what they write does not depend on the form.
func Plain(mem memory.Allocator, a arrow.Array) (arrow.Array, error) {
	s, ok := AsStrings(a)
	if !ok || s.width == 0 {
		a.Retain()
		return a, nil
	}
	if s.NullN() > 0 || s.width < 0 {
		return exactStrings(mem, s.Len(), func(k int) (string, bool) { return s.Value(k), s.IsValid(k) })
	}
	return plainNoNulls(mem, s)
}

// plainNoNulls is Plain for a dictionary column without nulls: the
// codes read straight, no null checks, no closure a cell.
func plainNoNulls(mem memory.Allocator, s *StringCells) (arrow.Array, error) {
	n := s.Len()
	size := 0
	for k := range n {
		size += len(s.values.Value(s.Code(k)))
	}
	if size > math.MaxInt32 {
		return nil, fmt.Errorf("%d bytes of text in one column, more than a string column holds (2 GiB)", size)
	}
	offsets, data := newBuffer(mem, (n+1)*arrow.Int32SizeBytes), newBuffer(mem, size)
	offs := arrow.Int32Traits.CastFromBytes(offsets.Bytes())
	buf := data.Bytes()
	pos := 0
	for k := range n {
		offs[k] = int32(pos)
		pos += copy(buf[pos:], s.values.Value(s.Code(k)))
	}
	offs[n] = int32(pos)
	return newArray(arrow.BinaryTypes.String, n, 0, nil, offsets, data), nil
}

// PlainType is dt with dictionary-encoded strings as plain strings.
func PlainType(dt arrow.DataType) arrow.DataType {
	if IsString(dt) {
		return arrow.BinaryTypes.String
	}
	return dt
}

// indexType is the narrowest signed index type for n dictionary values.
func indexType(n int) arrow.DataType {
	switch {
	case n <= 1<<7:
		return arrow.PrimitiveTypes.Int8
	case n <= 1<<15:
		return arrow.PrimitiveTypes.Int16
	}
	return arrow.PrimitiveTypes.Int32
}

// dictionaryOf makes a dictionary string column of n cells over values
// from code(k) (false: null), with the narrowest index type that holds
// len(values). It takes values over.
func dictionaryOf(mem memory.Allocator, values *array.String, n int, code func(k int) (int32, bool)) arrow.Array {
	return newDictionary(mem, values, indexType(values.Len()), n, code)
}

// newDictionary is dictionaryOf with the index type it.
func newDictionary(mem memory.Allocator, values arrow.Array, it arrow.DataType, n int, code func(k int) (int32, bool)) arrow.Array {
	defer values.Release()
	nulls := 0
	for k := range n {
		if _, ok := code(k); !ok {
			nulls++
		}
	}
	valid := validity(mem, n, nulls)
	width := it.(arrow.FixedWidthDataType).Bytes()
	buf := newBuffer(mem, n*width)
	b := buf.Bytes()
	i16, i32 := arrow.Int16Traits.CastFromBytes(b), arrow.Int32Traits.CastFromBytes(b)
	for k := range n {
		c, ok := code(k)
		if !ok {
			c = 0
		} else if valid != nil {
			bitutil.SetBit(valid.Bytes(), k)
		}
		switch width {
		case 1:
			b[k] = byte(int8(c))
		case 2:
			i16[k] = int16(c)
		default:
			i32[k] = c
		}
	}
	dt := &arrow.DictionaryType{IndexType: it, ValueType: values.DataType()}
	d := array.NewData(dt, n, []*memory.Buffer{valid, buf}, nil, nulls, 0)
	d.SetDictionary(values.Data())
	for _, b := range []*memory.Buffer{valid, buf} {
		if b != nil {
			b.Release()
		}
	}
	defer d.Release()
	return array.MakeFromData(d)
}

// takeDictionary gathers the rows at idx of a dictionary string column:
// new codes over the same dictionary, which is shared, not copied.
func takeDictionary(mem memory.Allocator, s *StringCells, idx []int) arrow.Array {
	it := s.arr.DataType().(*arrow.DictionaryType).IndexType
	if s.width > 0 && s.arr.NullN() == 0 {
		return gatherCodes(mem, s, it, idx)
	}
	if s.width < 0 { // an index type ReadCSV does not make
		it = indexType(s.values.Len())
	}
	s.values.Retain()
	return newDictionary(mem, s.values, it, len(idx), func(k int) (int32, bool) {
		return int32(s.Code(idx[k])), !s.arr.IsNull(idx[k])
	})
}

// gatherCodes is takeDictionary for a column without null rows whose
// codes StringCells reads (it, their type): the codes copied in one loop,
// not through a call a row.
func gatherCodes(mem memory.Allocator, s *StringCells, it arrow.DataType, idx []int) arrow.Array {
	buf := newBuffer(mem, len(idx)*s.width)
	switch b := buf.Bytes(); s.width {
	case 1:
		gather(arrow.Int8Traits.CastFromBytes(b), s.i8, idx)
	case 2:
		gather(arrow.Int16Traits.CastFromBytes(b), s.i16, idx)
	default:
		gather(arrow.Int32Traits.CastFromBytes(b), s.i32, idx)
	}
	dt := &arrow.DictionaryType{IndexType: it, ValueType: s.values.DataType()}
	d := array.NewData(dt, len(idx), []*memory.Buffer{nil, buf}, nil, 0, 0)
	buf.Release()
	d.SetDictionary(s.values.Data())
	defer d.Release()
	return array.MakeFromData(d)
}

func gather[T any](dst, src []T, idx []int) {
	for k, i := range idx {
		dst[k] = src[i]
	}
}
