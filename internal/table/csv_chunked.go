package table

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/safe"
)

// csvChunk is the size of the pieces a big CSV file is cut into, each
// tokenized (and its integers parsed) on its own goroutine while the
// pieces before it are appended to the columns in order. Files under four
// pieces are read in one pass.
const csvChunk = 4 << 20

// chunksAhead bounds the pieces in flight, and so the memory they hold.
const chunksAhead = 4

// csvPiece is one piece of a file: whole records, starting at line line.
type csvPiece struct {
	data []byte
	line int
	cols []pieceCol
	err  error
	done chan struct{}
}

// pieceCol is one column of a piece: strings, or int64 values with a
// validity flag each.
type pieceCol struct {
	strs  []string
	ints  []int64
	valid []bool
}

// readCSVChunked is ReadCSV for a big file of size bytes: the same values,
// the same errors, with the tokenizing spread over the cores. The file is
// cut only at a line end outside quotes (an even number of '"' before
// it), so a quoted field holding a line break stays in one piece.
func readCSVChunked(mem memory.Allocator, r io.Reader, types map[string]arrow.DataType, size int64, chunk int) (arrow.RecordBatch, error) {
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
	b, err := csvBuilder(mem, header, types)
	if err != nil {
		return nil, err
	}
	defer b.Release()
	isInt := make([]bool, len(header))
	for i := range header {
		_, isInt[i] = b.Field(i).(*array.Int64Builder)
	}

	stop := make(chan struct{})
	pieces := make(chan *csvPiece, chunksAhead)
	go func() { // cut the file, start each piece's tokenizing, in order
		defer close(pieces)
		p := &csvPiece{data: first[off:], line: 1 + bytes.Count(first[:off], []byte{'\n'}), done: make(chan struct{})}
		for p != nil {
			go p.parse(header, isInt)
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

	rows, read := 0, int64(off)
	for p := range pieces {
		<-p.done
		if p.err != nil {
			return nil, p.err
		}
		n := appendPiece(b, p)
		if rows == 0 && n > 0 {
			reserve(b, n, size, read+int64(len(p.data)))
		}
		rows += n
		read += int64(len(p.data))
	}
	return b.NewRecordBatch(), nil
}

// parse tokenizes the piece, parsing the integer columns, until its end or
// its first error (with the file's line numbers). It runs on a goroutine
// of its own: a panic in it is the piece's error.
func (p *csvPiece) parse(header []string, isInt []bool) {
	defer close(p.done)
	defer safe.Recover(&p.err)
	if p.err != nil {
		return
	}
	cr := csv.NewReader(bytes.NewReader(p.data))
	cr.ReuseRecord = true
	cr.FieldsPerRecord = len(header)
	p.cols = make([]pieceCol, len(header))
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
			c := &p.cols[i]
			if !isInt[i] {
				c.strs = append(c.strs, f)
				continue
			}
			if f == "" {
				c.ints, c.valid = append(c.ints, 0), append(c.valid, false)
				continue
			}
			v, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				line, _ := cr.FieldPos(i)
				p.err = intError(line+p.line-1, header[i], f)
				return
			}
			c.ints, c.valid = append(c.ints, v), append(c.valid, true)
		}
	}
}

// appendPiece appends a parsed piece's columns and returns its rows.
func appendPiece(b *array.RecordBuilder, p *csvPiece) int {
	n := 0
	for i, c := range p.cols {
		switch fb := b.Field(i).(type) {
		case *array.StringBuilder:
			fb.AppendValues(c.strs, nil)
			n = len(c.strs)
		case *array.Int64Builder:
			fb.AppendValues(c.ints, c.valid)
			n = len(c.ints)
		}
	}
	return n
}

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
			grown := make([]byte, len(buf), len(buf)+c.chunk)
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
