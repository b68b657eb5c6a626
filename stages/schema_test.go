package stages

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/kneepipe/kneepipe/internal/source"
	"github.com/kneepipe/kneepipe/internal/table"
)

type noProgress struct{}

func (noProgress) Add(int) {}
func (noProgress) Done()   {}

// TestDeclaredSchemas runs every builtin kind on the outputs of the kinds
// before it, as the default pipeline does, and checks each output against
// the declaration derived from the inputs' actual schemas (run does that
// for every stage made by build).
func TestDeclaredSchemas(t *testing.T) {
	root := t.TempDir()
	for key, img := range map[string][]byte{
		"I/0Normal/a.png":  grayPNG(t, 8, 4, 1),
		"I/2Mild/b.png":    grayPNG(t, 8, 4, 2),
		"I/2Mild/b2.png":   grayPNG(t, 8, 4, 2), // a duplicate of b
		"II/0Normal/a.png": grayPNG(t, 8, 4, 1),
		"II/0Normal/b.png": grayPNG(t, 8, 4, 2), // disagrees with I
		"II/bad/c.png":     grayPNG(t, 8, 4, 3), // rejected by map-severity
	} {
		p := filepath.Join(root, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, img, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	store, err := source.Open(context.Background(), source.Config{URI: root}, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	env := testEnv(t)
	env.Store = store
	env.Progress = func(string, int) Progress { return noProgress{} }

	ran := map[string]bool{}
	step := func(kind, params string, in map[string]arrow.RecordBatch) *Result {
		t.Helper()
		ran[kind] = true
		return run(t, env, kind, build(t, kind, params), in)
	}
	listed := step("list", "", nil)
	objects := listed.Outputs["objects"]
	hashed := step("fetch-hash", "{fingerprint: true}", map[string]arrow.RecordBatch{"objects": objects})
	graded := step("map-severity", "", map[string]arrow.RecordBatch{"rows": hashed.Outputs["rows"]})
	if n := graded.Outputs["rejected"].NumRows(); n != 1 {
		t.Errorf("map-severity rejected %d rows, want 1", n)
	}
	unique := step("dedupe", "", map[string]arrow.RecordBatch{"rows": graded.Outputs["rows"]})
	cc := step("cross-check", "", map[string]arrow.RecordBatch{"rows": unique.Outputs["rows"]})
	if n := cc.Outputs["disagreements"].NumRows(); n != 1 {
		t.Errorf("cross-check: %d disagreements, want 1", n)
	}
	agreed := step("filter", "{mode: drop}", map[string]arrow.RecordBatch{"rows": unique.Outputs["rows"], "by": cc.Outputs["disagreements"]})
	near := step("near-duplicates", "", map[string]arrow.RecordBatch{"rows": agreed.Outputs["rows"]})
	clean := step("dedupe", "{on: [file_id]}", map[string]arrow.RecordBatch{"rows": near.Outputs["rows"]})
	excluded := step("exclusions", "", map[string]arrow.RecordBatch{
		"objects": objects, "list_rejected": listed.Outputs["rejected"], "failed": hashed.Outputs["failed"], "fetch_rejected": hashed.Outputs["rejected"], "rejected": graded.Outputs["rejected"],
		"rows": unique.Outputs["rows"], "removed": unique.Outputs["removed"], "disagreements": cc.Outputs["disagreements"], "near_groups": near.Outputs["groups"], "clean": clean.Outputs["rows"],
	})
	if n := excluded.Outputs["excluded"].NumRows(); n != 4 {
		t.Errorf("exclusions: %d rows, want 4 (c rejected, b2 a duplicate, b under both experts)", n)
	}
	splits := step("split", "", map[string]arrow.RecordBatch{"rows": clean.Outputs["rows"]})
	env.StateDir = t.TempDir()
	step("export", "", map[string]arrow.RecordBatch{"rows": splits.Outputs["rows"]})
	step("report", "", map[string]arrow.RecordBatch{
		"rows": graded.Outputs["rows"], "matrix": cc.Outputs["matrix"], "kappa": cc.Outputs["kappa"], "disagreements": cc.Outputs["disagreements"],
		"excluded": excluded.Outputs["excluded"], "near_groups": near.Outputs["groups"],
	})

	// near-duplicates on rows made here, with a group.
	fpRows := fingerprintRows(env.Mem, []string{"a", "b"}, []string{"a.png", "b.png"},
		[][]byte{fingerprintOf(t, blobs(1, 64, 64), false), fingerprintOf(t, blobs(1, 64, 64), true)})
	defer fpRows.Release()
	step("near-duplicates", "", map[string]arrow.RecordBatch{"rows": fpRows})

	dir := t.TempDir()
	csvPath, pqPath := filepath.Join(dir, "rows.csv"), filepath.Join(dir, "rows.parquet")
	var plain []string // CSV holds no binary: the fingerprint column stays out
	for _, name := range table.Names(graded.Outputs["rows"]) {
		if name != colFingerprint {
			plain = append(plain, name)
		}
	}
	writeTable(t, csvPath, selectCols(t, graded.Outputs["rows"], plain...), table.WriteCSV)
	writeTable(t, pqPath, graded.Outputs["rows"], table.WriteParquet)
	step("read", "{path: "+csvPath+", types: {severity: int64, size: int64}}", nil)
	step("read", "{path: "+pqPath+"}", nil)

	for _, k := range Builtin().Names() {
		if !ran[k] {
			t.Errorf("kind %s is not run here: its declaration is not checked against its output", k)
		}
	}
}

func writeTable(t *testing.T, path string, rec arrow.RecordBatch, write func(io.Writer, arrow.RecordBatch) error) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := write(f, rec); err != nil {
		t.Fatal(err)
	}
}

// Each column a kind reads is checked against its input's schema, and
// the error names the parameter (and item) that named the column, or the
// input when the kind reads it by a fixed name.
func TestSchemaErrors(t *testing.T) {
	str, i64 := StringType, Int64Type
	graded := Closed(Col{"key", str}, Col{"relative_path", str}, Col{"size", i64}, Col{"file_id", str}, Col{"expert", str}, Col{"severity", i64}, Col{"severity_label", str})
	stringGrades := Closed(Col{"file_id", str}, Col{"expert", str}, Col{"severity", str})
	objects := listSchema()
	nearGroups := Closed(Col{"group", Int64Type}, Col{"file_id", str}, Col{"relative_path", str}, Col{"similarity", Float64Type})
	cc := map[string]Schema{"matrix": matrixSchema(), "kappa": kappaSchema(), "disagreements": wideSchema("file_id"), "near_groups": nearGroups}
	withRows := func(m map[string]Schema, rows Schema) map[string]Schema {
		out := map[string]Schema{"rows": rows}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	withPort := func(m map[string]Schema, port string, s Schema) map[string]Schema {
		out := map[string]Schema{port: s}
		for k, v := range m {
			if k != port {
				out[k] = v
			}
		}
		return out
	}
	withExcluded := func(m map[string]Schema, s Schema) map[string]Schema { return withPort(m, "excluded", s) }
	fetchParams, err := decode(t, "fetch-hash", "")
	if err != nil {
		t.Fatal(err)
	}
	fetched, err := fetchHashSchema(fetchParams, map[string]Schema{"objects": objects})
	if err != nil {
		t.Fatal(err)
	}
	exclusionsIn := map[string]Schema{
		"objects": objects, "list_rejected": Closed(Col{"key", str}, Col{"reason", str}), "failed": fetched["failed"], "fetch_rejected": fetched["rejected"], "rejected": graded.Set(Col{"reason", str}),
		"rows": graded, "removed": graded, "disagreements": wideSchema("file_id"),
		"near_groups": nearGroups, "clean": graded,
	}
	p, err := decode(t, "exclusions", "")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := exclusionsSchema(p, exclusionsIn)
	if err != nil {
		t.Fatal(err)
	}
	exclusionsOut := ex["excluded"]
	for _, tc := range []struct {
		kind, params string
		in           map[string]Schema
		param        string // "" for an InputError
		item         int
		input        string
		msg          string
	}{
		{"dedupe", "{on: [file_id, expertt]}", map[string]Schema{"rows": graded}, "on", 2, "",
			`rows has no column "expertt" (did you mean "expert"?)`},
		{"dedupe", "{check: grade}", map[string]Schema{"rows": graded}, "check", 0, "", `rows has no column "grade"`},
		{"dedupe", "", map[string]Schema{"rows": graded.Set(Col{"group", i64})}, "", 0, "rows", `already has a column "group"`},
		{"filter", "{column: key, by_column: kee}", map[string]Schema{"rows": graded, "by": objects}, "by_column", 0, "", `by has no column "kee" (did you mean "key"?)`},
		{"filter", "{column: uri}", map[string]Schema{"rows": graded, "by": objects}, "column", 0, "", `rows has no column "uri"`},
		{"filter", "{column: key, by_column: uri}", map[string]Schema{"rows": graded, "by": objects}, "", 0, "", ""},
		{"cross-check", "", map[string]Schema{"rows": stringGrades}, "grade", 0, "", `column "severity" of rows is string, want int64`},
		{"cross-check", "{rater: Expert}", map[string]Schema{"rows": graded}, "rater", 0, "", `rows has no column "Expert" (did you mean "expert"?)`},
		{"map-severity", "{path_column: size}", map[string]Schema{"rows": objects}, "path_column", 0, "", `column "size" of rows is int64, want string`},
		{"map-severity", "", map[string]Schema{"rows": Closed(Col{"key", str})}, "path_column", 0, "", `rows has no column "relative_path"`},
		{"fetch-hash", "", map[string]Schema{"objects": Closed(Col{"key", str})}, "", 0, "objects", `objects has no column "size"`},
		{"fetch-hash", "", map[string]Schema{"objects": objects.Set(Col{"sha256", str})}, "", 0, "objects", `already has a column "sha256"`},
		{"report", "", withRows(cc, stringGrades), "grade", 0, "", `column "severity" of rows is string, want int64`},
		{"report", "", withRows(map[string]Schema{"matrix": kappaSchema(), "kappa": kappaSchema(), "disagreements": wideSchema("file_id")}, graded), "", 0, "matrix", `matrix has no column "grade_a"`},
		{"report", "", withRows(map[string]Schema{"matrix": matrixSchema(), "kappa": kappaSchema(), "disagreements": Schema{Cols: []Col{{"file_id", str}}, Open: true, Rest: str}}, graded), "", 0, "disagreements", "further columns are string, want int64 grades"},
		{"report", "", withRows(map[string]Schema{"matrix": matrixSchema(), "kappa": kappaSchema(), "disagreements": Closed(Col{"file_id", str}, Col{"I", str})}, graded), "", 0, "disagreements", `column "I" is string, want int64 grades`},
		{"report", "{label: size}", withRows(cc, graded), "label", 0, "", `column "size" of rows is int64, want string`},
		{"report", "", withRows(cc, graded.Set(Col{"width", str})), "", 0, "rows", `column "width" of rows is string, want int64`},
		{"report", "{item: key}", withRows(cc, graded), "item", 0, "", `disagreements has no string column "key" (columns: file_id string, + one int64 grade column per rater`},
		{"report", "", withRows(withExcluded(cc, Closed(Col{"key", str}, Col{"detail", str})), graded), "", 0, "excluded", `excluded has no column "reason"`},
		{"report", "", withRows(withExcluded(cc, exclusionsOut), graded), "", 0, "", ""},
		{"exclusions", "", exclusionsIn, "", 0, "", ""},
		{"exclusions", "{on: [expert, fileid]}", exclusionsIn, "on", 2, "", `rows has no column "fileid" (did you mean "file_id"?)`},
		{"exclusions", "{item: id}", exclusionsIn, "item", 0, "", `rows has no column "id"`},
		{"exclusions", "", withPort(exclusionsIn, "failed", Closed(Col{"key", str})), "", 0, "failed", `failed has no column "error"`},
		{"exclusions", "", withPort(exclusionsIn, "failed", Closed(Col{"key", str}, Col{"error", str}, Col{"attempts", str})), "", 0, "failed", `column "attempts" of failed is string, want int64`},
		{"exclusions", "", withPort(exclusionsIn, "clean", Closed(Col{"key", str})), "item", 0, "", `clean has no column "file_id"`},
		// Columns of a read CSV are strings unless typed; unknown ones may exist.
		{"cross-check", "", map[string]Schema{"rows": {Open: true, Rest: str}}, "grade", 0, "", `rows has no int64 column "severity"`},
		{"cross-check", "", map[string]Schema{"rows": {Open: true, Rest: str, Cols: []Col{{"severity", i64}}}}, "", 0, "", ""},
		{"dedupe", "{on: [whatever]}", map[string]Schema{"rows": Unknown("")}, "", 0, "", ""},
	} {
		p, err := decode(t, tc.kind, tc.params)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Builtin()[tc.kind].OutputSchemas(p, tc.in)
		name := tc.kind + " " + tc.params
		if tc.msg == "" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		var pe *ParamError
		var ie *InputError
		switch {
		case err == nil:
			t.Errorf("%s: no error, want %q", name, tc.msg)
		case !strings.Contains(err.Error(), tc.msg):
			t.Errorf("%s: %v, want %q in it", name, err, tc.msg)
		case tc.param != "" && (!errors.As(err, &pe) || pe.Param != tc.param || pe.Item != tc.item):
			t.Errorf("%s: %#v, want a ParamError of %s item %d", name, err, tc.param, tc.item)
		case tc.input != "" && (!errors.As(err, &ie) || ie.Input != tc.input):
			t.Errorf("%s: %#v, want an InputError of %s", name, err, tc.input)
		}
	}
}

func TestSchemaMatch(t *testing.T) {
	mem := testEnv(t).Mem
	rec := rows(t, mem, "file_id,I,II", []string{"I", "II"}, "a|1|2")
	defer rec.Release()
	for _, tc := range []struct {
		s   Schema
		err string
	}{
		{wideSchema("file_id"), ""},
		{Closed(Col{"file_id", StringType}, Col{"I", Int64Type}, Col{"II", Int64Type}), ""},
		{Closed(Col{"file_id", StringType}, Col{"I", Int64Type}), "has columns"},
		{Closed(Col{"file_id", StringType}, Col{"II", Int64Type}, Col{"I", Int64Type}), "column 2 is I int64, declared II int64"},
		{Closed(Col{"file_id", Int64Type}, Col{"I", nil}, Col{"II", nil}), "column 1 is file_id string, declared file_id int64"},
		{Schema{Open: true, Rest: StringType}, `column "I" is int64`},
		{Schema{Open: true, Cols: []Col{{"III", Int64Type}}}, `has 0 columns "III"`},
	} {
		err := tc.s.Match(rec.Schema())
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.s, err, tc.err)
		}
	}
}

func TestNearest(t *testing.T) {
	known := []string{"list", "fetch-hash", "map-severity", "dedupe", "cross-check", "filter", "read", "report"}
	for _, tc := range []struct{ name, want string }{
		{"dedup", "dedupe"},
		{"fetch_hash", "fetch-hash"},
		{"crosscheck", "cross-check"},
		{"rpeort", "report"}, // swapped neighbours count once
		{"lsit", "list"},
		{"sort", ""},   // nothing close
		{"dedupe", ""}, // a known name needs no suggestion
		{"x", ""},
	} {
		got, ok := Nearest(tc.name, known)
		if ok != (tc.want != "") || got != tc.want && ok {
			t.Errorf("Nearest(%q) = %q, %v; want %q", tc.name, got, ok, tc.want)
		}
	}
	if _, ok := Nearest("rad", []string{"read", "raid"}); ok {
		t.Error("a tie suggests nothing")
	}
}
