package stages

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

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

	type group struct {
		first    int
		members  []int
		conflict bool
	}
	groups := map[string]*group{}
	var order []*group // groups with duplicates, in order of first appearance
	var kept, removed []int
	var sb strings.Builder
	for i := range int(rows.NumRows()) {
		sb.Reset()
		for _, c := range keyCols {
			// Length-prefixed, so no value can fake a column boundary.
			v := table.Text(c, i)
			sb.WriteString(strconv.Itoa(len(v)))
			sb.WriteByte(':')
			sb.WriteString(v)
		}
		g, seen := groups[sb.String()]
		if !seen {
			groups[sb.String()] = &group{first: i}
			kept = append(kept, i)
			continue
		}
		if len(g.members) == 0 {
			g.members = []int{g.first}
			order = append(order, g)
		}
		g.members = append(g.members, i)
		removed = append(removed, i)
		if checkCol != nil && table.Text(checkCol, i) != table.Text(checkCol, g.first) {
			g.conflict = true
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

	keptRec, err := table.Take(ctx, env.Mem, rows, kept)
	if err != nil {
		return nil, err
	}
	removedRec, err := table.Take(ctx, env.Mem, rows, removed)
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
