package stages

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/table"
)

func dedupeKind() Kind {
	return Kind{
		Name:   "dedupe",
		Doc:    "Drops rows duplicated on the key columns, keeping the first in input order. Duplicates that disagree on the checked column are reported, never resolved silently.",
		Inputs: []Port{{"rows", "rows to de-duplicate"}},
		Outputs: []Port{
			{"rows", "the first row of each key"},
			{"removed", "the dropped rows, in input order"},
			{"conflicts", "every row of a duplicate group whose checked column differs, with a group column"},
		},
		Params: []Param{
			{Name: "on", Type: Strings, Default: []string{"expert", "file_id"}, Doc: "key columns"},
			{Name: "check", Type: String, Default: "severity", Doc: "column duplicates must agree on (empty: no check)"},
		},
		New: func(p Params) (Stage, error) {
			if len(p.Strings("on")) == 0 {
				return nil, fmt.Errorf("on: name at least one column")
			}
			return &dedupe{on: p.Strings("on"), check: p.Str("check")}, nil
		},
		Schema: func(p Params, in map[string]Schema) (map[string]Schema, error) {
			for i, c := range p.Strings("on") {
				if err := need(in, "rows", "on", i+1, c, nil); err != nil {
					return nil, err
				}
			}
			if c := p.Str("check"); c != "" {
				if err := need(in, "rows", "check", 0, c, nil); err != nil {
					return nil, err
				}
			}
			conflicts, err := in["rows"].Append(Col{"group", Int64Type})
			if err != nil {
				return nil, &InputError{Input: "rows", Msg: err.Error()}
			}
			return map[string]Schema{"rows": in["rows"], "removed": in["rows"], "conflicts": conflicts}, nil
		},
		// The key and checked columns, and what the outputs pass on.
		Reads: func(p Params, used map[string][]string) map[string][]string {
			return map[string][]string{"rows": unionCols(p.Strings("on"), withoutCols([]string{p.Str("check")}, ""),
				used["rows"], used["removed"], withoutCols(used["conflicts"], "group"))}
		},
	}
}

type dedupe struct {
	on    []string
	check string
}

func (s *dedupe) Run(ctx context.Context, env *Env, in map[string]arrow.RecordBatch) (*Result, error) {
	rows, err := input(in, "rows")
	if err != nil {
		return nil, err
	}
	keyCols := make([]arrow.Array, len(s.on))
	for i, name := range s.on {
		idx, err := table.Index(rows, name)
		if err != nil {
			return nil, err
		}
		keyCols[i] = rows.Column(idx)
	}
	var checkCol arrow.Array
	if s.check != "" {
		idx, err := table.Index(rows, s.check)
		if err != nil {
			return nil, err
		}
		checkCol = rows.Column(idx)
	}

	// Group rows by key; order lists the groups with duplicates in order of
	// first appearance.
	type dup struct {
		members  []int
		conflict bool
	}
	n := int(rows.NumRows())
	groups := table.NewGroups(keyCols, n)
	dups := map[int]*dup{}
	var order []*dup
	kept := make([]int, 0, n)
	var removed []int
	for i := range n {
		grp, isNew := groups.Add(i)
		if isNew {
			kept = append(kept, i)
			continue
		}
		first := groups.First(grp)
		d := dups[grp]
		if d == nil {
			d = &dup{members: []int{first}}
			dups[grp] = d
			order = append(order, d)
		}
		d.members = append(d.members, i)
		removed = append(removed, i)
		if checkCol != nil && !sameCell(checkCol, i, first) {
			d.conflict = true
		}
	}
	var conflictRows []int
	var groupIDs []int64
	for n, g := range order {
		if g.conflict {
			for _, m := range g.members {
				conflictRows = append(conflictRows, m)
				groupIDs = append(groupIDs, int64(n+1))
			}
		}
	}
	if len(conflictRows) > 0 {
		env.Log.Warn("duplicates disagree", "column", s.check, "rows", len(conflictRows))
	}

	// Each output gets only the columns read downstream (env.Used).
	keptRec, err := takeUsed(ctx, env, rows, "rows", kept, table.TakeSorted)
	if err != nil {
		return nil, err
	}
	removedRec, err := takeUsed(ctx, env, rows, "removed", removed, table.Take)
	if err != nil {
		keptRec.Release()
		return nil, err
	}
	conflicts, err := table.Take(ctx, env.Mem, rows, conflictRows)
	if err != nil {
		keptRec.Release()
		removedRec.Release()
		return nil, err
	}
	defer conflicts.Release()
	cc := append(table.Columns(conflicts), table.Int64s(env.Mem, "group", groupIDs, nil))
	return &Result{Outputs: map[string]arrow.RecordBatch{
		"rows":      keptRec,
		"removed":   removedRec,
		"conflicts": table.New(cc...),
	}}, nil
}

// takeUsed takes the rows at idx of the columns of rec read from output
// (env.Used).
func takeUsed(ctx context.Context, env *Env, rec arrow.RecordBatch, output string, idx []int,
	take func(context.Context, memory.Allocator, arrow.RecordBatch, []int) (arrow.RecordBatch, error)) (arrow.RecordBatch, error) {
	cols := UsedColumns(rec, usedOf(env.Used, output))
	defer cols.Release()
	return take(ctx, env.Mem, cols, idx)
}

// sameCell says whether rows i and j of a hold the same Text.
func sameCell(a arrow.Array, i, j int) bool {
	if s, ok := table.AsStrings(a); ok {
		text := func(r int) string { // table.Text without the copy
			if s.IsNull(r) {
				return "\x00null"
			}
			return s.Value(r)
		}
		return text(i) == text(j)
	}
	if v, ok := a.(*array.Int64); ok {
		return v.IsNull(i) == v.IsNull(j) && v.Value(i) == v.Value(j)
	}
	return table.Text(a, i) == table.Text(a, j)
}
