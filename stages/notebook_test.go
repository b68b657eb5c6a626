package stages

import (
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/kneepipe/kneepipe/internal/table"
)

// The notebook's steps after download, stage by stage, on the golden
// raw_data.csv: the three CSVs it derives must come out byte for byte.
func TestNotebookStepsMatchGoldens(t *testing.T) {
	const golden = "../testdata/golden/notebook/"
	env := testEnv(t)
	in := func(kv ...any) map[string]arrow.RecordBatch {
		m := map[string]arrow.RecordBatch{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1].(arrow.RecordBatch)
		}
		return m
	}
	raw := run(t, env, "read", build(t, "read", "{path: "+golden+"raw_data.csv}"), nil).Outputs["rows"]
	data := run(t, env, "map-severity", build(t, "map-severity", ""), in("rows", raw))
	if data.Objects.Rejected != 0 {
		t.Fatalf("rejected %d rows", data.Objects.Rejected)
	}
	unique := run(t, env, "dedupe", build(t, "dedupe", ""), in("rows", data.Outputs["rows"]))
	check := run(t, env, "cross-check", build(t, "cross-check", "{missing_disagrees: true}"), in("rows", unique.Outputs["rows"]))
	keep := run(t, env, "filter", build(t, "filter", "{mode: keep}"), in("rows", data.Outputs["rows"], "by", check.Outputs["disagreements"]))
	drop := run(t, env, "filter", build(t, "filter", "{mode: drop}"), in("rows", data.Outputs["rows"], "by", check.Outputs["disagreements"]))

	for _, tt := range []struct {
		file string
		rec  arrow.RecordBatch
		cols []string
	}{
		{"deleted_paths.csv", unique.Outputs["removed"], []string{"relative_path"}},
		{"different_severity.csv", keep.Outputs["rows"], []string{"file_id", "severity", "relative_path"}},
		{"normalized_data.csv", drop.Outputs["rows"], []string{"expert", "file_id", "severity", "relative_path"}},
	} {
		want, err := os.ReadFile(golden + tt.file)
		if err != nil {
			t.Fatal(err)
		}
		sel, err := table.Select(tt.rec, tt.cols, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := csvOf(t, sel)
		sel.Release()
		if got != string(want) {
			t.Errorf("%s differs from the golden:\n%s\nwant\n%s", tt.file, got, want)
		}
	}
	// The sample's planted figures (testdata/README.md).
	if n := unique.Outputs["rows"].NumRows(); n != 91 {
		t.Errorf("rows after de-duplication %d, want 91", n)
	}
	if got, want := csvOf(t, check.Outputs["matrix"]), lines("rater_a,rater_b,grade_a,grade_b,count",
		"MedicalExpert-I,MedicalExpert-II,0,0,9",
		"MedicalExpert-I,MedicalExpert-II,0,1,3",
		"MedicalExpert-I,MedicalExpert-II,1,1,8",
		"MedicalExpert-I,MedicalExpert-II,2,2,8",
		"MedicalExpert-I,MedicalExpert-II,2,3,1",
		"MedicalExpert-I,MedicalExpert-II,3,3,8",
		"MedicalExpert-I,MedicalExpert-II,4,4,8",
	); got != want {
		t.Errorf("agreement matrix:\n%s\nwant\n%s", got, want)
	}
	if n := unique.Outputs["conflicts"].NumRows(); n != 0 {
		t.Errorf("%d conflicting duplicates, want 0", n)
	}
}
