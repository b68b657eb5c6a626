package stages

import (
	"context"
	"errors"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/kneepipe/kneepipe/internal/source"
	"github.com/kneepipe/kneepipe/internal/table"
)

func listKind() Kind {
	return Kind{
		Name:     "list",
		Doc:      "Lists the objects under the source prefix in S3 order (byte order of the key), keeping keys with the suffix.",
		Source:   true,
		Volatile: true,
		Outputs:  []Port{{"objects", "key, relative_path, uri, size, etag, last_modified; one row per object"}},
		Params: []Param{
			{Name: "suffix", Type: String, Default: ".png", Doc: "keep keys ending with this (empty: keep all)"},
		},
		New: func(p Params) (Stage, error) { return &list{suffix: p.Str("suffix")}, nil },
		Schema: func(Params, map[string]Schema) (map[string]Schema, error) {
			return map[string]Schema{"objects": listSchema()}, nil
		},
	}
}

// colSize is the listing's object size column, which fetch-hash checks
// bodies against and the report reads when present.
const colSize = "size"

// listSchema is what a listing holds; fetch-hash and the report read its
// key and size columns.
func listSchema() Schema {
	return Closed(
		Col{"key", StringType}, Col{"relative_path", StringType}, Col{"uri", StringType},
		Col{colSize, Int64Type}, Col{"etag", StringType}, Col{"last_modified", TimestampType},
	)
}

type list struct{ suffix string }

func (s *list) Run(ctx context.Context, env *Env, _ map[string]arrow.RecordBatch) (*Result, error) {
	if env.Store == nil {
		return nil, errors.New("the pipeline has no source: set source.uri or pass --source")
	}
	var keys, rels, uris, etags []string
	var sizes []int64
	var mtimes []arrow.Timestamp
	err := env.Store.List(ctx, func(o source.Object) error {
		if !strings.HasSuffix(o.Key, s.suffix) {
			return nil
		}
		keys = append(keys, o.Key)
		rels = append(rels, o.Rel)
		uris = append(uris, env.Store.URI(o.Key))
		sizes = append(sizes, o.Size)
		etags = append(etags, o.ETag)
		mtimes = append(mtimes, arrow.Timestamp(o.LastModified.UnixMicro()))
		return nil
	})
	if err != nil {
		return nil, err
	}
	m := env.Mem
	rec := table.New(
		table.Strings(m, "key", keys),
		table.Strings(m, "relative_path", rels),
		table.Strings(m, "uri", uris),
		table.Int64s(m, "size", sizes, nil),
		table.Strings(m, "etag", etags),
		table.Timestamps(m, "last_modified", mtimes),
	)
	return &Result{
		Outputs: map[string]arrow.RecordBatch{"objects": rec},
		Objects: Objects{Listed: int64(len(keys))},
	}, nil
}
