package stages

import (
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Column sets for Kind.Reads and Env.Used: a list of names, nil meaning
// every column.

// unionCols joins column sets; any nil one makes the union nil (all).
func unionCols(sets ...[]string) []string {
	out := []string{}
	for _, s := range sets {
		if s == nil {
			return nil
		}
		for _, c := range s {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}

// withoutCols is set less the named columns (nil stays nil: all).
func withoutCols(set []string, drop ...string) []string {
	if set == nil {
		return nil
	}
	return slices.DeleteFunc(slices.Clone(set), func(c string) bool { return slices.Contains(drop, c) })
}

// usedOf is used[output] for a map that may be nil.
func usedOf(used map[string][]string, output string) []string {
	if used == nil {
		return nil
	}
	return used[output]
}

// UsedColumns returns rec with only the columns in used (nil: rec itself),
// in rec's order, sharing its arrays; the caller releases it.
func UsedColumns(rec arrow.RecordBatch, used []string) arrow.RecordBatch {
	if used == nil {
		rec.Retain()
		return rec
	}
	var fields []arrow.Field
	var cols []arrow.Array
	for i, f := range rec.Schema().Fields() {
		if slices.Contains(used, f.Name) {
			fields = append(fields, f)
			cols = append(cols, rec.Column(i))
		}
	}
	if len(cols) == len(rec.Schema().Fields()) {
		rec.Retain()
		return rec
	}
	md := rec.Schema().Metadata()
	return array.NewRecordBatch(arrow.NewSchema(fields, &md), cols, rec.NumRows())
}
