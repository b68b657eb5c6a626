package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/kneepipe/kneepipe/internal/table"
)

// rowJSON renders row i as a JSON object, columns in schema order, one
// line: the WebDataset .json of a sample. Nulls and non-finite floats are
// null; timestamps are RFC 3339 in UTC.
func rowJSON(rec arrow.RecordBatch, i int) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for c := range int(rec.NumCols()) {
		if c > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, rec.ColumnName(c))
		b.WriteByte(':')
		if err := writeJSONValue(&b, rec.Column(c), i); err != nil {
			return nil, fmt.Errorf("column %s: %w", rec.ColumnName(c), err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeJSONValue(b *bytes.Buffer, a arrow.Array, i int) error {
	if a.IsNull(i) {
		b.WriteString("null")
		return nil
	}
	if s, ok := table.AsStrings(a); ok { // plain or dictionary-encoded
		if s.IsNull(i) {
			b.WriteString("null")
		} else {
			writeJSONString(b, s.Value(i))
		}
		return nil
	}
	switch a := a.(type) {
	case *array.LargeString:
		writeJSONString(b, a.Value(i))
	case *array.Int64:
		b.WriteString(strconv.FormatInt(a.Value(i), 10))
	case *array.Int32:
		b.WriteString(strconv.FormatInt(int64(a.Value(i)), 10))
	case *array.Float64:
		v := a.Value(i)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			b.WriteString("null")
		} else {
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		}
	case *array.Boolean:
		b.WriteString(strconv.FormatBool(a.Value(i)))
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		writeJSONString(b, a.Value(i).ToTime(unit).UTC().Format(time.RFC3339Nano))
	default:
		return fmt.Errorf("type %s is not exported", a.DataType())
	}
	return nil
}

// writeJSONString writes s as a JSON string without HTML escaping.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)           // a string always encodes
	b.Truncate(b.Len() - 1) // Encode's newline
}
