package imagedecode

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// layout is a PNG IHDR's bit depth and colour type, with its bytes per
// pixel (0: below one byte).
type layout struct {
	depth, colour byte
	bpp           int
}

var (
	rawLayouts   = []layout{{8, 0, 1}, {16, 0, 2}, {8, 2, 3}}
	otherLayouts = []layout{{1, 0, 0}, {4, 0, 0}, {8, 3, 1}, {8, 4, 2}, {8, 6, 4}, {16, 2, 6}, {16, 6, 8}}
)

// pngFile writes a PNG by hand, so that each row's filter type is chosen
// (image/png picks its own): the filters are applied here, independently
// of the decoder, to the raw rows; the zlib stream is split into IDAT
// chunks of at most idatSize bytes, and extra chunks go before the data.
type pngFile struct {
	w, h      int
	lay       layout
	interlace byte
	rows      [][]byte // unfiltered samples
	filters   []byte
	idatSize  int
	extra     map[string][]byte
}

func (p pngFile) bytes() []byte {
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&out, binary.BigEndian, uint32(len(data)))
		out.WriteString(typ)
		out.Write(data)
		binary.Write(&out, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, uint32(p.w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(p.h))
	ihdr[8], ihdr[9], ihdr[12] = p.lay.depth, p.lay.colour, p.interlace
	chunk("IHDR", ihdr)
	for _, typ := range []string{"PLTE", "tRNS", "tEXt"} {
		if data, ok := p.extra[typ]; ok {
			chunk(typ, data)
		}
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	prev := make([]byte, len(p.rows[0]))
	for y, row := range p.rows {
		zw.Write([]byte{p.filters[y]})
		zw.Write(filterRow(p.filters[y], row, prev, max(p.lay.bpp, 1)))
		prev = row
	}
	zw.Close()
	for data := z.Bytes(); len(data) > 0; {
		n := min(len(data), p.idatSize)
		chunk("IDAT", data[:n])
		data = data[n:]
	}
	chunk("IEND", nil)
	return out.Bytes()
}

// filterRow applies PNG filter ft to row, given the row above.
func filterRow(ft byte, row, prev []byte, bpp int) []byte {
	out := make([]byte, len(row))
	for i, x := range row {
		var a, b, c int
		if i >= bpp {
			a, c = int(row[i-bpp]), int(prev[i-bpp])
		}
		b = int(prev[i])
		var pred int
		switch ft {
		case 1:
			pred = a
		case 2:
			pred = b
		case 3:
			pred = (a + b) / 2
		case 4:
			p := a + b - c
			pa, pb, pc := abs(p-a), abs(p-b), abs(p-c)
			switch {
			case pa <= pb && pa <= pc:
				pred = a
			case pb <= pc:
				pred = b
			default:
				pred = c
			}
		}
		out[i] = x - byte(pred)
	}
	return out
}

// randomPNG is a w×h image of layout l with random samples (for 16 bits,
// every other image with values that are multiples of 257, as 8-bit
// pictures stored as 16-bit are) and random filters.
func randomPNG(r *rand.Rand, w, h int, l layout) pngFile {
	p := pngFile{w: w, h: h, lay: l, idatSize: 1 + r.IntN(300)}
	rowBytes := (w*int(l.depth)*channels(l.colour) + 7) / 8
	smooth := r.IntN(2) == 0
	for range h {
		row := make([]byte, rowBytes)
		for i := range row {
			switch {
			case l.depth == 16 && smooth && i%2 == 1:
				row[i] = row[i-1] // v*257
			case smooth && i > 0:
				row[i] = row[i-1] + byte(r.IntN(5)) - 2
			default:
				row[i] = byte(r.Uint32())
			}
		}
		p.rows = append(p.rows, row)
		p.filters = append(p.filters, byte(r.IntN(5)))
	}
	return p
}

func channels(colour byte) int {
	return map[byte]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
}

// samples is a decoded image's pixels as PNG row bytes, for the types
// image/png returns for the raw layouts.
func samples(t *testing.T, img image.Image) [][]byte {
	t.Helper()
	var rows [][]byte
	h := img.Bounds().Dy()
	for y := range h {
		switch m := img.(type) {
		case *image.Gray:
			rows = append(rows, m.Pix[y*m.Stride:][:m.Rect.Dx()])
		case *image.Gray16:
			rows = append(rows, m.Pix[y*m.Stride:][:2*m.Rect.Dx()])
		case *image.RGBA:
			var row []byte
			for x := range m.Rect.Dx() {
				px := m.Pix[y*m.Stride+4*x:][:4]
				if px[3] != 0xff {
					t.Fatalf("image/png gave alpha %d for an RGB file", px[3])
				}
				row = append(row, px[:3]...)
			}
			rows = append(rows, row)
		default:
			t.Fatalf("image/png returned %T", img)
		}
	}
	return rows
}

// DecodeRaw gives the same samples as image/png (and as were encoded) for
// every filter type, odd widths, 1-pixel images and IDATs split anywhere.
func TestDecodeRawMatchesImagePNG(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	sizes := [][2]int{{1, 1}, {1, 7}, {7, 1}, {3, 5}, {17, 9}, {64, 33}, {101, 64}, {224, 3}}
	for _, l := range rawLayouts {
		for _, sz := range sizes {
			for rep := range 4 {
				p := randomPNG(r, sz[0], sz[1], l)
				if rep == 0 {
					p.extra = map[string][]byte{"tEXt": []byte("Comment\x00made by the test")}
				}
				name := fmt.Sprintf("depth%d-colour%d-%dx%d-%d", l.depth, l.colour, sz[0], sz[1], rep)
				data := p.bytes()
				img, err := png.Decode(bytes.NewReader(data))
				if err != nil {
					t.Fatalf("%s: image/png: %v", name, err)
				}
				want := samples(t, img)
				for y := range want {
					if !bytes.Equal(want[y], p.rows[y]) {
						t.Fatalf("%s: image/png row %d differs from the encoded one: the test's filters are wrong", name, y)
					}
				}
				var got Raw
				ok := DecodeRaw(data, 0, func(raw *Raw) {
					got = *raw
					got.Pix = bytes.Clone(raw.Pix)
				})
				if !ok {
					t.Fatalf("%s: DecodeRaw declined", name)
				}
				if got.Width != sz[0] || got.Height != sz[1] {
					t.Fatalf("%s: DecodeRaw says %dx%d", name, got.Width, got.Height)
				}
				for y := range want {
					if !bytes.Equal(got.Row(y), want[y]) {
						t.Fatalf("%s: row %d: DecodeRaw %x, image/png %x (filter %d)", name, y, got.Row(y), want[y], p.filters[y])
					}
				}
			}
		}
	}
}

// Layouts, chunks and damage DecodeRaw leaves to Decode; damage it must
// refuse as image/png does.
func TestDecodeRawDeclines(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	declined := func(name string, data []byte) {
		t.Helper()
		if DecodeRaw(data, 0, func(*Raw) { t.Errorf("%s: fn called", name) }) {
			t.Errorf("%s: DecodeRaw decoded it", name)
		}
	}
	for _, l := range otherLayouts {
		p := randomPNG(r, 13, 5, l)
		if l.colour == 3 {
			p.extra = map[string][]byte{"PLTE": bytes.Repeat([]byte{1, 2, 3}, 256)}
		}
		declined(fmt.Sprintf("depth %d colour %d", l.depth, l.colour), p.bytes())
	}
	base := randomPNG(r, 20, 6, rawLayouts[0])
	p := base
	p.interlace = 1
	declined("interlaced", p.bytes())
	p = base
	p.extra = map[string][]byte{"tRNS": {0, 7}}
	declined("tRNS", p.bytes())
	p = base
	p.filters = append([]byte{5}, base.filters[1:]...)
	declined("filter type 5", p.bytes())
	declined("empty", nil)
	if DecodeRaw(base.bytes(), 20*6-1, func(*Raw) {}) {
		t.Error("an image over maxPixels decoded")
	}

	good := base.bytes()
	for i := 8; i < len(good); i += 3 {
		declined(fmt.Sprintf("truncated at %d", i), good[:i])
		bad := bytes.Clone(good)
		bad[i] ^= 0x40
		if _, err := png.Decode(bytes.NewReader(bad)); err != nil {
			declined(fmt.Sprintf("byte %d flipped", i), bad)
		}
	}
}

// FuzzDecodeRaw: never a panic, and whatever DecodeRaw decodes, image/png
// decodes to the same samples. Seeds: each layout and filter, damaged.
func FuzzDecodeRaw(f *testing.F) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, l := range append(rawLayouts, otherLayouts...) {
		data := randomPNG(r, 9, 4, l).bytes()
		f.Add(data)
		f.Add(data[:len(data)-20])
	}
	f.Add(hugePNG(20000, 20000))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRawAgainstPNG(t, data)
		// Most mutations break a CRC, which DecodeRaw checks first: again
		// with the CRCs made right, to reach inflate and the filters.
		checkRawAgainstPNG(t, withCRCs(data))
	})
}

// withCRCs is data with each whole chunk's CRC recomputed.
func withCRCs(data []byte) []byte {
	data = bytes.Clone(data)
	for i := 8; i+12 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[i:]) & 0x7fffffff)
		if n > len(data)-i-12 {
			break
		}
		binary.BigEndian.PutUint32(data[i+8+n:], crc32.ChecksumIEEE(data[i+4:i+8+n]))
		i += 12 + n
	}
	return data
}

// checkRawAgainstPNG: whatever DecodeRaw decodes, image/png decodes to
// the same samples.
func checkRawAgainstPNG(t *testing.T, data []byte) {
	t.Helper()
	var got [][]byte
	ok := DecodeRaw(data, 1<<16, func(raw *Raw) {
		for y := range raw.Height {
			got = append(got, bytes.Clone(raw.Row(y)))
		}
	})
	if !ok {
		return
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("DecodeRaw decoded what image/png refuses: %v", err)
	}
	want := samples(t, img)
	if len(got) != len(want) {
		t.Fatalf("DecodeRaw gave %d rows, image/png %d", len(got), len(want))
	}
	for y := range want {
		if !bytes.Equal(got[y], want[y]) {
			t.Fatalf("row %d differs", y)
		}
	}
}

// chunkedPNG is a PNG of the given IHDR fields and chunks (type, data),
// with valid CRCs.
func chunkedPNG(w, h uint32, depth, colour byte, chunks ...any) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = depth, colour
	chunk("IHDR", ihdr)
	for i := 0; i < len(chunks); i += 2 {
		chunk(chunks[i].(string), chunks[i+1].([]byte))
	}
	chunk("IEND", nil)
	return b.Bytes()
}

// A header within a huge maxPixels whose rows overflow an int (RGB) or
// exceed the largest slice (gray) is declined, not a panic in make or in
// slicing by a negative size.
func TestDecodeRawHugeRows(t *testing.T) {
	zdata := []byte{0x78, 0x9c, 0x63, 0x60, 0x64, 0x62, 0x66, 0x01, 0x00, 0x00, 0x19, 0x00, 0x0b}
	for _, l := range rawLayouts {
		data := chunkedPNG(math.MaxInt32, math.MaxInt32, l.depth, l.colour, "IDAT", zdata)
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("depth %d colour %d: panic: %v", l.depth, l.colour, p)
				}
			}()
			if DecodeRaw(data, math.MaxInt64, func(*Raw) {}) {
				t.Errorf("depth %d colour %d: decoded", l.depth, l.colour)
			}
		}()
	}
}

// Many small IDAT chunks cost DecodeRaw memory for their data, not for
// each chunk: a file of 12-byte empty chunks is no multiplier of its size.
func TestDecodeRawManyIDATs(t *testing.T) {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(bytes.Repeat([]byte{0, 1, 2, 3, 4}, 4)) // 4×4 gray, filter 0
	zw.Close()
	var chunks []any
	for _, b := range z.Bytes() {
		chunks = append(chunks, "IDAT", []byte{b})
	}
	for range 200_000 {
		chunks = append(chunks, "IDAT", []byte{})
	}
	data := chunkedPNG(4, 4, 8, 0, chunks...)
	decode := func() {
		if !DecodeRaw(data, 0, func(*Raw) {}) {
			t.Fatal("declined")
		}
	}
	decode()
	if n := allocated(3, decode); n > uint64(len(data))/8 {
		t.Errorf("DecodeRaw of %d bytes in %d IDAT chunks allocated %d bytes", len(data), len(chunks)/2, n)
	}
}

// Decoders from the pool, used by many goroutines at once, give each
// caller its own image's samples (run with -race).
func TestDecodeRawConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	var files []pngFile
	for i := range 8 {
		files = append(files, randomPNG(r, 30+7*i, 20+3*i, rawLayouts[i%3]))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				p := files[(g+i)%len(files)]
				ok := DecodeRaw(p.bytes(), 0, func(raw *Raw) {
					for y := range raw.Height {
						if !bytes.Equal(raw.Row(y), p.rows[y]) {
							t.Errorf("goroutine %d: row %d differs", g, y)
							return
						}
					}
				})
				if !ok {
					t.Errorf("goroutine %d: declined", g)
				}
			}
		})
	}
	wg.Wait()
}

// A zlib checksum that does not match the rows (the chunk's CRC made
// right) is refused, as image/png refuses it, whether the rows' checksum
// is taken while unfiltering Sub rows or apart; rows wider than 2048
// bytes take several of the checksum's chunks.
func TestDecodeRawChecksum(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, l := range rawLayouts {
		for _, w := range []int{1, 9, 224, 5000} {
			for _, allSub := range []bool{true, false} {
				p := randomPNG(r, w, 4, l)
				p.idatSize = 1 << 30 // one IDAT
				if allSub {
					for y := range p.filters {
						p.filters[y] = 1
					}
				}
				name := fmt.Sprintf("depth %d colour %d width %d all Sub %v", l.depth, l.colour, w, allSub)
				good := p.bytes()
				if !DecodeRaw(good, 0, func(*Raw) {}) {
					t.Fatalf("%s: DecodeRaw declined the good file", name)
				}
				bad := bytes.Clone(good)
				i := bytes.Index(bad, []byte("IDAT")) - 4
				n := int(binary.BigEndian.Uint32(bad[i:]))
				bad[i+8+n-1] ^= 0x01 // the Adler-32's last byte
				binary.BigEndian.PutUint32(bad[i+8+n:], crc32.ChecksumIEEE(bad[i+4:i+8+n]))
				if _, err := png.Decode(bytes.NewReader(bad)); err == nil {
					t.Fatalf("%s: image/png decoded a wrong checksum: the test is wrong", name)
				}
				if DecodeRaw(bad, 0, func(*Raw) { t.Errorf("%s: fn called", name) }) {
					t.Errorf("%s: DecodeRaw decoded a wrong checksum", name)
				}
			}
		}
	}
}
