package export

import (
	"fmt"
	"strings"
	"unicode/utf16"
)

// pyObject is an ordered JSON object, rendered the way Python's
// json.dumps renders a dict by default (", " and ": " separators,
// ensure_ascii): the exact text `datasets` stores in a Parquet file's
// "huggingface" metadata.
type pyObject []pyItem

type pyItem struct {
	key   string
	value any // string, []string, pyObject
}

func (o pyObject) String() string {
	var b strings.Builder
	writePy(&b, o)
	return b.String()
}

func writePy(b *strings.Builder, v any) {
	switch v := v.(type) {
	case string:
		writePyString(b, v)
	case []string:
		b.WriteByte('[')
		for i, s := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			writePyString(b, s)
		}
		b.WriteByte(']')
	case pyObject:
		b.WriteByte('{')
		for i, it := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			writePyString(b, it.key)
			b.WriteString(": ")
			writePy(b, it.value)
		}
		b.WriteByte('}')
	default:
		panic(fmt.Sprintf("pyjson: unsupported %T", v))
	}
}

// writePyString escapes as json.dumps with ensure_ascii=True: the short
// escapes for " \ \n \r \t \b \f, printable ASCII as it is, \uXXXX
// (surrogate pairs above U+FFFF) for everything else, DEL included.
func writePyString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(b, `\u%04x`, r)
		}
	}
	b.WriteByte('"')
}
