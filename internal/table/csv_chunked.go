package table

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"slices"
	"strconv"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/safe"
)

// csvChunk is the size of the pieces a big CSV file is cut into, each
// tokenized (and its integers parsed) on its own goroutine while the
// pieces before it are copied to the columns in order. Files under four
// pieces are read in one pass. A piece in flight holds its bytes, the
// strings the CSV reader made of them and its dictionaries, about three
// times its size: with 4 MB pieces those were 60 MB of the 1M-row table
// run's peak, with 1 MB 15 MB, and the read took less CPU (0.65..0.77 s
// against 0.79..0.95 s).
const csvChunk = 1 << 20

// chunksAhead bounds the pieces in flight, and so the memory they hold.
const chunksAhead = 3

// maxStringBytes is the text an Arrow string column holds (int32 offsets).
const maxStringBytes = math.MaxInt32

// csvPiece is one piece of a file: whole records, starting at line line.
type csvPiece struct {
	data []byte
	line int
	cols []pieceCol
	err  error
	done chan struct{}
}

// pieceCol is one column of a piece, or of the file: string values as a
// dictionary and a code per row, or int64 values with a validity flag each.
type pieceCol struct {
	dict  *dictBuilder
	ints  []int64
	valid []bool
}

// add appends one cell: a string to the dictionary, or an integer (empty
// is null); false when an integer column's cell is not one.
func (c *pieceCol) add(f string) bool {
	if c.dict != nil {
		c.dict.add(f)
		return true
	}
	if f == "" {
		c.ints, c.valid = append(c.ints, 0), append(c.valid, false)
		return true
	}
	v, err := strconv.ParseInt(f, 10, 64)
	if err != nil {
		return false
	}
	c.ints, c.valid = append(c.ints, v), append(c.valid, true)
	return true
}

// readCSVChunked is ReadCSV for a big file of size bytes: the same values,
// the same errors, with the tokenizing spread over the cores. The file is
// cut only at a line end outside quotes (an even number of '"' before
// it), so a quoted field holding a line break stays in one piece. A string
// column of more than maxText bytes is an error.
func readCSVChunked(mem memory.Allocator, r io.Reader, types map[string]arrow.DataType, size int64, chunk, maxText int) (arrow.RecordBatch, error) {
	cut := newCutter(r, chunk)
	first, err := cut.next()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("empty file: no header line")
	}
	if err != nil {
		return nil, err
	}
	// The header: the first record of the first piece.
	hr := csv.NewReader(bytes.NewReader(first))
	header, err := hr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("empty file: no header line")
	}
	if err != nil {
		return nil, err
	}
	off := int(hr.InputOffset())
	schema, err := csvSchema(header, types)
	if err != nil {
		return nil, err
	}
	isInt := make([]bool, len(header))
	for i, f := range schema.Fields() {
		isInt[i] = f.Type.ID() == arrow.INT64
	}

	seed := maphash.MakeSeed()
	stop := make(chan struct{})
	pieces := make(chan *csvPiece, chunksAhead)
	go func() { // cut the file, start each piece's tokenizing, in order
		defer close(pieces)
		p := &csvPiece{data: first[off:], line: 1 + bytes.Count(first[:off], []byte{'\n'}), done: make(chan struct{})}
		for p != nil {
			go p.parse(header, isInt, seed)
			select {
			case pieces <- p:
			case <-stop:
				return
			}
			next, err := cut.next()
			line := p.line + bytes.Count(p.data, []byte{'\n'})
			switch {
			case errors.Is(err, io.EOF):
				p = nil
			case err != nil:
				p = &csvPiece{line: line, err: err, done: make(chan struct{})}
				close(p.done)
				select {
				case pieces <- p:
				case <-stop:
				}
				return
			default:
				p = &csvPiece{data: next, line: line, done: make(chan struct{})}
			}
		}
	}()
	defer func() {
		close(stop)
		for p := range pieces { // let the cutter end; pieces parse to their end
			<-p.done
		}
	}()

	cols := make([]pieceCol, len(header))
	for i := range cols {
		if !isInt[i] {
			cols[i].dict = newDictBuilder(seed, false)
		}
	}
	rows, read := 0, int64(off)
	for p := range pieces {
		<-p.done
		if p.err != nil {
			return nil, p.err
		}
		read += int64(len(p.data))
		if rows == 0 {
			reserveCols(cols, p.cols, float64(size)/float64(read)*1.05)
		}
		n, err := appendPiece(cols, p, header, maxText)
		if err != nil {
			return nil, err
		}
		rows += n
	}
	return csvRecord(mem, schema, cols, rows), nil
}

// parse tokenizes the piece, parsing the integer columns and coding the
// string ones in a dictionary of the piece's own, until its end or its
// first error (with the file's line numbers). It runs on a goroutine of
// its own: a panic in it is the piece's error.
func (p *csvPiece) parse(header []string, isInt []bool, seed maphash.Seed) {
	defer close(p.done)
	defer safe.Recover(&p.err)
	if p.err != nil {
		return
	}
	cr := csv.NewReader(bytes.NewReader(p.data))
	cr.ReuseRecord = true
	cr.FieldsPerRecord = len(header)
	p.cols = make([]pieceCol, len(header))
	rows := bytes.Count(p.data, []byte{'\n'}) + 1 // at least the records
	for i := range p.cols {
		if !isInt[i] {
			p.cols[i].dict = newLocalDict(seed, rows)
		} else {
			p.cols[i].ints, p.cols[i].valid = make([]int64, 0, rows), make([]bool, 0, rows)
		}
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				pe.StartLine += p.line - 1
				pe.Line += p.line - 1
			}
			p.err = err
			return
		}
		for i, f := range rec {
			if !p.cols[i].add(f) {
				line, _ := cr.FieldPos(i)
				p.err = intError(line+p.line-1, header[i], f)
				return
			}
		}
	}
}

// reserveCols sizes the columns for scale times the first piece, so that
// they are not copied as they grow. The memory comes from make (zeroed
// pages from the OS, touched only when written), not from arrow's
// builders, which zero what they reserve.
func reserveCols(cols, first []pieceCol, scale float64) {
	for i := range cols {
		c, f := &cols[i], first[i]
		if c.dict != nil {
			c.dict.reserve(f.dict, scale)
			continue
		}
		c.ints = slices.Grow(c.ints, int(float64(len(f.ints))*scale))
		c.valid = slices.Grow(c.valid, int(float64(len(f.valid))*scale))
	}
}

// appendPiece appends a parsed piece's columns and returns its rows. The
// string columns are merged into their dictionaries at once, one
// goroutine each: a dictionary is built in order, but the columns are
// independent, and at 10M rows the merge was most of the read.
func appendPiece(cols []pieceCol, p *csvPiece, header []string, maxText int) (int, error) {
	n := 0
	errs := make([]error, len(cols))
	var wg sync.WaitGroup
	for i, c := range p.cols {
		dst := &cols[i]
		if dst.dict == nil {
			dst.ints = append(dst.ints, c.ints...)
			dst.valid = append(dst.valid, c.valid...)
			n = len(c.ints)
			continue
		}
		n = len(c.dict.codes)
		wg.Go(func() {
			defer safe.Recover(&errs[i])
			// The distinct values are held once: they are the column's text.
			dst.dict.merge(c.dict)
			if len(dst.dict.data) > maxText {
				errs[i] = fmt.Errorf("line %d: column %q: more than %d bytes of text, more than one string column holds", p.line, header[i], maxText)
			}
		})
	}
	wg.Wait()
	for _, err := range errs { // the first column's, as one pass would
		if err != nil {
			return 0, err
		}
	}
	return n, nil
}

// csvRecord makes the record of the columns, over their memory.
func csvRecord(mem memory.Allocator, schema *arrow.Schema, cols []pieceCol, rows int) arrow.RecordBatch {
	arrs := make([]arrow.Array, len(cols))
	fields := slices.Clone(schema.Fields())
	for i, c := range cols {
		if c.dict != nil {
			arrs[i] = c.dict.array(mem)
			fields[i].Type = arrs[i].DataType()
			continue
		}
		var bitmap *memory.Buffer
		nulls := 0
		if !slicesAll(c.valid) {
			bits := make([]byte, bitutil.BytesForBits(int64(rows)))
			for j, v := range c.valid {
				if v {
					bitutil.SetBit(bits, j)
				} else {
					nulls++
				}
			}
			bitmap = memory.NewBufferBytes(bits)
		}
		bufs := []*memory.Buffer{bitmap, memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(c.ints))}
		d := array.NewData(arrow.PrimitiveTypes.Int64, rows, bufs, nil, nulls, 0)
		arrs[i] = array.MakeFromData(d)
		d.Release()
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, int64(rows))
	for _, a := range arrs {
		a.Release()
	}
	return rec
}

func slicesAll(valid []bool) bool { return !slices.Contains(valid, false) }

// cutter cuts a stream into pieces of about chunk bytes that end at a line
// end outside quotes (the last piece may end anywhere).
type cutter struct {
	r     io.Reader
	chunk int
	carry []byte
	eof   bool
}

func newCutter(r io.Reader, chunk int) *cutter { return &cutter{r: r, chunk: chunk} }

// next returns the next piece, or io.EOF after the last. It runs on the
// cutting goroutine: a panic in the reader is its error.
func (c *cutter) next() (piece []byte, err error) {
	defer safe.Recover(&err)
	buf := c.carry
	c.carry = nil
	for {
		if !c.eof {
			// A record longer than a chunk: the buffer doubles, so that
			// it is copied and scanned a few times, not once a chunk.
			grown := make([]byte, len(buf), len(buf)+max(c.chunk, len(buf)))
			copy(grown, buf)
			n, err := io.ReadFull(c.r, grown[len(buf):cap(grown)])
			buf = grown[:len(buf)+n]
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
				c.eof = true
			case err != nil:
				return nil, fmt.Errorf("read: %w", err)
			}
		}
		if c.eof {
			if len(buf) == 0 {
				return nil, io.EOF
			}
			return buf, nil
		}
		if end := recordEnd(buf); end > 0 {
			c.carry = append([]byte(nil), buf[end:]...)
			return buf[:end], nil
		}
		// No line end outside quotes yet: one record longer than a chunk.
	}
}

// recordEnd is the position after the last '\n' of buf preceded by an
// even number of '"' (buf starts outside quotes), or 0.
func recordEnd(buf []byte) int {
	nl := bytes.LastIndexByte(buf, '\n')
	if nl < 0 {
		return 0
	}
	quotes := bytes.Count(buf[:nl], []byte{'"'})
	for quotes%2 != 0 {
		prev := bytes.LastIndexByte(buf[:nl], '\n')
		if prev < 0 {
			return 0
		}
		quotes -= bytes.Count(buf[prev:nl], []byte{'"'})
		nl = prev
	}
	return nl + 1
}
