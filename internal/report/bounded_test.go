package report

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/jpeg"
	"runtime"
	"strings"
	"testing"
)

// pngBomb is a 69-byte PNG whose header declares 20000×20000 gray pixels
// (issue 9 item 6): decoding it allocates 400 MB before finding the data
// short.
func pngBomb() []byte {
	chunk := func(typ string, data []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
		b = append(append(b, typ...), data...)
		return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 20000), 20000)
	ihdr = append(ihdr, 8, 0, 0, 0, 0)
	idat := []byte{0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01} // zlib of one 0 byte
	b := append([]byte("\x89PNG\r\n\x1a\n"), chunk("IHDR", ihdr)...)
	b = append(b, chunk("IDAT", idat)...)
	return append(b, chunk("IEND", nil)...)
}

// jpegBomb is a small JPEG whose frame header is patched to 20000×20000.
func jpegBomb(t *testing.T) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()
	i := bytes.Index(data, []byte{0xff, 0xc0}) // SOF0: length, precision, height, width
	if i < 0 {
		t.Fatal("no SOF0 marker")
	}
	binary.BigEndian.PutUint16(data[i+5:], 20000)
	binary.BigEndian.PutUint16(data[i+7:], 20000)
	return data
}

// Issue 9 item 6: an image whose header declares more than MaxPixels is
// not decoded (a problem line says so), and building the report does not
// allocate its pixels; PNG and JPEG alike.
func TestDecodeBounded(t *testing.T) {
	for name, raw := range map[string][]byte{"png": pngBomb(), "jpeg": jpegBomb(t)} {
		t.Run(name, func(t *testing.T) {
			g := func(v int64) *int64 { return &v }
			in := Input{
				Raters:        []string{"A", "B"},
				Rows:          []Row{row("A", "bomb", 0, 20000, 20000), row("B", "bomb", 1, 20000, 20000)},
				Disagreements: []Disagreement{{Item: "bomb", Grades: []*int64{g(0), g(1)}}},
			}
			fetch := func(context.Context, Object) ([]byte, error) { return raw, nil }
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			r := build(t, in, Options{Fetch: fetch, Concurrency: 1})
			runtime.ReadMemStats(&after)
			if len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "not decoded: 20000×20000 is 400000000 pixels, more than 50000000") {
				t.Errorf("problems %q, want the image refused", r.Problems)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
				t.Errorf("building the report allocated %d MB", got>>20)
			}
		})
	}
}
