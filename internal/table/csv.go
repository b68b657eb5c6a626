package table

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ReadCSV reads a CSV file with a header line into one record batch. Columns
// named in types are parsed as that type (int64 is supported); all others
// are strings, dictionary-encoded: each distinct value once, in order of
// first appearance (the same dictionary however the file was split among
// the cores), and a code per row, int8, int16 or int32 by the number of
// values. An empty field in an int64 column is a null.
func ReadCSV(mem memory.Allocator, r io.Reader, types map[string]arrow.DataType) (arrow.RecordBatch, error) {
	size := fileSize(r)
	if size >= 4*csvChunk {
		return readCSVChunked(mem, r, types, size, csvChunk, maxStringBytes)
	}
	cr := csv.NewReader(bufio.NewReaderSize(r, 1<<16))
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("empty file: no header line")
	}
	if err != nil {
		return nil, err
	}
	header = append([]string(nil), header...)
	schema, err := csvSchema(header, types)
	if err != nil {
		return nil, err
	}
	seed := maphash.MakeSeed()
	cols := make([]pieceCol, len(header))
	for i, f := range schema.Fields() {
		if f.Type.ID() == arrow.STRING {
			cols[i].dict = newDictBuilder(seed, false)
		}
	}
	rows := 0
	for ; ; rows++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		for i, f := range rec {
			if !cols[i].add(f) {
				line, _ := cr.FieldPos(i)
				return nil, intError(line, header[i], f)
			}
		}
	}
	for i, c := range cols {
		if c.dict != nil && len(c.dict.data) > maxStringBytes {
			return nil, fmt.Errorf("column %q: more than %d bytes of text, more than one string column holds", header[i], maxStringBytes)
		}
	}
	return csvRecord(mem, schema, cols, rows), nil
}

func intError(line int, col, val string) error {
	return fmt.Errorf("line %d: column %q: %q is not an integer", line, col, val)
}

// csvSchema is a CSV file's schema: the columns named in types of that
// type (string or int64), the others strings.
func csvSchema(header []string, types map[string]arrow.DataType) (*arrow.Schema, error) {
	for name := range types {
		if !contains(header, name) {
			return nil, fmt.Errorf("typed column %q is not in the header %v", name, header)
		}
	}
	fields := make([]arrow.Field, len(header))
	for i, h := range header {
		t := types[h]
		if t == nil {
			t = arrow.BinaryTypes.String
		}
		if t.ID() != arrow.STRING && t.ID() != arrow.INT64 {
			return nil, fmt.Errorf("column %q: type %s is not supported in CSV", h, t)
		}
		fields[i] = arrow.Field{Name: h, Type: t, Nullable: true}
	}
	return arrow.NewSchema(fields, nil), nil
}

// fileSize is the size of r when it is a file, else 0.
func fileSize(r io.Reader) int64 {
	f, ok := r.(interface{ Stat() (fs.FileInfo, error) })
	if !ok {
		return 0
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return 0
	}
	return fi.Size()
}

// pyFloat formats a float as pandas writes it: Python's repr (shortest
// round-trip digits; fixed notation with at least one decimal for exponents
// -4..15, else d.ddde+XX), NaN as an empty field, infinities as inf/-inf.
func pyFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return ""
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	sci := strconv.FormatFloat(v, 'e', -1, 64)
	exp, _ := strconv.Atoi(sci[strings.IndexByte(sci, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return sci
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
