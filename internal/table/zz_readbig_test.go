package table

import (
	"os"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestReadBig(t *testing.T) {
	p := os.Getenv("BIGCSV")
	if p == "" {
		t.Skip()
	}
	f, _ := os.Open(p)
	defer f.Close()
	start := time.Now()
	rec, err := ReadCSV(memory.DefaultAllocator, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v rows in %v", rec.NumRows(), time.Since(start))
	for i := range int(rec.NumCols()) {
		s, _ := AsStrings(rec.Column(i))
		t.Logf("%s: %s dict %d bytes %d", rec.ColumnName(i), rec.Column(i).DataType(), s.values.Len(), s.TextBytes())
	}
}
