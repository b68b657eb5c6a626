package stages

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/kneepipe/kneepipe/internal/export"
	"github.com/kneepipe/kneepipe/internal/imagecache"
	"github.com/kneepipe/kneepipe/internal/safe"
	"github.com/kneepipe/kneepipe/internal/source"
	"github.com/kneepipe/kneepipe/internal/table"
)

func exportKind() Kind {
	return Kind{
		Name: "export",
		Doc: "Writes the rows of each split as a training set: Hugging Face datasets Parquet in the Hub layout (data/<split>-NNNNN-of-NNNNN.parquet: image struct<bytes, path> with the original bytes, label as a ClassLabel, the row's columns) " +
			"and WebDataset tar shards (webdataset/<split>-NNNNNN.tar: <key>.cls, <key>.json, <key>.png per sample, key = the image's SHA-256). " +
			"Samples are in SHA-256 order within a split; every image is read from the image cache under --cache (which fetch-hash with keep_images fills) or else fetched with retries and kept there, checked against the SHA-256 of its file_id, so that a rerun or another export downloads nothing again. " +
			"Shards are streamed to files under --cache (one image or Parquet row group in memory at a time); the output lists them for an artifact of format files.",
		Source:  true,
		Inputs:  []Port{{"rows", "one row per image with a split column (the split stage's rows), file_id, the grade, the object key"}},
		Outputs: []Port{{"files", "name, path, sha256, size: the shards, stored under --cache (write with an artifact of format files)"}},
		Params: []Param{
			{Name: "formats", Type: Strings, Default: []string{"huggingface", "webdataset"}, Doc: "what to write: huggingface (data/), webdataset (webdataset/)"},
			{Name: "split_column", Type: String, Default: "split", Doc: "column naming each row's split"},
			{Name: "splits", Type: Strings, Default: []string{}, Doc: "splits to write, in this order (default: every split present, sorted)"},
			{Name: "grade", Type: String, Default: "severity", Doc: "int64 column holding the label (class index)"},
			{Name: "label_names", Type: Strings, Default: []string{"0", "1", "2", "3", "4"}, Doc: "class names, index = label (the ClassLabel names)"},
			{Name: "item", Type: String, Default: "file_id", Doc: "<sha256>:<md5> column; the SHA-256 checks the bytes and is the sample key"},
			{Name: "key", Type: String, Default: "key", Doc: "object key column to fetch each image by"},
			{Name: "path", Type: String, Default: "relative_path", Doc: "relative path column (the Parquet image.path)"},
			{Name: "columns", Type: Strings, Default: []string{}, Doc: "row columns to carry into the Parquet columns and .json (default all)"},
			{Name: "max_shard_bytes", Type: Int, Default: int64(500 << 20), Min: 64 << 10, Max: 1 << 40, Doc: "bytes of a shard: tar bytes (webdataset), image and row bytes (huggingface)"},
			{Name: "max_shard_samples", Type: Int, Default: int64(10000), Min: 1, Max: 1 << 30, Doc: "samples of a WebDataset shard"},
			{Name: "concurrency", Type: Int, Default: int64(16), Min: 1, Max: 256, Tuning: true, Doc: "parallel image downloads"},
			{Name: "attempts", Type: Int, Default: int64(4), Min: 1, Max: 20, Tuning: true, Doc: "tries per image, backing off exponentially between them"},
			{Name: "stall_timeout", Type: Duration, Default: 30 * time.Second, Tuning: true, Doc: "give up an attempt when no byte arrives for this long"},
		},
		Schema:   exportSchema,
		RunStats: []string{"downloaded"},
		New: func(p Params) (Stage, error) {
			formats := p.Strings("formats")
			if len(formats) == 0 {
				return nil, fmt.Errorf("formats: name at least one of huggingface, webdataset")
			}
			for i, f := range formats {
				if f != "huggingface" && f != "webdataset" {
					return nil, fmt.Errorf("formats: %q is not one of huggingface, webdataset", f)
				}
				if slices.Contains(formats[:i], f) {
					return nil, fmt.Errorf("formats: %q named twice", f)
				}
			}
			if len(p.Strings("label_names")) == 0 {
				return nil, fmt.Errorf("label_names: name at least one class")
			}
			for i, n := range p.Strings("label_names") {
				if slices.Contains(p.Strings("label_names")[:i], n) {
					return nil, fmt.Errorf("label_names: %q named twice", n)
				}
			}
			return &exportStage{p: p, retry: source.Retry{Attempts: int(p.Int("attempts")), Stall: p.Duration("stall_timeout")}}, nil
		},
	}
}

// ExportFilesDir is where, in its state, the export stage stores its
// shards, each named by its SHA-256 (the sha256 column of its output):
// `cache gc` removes those no recorded run's output lists.
const ExportFilesDir = "files"

// StoredFilesSchema is a table of files kept under --cache, as an
// artifact of format files copies them (export's shards: too large to
// carry in a column).
func StoredFilesSchema() Schema {
	return Closed(Col{"name", StringType}, Col{"path", StringType}, Col{"sha256", StringType}, Col{"size", Int64Type})
}

// exportSchema checks the columns export reads and those it carries: of
// a type the writers render, and none named image or label, which the
// Parquet export adds itself.
func exportSchema(p Params, in map[string]Schema) (map[string]Schema, error) {
	for _, c := range []struct {
		param string
		want  arrow.DataType
	}{{"split_column", StringType}, {"grade", Int64Type}, {"item", StringType}, {"key", StringType}, {"path", StringType}} {
		if err := need(in, "rows", c.param, 0, p.Str(c.param), c.want); err != nil {
			return nil, err
		}
	}
	if _, ok, _ := in["rows"].Lookup("size"); ok {
		if err := need(in, "rows", "", 0, "size", Int64Type); err != nil {
			return nil, err
		}
	}
	carried := in["rows"].Cols
	if cols := p.Strings("columns"); len(cols) > 0 {
		carried = nil
		for i, name := range cols {
			if err := need(in, "rows", "columns", i+1, name, nil); err != nil {
				return nil, err
			}
			c, _, _ := in["rows"].Lookup(name)
			carried = append(carried, c)
		}
	}
	for _, c := range carried {
		if slices.Contains(p.Strings("formats"), "huggingface") && (c.Name == "image" || c.Name == "label") {
			return nil, &ParamError{Param: "columns", Msg: fmt.Sprintf("column %q would shadow the Parquet export's own; leave it out of columns", c.Name)}
		}
		if c.Type != nil && !export.Supported(c.Type) {
			return nil, &ParamError{Param: "columns", Msg: fmt.Sprintf("column %q is %s, which the exports do not write; leave it out of columns", c.Name, typeName(c.Type))}
		}
	}
	return map[string]Schema{"files": StoredFilesSchema()}, nil
}

type exportStage struct {
	p     Params
	retry source.Retry
}

// exportRows is the stage's input, read and checked.
type exportRows struct {
	rows    arrow.RecordBatch // the carried columns
	splits  *table.StringCells
	grades  *array.Int64
	keys    *table.StringCells
	paths   *table.StringCells
	sha     []string
	listed  *array.Int64 // listing sizes, when present
	bySplit map[string][]int
}

func (s *exportStage) Run(ctx context.Context, env *Env, in map[string]arrow.RecordBatch) (*Result, error) {
	if env.Store == nil {
		return nil, errors.New("export reads the images from the pipeline's source: set source.uri or --source")
	}
	if env.StateDir == "" {
		return nil, errors.New("export keeps images and shards under --cache, and has none")
	}
	r, err := s.read(in)
	if err != nil {
		return nil, err
	}
	defer r.rows.Release()
	names, err := s.splitNames(r)
	if err != nil {
		return nil, err
	}
	var order []int
	for _, n := range names {
		if len(r.bySplit[n]) == 0 {
			env.Log.Warn("export: split has no rows; nothing written for it", "split", n)
		}
		order = append(order, r.bySplit[n]...)
	}
	imgs := s.images(env, r)
	if err := imgs.fetchAll(ctx, order, int(s.p.Int("concurrency"))); err != nil {
		return nil, err
	}
	sink, err := s.write(ctx, env, r, imgs, names)
	if err != nil {
		return nil, err
	}
	var total int64
	var fileNames, paths, sums []string
	var sizes []int64
	for _, f := range sink.Files {
		fileNames, paths, sums, sizes = append(fileNames, f.Name), append(paths, f.Path), append(sums, f.SHA256), append(sizes, f.Size)
		total += f.Size
	}
	env.Log.Info("export written", "formats", strings.Join(s.p.Strings("formats"), ","), "files", len(fileNames), "bytes", total, "images", len(order), "downloaded", imgs.downloaded.Load())
	files := table.New(
		table.Strings(env.Mem, "name", fileNames), table.Strings(env.Mem, "path", paths),
		table.Strings(env.Mem, "sha256", sums), table.Int64s(env.Mem, "size", sizes, nil),
	)
	return &Result{
		Outputs: map[string]arrow.RecordBatch{"files": files},
		Stats:   map[string]int64{"downloaded": imgs.downloaded.Load(), "images": int64(len(order))},
	}, nil
}

// splitNames lists the splits to write: as configured, or every split
// present in sorted order. Rows of a split not listed are an error, not a
// silent omission.
func (s *exportStage) splitNames(r *exportRows) ([]string, error) {
	present := slices.Sorted(maps.Keys(r.bySplit))
	names := s.p.Strings("splits")
	if len(names) == 0 {
		return present, nil
	}
	for _, n := range present {
		if !slices.Contains(names, n) {
			return nil, fmt.Errorf("splits: %d rows are in split %q, which is not listed (%s)", len(r.bySplit[n]), n, strings.Join(names, ", "))
		}
	}
	return names, nil
}

// write streams every format's shards, split by split, into the stage's
// state under --cache.
func (s *exportStage) write(ctx context.Context, env *Env, r *exportRows, imgs *exportImages, names []string) (*export.DirSink, error) {
	opt := export.Options{
		LabelNames:      s.p.Strings("label_names"),
		MaxShardBytes:   s.p.Int("max_shard_bytes"),
		MaxShardSamples: int(s.p.Int("max_shard_samples")),
	}
	sink := &export.DirSink{Dir: filepath.Join(env.StateDir, ExportFilesDir)}
	for _, format := range s.p.Strings("formats") {
		for _, n := range names {
			idx := r.bySplit[n]
			if len(idx) == 0 {
				continue
			}
			sp, err := s.split(ctx, env, r, imgs, n, idx)
			if err != nil {
				return nil, err
			}
			if format == "huggingface" {
				_, err = export.WriteHuggingFace(ctx, env.Mem, sink, sp, opt)
			} else {
				_, err = export.WriteWebDataset(ctx, sink, sp, opt)
			}
			sp.Rows.Release()
			if err != nil {
				return nil, fmt.Errorf("export %s: %w", format, err)
			}
		}
	}
	return sink, nil
}

// read checks the input columns and groups the rows by split. An image
// in two splits is a leak, refused here whatever made the splits.
func (s *exportStage) read(in map[string]arrow.RecordBatch) (*exportRows, error) {
	rows, err := input(in, "rows")
	if err != nil {
		return nil, err
	}
	r := &exportRows{bySplit: map[string][]int{}}
	if r.splits, err = table.StringCol(rows, s.p.Str("split_column")); err != nil {
		return nil, fmt.Errorf("split_column: %w", err)
	}
	if r.grades, err = table.Int64Col(rows, s.p.Str("grade")); err != nil {
		return nil, fmt.Errorf("grade: %w", err)
	}
	if r.keys, err = table.StringCol(rows, s.p.Str("key")); err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	if r.paths, err = table.StringCol(rows, s.p.Str("path")); err != nil {
		return nil, fmt.Errorf("path: %w", err)
	}
	items, err := table.StringCol(rows, s.p.Str("item"))
	if err != nil {
		return nil, fmt.Errorf("item: %w", err)
	}
	r.listed, _ = table.Int64Col(rows, "size")
	splitOf := map[string]string{}
	for i := range items.Len() {
		sha, _, ok := strings.Cut(items.Value(i), ":")
		if !ok || !imagecache.ValidSum(sha) || items.IsNull(i) {
			return nil, fmt.Errorf("rows: row %d: %s %q is not <sha256>:<md5>", i+1, s.p.Str("item"), items.Value(i))
		}
		if r.grades.IsNull(i) || r.splits.IsNull(i) || r.keys.IsNull(i) {
			return nil, fmt.Errorf("rows: row %d: %s, %s or %s is empty", i+1, s.p.Str("grade"), s.p.Str("split_column"), s.p.Str("key"))
		}
		sp := r.splits.Value(i)
		if prev, ok := splitOf[sha]; ok && prev != sp {
			return nil, fmt.Errorf("rows: image %s is in split %s and %s: refusing to leak it", items.Value(i), prev, sp)
		}
		splitOf[sha] = sp
		r.sha = append(r.sha, sha)
		r.bySplit[sp] = append(r.bySplit[sp], i)
	}
	// Within a split, samples go in SHA-256 order: independent of the
	// listing, and already shuffled with respect to grade and patient.
	for _, idx := range r.bySplit {
		slices.SortStableFunc(idx, func(a, b int) int { return strings.Compare(r.sha[a], r.sha[b]) })
	}
	if r.rows, err = table.Select(rows, s.p.Strings("columns"), nil); err != nil {
		return nil, fmt.Errorf("columns: %w", err)
	}
	return r, nil
}

// split assembles one split for a writer.
func (s *exportStage) split(ctx context.Context, env *Env, r *exportRows, imgs *exportImages, name string, idx []int) (*export.Split, error) {
	rows, err := table.Take(ctx, env.Mem, r.rows, idx)
	if err != nil {
		return nil, err
	}
	sp := &export.Split{Name: name, Rows: rows}
	for _, i := range idx {
		sp.Keys = append(sp.Keys, r.sha[i])
		sp.Labels = append(sp.Labels, r.grades.Value(i))
		sp.Paths = append(sp.Paths, r.paths.Value(i))
		sp.SHA256 = append(sp.SHA256, r.sha[i])
		sp.Sizes = append(sp.Sizes, imgs.size[i])
	}
	sp.Image = func(ctx context.Context, j int) ([]byte, error) { return imgs.get(ctx, idx[j]) }
	return sp, nil
}

// exportImages fetches the images once each into the image cache under
// --cache (which fetch-hash with keep_images has filled already), and
// hands them to the writers from there.
type exportImages struct {
	s          *exportStage
	env        *Env
	r          *exportRows
	cache      imagecache.Cache
	size       []int64
	downloaded atomic.Int64
}

func (s *exportStage) images(env *Env, r *exportRows) *exportImages {
	return &exportImages{s: s, env: env, r: r, size: make([]int64, len(r.sha)),
		cache: imagecache.Cache{Dir: env.ImageCache}}
}

// fetchAll makes every image of order available and records its size,
// concurrency at a time; the first failure ends it.
func (im *exportImages) fetchAll(ctx context.Context, order []int, concurrency int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	prog := im.env.Progress
	var bar Progress
	if prog != nil {
		bar = prog("export images", len(order))
		defer bar.Done()
	}
	sem := make(chan struct{}, concurrency)
	workers := safe.NewGroup(cancel)
	var once sync.Once
	var first error
	for _, i := range order {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		workers.Go(func() {
			defer func() { <-sem }()
			data, err := im.get(ctx, i)
			if err != nil {
				once.Do(func() { first = err; cancel(err) })
				return
			}
			im.size[i] = int64(len(data))
			if bar != nil {
				bar.Add(1)
			}
		})
	}
	if err := workers.Wait(); err != nil {
		return err
	}
	if first != nil {
		return first
	}
	return ctx.Err()
}

// get returns row i's image, checked against its SHA-256.
func (im *exportImages) get(ctx context.Context, i int) ([]byte, error) {
	key := im.r.keys.Value(i)
	data, fetched, err := im.cache.Get(ctx, im.r.sha[i], func(ctx context.Context) ([]byte, error) {
		return im.fetch(ctx, i)
	})
	if fetched && err == nil {
		im.downloaded.Add(1)
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", key, err)
	}
	return data, nil
}

// fetch reads one object through the retrying reader; a body of the wrong
// size or SHA-256 is refused, and so retried.
func (im *exportImages) fetch(ctx context.Context, i int) ([]byte, error) {
	var data []byte
	attempts, err := im.s.retry.Read(ctx, im.env.Store, im.r.keys.Value(i), func(body io.Reader) error {
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, io.LimitReader(body, maxImageBytes+1)); err != nil {
			return fmt.Errorf("read body: %w", err)
		}
		if buf.Len() > maxImageBytes {
			return fmt.Errorf("larger than %d bytes", maxImageBytes)
		}
		if l := im.r.listed; l != nil && l.IsValid(i) && int64(buf.Len()) != l.Value(i) {
			return fmt.Errorf("got %d bytes, listing says %d", buf.Len(), l.Value(i))
		}
		if err := imagecache.Check(buf.Bytes(), im.r.sha[i]); err != nil {
			return fmt.Errorf("body damaged in transit or object changed since fetch-hash: %w", err)
		}
		data = buf.Bytes()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w (%d attempts)", err, attempts)
	}
	return data, nil
}
