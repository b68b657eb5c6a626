// Package table holds the small set of Arrow helpers the stages share:
// building record batches from Go slices, reading typed columns by name,
// and selecting rows. Stages exchange single in-memory record batches.
package table

import (
	"context"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/safe"
)

// Column is one named column under construction.
type Column struct {
	Name  string
	Array arrow.Array
}

// Strings builds a non-null string column, its buffers sized exactly.
func Strings(mem memory.Allocator, name string, vals []string) Column {
	a, err := exactStrings(mem, len(vals), func(k int) (string, bool) { return vals[k], true })
	if err != nil {
		panic(err) // over 2 GiB of text in one column: no caller comes near
	}
	return Column{name, a}
}

// StringsFunc builds a string column of n cells from cell(k) (false:
// null), its buffers sized exactly.
func StringsFunc(mem memory.Allocator, name string, n int, cell func(k int) (string, bool)) (Column, error) {
	a, err := exactStrings(mem, n, cell)
	return Column{name, a}, err
}

// Int64sFunc builds an int64 column of n cells from cell(k) (false: null),
// its buffers sized exactly.
func Int64sFunc(mem memory.Allocator, name string, n int, cell func(k int) (int64, bool)) Column {
	return Column{name, exactInt64s(mem, n, cell)}
}

// Int64s builds an int64 column; valid may be nil (all valid). Its
// buffers are sized exactly.
func Int64s(mem memory.Allocator, name string, vals []int64, valid []bool) Column {
	return Column{name, exactInt64s(mem, len(vals), func(k int) (int64, bool) { return vals[k], valid == nil || valid[k] })}
}

// Timestamps builds a UTC microsecond timestamp column.
func Timestamps(mem memory.Allocator, name string, vals []arrow.Timestamp) Column {
	b := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})
	defer b.Release()
	b.AppendValues(vals, nil)
	return Column{name, b.NewArray()}
}

// New assembles columns of equal length into a record batch. It takes
// ownership of the column arrays.
func New(cols ...Column) arrow.RecordBatch {
	fields := make([]arrow.Field, len(cols))
	arrs := make([]arrow.Array, len(cols))
	var n int64
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.Name, Type: c.Array.DataType(), Nullable: true}
		arrs[i] = c.Array
		n = int64(c.Array.Len())
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, n)
	for _, a := range arrs {
		a.Release()
	}
	return rec
}

// Columns returns the record's columns as Column values (retained), so a
// stage can pass some of its input through and add its own.
func Columns(rec arrow.RecordBatch) []Column {
	cols := make([]Column, rec.NumCols())
	for i := range cols {
		a := rec.Column(i)
		a.Retain()
		cols[i] = Column{rec.ColumnName(i), a}
	}
	return cols
}

// Set replaces the column of the same name or appends it.
func Set(cols []Column, c Column) []Column {
	for i := range cols {
		if cols[i].Name == c.Name {
			cols[i].Array.Release()
			cols[i] = c
			return cols
		}
	}
	return append(cols, c)
}

// Index returns the position of the named column, or an error naming the
// columns that exist.
func Index(rec arrow.RecordBatch, name string) (int, error) {
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return -1, fmt.Errorf("no column %q (have %v)", name, Names(rec))
	}
	return idx[0], nil
}

// Names lists the record's column names in order.
func Names(rec arrow.RecordBatch) []string {
	out := make([]string, rec.NumCols())
	for i := range out {
		out[i] = rec.ColumnName(i)
	}
	return out
}

// Int64Col returns the named column, which must be an int64 column.
func Int64Col(rec arrow.RecordBatch, name string) (*array.Int64, error) {
	i, err := Index(rec, name)
	if err != nil {
		return nil, err
	}
	a, ok := rec.Column(i).(*array.Int64)
	if !ok {
		return nil, fmt.Errorf("column %q is %s, want int64", name, rec.Column(i).DataType())
	}
	return a, nil
}

// Text renders any supported cell as the text a key comparison needs.
// It lets stages that match on columns (dedupe, filter) work on string and
// integer columns alike.
func Text(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "\x00null"
	}
	if d, ok := a.(*array.Dictionary); ok {
		if s, ok := AsStrings(d); ok {
			if s.IsNull(i) {
				return "\x00null"
			}
			return s.Value(i)
		}
	}
	return a.ValueStr(i)
}

// Take returns the rows at idx, in that order. String and int64 columns
// are gathered here, sized exactly before copying: compute.TakeArray grows
// a string column's data by doubling, which at 10M rows copies gigabytes.
// A dictionary string column gets new codes over the same dictionary.
func Take(ctx context.Context, mem memory.Allocator, rec arrow.RecordBatch, idx []int) (arrow.RecordBatch, error) {
	var indices arrow.Array // for the other types, built once if needed
	defer func() {
		if indices != nil {
			indices.Release()
		}
	}()
	for _, i := range idx {
		if i < 0 || int64(i) >= rec.NumRows() {
			return nil, fmt.Errorf("take: index %d out of bounds (%d rows)", i, rec.NumRows())
		}
	}
	ctx = compute.WithAllocator(ctx, mem)
	cols := make([]arrow.Array, rec.NumCols())
	errs := make([]error, len(cols))
	// The columns gathered here are taken on every core, one goroutine
	// each, when there are many rows (dedupe and the filters took their
	// rows on one core).
	each := safe.NewGroup(nil)
	for c := range cols {
		col := rec.Column(c)
		if len(idx) >= takeOnCores && gathersItself(col) {
			each.Go(func() { cols[c], errs[c] = takeColumn(ctx, mem, col, idx, nil) })
			continue
		}
		cols[c], errs[c] = takeColumn(ctx, mem, col, idx, &indices)
	}
	if err := each.Wait(); err != nil {
		errs = append(errs, err) // a panic
	}
	for c, err := range errs {
		if err == nil {
			continue
		}
		for _, a := range cols {
			if a != nil {
				a.Release()
			}
		}
		if c < len(cols) {
			return nil, fmt.Errorf("take column %q: %w", rec.ColumnName(c), err)
		}
		return nil, fmt.Errorf("take: %w", err)
	}
	res := array.NewRecordBatch(rec.Schema(), cols, int64(len(idx)))
	for _, a := range cols {
		a.Release()
	}
	return res, nil
}

// TakeColumn returns the cells of col at idx, as Take does for each of a
// record's columns. The indices must be in bounds.
func TakeColumn(ctx context.Context, mem memory.Allocator, col arrow.Array, idx []int) (arrow.Array, error) {
	var indices arrow.Array
	defer func() {
		if indices != nil {
			indices.Release()
		}
	}()
	return takeColumn(compute.WithAllocator(ctx, mem), mem, col, idx, &indices)
}

// takeOnCores is the fewest rows Take gathers on every core.
const takeOnCores = 64 << 10

// gathersItself says whether takeColumn gathers col itself (without
// indices, compute.TakeArray's).
func gathersItself(col arrow.Array) bool {
	switch a := col.(type) {
	case *array.String, *array.Int64:
		return true
	case *array.Dictionary:
		_, ok := AsStrings(a)
		return ok
	}
	return false
}

func takeColumn(ctx context.Context, mem memory.Allocator, col arrow.Array, idx []int, indices *arrow.Array) (arrow.Array, error) {
	switch a := col.(type) {
	case *array.String:
		return exactStrings(mem, len(idx), func(k int) (string, bool) { return a.Value(idx[k]), a.IsValid(idx[k]) })
	case *array.Int64:
		return exactInt64s(mem, len(idx), func(k int) (int64, bool) { return a.Value(idx[k]), a.IsValid(idx[k]) }), nil
	case *array.Dictionary:
		if s, ok := AsStrings(a); ok {
			return takeDictionary(mem, s, idx), nil
		}
	}
	if *indices == nil {
		ib := array.NewInt64Builder(mem)
		ib.Reserve(len(idx))
		for _, i := range idx {
			ib.UnsafeAppend(int64(i))
		}
		*indices = ib.NewArray()
		ib.Release()
	}
	return compute.TakeArray(ctx, col, *indices)
}

// Columns are built in buffers of the exact size, not with arrow's
// builders: those round a column's capacity up to a power of two rows
// (at 10M rows, 16.8M: 68 % more for every offsets, int64 and validity
// buffer).

// exactStrings builds a string column of n cells from cell(k).
func exactStrings(mem memory.Allocator, n int, cell func(k int) (string, bool)) (arrow.Array, error) {
	size, nulls := 0, 0
	for k := range n {
		if v, ok := cell(k); ok {
			size += len(v)
		} else {
			nulls++
		}
	}
	if size > math.MaxInt32 {
		return nil, fmt.Errorf("%d bytes of text in one column, more than a string column holds (2 GiB)", size)
	}
	offsets, data := newBuffer(mem, (n+1)*arrow.Int32SizeBytes), newBuffer(mem, size)
	valid := validity(mem, n, nulls)
	offs := arrow.Int32Traits.CastFromBytes(offsets.Bytes())
	buf := data.Bytes()
	pos := 0
	for k := range n {
		offs[k] = int32(pos)
		v, ok := cell(k)
		if !ok {
			continue
		}
		if valid != nil {
			bitutil.SetBit(valid.Bytes(), k)
		}
		pos += copy(buf[pos:], v)
	}
	offs[n] = int32(pos)
	return newArray(arrow.BinaryTypes.String, n, nulls, valid, offsets, data), nil
}

// exactInt64s builds an int64 column of n cells from cell(k).
func exactInt64s(mem memory.Allocator, n int, cell func(k int) (int64, bool)) arrow.Array {
	nulls := 0
	for k := range n {
		if _, ok := cell(k); !ok {
			nulls++
		}
	}
	values := newBuffer(mem, n*arrow.Int64SizeBytes)
	valid := validity(mem, n, nulls)
	vals := arrow.Int64Traits.CastFromBytes(values.Bytes())
	for k := range n {
		v, ok := cell(k)
		if !ok {
			vals[k] = 0
			continue
		}
		vals[k] = v
		if valid != nil {
			bitutil.SetBit(valid.Bytes(), k)
		}
	}
	return newArray(arrow.PrimitiveTypes.Int64, n, nulls, valid, values)
}

// newBuffer allocates size bytes from mem.
func newBuffer(mem memory.Allocator, size int) *memory.Buffer {
	b := memory.NewResizableBuffer(mem)
	b.Resize(size)
	return b
}

// validity returns a cleared bitmap for n cells, or nil without nulls.
func validity(mem memory.Allocator, n, nulls int) *memory.Buffer {
	if nulls == 0 {
		return nil
	}
	b := newBuffer(mem, int(bitutil.BytesForBits(int64(n))))
	memory.Set(b.Bytes(), 0)
	return b
}

// newArray assembles an array from its buffers, taking them over.
func newArray(dt arrow.DataType, n, nulls int, bufs ...*memory.Buffer) arrow.Array {
	d := array.NewData(dt, n, bufs, nil, nulls, 0)
	for _, b := range bufs {
		if b != nil {
			b.Release()
		}
	}
	defer d.Release()
	return array.MakeFromData(d)
}

// TakeSorted is Take for indices in ascending order, as a filter keeps
// them: when they are one run of consecutive rows (every row, say) the
// result shares the input's buffers instead of copying every column.
func TakeSorted(ctx context.Context, mem memory.Allocator, rec arrow.RecordBatch, idx []int) (arrow.RecordBatch, error) {
	if n := len(idx); n > 0 && idx[n-1]-idx[0] == n-1 {
		return rec.NewSlice(int64(idx[0]), int64(idx[n-1]+1)), nil
	}
	return Take(ctx, mem, rec, idx)
}

// Select returns the named columns in the given order, renamed by rename
// (old name to new name) where it says so.
func Select(rec arrow.RecordBatch, names []string, rename map[string]string) (arrow.RecordBatch, error) {
	if len(names) == 0 {
		names = Names(rec)
	}
	fields := make([]arrow.Field, len(names))
	cols := make([]arrow.Array, len(names))
	for i, n := range names {
		idx, err := Index(rec, n)
		if err != nil {
			return nil, err
		}
		fields[i] = rec.Schema().Field(idx)
		if to, ok := rename[n]; ok {
			fields[i].Name = to
		}
		cols[i] = rec.Column(idx)
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows()), nil
}

// Empty returns a zero-row record with the given schema.
func Empty(mem memory.Allocator, schema *arrow.Schema) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	return b.NewRecordBatch()
}
