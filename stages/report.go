package stages

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/kneepipe/kneepipe/internal/imagecache"
	"github.com/kneepipe/kneepipe/internal/report"
	"github.com/kneepipe/kneepipe/internal/source"
	"github.com/kneepipe/kneepipe/internal/table"
)

// maxImageBytes bounds what the report reads of one object.
const maxImageBytes = 256 << 20

// maxPixelsDefault is max_pixels' default in fetch-hash and the report,
// the report's decoding bound: 50 megapixels, far above any radiograph.
const maxPixelsDefault = report.DefaultMaxPixels

func reportKind() Kind {
	return Kind{
		Name: "report",
		Doc: "Writes the EDA report: one self-contained report.html (inline CSS and SVG charts, thumbnails as data: URIs, no network) and summary.json. " +
			"Counts per rater and grade, in-rater duplicates side by side, agreement heatmaps and kappas, every disagreement, image sizes per grade with a warning when a property nearly determines the grade, optionally the mean image per grade, and with the splits input a leakage audit. " +
			"Fetches only the images it shows (all of them with mean_images), checked against size and sha256, and keeps what it derives from each (by SHA-256, in the stage's state under --cache) so that a rerun fetches only new images.",
		Source: true,
		Inputs: []Port{
			{"rows", "graded rows before de-duplication (map-severity's rows): item, rater, grade; key, path, label, size, sha256 and the PNG header columns width, height, bit_depth, color_type are used when present"},
		},
		OptionalInputs: []Port{
			{"matrix", "cross-check's matrix (with kappa and disagreements: the agreement sections; leave all three out for a set with one rater)"},
			{"kappa", "cross-check's kappa"},
			{"disagreements", "cross-check's disagreements (item column plus one grade column per rater)"},
			{"excluded", "an exclusions stage's output (key, reason, detail; relative_path when present): counts per reason, and the objects no other section shows (rejected, failed)"},
			{"splits", "a split stage's rows (split, split_group, grade; the split_keys columns when present): the leakage audit, recomputed from these rows: counts and per-grade shares per split, and every group value in one split"},
			{"near_groups", "near-duplicate groups (near-duplicates' groups: group, item, path, similarity), shown side by side with thumbnails, capped like the duplicate groups"},
		},
		Outputs: []Port{{"files", "name, content: report.html and summary.json (write with an artifact of format files)"}},
		Params: []Param{
			{Name: "title", Type: String, Default: "Dataset report", Doc: "the report's title"},
			{Name: "item", Type: String, Default: "file_id", Doc: "column identifying an image across raters"},
			{Name: "rater", Type: String, Default: "expert", Doc: "column naming the rater (required with the cross-check inputs; without them and without the column, every row is one rater's)"},
			{Name: "grade", Type: String, Default: "severity", Doc: "int64 grade column"},
			{Name: "label", Type: String, Default: "severity_label", Doc: "grade label column (used when present)"},
			{Name: "key", Type: String, Default: "key", Doc: "object key column to fetch thumbnails by (used when present)"},
			{Name: "path", Type: String, Default: "relative_path", Doc: "path column shown under thumbnails (used when present)"},
			{Name: "thumb_width", Type: Int, Default: int64(160), Min: 32, Max: 1024, Doc: "thumbnail width in pixels"},
			{Name: "mean_images", Type: Bool, Default: false, Doc: "decode every image and show the mean image per grade"},
			{Name: "mean_size", Type: String, Default: "640x162", Doc: "WIDTHxHEIGHT canvas images are padded (bottom, right) or cropped to before averaging"},
			{Name: "warn_share", Type: Int, Default: int64(95), Min: 50, Max: 100, Doc: "percent: a property nearly determines the grade when a grade has one value in this share of its images (and the other grades do not), or a value one grade"},
			{Name: "warn_min_images", Type: Int, Default: int64(5), Min: 1, Max: 1 << 30, Doc: "least images of a grade (or value) for a warning"},
			{Name: "group_copies", Type: Int, Default: int64(4), Min: 1, Max: 100, Doc: "copies shown per duplicate group; the rest are counted (+N more)"},
			{Name: "groups", Type: Int, Default: int64(40), Min: 1, Max: 10000, Doc: "duplicate groups shown with thumbnails (only their images are fetched)"},
			{Name: "disagreements", Type: Int, Default: int64(80), Min: 1, Max: 10000, Doc: "disagreements shown with thumbnails (only their images are fetched)"},
			{Name: "table_rows", Type: Int, Default: int64(500), Min: 1, Max: 100000, Doc: "further duplicate groups, disagreements and excluded objects listed without thumbnails, each; the rest are counted (+N more)"},
			{Name: "max_pixels", Type: Int, Default: int64(maxPixelsDefault), Min: 1, Max: 1 << 40, Doc: "images whose header declares more pixels are not decoded (no thumbnail, a problem line instead)"},
			{Name: "split_keys", Type: Strings, Default: []string{"file_id", "patient", "near_group"}, Doc: "group columns of the splits input the audit checks, when present, besides split_group: each value must lie in one split"},
			{Name: "split_order", Type: Strings, Default: []string{"train", "val", "test"}, Doc: "splits shown first, in this order (even when empty); others follow by name"},
			{Name: "concurrency", Type: Int, Default: int64(16), Min: 1, Max: 256, Tuning: true, Doc: "parallel image downloads"},
			{Name: "attempts", Type: Int, Default: int64(4), Min: 1, Max: 20, Tuning: true, Doc: "tries per image, backing off exponentially between them"},
			{Name: "stall_timeout", Type: Duration, Default: 30 * time.Second, Tuning: true, Doc: "give up an attempt when no byte arrives for this long"},
		},
		Schema: reportSchema,
		New: func(p Params) (Stage, error) {
			w, h, err := report.ParseSize(p.Str("mean_size"))
			if err != nil {
				return nil, fmt.Errorf("mean_size: %w", err)
			}
			return &reportStage{p: p, retry: source.Retry{Attempts: int(p.Int("attempts")), Stall: p.Duration("stall_timeout")}, opt: report.Options{
				ThumbWidth:    int(p.Int("thumb_width")),
				MeanImages:    p.Bool("mean_images"),
				MeanWidth:     w,
				MeanHeight:    h,
				WarnShare:     float64(p.Int("warn_share")) / 100,
				WarnMinImages: int(p.Int("warn_min_images")),
				Concurrency:   int(p.Int("concurrency")),
				GroupCopies:   int(p.Int("group_copies")),
				Groups:        int(p.Int("groups")),
				Disagreements: int(p.Int("disagreements")),
				TableRows:     int(p.Int("table_rows")),
				MaxPixels:     p.Int("max_pixels"),
			}}, nil
		},
	}
}

// reportSchema checks the columns the report reads: the graded rows'
// item, rater (unless there is no cross-check and no such column: one
// rater) and grade, and each optional input wired.
func reportSchema(p Params, in map[string]Schema) (map[string]Schema, error) {
	cross, err := crossCheckWired(in)
	if err != nil {
		return nil, err
	}
	_, hasRater, _ := in["rows"].Lookup(p.Str("rater"))
	for _, c := range []struct {
		param string
		want  arrow.DataType
	}{{"item", StringType}, {"rater", StringType}, {"grade", Int64Type}} {
		if c.param == "rater" && !cross && !hasRater {
			continue
		}
		if err := need(in, "rows", c.param, 0, p.Str(c.param), c.want); err != nil {
			return nil, err
		}
	}
	// Columns used when present must, when present, have the type read.
	for _, c := range []struct {
		param, name string
		want        arrow.DataType
	}{
		{"label", p.Str("label"), StringType}, {"key", p.Str("key"), StringType}, {"path", p.Str("path"), StringType},
		{"", colSize, Int64Type}, {"", colSHA256, StringType}, {"", colWidth, Int64Type}, {"", colHeight, Int64Type},
		{"", colBitDepth, Int64Type}, {"", colColorType, Int64Type},
	} {
		if _, ok, _ := in["rows"].Lookup(c.name); ok {
			if err := need(in, "rows", c.param, 0, c.name, c.want); err != nil {
				return nil, err
			}
		}
	}
	if cross {
		if err := reportCrossCheckSchema(p, in); err != nil {
			return nil, err
		}
	}
	if err := excludedSchema(p, in); err != nil {
		return nil, err
	}
	if err := splitsSchema(p, in); err != nil {
		return nil, err
	}
	if err := nearGroupsSchema(p, in); err != nil {
		return nil, err
	}
	return map[string]Schema{"files": FilesSchema()}, nil
}

// crossCheckInputs are the report's inputs from a cross-check: all three
// or none (a set with one rater).
var crossCheckInputs = []string{"matrix", "kappa", "disagreements"}

// crossCheckWired says whether the cross-check's inputs are wired, and
// refuses some without the others.
func crossCheckWired(in map[string]Schema) (bool, error) {
	var given []string
	for _, port := range crossCheckInputs {
		if _, ok := in[port]; ok {
			given = append(given, port)
		}
	}
	if len(given) > 0 && len(given) < len(crossCheckInputs) {
		return false, fmt.Errorf("inputs matrix, kappa and disagreements come from one cross-check: wire all three or none (given: %s)", strings.Join(given, ", "))
	}
	return len(given) > 0, nil
}

// reportCrossCheckSchema checks matrix and kappa as cross-check declares them,
// and disagreements as the item column then int64 grade columns, one per
// rater.
func reportCrossCheckSchema(p Params, in map[string]Schema) error {
	for _, up := range []struct {
		port string
		s    Schema
	}{{"matrix", matrixSchema()}, {"kappa", kappaSchema()}} {
		for _, c := range up.s.Cols {
			if err := need(in, up.port, "", 0, c.Name, c.Type); err != nil {
				return err
			}
		}
	}
	if err := need(in, "disagreements", "item", 0, p.Str("item"), StringType); err != nil {
		return err
	}
	dis := in["disagreements"]
	for _, c := range dis.Cols {
		if c.Name != p.Str("item") && !sameType(Int64Type, c.Type) {
			return &InputError{Input: "disagreements", Msg: fmt.Sprintf("column %q is %s, want int64 grades (the item column, then one per rater)", c.Name, typeName(c.Type))}
		}
	}
	if dis.Open && !sameType(Int64Type, dis.Rest) {
		return &InputError{Input: "disagreements", Msg: fmt.Sprintf("further columns are %s, want int64 grades (the item column, then one per rater)", typeName(dis.Rest))}
	}
	return nil
}

// excludedSchema checks the optional excluded input: an exclusions
// stage's output.
func excludedSchema(p Params, in map[string]Schema) error {
	ex, ok := in["excluded"]
	if !ok {
		return nil
	}
	if err := need(in, "excluded", "key", 0, p.Str("key"), StringType); err != nil {
		return err
	}
	for _, name := range []string{"reason", "detail"} {
		if err := need(in, "excluded", "", 0, name, StringType); err != nil {
			return err
		}
	}
	if _, ok, _ := ex.Lookup(p.Str("path")); ok {
		return need(in, "excluded", "path", 0, p.Str("path"), StringType)
	}
	return nil
}

// nearGroupsSchema checks the optional near_groups input: a
// near-duplicates stage's groups.
func nearGroupsSchema(p Params, in map[string]Schema) error {
	if _, ok := in["near_groups"]; !ok {
		return nil
	}
	for _, c := range []Col{{"group", Int64Type}, {p.Str("item"), StringType}, {p.Str("path"), StringType}, {"similarity", Float64Type}} {
		if err := need(in, "near_groups", "", 0, c.Name, c.Type); err != nil {
			return err
		}
	}
	return nil
}

// splitsSchema checks the optional splits input: a split stage's rows.
func splitsSchema(p Params, in map[string]Schema) error {
	if _, ok := in["splits"]; !ok {
		return nil
	}
	for _, name := range []string{"split", "split_group"} {
		if err := need(in, "splits", "", 0, name, StringType); err != nil {
			return err
		}
	}
	return need(in, "splits", "grade", 0, p.Str("grade"), Int64Type)
}

// FilesSchema is a table of files, as an artifact of format files writes
// them.
func FilesSchema() Schema { return Closed(Col{"name", StringType}, Col{"content", BinaryType}) }

type reportStage struct {
	p     Params
	opt   report.Options
	retry source.Retry
}

// problemsLogged is how many report problems are logged one by one: a
// bucket of broken images must not give a log line per image.
const problemsLogged = 10

// logProblems logs the first report problems and counts the rest; run.json
// gets one warning with the count (the page shows each).
func logProblems(env *Env, problems []string) []string {
	for i, p := range problems {
		if i == problemsLogged {
			env.Log.Warn("report: more problems, not logged", "more", len(problems)-i)
			break
		}
		env.Log.Warn("report", "problem", p)
	}
	if len(problems) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("report: %d problems, such as images without a thumbnail (the page shows them; the log names the first %d)", len(problems), problemsLogged)}
}

// auditWarnings logs the leakage audit's findings (a leak as a warning; a
// split lacking a grade, which the split stage warns of already, as
// information) and gives run.json one warning for leaks.
func auditWarnings(env *Env, a *report.SplitAudit) []string {
	if a == nil {
		return nil
	}
	logged := 0
	for _, k := range a.Keys {
		for _, c := range k.Examples {
			if logged++; logged > problemsLogged {
				break
			}
			env.Log.Warn("leakage audit: a group value is in more than one split", "column", k.Column, "value", c.Value, "splits", len(c.Splits))
		}
	}
	for _, w := range a.Warnings {
		env.Log.Info("leakage audit", "warning", w)
	}
	if a.Leaks == 0 {
		return nil
	}
	return []string{fmt.Sprintf("report: leakage audit failed: %d group values are in more than one split (report.html lists them)", a.Leaks)}
}

func (s *reportStage) Run(ctx context.Context, env *Env, in map[string]arrow.RecordBatch) (*Result, error) {
	input, err := s.input(in)
	if err != nil {
		return nil, err
	}
	opt := s.opt
	if env.Store != nil {
		opt.Fetch = func(ctx context.Context, obj report.Object) ([]byte, error) { return s.fetch(ctx, env, obj) }
		if env.StateDir != "" {
			opt.CacheDir = filepath.Join(env.StateDir, "images")
		}
	}
	rep, err := report.Build(ctx, input, opt)
	if err != nil {
		return nil, err
	}
	warnings := logProblems(env, rep.Problems)
	warnings = append(warnings, auditWarnings(env, rep.Summary.Splits)...)
	page, err := rep.HTML()
	if err != nil {
		return nil, err
	}
	summary, err := rep.JSON()
	if err != nil {
		return nil, err
	}
	env.Log.Info("report written", "html_bytes", len(page), "thumbnails", rep.Summary.Thumbnails.Shown, "warnings", len(rep.Summary.Warnings))
	names := array.NewStringBuilder(env.Mem)
	defer names.Release()
	content := array.NewBinaryBuilder(env.Mem, arrow.BinaryTypes.Binary)
	defer content.Release()
	names.AppendValues([]string{"report.html", "summary.json"}, nil)
	content.AppendValues([][]byte{page, summary}, nil)
	files := table.New(table.Column{Name: "name", Array: names.NewArray()}, table.Column{Name: "content", Array: content.NewArray()})
	return &Result{Outputs: map[string]arrow.RecordBatch{"files": files}, Warnings: warnings}, nil
}

// fetch returns one image: from the image cache under --cache when it has
// it, else through the retrying reader; bytes that differ from the
// listing's size or from the SHA-256 fetch-hash computed are refused (and
// so retried).
func (s *reportStage) fetch(ctx context.Context, env *Env, obj report.Object) ([]byte, error) {
	if env.ImageCache == "" || !imagecache.ValidSum(obj.SHA256) {
		return s.fetchObject(ctx, env, obj)
	}
	// fetch-hash with keep_images has most likely filed the image already.
	data, _, err := imagecache.Cache{Dir: env.ImageCache}.Get(ctx, obj.SHA256, func(ctx context.Context) ([]byte, error) {
		return s.fetchObject(ctx, env, obj)
	})
	return data, err
}

// fetchObject reads one image from the bucket.
func (s *reportStage) fetchObject(ctx context.Context, env *Env, obj report.Object) ([]byte, error) {
	var data []byte
	attempts, err := s.retry.Read(ctx, env.Store, obj.Key, func(body io.Reader) error {
		var err error
		if data, err = io.ReadAll(io.LimitReader(body, maxImageBytes)); err != nil {
			return fmt.Errorf("read body: %w", err)
		}
		if obj.Size > 0 && int64(len(data)) != obj.Size {
			return fmt.Errorf("got %d bytes, listing says %d", len(data), obj.Size)
		}
		if obj.SHA256 != "" {
			if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != obj.SHA256 {
				return errors.New("SHA-256 differs from the one fetch-hash computed: body damaged in transit")
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w (%d attempts)", err, attempts)
	}
	return data, nil
}

// input reads the stage's tables into the report's model.
func (s *reportStage) input(in map[string]arrow.RecordBatch) (report.Input, error) {
	out := report.Input{Title: s.p.Str("title")}
	rows, err := input(in, "rows")
	if err != nil {
		return out, err
	}
	items, err := table.StringCol(rows, s.p.Str("item"))
	if err != nil {
		return out, err
	}
	_, cross := in["disagreements"]
	out.NoCrossCheck = !cross
	raters, err := table.StringCol(rows, s.p.Str("rater"))
	if _, idxErr := table.Index(rows, s.p.Str("rater")); err != nil && (cross || idxErr == nil) {
		return out, err
	}
	grades, err := table.Int64Col(rows, s.p.Str("grade"))
	if err != nil {
		return out, err
	}
	optional := func(name string) *table.StringCells {
		c, _ := table.StringCol(rows, name)
		return c
	}
	optInt := func(name string) *array.Int64 {
		c, _ := table.Int64Col(rows, name)
		return c
	}
	labels, keys, paths := optional(s.p.Str("label")), optional(s.p.Str("key")), optional(s.p.Str("path"))
	width, height, depth, ctype := optInt(colWidth), optInt(colHeight), optInt(colBitDepth), optInt(colColorType)
	sizes, shas := optInt(colSize), optional(colSHA256)
	for i := range int(rows.NumRows()) {
		if grades.IsNull(i) {
			return out, fmt.Errorf("rows: row %d: %s is empty", i+1, s.p.Str("grade"))
		}
		r := report.Row{Rater: oneRater, Item: items.Value(i), Grade: grades.Value(i)}
		if raters != nil {
			r.Rater = raters.Value(i)
		}
		if labels != nil {
			r.Label = labels.Value(i)
		}
		if keys != nil {
			r.Key = keys.Value(i)
		}
		if paths != nil {
			r.Path = paths.Value(i)
		}
		if sizes != nil && sizes.IsValid(i) {
			r.Size = sizes.Value(i)
		}
		if shas != nil {
			r.SHA256 = shas.Value(i)
		}
		if width != nil && height != nil && width.IsValid(i) && height.IsValid(i) {
			r.PNG, r.Width, r.Height = true, width.Value(i), height.Value(i)
			if depth != nil && depth.IsValid(i) {
				r.BitDepth = depth.Value(i)
			}
			if ctype != nil && ctype.IsValid(i) {
				r.ColorType = ctype.Value(i)
			}
		}
		out.Rows = append(out.Rows, r)
	}

	if cross {
		if err := crossCheckRows(in, s.p.Str("item"), &out); err != nil {
			return out, err
		}
	}
	if out.Excluded, err = excludedRows(in, s.p.Str("key"), s.p.Str("path")); err != nil {
		return out, err
	}
	if out.Splits, err = s.splitRows(in); err != nil {
		return out, err
	}
	out.NearGroups, err = nearGroupRows(in, s.p.Str("item"), s.p.Str("path"))
	return out, err
}

// nearGroupRows reads a near-duplicates stage's groups; nil (not known)
// when the input is not wired.
func nearGroupRows(in map[string]arrow.RecordBatch, itemCol, pathCol string) ([]report.NearMember, error) {
	g, ok := in["near_groups"]
	if !ok || g == nil {
		return nil, nil
	}
	ids, err := table.Int64Col(g, "group")
	if err != nil {
		return nil, fmt.Errorf("near_groups: %w", err)
	}
	items, err := table.StringCol(g, itemCol)
	if err != nil {
		return nil, fmt.Errorf("near_groups: %w", err)
	}
	paths, err := table.StringCol(g, pathCol)
	if err != nil {
		return nil, fmt.Errorf("near_groups: %w", err)
	}
	si, err := table.Index(g, "similarity")
	if err != nil {
		return nil, fmt.Errorf("near_groups: %w", err)
	}
	sims, ok := g.Column(si).(*array.Float64)
	if !ok {
		return nil, fmt.Errorf("near_groups: column \"similarity\" is %s, want float64", g.Column(si).DataType())
	}
	out := make([]report.NearMember, ids.Len())
	for i := range out {
		out[i] = report.NearMember{Group: ids.Value(i), Item: items.Value(i), Path: paths.Value(i), Similarity: sims.Value(i)}
	}
	return out, nil
}

// oneRater names the rater of a set without a rater column.
const oneRater = "all"

// crossCheckRows reads cross-check's matrix, kappa and disagreements.
func crossCheckRows(in map[string]arrow.RecordBatch, itemCol string, out *report.Input) error {
	matrix, err := input(in, "matrix")
	if err != nil {
		return err
	}
	mc, err := columns(matrix, matrixSchema())
	if err != nil {
		return fmt.Errorf("matrix: %w", err)
	}
	ma, mb := stringCells(mc[0]), stringCells(mc[1])
	ga, gb, cnt := mc[2].(*array.Int64), mc[3].(*array.Int64), mc[4].(*array.Int64)
	for i := range int(matrix.NumRows()) {
		out.Matrix = append(out.Matrix, report.Cell{
			RaterA: ma.Value(i), RaterB: mb.Value(i),
			GradeA: ga.Value(i), GradeB: gb.Value(i), Count: cnt.Value(i),
		})
	}

	if out.Kappas, err = kappaRows(in); err != nil {
		return err
	}

	dis, err := input(in, "disagreements")
	if err != nil {
		return err
	}
	disItems, err := table.StringCol(dis, itemCol)
	if err != nil {
		return fmt.Errorf("disagreements: %w", err)
	}
	var cols []*array.Int64
	for i, name := range table.Names(dis) {
		if name == itemCol {
			continue
		}
		c, ok := dis.Column(i).(*array.Int64)
		if !ok {
			return fmt.Errorf("disagreements: column %q is %s, want int64 grades", name, dis.Column(i).DataType())
		}
		out.Raters = append(out.Raters, name)
		cols = append(cols, c)
	}
	for i := range disItems.Len() {
		d := report.Disagreement{Item: disItems.Value(i), Grades: make([]*int64, len(cols))}
		for r, c := range cols {
			if c.IsValid(i) {
				g := c.Value(i)
				d.Grades[r] = &g
			}
		}
		out.Disagreements = append(out.Disagreements, d)
	}
	return nil
}

// splitRows reads a split stage's rows for the leakage audit; nil when
// the input is not wired.
func (s *reportStage) splitRows(in map[string]arrow.RecordBatch) (*report.SplitRows, error) {
	rec, ok := in["splits"]
	if !ok || rec == nil {
		return nil, nil
	}
	splits, err := table.StringCol(rec, "split")
	if err != nil {
		return nil, fmt.Errorf("splits: %w", err)
	}
	grades, err := table.Int64Col(rec, s.p.Str("grade"))
	if err != nil {
		return nil, fmt.Errorf("splits: %w", err)
	}
	out := &report.SplitRows{Order: s.p.Strings("split_order")}
	var cols []arrow.Array
	for i, name := range append([]string{"split_group"}, s.p.Strings("split_keys")...) {
		idx, err := table.Index(rec, name)
		if err != nil && i == 0 {
			return nil, fmt.Errorf("splits: %w", err)
		}
		if err == nil && !slices.Contains(out.Keys, name) {
			out.Keys, cols = append(out.Keys, name), append(cols, rec.Column(idx))
		}
	}
	out.Rows = make([]report.SplitRow, rec.NumRows())
	for i := range out.Rows {
		if splits.IsNull(i) || grades.IsNull(i) {
			return nil, fmt.Errorf("splits: row %d: split or %s is empty", i+1, s.p.Str("grade"))
		}
		r := report.SplitRow{Split: splits.Value(i), Grade: grades.Value(i), Keys: make([]string, len(cols))}
		for k, c := range cols {
			if c.IsValid(i) {
				r.Keys[k] = c.ValueStr(i)
			}
		}
		out.Rows[i] = r
	}
	return out, nil
}

// excludedRows reads an exclusions stage's output; nil (not known) when
// the input is not wired.
func excludedRows(in map[string]arrow.RecordBatch, keyCol, pathCol string) ([]report.Excluded, error) {
	ex, ok := in["excluded"]
	if !ok || ex == nil {
		return nil, nil
	}
	var err error
	var cols [3]*table.StringCells
	for i, name := range []string{keyCol, "reason", "detail"} {
		if cols[i], err = table.StringCol(ex, name); err != nil {
			return nil, fmt.Errorf("excluded: %w", err)
		}
	}
	paths, _ := table.StringCol(ex, pathCol)
	out := make([]report.Excluded, ex.NumRows())
	for i := range out {
		out[i] = report.Excluded{Key: cols[0].Value(i), Reason: cols[1].Value(i), Detail: cols[2].Value(i)}
		if paths != nil {
			out[i].Path = paths.Value(i)
		}
	}
	return out, nil
}

func kappaRows(in map[string]arrow.RecordBatch) ([]report.Kappa, error) {
	k, err := input(in, "kappa")
	if err != nil {
		return nil, err
	}
	cols, err := columns(k, kappaSchema())
	if err != nil {
		return nil, fmt.Errorf("kappa: %w", err)
	}
	ra, rb, n := stringCells(cols[0]), stringCells(cols[1]), cols[2].(*array.Int64)
	f := make([]*array.Float64, len(kappaStats))
	for i := range f {
		f[i] = cols[3+i].(*array.Float64)
	}
	var out []report.Kappa
	for i := range int(k.NumRows()) {
		v := func(c int) *float64 {
			if f[c].IsNull(i) {
				return nil
			}
			x := f[c].Value(i)
			return &x
		}
		out = append(out, report.Kappa{
			RaterA: ra.Value(i), RaterB: rb.Value(i), N: n.Value(i), Observed: v(0),
			Unweighted: report.Interval{Value: v(1), Lo: v(2), Hi: v(3)},
			Linear:     report.Interval{Value: v(4), Lo: v(5), Hi: v(6)},
			Quadratic:  report.Interval{Value: v(7), Lo: v(8), Hi: v(9)},
		})
	}
	return out, nil
}

// columns returns rec's columns named by the declared schema, each checked
// to have the declared type (a string column in either form), in the
// schema's order.
func columns(rec arrow.RecordBatch, s Schema) ([]arrow.Array, error) {
	out := make([]arrow.Array, len(s.Cols))
	for i, c := range s.Cols {
		idx, err := table.Index(rec, c.Name)
		if err != nil {
			return nil, err
		}
		have := rec.Column(idx).DataType()
		if !arrow.TypeEqual(have, c.Type) && !(c.Type.ID() == arrow.STRING && table.IsString(have)) {
			return nil, fmt.Errorf("column %q is %s, want %s", c.Name, have, typeName(c.Type))
		}
		out[i] = rec.Column(idx)
	}
	return out, nil
}

// stringCells reads a column columns accepted as a string column.
func stringCells(a arrow.Array) *table.StringCells {
	c, _ := table.AsStrings(a)
	return c
}
