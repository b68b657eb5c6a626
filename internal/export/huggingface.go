package export

import (
	"context"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/kneepipe/kneepipe/internal/table"
)

// hfRowGroup is the rows of a Parquet row group: `datasets` writes image
// datasets in row groups of 100 rows too, so that a streaming reader holds
// a hundred images at a time.
const hfRowGroup = 100

// imageType is the storage of the datasets Image feature.
var imageType = arrow.StructOf(
	arrow.Field{Name: "bytes", Type: arrow.BinaryTypes.Binary, Nullable: true},
	arrow.Field{Name: "path", Type: arrow.BinaryTypes.String, Nullable: true},
)

// WriteHuggingFace writes s as data/<split>-NNNNN-of-NNNNN.parquet, the
// layout load_dataset("parquet"-backed Hub repo) reads: columns image
// (struct<bytes, path>, the original bytes), label (int64) and the row's
// columns, and the Parquet key-value metadata "huggingface" holding the
// features as `datasets` writes them (Image, ClassLabel with the names,
// Value per column). A shard holds at most MaxShardBytes of image bytes
// plus the row's text (one larger image alone), which is close to the
// file's size: PNG bytes do not compress.
func WriteHuggingFace(ctx context.Context, mem memory.Allocator, sink Sink, s *Split, opt Options) ([]string, error) {
	if err := s.check(opt); err != nil {
		return nil, err
	}
	schema, err := hfSchema(s.Rows.Schema(), opt.LabelNames)
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", s.Name, err)
	}
	n := int(s.Rows.NumRows())
	rowBytes := make([]int64, n)
	for i := range n {
		js, err := rowJSON(s.Rows, i)
		if err != nil {
			return nil, fmt.Errorf("split %s: row %d: %w", s.Name, i+1, err)
		}
		rowBytes[i] = s.Sizes[i] + int64(len(js)) + int64(len(s.Paths[i]))
	}
	plan := shards(func(i int) int64 { return rowBytes[i] }, n, opt.MaxShardBytes, 0)
	var names []string
	for k, r := range plan {
		name := fmt.Sprintf("data/%s-%05d-of-%05d.parquet", s.Name, k, len(plan))
		if err := writeHFShard(ctx, mem, sink, name, schema, s, r); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		names = append(names, name)
	}
	return names, nil
}

// hfSchema is image, label, then the row's columns, with the features.
func hfSchema(rows *arrow.Schema, labelNames []string) (*arrow.Schema, error) {
	fields := []arrow.Field{
		{Name: "image", Type: imageType, Nullable: true},
		{Name: "label", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}
	features := pyObject{
		{"image", pyObject{{"_type", "Image"}}},
		{"label", pyObject{{"names", labelNames}, {"_type", "ClassLabel"}}},
	}
	for _, f := range rows.Fields() {
		if f.Name == "image" || f.Name == "label" {
			return nil, fmt.Errorf("column %q would shadow the export's own; leave it out or rename it", f.Name)
		}
		dtype, err := datasetsDtype(f.Type)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", f.Name, err)
		}
		fields = append(fields, arrow.Field{Name: f.Name, Type: table.PlainType(f.Type), Nullable: true})
		features = append(features, pyItem{f.Name, pyObject{{"dtype", dtype}, {"_type", "Value"}}})
	}
	info := pyObject{{"info", pyObject{{"features", features}}}}
	md := arrow.NewMetadata([]string{"huggingface"}, []string{info.String()})
	return arrow.NewSchema(fields, &md), nil
}

// Supported says whether the writers export a column of type t.
func Supported(t arrow.DataType) bool {
	_, err := datasetsDtype(t)
	return err == nil
}

// datasetsDtype names an Arrow type the way datasets.Value does.
// A dictionary string column is exported as a plain one.
func datasetsDtype(t arrow.DataType) (string, error) {
	switch t := table.PlainType(t).(type) {
	case *arrow.StringType:
		return "string", nil
	case *arrow.LargeStringType:
		return "large_string", nil
	case *arrow.Int64Type:
		return "int64", nil
	case *arrow.Int32Type:
		return "int32", nil
	case *arrow.Float64Type:
		return "float64", nil
	case *arrow.BooleanType:
		return "bool", nil
	case *arrow.TimestampType:
		if t.TimeZone == "" {
			return "timestamp[" + t.Unit.String() + "]", nil
		}
		return "timestamp[" + t.Unit.String() + ", tz=" + t.TimeZone + "]", nil
	}
	return "", fmt.Errorf("type %s is not exported", t)
}

func writeHFShard(ctx context.Context, mem memory.Allocator, sink Sink, name string, schema *arrow.Schema, s *Split, r [2]int) error {
	f, err := sink.Create(name)
	if err != nil {
		return err
	}
	props := parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithDictionaryDefault(false), // deterministic footers, as table.WriteParquet
		parquet.WithCreatedBy("kneepipe"),
		parquet.WithMaxRowGroupLength(hfRowGroup),
		// Min/max statistics of the image bytes would store images again
		// in every page header and column chunk.
		parquet.WithStatsFor("image.bytes", false),
	)
	fw, err := pqarrow.NewFileWriter(schema, struct{ io.Writer }{f}, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		f.Abort()
		return err
	}
	err = func() error {
		for lo := r[0]; lo < r[1]; lo += hfRowGroup {
			hi := min(lo+hfRowGroup, r[1])
			rec, err := hfBatch(ctx, mem, schema, s, lo, hi)
			if err != nil {
				return err
			}
			err = fw.Write(rec)
			rec.Release()
			if err != nil {
				return err
			}
		}
		return nil
	}()
	if cerr := fw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

// hfBatch builds rows lo..hi: only one row group's images are held.
func hfBatch(ctx context.Context, mem memory.Allocator, schema *arrow.Schema, s *Split, lo, hi int) (arrow.RecordBatch, error) {
	img := array.NewStructBuilder(mem, imageType)
	defer img.Release()
	bytesB := img.FieldBuilder(0).(*array.BinaryBuilder)
	pathB := img.FieldBuilder(1).(*array.StringBuilder)
	label := array.NewInt64Builder(mem)
	defer label.Release()
	for i := lo; i < hi; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, err := s.image(ctx, i)
		if err != nil {
			return nil, err
		}
		img.Append(true)
		bytesB.Append(data)
		pathB.Append(s.Paths[i])
		label.Append(s.Labels[i])
	}
	cols := []arrow.Array{img.NewArray(), label.NewArray()}
	part := s.Rows.NewSlice(int64(lo), int64(hi))
	defer part.Release()
	for c := range int(part.NumCols()) {
		a, err := table.Plain(mem, part.Column(c)) // as the schema says
		if err != nil {
			for _, a := range cols {
				a.Release()
			}
			return nil, fmt.Errorf("column %s: %w", part.ColumnName(c), err)
		}
		cols = append(cols, a)
	}
	rec := array.NewRecordBatch(schema, cols, int64(hi-lo))
	for _, a := range cols {
		a.Release()
	}
	return rec, nil
}
