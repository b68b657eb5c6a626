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
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/kneepipe/kneepipe/internal/safe"
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
			err = writePlainRowGroup(fw, part)
		} else {
			err = fw.Write(part)
		}
		part.Release()
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

// writePlainRowGroup writes rec as one row group, as fw.Write does, with
// its dictionary string columns made plain one at a time: fw.Write takes
// them all at once, and at 1M rows a 256K-row group's plain text (45 MB)
// was a sixth of the table run's peak memory.
func writePlainRowGroup(fw *pqarrow.FileWriter, rec arrow.RecordBatch) error {
	if err := fw.NewRowGroupChecked(); err != nil {
		return err
	}
	for i, col := range rec.Columns() {
		c, err := Plain(memory.DefaultAllocator, col)
		if err != nil {
			return fmt.Errorf("column %q: %w", rec.ColumnName(i), err)
		}
		err = fw.WriteColumnData(c)
		c.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// ReadParquet reads a whole Parquet file into one record batch. The file
// may be damaged or hostile (a read stage's): checkParquet vets its footer
// before arrow-go trusts it, and a panic in arrow-go on a file that passed
// is the file's error, not a crash. Errors name the file.
func ReadParquet(ctx context.Context, mem memory.Allocator, path string) (arrow.RecordBatch, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkParquet(f, st.Size()); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var rec arrow.RecordBatch
	if p := safe.Call(func() { rec, err = readParquet(ctx, mem, f) }); p != nil {
		err = p
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rec, nil
}

// readParquet reads f column by column (as pqarrow's ReadTable does, but
// a column shorter than the footer's row count is an error rather than
// a panic, and so is a panic decoding one, as in ReadTable).
func readParquet(ctx context.Context, mem memory.Allocator, f *os.File) (arrow.RecordBatch, error) {
	pf, err := file.NewParquetReader(f)
	if err != nil {
		return nil, err
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, mem)
	if err != nil {
		return nil, err
	}
	leaves := make([]int, pf.MetaData().Schema.NumColumns())
	for i := range leaves {
		leaves[i] = i
	}
	rgs := make([]int, pf.NumRowGroups())
	rows := int64(0)
	for i := range rgs {
		rgs[i] = i
		rows += pf.MetaData().RowGroup(i).NumRows()
	}
	readers, schema, err := fr.GetFieldReaders(ctx, leaves, rgs)
	if err != nil {
		return nil, err
	}
	cols := make([]arrow.Array, len(readers))
	defer func() {
		for i, r := range readers {
			r.Release()
			if cols[i] != nil {
				cols[i].Release()
			}
		}
	}()
	for i, r := range readers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := schema.Field(i).Name
		var chunked *arrow.Chunked
		if p := safe.Call(func() { chunked, err = fr.ReadColumn(rgs, r) }); p != nil {
			err = fmt.Errorf("%v", p.Value)
		}
		if err == nil {
			cols[i], err = concatChunks(mem, chunked)
			chunked.Release()
		}
		if err == nil && int64(cols[i].Len()) != rows {
			err = fmt.Errorf("%d rows, the footer says %d", cols[i].Len(), rows)
		}
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", name, err)
		}
	}
	// Drop the reader's field metadata (PARQUET:field_id) so a record read
	// back writes the same bytes as the record first written.
	fields := make([]arrow.Field, len(cols))
	for i := range fields {
		f := schema.Field(i)
		fields[i] = arrow.Field{Name: f.Name, Type: f.Type, Nullable: f.Nullable}
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rows), nil
}

// concatChunks makes a column's chunks one array.
func concatChunks(mem memory.Allocator, c *arrow.Chunked) (arrow.Array, error) {
	switch chunks := c.Chunks(); len(chunks) {
	case 0:
		return array.MakeArrayOfNull(mem, c.DataType(), 0), nil
	case 1:
		chunks[0].Retain()
		return chunks[0], nil
	default:
		return array.Concatenate(chunks, mem)
	}
}
