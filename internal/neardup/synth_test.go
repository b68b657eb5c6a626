package neardup

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"testing"
)

// field is a synthetic radiograph-like image: a bright vertical "bone"
// band and random smooth blobs on a gradient, plus fine texture, all
// from seed. Distinct seeds share the overall layout, as knees do.
func field(seed uint64, w, h int) *image.Gray {
	r := rand.New(rand.NewPCG(seed, 7))
	type blob struct{ x, y, s, a float64 }
	var blobs []blob
	for range 25 {
		blobs = append(blobs, blob{r.Float64(), r.Float64(), 0.03 + 0.12*r.Float64(), r.NormFloat64() * 40})
	}
	tex := make([]float64, (w/4+2)*(h/4+2))
	for i := range tex {
		tex[i] = r.NormFloat64() * 12
	}
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			u, v := (float64(x)+0.5)/float64(w), (float64(y)+0.5)/float64(h)
			val := 60 + 40*v + 90*math.Exp(-math.Pow((u-0.5)/0.15, 2))
			for _, b := range blobs {
				val += b.a * math.Exp(-((u-b.x)*(u-b.x)+(v-b.y)*(v-b.y))/(2*b.s*b.s))
			}
			val += tex[(y/4)*(w/4+2)+x/4]
			img.Pix[y*img.Stride+x] = uint8(max(0, min(255, val)))
		}
	}
	return img
}

func pngBytes(t testing.TB, img image.Image, level png.CompressionLevel) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: level}).Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func jpegBytes(t testing.TB, img image.Image, q int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func fingerprint(t testing.TB, data []byte) Fingerprint {
	t.Helper()
	fp, err := FromBytes(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// edits of the kinds near-duplicates go through.
func boxResize(src *image.Gray, w, h int) *image.Gray {
	out := image.NewGray(image.Rect(0, 0, w, h))
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	for y := range h {
		for x := range w {
			var s, n int
			for yy := y * sh / h; yy < max((y+1)*sh/h, y*sh/h+1); yy++ {
				for xx := x * sw / w; xx < max((x+1)*sw/w, x*sw/w+1); xx++ {
					s += int(src.Pix[yy*src.Stride+xx])
					n++
				}
			}
			out.Pix[y*out.Stride+x] = uint8((s + n/2) / n)
		}
	}
	return out
}

func cropGray(src *image.Gray, r image.Rectangle) *image.Gray {
	out := image.NewGray(image.Rect(0, 0, r.Dx(), r.Dy()))
	for y := range r.Dy() {
		copy(out.Pix[y*out.Stride:], src.Pix[(r.Min.Y+y)*src.Stride+r.Min.X:][:r.Dx()])
	}
	return out
}

func gammaNoise(src *image.Gray, gamma, sigma float64, seed uint64) *image.Gray {
	r := rand.New(rand.NewPCG(seed, 1))
	out := image.NewGray(src.Rect)
	for i, v := range src.Pix {
		x := 255*math.Pow(float64(v)/255, gamma) + r.NormFloat64()*sigma
		out.Pix[i] = uint8(max(0, min(255, math.Round(x))))
	}
	return out
}
