package stages

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/report"
	"github.com/kneepipe/kneepipe/internal/table"
)

func TestReportParams(t *testing.T) {
	if err := buildErr(t, "report", "{mean_size: 640}"); err == nil || !strings.Contains(err.Error(), "mean_size") {
		t.Errorf("bad mean_size: %v", err)
	}
	if err := buildErr(t, "report", "{warn_share: 40}"); err == nil {
		t.Error("warn_share 40 accepted (least 50)")
	}
	st := build(t, "report", "{mean_images: true, mean_size: 320x81, warn_share: 90, thumb_width: 120}").(*declared).Stage.(*reportStage)
	if o := st.opt; !o.MeanImages || o.MeanWidth != 320 || o.MeanHeight != 81 || o.WarnShare != 0.9 || o.ThumbWidth != 120 || o.WarnMinImages != 5 {
		t.Errorf("options %+v", o)
	}
	if o := build(t, "report", "").(*declared).Stage.(*reportStage).opt; o.GroupCopies != 4 || o.Groups != 40 || o.Disagreements != 80 || o.TableRows != 500 {
		t.Errorf("default caps %+v", o)
	}
	if o := build(t, "report", "{group_copies: 2, groups: 3, disagreements: 5, table_rows: 7}").(*declared).Stage.(*reportStage).opt; o.GroupCopies != 2 || o.Groups != 3 || o.Disagreements != 5 || o.TableRows != 7 {
		t.Errorf("caps %+v", o)
	}
	if err := buildErr(t, "report", "{table_rows: 0}"); err == nil {
		t.Error("table_rows 0 accepted (least 1)")
	}
	p, err := decode(t, "report", "{concurrency: 4}")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Fingerprinted()["concurrency"]; ok {
		t.Error("concurrency changes the fingerprint")
	}
}

// reportInputs de-duplicates rows, cross-checks them and returns the
// report's inputs, as the default pipeline wires them.
func reportInputs(t *testing.T, env *Env, rowsRec arrow.RecordBatch) map[string]arrow.RecordBatch {
	t.Helper()
	unique := run(t, env, "dedupe", build(t, "dedupe", ""), map[string]arrow.RecordBatch{"rows": rowsRec})
	cc := run(t, env, "cross-check", build(t, "cross-check", "{missing_disagrees: true}"), map[string]arrow.RecordBatch{"rows": unique.Outputs["rows"]})
	excluded := rows(t, env.Mem, "key,reason,detail", nil)
	t.Cleanup(excluded.Release)
	return map[string]arrow.RecordBatch{
		"rows": rowsRec, "matrix": cc.Outputs["matrix"], "kappa": cc.Outputs["kappa"], "disagreements": cc.Outputs["disagreements"],
		"excluded": excluded, "near_groups": noNearGroups(t, env),
	}
}

// noNearGroups is an empty near_groups input.
func noNearGroups(t *testing.T, env *Env) arrow.RecordBatch {
	t.Helper()
	g := table.New(table.Int64s(env.Mem, "group", nil, nil), table.Strings(env.Mem, "file_id", nil), table.Strings(env.Mem, "relative_path", nil), float64s(env.Mem, "similarity", nil))
	t.Cleanup(g.Release)
	return g
}

// Only the columns the stage needs: no key (no thumbnails), no PNG facts,
// no label; no source at all.
func TestReportMinimalColumns(t *testing.T) {
	env := testEnv(t)
	in := rows(t, env.Mem, "file_id,expert,severity", []string{"severity"},
		"a|I|0", "a|II|0", "b|I|1", "b|II|2", "c|I|2", "c|I|2", "c|II|2", "d|I|4",
	)
	defer in.Release()
	res := run(t, env, "report", build(t, "report", "{title: Tiny}"), reportInputs(t, env, in))
	files := res.Outputs["files"]
	if got := schemaOf(files); got != "name:utf8,content:binary" {
		t.Fatalf("schema %s", got)
	}
	names := files.Column(0).(*array.String)
	content := files.Column(1).(*array.Binary)
	if files.NumRows() != 2 || names.Value(0) != "report.html" || names.Value(1) != "summary.json" {
		t.Fatalf("files %s", csvOf(t, table.New(table.Strings(env.Mem, "n", []string{names.Value(0)}))))
	}
	var s report.Summary
	if err := json.Unmarshal(content.Value(1), &s); err != nil {
		t.Fatal(err)
	}
	if s.Title != "Tiny" || s.Totals.Files != 8 || s.Duplicates.Groups != 1 || len(s.Disagreements) != 2 || len(s.Agreement.Pairs) != 1 {
		t.Errorf("summary %+v", s)
	}
	if s.Agreement.Pairs[0].N != 3 || s.Properties[0].Unknown != 7 {
		t.Errorf("pair %+v, size property %+v", s.Agreement.Pairs[0], s.Properties[0])
	}
	page := content.Value(0)
	if !bytes.Contains(page, []byte("<title>Tiny</title>")) || !bytes.Contains(page, []byte("no source to fetch from")) {
		t.Error("page lacks its title or the no-source note")
	}
}

func TestReportBadInputs(t *testing.T) {
	env := testEnv(t)
	in := rows(t, env.Mem, "file_id,expert,severity", []string{"severity"}, "a|I|0", "a|II|1")
	defer in.Release()
	inputs := reportInputs(t, env, in)
	st := build(t, "report", "{grade: missing_column}")
	if _, err := st.Run(context.Background(), env, inputs); err == nil || !strings.Contains(err.Error(), "missing_column") {
		t.Errorf("missing grade column: %v", err)
	}
	delete(inputs, "kappa")
	if _, err := build(t, "report", "").Run(context.Background(), env, inputs); err == nil || !strings.Contains(err.Error(), "kappa") {
		t.Errorf("missing kappa input: %v", err)
	}
	inputs["kappa"] = inputs["matrix"]
	if _, err := build(t, "report", "").Run(context.Background(), env, inputs); err == nil || !strings.Contains(err.Error(), "kappa: no column") {
		t.Errorf("kappa input without kappa columns: %v", err)
	}
	good := inputs["excluded"]
	noReason := rows(t, env.Mem, "key,detail", nil, "k|d")
	defer noReason.Release()
	inputs["excluded"] = noReason
	inputs["kappa"] = reportInputs(t, env, in)["kappa"]
	if _, err := build(t, "report", "").Run(context.Background(), env, inputs); err == nil || !strings.Contains(err.Error(), `excluded: no column "reason"`) {
		t.Errorf("excluded input without a reason column: %v", err)
	}
	inputs["excluded"] = good
	nulls := rows(t, env.Mem, "file_id,expert,severity", []string{"severity"}, "a|I|")
	defer nulls.Release()
	inputs["rows"] = nulls
	if _, err := build(t, "report", "").Run(context.Background(), env, inputs); err == nil || !strings.Contains(err.Error(), "severity is empty") {
		t.Errorf("null grade: %v", err)
	}
}

// The files output survives the cache: Parquet keeps content binary, as
// the files artifact needs after a cache hit.
func TestReportFilesThroughParquet(t *testing.T) {
	env := testEnv(t)
	in := rows(t, env.Mem, "file_id,expert,severity", []string{"severity"}, "a|I|0", "a|II|1")
	defer in.Release()
	files := run(t, env, "report", build(t, "report", ""), reportInputs(t, env, in)).Outputs["files"]
	path := filepath.Join(t.TempDir(), "files.parquet")
	var buf bytes.Buffer
	if err := table.WriteParquet(&buf, files); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	back, err := table.ReadParquet(context.Background(), mem, path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { back.Release(); mem.AssertSize(t, 0) }()
	c, ok := back.Column(1).(*array.Binary)
	if !ok {
		t.Fatalf("content read back as %s", back.Column(1).DataType())
	}
	if !bytes.Equal(c.Value(0), files.Column(1).(*array.Binary).Value(0)) {
		t.Error("report.html changed through Parquet")
	}
}

// The excluded input reaches summary.json: counts per reason, and the
// objects no other section shows, with their path.
func TestReportExcludedInput(t *testing.T) {
	env := testEnv(t)
	in := rows(t, env.Mem, "file_id,expert,severity", []string{"severity"}, "a|I|0", "a|II|0")
	defer in.Release()
	inputs := reportInputs(t, env, in)
	ex := rows(t, env.Mem, "key,relative_path,reason,detail", nil, "s/k1|k1|rejected|empty object", "s/k2|k2|duplicate|same expert, file_id as the kept copy")
	defer ex.Release()
	inputs["excluded"] = ex
	s := summaryOf(t, run(t, env, "report", build(t, "report", ""), inputs))
	want := report.Exclusions{
		Total:   2,
		Reasons: []report.ReasonCount{{Reason: "rejected", Objects: 1, Listed: 1}, {Reason: "duplicate", Objects: 1}},
		Listed:  []report.ExcludedObject{{Key: "s/k1", Path: "k1", Reason: "rejected", Detail: "empty object"}},
	}
	if s.Excluded == nil || !reflect.DeepEqual(*s.Excluded, want) {
		t.Errorf("excluded %+v, want %+v", s.Excluded, want)
	}
}

// The optional inputs: without excluded or splits the report runs and
// says they are not known; a split table that leaks a patient (whatever
// split_group claims) fails the audit, on the page and in run.json.
func TestReportOptionalInputsAndLeakageAudit(t *testing.T) {
	env := testEnv(t)
	in := rows(t, env.Mem, "file_id,expert,severity", []string{"severity"}, "a|I|0", "a|II|0", "b|I|1", "b|II|1")
	defer in.Release()
	inputs := reportInputs(t, env, in)
	delete(inputs, "excluded")
	res := run(t, env, "report", build(t, "report", ""), inputs)
	if s := summaryOf(t, res); s.Excluded != nil || s.Splits != nil {
		t.Errorf("not wired, yet excluded %+v, splits %+v", s.Excluded, s.Splits)
	}

	leaky := rows(t, env.Mem, "file_id,patient,severity,split,split_group", []string{"severity"},
		"a|9000001|0|train|file_id=a", "b|9000001|1|test|file_id=b", "c|9000002|1|train|file_id=c")
	defer leaky.Release()
	inputs["splits"] = leaky
	res = run(t, env, "report", build(t, "report", ""), inputs)
	s := summaryOf(t, res)
	if s.Splits == nil || s.Splits.Leaks != 1 || s.Splits.Groups != 3 || len(s.Splits.Keys) != 3 || s.Splits.Keys[2].Column != "patient" || s.Splits.Keys[2].Crossing != 1 {
		t.Fatalf("audit %+v", s.Splits)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "leakage audit failed: 1 group values") {
		t.Errorf("warnings %q", res.Warnings)
	}
	if page := res.Outputs["files"].Column(1).(*array.Binary).Value(0); !bytes.Contains(page, []byte(`class="fail"`)) {
		t.Error("the leak is not a failure on the page")
	}

	pure := rows(t, env.Mem, "file_id,patient,severity,split,split_group", []string{"severity"},
		"a|9000001|0|train|patient=9000001", "b|9000001|1|train|patient=9000001", "c|9000002|1|test|patient=9000002")
	defer pure.Release()
	inputs["splits"] = pure
	res = run(t, env, "report", build(t, "report", ""), inputs)
	if s := summaryOf(t, res); s.Splits.Leaks != 0 || len(res.Warnings) != 0 {
		t.Errorf("a pure split: audit %+v, warnings %q", s.Splits, res.Warnings)
	}
}

// The splits input's declared columns: split, split_group and the grade.
func TestReportSplitsSchema(t *testing.T) {
	p, err := decode(t, "report", "")
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]Schema{
		"rows":          Closed(Col{"file_id", StringType}, Col{"expert", StringType}, Col{"severity", Int64Type}),
		"matrix":        matrixSchema(),
		"kappa":         kappaSchema(),
		"disagreements": Closed(Col{"file_id", StringType}),
	}
	if _, err := reportSchema(p, base); err != nil {
		t.Fatalf("without optional inputs: %v", err)
	}
	base["splits"] = Closed(Col{"file_id", StringType}, Col{"severity", Int64Type}, Col{"split", StringType})
	_, err = reportSchema(p, base)
	var ie *InputError
	if !errors.As(err, &ie) || ie.Input != "splits" || !strings.Contains(ie.Msg, `"split_group"`) {
		t.Errorf("splits without split_group: %v", err)
	}
}

// One rater (an OAI-style set): no rater column and no cross-check inputs;
// the cross-check's three inputs come together or not at all.
func TestReportOneRater(t *testing.T) {
	env := testEnv(t)
	in := rows(t, env.Mem, "file_id,patient,severity,split,split_group", []string{"severity"},
		"a|9000001|0|train|patient=9000001", "b|9000001|1|train|patient=9000001", "c|9000002|2|test|patient=9000002")
	defer in.Release()
	res := run(t, env, "report", build(t, "report", ""), map[string]arrow.RecordBatch{"rows": in, "splits": in})
	s := summaryOf(t, res)
	if s.CrossCheck || len(s.Raters) != 1 || s.Totals.Files != 3 || s.Splits == nil || s.Splits.Leaks != 0 {
		t.Errorf("one rater: cross_check %v, raters %v, totals %+v, audit %+v", s.CrossCheck, s.Raters, s.Totals, s.Splits)
	}
	if page := res.Outputs["files"].Column(1).(*array.Binary).Value(0); !bytes.Contains(page, []byte("Not compared: the report was given no cross-check (one rater).")) {
		t.Error("the agreement section does not say the raters were not compared")
	}

	p, err := decode(t, "report", "")
	if err != nil {
		t.Fatal(err)
	}
	rowsSchema := Closed(Col{"file_id", StringType}, Col{"severity", Int64Type})
	if _, err := reportSchema(p, map[string]Schema{"rows": rowsSchema}); err != nil {
		t.Errorf("no rater column, no cross-check: %v", err)
	}
	_, err = reportSchema(p, map[string]Schema{"rows": rowsSchema, "matrix": matrixSchema()})
	if err == nil || !strings.Contains(err.Error(), "wire all three or none (given: matrix)") {
		t.Errorf("matrix alone: %v", err)
	}
	_, err = reportSchema(p, map[string]Schema{"rows": rowsSchema, "matrix": matrixSchema(), "kappa": kappaSchema(), "disagreements": Closed(Col{"file_id", StringType})})
	if err == nil || !strings.Contains(err.Error(), `"expert"`) {
		t.Errorf("cross-check inputs without a rater column: %v", err)
	}
}
