package table

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// rowGroupRows bounds a row group; 1M-row tables are split so readers can
// stream them.
const rowGroupRows = 256 * 1024

// WriteParquet writes rec as a Snappy-compressed Parquet file, the form
// other tools read best (artifacts). The output depends only on the data:
// no timestamps or host names are recorded, and dictionaries are off
// because arrow-go lists the page encodings of a column whose dictionary
// overflowed in map order, which would make the footer differ run to run.
// A string column that Snappy cannot shrink (see incompressible) is
// stored uncompressed.
func WriteParquet(w io.Writer, rec arrow.RecordBatch) error {
	props := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithDictionaryDefault(false),
		parquet.WithCreatedBy("kneepipe"),
	}
	for i, f := range rec.Schema().Fields() {
		if incompressible(rec.Column(i)) {
			props = append(props, parquet.WithCompressionFor(f.Name, compress.Codecs.Uncompressed))
		}
	}
	return writeParquet(w, rec, parquet.NewWriterProperties(props...), true)
}

// sampleBytes is how much of a string column incompressible tries.
const sampleBytes = 1 << 20

// incompressible says whether Snappy shrinks a string column's first MB
// by less than a tenth (hex ids, hashes). arrow-go's Snappy encoder (s2's
// "better" mode) runs at about 150 MB/s on such bytes, for 7 % at best: at
// 10M rows the file_id column alone was 16 % of the table run's CPU.
// Columns under 64 KB are compressed as before.
func incompressible(a arrow.Array) bool {
	var data []byte
	if s, ok := AsStrings(a); ok && s.width != 0 {
		// The text of the first rows, as for a plain column.
		for i := 0; i < s.Len() && len(data) < sampleBytes; i++ {
			data = append(data, s.Value(i)...)
		}
	} else if ok {
		data = s.values.ValueBytes()
	} else if b, ok := a.(*array.Binary); ok {
		data = b.ValueBytes()
	}
	if len(data) < 64<<10 {
		return false
	}
	codec, err := compress.GetCodec(compress.Codecs.Snappy)
	if err != nil {
		return false
	}
	sample := data[:min(len(data), sampleBytes)]
	return len(codec.Encode(nil, sample))*10 > len(sample)*9
}

// WriteParquetFast writes rec uncompressed and without dictionaries: for
// the stage cache, where kneepipe alone reads the file back and writing
// speed matters more than size.
func WriteParquetFast(w io.Writer, rec arrow.RecordBatch) error {
	return writeParquet(w, rec, fastProps(widePages(rec)), false)
}

// fastProps are WriteParquetFast's properties, then extra.
func fastProps(extra []parquet.WriterProperty) *parquet.WriterProperties {
	return parquet.NewWriterProperties(append([]parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Uncompressed),
		parquet.WithDictionaryDefault(false),
		parquet.WithStats(false),
		parquet.WithCreatedBy("kneepipe"),
	}, extra...)...)
}

// widePageBytes is the page size for tables with wide values.
const widePageBytes = 256 << 10

// widePages sizes the batches and pages of a table that has a column of
// wide values (over 1 KiB a row on average, such as fetch-hash's 4.4 KB
// fingerprints) to ~widePageBytes. arrow-go writes 1024 values a batch
// (4.5 MB of fingerprints) into pooled buffers that it clears whole on
// every page: for 3300 fingerprints 12 ms and 22 MB allocated, 2.7 ms and
// 2.9 MB in pages of 256 KiB (BenchmarkWriteParquetFastWide), at the end
// of the stage, when little else runs. Narrow tables keep the defaults.
func widePages(rec arrow.RecordBatch) []parquet.WriterProperty {
	rows := rec.NumRows()
	if rows == 0 {
		return nil
	}
	var widest int64
	for _, c := range rec.Columns() {
		var n int
		switch a := c.(type) {
		case *array.Binary:
			n = len(a.ValueBytes())
		case *array.String:
			n = len(a.ValueBytes())
		}
		widest = max(widest, int64(n)/rows)
	}
	if widest <= 1<<10 {
		return nil
	}
	return []parquet.WriterProperty{
		parquet.WithBatchSize(max(16, widePageBytes/widest)),
		parquet.WithDataPageSize(widePageBytes),
	}
}

// writeParquet writes rec in row groups. With plain, a dictionary string
// column is written as a plain one, its schema too, one row group at a
// time: an artifact's file is the same whichever form the column had in
// memory. Without, the schema keeps the dictionary type, so that the
// stage cache reads the column back in that form.
func writeParquet(w io.Writer, rec arrow.RecordBatch, props *parquet.WriterProperties, plain bool) error {
	schema := rec.Schema()
	if plain {
		schema = plainSchema(schema)
	}
	// The Parquet writer closes a writer that is an io.Closer; the caller owns w.
	fw, err := pqarrow.NewFileWriter(schema, struct{ io.Writer }{w}, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return err
	}
	for off := int64(0); off < rec.NumRows() || off == 0; off += rowGroupRows {
		end := min(off+rowGroupRows, rec.NumRows())
		part := rec.NewSlice(off, end)
		var err error
		if plain && schema != rec.Schema() {
			part, err = plainRecord(part, schema)
		}
		if err == nil {
			err = fw.Write(part)
			part.Release()
		}
		if err != nil {
			fw.Close()
			return err
		}
		if end == rec.NumRows() {
			break
		}
	}
	return fw.Close()
}

// plainSchema is schema with dictionary string columns as plain strings
// (schema itself when it has none).
func plainSchema(schema *arrow.Schema) *arrow.Schema {
	fields := schema.Fields()
	changed := false
	for i, f := range fields {
		if t := PlainType(f.Type); t != f.Type {
			fields[i].Type, changed = t, true
		}
	}
	if !changed {
		return schema
	}
	return arrow.NewSchema(fields, nil)
}

// plainRecord is rec (released) with its dictionary string columns made
// plain, under schema.
func plainRecord(rec arrow.RecordBatch, schema *arrow.Schema) (arrow.RecordBatch, error) {
	defer rec.Release()
	cols := make([]arrow.Array, 0, rec.NumCols())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for i := range rec.NumCols() {
		c, err := Plain(memory.DefaultAllocator, rec.Column(int(i)))
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", rec.ColumnName(int(i)), err)
		}
		cols = append(cols, c)
	}
	return array.NewRecordBatch(schema, cols, rec.NumRows()), nil
}

// ReadParquet reads a whole Parquet file into one record batch.
func ReadParquet(ctx context.Context, mem memory.Allocator, path string) (arrow.RecordBatch, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tbl, err := pqarrow.ReadTable(ctx, f, nil, pqarrow.ArrowReadProperties{}, mem)
	if err != nil {
		return nil, fmt.Errorf("read parquet %s: %w", path, err)
	}
	defer tbl.Release()
	return tableToRecord(mem, tbl)
}

// tableToRecord concatenates each column's chunks into one array.
func tableToRecord(mem memory.Allocator, tbl arrow.Table) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, tbl.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i := range cols {
		chunks := tbl.Column(i).Data().Chunks()
		switch len(chunks) {
		case 0:
			cols[i] = array.MakeArrayOfNull(mem, tbl.Schema().Field(i).Type, 0)
		case 1:
			chunks[0].Retain()
			cols[i] = chunks[0]
		default:
			a, err := array.Concatenate(chunks, mem)
			if err != nil {
				return nil, fmt.Errorf("column %q: %w", tbl.Schema().Field(i).Name, err)
			}
			cols[i] = a
		}
	}
	// Drop the reader's field metadata (PARQUET:field_id) so a record read
	// back writes the same bytes as the record first written.
	fields := make([]arrow.Field, tbl.NumCols())
	for i := range fields {
		f := tbl.Schema().Field(i)
		fields[i] = arrow.Field{Name: f.Name, Type: f.Type, Nullable: f.Nullable}
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, tbl.NumRows()), nil
}
