package stages

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/kneepipe/kneepipe/internal/table"
)

// notebookGrades is the notebook's severity_map.
func notebookGrades() map[string]int64 {
	return map[string]int64{"0Normal": 0, "1Doubtful": 1, "2Mild": 2, "3Moderate": 3, "4Severe": 4}
}

func mapSeverityKind() Kind {
	return Kind{
		Name:   "map-severity",
		Doc:    "Splits each relative path by a layout into named fields and maps the grade folder label to an integer; rows that do not fit are rejected with a reason.",
		Inputs: []Port{{"rows", "rows with a path column"}},
		Outputs: []Port{
			{"rows", "the input rows with one string column per layout field, the grade as int64 and its label as <grade>_label"},
			{"rejected", "the input rows that did not fit, with a reason column"},
		},
		Params: []Param{
			{Name: "path_column", Type: String, Default: "relative_path", Doc: "column holding the path to split"},
			{Name: "layout", Type: String, Default: "{expert}/{severity}/{file}", Doc: "path pattern; {name} matches one path segment (or part of one), {name:regexp} what the regexp matches within a segment"},
			{Name: "grade_field", Type: String, Default: "severity", Doc: "layout field holding the grade label"},
			{Name: "grades", Type: IntMap, Default: notebookGrades(), Doc: "grade label to integer"},
		},
		New: func(p Params) (Stage, error) {
			l, err := ParseLayout(p.Str("layout"))
			if err != nil {
				return nil, fmt.Errorf("layout: %w", err)
			}
			grade := p.Str("grade_field")
			if !contains(l.Fields, grade) {
				return nil, fmt.Errorf("grade_field %q is not a field of layout %q", grade, p.Str("layout"))
			}
			if len(p.IntMap("grades")) == 0 {
				return nil, fmt.Errorf("grades: the map is empty")
			}
			return &mapSeverity{pathCol: p.Str("path_column"), layout: l, grade: grade, grades: p.IntMap("grades")}, nil
		},
		Schema: mapSeveritySchema,
		Reads:  mapSeverityReads,
	}
}

// mapSeveritySchema follows Run: each layout field set as a string
// column, the grade as int64 with its label beside it.
func mapSeveritySchema(p Params, in map[string]Schema) (map[string]Schema, error) {
	if err := need(in, "rows", "path_column", 0, p.Str("path_column"), StringType); err != nil {
		return nil, err
	}
	l, err := ParseLayout(p.Str("layout"))
	if err != nil {
		return nil, &ParamError{Param: "layout", Msg: err.Error()}
	}
	rows := in["rows"]
	for _, f := range l.Fields {
		if f == p.Str("grade_field") {
			rows = rows.Set(Col{f, Int64Type}).Set(Col{f + "_label", StringType})
			continue
		}
		rows = rows.Set(Col{f, StringType})
	}
	return map[string]Schema{"rows": rows, "rejected": in["rows"].Set(Col{"reason", StringType})}, nil
}

// mapSeverityReads: the path column, and the input columns the outputs
// pass on (a layout field replaces the input's column of its name).
func mapSeverityReads(p Params, used map[string][]string) map[string][]string {
	l, err := ParseLayout(p.Str("layout"))
	if err != nil {
		return nil // New rejects it
	}
	made := append(slices.Clone(l.Fields), p.Str("grade_field")+"_label")
	return map[string][]string{"rows": unionCols([]string{p.Str("path_column")},
		withoutCols(used["rows"], made...), withoutCols(used["rejected"], "reason"))}
}

// Layout is a compiled path pattern such as "{expert}/{severity}/{file}".
type Layout struct {
	Fields []string
	text   string
	lits   []string // the literal text around the fields: len(Fields)+1
	re     *regexp.Regexp
	split  bool // fields joined by '/' only: Match splits instead of using re
	// patterned: some field has its own pattern, which could match '/' or
	// nothing; Match refuses such values.
	patterned bool
}

// fieldEnd returns the index of the '}' closing the field that s starts
// with ('{'), or -1. A pattern after ':' may hold balanced braces
// ({patient:[0-9]{7}}) and escaped ones (\{).
func fieldEnd(s string) int {
	depth := 0
	colon := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == ':' && !colon && depth == 0:
			colon = true
		case c == '\\' && colon:
			i++
		case c == '{' && colon:
			depth++
		case c == '}':
			if depth == 0 {
				return i
			}
			depth--
		}
	}
	return -1
}

var fieldName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseLayout compiles a layout. A {field} matches one or more characters
// other than '/'; {field:regexp} matches the regexp instead (say
// {patient:[0-9]{7}}{side}.png, where two fields touch), still within one
// path segment; everything else must match literally.
func ParseLayout(s string) (*Layout, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("%q is not valid UTF-8", s)
	}
	var pat strings.Builder
	pat.WriteString("^")
	l := &Layout{text: s}
	rest := s
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			if strings.IndexByte(rest, '}') >= 0 {
				return nil, fmt.Errorf("unmatched '}' in %q", s)
			}
			pat.WriteString(regexp.QuoteMeta(rest))
			break
		}
		lit := rest[:open]
		if strings.IndexByte(lit, '}') >= 0 {
			return nil, fmt.Errorf("unmatched '}' in %q", s)
		}
		pat.WriteString(regexp.QuoteMeta(lit))
		end := fieldEnd(rest[open:])
		if end < 0 {
			return nil, fmt.Errorf("unclosed '{' in %q", s)
		}
		name, fieldPat, patterned := strings.Cut(rest[open+1:open+end], ":")
		if !fieldName.MatchString(name) {
			return nil, fmt.Errorf("bad field name %q in %q", name, s)
		}
		if contains(l.Fields, name) {
			return nil, fmt.Errorf("field %q appears twice in %q", name, s)
		}
		group := "([^/]+)"
		if patterned {
			re, err := regexp.Compile(fieldPat)
			if err != nil || fieldPat == "" || re.NumSubexp() > 0 {
				return nil, fmt.Errorf("field {%s}: %q is not a regular expression without groups in %q", name, fieldPat, s)
			}
			group = "((?:" + fieldPat + "))"
			l.patterned = true
		} else if strings.HasSuffix(pat.String(), "([^/]+)") {
			return nil, fmt.Errorf("fields {%s} and the one before it touch in %q: put a separator between them, or give one a pattern ({name:regexp})", name, s)
		}
		l.Fields = append(l.Fields, name)
		l.lits = append(l.lits, lit)
		pat.WriteString(group)
		rest = rest[open+end+1:]
	}
	l.lits = append(l.lits, rest) // the loop leaves the trailing literal in rest
	if len(l.Fields) == 0 {
		return nil, fmt.Errorf("no {field} in %q", s)
	}
	pat.WriteString("$")
	re, err := regexp.Compile(pat.String())
	if err != nil {
		return nil, fmt.Errorf("layout %q: %v", s, err)
	}
	l.re = re
	l.split = l.slashOnly()
	return l, nil
}

// slashOnly says whether the layout is its fields joined by '/' and
// nothing else, as {expert}/{severity}/{file} is.
func (l *Layout) slashOnly() bool {
	if l.lits[0] != "" || l.lits[len(l.lits)-1] != "" {
		return false
	}
	for _, lit := range l.lits[1 : len(l.lits)-1] {
		if lit != "/" {
			return false
		}
	}
	return true
}

// Match returns the field values of path, or false.
func (l *Layout) Match(path string) ([]string, bool) {
	return l.MatchInto(make([]string, len(l.Fields)), path)
}

// MatchInto is Match writing the values into buf (len(l.Fields) long) when
// it can, so a million paths need not allocate a million slices.
func (l *Layout) MatchInto(buf []string, path string) ([]string, bool) {
	if l.split {
		// The usual layout, fields joined by '/': a split says the same as
		// the regexp, several times faster on a million paths.
		rest := path
		for f := range buf {
			end := strings.IndexByte(rest, '/')
			if f == len(buf)-1 {
				if end >= 0 {
					return nil, false
				}
				end = len(rest)
			} else if end < 0 {
				return nil, false
			}
			if end == 0 {
				return nil, false
			}
			buf[f], rest = rest[:end], rest[min(end+1, len(rest)):]
		}
		return buf, true
	}
	m := l.re.FindStringSubmatch(path)
	if m == nil {
		return nil, false
	}
	if l.patterned {
		for _, v := range m[1:] {
			if v == "" || strings.IndexByte(v, '/') >= 0 {
				return nil, false
			}
		}
	}
	// regexp reads an invalid UTF-8 byte as U+FFFD, which a literal U+FFFD
	// in the layout would match: require the path to be exactly the layout
	// filled in.
	if !utf8.ValidString(path) {
		var b strings.Builder
		for i, v := range m[1:] {
			b.WriteString(l.lits[i])
			b.WriteString(v)
		}
		b.WriteString(l.lits[len(l.lits)-1])
		if b.String() != path {
			return nil, false
		}
	}
	return m[1:], true
}

type mapSeverity struct {
	pathCol string
	layout  *Layout
	grade   string
	grades  map[string]int64
}

func (s *mapSeverity) Run(ctx context.Context, env *Env, in map[string]arrow.RecordBatch) (*Result, error) {
	rows, err := input(in, "rows")
	if err != nil {
		return nil, err
	}
	paths, err := table.StringCol(rows, s.pathCol)
	if err != nil {
		return nil, err
	}
	gradeAt := indexOf(s.layout.Fields, s.grade)
	n := paths.Len()
	// The field columns are built as the paths are matched, dictionary-
	// encoded (an expert or grade folder repeats on every row).
	// A field column nobody reads downstream (env.Used) is not built.
	used := usedOf(env.Used, "rows")
	fields := make([]*table.DictColumn, len(s.layout.Fields))
	keep := make([]bool, len(fields))
	for f, name := range s.layout.Fields {
		if name == s.grade {
			name += "_label"
		}
		if keep[f] = used == nil || slices.Contains(used, name); keep[f] {
			fields[f] = table.NewDictColumn(n)
		}
	}
	grades := make([]int64, 0, n)
	ok := make([]int, 0, n)
	var bad []int
	var reasons []string
	buf := make([]string, len(s.layout.Fields))
	for i := range n {
		vals, matched := s.layout.MatchInto(buf, paths.Value(i))
		if !matched {
			bad = append(bad, i)
			reasons = append(reasons, "path does not match layout "+s.layout.text)
			continue
		}
		g, known := s.grades[vals[gradeAt]]
		if !known {
			bad = append(bad, i)
			reasons = append(reasons, fmt.Sprintf("unknown grade label %q (known: %s)", vals[gradeAt], strings.Join(slices.Sorted(maps.Keys(s.grades)), ", ")))
			continue
		}
		ok = append(ok, i)
		grades = append(grades, g)
		for f, v := range vals {
			if keep[f] {
				fields[f].Append(v)
			}
		}
	}
	kept, err := table.TakeSorted(ctx, env.Mem, rows, ok)
	if err != nil {
		return nil, err
	}
	defer kept.Release()
	cols := table.Columns(kept)
	for f, name := range s.layout.Fields {
		if name == s.grade {
			cols = table.Set(cols, table.Int64s(env.Mem, name, grades, nil))
			name += "_label"
		}
		if keep[f] {
			cols = table.Set(cols, table.Column{Name: name, Array: fields[f].NewArray(env.Mem)})
		}
	}
	rejected, err := table.Take(ctx, env.Mem, rows, bad)
	if err != nil {
		return nil, err
	}
	defer rejected.Release()
	rejCols := table.Set(table.Columns(rejected), table.Strings(env.Mem, "reason", reasons))
	return &Result{
		Outputs: map[string]arrow.RecordBatch{"rows": table.New(cols...), "rejected": table.New(rejCols...)},
		Objects: Objects{Accepted: int64(len(ok)), Rejected: int64(len(bad))},
	}, nil
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
