package neardup

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"runtime"
	"testing"

	"github.com/kneepipe/kneepipe/internal/kneedev"
)

// BenchmarkKneeFingerprint fingerprints knee-dev PNGs, one per op:
// "decode" through image/png and an image.Image (the path before
// imagedecode.DecodeRaw), "raw" as FromBytes does now.
func BenchmarkKneeFingerprint(b *testing.B) {
	_, files := kneedev.Files(b, 200)
	for _, c := range []struct {
		name string
		fn   func([]byte, int64) (Fingerprint, error)
	}{{"decode", fromDecoded}, {"raw", FromBytes}} {
		b.Run(c.name, func(b *testing.B) {
			cpu0 := kneedev.CPUTime()
			i := 0
			for b.Loop() {
				if _, err := c.fn(files[i%len(files)], 0); err != nil {
					b.Fatal(err)
				}
				i++
			}
			kneedev.ReportCPU(b, cpu0)
		})
	}
}

// BenchmarkKneeFind groups the fingerprints of the knee-dev images.
func BenchmarkKneeFind(b *testing.B) {
	_, files := kneedev.Files(b, 1000)
	fps := make([]Fingerprint, len(files))
	for i, data := range files {
		var err error
		if fps[i], err = FromBytes(data, 0); err != nil {
			b.Fatal(err)
		}
	}
	opt := DefaultOptions()
	opt.Workers = runtime.GOMAXPROCS(0)
	cpu0 := kneedev.CPUTime()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Find(context.Background(), fps, opt); err != nil {
			b.Fatal(err)
		}
	}
	kneedev.ReportCPU(b, cpu0)
}

// BenchmarkKneeThumb is the part of a fingerprint after decoding, on the
// pixels of knee-dev PNGs (decoded once, outside the timing): "all" is
// fromGray8, the others one step of it each: the pixel hash, resample,
// equalize (from a resampled thumbnail copied in, 16 KB), the DCT with
// quantize.
func BenchmarkKneeThumb(b *testing.B) {
	_, files := kneedev.Files(b, 200)
	imgs := make([]*image.Gray, len(files))
	smalls := make([][thumbPixels]float32, len(files))
	fps := make([]Fingerprint, len(files))
	for i, data := range files {
		img, err := png.Decode(bytes.NewReader(data))
		g, ok := img.(*image.Gray)
		if err != nil || !ok {
			b.Fatalf("file %d: not an 8-bit gray PNG (%v)", i, err)
		}
		imgs[i] = g
		fps[i] = fromGray8(g.Pix, g.Stride, g.Rect.Dx(), g.Rect.Dy())
		smalls[i] = resampleRef(g.Pix, g.Stride, g.Rect.Dx(), g.Rect.Dy(), 257)
	}
	s := new(scratch)
	var fp Fingerprint
	for _, c := range []struct {
		name string
		fn   func(i int)
	}{
		{"all", func(i int) {
			g := imgs[i]
			fp = fromGray8(g.Pix, g.Stride, g.Rect.Dx(), g.Rect.Dy())
		}},
		{"hash", func(i int) {
			g := imgs[i]
			w := g.Rect.Dx()
			fp.Pixels = hashRows("gry8", w, g.Rect.Dy(), func(y int) []byte { return g.Pix[y*g.Stride : y*g.Stride+w] })
		}},
		{"resample", func(i int) {
			g := imgs[i]
			resample(g.Pix, g.Stride, g.Rect.Dx(), g.Rect.Dy(), 257, s)
		}},
		{"equalize", func(i int) {
			s.small = smalls[i]
			s.equalize(&fp.Thumb)
		}},
		{"dct", func(i int) { fp.Coeffs = quantize(s.dctVals(&fps[i].Thumb)) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			cpu0 := kneedev.CPUTime()
			i := 0
			for b.Loop() {
				c.fn(i % len(imgs))
				i++
			}
			kneedev.ReportCPU(b, cpu0)
		})
	}
}
