package stages

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

func TestFilter(t *testing.T) {
	env := testEnv(t)
	data := rows(t, env.Mem, "expert,file_id,severity,relative_path", []string{"severity"},
		"I|h3|2|p0",
		"I|h1|0|p1",
		"II|h2|1|p2",
		"II|h1|1|p3",
		"I|h2|0|p4",
		"II|h3|3|p5",
		"I||0|p6", // an empty file_id (not null)
	)
	defer data.Release()
	disagreements := rows(t, env.Mem, "file_id,MedicalExpert-I,MedicalExpert-II", []string{"MedicalExpert-I", "MedicalExpert-II"},
		"h3|2|3", "h1|0|1", "h9|1|")
	defer disagreements.Release()
	grades := rows(t, env.Mem, "grade,note", nil, "1|a", "3|b", "1|c")
	defer grades.Release()

	tests := []struct {
		params string
		by     arrow.RecordBatch
		want   []string
	}{
		{"{mode: keep}", disagreements, []string{"I,h3,2,p0", "I,h1,0,p1", "II,h1,1,p3", "II,h3,3,p5"}},
		{"{column: file_id, mode: drop}", disagreements, []string{"II,h2,1,p2", "I,h2,0,p4", "I,,0,p6"}},
		// An int64 column matched against a string column by its decimal text.
		{"{column: severity, by_column: grade}", grades, []string{"II,h2,1,p2", "II,h1,1,p3", "II,h3,3,p5"}},
		{"{column: severity, by_column: grade, mode: drop}", grades, []string{"I,h3,2,p0", "I,h1,0,p1", "I,h2,0,p4", "I,,0,p6"}},
		// A string column matched against an int64 column.
		{"{column: relative_path, by_column: MedicalExpert-I}", disagreements, nil},
		{"{column: file_id, mode: keep}", data, []string{"I,h3,2,p0", "I,h1,0,p1", "II,h2,1,p2", "II,h1,1,p3", "I,h2,0,p4", "II,h3,3,p5", "I,,0,p6"}},
	}
	for _, tt := range tests {
		t.Run(tt.params, func(t *testing.T) {
			res := run(t, env, "filter", build(t, "filter", tt.params), map[string]arrow.RecordBatch{"rows": data, "by": tt.by})
			want := lines(append([]string{"expert,file_id,severity,relative_path"}, tt.want...)...)
			if got := csvOf(t, res.Outputs["rows"]); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
			if got := schemaOf(res.Outputs["rows"]); got != schemaOf(data) {
				t.Errorf("schema %s, want the input's %s", got, schemaOf(data))
			}
		})
	}
}

func TestFilterIntAgainstInt(t *testing.T) {
	env := testEnv(t)
	data := rows(t, env.Mem, "id,v", []string{"id"}, "1|a", "10|b", "|c", "2|d")
	defer data.Release()
	by := rows(t, env.Mem, "id", []string{"id"}, "10", "2", "")
	defer by.Release()
	res := run(t, env, "filter", build(t, "filter", "{column: id}"), map[string]arrow.RecordBatch{"rows": data, "by": by})
	// pandas' isin matches a missing value against a missing value.
	if got, want := csvOf(t, res.Outputs["rows"]), lines("id,v", "10,b", ",c", "2,d"); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	res = run(t, env, "filter", build(t, "filter", "{column: id, mode: drop}"), map[string]arrow.RecordBatch{"rows": data, "by": by})
	if got, want := csvOf(t, res.Outputs["rows"]), lines("id,v", "1,a"); got != want {
		t.Errorf("drop: got\n%s\nwant\n%s", got, want)
	}
}

func TestFilterErrors(t *testing.T) {
	if err := buildErr(t, "filter", "{mode: both}"); err == nil || !strings.Contains(err.Error(), `"both" is not one of keep, drop`) {
		t.Errorf("mode: both error %v", err)
	}
	env := testEnv(t)
	data := rows(t, env.Mem, "file_id", nil, "h1")
	defer data.Release()
	by := rows(t, env.Mem, "other", nil, "h1")
	defer by.Release()
	for _, tt := range []struct {
		params string
		in     map[string]arrow.RecordBatch
		want   string
	}{
		{"", map[string]arrow.RecordBatch{"rows": data, "by": by}, `no column "file_id" (have [other])`},
		{"{column: nope}", map[string]arrow.RecordBatch{"rows": data, "by": by}, `no column "nope" (have [file_id])`},
		{"", map[string]arrow.RecordBatch{"rows": data}, `input "by" missing`},
		{"", map[string]arrow.RecordBatch{"by": by}, `input "rows" missing`},
	} {
		res, err := build(t, "filter", tt.params).Run(t.Context(), env, tt.in)
		if err == nil {
			res.Outputs["rows"].Release()
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("filter %q: error %v, want %q", tt.params, err, tt.want)
		}
	}
}
