package imagedecode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"runtime"
	"strings"
	"testing"
)

// hugePNG is a 70-byte PNG whose IHDR declares w×h 8-bit gray pixels,
// with one tiny IDAT chunk: Go's png.Decode allocates w×h bytes for it.
func hugePNG(w, h uint32) []byte {
	return chunkedPNG(w, h, 8, 0, "IDAT", []byte{0x78, 0x9c, 0x63, 0x60, 0x64, 0x62, 0x66, 0x01, 0x00, 0x00, 0x19, 0x00, 0x0b}) // zlib of 0..4
}

// allocated is the bytes fn allocates, measured over runs.
func allocated(runs int, fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		fn()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

func TestHugeHeaderRejectedWithoutAllocating(t *testing.T) {
	data := hugePNG(20000, 20000)
	if len(data) != 70 {
		t.Fatalf("test PNG is %d bytes, want 70", len(data))
	}
	// Go's decoder, for comparison, allocates the declared pixels.
	if n := allocated(1, func() { png.Decode(bytes.NewReader(data)) }); n < 100<<20 {
		t.Fatalf("png.Decode allocated only %d bytes: the test image no longer provokes it", n)
	}
	_, _, err := Decode(data, 0)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "declares 20000x20000 pixels, more than the cap of 67108864") {
		t.Fatalf("Decode: %v", err)
	}
	if n := allocated(10, func() { Decode(data, 0) }); n > 4096 {
		t.Errorf("Decode allocated %d bytes for a rejected header", n)
	}
	if a := testing.AllocsPerRun(10, func() { Decode(data, 0) }); a > 8 {
		t.Errorf("Decode made %v allocations for a rejected header", a)
	}
}

func TestHugeJPEGRejected(t *testing.T) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	i := bytes.Index(data, []byte{0xff, 0xc0})
	binary.BigEndian.PutUint16(data[i+5:], 30000) // height
	binary.BigEndian.PutUint16(data[i+7:], 20000) // width
	_, h, err := Decode(data, 1<<20)
	if !errors.Is(err, ErrTooLarge) || h.Width != 20000 || h.Height != 30000 {
		t.Fatalf("Decode: %v (%+v)", err, h)
	}
	if n := allocated(10, func() { Decode(data, 1<<20) }); n > 4096 {
		t.Errorf("Decode allocated %d bytes for a rejected header", n)
	}
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDecodeGray: each PNG flavour and JPEGs decode to the luma expected.
func TestDecodeGray(t *testing.T) {
	const w, h = 5, 3
	g8 := image.NewGray(image.Rect(0, 0, w, h))
	g16 := image.NewGray16(g8.Rect)
	rgb := image.NewRGBA(g8.Rect)
	pal := image.NewPaletted(g8.Rect, color.Palette{color.Gray{0}, color.Gray{200}, color.RGBA{255, 0, 0, 255}})
	for y := range h {
		for x := range w {
			v := uint8(x*50 + y)
			g8.SetGray(x, y, color.Gray{v})
			g16.SetGray16(x, y, color.Gray16{uint16(v) * 257})
			rgb.SetRGBA(x, y, color.RGBA{v, v, v, 255})
			pal.SetColorIndex(x, y, uint8((x+y)%2))
		}
	}
	for _, tc := range []struct {
		name  string
		img   image.Image
		color bool
	}{{"gray8", g8, false}, {"gray16", g16, false}, {"rgb", rgb, false}, {"paletted", pal, false}} {
		img, hd, err := Decode(encodePNG(t, tc.img), 0)
		if err != nil || hd != (Header{"png", w, h}) {
			t.Fatalf("%s: %v %+v", tc.name, err, hd)
		}
		g := ToGray(img)
		for y := range h {
			for x := range w {
				want, _ := luma(tc.img.At(x, y))
				if got := g.Pix[y*w+x]; got != want {
					t.Fatalf("%s (%d,%d): %d, want %d", tc.name, x, y, got, want)
				}
			}
		}
		if g.Color != tc.color {
			t.Errorf("%s: Color %v", tc.name, g.Color)
		}
	}
	pal.SetColorIndex(0, 0, 2)
	rgb.SetRGBA(1, 1, color.RGBA{10, 20, 30, 255})
	for _, img := range []image.Image{pal, rgb} {
		got, _, err := Decode(encodePNG(t, img), 0)
		if err != nil || !ToGray(got).Color {
			t.Errorf("%T with a coloured pixel: %v, Color false", img, err)
		}
	}

	var buf bytes.Buffer
	jpeg.Encode(&buf, rgb, &jpeg.Options{Quality: 90})
	if img, hd, err := Decode(buf.Bytes(), 0); err != nil || hd != (Header{"jpeg", w, h}) || ToGray(img).Width != w {
		t.Errorf("baseline JPEG: %v %+v", err, hd)
	}
	prog, err := os.ReadFile("testdata/progressive.jpg") // cjpeg -progressive, 24x16 gradient
	if err != nil {
		t.Fatal(err)
	}
	img, hd, err := Decode(prog, 0)
	if err != nil || hd != (Header{"jpeg", 24, 16}) {
		t.Fatalf("progressive JPEG: %v %+v", err, hd)
	}
	if g := ToGray(img); g.Pix[23] <= g.Pix[0] {
		t.Errorf("progressive JPEG: no gradient, first row %v", g.Pix[:24])
	}
}

func TestBadHeaders(t *testing.T) {
	good := encodePNG(t, image.NewGray(image.Rect(0, 0, 2, 2)))
	for name, data := range map[string][]byte{
		"empty":        nil,
		"text":         []byte("hello"),
		"png cut":      good[:20],
		"png zero":     hugePNG(0, 5),
		"jpeg no SOF":  {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0x00, 0x00, 0xff, 0xda, 0, 2},
		"jpeg cut":     {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10},
		"jpeg garbage": {0xff, 0xd8, 0x12, 0x34},
	} {
		if _, _, err := Decode(data, 0); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", name, err)
		}
	}
	// A valid header over damaged data is a decode error, not a panic.
	if _, _, err := Decode(append(good[:40:40], make([]byte, 30)...), 0); err == nil {
		t.Error("damaged PNG decoded")
	}
}

func TestReadAllBounded(t *testing.T) {
	if _, err := ReadAll(strings.NewReader("12345"), 4); !errors.Is(err, ErrTooLarge) {
		t.Errorf("5 bytes, cap 4: %v", err)
	}
	if b, err := ReadAll(strings.NewReader("1234"), 4); err != nil || string(b) != "1234" {
		t.Errorf("4 bytes, cap 4: %q %v", b, err)
	}
}

// FuzzDecode: no input panics, and nothing over the cap is decoded.
func FuzzDecode(f *testing.F) {
	f.Add(hugePNG(20000, 20000))
	f.Add(hugePNG(3, 2))
	prog, _ := os.ReadFile("testdata/progressive.jpg")
	f.Add(prog)
	f.Add([]byte("GIF89a\x10\x00\x10\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		img, h, err := Decode(data, 1<<16)
		if err == nil {
			if h.Pixels() > 1<<16 || img.Bounds().Dx() != h.Width {
				t.Fatalf("decoded %+v over the cap or unlike its header", h)
			}
			ToGray(img)
		}
	})
}
