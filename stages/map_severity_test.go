package stages

import (
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

func TestParseLayoutErrors(t *testing.T) {
	tests := []struct {
		layout, want string
	}{
		{"", "no {field}"},
		{"plain/path.png", "no {field}"},
		{"{a}/{a}", `field "a" appears twice`},
		{"{a}{b}", "touch"},
		{"x/{a}{b}.png", "touch"},
		{"{a", `unclosed '{'`},
		{"x/{a}/{b", `unclosed '{'`},
		{"a}", `unmatched '}'`},
		{"{a}}/x", `unmatched '}'`},
		{"x}/{a}", `unmatched '}'`},
		{"{}", `bad field name ""`},
		{"{1a}", `bad field name "1a"`},
		{"{a-b}", `bad field name "a-b"`},
		{"{a b}", `bad field name "a b"`},
		{"{a{b}}", `bad field name "a{b"`},
		{"\xff/{a}", "not valid UTF-8"},
		{"{a:}", `field {a}: "" is not a regular expression`},
		{"{a:(x)}", `field {a}: "(x)" is not a regular expression without groups`},
		{"{a:[}", `field {a}: "[" is not a regular expression`},
		{"{a:x{2}", `unclosed '{'`},
		{"{a:[0-9}", `field {a}: "[0-9" is not a regular expression`},
		{"{a:x}{b}{c}", "touch"},
	}
	for _, tt := range tests {
		l, err := ParseLayout(tt.layout)
		if err == nil {
			t.Errorf("ParseLayout(%q) = %v, want an error", tt.layout, l.Fields)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseLayout(%q) error %q, want %q", tt.layout, err, tt.want)
		}
	}
}

func TestLayoutMatch(t *testing.T) {
	tests := []struct {
		layout string
		fields []string
		path   string
		want   []string // nil: no match
	}{
		{"{expert}/{severity}/{file}", []string{"expert", "severity", "file"},
			"MedicalExpert-I/0Normal/NormalG0 (1).png", []string{"MedicalExpert-I", "0Normal", "NormalG0 (1).png"}},
		{"{expert}/{severity}/{file}", nil,
			"MedicalExpert-I/2Mild/MildG2 (3, copy).png", []string{"MedicalExpert-I", "2Mild", "MildG2 (3, copy).png"}},
		{"{expert}/{severity}/{file}", nil,
			"MedicalExpert-II/1Doubtful/DoubtfulG1 (12) recheck.png", []string{"MedicalExpert-II", "1Doubtful", "DoubtfulG1 (12) recheck.png"}},
		{"{expert}/{severity}/{file}", nil, `E/0Normal/q"z.png`, []string{"E", "0Normal", `q"z.png`}},
		{"{expert}/{severity}/{file}", nil, "E/0Normal/a\nb", []string{"E", "0Normal", "a\nb"}},
		{"{expert}/{severity}/{file}", nil, "MedicalExpert-I/notes.txt", nil},
		{"{expert}/{severity}/{file}", nil, "a/b/c/d.png", nil},
		{"{expert}/{severity}/{file}", nil, "a//c.png", nil},
		{"{expert}/{severity}/{file}", nil, "/a/b/c.png", nil},
		{"{expert}/{severity}/{file}", nil, "a/b/", nil},
		{"{expert}/{severity}/{file}", nil, "", nil},
		// Literal text around fields, regexp metacharacters included.
		{"{expert}/{severity}/{stem} ({n}).png", []string{"expert", "severity", "stem", "n"},
			"E/2Mild/MildG2 (3, copy).png", []string{"E", "2Mild", "MildG2", "3, copy"}},
		{"{expert}/{severity}/{stem} ({n}).png", nil, "E/2Mild/MildG2 (3).pngx", nil},
		{"{expert}/{severity}/{stem} ({n}).png", nil, "E/2Mild/MildG2 (3)xpng", nil},
		{"{expert}/{severity}/{stem} ({n}).png", nil, "E/2Mild/MildG2 [3].png", nil},
		{"[{a}]+", []string{"a"}, "[x]+", []string{"x"}},
		{"[{a}]+", nil, "x", nil},
		{"[{a}]+", nil, "[x]]", nil},
		{"data/{a}.{b}", []string{"a", "b"}, "data/x.y.z", []string{"x.y", "z"}}, // greedy
		{"{a}", []string{"a"}, "Колено (левое).png", []string{"Колено (левое).png"}},
		// An invalid UTF-8 byte is not the replacement character in the layout.
		{"{a}\uFFFD{b}", []string{"a", "b"}, "x\xffy", nil},
		{"{a}\uFFFD{b}", nil, "x\uFFFDy", []string{"x", "y"}},
		{"{a}/{b}", nil, "x\xff/y", []string{"x\xff", "y"}},
		// A field with its own pattern may touch the next (kneeKL224 names).
		{"{g}/{patient:[0-9]{7}}{side}.png", []string{"g", "patient", "side"}, "3/9000296L.png", []string{"3", "9000296", "L"}},
		{"{g}/{patient:[0-9]{7}}{side}.png", nil, "3/900029L.png", nil},
		{"{g}/{patient:[0-9]{7}}{side}.png", nil, "3/9000296.png", nil},
		{"{g}/{patient:(?:[0-9]{7})}{side:[LR]}.png", nil, "3/9000296RL.png", nil},
		{"{a:\\}}{b}", []string{"a", "b"}, "}x", []string{"}", "x"}},
		// A pattern matches within one segment, never across '/' or nothing.
		{"{a:.*}{b}", nil, "x/y", nil},
		{"{a:x*}{b}", nil, "y", nil},
	}
	for _, tt := range tests {
		l, err := ParseLayout(tt.layout)
		if err != nil {
			t.Fatalf("ParseLayout(%q): %v", tt.layout, err)
		}
		if tt.fields != nil && !reflect.DeepEqual(l.Fields, tt.fields) {
			t.Errorf("ParseLayout(%q).Fields = %q, want %q", tt.layout, l.Fields, tt.fields)
		}
		got, ok := l.Match(tt.path)
		if ok != (tt.want != nil) || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q.Match(%q) = %q, %v; want %q", tt.layout, tt.path, got, ok, tt.want)
		}
	}
}

func TestMapSeverityNew(t *testing.T) {
	tests := []struct {
		params, want string
	}{
		{"{layout: '{expert}/{file}'}", `grade_field "severity" is not a field of layout "{expert}/{file}"`},
		{"{layout: 'x/y'}", "layout: no {field}"},
		{"{grades: {}}", "grades: the map is empty"},
		{"{grades: {0Normal: zero}}", `parameter "grades": 0Normal: "zero" is not an integer`},
		{"{grade_field: grade}", `grade_field "grade" is not a field`},
	}
	for _, tt := range tests {
		err := buildErr(t, "map-severity", tt.params)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("map-severity %s: error %v, want %q", tt.params, err, tt.want)
		}
	}
}

func TestMapSeverityRun(t *testing.T) {
	env := testEnv(t)
	in := rows(t, env.Mem, "relative_path,size", []string{"size"},
		"MedicalExpert-I/0Normal/NormalG0 (1).png|10",
		"MedicalExpert-I/2Mild/MildG2 (3, copy).png|11",
		"MedicalExpert-I/notes.txt|12",
		"MedicalExpert-II/5Extreme/X (1).png|13",
		"MedicalExpert-II/4Severe/SevereG4 (98).png|",
		"MedicalExpert-II/1Doubtful/DoubtfulG1 (12) recheck.png|15",
	)
	defer in.Release()
	res := run(t, env, "map-severity", build(t, "map-severity", ""), map[string]arrow.RecordBatch{"rows": in})

	out := res.Outputs["rows"]
	if got, want := schemaOf(out), "relative_path:utf8,size:int64,expert:"+dict8+",severity:int64,severity_label:"+dict8+",file:"+dict8; got != want {
		t.Errorf("rows schema %s, want %s", got, want)
	}
	want := lines(
		"relative_path,size,expert,severity,severity_label,file",
		`MedicalExpert-I/0Normal/NormalG0 (1).png,10,MedicalExpert-I,0,0Normal,NormalG0 (1).png`,
		`"MedicalExpert-I/2Mild/MildG2 (3, copy).png",11,MedicalExpert-I,2,2Mild,"MildG2 (3, copy).png"`,
		`MedicalExpert-II/4Severe/SevereG4 (98).png,,MedicalExpert-II,4,4Severe,SevereG4 (98).png`,
		`MedicalExpert-II/1Doubtful/DoubtfulG1 (12) recheck.png,15,MedicalExpert-II,1,1Doubtful,DoubtfulG1 (12) recheck.png`,
	)
	if got := csvOf(t, out); got != want {
		t.Errorf("rows:\n%s\nwant\n%s", got, want)
	}
	wantRej := lines(
		"relative_path,size,reason",
		"MedicalExpert-I/notes.txt,12,path does not match layout {expert}/{severity}/{file}",
		`MedicalExpert-II/5Extreme/X (1).png,13,"unknown grade label ""5Extreme"" (known: 0Normal, 1Doubtful, 2Mild, 3Moderate, 4Severe)"`,
	)
	if got := csvOf(t, res.Outputs["rejected"]); got != wantRej {
		t.Errorf("rejected:\n%s\nwant\n%s", got, wantRej)
	}
	if res.Objects != (Objects{Accepted: 4, Rejected: 2}) {
		t.Errorf("objects = %+v", res.Objects)
	}
}

// Starting from the notebook's raw_data.csv: the layout's fields already
// exist as columns and are replaced in place; the label column is added.
func TestMapSeverityReplacesExistingColumns(t *testing.T) {
	env := testEnv(t)
	in := rows(t, env.Mem, "expert,file_id,severity,relative_path", nil,
		"MedicalExpert-I|h1|0Normal|MedicalExpert-I/0Normal/NormalG0 (1).png",
		"MedicalExpert-II|h2|3Moderate|MedicalExpert-II/3Moderate/ModerateG3 (2).png",
	)
	defer in.Release()
	res := run(t, env, "map-severity", build(t, "map-severity", ""), map[string]arrow.RecordBatch{"rows": in})
	want := lines(
		"expert,file_id,severity,relative_path,severity_label,file",
		"MedicalExpert-I,h1,0,MedicalExpert-I/0Normal/NormalG0 (1).png,0Normal,NormalG0 (1).png",
		"MedicalExpert-II,h2,3,MedicalExpert-II/3Moderate/ModerateG3 (2).png,3Moderate,ModerateG3 (2).png",
	)
	if got := csvOf(t, res.Outputs["rows"]); got != want {
		t.Errorf("rows:\n%s\nwant\n%s", got, want)
	}
	if got := schemaOf(res.Outputs["rows"]); !strings.Contains(got, "severity:int64") {
		t.Errorf("severity is not int64: %s", got)
	}
	if res.Outputs["rejected"].NumRows() != 0 {
		t.Errorf("rejected %d rows", res.Outputs["rejected"].NumRows())
	}
}

func TestMapSeverityCustomLayout(t *testing.T) {
	env := testEnv(t)
	in := rows(t, env.Mem, "path", nil,
		"scans/reader-a/KL-2/img 1.png",
		"scans/reader-b/KL-0/img, 2.png",
		"scans/reader-b/KL-9/img 3.png",
		"other/reader-b/KL-0/img 4.png",
	)
	defer in.Release()
	st := build(t, "map-severity", `{path_column: path, layout: "scans/{rater}/KL-{kl}/{name}", grade_field: kl, grades: {"0": 0, "2": 2, "-1": -1}}`)
	res := run(t, env, "map-severity", st, map[string]arrow.RecordBatch{"rows": in})
	want := lines(
		"path,rater,kl,kl_label,name",
		"scans/reader-a/KL-2/img 1.png,reader-a,2,2,img 1.png",
		`"scans/reader-b/KL-0/img, 2.png",reader-b,0,0,"img, 2.png"`,
	)
	if got := csvOf(t, res.Outputs["rows"]); got != want {
		t.Errorf("rows:\n%s\nwant\n%s", got, want)
	}
	wantRej := lines(
		"path,reason",
		`scans/reader-b/KL-9/img 3.png,"unknown grade label ""9"" (known: -1, 0, 2)"`,
		"other/reader-b/KL-0/img 4.png,path does not match layout scans/{rater}/KL-{kl}/{name}",
	)
	if got := csvOf(t, res.Outputs["rejected"]); got != wantRej {
		t.Errorf("rejected:\n%s\nwant\n%s", got, wantRej)
	}
}

func TestMapSeverityEmptyAndErrors(t *testing.T) {
	env := testEnv(t)
	empty := rows(t, env.Mem, "relative_path", nil)
	defer empty.Release()
	res := run(t, env, "map-severity", build(t, "map-severity", ""), map[string]arrow.RecordBatch{"rows": empty})
	if got, want := schemaOf(res.Outputs["rows"]), "relative_path:utf8,expert:"+dict8+",severity:int64,severity_label:"+dict8+",file:"+dict8; got != want {
		t.Errorf("empty rows schema %s, want %s", got, want)
	}
	if res.Outputs["rows"].NumRows() != 0 || res.Outputs["rejected"].NumRows() != 0 {
		t.Error("rows from nothing")
	}

	noPath := rows(t, env.Mem, "key", nil, "a/b/c")
	defer noPath.Release()
	st := build(t, "map-severity", "")
	if _, err := st.Run(t.Context(), env, map[string]arrow.RecordBatch{"rows": noPath}); err == nil || !strings.Contains(err.Error(), `no column "relative_path"`) {
		t.Errorf("missing path column: %v", err)
	}
	if _, err := st.Run(t.Context(), env, nil); err == nil || !strings.Contains(err.Error(), `input "rows" missing`) {
		t.Errorf("missing input: %v", err)
	}
}

// dict8 is the type of a dictionary string column of at most 128 values.
const dict8 = "dictionary<values=utf8, indices=int8, ordered=false>"
