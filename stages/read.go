package stages

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/kneepipe/kneepipe/internal/table"
)

func readKind() Kind {
	return Kind{
		Name:     "read",
		Doc:      "Loads a CSV or Parquet table from a file, e.g. a notebook's raw_data.csv, so a pipeline can start from a manifest instead of a bucket.",
		Volatile: true,
		Outputs:  []Port{{"rows", "the table's rows"}},
		Params: []Param{
			{Name: "path", Type: String, Required: true, Doc: "file to read (relative to the working directory)"},
			{Name: "format", Type: String, Default: "auto", Enum: []string{"auto", "csv", "parquet"}, Doc: "auto: by the file's extension"},
			{Name: "types", Type: StringMap, Default: map[string]string{}, Doc: "CSV column types (int64 or string; others are strings)"},
		},
		New: func(p Params) (Stage, error) {
			format, types, err := readSettings(p)
			if err != nil {
				return nil, err
			}
			return &read{path: p.Str("path"), format: format, types: types}, nil
		},
		Schema: func(p Params, _ map[string]Schema) (map[string]Schema, error) {
			format, types, err := readSettings(p)
			if err != nil {
				return nil, err
			}
			if format == "parquet" {
				return map[string]Schema{"rows": Unknown("the file's columns (read at run time)")}, nil
			}
			// A CSV file's header is only read at run time, but its typed
			// columns must be in it, and every other column is a string.
			s := Schema{Open: true, Rest: StringType, RestDoc: "the file's other columns, as strings"}
			for _, col := range slices.Sorted(maps.Keys(types)) {
				s.Cols = append(s.Cols, Col{col, types[col]})
			}
			return map[string]Schema{"rows": s}, nil
		},
	}
}

// readSettings resolves the format ("auto" by the extension) and the CSV
// column types.
func readSettings(p Params) (string, map[string]arrow.DataType, error) {
	format := p.Str("format")
	path := p.Str("path")
	if format == "auto" {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".csv":
			format = "csv"
		case ".parquet", ".pq":
			format = "parquet"
		default:
			return "", nil, fmt.Errorf("path %q: cannot tell the format from the extension; set format", path)
		}
	}
	types := map[string]arrow.DataType{}
	for col, t := range p.StringMap("types") {
		switch t {
		case "int64":
			types[col] = Int64Type
		case "string":
			types[col] = StringType
		default:
			return "", nil, fmt.Errorf("types: column %q: %q is not int64 or string", col, t)
		}
	}
	return format, types, nil
}

type read struct {
	path, format string
	types        map[string]arrow.DataType
}

func (s *read) Run(ctx context.Context, env *Env, _ map[string]arrow.RecordBatch) (*Result, error) {
	var rec arrow.RecordBatch
	var err error
	switch s.format {
	case "parquet":
		// Its errors name the file.
		if rec, err = table.ReadParquet(ctx, env.Mem, s.path); err != nil {
			return nil, err
		}
	default:
		var f *os.File
		f, err = os.Open(s.path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		rec, err = table.ReadCSV(env.Mem, f, s.types)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.path, err)
	}
	return &Result{Outputs: map[string]arrow.RecordBatch{"rows": rec}}, nil
}
