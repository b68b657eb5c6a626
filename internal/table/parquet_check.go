package table

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/apache/thrift/lib/go/thrift"
)

// arrow-go trusts a Parquet footer's sizes: it allocates a schema node's
// num_children, a column chunk's total_compressed_size and, for every
// column, the file's total row count before it reads a byte of data, and
// its thrift decoder takes lists of up to 100 MB elements. A damaged or
// hostile file could so crash the process with an out-of-memory error no
// recover catches. checkParquet walks the footer first, with every list
// and string bounded by the footer's own length, and rejects what the data
// cannot hold.
const (
	// maxSchemaDepth bounds the nesting of the schema (arrow-go recurses).
	maxSchemaDepth = 64
	// maxValuesPerByte bounds rows × columns against the bytes of the
	// column chunks, past valuesSlack: the reader reserves 10-20 bytes a
	// value up front, so a file can make it allocate at most about 300 MB
	// plus 1 KB a byte. Plain or Snappy data takes far more than 1/64
	// byte a value; only runs of nulls or repeats come closer (arrow-go
	// writes 3M nulls of one column in 420 bytes), and real data in other
	// columns keeps the file well under.
	maxValuesPerByte = 64
	valuesSlack      = 16 << 20
)

var parquetMagic = []byte("PAR1")

// errFooter marks a footer checkParquet rejects.
var errFooter = errors.New("corrupt parquet footer")

// checkParquet checks the footer of the Parquet file r of size bytes.
func checkParquet(r io.ReaderAt, size int64) error {
	if size < 12 {
		return fmt.Errorf("%w: file is %d bytes, too short for parquet", errFooter, size)
	}
	var tail [8]byte
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return err
	}
	if !bytes.Equal(tail[4:], parquetMagic) {
		return fmt.Errorf("not a parquet file (no PAR1 at its end; encrypted footers are not supported)")
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n == 0 || n > size-12 {
		return fmt.Errorf("%w: metadata length %d, file size %d", errFooter, n, size)
	}
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, size-8-n); err != nil {
		return err
	}
	ft, err := readFooter(buf)
	if err != nil {
		return fmt.Errorf("%w: %w", errFooter, err)
	}
	if err := ft.check(size - 8 - n); err != nil {
		return fmt.Errorf("%w: %w", errFooter, err)
	}
	if ft.arrowSchema != nil {
		if err := checkArrowSchema(*ft.arrowSchema); err != nil {
			return fmt.Errorf("%w: ARROW:schema: %w", errFooter, err)
		}
	}
	return nil
}

// footer is what checkParquet needs of a FileMetaData.
type footer struct {
	numChildren []int32 // a schema element's, in file order
	rowGroups   []rowGroup
	arrowSchema *string
}

type rowGroup struct {
	numRows int64
	chunks  []chunk
}

type chunk struct {
	external                bool // file_path set: the data is in another file
	hasMeta                 bool
	numValues, size         int64
	dataOffset, dictOffset  int64
	offsetIndex, colIndex   [2]int64 // offset, length (0, 0: none)
	bloomOffset, bloomBytes int64
}

// check checks ft against a file whose data ends at dataEnd.
func (ft *footer) check(dataEnd int64) error {
	leaves, err := schemaLeaves(ft.numChildren)
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	var ranges [][2]int64
	var rows, dataBytes int64
	for i, rg := range ft.rowGroups {
		if rg.numRows < 0 || rows+rg.numRows < rows {
			return fmt.Errorf("row group %d: %d rows", i, rg.numRows)
		}
		rows += rg.numRows
		if len(rg.chunks) != leaves {
			return fmt.Errorf("row group %d: %d column chunks for %d columns", i, len(rg.chunks), leaves)
		}
		for j, c := range rg.chunks {
			start, err := c.check(dataEnd)
			if err != nil {
				return fmt.Errorf("row group %d column %d: %w", i, j, err)
			}
			if c.size > 0 {
				ranges = append(ranges, [2]int64{start, start + c.size})
			}
			dataBytes += c.size
		}
	}
	// Chunks that overlap would let a small file be read many times over.
	slices.SortFunc(ranges, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	for i := 1; i < len(ranges); i++ {
		if ranges[i][0] < ranges[i-1][1] {
			return fmt.Errorf("column chunks at bytes %d and %d overlap", ranges[i-1][0], ranges[i][0])
		}
	}
	if limit := (maxValuesPerByte*dataBytes + valuesSlack) / int64(max(leaves, 1)); rows > limit {
		return fmt.Errorf("%d rows of %d columns in %d bytes of column data", rows, leaves, dataBytes)
	}
	return nil
}

// check checks c's byte ranges against a file whose data ends at dataEnd
// and returns where its pages start.
func (c *chunk) check(dataEnd int64) (int64, error) {
	switch {
	case c.external:
		return 0, errors.New("data in another file (file_path) is not supported")
	case !c.hasMeta:
		return 0, errors.New("no column metadata")
	case c.numValues < 0:
		return 0, fmt.Errorf("%d values", c.numValues)
	}
	start := c.dataOffset
	if c.dictOffset > 0 && c.dictOffset < start {
		start = c.dictOffset
	}
	// An empty chunk (a table of no rows) may sit at offset 0.
	if !within(start, c.size, dataEnd) && (c.size != 0 || start < 0) {
		return 0, fmt.Errorf("pages at %d, %d bytes, past the data's end at %d", start, c.size, dataEnd)
	}
	for _, idx := range [][2]int64{c.offsetIndex, c.colIndex, {c.bloomOffset, c.bloomBytes}} {
		if idx != [2]int64{} && !within(idx[0], idx[1], dataEnd) {
			return 0, fmt.Errorf("index at %d, %d bytes, past the data's end at %d", idx[0], idx[1], dataEnd)
		}
	}
	return start, nil
}

// within says whether n bytes at off lie between the leading magic and end.
func within(off, n, end int64) bool {
	return off >= int64(len(parquetMagic)) && n >= 0 && n <= end-off
}

// schemaLeaves checks that the flattened schema (each element's child
// count, depth first) is one tree, at most maxSchemaDepth deep, and
// returns its number of leaves (the columns).
func schemaLeaves(numChildren []int32) (int, error) {
	if len(numChildren) == 0 {
		return 0, errors.New("no root")
	}
	if numChildren[0] < 0 {
		return 0, fmt.Errorf("root has %d children", numChildren[0])
	}
	leaves := 0
	// open holds the children still to come of each group being read.
	open := []int64{int64(numChildren[0])}
	for i, n := range numChildren[1:] {
		for len(open) > 0 && open[len(open)-1] == 0 {
			open = open[:len(open)-1]
		}
		if len(open) == 0 {
			return 0, fmt.Errorf("element %d is outside the root", i+1)
		}
		open[len(open)-1]--
		switch {
		case n < 0:
			return 0, fmt.Errorf("element %d has %d children", i+1, n)
		case n == 0:
			leaves++
		case len(open) == maxSchemaDepth:
			return 0, fmt.Errorf("nested deeper than %d", maxSchemaDepth)
		default:
			open = append(open, int64(n))
		}
	}
	for _, left := range open {
		if left != 0 {
			return 0, fmt.Errorf("%d elements, fewer than the child counts call for", len(numChildren))
		}
	}
	return leaves, nil
}

// readFooter decodes the parts of a thrift FileMetaData that footer
// holds, skipping the rest. No list or string may claim more elements
// than buf has bytes.
func readFooter(buf []byte) (*footer, error) {
	tr := &thriftReader{ctx: context.Background(), p: thrift.NewTCompactProtocolConf(&thrift.TMemoryBuffer{Buffer: bytes.NewBuffer(buf)},
		&thrift.TConfiguration{MaxMessageSize: int32(min(len(buf), math.MaxInt32))})}
	ft := &footer{}
	arrowSeen := false
	err := tr.fields(func(id int16, t thrift.TType) (bool, error) {
		switch {
		case id == 2 && t == thrift.LIST: // schema
			return true, tr.list(func() error {
				var n int32
				ft.numChildren = append(ft.numChildren, 0)
				err := tr.fields(func(id int16, t thrift.TType) (bool, error) {
					switch {
					case id == 5 && t == thrift.I32:
						var err error
						n, err = tr.p.ReadI32(tr.ctx)
						return true, err
					case id == 10 && t == thrift.STRUCT:
						return true, tr.logicalType()
					}
					return false, nil
				})
				ft.numChildren[len(ft.numChildren)-1] = n
				return err
			})
		case id == 4 && t == thrift.LIST: // row_groups
			return true, tr.list(func() error {
				rg, err := tr.rowGroup()
				ft.rowGroups = append(ft.rowGroups, rg)
				return err
			})
		case id == 5 && t == thrift.LIST: // key_value_metadata
			return true, tr.list(func() error {
				var key string
				var value *string
				err := tr.fields(func(id int16, t thrift.TType) (bool, error) {
					if t != thrift.STRING || id > 2 {
						return false, nil
					}
					s, err := tr.p.ReadString(tr.ctx)
					if id == 1 {
						key = s
					} else {
						value = &s
					}
					return true, err
				})
				// arrow-go takes the first ARROW:schema, even with no value.
				if key == "ARROW:schema" && !arrowSeen {
					ft.arrowSchema, arrowSeen = value, true
				}
				return err
			})
		}
		return false, nil
	})
	return ft, err
}

// logicalType reads a schema element's LogicalType union, which arrow-go
// panics on unless a member it knows is set and a time or timestamp has
// a unit.
func (tr *thriftReader) logicalType() error {
	known := false
	err := tr.fields(func(id int16, t thrift.TType) (bool, error) {
		if t != thrift.STRUCT || id < 1 || id > 18 || id == 9 {
			return false, nil
		}
		known = true
		if id != 7 && id != 8 { // TIME, TIMESTAMP
			return false, nil
		}
		unit := false
		err := tr.fields(func(id int16, t thrift.TType) (bool, error) {
			if id != 2 || t != thrift.STRUCT {
				return false, nil
			}
			return true, tr.fields(func(id int16, t thrift.TType) (bool, error) {
				unit = unit || (id >= 1 && id <= 3 && t == thrift.STRUCT)
				return false, nil
			})
		})
		if err == nil && !unit {
			err = errors.New("time logical type without a unit")
		}
		return true, err
	})
	if err == nil && !known {
		err = errors.New("unknown logical type")
	}
	return err
}

func (tr *thriftReader) rowGroup() (rowGroup, error) {
	var rg rowGroup
	err := tr.fields(func(id int16, t thrift.TType) (bool, error) {
		switch {
		case id == 1 && t == thrift.LIST: // columns
			return true, tr.list(func() error {
				c, err := tr.chunk()
				rg.chunks = append(rg.chunks, c)
				return err
			})
		case id == 3 && t == thrift.I64:
			return tr.i64(&rg.numRows)
		}
		return false, nil
	})
	return rg, err
}

func (tr *thriftReader) chunk() (chunk, error) {
	var c chunk
	var idxLen [2]int32
	err := tr.fields(func(id int16, t thrift.TType) (bool, error) {
		switch {
		case id == 1 && t == thrift.STRING: // file_path
			c.external = true
			return false, nil
		case id == 3 && t == thrift.STRUCT:
			c.hasMeta = true
			return true, tr.columnMeta(&c)
		case id == 4 && t == thrift.I64:
			return tr.i64(&c.offsetIndex[0])
		case id == 5 && t == thrift.I32:
			return tr.i32(&idxLen[0])
		case id == 6 && t == thrift.I64:
			return tr.i64(&c.colIndex[0])
		case id == 7 && t == thrift.I32:
			return tr.i32(&idxLen[1])
		}
		return false, nil
	})
	c.offsetIndex[1], c.colIndex[1] = int64(idxLen[0]), int64(idxLen[1])
	return c, err
}

func (tr *thriftReader) columnMeta(c *chunk) error {
	var bloomBytes int32
	err := tr.fields(func(id int16, t thrift.TType) (bool, error) {
		if t == thrift.I64 {
			switch id {
			case 5:
				return tr.i64(&c.numValues)
			case 7: // total_compressed_size
				return tr.i64(&c.size)
			case 9:
				return tr.i64(&c.dataOffset)
			case 11:
				return tr.i64(&c.dictOffset)
			case 14:
				return tr.i64(&c.bloomOffset)
			}
		}
		if id == 15 && t == thrift.I32 {
			return tr.i32(&bloomBytes)
		}
		return false, nil
	})
	c.bloomBytes = int64(bloomBytes)
	return err
}

// thriftReader reads thrift structs field by field.
type thriftReader struct {
	p   *thrift.TCompactProtocol
	ctx context.Context
}

// fields reads a struct: fn reads the field id of type t and says so, or
// returns false to have it skipped.
func (tr *thriftReader) fields(fn func(id int16, t thrift.TType) (bool, error)) error {
	if _, err := tr.p.ReadStructBegin(tr.ctx); err != nil {
		return err
	}
	for {
		_, t, id, err := tr.p.ReadFieldBegin(tr.ctx)
		if err != nil {
			return err
		}
		if t == thrift.STOP {
			break
		}
		read, err := fn(id, t)
		if err == nil && !read {
			err = tr.p.Skip(tr.ctx, t)
		}
		if err != nil {
			return err
		}
		if err := tr.p.ReadFieldEnd(tr.ctx); err != nil {
			return err
		}
	}
	return tr.p.ReadStructEnd(tr.ctx)
}

// list reads a list of structs, calling fn for each.
func (tr *thriftReader) list(fn func() error) error {
	t, n, err := tr.p.ReadListBegin(tr.ctx)
	if err != nil {
		return err
	}
	if t != thrift.STRUCT {
		return fmt.Errorf("list of %v, want structs", t)
	}
	for range n {
		if err := fn(); err != nil {
			return err
		}
	}
	return tr.p.ReadListEnd(tr.ctx)
}

func (tr *thriftReader) i64(v *int64) (bool, error) {
	var err error
	*v, err = tr.p.ReadI64(tr.ctx)
	return true, err
}

func (tr *thriftReader) i32(v *int32) (bool, error) {
	var err error
	*v, err = tr.p.ReadI32(tr.ctx)
	return true, err
}
