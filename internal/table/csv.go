package table

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ReadCSV reads a CSV file with a header line into one record batch. Columns
// named in types are parsed as that type (int64 is supported); all others
// are strings. An empty field in an int64 column is a null.
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
	b, err := csvBuilder(mem, header, types)
	if err != nil {
		return nil, err
	}
	defer b.Release()
	for rows := 0; ; rows++ {
		if rows == sampleRows && size > 0 {
			reserve(b, rows, size, cr.InputOffset())
		}
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		for i, f := range rec {
			switch fb := b.Field(i).(type) {
			case *array.StringBuilder:
				fb.Append(f)
			case *array.Int64Builder:
				if f == "" {
					fb.AppendNull()
					continue
				}
				v, err := strconv.ParseInt(f, 10, 64)
				if err != nil {
					line, _ := cr.FieldPos(i)
					return nil, intError(line, header[i], f)
				}
				fb.Append(v)
			}
		}
	}
	return b.NewRecordBatch(), nil
}

func intError(line int, col, val string) error {
	return fmt.Errorf("line %d: column %q: %q is not an integer", line, col, val)
}

// csvBuilder checks the typed columns against the header and makes the
// record builder: strings, and int64 where types says so.
func csvBuilder(mem memory.Allocator, header []string, types map[string]arrow.DataType) (*array.RecordBuilder, error) {
	schema, err := csvSchema(header, types)
	if err != nil {
		return nil, err
	}
	return array.NewRecordBuilder(mem, schema), nil
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

// sampleRows are read before ReadCSV sizes its builders for the rest.
const sampleRows = 4096

// reserve sizes the builders for the rows a file of size bytes holds,
// estimated from the first rows (read in offset bytes), with 5% to spare:
// growing a 100 MB column by doubling copies it several times over.
func reserve(b *array.RecordBuilder, rows int, size, offset int64) {
	if offset <= 0 {
		return
	}
	scale := float64(size) / float64(offset) * 1.05
	for _, f := range b.Fields() {
		f.Reserve(int(float64(rows)*scale) - rows)
		if sb, ok := f.(*array.StringBuilder); ok {
			sb.ReserveData(int(float64(sb.DataLen())*scale) - sb.DataLen())
		}
	}
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
