package table

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// The ARROW:schema metadata of a Parquet file is an Arrow IPC schema
// message (a flatbuffer) that arrow-go decodes to restore what Parquet
// types cannot say: dictionary columns (the stage cache's), timestamp
// zones, large and view types. Its decoder trusts every length in it: a
// vector length allocates that many fields or strings up front, a body
// length that many bytes, and a field listed as its own child recurses
// forever; none of this a recover catches. checkArrowSchema walks the
// message first, every offset and length bounded by the buffer, the
// nesting by maxSchemaDepth and the tables visited by the buffer's size.

// Flatbuffer field slots of Arrow's Message.fbs and Schema.fbs.
const (
	msgHeaderType, msgHeader, msgBodyLength, msgMetadata = 1, 2, 3, 4
	schemaFields, schemaMetadata, schemaFeatures         = 1, 2, 3
	fieldName, fieldTypeType, fieldType, fieldDict       = 0, 2, 3, 4
	fieldChildren, fieldMetadata                         = 5, 6
	dictIndexType                                        = 1
	headerSchema                                         = 1 // MessageHeader.Schema
	typeTimestamp, typeUnion                             = 10, 14
	timestampZone, unionTypeIDs                          = 1, 1 // their offset fields
)

// checkArrowSchema checks the base64 IPC message s as arrow-go reads it.
func checkArrowSchema(s string) error {
	var b []byte
	var err error
	if len(s)%4 == 0 {
		b, err = base64.StdEncoding.DecodeString(s)
	}
	if len(b) == 0 || err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(s); err != nil {
			return fmt.Errorf("not base64: %w", err)
		}
	}
	// The message's length, after the continuation marker 0xFFFFFFFF
	// unless the writer predates it.
	if len(b) < 8 {
		return fmt.Errorf("%d bytes, too short for a message", len(b))
	}
	start, n := int64(4), int64(int32(binary.LittleEndian.Uint32(b)))
	if binary.LittleEndian.Uint32(b) == 0xFFFFFFFF {
		start, n = 8, int64(int32(binary.LittleEndian.Uint32(b[4:])))
	}
	if n < 4 || n > int64(len(b))-start {
		return fmt.Errorf("message length %d in %d bytes", n, len(b))
	}
	f := &flatbuf{b: b[start : start+n], budget: int(n/4) + 16}
	msg, err := f.table(int64(binary.LittleEndian.Uint32(f.b)))
	if err != nil {
		return err
	}
	if ht, err := f.scalar(msg, msgHeaderType, 1); err != nil || ht != headerSchema {
		return orErr(err, fmt.Errorf("message is not a schema"))
	}
	if body, err := f.scalar(msg, msgBodyLength, 8); err != nil || int64(body) < 0 || int64(body) > int64(len(b))-start-n {
		return orErr(err, fmt.Errorf("message body of %d bytes", int64(body)))
	}
	if err := f.keyValues(msg, msgMetadata); err != nil {
		return err
	}
	schema, err := f.tableAt(msg, msgHeader)
	if err != nil || schema == nil {
		return orErr(err, errors.New("message has no schema"))
	}
	if err := f.fields(*schema, schemaFields, 1); err != nil {
		return err
	}
	if err := f.keyValues(*schema, schemaMetadata); err != nil {
		return err
	}
	_, _, err = f.vector(*schema, schemaFeatures, 8)
	return err
}

// flatbuf reads a flatbuffer, checking every offset it follows.
type flatbuf struct {
	b      []byte
	budget int // tables left to visit
}

// fbTable is a table: where it starts, its vtable and its size.
type fbTable struct{ pos, vtable, vtableLen, size int64 }

func (f *flatbuf) uint(at, width int64) (uint64, error) {
	if at < 0 || width > int64(len(f.b))-at {
		return 0, fmt.Errorf("offset %d out of the %d-byte schema", at, len(f.b))
	}
	var v uint64
	for i := width - 1; i >= 0; i-- {
		v = v<<8 | uint64(f.b[at+i])
	}
	return v, nil
}

func (f *flatbuf) table(pos int64) (fbTable, error) {
	if f.budget--; f.budget < 0 {
		return fbTable{}, errors.New("more tables than its bytes can hold")
	}
	so, err := f.uint(pos, 4)
	if err != nil {
		return fbTable{}, err
	}
	t := fbTable{pos: pos, vtable: pos - int64(int32(so))}
	vl, err := f.uint(t.vtable, 2)
	if err != nil {
		return fbTable{}, err
	}
	size, err := f.uint(t.vtable+2, 2)
	if err != nil {
		return fbTable{}, err
	}
	t.vtableLen, t.size = int64(vl), int64(size)
	if t.vtableLen < 4 || t.vtableLen%2 != 0 || t.vtableLen > int64(len(f.b))-t.vtable || t.size < 4 || t.size > int64(len(f.b))-pos {
		return fbTable{}, fmt.Errorf("bad table at %d", pos)
	}
	return t, nil
}

// field is where slot's value sits in t, or 0 if t has none.
func (f *flatbuf) field(t fbTable, slot int64) (int64, error) {
	if 4+2*slot+2 > t.vtableLen {
		return 0, nil
	}
	off, err := f.uint(t.vtable+4+2*slot, 2)
	if err != nil || off == 0 {
		return 0, err
	}
	if int64(off) >= t.size {
		return 0, fmt.Errorf("field past its table at %d", t.pos)
	}
	return t.pos + int64(off), nil
}

func (f *flatbuf) scalar(t fbTable, slot, width int64) (uint64, error) {
	at, err := f.field(t, slot)
	if err != nil || at == 0 {
		return 0, err
	}
	return f.uint(at, width)
}

// ref is where the object slot points to sits, or 0 if t has none.
func (f *flatbuf) ref(t fbTable, slot int64) (int64, error) {
	at, err := f.field(t, slot)
	if err != nil || at == 0 {
		return 0, err
	}
	off, err := f.uint(at, 4)
	return at + int64(off), err
}

func (f *flatbuf) tableAt(t fbTable, slot int64) (*fbTable, error) {
	at, err := f.ref(t, slot)
	if err != nil || at == 0 {
		return nil, err
	}
	sub, err := f.table(at)
	return &sub, err
}

// vector checks the vector (or string) of elem-byte elements at slot and
// returns where its elements start and how many there are.
func (f *flatbuf) vector(t fbTable, slot, elem int64) (int64, int64, error) {
	at, err := f.ref(t, slot)
	if err != nil || at == 0 {
		return 0, 0, err
	}
	n, err := f.uint(at, 4)
	if err != nil {
		return 0, 0, err
	}
	if int64(n) > (int64(len(f.b))-at-4)/elem {
		return 0, 0, fmt.Errorf("vector of %d elements at %d in a %d-byte schema", n, at, len(f.b))
	}
	return at + 4, int64(n), nil
}

// tables calls fn for each table of the vector of tables at slot.
func (f *flatbuf) tables(t fbTable, slot int64, fn func(fbTable) error) error {
	start, n, err := f.vector(t, slot, 4)
	for i := range n {
		if err != nil {
			break
		}
		at := start + 4*i
		var off uint64
		if off, err = f.uint(at, 4); err == nil {
			var sub fbTable
			if sub, err = f.table(at + int64(off)); err == nil {
				err = fn(sub)
			}
		}
	}
	return err
}

func (f *flatbuf) keyValues(t fbTable, slot int64) error {
	return f.tables(t, slot, func(kv fbTable) error {
		if _, _, err := f.vector(kv, 0, 1); err != nil {
			return err
		}
		_, _, err := f.vector(kv, 1, 1)
		return err
	})
}

// fields checks the vector of Field tables at slot, at nesting depth.
func (f *flatbuf) fields(t fbTable, slot int64, depth int) error {
	if depth > maxSchemaDepth {
		return fmt.Errorf("fields nested deeper than %d", maxSchemaDepth)
	}
	return f.tables(t, slot, func(field fbTable) error {
		if _, _, err := f.vector(field, fieldName, 1); err != nil {
			return err
		}
		if err := f.fieldType(field); err != nil {
			return err
		}
		dict, err := f.tableAt(field, fieldDict)
		if err == nil && dict != nil {
			_, err = f.tableAt(*dict, dictIndexType)
		}
		if err != nil {
			return err
		}
		if err := f.fields(field, fieldChildren, depth+1); err != nil {
			return err
		}
		return f.keyValues(field, fieldMetadata)
	})
}

// fieldType checks a Field's type table and the offsets in it (only a
// timestamp's zone and a union's type ids have any).
func (f *flatbuf) fieldType(field fbTable) error {
	tt, err := f.scalar(field, fieldTypeType, 1)
	if err != nil {
		return err
	}
	typ, err := f.tableAt(field, fieldType)
	if err != nil || typ == nil {
		return err
	}
	switch tt {
	case typeTimestamp:
		_, _, err = f.vector(*typ, timestampZone, 1)
	case typeUnion:
		_, _, err = f.vector(*typ, unionTypeIDs, 4)
	}
	return err
}

// orErr is err, or else if nil.
func orErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}
