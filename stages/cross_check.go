package stages

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/kappa"
	"github.com/kneepipe/kneepipe/internal/safe"
	"github.com/kneepipe/kneepipe/internal/table"
)

func crossCheckKind() Kind {
	return Kind{
		Name:   "cross-check",
		Doc:    "Compares raters item by item: the wide table (one grade column per rater), pairwise agreement matrices and Cohen's kappas, the items they disagree on and the items some rater lacks.",
		Inputs: []Port{{"rows", "one row per (item, rater) with an integer grade; de-duplicate first"}},
		Outputs: []Port{
			{"wide", "item column plus one grade column per rater (sorted by name), sorted by item"},
			{"matrix", "rater_a, rater_b, grade_a, grade_b, count: items per grade pair, for every pair of raters"},
			{"disagreements", "rows of wide where the present raters' grades differ (or a rater is missing, with missing_disagrees)"},
			{"missing", "item, rater: items a rater did not grade"},
			{"kappa", "per pair of raters over the items both graded: rater_a, rater_b, n, observed agreement, and Cohen's kappa unweighted, linear- and quadratic-weighted (weights from the grade values), each with a 95% interval (_lo, _hi; Fleiss, Cohen & Everitt 1969 standard error); null where undefined"},
		},
		Params: []Param{
			{Name: "item", Type: String, Default: "file_id", Doc: "column identifying an item across raters"},
			{Name: "rater", Type: String, Default: "expert", Doc: "column naming the rater"},
			{Name: "grade", Type: String, Default: "severity", Doc: "int64 grade column"},
			{Name: "missing_disagrees", Type: Bool, Default: false, Doc: "count an item some rater lacks as a disagreement, as the notebook's pivot does (NaN != grade)"},
			{Name: "max_grades", Type: Int, Default: int64(1000), Min: 2, Max: 2000, Tuning: true, Doc: "most distinct grade values: the kappas take a grades×grades table per pair of raters; more is a stage error"},
		},
		New: func(p Params) (Stage, error) {
			return &crossCheck{item: p.Str("item"), rater: p.Str("rater"), grade: p.Str("grade"), missingDisagrees: p.Bool("missing_disagrees"), maxGrades: int(p.Int("max_grades"))}, nil
		},
		Schema: crossCheckSchema,
		Reads: func(p Params, _ map[string][]string) map[string][]string {
			return map[string][]string{"rows": {p.Str("item"), p.Str("rater"), p.Str("grade")}}
		},
	}
}

// matrixSchema is cross-check's matrix output, which the report reads.
func matrixSchema() Schema {
	return Closed(Col{"rater_a", StringType}, Col{"rater_b", StringType},
		Col{"grade_a", Int64Type}, Col{"grade_b", Int64Type}, Col{"count", Int64Type})
}

// kappaStats are the float64 columns of the kappa output after rater_a,
// rater_b and n: kappaTable fills them in this order.
var kappaStats = [...]string{"observed", "kappa", "kappa_lo", "kappa_hi", "linear", "linear_lo", "linear_hi", "quadratic", "quadratic_lo", "quadratic_hi"}

// kappaSchema is cross-check's kappa output, which the report reads.
func kappaSchema() Schema {
	s := Closed(Col{"rater_a", StringType}, Col{"rater_b", StringType}, Col{"n", Int64Type})
	for _, name := range kappaStats {
		s.Cols = append(s.Cols, Col{name, Float64Type})
	}
	return s
}

// wideSchema is the item column then one int64 grade column per rater,
// whose names are the raters' values: known only at run time.
func wideSchema(item string) Schema {
	return Schema{Cols: []Col{{item, StringType}}, Open: true, Rest: Int64Type, RestDoc: "one int64 grade column per rater, named by the rater"}
}

func crossCheckSchema(p Params, in map[string]Schema) (map[string]Schema, error) {
	for _, c := range []struct {
		param string
		want  arrow.DataType
	}{{"item", StringType}, {"rater", StringType}, {"grade", Int64Type}} {
		if err := need(in, "rows", c.param, 0, p.Str(c.param), c.want); err != nil {
			return nil, err
		}
	}
	return map[string]Schema{
		"wide":          wideSchema(p.Str("item")),
		"matrix":        matrixSchema(),
		"disagreements": wideSchema(p.Str("item")),
		"missing":       Closed(Col{p.Str("item"), StringType}, Col{p.Str("rater"), StringType}),
		"kappa":         kappaSchema(),
	}, nil
}

type crossCheck struct {
	item, rater, grade string
	missingDisagrees   bool
	maxGrades          int
}

func (s *crossCheck) Run(ctx context.Context, env *Env, in map[string]arrow.RecordBatch) (*Result, error) {
	rows, err := input(in, "rows")
	if err != nil {
		return nil, err
	}
	items, err := table.StringCol(rows, s.item)
	if err != nil {
		return nil, err
	}
	raters, err := table.StringCol(rows, s.rater)
	if err != nil {
		return nil, err
	}
	grades, err := table.Int64Col(rows, s.grade)
	if err != nil {
		return nil, err
	}

	// Pivot: item -> rater -> grade.
	names, raterOf := raterIndex(raters)
	type cell struct {
		grade int64
		ok    bool
	}
	// Pivot: each distinct item gets a row of len(names) cells, in one
	// slice; items are grouped by their bytes (no string per row).
	n := items.Len()
	keyItems, err := nullsAsEmpty(env.Mem, items)
	if err != nil {
		return nil, err
	}
	defer keyItems.Release()
	itemGroups := table.NewGroups([]arrow.Array{keyItems}, n)
	var pivot []cell
	if d := items.Dictionary(); d != nil && d.Len() < n {
		// At most one item per dictionary value: sized once, not doubled
		// (at 10M rows the doubling held 320 MB for 160).
		pivot = make([]cell, 0, d.Len()*len(names))
	}
	distinct := map[int64]bool{}
	var last int64 // the grade of row i-1, in distinct
	for i := range n {
		grp, isNew := itemGroups.Add(i)
		if isNew {
			pivot = append(pivot, make([]cell, len(names))...)
		}
		r := raterOf(i)
		if grades.IsNull(i) {
			return nil, fmt.Errorf("row %d: %s is empty", i+1, s.grade)
		}
		c := &pivot[grp*len(names)+r]
		if c.ok {
			return nil, fmt.Errorf("item %s has more than one grade from %s: de-duplicate first", items.Value(i), names[r])
		}
		*c = cell{grades.Value(i), true}
		if c.grade == last && i > 0 { // the last row's: counted (a map lookup a row was 0.2 s at 10M)
			continue
		}
		last = c.grade
		if distinct[c.grade] {
			continue
		}
		if distinct[c.grade] = true; len(distinct) > s.maxGrades {
			return nil, fmt.Errorf("%s has more than %d distinct values (max_grades): are these grades?", s.grade, s.maxGrades)
		}
	}
	itemOf := func(g int) string { return items.Value(itemGroups.First(g)) }
	order := sortedGroups(itemGroups.Len(), itemOf)
	idOf := func(k int) string { return itemOf(order[k]) }
	// The pivot's rows put in item order, in place: what follows reads
	// them in that order, from one pass (at 10M rows reading them through
	// order was a cache miss a cell, 6 s).
	permuteRows(pivot, len(names), order)
	cellsOf := func(k int) []cell { return pivot[k*len(names) : (k+1)*len(names)] }

	// The wide table is built while the items are compared: both only
	// read the pivot, and each took a core's half second at 10M rows.
	var wide arrow.RecordBatch
	var wideErr error
	building := safe.NewGroup(nil)
	building.Go(func() {
		wide, wideErr = s.wideTable(ctx, env, keyItems, names, len(order), func(k int) int { return itemGroups.First(order[k]) }, func(k, r int) (int64, bool) { c := cellsOf(k)[r]; return c.grade, c.ok })
	})
	var disagree []int
	var missID, missRater []string
	type pairKey struct {
		a, b   int
		ga, gb int64
	}
	counts := map[pairKey]int64{}
	for n := range order {
		cells := cellsOf(n)
		var first *cell // the first present rater's grade (grades may be negative)
		differ := false
		for r, c := range cells {
			if !c.ok {
				missID = append(missID, idOf(n))
				missRater = append(missRater, names[r])
				differ = differ || s.missingDisagrees
				continue
			}
			if first == nil {
				first = &cells[r]
			} else if c.grade != first.grade {
				differ = true
			}
			for b := r + 1; b < len(cells); b++ {
				if cells[b].ok {
					counts[pairKey{r, b, c.grade, cells[b].grade}]++
				}
			}
		}
		if differ {
			disagree = append(disagree, n)
		}
	}
	if err := building.Wait(); err != nil {
		panic(err) // the wide table's panic, raised in the stage's goroutine
	}
	if wideErr != nil {
		return nil, wideErr
	}
	keys := make([]pairKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		x, y := keys[i], keys[j]
		if x.a != y.a {
			return x.a < y.a
		}
		if x.b != y.b {
			return x.b < y.b
		}
		if x.ga != y.ga {
			return x.ga < y.ga
		}
		return x.gb < y.gb
	})
	var ra, rb []string
	var ga, gb, cnt []int64
	for _, k := range keys {
		ra, rb = append(ra, names[k.a]), append(rb, names[k.b])
		ga, gb = append(ga, k.ga), append(gb, k.gb)
		cnt = append(cnt, counts[k])
	}
	m := env.Mem
	matrix := table.New(
		table.Strings(m, "rater_a", ra), table.Strings(m, "rater_b", rb),
		table.Int64s(m, "grade_a", ga, nil), table.Int64s(m, "grade_b", gb, nil),
		table.Int64s(m, "count", cnt, nil),
	)
	disagreements, err := table.Take(ctx, m, wide, disagree)
	if err != nil {
		return nil, err
	}
	missing := table.New(table.Strings(m, s.item, missID), table.Strings(m, s.rater, missRater))
	if len(disagree) > 0 {
		env.Log.Info("raters disagree", "items", len(disagree))
	}
	perPair := map[[2]int]map[[2]int64]int64{}
	for k, c := range counts {
		p := [2]int{k.a, k.b}
		if perPair[p] == nil {
			perPair[p] = map[[2]int64]int64{}
		}
		perPair[p][[2]int64{k.ga, k.gb}] = c
	}
	kappas, err := kappaTable(m, names, perPair, s.maxGrades)
	if err != nil {
		for _, r := range []arrow.RecordBatch{wide, matrix, disagreements, missing} {
			r.Release()
		}
		return nil, err
	}
	return &Result{Outputs: map[string]arrow.RecordBatch{
		"wide": wide, "matrix": matrix, "disagreements": disagreements, "missing": missing,
		"kappa": kappas,
	}}, nil
}

// kappaTable computes the agreement statistics of every pair of raters
// (a < b in name order, pairs without common items included with n = 0).
func kappaTable(m memory.Allocator, names []string, perPair map[[2]int]map[[2]int64]int64, maxGrades int) (arrow.RecordBatch, error) {
	var ra, rb []string
	var n []int64
	cols := make([]*array.Float64Builder, len(kappaStats))
	for i := range cols {
		cols[i] = array.NewFloat64Builder(m)
		defer cols[i].Release()
	}
	put := func(b *array.Float64Builder, v float64) {
		if math.IsNaN(v) {
			b.AppendNull()
			return
		}
		b.Append(v)
	}
	for a := range names {
		for b := a + 1; b < len(names); b++ {
			ag, _, err := kappa.Pairs(perPair[[2]int{a, b}], maxGrades)
			if err != nil {
				return nil, fmt.Errorf("raters %s and %s: %w", names[a], names[b], err)
			}
			ra, rb = append(ra, names[a]), append(rb, names[b])
			n = append(n, int64(ag.N))
			put(cols[0], ag.Observed)
			for i, e := range []kappa.Estimate{ag.Unweighted, ag.Linear, ag.Quadratic} {
				put(cols[1+3*i], e.Kappa)
				put(cols[2+3*i], e.Lo)
				put(cols[3+3*i], e.Hi)
			}
		}
	}
	out := []table.Column{table.Strings(m, "rater_a", ra), table.Strings(m, "rater_b", rb), table.Int64s(m, "n", n, nil)}
	for i, name := range kappaStats {
		out = append(out, table.Column{Name: name, Array: cols[i].NewArray()})
	}
	return table.New(out...), nil
}

// wideTable builds the item column (the cells of items at row(k), a
// dictionary column's codes only) and one grade column per rater
// straight from the pivot (no slice of grades in between).
func (s *crossCheck) wideTable(ctx context.Context, env *Env, items arrow.Array, names []string, n int, row func(item int) int, grade func(item, rater int) (int64, bool)) (arrow.RecordBatch, error) {
	rows := make([]int, n)
	for k := range rows {
		rows[k] = row(k)
	}
	ids, err := table.TakeColumn(ctx, env.Mem, items, rows)
	if err != nil {
		return nil, err
	}
	cols := []table.Column{{Name: s.item, Array: ids}}
	for r, name := range names {
		cols = append(cols, table.Int64sFunc(env.Mem, name, n, func(k int) (int64, bool) { return grade(k, r) }))
	}
	return table.New(cols...), nil
}

// permuteRows moves the rows of width cells of rows so that row k holds
// what row order[k] held, following each cycle of the permutation in
// place.
func permuteRows[T any](rows []T, width int, order []int) {
	done := make([]bool, len(order))
	tmp := make([]T, width)
	row := func(k int) []T { return rows[k*width : (k+1)*width] }
	for start := range order {
		if done[start] {
			continue
		}
		copy(tmp, row(start))
		k := start
		for {
			done[k] = true
			src := order[k]
			if src == start {
				copy(row(k), tmp)
				break
			}
			copy(row(k), row(src))
			k = src
		}
	}
}

// raterIndex returns the raters' names in order and each row's position
// among them (a dictionary column's rows by their codes: no string per row).
func raterIndex(raters *table.StringCells) ([]string, func(i int) int) {
	idx := map[string]int{}
	dict := raters.Dictionary()
	if dict != nil && dict.Len() < raters.Len() {
		used := make([]bool, dict.Len())
		nulls := false
		for i := range raters.Len() {
			if raters.IsNull(i) {
				nulls = true
			} else {
				used[raters.Code(i)] = true
			}
		}
		for k, u := range used {
			if u {
				idx[dict.Value(k)] = 0
			}
		}
		if nulls {
			idx[""] = 0
		}
		names := slices.Sorted(maps.Keys(idx))
		for i, n := range names {
			idx[n] = i
		}
		byCode := make([]int, dict.Len())
		for k := range byCode {
			byCode[k] = idx[dict.Value(k)]
		}
		return names, func(i int) int {
			if raters.IsNull(i) {
				return idx[""]
			}
			return byCode[raters.Code(i)]
		}
	}
	for i := range raters.Len() {
		idx[raters.Value(i)] = 0
	}
	names := slices.Sorted(maps.Keys(idx))
	for i, n := range names {
		idx[n] = i
	}
	return names, func(i int) int { return idx[raters.Value(i)] }
}

// nullsAsEmpty is the item column with a null item as the item "" (its
// Value), as the pivot has always keyed items: the column itself
// (retained) when it has no nulls, else a plain copy.
func nullsAsEmpty(mem memory.Allocator, items *table.StringCells) (arrow.Array, error) {
	if items.NullN() == 0 {
		items.Array().Retain()
		return items.Array(), nil
	}
	c, err := table.StringsFunc(mem, "", items.Len(), func(k int) (string, bool) { return items.Value(k), true })
	return c.Array, err
}

// sortedGroups returns the groups 0..n-1 in the order of their items. It
// sorts on each item's first 8 bytes held beside the group number, and
// compares whole items only on a tie: at millions of items, comparing
// strings scattered through a gigabyte of column is a cache miss a time.
// The entries are first put in buckets by their top 16 bits, in place
// (American flag sort), and each bucket sorted on its own: buckets that
// fit in the cache, where one sort of 5M entries did not (4 s at 10M rows).
// The prefixes are read and the buckets sorted on every core (each bucket
// by one), which gives the order of one core.
func sortedGroups(n int, itemOf func(int) string) []int {
	return sortedGroupsIn(n, itemOf, max(1, min(runtime.GOMAXPROCS(0), n/(64<<10))))
}

// sortedGroupsIn is sortedGroups in parts parts.
func sortedGroupsIn(n int, itemOf func(int) string, parts int) []int {
	es := make([]itemEntry, n)
	inParts(parts, func(p int) {
		for g := p * n / parts; g < (p+1)*n/parts; g++ {
			var prefix uint64
			item := itemOf(g)
			for i := range 8 {
				prefix <<= 8
				if i < len(item) {
					prefix |= uint64(item[i])
				}
			}
			es[g] = itemEntry{prefix, g}
		}
	})
	starts := bucketSort(es)
	// Part p sorts the buckets that start in its share of the entries.
	inParts(parts, func(p int) {
		lo, _ := slices.BinarySearch(starts[:len(starts)-1], p*n/parts)
		hi, _ := slices.BinarySearch(starts[:len(starts)-1], (p+1)*n/parts)
		if p == parts-1 {
			hi = len(starts) - 1
		}
		for b := lo; b < hi; b++ {
			slices.SortFunc(es[starts[b]:starts[b+1]], func(a, b itemEntry) int {
				if a.prefix != b.prefix {
					return cmp.Compare(a.prefix, b.prefix)
				}
				return strings.Compare(itemOf(a.group), itemOf(b.group))
			})
		}
	})
	order := make([]int, n)
	for i, e := range es {
		order[i] = e.group
	}
	return order
}

// inParts runs work(0..parts-1), each on a goroutine of its own; a panic
// in one is raised again here, in the stage's goroutine.
func inParts(parts int, work func(p int)) {
	g := safe.NewGroup(nil)
	for p := range parts {
		g.Go(func() { work(p) })
	}
	if err := g.Wait(); err != nil {
		panic(err)
	}
}

// itemEntry is an item's first 8 bytes and its group.
type itemEntry struct {
	prefix uint64
	group  int
}

// bucketSort puts es in order of their prefixes' top 16 bits, in place,
// and returns where each bucket starts (and, last, len(es)).
func bucketSort(es []itemEntry) []int {
	const buckets = 1 << 16
	top := func(e itemEntry) int { return int(e.prefix >> 48) }
	starts := make([]int, buckets+1)
	for _, e := range es {
		starts[top(e)+1]++
	}
	for b := range buckets {
		starts[b+1] += starts[b]
	}
	next := slices.Clone(starts[:buckets]) // the next place to fill in each bucket
	for b := range buckets {
		for next[b] < starts[b+1] {
			e := es[next[b]]
			if t := top(e); t != b { // swap it into its bucket
				es[next[b]], es[next[t]] = es[next[t]], e
				next[t]++
				continue
			}
			next[b]++
		}
	}
	return starts
}
