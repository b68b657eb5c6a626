package table

import (
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/kneepipe/kneepipe/internal/safe"
)

// WriteCSV writes rec the way pandas' DataFrame.to_csv(index=False) does:
// a header line, commas, "\n" line ends, a field quoted only when it holds a
// comma, a quote or a line break (quotes doubled), a lone empty field
// written as "" and nulls as empty fields. Training code and the notebook's
// users compare these files byte for byte, so the format is fixed here once.
//
// Rows are formatted in chunks on every core and written in order: at 10M
// rows one core formatting the largest artifact was the run's last seconds.
func WriteCSV(w io.Writer, rec arrow.RecordBatch) error {
	return writeCSVChunks(w, rec, csvChunkRows(rec, csvWriteRows, csvWriteBytes), runtime.GOMAXPROCS(0))
}

// csvWriteRows is the rows of one formatted chunk (about 2.5 MB for the
// notebook's tables), fewer when rows are long (csvWriteBytes).
const (
	csvWriteRows  = 16 << 10
	csvWriteBytes = 4 << 20
)

// csvChunkRows is how many rows of rec make a chunk of about maxBytes
// (from the average length of its strings), at most maxRows: the chunks
// in flight are bounded in bytes, not only in rows, whatever the cells.
func csvChunkRows(rec arrow.RecordBatch, maxRows, maxBytes int) int {
	n := int(rec.NumRows())
	if n == 0 {
		return maxRows
	}
	rowBytes := 1
	for _, c := range rec.Columns() {
		if s, ok := AsStrings(c); ok {
			rowBytes += 3 + s.AvgLen() // a comma, maybe quotes
			continue
		}
		rowBytes += 33 // a number or timestamp and a comma
	}
	return max(1, min(maxRows, maxBytes/rowBytes))
}

// writeCSVChunks is WriteCSV in chunks of chunkRows rows, up to 2*workers of
// them formatted or waiting to be written at once.
func writeCSVChunks(w io.Writer, rec arrow.RecordBatch, chunkRows, workers int) error {
	header := make([]string, rec.NumCols())
	for i := range header {
		header[i] = rec.ColumnName(i)
	}
	if _, err := w.Write(appendCSVStrings(nil, header)); err != nil {
		return err
	}
	n := int(rec.NumRows())
	unquoted := unquotedCols(rec)
	if n <= chunkRows {
		buf, err := appendCSVRows(nil, rec, unquoted, 0, n)
		if err == nil {
			_, err = w.Write(buf)
		}
		return err
	}
	type chunk struct {
		buf  []byte
		err  error
		done chan struct{}
	}
	ahead := 2 * max(1, workers)
	queue := make(chan *chunk, ahead-1) // in row order; with the one being written, bounds the chunks in flight
	free := make(chan []byte, ahead+1)  // buffers written, for reuse
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// The formatters read rec: they must be done before WriteCSV returns.
	defer wg.Wait()
	defer close(stop)
	wg.Go(func() {
		defer close(queue)
		for lo := 0; lo < n; lo += chunkRows {
			c := &chunk{done: make(chan struct{})}
			select {
			case queue <- c:
			case <-stop:
				return
			}
			var buf []byte
			select {
			case buf = <-free:
			default:
			}
			wg.Go(func() {
				defer close(c.done)
				defer safe.Recover(&c.err)
				c.buf, c.err = appendCSVRows(buf[:0], rec, unquoted, lo, min(lo+chunkRows, n))
			})
		}
	})
	for c := range queue {
		<-c.done
		if c.err != nil {
			return c.err
		}
		if _, err := w.Write(c.buf); err != nil {
			return err
		}
		select {
		case free <- c.buf:
		default:
		}
	}
	return nil
}

// appendCSVRows appends rows lo..hi-1 of rec; unquoted (see
// unquotedCols) marks the columns none of whose cells needs quoting.
func appendCSVRows(buf []byte, rec arrow.RecordBatch, unquoted []bool, lo, hi int) ([]byte, error) {
	cols := rec.Columns()
	strs := make([]*StringCells, len(cols)) // string columns in either form
	for c, col := range cols {
		strs[c], _ = AsStrings(col)
	}
	lone := len(cols) == 1
	for r := lo; r < hi; r++ {
		for c, col := range cols {
			if c > 0 {
				buf = append(buf, ',')
			}
			var s string
			if str := strs[c]; str != nil {
				if str.IsValid(r) {
					s = str.Value(r)
				}
				if unquoted[c] && (s != "" || !lone) {
					buf = append(buf, s...)
					continue
				}
				buf = appendCSVField(buf, s, lone)
				continue
			}
			switch a := col.(type) {
			case *array.Int64:
				if a.IsValid(r) {
					buf = strconv.AppendInt(buf, a.Value(r), 10)
					continue
				}
			default:
				var err error
				if s, err = cellText(col, r); err != nil {
					return buf, fmt.Errorf("column %q: %w", rec.ColumnName(c), err)
				}
			}
			buf = appendCSVField(buf, s, lone)
		}
		buf = append(buf, '\n')
	}
	return buf, nil
}

// unquotedCols says per column whether it is a string column none of
// whose cells needs quoting, from one search of the text it holds: a
// plain column's, or a dictionary's values when there are no more of them
// than rows. Its cells are then copied as they are, not searched one by
// one for commas, quotes and line breaks (at 10M rows that search was
// half of the CSV formatting).
func unquotedCols(rec arrow.RecordBatch) []bool {
	out := make([]bool, rec.NumCols())
	for c, col := range rec.Columns() {
		s, ok := AsStrings(col)
		if !ok {
			continue
		}
		if d := s.Dictionary(); d != nil && d.Len() > s.Len() {
			continue // more text than the cells hold: search cell by cell
		}
		out[c] = !needsQuote(s.values.ValueBytes())
	}
	return out
}

// needsQuote is quotable over all of b, a block at a time so that its
// four searches read each block from the cache.
func needsQuote(b []byte) bool {
	const block = 16 << 10
	for len(b) > 0 {
		n := min(block, len(b))
		p := b[:n]
		if quotable(unsafe.String(unsafe.SliceData(p), len(p))) {
			return true
		}
		b = b[n:]
	}
	return false
}

// appendCSVStrings appends one line of fields.
func appendCSVStrings(buf []byte, row []string) []byte {
	for i, f := range row {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendCSVField(buf, f, len(row) == 1)
	}
	return append(buf, '\n')
}

// appendCSVField appends one field, quoted when it must be; lone says it
// is the line's only field.
func appendCSVField(buf []byte, f string, lone bool) []byte {
	switch {
	case lone && f == "":
		return append(buf, `""`...)
	case quotable(f):
		buf = append(buf, '"')
		for {
			q := strings.IndexByte(f, '"')
			if q < 0 {
				break
			}
			buf = append(buf, f[:q+1]...)
			buf = append(buf, '"')
			f = f[q+1:]
		}
		buf = append(buf, f...)
		return append(buf, '"')
	default:
		return append(buf, f...)
	}
}

// quotable says whether f holds a comma, a quote or a line break, the
// characters that make pandas quote a field.
func quotable(f string) bool {
	return strings.IndexByte(f, ',') >= 0 || strings.IndexByte(f, '"') >= 0 || strings.IndexByte(f, '\n') >= 0 || strings.IndexByte(f, '\r') >= 0
}

// cellText formats one cell as pandas would print it in a CSV.
func cellText(a arrow.Array, i int) (string, error) {
	if a.IsNull(i) {
		return "", nil
	}
	switch a := a.(type) {
	case *array.String:
		return a.Value(i), nil
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10), nil
	case *array.Boolean:
		if a.Value(i) {
			return "True", nil
		}
		return "False", nil
	case *array.Float64:
		return pyFloat(a.Value(i)), nil
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		t := a.Value(i).ToTime(unit).UTC()
		switch {
		case t.Nanosecond() == 0:
			return t.Format("2006-01-02 15:04:05+00:00"), nil
		case t.Nanosecond()%1000 == 0:
			return t.Format("2006-01-02 15:04:05.000000+00:00"), nil
		default: // str(pd.Timestamp) shows nanoseconds when it has them
			return t.Format("2006-01-02 15:04:05.000000000+00:00"), nil
		}
	default:
		return "", fmt.Errorf("cannot write %s to CSV", a.DataType())
	}
}
