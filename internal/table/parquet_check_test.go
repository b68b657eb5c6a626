package table

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/thrift/lib/go/thrift"

	"github.com/kneepipe/kneepipe/internal/safe"
)

// validParquet is a small file of kneepipe's (ARROW:schema included),
// cache form (dict) or artifact form.
func validParquet(t testing.TB, dict bool) []byte {
	mem := memory.NewGoAllocator()
	rec := sampleRecord(mem)
	write := WriteParquet
	if dict {
		d := NewDictColumn(4)
		for _, v := range []string{"a", "b", "a", ""} {
			d.Append(v)
		}
		a := d.NewArray(mem)
		rec.Release()
		rec = New(Column{"severity", a}, Int64s(mem, "n", []int64{1, 2, 3, 4}, nil))
		write = WriteParquetFast
	}
	defer rec.Release()
	var b bytes.Buffer
	if err := write(&b, rec); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// readBytes writes data to a file and reads it with ReadParquet. The
// error must name the file on one line; a panic of arrow-go's that
// ReadParquet recovered fails the test too (checkParquet missed a case).
func readBytes(t testing.TB, data []byte) error {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.parquet")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	rec, err := ReadParquet(context.Background(), memory.NewGoAllocator(), p)
	if err == nil {
		rec.Release()
		return nil
	}
	if _, ok := errors.AsType[*safe.PanicError](err); ok {
		t.Fatalf("arrow-go panicked: %v", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, p+": ") || strings.Contains(msg, "\n") {
		t.Fatalf("error %q: want one line starting with the file's name", msg)
	}
	return err
}

// editFooter re-encodes data's thrift footer, passing every integer,
// string and list length through edit with its path of field ids
// ("4.1.3.7": row_groups, columns, meta_data, total_compressed_size; a
// list's length has "[]" appended). A list length edit changes only the
// declared length.
func editFooter(t testing.TB, data []byte, edit func(path string, v any) any) []byte {
	t.Helper()
	n := int(binary.LittleEndian.Uint32(data[len(data)-8:]))
	footer := data[len(data)-8-n : len(data)-8]
	ctx := context.Background()
	r := thrift.NewTCompactProtocolConf(&thrift.TMemoryBuffer{Buffer: bytes.NewBuffer(footer)}, nil)
	var out thrift.TMemoryBuffer
	out.Buffer = new(bytes.Buffer)
	w := thrift.NewTCompactProtocolConf(&out, nil)
	if err := copyThrift(ctx, r, w, thrift.STRUCT, "", edit); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	res := append(bytes.Clone(data[:len(data)-8-n]), out.Bytes()...)
	res = binary.LittleEndian.AppendUint32(res, uint32(out.Len()))
	return append(res, "PAR1"...)
}

func copyThrift(ctx context.Context, r, w *thrift.TCompactProtocol, t thrift.TType, path string, edit func(string, any) any) error {
	var err error
	switch t {
	case thrift.STRUCT:
		r.ReadStructBegin(ctx)
		w.WriteStructBegin(ctx, "")
		for {
			_, ft, id, err := r.ReadFieldBegin(ctx)
			if err != nil {
				return err
			}
			if ft == thrift.STOP {
				w.WriteFieldStop(ctx)
				w.WriteStructEnd(ctx)
				return r.ReadStructEnd(ctx)
			}
			w.WriteFieldBegin(ctx, "", ft, id)
			if err := copyThrift(ctx, r, w, ft, strings.TrimPrefix(path+"."+strconv.Itoa(int(id)), "."), edit); err != nil {
				return err
			}
			r.ReadFieldEnd(ctx)
			w.WriteFieldEnd(ctx)
		}
	case thrift.LIST:
		et, n, err := r.ReadListBegin(ctx)
		if err != nil {
			return err
		}
		w.WriteListBegin(ctx, et, edit(path+"[]", n).(int))
		for range n {
			if err := copyThrift(ctx, r, w, et, path, edit); err != nil {
				return err
			}
		}
		return w.WriteListEnd(ctx)
	case thrift.BOOL:
		var v bool
		if v, err = r.ReadBool(ctx); err == nil {
			err = w.WriteBool(ctx, v)
		}
	case thrift.BYTE:
		var v int8
		if v, err = r.ReadByte(ctx); err == nil {
			err = w.WriteByte(ctx, v)
		}
	case thrift.I16:
		var v int16
		if v, err = r.ReadI16(ctx); err == nil {
			err = w.WriteI16(ctx, v)
		}
	case thrift.I32:
		var v int32
		if v, err = r.ReadI32(ctx); err == nil {
			err = w.WriteI32(ctx, edit(path, v).(int32))
		}
	case thrift.I64:
		var v int64
		if v, err = r.ReadI64(ctx); err == nil {
			err = w.WriteI64(ctx, edit(path, v).(int64))
		}
	case thrift.DOUBLE:
		var v float64
		if v, err = r.ReadDouble(ctx); err == nil {
			err = w.WriteDouble(ctx, v)
		}
	case thrift.STRING:
		var v []byte
		if v, err = r.ReadBinary(ctx); err == nil {
			err = w.WriteBinary(ctx, []byte(edit(path, string(v)).(string)))
		}
	default:
		return fmt.Errorf("%s: thrift type %v not in a parquet footer", path, t)
	}
	return err
}

// setAt returns an edit setting the value at path to v (int64 for any
// integer).
func setAt(path string, v any) func(string, any) any {
	return func(p string, old any) any {
		if p != path {
			return old
		}
		// An integer takes the type of the one it replaces.
		if n, ok := v.(int64); ok {
			switch old.(type) {
			case int32:
				return int32(n)
			case int:
				return int(n)
			}
		}
		return v
	}
}

// editArrowSchema returns an edit patching the flatbuffer of the file's
// ARROW:schema value: patch gets the message (after its 8-byte prefix)
// and the Schema table.
func editArrowSchema(t testing.TB, patch func(f *flatbuf, schema fbTable)) func(string, any) any {
	return func(p string, v any) any {
		s, ok := v.(string)
		if p != "5.2" || !ok {
			return v
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		f := &flatbuf{b: b[8:], budget: 1 << 20}
		msg, err := f.table(int64(binary.LittleEndian.Uint32(f.b)))
		if err != nil {
			t.Fatal(err)
		}
		schema, err := f.tableAt(msg, msgHeader)
		if err != nil {
			t.Fatal(err)
		}
		patch(f, *schema)
		return base64.StdEncoding.EncodeToString(b)
	}
}

func (f *flatbuf) put32(t testing.TB, at int64, v uint32) {
	t.Helper()
	if at <= 0 {
		t.Fatal("no such field to patch")
	}
	binary.LittleEndian.PutUint32(f.b[at:], v)
}

// firstField is the first Field table of a schema.
func (f *flatbuf) firstField(t testing.TB, schema fbTable) fbTable {
	start, n, err := f.vector(schema, schemaFields, 4)
	if err != nil || n == 0 {
		t.Fatalf("schema has no fields (%v)", err)
	}
	off, _ := f.uint(start, 4)
	field, err := f.table(start + int64(off))
	if err != nil {
		t.Fatal(err)
	}
	return field
}

// Each crafted footer gets its own error, not an out-of-memory crash,
// a stack overflow or a panic.
func TestReadParquetHostileFooter(t *testing.T) {
	valid := validParquet(t, false)
	if err := readBytes(t, valid); err != nil {
		t.Fatalf("the valid file: %v", err)
	}
	if err := readBytes(t, editFooter(t, valid, func(_ string, v any) any { return v })); err != nil {
		t.Fatalf("the valid file re-encoded: %v", err)
	}
	huge := int64(1) << 40
	footerLen := func(n uint32) []byte {
		b := bytes.Clone(valid)
		binary.LittleEndian.PutUint32(b[len(b)-8:], n)
		return b
	}
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"footer longer than the file": {footerLen(uint32(len(valid))), "corrupt parquet footer: metadata length"},
		"footer length 0":             {footerLen(0), "corrupt parquet footer: metadata length 0"},
		"no magic":                    {valid[:len(valid)-1], "not a parquet file"},
		"tiny":                        {[]byte("PAR1PAR1"), "too short"},
		"huge row count":              {editFooter(t, valid, setAt("4.3", huge)), "rows of 3 columns"},
		"negative row count":          {editFooter(t, valid, setAt("4.3", int64(-1))), "row group 0: -1 rows"},
		"huge chunk size":             {editFooter(t, valid, setAt("4.1.3.7", huge)), "column 0: pages at 4, 1099511627776 bytes, past the data's end"},
		"chunk past the end":          {editFooter(t, valid, setAt("4.1.3.9", int64(len(valid)))), "past the data's end"},
		"negative chunk offset":       {editFooter(t, valid, setAt("4.1.3.9", int64(-8))), "pages at -8"},
		"negative value count":        {editFooter(t, valid, setAt("4.1.3.5", int64(-1))), "-1 values"},
		"overlapping chunks":          {editFooter(t, valid, setAt("4.1.3.9", int64(4))), "overlap"},
		"huge child count":            {editFooter(t, valid, setAt("2.5", int64(1<<30))), "schema: 4 elements, fewer than the child counts call for"},
		"negative child count":        {editFooter(t, valid, setAt("2.5", int64(-1))), "schema: root has -1 children"},
		"huge schema list":            {editFooter(t, valid, setAt("2[]", int64(1<<28))), "size exceeded"},
		"huge row group list":         {editFooter(t, valid, setAt("4[]", int64(1<<28))), "size exceeded"},
		"huge column list":            {editFooter(t, valid, setAt("4.1[]", int64(1<<28))), "size exceeded"},
		"huge path list":              {editFooter(t, valid, setAt("4.1.3.3[]", int64(1<<28))), "size exceeded"},
		"huge key-value list":         {editFooter(t, valid, setAt("5[]", int64(1<<28))), "size exceeded"},
		"arrow schema not base64":     {editFooter(t, valid, setAt("5.2", "!!")), "ARROW:schema: not base64"},
		"arrow fields vector": {editFooter(t, valid, editArrowSchema(t, func(f *flatbuf, s fbTable) {
			at, _ := f.ref(s, schemaFields)
			f.put32(t, at, 1<<30)
		})), "ARROW:schema: vector of 1073741824 elements"},
		"arrow metadata vector": {editFooter(t, valid, editArrowSchema(t, func(f *flatbuf, s fbTable) {
			at, _ := f.ref(f.firstField(t, s), fieldMetadata)
			if at == 0 {
				at, _ = f.ref(f.firstField(t, s), fieldChildren)
			}
			f.put32(t, at, 1<<31)
		})), "ARROW:schema: vector of 2147483648 elements"},
		"arrow field its own child": {editFooter(t, valid, editArrowSchema(t, func(f *flatbuf, s fbTable) {
			fields, _ := f.ref(s, schemaFields)
			at, _ := f.field(f.firstField(t, s), fieldChildren)
			f.put32(t, at, uint32(fields-at))
		})), "ARROW:schema: offset 4294967340 out of the 264-byte schema"},
		"arrow name past the end": {editFooter(t, valid, editArrowSchema(t, func(f *flatbuf, s fbTable) {
			at, _ := f.field(f.firstField(t, s), fieldName)
			f.put32(t, at, 1<<31)
		})), "ARROW:schema: offset"},
	} {
		t.Run(name, func(t *testing.T) {
			err := readBytes(t, tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// Every truncation and every flipped byte of valid files reads or fails
// with an error naming the file; none panics.
func TestReadParquetDamaged(t *testing.T) {
	for _, dict := range []bool{false, true} {
		valid := validParquet(t, dict)
		failed := 0
		for n := range len(valid) {
			if readBytes(t, valid[:n]) == nil {
				t.Fatalf("dict %v: the first %d of %d bytes read without an error", dict, n, len(valid))
			}
		}
		for i := range valid {
			b := bytes.Clone(valid)
			b[i] ^= 0xff
			if readBytes(t, b) != nil {
				failed++
			}
		}
		// Bytes of statistics or unused metadata may change unnoticed,
		// but the footer's structure may not.
		if failed < len(valid)/4 {
			t.Errorf("dict %v: only %d of %d flipped bytes failed", dict, failed, len(valid))
		}
	}
}

func TestSchemaLeaves(t *testing.T) {
	deep := []int32{1}
	for range maxSchemaDepth {
		deep = append(deep, 1)
	}
	for _, tc := range []struct {
		numChildren []int32
		leaves      int
		err         string
	}{
		{[]int32{0}, 0, ""},
		{[]int32{3, 0, 0, 0}, 3, ""},
		{[]int32{2, 2, 0, 0, 0}, 3, ""},
		{append(deep[:maxSchemaDepth:maxSchemaDepth], 0), 1, ""},
		{append(deep, 0), 0, "nested deeper than 64"},
		{[]int32{1, 0, 0}, 0, "element 2 is outside the root"},
		{[]int32{2, 0}, 0, "fewer than the child counts"},
		{[]int32{1, -1}, 0, "element 1 has -1 children"},
	} {
		leaves, err := schemaLeaves(tc.numChildren)
		if leaves != tc.leaves || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("schemaLeaves(%d elements) = %d, %v; want %d, %q", len(tc.numChildren), leaves, err, tc.leaves, tc.err)
		}
	}
}

// FuzzReadParquet: no input panics or crashes ReadParquet; every error
// names the file on one line (readBytes).
func FuzzReadParquet(f *testing.F) {
	f.Add(validParquet(f, false))
	f.Add(validParquet(f, true))
	f.Fuzz(func(t *testing.T, data []byte) {
		readBytes(t, data)
	})
}
