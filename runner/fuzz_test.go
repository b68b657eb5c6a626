package runner

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kneepipe/kneepipe/stages"
)

// FuzzParse: Parse never panics on any bytes; every error is a
// *ConfigError naming the file first; a pipeline it accepts is a DAG whose
// references all resolve.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../examples/*.yaml")
	for _, name := range append(files, "../pipeline.yaml") {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		base,
		base + "  - name: data\n    kind: map-severity\n    inputs: {rows: raw}\n    params: {layout: \"${L}\"}\n",
		base + "artifacts:\n  - from: raw\n    name: x\n  - from: raw.rows\n    name: y\n    formats: [csv]\n    columns: [a]\n    rename: {a: b}\n",
		"version: 1\nstages:\n  - &s {name: a, kind: list}\n  - *s\n",
		"version: 1\nstages:\n  - name: a\n    kind: dedupe\n    inputs: {rows: a.removed}\n",
		"a: &a [*a]\n",
		"version: 1\nstages: [\n",
		"\t",
	} {
		f.Add([]byte(s))
	}
	kinds := stages.Builtin()
	lookup := envOf(map[string]string{"SET": "value", "EMPTY": "", "L": "{expert}/{severity}/{file}", "BAD": "\xff"})
	f.Fuzz(func(t *testing.T, data []byte) {
		const file = "fuzz/pipeline.yaml"
		cfg, err := Parse(file, data, kinds, lookup)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is a %T, want *ConfigError", err, err)
			}
			if !strings.HasPrefix(err.Error(), file+":") {
				t.Fatalf("error %q does not start with the file name", err)
			}
			if cfg != nil {
				t.Fatal("a config and an error")
			}
			return
		}
		byName := map[string]*Stage{}
		for _, st := range cfg.Stages {
			byName[st.Name] = st
		}
		check := func(what string, r Ref) {
			up, ok := byName[r.Stage]
			if !ok || !up.Kind.Output(r.Output) {
				t.Fatalf("%s: unresolved reference %s", what, r)
			}
		}
		for _, st := range cfg.Stages {
			if st.Impl == nil {
				t.Fatalf("stage %s not built", st.Name)
			}
			for _, p := range st.Kind.Inputs {
				r, ok := st.Inputs[p.Name]
				if !ok {
					t.Fatalf("stage %s: input %s missing", st.Name, p.Name)
				}
				check(st.Name+"."+p.Name, r)
			}
		}
		files := map[string]bool{}
		for _, a := range cfg.Artifacts {
			check("artifact "+a.Name, a.From)
			for _, f := range a.Files() {
				if files[f] {
					t.Fatalf("artifact file %s twice", f)
				}
				files[f] = true
			}
		}
		ordered, err := Order(cfg.Stages)
		if err != nil || len(ordered) != len(cfg.Stages) {
			t.Fatalf("Order: %d of %d stages, %v", len(ordered), len(cfg.Stages), err)
		}
		done := map[string]bool{}
		for _, st := range ordered {
			for _, r := range st.Inputs {
				if !done[r.Stage] {
					t.Fatalf("%s ordered before its input %s", st.Name, r.Stage)
				}
			}
			done[st.Name] = true
		}
	})
}
