package stages

import (
	"context"
	"fmt"
	"runtime"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/neardup"
	"github.com/kneepipe/kneepipe/internal/table"
)

// nearDuplicatesKind groups images whose fingerprints (internal/neardup)
// verify as copies of one another.
func nearDuplicatesKind() Kind {
	return Kind{
		Name:   "near-duplicates",
		Doc:    "Groups near-duplicate images (re-encoded, resized, cropped a few per cent, contrast-shifted, JPEG-compressed) from their fingerprints. Every pair is verified by aligned correlation; every member of a group was verified against its representative (the largest image). Rows with the same id are one image (fingerprinted once); rows without a fingerprint are in no group.",
		Inputs: []Port{{"rows", "one row per image, with a fingerprint column (neardup.Fingerprint.MarshalBinary)"}},
		Outputs: []Port{
			{"rows", "the input rows without the fingerprint column, keeping of each group only its representative's rows, with near_group (the group it stands for; null for an image in no group), in input order"},
			{"groups", "one row per member of each group: group, id, path, similarity to the representative (1 for it), in group order"},
			{"pairs", "every verified pair: id_a, path_a, id_b, path_b, similarity, in input order"},
		},
		Params: []Param{
			{Name: "fingerprint", Type: String, Default: "fingerprint", Doc: "binary column holding the fingerprints"},
			{Name: "id", Type: String, Default: "file_id", Doc: "column naming each image in the outputs"},
			{Name: "path", Type: String, Default: "relative_path", Doc: "column with each image's path, copied to the outputs"},
			{Name: "min_similarity", Type: String, Default: strconv.FormatFloat(neardup.DefaultThreshold, 'f', -1, 64), Doc: "aligned correlation a pair must reach, in (0, 1]; the default was tuned on real knee and chest radiographs"},
		},
		New: func(p Params) (Stage, error) {
			t, err := strconv.ParseFloat(p.Str("min_similarity"), 64)
			if err != nil || !(t > 0 && t <= 1) {
				return nil, fmt.Errorf("min_similarity: %q is not a number in (0, 1]", p.Str("min_similarity"))
			}
			return &nearDuplicates{fp: p.Str("fingerprint"), id: p.Str("id"), path: p.Str("path"), threshold: t}, nil
		},
		Schema: func(p Params, in map[string]Schema) (map[string]Schema, error) {
			if err := need(in, "rows", "fingerprint", 0, p.Str("fingerprint"), BinaryType); err != nil {
				return nil, err
			}
			for _, c := range []string{"id", "path"} {
				if err := need(in, "rows", c, 0, p.Str(c), StringType); err != nil {
					return nil, err
				}
			}
			rows, err := withoutColumn(in["rows"], p.Str("fingerprint")).Append(Col{colNearGroup, Int64Type})
			if err != nil {
				return nil, &InputError{Input: "rows", Msg: err.Error()}
			}
			return map[string]Schema{
				"rows":   rows,
				"groups": Closed(Col{"group", Int64Type}, Col{p.Str("id"), StringType}, Col{p.Str("path"), StringType}, Col{"similarity", Float64Type}),
				"pairs": Closed(Col{p.Str("id") + "_a", StringType}, Col{p.Str("path") + "_a", StringType},
					Col{p.Str("id") + "_b", StringType}, Col{p.Str("path") + "_b", StringType}, Col{"similarity", Float64Type}),
			}, nil
		},
	}
}

type nearDuplicates struct {
	fp, id, path string
	threshold    float64
}

func (s *nearDuplicates) Run(ctx context.Context, env *Env, in map[string]arrow.RecordBatch) (*Result, error) {
	rows, err := input(in, "rows")
	if err != nil {
		return nil, err
	}
	idx, err := table.Index(rows, s.fp)
	if err != nil {
		return nil, err
	}
	col, ok := rows.Column(idx).(*array.Binary)
	if !ok {
		return nil, fmt.Errorf("column %q is %s, want binary", s.fp, rows.Column(idx).DataType())
	}
	ids, err := table.StringCol(rows, s.id)
	if err != nil {
		return nil, err
	}
	paths, err := table.StringCol(rows, s.path)
	if err != nil {
		return nil, err
	}
	// One fingerprint per id: rows sharing an id are one image.
	var fps []neardup.Fingerprint
	var rowOf []int                   // first input row of each fingerprint
	imageOf := make([]int, col.Len()) // fingerprint index of each row; -1: none
	seen := map[string]int{}
	for i := range col.Len() {
		imageOf[i] = -1
		if col.IsNull(i) {
			continue
		}
		if k, ok := seen[ids.Value(i)]; ok {
			imageOf[i] = k
			continue
		}
		var fp neardup.Fingerprint
		if err := fp.UnmarshalBinary(col.Value(i)); err != nil {
			return nil, fmt.Errorf("row %d (%s): column %q: %w", i+1, ids.Value(i), s.fp, err)
		}
		seen[ids.Value(i)] = len(fps)
		imageOf[i] = len(fps)
		fps = append(fps, fp)
		rowOf = append(rowOf, i)
	}
	opt := neardup.DefaultOptions()
	opt.Threshold, opt.Workers = s.threshold, runtime.GOMAXPROCS(0)
	res, err := neardup.Find(ctx, fps, opt)
	if err != nil {
		return nil, err
	}
	var gid []int64
	var gids, gpaths []string
	var gsim []float64
	groupOf := make([]int64, len(fps)) // 0: in no group
	copyOf := make([]bool, len(fps))   // a member other than the representative
	for _, g := range res.Groups {
		for k, m := range g.Members {
			r := rowOf[m.Index]
			groupOf[m.Index], copyOf[m.Index] = int64(g.ID), k > 0
			gid, gids, gpaths, gsim = append(gid, int64(g.ID)), append(gids, ids.Value(r)), append(gpaths, paths.Value(r)), append(gsim, m.Similarity)
		}
	}
	var pa, pb []int
	var psim []float64
	for _, p := range res.Pairs {
		pa, pb, psim = append(pa, rowOf[p.A]), append(pb, rowOf[p.B]), append(psim, p.Similarity)
	}
	kept, err := s.keep(ctx, env, rows, idx, imageOf, groupOf, copyOf)
	if err != nil {
		return nil, err
	}
	pick := func(c *table.StringCells, r []int) []string {
		out := make([]string, len(r))
		for k, i := range r {
			out[k] = c.Value(i)
		}
		return out
	}
	mem := env.Mem
	groups := table.New(table.Int64s(mem, "group", gid, nil), table.Strings(mem, s.id, gids), table.Strings(mem, s.path, gpaths), float64s(mem, "similarity", gsim))
	pairs := table.New(table.Strings(mem, s.id+"_a", pick(ids, pa)), table.Strings(mem, s.path+"_a", pick(paths, pa)),
		table.Strings(mem, s.id+"_b", pick(ids, pb)), table.Strings(mem, s.path+"_b", pick(paths, pb)), float64s(mem, "similarity", psim))
	env.Log.Info("near-duplicates", "images", len(fps), "groups", len(res.Groups), "pairs", len(res.Pairs))
	return &Result{Outputs: map[string]arrow.RecordBatch{"rows": kept, "groups": groups, "pairs": pairs}}, nil
}

// colNearGroup is the column of the rows output naming the group a row
// stands for.
const colNearGroup = "near_group"

// keep builds the rows output: every row but the copies' (a group's
// members other than its representative), without the fingerprint column
// (4.4 KB a row, needed no further), with near_group.
func (s *nearDuplicates) keep(ctx context.Context, env *Env, rows arrow.RecordBatch, fpCol int, imageOf []int, groupOf []int64, copyOf []bool) (arrow.RecordBatch, error) {
	var idx []int
	var group []int64
	var valid []bool
	for i, k := range imageOf {
		if k >= 0 && copyOf[k] {
			continue
		}
		idx = append(idx, i)
		g := int64(0)
		if k >= 0 {
			g = groupOf[k]
		}
		group, valid = append(group, g), append(valid, g > 0)
	}
	taken, err := table.TakeSorted(ctx, env.Mem, rows, idx)
	if err != nil {
		return nil, err
	}
	defer taken.Release()
	var cols []table.Column
	for c, col := range table.Columns(taken) {
		if c == fpCol {
			col.Array.Release()
			continue
		}
		cols = append(cols, col)
	}
	return table.New(append(cols, table.Int64s(env.Mem, colNearGroup, group, valid))...), nil
}

// withoutColumn is the schema less one column.
func withoutColumn(s Schema, name string) Schema {
	out := s
	out.Cols = nil
	for _, c := range s.Cols {
		if c.Name != name {
			out.Cols = append(out.Cols, c)
		}
	}
	return out
}

// float64s builds a non-null float64 column.
func float64s(mem memory.Allocator, name string, vals []float64) table.Column {
	b := array.NewFloat64Builder(mem)
	defer b.Release()
	b.AppendValues(vals, nil)
	return table.Column{Name: name, Array: b.NewArray()}
}
