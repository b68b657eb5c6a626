package stages

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/kneepipe/kneepipe/internal/table"
)

// The split stage assigns every row a split by hashing an invariant key,
// the way TFDS and Google's data-preparation guidance do, rather than by a
// random permutation (which moves images whenever the set changes).
//
// Rows are grouped by union-find over their group keys: two rows sharing a
// value in any of the `groups` columns are in one component. Each row has
// its own key, the value of the first `groups` column it has a value in
// (so with [patient, near_group, file_id] a row's own key is its patient).
// A component's key is the least own key of its members, ordered by column
// rank, then byte order of the value. The component's split is a function
// of sha256(salt, key) alone. Hence:
//   - an image in a group of its own gets a split that depends only on its
//     own key, whatever other images exist;
//   - adding or removing images that share no group value with an image
//     never moves it;
//   - an image can move only when its component changes key: a new image
//     joins it with a smaller key (for instance a near-duplicate that links
//     two patients), or a removed image took the least key with it. The
//     component's `split_group` column is that key, so a consumer can diff it.
func splitKind() Kind {
	return Kind{
		Name: "split",
		Doc: "Gives every row a split (train/val/test by default), group-pure and stable: rows sharing a value in any `groups` column are one component " +
			"(union-find); the component's key is its least own key (a row's own key is its first non-empty `groups` column, by column order, then byte order), " +
			"and its split is a function of sha256(salt, key) alone. An image alone in its group depends only on its own key; " +
			"adding or removing images that share no group value with it never moves it. Stratified by grade in expectation; `shares` shows the realised shares.",
		Inputs: []Port{{"rows", "rows with the group columns and the grade"}},
		Outputs: []Port{
			{"rows", "the input rows with `split` and `split_group` (the component's key, column=value) columns"},
			{"shares", "split, grade, count, share: the realised share of each grade's rows per split"},
		},
		Params: []Param{
			{Name: "groups", Type: Strings, Default: []string{"file_id"}, Doc: "group key columns, the most invariant first (e.g. [patient, near_group, file_id]); a null or empty value links nothing"},
			{Name: "optional_groups", Type: Strings, Default: []string{}, Doc: "group columns used only when the input has them (e.g. near_group from a near-duplicate stage)"},
			{Name: "splits", Type: Strings, Default: []string{"train", "val", "test"}, Doc: "split names, in the order their hash intervals are laid out"},
			{Name: "fractions", Type: Strings, Default: []string{"0.8", "0.1", "0.1"}, Doc: "share of each split, decimals summing to 1; changing them moves images between neighbouring splits"},
			{Name: "salt", Type: String, Default: "kneepipe", Doc: "hashed with each key; a new salt draws a new split"},
			{Name: "grade", Type: String, Default: "severity", Doc: "int64 grade column for the shares (empty: no shares)"},
			{Name: "item", Type: String, Default: "file_id", Tuning: true, Doc: "column naming an image: a rerun warns of images whose split changed (their group did), comparing with the last run's record under --cache"},
		},
		New:      newSplit,
		Schema:   splitSchema,
		RunStats: []string{"moved"},
	}
}

// splitSchema follows Run: split and group set as string columns; the
// shares table is fixed.
func splitSchema(p Params, in map[string]Schema) (map[string]Schema, error) {
	for i, g := range p.Strings("groups") {
		if err := need(in, "rows", "groups", i+1, g, nil); err != nil {
			return nil, err
		}
	}
	if g := p.Str("grade"); g != "" {
		if err := need(in, "rows", "grade", 0, g, Int64Type); err != nil {
			return nil, err
		}
	}
	rows := in["rows"].Set(Col{"split", StringType}).Set(Col{"split_group", StringType})
	shares := Closed(Col{"split", StringType}, Col{"grade", Int64Type}, Col{"count", Int64Type}, Col{"share", Float64Type})
	return map[string]Schema{"rows": rows, "shares": shares}, nil
}

func newSplit(p Params) (Stage, error) {
	names, fr := p.Strings("splits"), p.Strings("fractions")
	if len(names) == 0 {
		return nil, fmt.Errorf("splits: name at least one split")
	}
	if len(fr) != len(names) {
		return nil, fmt.Errorf("fractions: %d given for %d splits", len(fr), len(names))
	}
	seen := map[string]bool{}
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, "./\\") || seen[n] {
			return nil, fmt.Errorf("splits: %q must be unique, non-empty and free of '.', '/' and '\\'", n)
		}
		seen[n] = true
	}
	bounds := make([]float64, len(fr))
	sum := 0.0
	for i, s := range fr {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
			return nil, fmt.Errorf("fractions: %q is not a number between 0 and 1", s)
		}
		sum += f
		bounds[i] = sum
	}
	if math.Abs(sum-1) > 1e-9 {
		return nil, fmt.Errorf("fractions: they sum to %g, want 1", sum)
	}
	bounds[len(bounds)-1] = 1
	groups := append(slices.Clone(p.Strings("groups")), p.Strings("optional_groups")...)
	if len(p.Strings("groups")) == 0 {
		return nil, fmt.Errorf("groups: name at least one column")
	}
	for i, g := range groups {
		if slices.Contains(groups[:i], g) {
			return nil, fmt.Errorf("groups: column %q named twice", g)
		}
	}
	return &split{
		required: p.Strings("groups"), optional: p.Strings("optional_groups"),
		names: names, bounds: bounds, salt: p.Str("salt"), grade: p.Str("grade"), item: p.Str("item"),
	}, nil
}

type split struct {
	required, optional []string
	names              []string
	bounds             []float64 // cumulative upper bounds of each split's hash interval
	salt               string
	grade              string
	item               string
}

// splitKey is one group value: the column's rank in `groups`, and the value.
type splitKey struct {
	rank  int
	value string
}

func (k splitKey) less(o splitKey) bool {
	return cmp.Or(cmp.Compare(k.rank, o.rank), strings.Compare(k.value, o.value)) < 0
}

func (s *split) Run(ctx context.Context, env *Env, in map[string]arrow.RecordBatch) (*Result, error) {
	rows, err := input(in, "rows")
	if err != nil {
		return nil, err
	}
	var names []string
	var cols []arrow.Array
	for _, g := range s.required {
		idx, err := table.Index(rows, g)
		if err != nil {
			return nil, fmt.Errorf("groups: %w", err)
		}
		names, cols = append(names, g), append(cols, rows.Column(idx))
	}
	for _, g := range s.optional {
		if idx, err := table.Index(rows, g); err == nil {
			names, cols = append(names, g), append(cols, rows.Column(idx))
		}
	}
	n := int(rows.NumRows())
	keys := make([][]splitKey, n) // each row's group values, by rank
	for i := range n {
		for r, c := range cols {
			if c.IsNull(i) {
				continue
			}
			if v := c.ValueStr(i); v != "" {
				keys[i] = append(keys[i], splitKey{r, v})
			}
		}
		if len(keys[i]) == 0 {
			return nil, fmt.Errorf("rows: row %d has no value in any group column (%s)", i+1, strings.Join(names, ", "))
		}
	}
	comp := components(keys)
	splitOf := make([]string, n)
	groupOf := make([]string, n)
	borrowed := 0 // rows whose component key is another row's own key
	for i := range n {
		k := comp[i]
		if k != keys[i][0] {
			borrowed++
		}
		groupOf[i] = names[k.rank] + "=" + k.value
		splitOf[i] = s.assign(groupOf[i])
	}
	if err := checkPure(names, keys, splitOf); err != nil {
		return nil, err
	}
	shares, warnings, err := s.shares(env, rows, splitOf)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		env.Log.Warn("split", "problem", w)
	}
	var items []string
	if col, err := table.StringCol(rows, s.item); err == nil && s.item != "" {
		items = make([]string, n)
		for i := range n {
			items[i] = col.Value(i)
		}
	}
	moved := s.checkMoves(env, items, splitOf)
	out := table.Columns(rows)
	out = table.Set(out, table.Strings(env.Mem, "split", splitOf))
	out = table.Set(out, table.Strings(env.Mem, "split_group", groupOf))
	distinct := map[string]bool{}
	for _, g := range groupOf {
		distinct[g] = true
	}
	// borrowed rows' split is not their own key's: a later change to the
	// group that links them can move them (see splitKind).
	env.Log.Info("split", "rows", n, "groups", len(distinct), "borrowed", borrowed)
	return &Result{
		Outputs:  map[string]arrow.RecordBatch{"rows": table.New(out...), "shares": shares},
		Stats:    map[string]int64{"groups": int64(len(distinct)), "borrowed": int64(borrowed), "moved": int64(moved)},
		Warnings: warnings,
	}, nil
}

// assign maps a component key to a split: the first 53 bits of
// sha256(len(salt) ":" salt key) as a fraction in [0, 1), placed in the
// cumulative intervals of the fractions.
func (s *split) assign(key string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s%s", len(s.salt), s.salt, key)
	u := float64(binary.BigEndian.Uint64(h.Sum(nil))>>11) / (1 << 53)
	for i, b := range s.bounds {
		if u < b {
			return s.names[i]
		}
	}
	return s.names[len(s.names)-1]
}

// components unions rows that share a group value and returns, per row,
// its component's key: the least own key (a row's first group value) of
// its members.
func components(keys [][]splitKey) []splitKey {
	parent := make([]int, len(keys))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	owner := map[splitKey]int{}
	for i, ks := range keys {
		for _, k := range ks {
			if j, ok := owner[k]; ok {
				parent[find(i)] = find(j)
			} else {
				owner[k] = i
			}
		}
	}
	least := map[int]splitKey{}
	for i, ks := range keys {
		r := find(i)
		if cur, ok := least[r]; !ok || ks[0].less(cur) {
			least[r] = ks[0]
		}
	}
	out := make([]splitKey, len(keys))
	for i := range keys {
		out[i] = least[find(i)]
	}
	return out
}

// checkPure verifies the stage's promise on its own output: every value of
// every group column lies in one split.
func checkPure(names []string, keys [][]splitKey, splitOf []string) error {
	first := map[splitKey]int{}
	for i, ks := range keys {
		for _, k := range ks {
			j, ok := first[k]
			if !ok {
				first[k] = i
				continue
			}
			if splitOf[j] != splitOf[i] {
				return fmt.Errorf("split is not group-pure: %s %q is in %s (row %d) and %s (row %d)", names[k.rank], k.value, splitOf[j], j+1, splitOf[i], i+1)
			}
		}
	}
	return nil
}

// shares tallies rows per split and grade, each as a share of the grade's
// rows, and warns of a split lacking a grade the data has.
func (s *split) shares(env *Env, rows arrow.RecordBatch, splitOf []string) (arrow.RecordBatch, []string, error) {
	type cell struct {
		split string
		grade int64
	}
	counts := map[cell]int64{}
	perGrade := map[int64]int64{}
	if s.grade != "" {
		grades, err := table.Int64Col(rows, s.grade)
		if err != nil {
			return nil, nil, fmt.Errorf("grade: %w", err)
		}
		for i := range grades.Len() {
			if grades.IsNull(i) {
				return nil, nil, fmt.Errorf("rows: row %d: %s is empty", i+1, s.grade)
			}
			counts[cell{splitOf[i], grades.Value(i)}]++
			perGrade[grades.Value(i)]++
		}
	}
	gradeList := slices.Sorted(maps.Keys(perGrade))
	sb := array.NewStringBuilder(env.Mem)
	defer sb.Release()
	gb := array.NewInt64Builder(env.Mem)
	defer gb.Release()
	cb := array.NewInt64Builder(env.Mem)
	defer cb.Release()
	fb := array.NewFloat64Builder(env.Mem)
	defer fb.Release()
	var warnings []string
	for _, sp := range s.names {
		var lacking []string
		for _, g := range gradeList {
			c := counts[cell{sp, g}]
			if c == 0 {
				lacking = append(lacking, fmt.Sprintf("%d (%d rows in all)", g, perGrade[g]))
			}
			sb.Append(sp)
			gb.Append(g)
			cb.Append(c)
			fb.Append(float64(c) / float64(perGrade[g]))
		}
		if len(lacking) > 0 {
			warnings = append(warnings, fmt.Sprintf("split %s has no row of %s %s", sp, s.grade, strings.Join(lacking, ", ")))
		}
	}
	return table.New(
		table.Column{Name: "split", Array: sb.NewArray()},
		table.Column{Name: "grade", Array: gb.NewArray()},
		table.Column{Name: "count", Array: cb.NewArray()},
		table.Column{Name: "share", Array: fb.NewArray()},
	), warnings, nil
}
