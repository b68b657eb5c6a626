package stages

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// testKind declares one parameter of every type.
func testKind() Kind {
	return Kind{Name: "probe", Params: []Param{
		{Name: "s", Type: String, Default: "dflt"},
		{Name: "e", Type: String, Default: "keep", Enum: []string{"keep", "drop"}},
		{Name: "i", Type: Int, Default: int64(3), Min: 1, Max: 10},
		{Name: "u", Type: Int, Default: int64(-5)}, // unbounded
		{Name: "b", Type: Bool, Default: false},
		{Name: "d", Type: Duration, Default: time.Second},
		{Name: "l", Type: Strings, Default: []string{"x"}},
		{Name: "sm", Type: StringMap, Default: map[string]string{}},
		{Name: "im", Type: IntMap, Default: map[string]int64{"a": 1}},
		{Name: "req", Type: String, Required: true},
	}}
}

func decodeProbe(t *testing.T, src string) (Params, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("%q: %v", src, err)
	}
	stage := doc.Content[0]
	var params *yaml.Node
	for i := 0; i+1 < len(stage.Content); i += 2 {
		if stage.Content[i].Value == "params" {
			params = stage.Content[i+1]
		}
	}
	return testKind().DecodeParams(params, stage)
}

func TestDecodeParamsValues(t *testing.T) {
	p, err := decodeProbe(t, `
name: x
params:
  req: here
  s: "${not expanded here}"
  e: drop
  i: 10
  u: -9223372036854775808
  b: true
  d: 1m30s
  l: [a, "b, c", "3"]
  sm: {k: v, "a b": "1"}
  im: {"0Normal": 0, neg: -1}
`)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		got, want any
	}{
		{p.Str("req"), "here"},
		{p.Str("s"), "${not expanded here}"},
		{p.Str("e"), "drop"},
		{p.Int("i"), int64(10)},
		{p.Int("u"), int64(-9223372036854775808)},
		{p.Bool("b"), true},
		{p.Duration("d"), 90 * time.Second},
		{p.Strings("l"), []string{"a", "b, c", "3"}},
		{p.StringMap("sm"), map[string]string{"k": "v", "a b": "1"}},
		{p.IntMap("im"), map[string]int64{"0Normal": 0, "neg": -1}},
	}
	for i, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("check %d: got %#v, want %#v", i, c.got, c.want)
		}
	}
}

func TestDecodeParamsDefaults(t *testing.T) {
	p, err := decodeProbe(t, "name: x\nparams: {req: r}\n")
	if err != nil {
		t.Fatal(err)
	}
	if p.Str("s") != "dflt" || p.Str("e") != "keep" || p.Int("i") != 3 || p.Int("u") != -5 || p.Bool("b") ||
		p.Duration("d") != time.Second || !reflect.DeepEqual(p.Strings("l"), []string{"x"}) ||
		len(p.StringMap("sm")) != 0 || !reflect.DeepEqual(p.IntMap("im"), map[string]int64{"a": 1}) {
		t.Errorf("defaults not applied: %+v", p.values)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), `undeclared parameter "nope"`) {
			t.Errorf("reading an undeclared parameter: recover() = %v", r)
		}
	}()
	p.Str("nope")
}

func TestDecodeParamsErrors(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		line, col int
		msg       string
	}{
		{"unknown parameter", "name: x\nparams: {req: r, sufix: .png}\n", 2, 18,
			`probe: unknown parameter "sufix" (known: s, e, i, u, b, d, l, sm, im, req)`},
		{"given twice", "name: x\nparams:\n  req: r\n  req: q\n", 4, 3, `probe: parameter "req" given twice`},
		{"int given text", "name: x\nparams: {req: r, i: abc}\n", 2, 21, `probe: parameter "i": "abc" is not an integer`},
		{"int given a float", "name: x\nparams: {req: r, i: 2.5}\n", 2, 21, `probe: parameter "i": "2.5" is not an integer`},
		{"int out of range", "name: x\nparams: {req: r, i: 0}\n", 2, 21, `probe: parameter "i": 0 is out of range 1..10`},
		{"int above range", "name: x\nparams: {req: r, i: 11}\n", 2, 21, `probe: parameter "i": 11 is out of range 1..10`},
		{"int given a list", "name: x\nparams: {req: r, i: [1]}\n", 2, 21, `probe: parameter "i": want an int`},
		{"bool", "name: x\nparams: {req: r, b: yes}\n", 2, 21, `probe: parameter "b": "yes" is not true or false`},
		{"duration", "name: x\nparams: {req: r, d: 10}\n", 2, 21, `probe: parameter "d": "10" is not a positive duration such as 30s`},
		{"negative duration", "name: x\nparams: {req: r, d: -1s}\n", 2, 21, `probe: parameter "d": "-1s" is not a positive duration such as 30s`},
		{"enum", "name: x\nparams: {req: r, e: both}\n", 2, 21, `probe: parameter "e": "both" is not one of keep, drop`},
		{"string given a mapping", "name: x\nparams: {req: {a: b}}\n", 2, 15, `probe: parameter "req": want a string`},
		{"list given scalar", "name: x\nparams: {req: r, l: expert}\n", 2, 21, `probe: parameter "l": want a list of strings`},
		{"list item not a string", "name: x\nparams: {req: r, l: [a, [b]]}\n", 2, 21, `probe: parameter "l": item 2 is not a string`},
		{"map given list", "name: x\nparams: {req: r, sm: [a]}\n", 2, 22, `probe: parameter "sm": want a map of string to string`},
		{"int map value", "name: x\nparams: {req: r, im: {a: one}}\n", 2, 22, `probe: parameter "im": a: "one" is not an integer`},
		{"params not a mapping", "name: x\nparams: [req]\n", 2, 9, "params of a probe stage must be a mapping"},
		{"required missing", "name: x\nparams: {s: a}\n", 2, 9, `probe: parameter "req" is required`},
		{"required missing, no params", "name: x\nkind: probe\n", 1, 1, `probe: parameter "req" is required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeProbe(t, tt.src)
			var pe *PosError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T), want a *PosError", err, err)
			}
			if pe.Line != tt.line || pe.Column != tt.col || pe.Msg != tt.msg {
				t.Errorf("got %d:%d: %s\nwant %d:%d: %s", pe.Line, pe.Column, pe.Msg, tt.line, tt.col, tt.msg)
			}
			if want := fmt.Sprintf("%d:%d: %s", tt.line, tt.col, tt.msg); pe.Error() != want {
				t.Errorf("Error() = %q, want %q", pe.Error(), want)
			}
		})
	}
}

func TestFormatDefault(t *testing.T) {
	for _, tt := range []struct {
		p    Param
		want string
	}{
		{Param{Required: true}, "(required)"},
		{Param{Default: []string{"expert", "file_id"}}, "[expert, file_id]"},
		{Param{Default: map[string]int64{"1Doubtful": 1, "0Normal": 0}}, "{0Normal: 0, 1Doubtful: 1}"},
		{Param{Default: map[string]string{}}, "{}"},
		{Param{Default: int64(64)}, "64"},
		{Param{Default: false}, "false"},
		{Param{Default: ".png"}, ".png"},
	} {
		if got := tt.p.FormatDefault(); got != tt.want {
			t.Errorf("FormatDefault(%#v) = %q, want %q", tt.p.Default, got, tt.want)
		}
	}
}

// Every built-in kind's declaration is self-consistent: defaults decode to
// their declared type, enums hold the default, required parameters have no
// default, and the kind builds from its defaults unless a parameter is required.
func TestBuiltinDeclarations(t *testing.T) {
	for _, name := range Builtin().Names() {
		k := Builtin()[name]
		if len(k.Outputs) == 0 {
			t.Errorf("%s declares no output", name)
		}
		required := false
		for _, p := range k.Params {
			switch {
			case p.Required && p.Default != nil:
				t.Errorf("%s.%s: required with a default", name, p.Name)
			case p.Required:
				required = true
			case len(p.Enum) > 0 && !contains(p.Enum, p.Default.(string)):
				t.Errorf("%s.%s: default %v not in enum %v", name, p.Name, p.Default, p.Enum)
			}
		}
		p, err := k.DecodeParams(nil, &yaml.Node{Line: 1, Column: 1})
		if required {
			if err == nil {
				t.Errorf("%s: no error without its required parameter", name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: defaults: %v", name, err)
			continue
		}
		if _, err := k.New(p); err != nil {
			t.Errorf("%s.New(defaults): %v", name, err)
		}
	}
}
