package stages

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/kneepipe/kneepipe/internal/table"
)

func filterKind() Kind {
	return Kind{
		Name: "filter",
		Doc:  "Keeps (or drops) the rows whose column value appears in another table's column: pandas' isin / ~isin. Row order is kept.",
		Inputs: []Port{
			{"rows", "rows to filter"},
			{"by", "table holding the values to match"},
		},
		Outputs: []Port{{"rows", "the rows kept"}},
		Params: []Param{
			{Name: "column", Type: String, Default: "file_id", Doc: "column of rows to match"},
			{Name: "by_column", Type: String, Default: "", Doc: "column of by to match against (empty: same as column)"},
			{Name: "mode", Type: String, Default: "keep", Enum: []string{"keep", "drop"}, Doc: "keep matching rows, or drop them"},
		},
		New: func(p Params) (Stage, error) {
			by := p.Str("by_column")
			if by == "" {
				by = p.Str("column")
			}
			return &filter{column: p.Str("column"), byColumn: by, keep: p.Str("mode") == "keep"}, nil
		},
		Schema: func(p Params, in map[string]Schema) (map[string]Schema, error) {
			if err := need(in, "rows", "column", 0, p.Str("column"), nil); err != nil {
				return nil, err
			}
			by, param := p.Str("by_column"), "by_column"
			if by == "" {
				by, param = p.Str("column"), "column"
			}
			if err := need(in, "by", param, 0, by, nil); err != nil {
				return nil, err
			}
			return map[string]Schema{"rows": in["rows"]}, nil
		},
		Reads: func(p Params, used map[string][]string) map[string][]string {
			by := p.Str("by_column")
			if by == "" {
				by = p.Str("column")
			}
			return map[string][]string{"rows": unionCols([]string{p.Str("column")}, used["rows"]), "by": {by}}
		},
	}
}

type filter struct {
	column, byColumn string
	keep             bool
}

func (s *filter) Run(ctx context.Context, env *Env, in map[string]arrow.RecordBatch) (*Result, error) {
	rows, err := input(in, "rows")
	if err != nil {
		return nil, err
	}
	by, err := input(in, "by")
	if err != nil {
		return nil, err
	}
	ci, err := table.Index(rows, s.column)
	if err != nil {
		return nil, err
	}
	bi, err := table.Index(by, s.byColumn)
	if err != nil {
		return nil, err
	}
	// The values to match, grouped by their Text (see table.AppendKey):
	// hashing the bytes spares a string per row.
	byCols := []arrow.Array{by.Column(bi)}
	set := table.NewGroups(byCols, int(by.NumRows()))
	for i := range int(by.NumRows()) {
		set.Add(i)
	}
	// A dictionary column is matched once per value, not once per row.
	found := set.Matches(rows.Column(ci))
	idx := make([]int, 0, len(found))
	for i, f := range found {
		if f == s.keep {
			idx = append(idx, i)
		}
	}
	out, err := takeUsed(ctx, env, rows, "rows", idx, table.TakeSorted)
	if err != nil {
		return nil, err
	}
	return &Result{Outputs: map[string]arrow.RecordBatch{"rows": out}}, nil
}
