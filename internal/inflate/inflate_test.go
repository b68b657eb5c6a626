package inflate

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/kneepipe/kneepipe/internal/kneedev"
)

// deflate compresses data with compress/flate at level.
func deflate(t testing.TB, data []byte, level int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// reference inflates src with compress/flate: the output, the bytes of src
// the stream took, and its error.
func reference(src []byte) ([]byte, int, error) {
	r := bytes.NewReader(src)
	out, err := io.ReadAll(flate.NewReader(r))
	return out, len(src) - r.Len(), err
}

// check inflates src into a buffer of the reference's size (and, for a
// valid stream, one byte larger and smaller) and compares with
// compress/flate: the same bytes and input used, or both an error.
func check(t testing.TB, name string, src []byte) {
	t.Helper()
	want, wantUsed, wantErr := reference(src)
	var d Decoder
	dst := make([]byte, len(want)+1)
	n, used, err := d.Inflate(dst, src)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%s: error %v, compress/flate's %v", name, err, wantErr)
	}
	if wantErr != nil {
		return
	}
	if n != len(want) || used != wantUsed || !bytes.Equal(dst[:n], want) {
		t.Fatalf("%s: %d bytes from %d of input, compress/flate %d from %d; equal prefix %d", name, n, used, len(want), wantUsed, commonPrefix(dst[:n], want))
	}
	dst = make([]byte, len(want))
	if n, _, err := d.Inflate(dst, src); err != nil || n != len(want) || !bytes.Equal(dst, want) {
		t.Fatalf("%s: into an exact buffer: %d bytes, %v", name, n, err)
	}
	if len(want) > 0 {
		if _, _, err := d.Inflate(dst[:len(want)-1], src); !errors.Is(err, ErrTooLong) {
			t.Fatalf("%s: into a buffer one byte short: %v, want ErrTooLong", name, err)
		}
	}
}

func commonPrefix(a, b []byte) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// testInputs are data of the kinds compressors treat differently.
func testInputs(r *rand.Rand) map[string][]byte {
	in := map[string][]byte{
		"empty": nil,
		"one":   {42},
		"zeros": make([]byte, 100000),
	}
	random := make([]byte, 200000)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	in["random"] = random
	in["random-small"] = random[:1000]
	var text bytes.Buffer
	words := []string{"knee", "radiograph", "the", "of", "pipeline", "stage", "arrow", "parquet", "a", "and"}
	for text.Len() < 150000 {
		text.WriteString(words[r.IntN(len(words))])
		text.WriteByte(" \n,."[r.IntN(4)])
	}
	in["text"] = text.Bytes()
	// Image-like: smooth rows with noise, as a PNG's filtered samples.
	img := make([]byte, 225*224)
	for i := range img {
		if i%225 == 0 {
			continue
		}
		img[i] = byte(r.NormFloat64()*6) + img[i-1]/8
	}
	in["image"] = img
	// Runs of small periods: distance-1 to -7 overlaps.
	var runs []byte
	for len(runs) < 100000 {
		period := 1 + r.IntN(9)
		pat := make([]byte, period)
		for i := range pat {
			pat[i] = byte(r.Uint32())
		}
		for range 3 + r.IntN(400) {
			runs = append(runs, pat...)
		}
	}
	in["runs"] = runs
	// A 32 KB random block repeated: matches at the maximum distance.
	far := append(bytes.Clone(random[:32768]), random[:32768]...)
	in["far"] = append(far, random[:20000]...)
	return in
}

// TestInflateMatchesFlate: every level, HuffmanOnly, every input kind.
func TestInflateMatchesFlate(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for name, data := range testInputs(r) {
		for level := flate.HuffmanOnly; level <= flate.BestCompression; level++ {
			check(t, fmt.Sprintf("%s-level%d", name, level), deflate(t, data, level))
		}
	}
}

// TestInflateMatchesInputs: decoding gives back what was compressed (not
// only what compress/flate says), for lengths around the stored block
// size and word-copy margins.
func TestInflateMatchesInputs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var d Decoder
	for _, n := range []int{0, 1, 2, 7, 8, 9, 15, 16, 17, 257, 258, 259, 266, 267, 268, 269, 270, 65534, 65535, 65536, 65537, 131070, 131071} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(r.IntN(3))
		}
		for _, level := range []int{flate.NoCompression, flate.HuffmanOnly, flate.BestSpeed, flate.DefaultCompression} {
			src := deflate(t, data, level)
			dst := make([]byte, n)
			if m, used, err := d.Inflate(dst, src); err != nil || m != n || used != len(src) || !bytes.Equal(dst, data) {
				t.Fatalf("%d bytes at level %d: %d bytes, %d of %d input, %v", n, level, m, used, len(src), err)
			}
		}
	}
}

// TestAdler32 against hash/adler32 at every length around the chunk and
// word sizes, for all-0xff bytes (the largest sums) and random ones.
func TestAdler32(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	buf := make([]byte, 3*2048+20)
	for _, fill := range []string{"ff", "random"} {
		for i := range buf {
			buf[i] = 0xff
			if fill == "random" {
				buf[i] = byte(r.Uint32())
			}
		}
		for n := range len(buf) {
			want := adler32.Checksum(buf[:n])
			if got := Adler32(buf[:n]); got != want {
				t.Fatalf("%s, %d bytes: %08x, want %08x", fill, n, got, want)
			}
			if k := r.IntN(n + 1); AdlerUpdate(Adler32(buf[:k]), buf[k:n]) != want {
				t.Fatalf("%s, %d bytes split at %d: AdlerUpdate %08x, want %08x", fill, n, k, AdlerUpdate(Adler32(buf[:k]), buf[k:n]), want)
			}
		}
	}
	big := bytes.Repeat([]byte{0xff}, 1<<20)
	if got, want := Adler32(big), adler32.Checksum(big); got != want {
		t.Fatalf("1 MiB of 0xff: %08x, want %08x", got, want)
	}
}

// zlibStream compresses data with compress/zlib.
func zlibStream(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(data)
	w.Close()
	return buf.Bytes()
}

// TestZlib: a valid stream decodes; each kind of damage has its error.
func TestZlib(t *testing.T) {
	data := bytes.Repeat([]byte("knee radiograph "), 1000)
	src := zlibStream(t, data)
	var d Decoder
	dst := make([]byte, len(data))
	if err := d.Zlib(dst, src); err != nil || !bytes.Equal(dst, data) {
		t.Fatalf("valid stream: %v", err)
	}
	flip := func(i int, mask byte) []byte {
		b := bytes.Clone(src)
		b[i] ^= mask
		return b
	}
	dict := []byte{0x78, 0xbb}
	cases := []struct {
		name string
		src  []byte
		dst  []byte
		want error
	}{
		{"empty", nil, dst, ErrTruncated},
		{"method", flip(0, 0x01), dst, ErrHeader},
		{"header check", flip(1, 0x01), dst, ErrHeader},
		{"dictionary", append(dict, src[2:]...), dst, ErrDict},
		{"checksum", flip(len(src)-1, 0x10), dst, ErrChecksum},
		{"no checksum", src[:len(src)-4], dst, ErrTruncated},
		{"trailing", append(bytes.Clone(src), 0), dst, ErrTrailing},
		{"short output", src, make([]byte, len(data)+1), ErrShort},
		{"long output", src, make([]byte, len(data)-1), ErrTooLong},
	}
	for _, c := range cases {
		if err := d.Zlib(c.dst, c.src); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// TestDamagedStreams: every truncation and many corruptions of real
// streams are errors or agree with compress/flate, never a panic.
func TestDamagedStreams(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	inputs := testInputs(r)
	for _, name := range []string{"text", "image", "runs", "random-small"} {
		for _, level := range []int{flate.NoCompression, flate.HuffmanOnly, flate.BestSpeed, flate.BestCompression} {
			src := deflate(t, inputs[name][:min(len(inputs[name]), 5000)], level)
			for n := range len(src) {
				var d Decoder
				dst := make([]byte, 6000)
				if _, _, err := d.Inflate(dst, src[:n]); err == nil {
					t.Fatalf("%s level %d cut to %d of %d bytes: no error", name, level, n, len(src))
				}
			}
			for range 300 {
				b := bytes.Clone(src)
				for range 1 + r.IntN(3) {
					b[r.IntN(len(b))] ^= byte(1 << r.IntN(8))
				}
				check(t, fmt.Sprintf("%s level %d corrupted", name, level), b)
			}
		}
	}
}

// TestKneeIDATs: the IDAT streams of the real knee PNGs (when
// ../shared/knee-dev exists) decode as compress/zlib decodes them.
func TestKneeIDATs(t *testing.T) {
	paths, files := kneedev.Files(t, 0)
	var d Decoder
	for i, p := range paths {
		data := files[i]
		idat := idatStream(data)
		zr, err := zlib.NewReader(bytes.NewReader(idat))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		want, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: compress/zlib: %v", p, err)
		}
		got := make([]byte, len(want))
		if err := d.Zlib(got, idat); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %v (equal prefix %d of %d)", p, err, commonPrefix(got, want), len(want))
		}
	}
}

// idatStream is a PNG's IDAT chunks' data joined (no CRC checks: the test
// files are known good).
func idatStream(png []byte) []byte {
	var out []byte
	for i := 8; i+12 <= len(png); {
		n := int(png[i])<<24 | int(png[i+1])<<16 | int(png[i+2])<<8 | int(png[i+3])
		if string(png[i+4:i+8]) == "IDAT" {
			out = append(out, png[i+8:i+8+n]...)
		}
		i += 12 + n
	}
	return out
}

// TestNoAllocations: a Decoder inflates without allocating.
func TestNoAllocations(t *testing.T) {
	data := bytes.Repeat([]byte("knee radiograph "), 5000)
	src := zlibStream(t, data)
	var d Decoder
	dst := make([]byte, len(data))
	if n := testing.AllocsPerRun(10, func() {
		if err := d.Zlib(dst, src); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations a stream", n)
	}
}

// TestLiteralRunsNearTheEnds: literal-heavy streams (image-like samples,
// mostly literal pairs) cut short at each of their last bytes, and
// decoded into buffers short by each of up to 300 bytes, agree with
// compress/flate: the fast loops (literals, block) hand over to blockTail
// at every distance from the input's and the output's end.
func TestLiteralRunsNearTheEnds(t *testing.T) {
	img := testInputs(rand.New(rand.NewPCG(7, 8)))["image"]
	var d Decoder
	for _, level := range []int{flate.HuffmanOnly, flate.BestSpeed, flate.DefaultCompression} {
		src := deflate(t, img, level)
		for k := 1; k <= 40; k++ {
			check(t, fmt.Sprintf("level %d, %d bytes short", level, k), src[:len(src)-k])
		}
		for k := 1; k <= 300; k++ {
			dst := make([]byte, len(img)-k)
			if _, _, err := d.Inflate(dst, src); err != ErrTooLong {
				t.Fatalf("level %d, output %d bytes short: %v, want ErrTooLong", level, k, err)
			}
		}
	}
}
