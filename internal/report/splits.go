package report

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// SplitRows is a split stage's output as the report audits it: the
// report recomputes every figure from these rows rather than trusting the
// split stage's own purity check or shares.
type SplitRows struct {
	Order []string // split names in display order; others follow by name
	// Keys are the group columns rechecked (split_group first, then e.g.
	// file_id, patient, near_group): each of their values must lie in one
	// split.
	Keys []string
	Rows []SplitRow
}

// SplitRow is one row of the split stage's output.
type SplitRow struct {
	Split string
	Grade int64
	Keys  []string // aligned with SplitRows.Keys; "" links nothing
}

// SplitAudit is the leakage audit of summary.json.
type SplitAudit struct {
	Rows   int          `json:"rows"`
	Groups int          `json:"groups"` // distinct values of the first key (split_group)
	Splits []SplitCount `json:"splits"`
	Keys   []KeyAudit   `json:"keys"`
	// Leaks counts the key values found in more than one split; 0 is the
	// promise.
	Leaks int `json:"leaks"`
	// Missing are the (split, grade) cells without a row although the data
	// has that grade: a warning.
	Missing  []MissingGrade `json:"missing"`
	Warnings []string       `json:"warnings"`
}

// SplitCount is one split's rows and realised per-grade shares.
type SplitCount struct {
	Split  string       `json:"split"`
	Rows   int          `json:"rows"`
	Groups int          `json:"groups"`
	Share  float64      `json:"share"` // of all rows
	Grades []GradeShare `json:"grades"`
}

// GradeShare is one grade within one split.
type GradeShare struct {
	Grade int64 `json:"grade"`
	Rows  int   `json:"rows"`
	// Share is the share of the grade's rows that are in this split (the
	// split stage's shares); InSplit the grade's share of the split's rows.
	Share   float64 `json:"share"`
	InSplit float64 `json:"in_split"`
}

// KeyAudit is the check of one group column: every value in one split.
type KeyAudit struct {
	Column   string     `json:"column"`
	Values   int        `json:"values"`
	Crossing int        `json:"crossing"`
	Examples []Crossing `json:"examples"` // the first few crossing values, by value
}

// Crossing is a key value found in several splits.
type Crossing struct {
	Value  string         `json:"value"`
	Splits map[string]int `json:"splits"` // split → rows
}

// MissingGrade is a split lacking a grade the data has.
type MissingGrade struct {
	Split string `json:"split"`
	Grade int64  `json:"grade"`
	Rows  int    `json:"rows"` // the grade's rows in all splits
}

// crossingExamples bounds the crossing values listed per column.
const crossingExamples = 20

// auditSplits computes the audit; nil when the splits are not known.
func auditSplits(in *SplitRows, gradeName func(int64) string) (*SplitAudit, error) {
	if in == nil {
		return nil, nil
	}
	a := &SplitAudit{Rows: len(in.Rows), Splits: []SplitCount{}, Keys: []KeyAudit{}, Missing: []MissingGrade{}, Warnings: []string{}}
	type cell struct {
		split string
		grade int64
	}
	rows, cells, perGrade := map[string]int{}, map[cell]int{}, map[int64]int{}
	seen := make([]map[string]map[string]int, len(in.Keys)) // key column → value → split → rows
	for k := range seen {
		seen[k] = map[string]map[string]int{}
	}
	for i, r := range in.Rows {
		if len(r.Keys) != len(in.Keys) {
			return nil, fmt.Errorf("splits: row %d has %d keys for %d key columns", i+1, len(r.Keys), len(in.Keys))
		}
		rows[r.Split]++
		cells[cell{r.Split, r.Grade}]++
		perGrade[r.Grade]++
		for k, v := range r.Keys {
			if v == "" {
				continue
			}
			if seen[k][v] == nil {
				seen[k][v] = map[string]int{}
			}
			seen[k][v][r.Split]++
		}
	}
	groupsIn := map[string]int{}
	if len(in.Keys) > 0 {
		a.Groups = len(seen[0])
		for _, bySplit := range seen[0] {
			for sp := range bySplit {
				groupsIn[sp]++
			}
		}
	}
	grades := slices.Sorted(maps.Keys(perGrade))
	for _, sp := range splitOrder(in.Order, rows) {
		c := SplitCount{Split: sp, Rows: rows[sp], Groups: groupsIn[sp], Grades: []GradeShare{}}
		if a.Rows > 0 {
			c.Share = float64(c.Rows) / float64(a.Rows)
		}
		var lacking []string
		for _, g := range grades {
			n := cells[cell{sp, g}]
			gs := GradeShare{Grade: g, Rows: n, Share: float64(n) / float64(perGrade[g])}
			if c.Rows > 0 {
				gs.InSplit = float64(n) / float64(c.Rows)
			}
			c.Grades = append(c.Grades, gs)
			if n == 0 {
				a.Missing = append(a.Missing, MissingGrade{Split: sp, Grade: g, Rows: perGrade[g]})
				lacking = append(lacking, fmt.Sprintf("%s (%d rows in all)", gradeName(g), perGrade[g]))
			}
		}
		if len(lacking) > 0 {
			a.Warnings = append(a.Warnings, fmt.Sprintf("split %s has no row of grade %s", sp, strings.Join(lacking, ", ")))
		}
		a.Splits = append(a.Splits, c)
	}
	for k, col := range in.Keys {
		ka := KeyAudit{Column: col, Values: len(seen[k]), Examples: []Crossing{}}
		for _, v := range slices.Sorted(maps.Keys(seen[k])) {
			if len(seen[k][v]) < 2 {
				continue
			}
			ka.Crossing++
			if len(ka.Examples) < crossingExamples {
				ka.Examples = append(ka.Examples, Crossing{Value: v, Splits: seen[k][v]})
			}
		}
		a.Leaks += ka.Crossing
		a.Keys = append(a.Keys, ka)
	}
	return a, nil
}

// splitOrder lists the splits present: those of order first, in that
// order (present or not: an empty split is worth seeing), then the
// others by name.
func splitOrder(order []string, rows map[string]int) []string {
	out := slices.Clone(order)
	var rest []string
	for sp := range rows {
		if !slices.Contains(order, sp) {
			rest = append(rest, sp)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

type splitsView struct {
	A      *SplitAudit
	Heads  []gradeHead
	Rows   []splitRowView
	Total  splitRowView
	Leaked []KeyAudit
}

type splitRowView struct {
	Split        string
	Rows, Groups int
	Share        string
	Cells        []splitCellView
}

type splitCellView struct {
	Rows      int
	Share, Of string
	Missing   bool
}

func (r *Report) splitsOf(a *SplitAudit) *splitsView {
	if a == nil {
		return nil
	}
	v := &splitsView{A: a}
	perGrade := map[int64]int{}
	for _, c := range a.Splits {
		for _, g := range c.Grades {
			perGrade[g.Grade] += g.Rows
		}
	}
	grades := slices.Sorted(maps.Keys(perGrade))
	for _, g := range grades {
		v.Heads = append(v.Heads, gradeHead{Name: r.gradeName(g), Style: chipStyle(r.gradeIndex(g))})
	}
	for _, c := range a.Splits {
		row := splitRowView{Split: c.Split, Rows: c.Rows, Groups: c.Groups, Share: pct(c.Share)}
		for _, g := range c.Grades {
			row.Cells = append(row.Cells, splitCellView{Rows: g.Rows, Share: pct(g.Share), Of: pct(g.InSplit), Missing: g.Rows == 0})
		}
		v.Rows = append(v.Rows, row)
	}
	v.Total = splitRowView{Split: "All", Rows: a.Rows, Groups: a.Groups, Share: pct(1)}
	for _, g := range grades {
		share := 0.0
		if a.Rows > 0 {
			share = float64(perGrade[g]) / float64(a.Rows)
		}
		v.Total.Cells = append(v.Total.Cells, splitCellView{Rows: perGrade[g], Share: pct(1), Of: pct(share)})
	}
	for _, k := range a.Keys {
		if k.Crossing > 0 {
			v.Leaked = append(v.Leaked, k)
		}
	}
	return v
}
