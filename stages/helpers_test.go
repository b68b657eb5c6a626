package stages

import (
	"bytes"
	"context"
	"log/slog"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"gopkg.in/yaml.v3"

	"github.com/kneepipe/kneepipe/internal/table"
)

// testEnv lends a stage a checked allocator; the test fails if anything
// allocated through it is still held when the test ends.
func testEnv(t *testing.T) *Env {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return &Env{Mem: mem, Log: slog.New(slog.DiscardHandler)}
}

// decode decodes a params mapping written as YAML ("" for none) against kind.
func decode(t *testing.T, kind, params string) (Params, error) {
	t.Helper()
	k, ok := Builtin()[kind]
	if !ok {
		t.Fatalf("no kind %q", kind)
	}
	var pn *yaml.Node
	if params != "" {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(params), &doc); err != nil {
			t.Fatalf("params %q: %v", params, err)
		}
		pn = doc.Content[0]
	}
	return k.DecodeParams(pn, &yaml.Node{Line: 1, Column: 1})
}

// build makes a stage of kind from YAML params, failing the test on error.
// The stage carries its parameters so that run checks what it returns
// against the kind's declared schemas.
func build(t *testing.T, kind, params string) Stage {
	t.Helper()
	p, err := decode(t, kind, params)
	if err != nil {
		t.Fatalf("%s params %q: %v", kind, params, err)
	}
	st, err := Builtin()[kind].New(p)
	if err != nil {
		t.Fatalf("%s.New(%q): %v", kind, params, err)
	}
	return &declared{Stage: st, params: p}
}

// declared is a stage with the parameters it was built from.
type declared struct {
	Stage
	params Params
}

// checkDeclared derives the kind's output schemas from the schemas of the
// records the stage ran on, and checks the outputs against them: a
// declaration cannot drift from what Run does.
func checkDeclared(t *testing.T, kind string, p Params, in map[string]arrow.RecordBatch, res *Result) {
	t.Helper()
	ins := map[string]Schema{}
	for port, rec := range in {
		ins[port] = schemaOfRecord(rec)
	}
	want, err := Builtin()[kind].OutputSchemas(p, ins)
	if err != nil {
		t.Errorf("%s ran on %v, but its declaration rejects those inputs: %v", kind, ins, err)
		return
	}
	for name, rec := range res.Outputs {
		if err := want[name].Match(rec.Schema()); err != nil {
			t.Errorf("%s output %s %v", kind, name, err)
		}
	}
}

// schemaOfRecord is the closed schema of a record's columns.
func schemaOfRecord(rec arrow.RecordBatch) Schema {
	var s Schema
	for _, f := range rec.Schema().Fields() {
		s.Cols = append(s.Cols, Col{f.Name, f.Type})
	}
	return s
}

// buildErr returns the error of decoding or constructing a stage.
func buildErr(t *testing.T, kind, params string) error {
	t.Helper()
	p, err := decode(t, kind, params)
	if err != nil {
		return err
	}
	_, err = Builtin()[kind].New(p)
	return err
}

// run runs st and registers the release of its outputs. It checks that
// the outputs are exactly the kind's declared outputs.
func run(t *testing.T, env *Env, kind string, st Stage, in map[string]arrow.RecordBatch) *Result {
	t.Helper()
	d, isDeclared := st.(*declared)
	if isDeclared {
		st = d.Stage
	}
	res, err := st.Run(context.Background(), env, in)
	if err != nil {
		t.Fatalf("%s.Run: %v", kind, err)
	}
	if isDeclared {
		checkDeclared(t, kind, d.params, in, res)
	}
	t.Cleanup(func() {
		for _, r := range res.Outputs {
			r.Release()
		}
	})
	var got, want []string
	for name := range res.Outputs {
		got = append(got, name)
	}
	for _, p := range Builtin()[kind].Outputs {
		want = append(want, p.Name)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s outputs %v, want %v", kind, got, want)
	}
	return res
}

// csvOf renders a record as the CSV kneepipe writes: a compact way to
// compare whole tables, column order and values included.
func csvOf(t *testing.T, rec arrow.RecordBatch) string {
	t.Helper()
	var b bytes.Buffer
	if err := table.WriteCSV(&b, rec); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// schemaOf renders column names and types: "name:type,...".
func schemaOf(rec arrow.RecordBatch) string {
	var parts []string
	for _, f := range rec.Schema().Fields() {
		parts = append(parts, f.Name+":"+f.Type.String())
	}
	return strings.Join(parts, ",")
}

// lines joins CSV lines, each ended by "\n".
func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// rows builds a record of string columns from a header and rows of cells;
// columns named in ints are int64 ("" is a null).
func rows(t *testing.T, mem memory.Allocator, header string, ints []string, data ...string) arrow.RecordBatch {
	t.Helper()
	names := strings.Split(header, ",")
	cells := make([][]string, len(names))
	for _, line := range data {
		fs := strings.Split(line, "|")
		if len(fs) != len(names) {
			t.Fatalf("row %q has %d cells, header %d", line, len(fs), len(names))
		}
		for i, f := range fs {
			cells[i] = append(cells[i], f)
		}
	}
	cols := make([]table.Column, len(names))
	for i, name := range names {
		isInt := false
		for _, n := range ints {
			isInt = isInt || n == name
		}
		if !isInt {
			cols[i] = table.Strings(mem, name, cells[i])
			continue
		}
		vals := make([]int64, len(cells[i]))
		valid := make([]bool, len(cells[i]))
		for r, c := range cells[i] {
			if c == "" {
				continue
			}
			valid[r] = true
			var v int64
			neg := strings.HasPrefix(c, "-")
			for _, d := range strings.TrimPrefix(c, "-") {
				v = v*10 + int64(d-'0')
			}
			if neg {
				v = -v
			}
			vals[r] = v
		}
		cols[i] = table.Int64s(mem, name, vals, valid)
	}
	return table.New(cols...)
}
