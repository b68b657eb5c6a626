package stages

import (
	"maps"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/kneepipe/kneepipe/internal/table"
)

// plainOf is rec with its dictionary string columns plain.
func plainOf(t *testing.T, env *Env, rec arrow.RecordBatch) arrow.RecordBatch {
	t.Helper()
	var cols []table.Column
	for i, c := range rec.Columns() {
		p, err := table.Plain(env.Mem, c)
		if err != nil {
			t.Fatal(err)
		}
		cols = append(cols, table.Column{Name: rec.ColumnName(i), Array: p})
	}
	return table.New(cols...)
}

// The notebook's table stages give the same outputs, every one written as
// CSV, whether their string columns come dictionary-encoded (as read
// makes them) or plain.
func TestStagesSameOnDictionaryAndPlain(t *testing.T) {
	env := testEnv(t)
	raw := run(t, env, "read", build(t, "read", "{path: ../testdata/golden/notebook/raw_data.csv}"), nil).Outputs["rows"]
	if _, ok := raw.Column(1).(*array.Dictionary); !ok {
		t.Fatalf("read made file_id %s, want a dictionary", raw.Column(1).DataType())
	}
	plain := plainOf(t, env, raw)
	defer plain.Release()
	outputs := func(raw arrow.RecordBatch) map[string]string {
		out := map[string]string{}
		keep := func(stage string, res *Result) {
			for name, rec := range res.Outputs {
				out[stage+"."+name] = csvOf(t, rec)
			}
		}
		in := func(kv ...any) map[string]arrow.RecordBatch {
			m := map[string]arrow.RecordBatch{}
			for i := 0; i < len(kv); i += 2 {
				m[kv[i].(string)] = kv[i+1].(arrow.RecordBatch)
			}
			return m
		}
		data := run(t, env, "map-severity", build(t, "map-severity", ""), in("rows", raw))
		keep("data", data)
		unique := run(t, env, "dedupe", build(t, "dedupe", ""), in("rows", data.Outputs["rows"]))
		keep("unique", unique)
		byPath := run(t, env, "dedupe", build(t, "dedupe", "{on: [relative_path, severity]}"), in("rows", data.Outputs["rows"]))
		keep("byPath", byPath)
		check := run(t, env, "cross-check", build(t, "cross-check", "{missing_disagrees: true}"), in("rows", unique.Outputs["rows"]))
		keep("check", check)
		for _, mode := range []string{"keep", "drop"} {
			keep(mode, run(t, env, "filter", build(t, "filter", "{mode: "+mode+"}"), in("rows", data.Outputs["rows"], "by", check.Outputs["disagreements"])))
			keep(mode+"Plain", run(t, env, "filter", build(t, "filter", "{mode: "+mode+", column: expert}"), in("rows", data.Outputs["rows"], "by", raw)))
		}
		return out
	}
	dict, want := outputs(raw), outputs(plain)
	if len(dict) != len(want) || len(dict) < 15 {
		t.Fatalf("%d outputs on dictionaries, %d on plain columns", len(dict), len(want))
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if dict[k] != want[k] {
			t.Errorf("%s differs on dictionary columns:\n%s\nplain:\n%s", k, dict[k], want[k])
		}
	}
}

// dictOf is rec with its plain string columns dictionary-encoded, as read
// gives a CSV's columns.
func dictOf(t *testing.T, env *Env, rec arrow.RecordBatch) arrow.RecordBatch {
	t.Helper()
	var cols []table.Column
	for i, c := range rec.Columns() {
		if s, ok := c.(*array.String); ok {
			d := table.NewDictColumn(s.Len())
			for k := range s.Len() {
				d.Append(s.Value(k))
			}
			c = d.NewArray(env.Mem)
		} else {
			c.Retain()
		}
		cols = append(cols, table.Column{Name: rec.ColumnName(i), Array: c})
	}
	out := table.New(cols...) // owns the arrays
	t.Cleanup(out.Release)
	return out
}

// The report reads cross-check's matrix and kappa whether their rater
// columns come plain or dictionary-encoded (a matrix saved as CSV and
// read back), and writes the same files.
func TestReportSameOnDictionaryAndPlain(t *testing.T) {
	env := testEnv(t)
	in := rows(t, env.Mem, "file_id,expert,severity", []string{"severity"},
		"a|I|0", "a|II|0", "b|I|1", "b|II|2", "c|I|2", "c|II|2", "d|I|4", "d|II|3")
	defer in.Release()
	inputs := reportInputs(t, env, in)
	files := func(inputs map[string]arrow.RecordBatch) string {
		out := run(t, env, "report", build(t, "report", ""), inputs).Outputs["files"]
		content := out.Column(1).(*array.Binary)
		var all []byte
		for i := range content.Len() {
			all = append(all, content.Value(i)...)
		}
		return string(all)
	}
	want := files(inputs)
	for _, name := range []string{"matrix", "kappa"} {
		dict := maps.Clone(inputs)
		dict[name] = dictOf(t, env, inputs[name])
		if _, ok := dict[name].Column(0).(*array.Dictionary); !ok {
			t.Fatalf("%s: column 0 is %s, want a dictionary", name, dict[name].Column(0).DataType())
		}
		if got := files(dict); got != want {
			t.Errorf("report on a dictionary-encoded %s differs from the plain one", name)
		}
	}
}
