package table

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// readBoth reads src with ReadCSV in one pass and in pieces of every size
// from 1 to 64 bytes, and fails unless all give the same table or error.
func readBoth(t *testing.T, src string, types map[string]arrow.DataType) (string, error) {
	t.Helper()
	mem := checkedMem(t)
	render := func(rec arrow.RecordBatch, err error) (string, error) {
		if err != nil {
			return "", err
		}
		defer rec.Release()
		return writeCSV(t, rec), nil
	}
	onePass, wantErr := ReadCSV(mem, strings.NewReader(src), types)
	var want string
	if wantErr == nil {
		defer onePass.Release()
		want = writeCSV(t, onePass)
	}
	for chunk := 1; chunk <= 64; chunk++ {
		rec, err := readCSVChunked(mem, strings.NewReader(src), types, int64(len(src)), chunk, maxStringBytes)
		if err == nil && !array.RecordEqual(rec, onePass) {
			t.Fatalf("chunk %d: the record differs from the one-pass read's", chunk)
		}
		got, err := render(rec, err)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || got != want {
			t.Fatalf("chunk %d: got %q, %v; one pass %q, %v", chunk, got, err, want, wantErr)
		}
	}
	return want, wantErr
}

func TestReadCSVChunkedSameAsOnePass(t *testing.T) {
	ints := map[string]arrow.DataType{"n": arrow.PrimitiveTypes.Int64}
	for _, c := range []struct {
		name, src string
		types     map[string]arrow.DataType
		wantErr   string
	}{
		{"plain", "a,n\nx,1\ny,2\nzz,3\n", ints, ""},
		{"no final newline", "a,n\nx,1\ny,2", ints, ""},
		{"quoted newlines and commas", "a,n\n\"x\ny\",1\n\"a,\"\"b\"\"\n\n\",2\nplain,3\n", ints, ""},
		{"header with a quoted newline", "\"a\nb\",n\nx,1\n", ints, ""},
		{"crlf and blank lines", "a,n\r\nx,1\r\n\r\ny,\r\n\nz,3\r\n", ints, ""},
		{"null ints", "a,n\nx,\ny,5\n", ints, ""},
		{"bad int", "a,n\nx,1\n\"q\nq\",2\ny,zz\n", ints, `line 5: column "n": "zz" is not an integer`},
		{"field count", "a,n\nx,1\ny,2,3\n", ints, "record on line 3: wrong number of fields"},
		{"bare quote", "a,n\nx,1\ny\"y,2\nz,3\n", ints, `parse error on line 3, column 2: bare " in non-quoted-field`},
		{"unterminated quote", "a,n\nx,1\n\"y,2\nz,3\n", ints, `record on line 3; parse error on line 4, column 5: extraneous or missing " in quoted-field`},
		{"empty", "", nil, "empty file: no header line"},
		{"header only", "a,n\n", ints, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := readBoth(t, c.src, c.types)
			if fmt.Sprint(err) != map[bool]string{true: "<nil>", false: c.wantErr}[c.wantErr == ""] {
				t.Errorf("error %v, want %q", err, c.wantErr)
			}
		})
	}
}

// A file big enough to be read in pieces reads as in one pass.
func TestReadCSVBigFileInPieces(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("id,n\n")
	for i := 0; sb.Len() < 4*csvChunk+1000; i++ {
		fmt.Fprintf(&sb, "\"row\n%d\",%d\n", i, i)
	}
	src := sb.String()
	mem := checkedMem(t)
	types := map[string]arrow.DataType{"n": arrow.PrimitiveTypes.Int64}
	rec, err := readCSVChunked(mem, strings.NewReader(src), types, int64(len(src)), csvChunk, maxStringBytes)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if got := writeCSV(t, rec); got != src {
		t.Errorf("read in pieces and written back: %d bytes differ from the %d-byte file", len(got), len(src))
	}
}

// A string column longer than an Arrow string column holds is a clear
// error naming the column and where it overflowed (here with a limit of
// 100 bytes in place of 2 GiB), on every piece size; at the limit it reads.
// The text is the column's distinct values, each held once.
func TestReadCSVChunkedTextLimit(t *testing.T) {
	mem := checkedMem(t)
	src := "n,s\n"
	for i := range 10 {
		src += fmt.Sprintf("1,abcdefghi%d\n", i) // s: 100 bytes
	}
	src += "1,abcdefghi0\n" // a value again: no more text
	for chunk := 1; chunk <= 40; chunk++ {
		rec, err := readCSVChunked(mem, strings.NewReader(src), map[string]arrow.DataType{"n": arrow.PrimitiveTypes.Int64}, int64(len(src)), chunk, 100)
		if err != nil {
			t.Fatalf("chunk %d: 100 bytes of text at a limit of 100: %v", chunk, err)
		}
		rec.Release()
		_, err = readCSVChunked(mem, strings.NewReader(src+"2,k\n"), nil, int64(len(src)+4), chunk, 100)
		if err == nil || !strings.Contains(err.Error(), `column "s": more than 100 bytes of text`) || !strings.HasPrefix(err.Error(), "line ") {
			t.Fatalf("chunk %d: 101 bytes at a limit of 100: %v", chunk, err)
		}
	}
}

// countReads counts the reads of a reader.
type countReads struct {
	r     io.Reader
	reads int
}

func (c *countReads) Read(p []byte) (int, error) { c.reads++; return c.r.Read(p) }

// A field far longer than a piece (here 1 MiB in 1 KiB pieces) is read in
// a buffer that doubles: a few reads, each copying what came before, not
// one a piece (a 1 GB quoted field was a quarter of a million copies of up
// to 1 GB); it reads as in one pass.
func TestReadCSVChunkedLongField(t *testing.T) {
	mem := checkedMem(t)
	src := "a,b\n1,\"" + strings.Repeat("x\n", 512<<10) + "\"\n2,y\n"
	r := &countReads{r: strings.NewReader(src)}
	rec, err := readCSVChunked(mem, r, nil, int64(len(src)), 1<<10, maxStringBytes)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if got := writeCSV(t, rec); got != src {
		t.Errorf("read and written back: %d bytes differ from the %d-byte file", len(got), len(src))
	}
	if r.reads > 64 {
		t.Errorf("%d reads for a 1 MiB field in 1 KiB pieces, want a few (doubling)", r.reads)
	}
}
