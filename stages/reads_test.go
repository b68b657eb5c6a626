package stages

import (
	"context"
	"reflect"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/kneepipe/kneepipe/internal/table"
)

// The table kinds' Reads: the columns a stage reads of its input are those
// it needs itself and those its outputs pass on to their readers.
func TestKindReads(t *testing.T) {
	for _, c := range []struct {
		kind, params string
		used         map[string][]string
		want         map[string][]string
	}{
		{"dedupe", "", map[string][]string{"rows": {"file_id", "size"}, "removed": {"relative_path"}, "conflicts": {}},
			map[string][]string{"rows": {"expert", "file_id", "severity", "size", "relative_path"}}},
		{"dedupe", "{check: ''}", map[string][]string{"rows": {}, "removed": {}, "conflicts": {"group", "note"}},
			map[string][]string{"rows": {"expert", "file_id", "note"}}},
		{"dedupe", "", map[string][]string{"rows": nil, "removed": {}, "conflicts": {}},
			map[string][]string{"rows": nil}},
		{"filter", "{column: item, by_column: id}", map[string][]string{"rows": {"a"}},
			map[string][]string{"rows": {"item", "a"}, "by": {"id"}}},
		{"filter", "", map[string][]string{"rows": nil},
			map[string][]string{"rows": nil, "by": {"file_id"}}},
		{"cross-check", "", map[string][]string{"wide": nil, "matrix": {}},
			map[string][]string{"rows": {"file_id", "expert", "severity"}}},
		// Layout fields replace the input's columns of their name.
		{"map-severity", "", map[string][]string{"rows": {"expert", "file_id", "severity", "severity_label", "file"}, "rejected": {}},
			map[string][]string{"rows": {"relative_path", "file_id"}}},
		{"map-severity", "", map[string][]string{"rows": {}, "rejected": {"expert", "reason"}},
			map[string][]string{"rows": {"relative_path", "expert"}}},
		{"map-severity", "", map[string][]string{"rows": nil, "rejected": {}},
			map[string][]string{"rows": nil}},
	} {
		p, err := decode(t, c.kind, c.params)
		if err != nil {
			t.Fatal(err)
		}
		if got := Builtin()[c.kind].Reads(p, c.used); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %s: Reads(%v) = %v, want %v", c.kind, c.params, c.used, got, c.want)
		}
	}
}

// A stage told which output columns are read (Env.Used) returns those
// columns with the values it returns without being told; dedupe, filter
// and map-severity's rows leave the others out themselves (the runner
// drops what a stage returns beyond Used).
func TestUsedColumnsLeftOut(t *testing.T) {
	env := testEnv(t)
	data := rows(t, env.Mem, "expert,file_id,severity,relative_path", []string{"severity"},
		"I|h1|0|p0", "I|h2|1|p1", "II|h1|0|p2", "I|h1|0|p3", "I|h2|2|p4", "II|h1|1|p5")
	defer data.Release()
	paths := rows(t, env.Mem, "relative_path,file_id", nil,
		"I/0Normal/a.png|h1", "I/2Mild/b.png|h2", "II/1Doubtful/a.png|h1", "bad|h3")
	defer paths.Release()
	by := rows(t, env.Mem, "file_id", nil, "h2")
	defer by.Release()

	for _, c := range []struct {
		kind, params string
		in           map[string]arrow.RecordBatch
		used         map[string][]string
	}{
		{"dedupe", "", map[string]arrow.RecordBatch{"rows": data},
			map[string][]string{"rows": {"file_id", "expert", "severity"}, "removed": {"relative_path"}}},
		{"filter", "{mode: drop}", map[string]arrow.RecordBatch{"rows": data, "by": by},
			map[string][]string{"rows": {"relative_path", "file_id"}}},
		{"filter", "{mode: keep}", map[string]arrow.RecordBatch{"rows": data, "by": by},
			map[string][]string{"rows": {"severity"}}},
		{"map-severity", "", map[string]arrow.RecordBatch{"rows": paths},
			map[string][]string{"rows": {"expert", "file_id", "severity", "relative_path"}, "rejected": {"relative_path", "reason"}}},
	} {
		p, err := decode(t, c.kind, c.params)
		if err != nil {
			t.Fatal(err)
		}
		full, err := Builtin()[c.kind].New(p)
		if err != nil {
			t.Fatal(err)
		}
		all := run(t, env, c.kind, full, c.in)
		told := *env
		told.Used = c.used
		res, err := full.Run(context.Background(), &told, c.in)
		if err != nil {
			t.Fatalf("%s with Used: %v", c.kind, err)
		}
		for name, rec := range res.Outputs {
			defer rec.Release()
			if cols, ok := c.used[name]; ok && name != "rejected" && int(rec.NumCols()) != len(cols) {
				t.Errorf("%s %s output %s with Used %v: columns %v", c.kind, c.params, name, cols, table.Names(rec))
			}
			got := UsedColumns(rec, c.used[name])
			defer got.Release()
			want := UsedColumns(all.Outputs[name], c.used[name])
			defer want.Release()
			if got, w := csvOf(t, got), csvOf(t, want); got != w {
				t.Errorf("%s %s output %s with Used %v:\n%s\nwant\n%s", c.kind, c.params, name, c.used[name], got, w)
			}
		}
	}
}
