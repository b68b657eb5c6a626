package runner

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kneepipe/kneepipe/stages"
)

func noEnv(string) (string, bool) { return "", false }

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// base is a valid start most error cases extend: lines 1-5.
const base = `version: 1
stages:
  - name: raw
    kind: read
    params: {path: raw.csv}
`

// objectsOnly is a listing: lines 1-4.
const objectsOnly = `version: 1
stages:
  - name: objects
    kind: list
`

// graded is the default pipeline's start: lines 1-10.
const graded = objectsOnly + `  - name: hashed
    kind: fetch-hash
    inputs: {objects: objects}
  - name: graded
    kind: map-severity
    inputs: {rows: hashed}
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		pos  string   // "line:col", "" for an error without a place
		msg  []string // substrings of the message after the position
	}{
		// YAML itself. yaml.v3 gives a line only (and for parser errors the
		// line where the enclosing block starts).
		// yaml.v3 reports parser errors 0-based; the loader adds one: line 3 is
		// the end of input, where the unclosed list was noticed.
		{"malformed YAML", "version: 1\nstages: [\n", "3:1", []string{"YAML syntax: did not find expected node content"}},
		{"bad indentation", "version: 1\nstages:\n  - name: a\n    kind: list\n  - name: b\n    kind: list\n     x: 1\n", "7:1", []string{"YAML syntax: mapping values are not allowed"}},
		{"tab indentation", "version: 1\nstages:\n\t- a\n", "3:1", []string{"YAML syntax: found character that cannot start any token"}},
		{"empty file", "", "", []string{"empty pipeline file"}},
		{"only comments", "# nothing\n", "", []string{"empty pipeline file"}},
		{"not a mapping", "- a\n- b\n", "1:1", []string{"pipeline must be a mapping"}},

		// Keys.
		{"unknown top-level key", "version: 1\nstagse: []\n", "2:1", []string{`pipeline: unknown key "stagse"`, "known: artifacts, source, stages, version"}},
		{"top-level key twice", "version: 1\nversion: 1\nstages: []\n", "2:1", []string{`pipeline: key "version" given twice`}},
		{"stages missing", "version: 1\n", "1:1", []string{`pipeline: key "stages" is required`}},
		{"unsupported version", "version: 2\nstages: []\n", "1:10", []string{`version "2" is not supported`}},
		{"stages not a list", "version: 1\nstages: {a: b}\n", "2:9", []string{"stages must be a list"}},
		{"unknown source key", "version: 1\nsource: {uri: x, bogus: 1}\nstages: []\n", "2:18", []string{`source: unknown key "bogus"`, "endpoint, list_depth, path_style, region, uri"}},
		{"path_style not a bool", "version: 1\nsource: {path_style: maybe}\nstages: []\n", "2:22", []string{"source.path_style must be true or false"}},
		{"unknown stage key", "version: 1\nstages:\n  - name: a\n    kind: list\n    parms: {}\n", "5:5", []string{`stage: unknown key "parms"`, "known: cache, inputs, kind, name, params"}},
		{"stage without kind", "version: 1\nstages:\n  - name: a\n", "3:5", []string{`stage: key "kind" is required`}},
		{"bad stage name", "version: 1\nstages:\n  - name: a.b\n    kind: list\n", "3:11", []string{`stage name "a.b": use letters, digits, '-' and '_'`}},
		{"stage is an alias", "version: 1\nstages:\n  - &s {name: a, kind: list}\n  - *s\n", "4:5", []string{"stage must be a mapping"}},

		// Kinds and parameters.
		{"unknown stage kind", "version: 1\nstages:\n  - name: a\n    kind: lst\n", "4:11", []string{`stage "a": unknown kind "lst"`, "(known: cross-check, dedupe, ", "map-severity"}},
		{"unknown parameter", "version: 1\nstages:\n  - name: a\n    kind: list\n    params: {sufix: .png}\n", "5:14", []string{`stage "a": list: unknown parameter "sufix" (did you mean "suffix"?) (known: suffix, suffixes, ignore_case)`}},
		{"parameter twice", "version: 1\nstages:\n  - name: a\n    kind: read\n    params: {path: x.csv, path: y.csv}\n", "5:27", []string{`stage "a": read: parameter "path" given twice`}},
		{"int given abc", "version: 1\nstages:\n  - name: l\n    kind: list\n  - name: f\n    kind: fetch-hash\n    inputs: {objects: l}\n    params: {concurrency: abc}\n", "8:27", []string{`stage "f": fetch-hash: parameter "concurrency": "abc" is not an integer`}},
		{"int out of range", "version: 1\nstages:\n  - name: l\n    kind: list\n  - name: f\n    kind: fetch-hash\n    inputs: {objects: l}\n    params: {concurrency: 0}\n", "8:27", []string{`parameter "concurrency": 0 is out of range 1..1024`}},
		{"list given scalar", base + "  - name: u\n    kind: dedupe\n    inputs: {rows: raw}\n    params: {on: expert}\n", "9:18", []string{`stage "u": dedupe: parameter "on": want a list of strings`}},
		{"enum value", base + "  - name: f\n    kind: filter\n    inputs: {rows: raw, by: raw}\n    params: {mode: both}\n", "9:20", []string{`stage "f": filter: parameter "mode": "both" is not one of keep, drop`}},
		{"bool given yes", base + "  - name: c\n    kind: cross-check\n    inputs: {rows: raw}\n    params: {missing_disagrees: yes}\n", "9:33", []string{`parameter "missing_disagrees": "yes" is not true or false`}},
		{"missing required param", "version: 1\nstages:\n  - name: raw\n    kind: read\n", "3:5", []string{`stage "raw": read: parameter "path" is required`}},
		{"missing required param with params", "version: 1\nstages:\n  - name: raw\n    kind: read\n    params: {format: csv}\n", "5:13", []string{`stage "raw": read: parameter "path" is required`}},
		{"kind rejects values", "version: 1\nstages:\n  - name: raw\n    kind: read\n    params: {path: data.xlsx}\n", "5:13", []string{`stage "raw": path "data.xlsx": cannot tell the format from the extension; set format`}},
		{"bad layout", base + "  - name: m\n    kind: map-severity\n    inputs: {rows: raw}\n    params: {layout: '{expert}{file}'}\n", "9:13", []string{`stage "m": layout:`, "touch"}},

		// Inputs and the graph.
		{"missing input", base + "  - name: data\n    kind: map-severity\n", "6:5", []string{`stage "data": input "rows" is missing (kind map-severity reads rows)`}},
		{"missing input, inputs given", base + "  - name: data\n    kind: map-severity\n    inputs: {}\n", "8:13", []string{`stage "data": input "rows" is missing`}},
		{"unknown input port", base + "  - name: data\n    kind: map-severity\n    inputs: {row: raw}\n", "8:14", []string{`stage "data": kind map-severity has no input "row" (did you mean "rows"?) (inputs: rows)`}},
		{"input on a kind without inputs", "version: 1\nstages:\n  - name: a\n    kind: read\n    params: {path: x.csv}\n    inputs: {rows: a}\n", "6:14", []string{`kind read has no input "rows" (inputs: none)`}},
		{"input names a missing stage", base + "  - name: data\n    kind: map-severity\n    inputs: {rows: nope}\n", "8:20", []string{`stage "data" input "rows": no stage named "nope" (stages: data, raw)`}},
		{"input names a missing output", base + "  - name: data\n    kind: map-severity\n    inputs: {rows: raw.nope}\n", "8:20", []string{`stage "data" input "rows": stage "raw" (read) has no output "nope" (outputs: rows)`}},
		{"input empty", base + "  - name: data\n    kind: map-severity\n    inputs: {rows: ''}\n", "8:20", []string{`stage "data": input "rows" must name a stage`}},
		{"cycle", "version: 1\nstages:\n  - name: a\n    kind: dedupe\n    inputs: {rows: c}\n  - name: b\n    kind: dedupe\n    inputs: {rows: a}\n  - name: c\n    kind: dedupe\n    inputs: {rows: b.removed}\n", "3:5", []string{"cycle: a -> c -> b -> a"}},
		{"self cycle", "version: 1\nstages:\n  - name: a\n    kind: dedupe\n    inputs: {rows: a.removed}\n", "3:5", []string{"cycle: a -> a"}},
		{"duplicate stage name", base + "  - name: raw\n    kind: read\n    params: {path: other.csv}\n", "6:5", []string{`duplicate stage name "raw" (first at line 3)`}},

		// Variables.
		{"unset variable without default", "version: 1\nstages:\n  - name: raw\n    kind: read\n    params: {path: \"${MANIFEST}\"}\n", "5:20", []string{"variable MANIFEST is not set", "${MANIFEST:-value}"}},
		{"unclosed variable", "version: 1\nstages:\n  - {name: a, kind: read, params: {path: \"${P\"}}\n", "3:42", []string{`unclosed ${ in "${P"`}},
		{"bad variable name", "version: 1\nstages:\n  - {name: a, kind: read, params: {path: \"${1P}\"}}\n", "3:42", []string{`bad variable name "1P"`}},

		// Artifacts.
		{"artifact name escapes", base + "artifacts:\n  - from: raw\n    name: ../x\n", "8:11", []string{`artifact name "../x": give a relative file name without extension, inside --out`}},
		{"artifact name absolute", base + "artifacts:\n  - from: raw\n    name: /tmp/x\n", "8:11", []string{`artifact name "/tmp/x"`}},
		{"artifact name with extension", base + "artifacts:\n  - from: raw\n    name: x.csv\n", "8:11", []string{`artifact name "x.csv": give a relative file name without extension`}},
		{"artifact name parquet extension", base + "artifacts:\n  - from: raw\n    name: out/x.parquet\n", "8:11", []string{`artifact name "out/x.parquet"`}},
		{"artifact name empty", base + "artifacts:\n  - from: raw\n    name: ''\n", "8:11", []string{`artifact name ""`}},
		{"artifact file written twice", base + "artifacts:\n  - from: raw\n    name: x\n  - from: raw\n    name: x\n    formats: [csv]\n", "9:5", []string{`artifact file "x.csv" is written twice`}},
		{"artifact unknown format", base + "artifacts:\n  - from: raw\n    name: x\n    formats: [xlsx]\n", "9:14", []string{`artifact formats: "xlsx" is not csv, parquet`}},
		{"artifact no formats", base + "artifacts:\n  - from: raw\n    name: x\n    formats: []\n", "9:14", []string{"artifact formats: name csv, parquet"}},
		{"artifact formats scalar", base + "artifacts:\n  - from: raw\n    name: x\n    formats: csv\n", "9:14", []string{"artifact formats must be a list"}},
		{"artifact from missing stage", base + "artifacts:\n  - from: nope\n    name: x\n", "7:11", []string{`artifact "x": no stage named "nope" (stages: raw)`}},
		{"artifact from missing output", base + "artifacts:\n  - from: raw.nope\n    name: x\n", "7:11", []string{`artifact "x": stage "raw" (read) has no output "nope" (outputs: rows)`}},
		{"artifact without from", base + "artifacts:\n  - name: x\n", "7:5", []string{`artifact: key "from" is required`}},
		{"artifact unknown key", base + "artifacts:\n  - from: raw\n    name: x\n    colums: [a]\n", "9:5", []string{`artifact: unknown key "colums"`}},
		{"artifact rename twice", base + "artifacts:\n  - from: raw\n    name: x\n    rename: {a: b, a: c}\n", "9:20", []string{`artifact rename: "a" given twice`}},

		// Columns, checked against what each kind declares (graded: lines 1-10).
		{"dedupe on a mistyped column", graded + "  - name: u\n    kind: dedupe\n    inputs: {rows: graded}\n    params: {on: [file_id, expertt]}\n", "14:28", []string{`stage "u": dedupe: parameter "on": rows has no column "expertt" (did you mean "expert"?) (columns: key string, relative_path string,`, "file_id string,", "expert string, severity int64, severity_label string, file string)"}},
		{"dedupe on, block list", graded + "  - name: u\n    kind: dedupe\n    inputs: {rows: graded}\n    params:\n      on:\n        - expert\n        - fileid\n", "17:11", []string{`parameter "on": rows has no column "fileid" (did you mean "file_id"?)`}},
		{"dedupe check left at its default", objectsOnly + "  - name: u\n    kind: dedupe\n    inputs: {rows: objects}\n    params: {on: [key]}\n", "8:13", []string{`stage "u": dedupe: parameter "check" (default severity): rows has no column "severity"`}},
		{"default column, no params", objectsOnly + "  - name: u\n    kind: dedupe\n    inputs: {rows: objects}\n", "5:5", []string{`parameter "on" (default [expert, file_id]): rows has no column "expert"`}},
		{"filter by_column", graded + "  - name: f\n    kind: filter\n    inputs: {rows: graded, by: hashed.rejected}\n    params: {column: key, by_column: kye}\n", "14:38", []string{`stage "f": filter: parameter "by_column": by has no column "kye" (did you mean "key"?) (columns: key string, reason string)`}},
		{"filter column defaults into by", graded + "  - name: f\n    kind: filter\n    inputs: {rows: graded, by: hashed.failed}\n", "11:5", []string{`parameter "column" (default file_id): by has no column "file_id"`}},
		{"cross-check grade of a CSV read without types", base + "  - name: c\n    kind: cross-check\n    inputs: {rows: raw}\n", "6:5", []string{`stage "c": cross-check: parameter "grade" (default severity): rows has no int64 column "severity" (columns: + the file's other columns, as strings)`}},
		{"cross-check rater", graded + "  - name: c\n    kind: cross-check\n    inputs: {rows: graded}\n    params: {rater: Expert}\n", "14:21", []string{`parameter "rater": rows has no column "Expert" (did you mean "expert"?)`}},
		{"map-severity path of the wrong type", objectsOnly + "  - name: m\n    kind: map-severity\n    inputs: {rows: objects}\n    params: {path_column: size}\n", "8:27", []string{`stage "m": map-severity: parameter "path_column": column "size" of rows is int64, want string`}},
		{"fetch-hash on a CSV", base + "  - name: h\n    kind: fetch-hash\n    inputs: {objects: raw}\n", "8:23", []string{`stage "h": fetch-hash: input "objects" (raw.rows): objects has no int64 column "size"`}},
		{"fetch-hash twice", graded + "  - name: h\n    kind: fetch-hash\n    inputs: {objects: hashed}\n", "13:23", []string{`input "objects" (hashed.rows): already has a column "sha256", which this stage adds`}},
		{"report on the wrong table", graded + "  - name: c\n    kind: cross-check\n    inputs: {rows: graded}\n  - name: r\n    kind: report\n    inputs: {rows: graded, matrix: c.kappa, kappa: c.kappa, disagreements: c.disagreements, excluded: graded}\n", "16:36", []string{`stage "r": report: input "matrix" (c.kappa): matrix has no column "grade_a"`}},
		{"report without its optional inputs", graded + "  - name: c\n    kind: cross-check\n    inputs: {rows: graded}\n  - name: r\n    kind: report\n    inputs: {rows: graded, matrix: c.matrix, kappa: c.kappa, disagreements: c.disagreements}\n", "", nil},
		{"report splits of a table without splits", graded + "  - name: c\n    kind: cross-check\n    inputs: {rows: graded}\n  - name: r\n    kind: report\n    inputs: {rows: graded, matrix: c.matrix, kappa: c.kappa, disagreements: c.disagreements, splits: graded}\n", "16:102", []string{`stage "r": report: input "splits" (graded.rows): splits has no column "split"`}},
		{"report input near miss", graded + "  - name: c\n    kind: cross-check\n    inputs: {rows: graded}\n  - name: r\n    kind: report\n    inputs: {rows: graded, matrix: c.matrix, kappa: c.kappa, disagreements: c.disagreements, split: graded}\n", "16:94", []string{`kind report has no input "split" (did you mean "splits"?) (inputs: rows, matrix (optional), kappa (optional), disagreements (optional), excluded (optional), splits (optional), near_groups (optional))`}},
		{"report required input missing", graded + "  - name: c\n    kind: cross-check\n    inputs: {rows: graded}\n  - name: r\n    kind: report\n    inputs: {splits: graded}\n", "16:13", []string{`input "rows" is missing (kind report reads rows, matrix (optional), kappa (optional), disagreements (optional), excluded (optional), splits (optional), near_groups (optional))`}},
		{"report with part of a cross-check", graded + "  - name: c\n    kind: cross-check\n    inputs: {rows: graded}\n  - name: r\n    kind: report\n    inputs: {rows: graded, matrix: c.matrix, kappa: c.kappa}\n", "14:5", []string{`stage "r": report: inputs matrix, kappa and disagreements come from one cross-check: wire all three or none (given: matrix, kappa)`}},
		{"artifact column mistyped", objectsOnly + "artifacts:\n  - from: objects\n    name: x\n    columns: [key, relpath]\n", "8:20", []string{`artifact "x": columns: objects.objects has no column "relpath" (columns: key string, relative_path string, uri string, size int64, etag string, last_modified timestamp)`}},
		{"artifact column near miss", objectsOnly + "artifacts:\n  - from: objects\n    name: x\n    columns:\n      - uri\n      - szie\n", "10:9", []string{`columns: objects.objects has no column "szie" (did you mean "size"?)`}},
		{"artifact column twice", objectsOnly + "artifacts:\n  - from: objects\n    name: x\n    columns: [key, size, key]\n", "8:26", []string{`artifact "x": columns: "key" given twice`}},
		{"artifact rename onto a column", objectsOnly + "artifacts:\n  - from: objects\n    name: x\n    rename: {relative_path: key}\n", "8:29", []string{`artifact "x": rename: "relative_path" onto "key", which is already a column of objects.objects`}},
		{"artifact renames onto one name", objectsOnly + "artifacts:\n  - from: objects\n    name: x\n    rename: {key: a, uri: a}\n", "8:27", []string{`rename: "key" and "uri" would both be named "a"`}},
		{"artifact rename of no column", objectsOnly + "artifacts:\n  - from: objects\n    name: x\n    rename: {sise: bytes}\n", "8:14", []string{`rename: objects.objects has no column "sise" (did you mean "size"?)`}},
		{"artifact rename outside columns", objectsOnly + "artifacts:\n  - from: objects\n    name: x\n    columns: [key]\n    rename: {size: bytes}\n", "9:14", []string{`rename: column "size" is not among the artifact's columns`}},
		{"artifact rename onto a column left out", objectsOnly + "artifacts:\n  - from: objects\n    name: x\n    columns: [key, size]\n    rename: {size: uri, key: size}\n", "", nil},
		{"artifact files of a table", objectsOnly + "artifacts:\n  - from: objects\n    name: x\n    formats: [files]\n", "6:11", []string{`artifact "x": format files writes a table of name string, content binary; objects.objects has key string`}},

		// Near misses suggest the name meant.
		{"kind near miss", "version: 1\nstages:\n  - name: a\n    kind: dedup\n", "4:11", []string{`unknown kind "dedup" (did you mean "dedupe"?)`}},
		{"key near miss", "version: 1\nstagse: []\n", "2:1", []string{`unknown key "stagse" (did you mean "stages"?)`}},
		{"stage near miss", graded + "  - name: u\n    kind: dedupe\n    inputs: {rows: grade}\n", "13:20", []string{`no stage named "grade" (did you mean "graded"?) (stages: `}},
		{"output near miss", graded + "  - name: u\n    kind: dedupe\n    inputs: {rows: hashed.rejects}\n", "13:20", []string{`has no output "rejects" (did you mean "rejected"?)`}},
		{"no suggestion when far", "version: 1\nstages:\n  - name: a\n    kind: sort\n", "4:11", []string{`unknown kind "sort" (known: `}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("dir/p.yaml", []byte(tt.src), stages.Builtin(), noEnv)
			if tt.msg == nil { // a case that must load
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("parsed: %+v", cfg)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is a %T, want *ConfigError", err, err)
			}
			prefix := "dir/p.yaml: "
			if tt.pos != "" {
				prefix = "dir/p.yaml:" + tt.pos + ": "
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, prefix) {
				t.Errorf("error %q does not start with %q", msg, prefix)
			}
			for _, m := range tt.msg {
				if !strings.Contains(msg, m) {
					t.Errorf("error %q does not contain %q", msg, m)
				}
			}
		})
	}
}

// Two names that are the same file once cleaned must count as one file.
func TestParseArtifactSameFileUnderTwoNames(t *testing.T) {

	for _, other := range []string{"a/../b", "./b", "b/"} {
		src := base + "artifacts:\n  - from: raw\n    name: b\n  - from: raw\n    name: " + other + "\n"
		if _, err := Parse("p.yaml", []byte(src), stages.Builtin(), noEnv); err == nil {
			t.Errorf("artifacts b and %s: parsed, want an error (same file, or a name that is not clean)", other)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(path, stages.Builtin(), noEnv)
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Load(missing) = %v", err)
	}
}

func stageByName(cfg *Config, name string) *Stage {
	for _, st := range cfg.Stages {
		if st.Name == name {
			return st
		}
	}
	return nil
}

func stageNames(list []*Stage) []string {
	var out []string
	for _, st := range list {
		out = append(out, st.Name)
	}
	return out
}

func TestLoadRepoPipeline(t *testing.T) {
	cfg, err := Load("../pipeline.yaml", stages.Builtin(), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.URI != "testdata/sample" || cfg.Source.Endpoint != "" || cfg.Source.Region != "" || cfg.Source.PathStyle != nil {
		t.Errorf("source = %+v", cfg.Source)
	}
	// The stages the notebook's steps need, in this order (others may follow).
	names := stageNames(cfg.Stages)
	if want := []string{"list", "fetch", "graded", "unique", "agreement", "agreed", "near", "clean"}; len(names) < len(want) || !reflect.DeepEqual(names[:len(want)], want) {
		t.Errorf("stages %v, want to start with %v", names, want)
	}
	refs := map[string]string{}
	for _, st := range cfg.Stages {
		for port, r := range st.Inputs {
			refs[st.Name+"."+port] = r.String()
		}
	}
	for in, want := range map[string]string{
		"fetch.objects":  "list.objects", // a bare stage name is its first output
		"graded.rows":    "fetch.rows",
		"unique.rows":    "graded.rows",
		"agreement.rows": "unique.rows",
		"agreed.rows":    "unique.rows",
		"agreed.by":      "agreement.disagreements",
		"near.rows":      "agreed.rows",
		"clean.rows":     "near.rows",
	} {
		if refs[in] != want {
			t.Errorf("input %s = %q, want %q", in, refs[in], want)
		}
	}
	// A reference keeps its place in the file, for errors about it.
	data, _ := os.ReadFile("../pipeline.yaml")
	var at Pos
	for i, line := range strings.Split(string(data), "\n") {
		if c := strings.Index(line, "by: agreement.disagreements"); c >= 0 {
			at = Pos{i + 1, c + len("by: ") + 1}
		}
	}
	if r := stageByName(cfg, "agreed").Inputs["by"]; r.Pos != at || at.Line == 0 {
		t.Errorf("agreed.by at %v, want %v", r.Pos, at)
	}
	if got := stageByName(cfg, "clean").Params.Strings("on"); !reflect.DeepEqual(got, []string{"file_id"}) {
		t.Errorf("clean on %v", got)
	}
	if !stageByName(cfg, "agreement").Params.Bool("missing_disagrees") || stageByName(cfg, "agreed").Params.Str("mode") != "drop" {
		t.Error("params not decoded")
	}
	if got := stageByName(cfg, "graded").Params.Str("layout"); got != "{expert}/{severity}/{file}" {
		t.Errorf("default layout %q", got)
	}
	a := cfg.Artifacts[0]
	if a.Name != "clean" || a.From.String() != "clean.rows" || !reflect.DeepEqual(a.Files(), []string{"clean.parquet", "clean.csv"}) ||
		!reflect.DeepEqual(a.Columns, []string{"file_id", "severity", "uri", "relative_path", "size"}) {
		t.Errorf("artifact 0 = %+v", a)
	}
	files := map[string]bool{}
	for _, a := range cfg.Artifacts {
		for _, f := range a.Files() {
			files[f] = true
		}
	}
	for _, f := range []string{"clean.parquet", "clean.csv", "agreement_matrix.csv", "disagreements.csv", "duplicates_removed.csv", "duplicate_conflicts.csv", "rejected.csv", "failed.csv"} {
		if !files[f] {
			t.Errorf("no artifact file %s (have %v)", f, files)
		}
	}

	// The environment overrides the defaults.
	cfg, err = Load("../pipeline.yaml", stages.Builtin(), envOf(map[string]string{
		"KNEEPIPE_SOURCE": "s3://tnn-hse-medtech/datasets/", "KNEEPIPE_ENDPOINT": "https://storage.yandexcloud.net", "KNEEPIPE_REGION": "ru-central1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.URI != "s3://tnn-hse-medtech/datasets/" || cfg.Source.Endpoint != "https://storage.yandexcloud.net" || cfg.Source.Region != "ru-central1" {
		t.Errorf("source with environment = %+v", cfg.Source)
	}
}

func TestLoadExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		cfg, err := Load(f, stages.Builtin(), noEnv)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(cfg.Stages) == 0 || len(cfg.Artifacts) == 0 {
			t.Errorf("%s: %d stages, %d artifacts", f, len(cfg.Stages), len(cfg.Artifacts))
		}
		if _, err := Order(cfg.Stages); err != nil {
			t.Errorf("%s: Order: %v", f, err)
		}
	}

	cfg, err := Load("../examples/notebook.yaml", stages.Builtin(), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, a := range cfg.Artifacts {
		got[a.Name] = a.Files()
	}
	for _, name := range []string{"raw_data", "deleted_paths", "different_severity", "normalized_data"} {
		if !reflect.DeepEqual(got[name], []string{name + ".csv", name + ".parquet"}) {
			t.Errorf("notebook artifact %s files %v", name, got[name])
		}
	}
	if a := cfg.Artifacts[0]; !reflect.DeepEqual(a.Rename, map[string]string{"severity_label": "severity"}) {
		t.Errorf("raw_data rename %v", a.Rename)
	}

	cfg, err = Load("../examples/notebook-from-csv.yaml", stages.Builtin(), envOf(map[string]string{"MANIFEST": "out/raw.csv"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Stages[0].Params.Str("path"); got != "out/raw.csv" {
		t.Errorf("read path with MANIFEST set: %q", got)
	}
}

// Order puts producers first and otherwise keeps file order.
func TestOrder(t *testing.T) {
	src := `version: 1
stages:
  - name: report
    kind: filter
    inputs: {rows: data, by: check.disagreements}
  - name: raw
    kind: read
    params: {path: raw.csv}
  - name: check
    kind: cross-check
    inputs: {rows: data}
  - name: data
    kind: map-severity
    inputs: {rows: raw}
  - name: other
    kind: read
    params: {path: other.csv}
`
	cfg, err := Parse("p.yaml", []byte(src), stages.Builtin(), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := stageNames(cfg.Stages), []string{"report", "raw", "check", "data", "other"}; !reflect.DeepEqual(got, want) {
		t.Errorf("cfg.Stages %v, want file order %v", got, want)
	}
	ordered, err := Order(cfg.Stages)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := stageNames(ordered), []string{"raw", "data", "check", "report", "other"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Order %v, want %v", got, want)
	}
}

func TestParseVariables(t *testing.T) {
	src := `version: 1
source:
  uri: ${SRC:-testdata/sample}
  endpoint: "$${literal}"
  region: ${REGION:-ru-central1}
stages:
  - name: raw
    kind: read
    params: {path: "${DIR}/${FILE:-raw.csv}"}
`
	cfg, err := Parse("p.yaml", []byte(src), stages.Builtin(), envOf(map[string]string{"DIR": "/data", "REGION": ""}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.URI != "testdata/sample" || cfg.Source.Endpoint != "${literal}" || cfg.Source.Region != "ru-central1" {
		t.Errorf("source = %+v", cfg.Source)
	}
	if got := cfg.Stages[0].Params.Str("path"); got != "/data/raw.csv" {
		t.Errorf("path = %q", got)
	}
	// Keys are not expanded.
	_, err = Parse("p.yaml", []byte("version: 1\n${K}: x\nstages: []\n"), stages.Builtin(), envOf(map[string]string{"K": "stages"}))
	if err == nil || !strings.Contains(err.Error(), `unknown key "${K}"`) {
		t.Errorf("variable in a key: %v", err)
	}
}
