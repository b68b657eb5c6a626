package stages

import (
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"gopkg.in/yaml.v3"

	"github.com/kneepipe/kneepipe/internal/table"
)

// Column types the kinds declare. Any (nil) accepts every type.
var (
	StringType    arrow.DataType = arrow.BinaryTypes.String
	Int64Type     arrow.DataType = arrow.PrimitiveTypes.Int64
	Float64Type   arrow.DataType = arrow.PrimitiveTypes.Float64
	BinaryType    arrow.DataType = arrow.BinaryTypes.Binary
	TimestampType arrow.DataType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
)

// Col is one declared column. A nil Type means any type: the column
// exists, but what it holds is only known at run time.
type Col struct {
	Name string
	Type arrow.DataType
}

// Schema declares the columns of a stage output, derived by the kind from
// its parameters and its inputs' schemas. A closed schema lists every
// column in output order. An open one (Open) lists the columns known at
// load time; further columns, of type Rest (nil: any), may come between
// and around them, as the columns of a file `read` opens at run time or
// cross-check's one grade column per rater.
type Schema struct {
	Cols []Col
	Open bool
	Rest arrow.DataType
	// RestDoc says what the further columns of an open schema are, for
	// messages and `kneepipe stages` ("one int64 grade column per rater").
	RestDoc string
}

// Closed returns a closed schema of the columns.
func Closed(cols ...Col) Schema { return Schema{Cols: cols} }

// Unknown is the schema of an output whose columns are all unknown until
// run time.
func Unknown(doc string) Schema { return Schema{Open: true, RestDoc: doc} }

// Lookup finds a column. When the schema is open and does not declare the
// name, ok is false but maybe is true: the column may exist at run time,
// with type Rest.
func (s Schema) Lookup(name string) (c Col, ok, maybe bool) {
	for _, c := range s.Cols {
		if c.Name == name {
			return c, true, true
		}
	}
	if s.Open {
		return Col{Name: name, Type: s.Rest}, false, true
	}
	return Col{}, false, false
}

// Names lists the declared column names in order.
func (s Schema) Names() []string {
	out := make([]string, len(s.Cols))
	for i, c := range s.Cols {
		out[i] = c.Name
	}
	return out
}

// Set returns the schema with c replacing the column of the same name, or
// appended: table.Set at load time.
func (s Schema) Set(c Col) Schema {
	out := s
	out.Cols = slices.Clone(s.Cols)
	for i := range out.Cols {
		if out.Cols[i].Name == c.Name {
			out.Cols[i] = c
			return out
		}
	}
	out.Cols = append(out.Cols, c)
	return out
}

// Append returns the schema with the columns added at the end. A name
// the schema already declares is an error: the output would hold two
// columns of that name.
func (s Schema) Append(cols ...Col) (Schema, error) {
	out := s
	out.Cols = slices.Clone(s.Cols)
	for _, c := range cols {
		if _, ok, _ := out.Lookup(c.Name); ok {
			return s, fmt.Errorf("already has a column %q, which this stage adds", c.Name)
		}
		out.Cols = append(out.Cols, c)
	}
	return out, nil
}

// String renders the schema as "name type, ...", for `kneepipe stages`
// and messages.
func (s Schema) String() string {
	parts := make([]string, 0, len(s.Cols)+1)
	for _, c := range s.Cols {
		parts = append(parts, c.Name+" "+typeName(c.Type))
	}
	if s.Open {
		rest := s.RestDoc
		if rest == "" {
			rest = "further columns"
			if s.Rest != nil {
				rest = "further " + typeName(s.Rest) + " columns"
			}
		}
		parts = append(parts, "+ "+rest)
	}
	return strings.Join(parts, ", ")
}

func typeName(t arrow.DataType) string {
	// The names a pipeline's author writes (read's types), not Arrow's.
	switch {
	case t == nil:
		return "any"
	case table.IsString(t):
		return "string"
	case t.ID() == arrow.TIMESTAMP:
		return "timestamp"
	}
	return t.String()
}

// sameType says whether a column of type have satisfies want (nil: any);
// an unknown type (nil have) may. A string column may be
// dictionary-encoded (table.StringCells reads both forms).
func sameType(want, have arrow.DataType) bool {
	if want != nil && have != nil && want.ID() == arrow.STRING {
		return table.IsString(have)
	}
	return want == nil || have == nil || arrow.TypeEqual(want, have)
}

// Match checks a run-time Arrow schema against the declaration: the same
// columns in the same order when closed; when open, every declared column
// present with its type and every other of type Rest.
func (s Schema) Match(actual *arrow.Schema) error {
	if !s.Open {
		if actual.NumFields() != len(s.Cols) {
			return fmt.Errorf("has columns %v, declared %s", fieldNames(actual), s)
		}
		for i, c := range s.Cols {
			f := actual.Field(i)
			if f.Name != c.Name || !sameType(c.Type, f.Type) {
				return fmt.Errorf("column %d is %s %s, declared %s %s", i+1, f.Name, typeName(f.Type), c.Name, typeName(c.Type))
			}
		}
		return nil
	}
	for _, c := range s.Cols {
		idx := actual.FieldIndices(c.Name)
		if len(idx) != 1 {
			return fmt.Errorf("has %d columns %q, declared one (%s)", len(idx), c.Name, s)
		}
		if f := actual.Field(idx[0]); !sameType(c.Type, f.Type) {
			return fmt.Errorf("column %q is %s, declared %s", c.Name, typeName(f.Type), typeName(c.Type))
		}
	}
	for _, f := range actual.Fields() {
		if _, ok, _ := s.Lookup(f.Name); !ok && !sameType(s.Rest, f.Type) {
			return fmt.Errorf("column %q is %s, declared %s for further columns", f.Name, typeName(f.Type), typeName(s.Rest))
		}
	}
	return nil
}

func fieldNames(s *arrow.Schema) []string {
	out := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		out[i] = f.Name
	}
	return out
}

// ParamError is a problem with a parameter's value found while deriving
// schemas; the loader places it at that parameter in the YAML file (at
// item Item, 1-based, of a list parameter; 0: the parameter itself).
type ParamError struct {
	Param string
	Item  int
	Msg   string
}

func (e *ParamError) Error() string { return "parameter " + e.Param + ": " + e.Msg }

// InputError is a problem with what an input holds that no parameter
// names (a fixed column the kind reads); the loader places it at that
// input.
type InputError struct {
	Input string
	Msg   string
}

func (e *InputError) Error() string { return "input " + e.Input + ": " + e.Msg }

// need checks that the input's schema has the named column with a type
// the kind reads (nil: any). The error names the parameter that names the
// column ("" for a column the kind reads by a fixed name: an InputError).
func need(in map[string]Schema, input, param string, item int, name string, want arrow.DataType) error {
	s := in[input]
	c, ok, maybe := s.Lookup(name)
	var msg string
	switch {
	case !maybe:
		msg = fmt.Sprintf("%s has no column %q%s (columns: %s)", input, name, Suggest(name, s.Names()), s)
	case ok && !sameType(want, c.Type):
		msg = fmt.Sprintf("column %q of %s is %s, want %s", name, input, typeName(c.Type), typeName(want))
	case !ok && !sameType(want, s.Rest):
		msg = fmt.Sprintf("%s has no %s column %q (columns: %s)", input, typeName(want), name, s)
	default:
		return nil
	}
	if param == "" {
		return &InputError{Input: input, Msg: msg}
	}
	return &ParamError{Param: param, Item: item, Msg: msg}
}

// OutputSchemas derives the schemas of the kind's outputs, keyed by output
// name. A kind that declares no Schema has outputs of unknown columns.
func (k Kind) OutputSchemas(p Params, in map[string]Schema) (map[string]Schema, error) {
	if k.Schema == nil {
		out := map[string]Schema{}
		for _, o := range k.Outputs {
			out[o.Name] = Unknown("columns not declared")
		}
		return out, nil
	}
	out, err := k.Schema(p, in)
	if err != nil {
		return nil, err
	}
	for _, o := range k.Outputs {
		if _, ok := out[o.Name]; !ok {
			return nil, fmt.Errorf("kind %s declares no schema for output %q", k.Name, o.Name)
		}
	}
	return out, nil
}

// DefaultSchemas derives the output schemas for `kneepipe stages`: default
// parameters, and inputs whose columns are unknown ("the rows input's
// columns"). A kind with a required parameter, whose outputs depend on
// it, gives an error.
func (k Kind) DefaultSchemas() (map[string]Schema, error) {
	p, err := k.DecodeParams(nil, &yaml.Node{})
	if err != nil {
		return nil, err
	}
	in := map[string]Schema{}
	for _, port := range k.AllInputs() {
		in[port.Name] = Unknown("the " + port.Name + " input's columns")
	}
	return k.OutputSchemas(p, in)
}
