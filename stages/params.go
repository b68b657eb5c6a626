package stages

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ParamType is the type of a declared parameter.
type ParamType int

const (
	String ParamType = iota
	Int
	Bool
	Duration
	Strings   // a YAML list of strings
	StringMap // a YAML mapping of string to string
	IntMap    // a YAML mapping of string to integer
)

func (t ParamType) String() string {
	return [...]string{"string", "int", "bool", "duration", "list of strings", "map of string to string", "map of string to int"}[t]
}

// article is "an" before "int", "a" otherwise, for messages.
func (t ParamType) article() string {
	if t == Int {
		return "an"
	}
	return "a"
}

// Param declares one parameter of a kind.
type Param struct {
	Name     string
	Type     ParamType
	Doc      string
	Default  any      // Go value of Type; nil with Required
	Required bool     // no default; must be given
	Enum     []string // allowed values of a String parameter
	Min      int64    // least value of an Int parameter (when Min < Max)
	Max      int64
	// Tuning marks parameters that change how a stage works, not what it
	// produces (concurrency, retries): they are left out of fingerprints.
	Tuning bool
}

// Params holds a stage's decoded parameter values, defaults applied.
type Params struct {
	kind   string
	values map[string]any
	tuning map[string]bool
}

// PosError is an error at a place in the YAML file. The runner adds the
// file name.
type PosError struct {
	Line, Column int
	Msg          string
}

func (e *PosError) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Msg) }

func posErr(n *yaml.Node, format string, args ...any) *PosError {
	return &PosError{Line: n.Line, Column: n.Column, Msg: fmt.Sprintf(format, args...)}
}

// DecodeParams checks a stage's `params:` mapping against the kind's
// declaration. at is the node errors point to when params is nil.
func (k Kind) DecodeParams(params, at *yaml.Node) (Params, error) {
	p := Params{kind: k.Name, values: map[string]any{}, tuning: map[string]bool{}}
	for _, d := range k.Params {
		p.tuning[d.Name] = d.Tuning
	}
	given := map[string]bool{}
	if params != nil {
		if params.Kind != yaml.MappingNode {
			return p, posErr(params, "params of a %s stage must be a mapping", k.Name)
		}
		for i := 0; i+1 < len(params.Content); i += 2 {
			key, val := params.Content[i], params.Content[i+1]
			decl, ok := k.param(key.Value)
			if !ok {
				return p, posErr(key, "%s: unknown parameter %q%s (known: %s)", k.Name, key.Value, Suggest(key.Value, k.paramNames()), strings.Join(k.paramNames(), ", "))
			}
			if given[key.Value] {
				return p, posErr(key, "%s: parameter %q given twice", k.Name, key.Value)
			}
			v, err := decodeValue(decl, val)
			if err != nil {
				return p, posErr(val, "%s: parameter %q: %v", k.Name, key.Value, err)
			}
			given[key.Value] = true
			p.values[key.Value] = v
		}
	}
	for _, decl := range k.Params {
		if given[decl.Name] {
			continue
		}
		if decl.Required {
			n := at
			if params != nil {
				n = params
			}
			return p, posErr(n, "%s: parameter %q is required", k.Name, decl.Name)
		}
		p.values[decl.Name] = decl.Default
	}
	return p, nil
}

func (k Kind) param(name string) (Param, bool) {
	for _, p := range k.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

func (k Kind) paramNames() []string {
	out := make([]string, len(k.Params))
	for i, p := range k.Params {
		out[i] = p.Name
	}
	return out
}

func decodeValue(decl Param, n *yaml.Node) (any, error) {
	scalar := func() (string, error) {
		if n.Kind != yaml.ScalarNode {
			return "", fmt.Errorf("want %s %s", decl.Type.article(), decl.Type)
		}
		return n.Value, nil
	}
	switch decl.Type {
	case String:
		s, err := scalar()
		if err != nil {
			return nil, err
		}
		if len(decl.Enum) > 0 && !contains(decl.Enum, s) {
			return nil, fmt.Errorf("%q is not one of %s", s, strings.Join(decl.Enum, ", "))
		}
		return s, nil
	case Int:
		s, err := scalar()
		if err != nil {
			return nil, err
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		if decl.Min < decl.Max && (v < decl.Min || v > decl.Max) {
			return nil, fmt.Errorf("%d is out of range %d..%d", v, decl.Min, decl.Max)
		}
		return v, nil
	case Bool:
		s, err := scalar()
		if err != nil {
			return nil, err
		}
		v, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", s)
		}
		return v, nil
	case Duration:
		s, err := scalar()
		if err != nil {
			return nil, err
		}
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q is not a positive duration such as 30s", s)
		}
		return v, nil
	case Strings:
		if n.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("want a list of strings")
		}
		out := make([]string, len(n.Content))
		for i, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("item %d is not a string", i+1)
			}
			out[i] = c.Value
		}
		return out, nil
	case StringMap, IntMap:
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("want %s %s", decl.Type.article(), decl.Type)
		}
		sm, im := map[string]string{}, map[string]int64{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("want %s %s", decl.Type.article(), decl.Type)
			}
			if decl.Type == StringMap {
				sm[k.Value] = v.Value
				continue
			}
			x, err := strconv.ParseInt(v.Value, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not an integer", k.Value, v.Value)
			}
			im[k.Value] = x
		}
		if decl.Type == StringMap {
			return sm, nil
		}
		return im, nil
	}
	return nil, fmt.Errorf("unsupported parameter type %d", decl.Type)
}

func (p Params) get(name string) any {
	v, ok := p.values[name]
	if !ok {
		panic(fmt.Sprintf("stage kind %s reads undeclared parameter %q", p.kind, name))
	}
	return v
}

// Str returns a String parameter.
func (p Params) Str(name string) string { return p.get(name).(string) }

// Int returns an Int parameter.
func (p Params) Int(name string) int64 {
	switch v := p.get(name).(type) {
	case int64:
		return v
	case int:
		return int64(v)
	}
	panic(fmt.Sprintf("parameter %q is not an int", name))
}

// Bool returns a Bool parameter.
func (p Params) Bool(name string) bool { return p.get(name).(bool) }

// Duration returns a Duration parameter.
func (p Params) Duration(name string) time.Duration { return p.get(name).(time.Duration) }

// Strings returns a Strings parameter.
func (p Params) Strings(name string) []string { return p.get(name).([]string) }

// StringMap returns a StringMap parameter.
func (p Params) StringMap(name string) map[string]string { return p.get(name).(map[string]string) }

// IntMap returns an IntMap parameter.
func (p Params) IntMap(name string) map[string]int64 { return p.get(name).(map[string]int64) }

// Fingerprinted returns the values that determine the stage's output:
// all but the tuning parameters.
func (p Params) Fingerprinted() map[string]any {
	out := map[string]any{}
	for k, v := range p.values {
		if !p.tuning[k] {
			out[k] = v
		}
	}
	return out
}

// FormatDefault renders a default for `kneepipe stages`.
func (d Param) FormatDefault() string {
	if d.Required {
		return "(required)"
	}
	switch v := d.Default.(type) {
	case []string:
		return "[" + strings.Join(v, ", ") + "]"
	case map[string]int64:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s: %d", k, v[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case map[string]string:
		if len(v) == 0 {
			return "{}"
		}
		return fmt.Sprint(v)
	}
	return fmt.Sprint(d.Default)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Suggest returns ` (did you mean "x"?)` for the known name nearest to
// name, when one is close enough to be a likely typo, and "" otherwise.
func Suggest(name string, known []string) string {
	if s, ok := Nearest(name, known); ok {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// Nearest returns the known name nearest to name by optimal string
// alignment distance (Levenshtein plus swapped neighbours), when it is
// close: at most a third of the longer name's length, and no other name
// ties with it.
func Nearest(name string, known []string) (string, bool) {
	best, bestD, tie := "", -1, false
	for _, k := range known {
		d := editDistance(name, k)
		switch {
		case bestD < 0 || d < bestD:
			best, bestD, tie = k, d, false
		case d == bestD && k != best:
			tie = true
		}
	}
	if bestD <= 0 || tie {
		return "", false
	}
	limit := max(len([]rune(name)), len([]rune(best))) / 3
	return best, bestD <= max(limit, 1)
}

// editDistance is the optimal string alignment distance over runes.
func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	// Three rows of the dynamic programme: two back for transpositions.
	prev2, prev, cur := make([]int, len(y)+1), make([]int, len(y)+1), make([]int, len(y)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(x); i++ {
		cur[0] = i
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(y)]
}
