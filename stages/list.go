package stages

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/kneepipe/kneepipe/internal/source"
	"github.com/kneepipe/kneepipe/internal/table"
)

// reasonBadUTF8 is the rejection reason of a key that is not valid UTF-8:
// no table, CSV or later stage can carry it as it is.
const reasonBadUTF8 = "key is not valid UTF-8"

func listKind() Kind {
	return Kind{
		Name:     "list",
		Doc:      "Lists the objects under the source prefix in S3 order (byte order of the key), keeping keys with the suffix.",
		Source:   true,
		Volatile: true,
		Outputs: []Port{
			{"objects", "key, relative_path, uri, size, etag, last_modified; one row per object"},
			{"rejected", "key, reason: listed keys no stage can read (not valid UTF-8; the key shows each bad byte as \\xNN)"},
		},
		Params: []Param{
			{Name: "suffix", Type: String, Default: ".png", Doc: "keep keys ending with this (empty: keep all)"},
			{Name: "suffixes", Type: Strings, Default: []string{}, Doc: "keep keys ending with any of these (e.g. [.png, .jpg, .jpeg]); when given, suffix is not used"},
			{Name: "ignore_case", Type: Bool, Default: true, Doc: "match the suffix in any case (.png keeps .PNG too); false: exactly"},
		},
		New: func(p Params) (Stage, error) {
			suffixes := p.Strings("suffixes")
			if len(suffixes) == 0 {
				suffixes = []string{p.Str("suffix")}
			}
			return &list{suffixes: suffixes, ignoreCase: p.Bool("ignore_case")}, nil
		},
		Schema: func(Params, map[string]Schema) (map[string]Schema, error) {
			return map[string]Schema{
				"objects":  listSchema(),
				"rejected": Closed(Col{"key", StringType}, Col{"reason", StringType}),
			}, nil
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

type list struct {
	suffixes   []string
	ignoreCase bool
}

// keeps says whether a key has one of the suffixes.
func (s *list) keeps(key string) bool {
	for _, suf := range s.suffixes {
		if !s.ignoreCase && strings.HasSuffix(key, suf) ||
			s.ignoreCase && len(key) >= len(suf) && strings.EqualFold(key[len(key)-len(suf):], suf) {
			return true
		}
	}
	return false
}

func (s *list) Run(ctx context.Context, env *Env, _ map[string]arrow.RecordBatch) (*Result, error) {
	if env.Store == nil {
		return nil, errors.New("the pipeline has no source: set source.uri or pass --source")
	}
	var keys, rels, uris, etags, badKeys []string
	var sizes []int64
	var mtimes []arrow.Timestamp
	skipped := map[string]int64{} // by reason
	err := env.Store.List(ctx, func(o source.Object) error {
		switch {
		case !s.keeps(o.Key):
			skipped["other suffix"]++
		case o.Skip != "":
			skipped[o.Skip]++
		case !utf8.ValidString(o.Key):
			badKeys = append(badKeys, escapeKey(o.Key))
		default:
			keys = append(keys, o.Key)
			rels = append(rels, o.Rel)
			uris = append(uris, env.Store.URI(o.Key))
			sizes = append(sizes, o.Size)
			etags = append(etags, o.ETag)
			mtimes = append(mtimes, arrow.Timestamp(o.LastModified.UnixMicro()))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	nSkipped := logSkipped(env, skipped)
	var warnings []string
	if len(badKeys) > 0 {
		warn(env, &warnings, "keys rejected: "+reasonBadUTF8, "keys", len(badKeys), "first", badKeys[0])
	}
	switch {
	case len(keys)+len(badKeys) > 0:
	case nSkipped == 0:
		warn(env, &warnings, "the listing is empty: the source holds no objects")
	default:
		warn(env, &warnings, "the listing is empty: no key has the suffix", "suffix", strings.Join(s.suffixes, " "), "skipped", nSkipped)
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
	reasons := make([]string, len(badKeys))
	for i := range reasons {
		reasons[i] = reasonBadUTF8
	}
	rejected := table.New(table.Strings(m, "key", badKeys), table.Strings(m, "reason", reasons))
	return &Result{
		Outputs:  map[string]arrow.RecordBatch{"objects": rec, "rejected": rejected},
		Objects:  Objects{Listed: int64(len(keys) + len(badKeys)), Rejected: int64(len(badKeys)), Skipped: nSkipped},
		Warnings: warnings,
	}, nil
}

// logSkipped writes one line with the number of keys skipped per reason
// and returns their total.
func logSkipped(env *Env, skipped map[string]int64) int64 {
	var total int64
	reasons := make([]string, 0, len(skipped))
	for r, n := range skipped {
		reasons = append(reasons, r)
		total += n
	}
	if total == 0 {
		return 0
	}
	sort.Strings(reasons)
	attrs := []any{"skipped", total}
	for _, r := range reasons {
		attrs = append(attrs, r, skipped[r])
	}
	env.Log.Info("keys skipped", attrs...)
	return total
}

// escapeKey shows a key as valid UTF-8: each byte that is not part of a
// valid sequence becomes \xNN, the rest stays as it is.
func escapeKey(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); {
		r, size := utf8.DecodeRuneInString(key[i:])
		if r == utf8.RuneError && size == 1 {
			fmt.Fprintf(&b, `\x%02x`, key[i])
		} else {
			b.WriteString(key[i : i+size])
		}
		i += size
	}
	return b.String()
}
