package main

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
)

// Image edits of the kinds planted copies go through. All work on 8-bit
// gray, the format of the knee radiographs.

// resize scales by f: box (area) filter, or bilinear when bilinear is set
// (as many tools do, with some aliasing).
func resize(src *image.Gray, f float64, bilinear bool) *image.Gray {
	b := src.Bounds()
	w, h := max(1, int(math.Round(float64(b.Dx())*f))), max(1, int(math.Round(float64(b.Dy())*f)))
	out := image.NewGray(image.Rect(0, 0, w, h))
	sx, sy := float64(b.Dx())/float64(w), float64(b.Dy())/float64(h)
	for y := range h {
		for x := range w {
			var v float64
			if bilinear {
				v = sample(src, (float64(x)+0.5)*sx-0.5, (float64(y)+0.5)*sy-0.5)
			} else {
				x0, x1 := int(float64(x)*sx), max(int(float64(x)*sx)+1, int(float64(x+1)*sx))
				y0, y1 := int(float64(y)*sy), max(int(float64(y)*sy)+1, int(float64(y+1)*sy))
				n := 0
				for yy := y0; yy < min(y1, b.Dy()); yy++ {
					for xx := x0; xx < min(x1, b.Dx()); xx++ {
						v += float64(src.Pix[yy*src.Stride+xx])
						n++
					}
				}
				v /= float64(n)
			}
			out.Pix[y*out.Stride+x] = clamp(v)
		}
	}
	return out
}

// sample is bilinear interpolation with edge clamping.
func sample(src *image.Gray, x, y float64) float64 {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	x, y = math.Max(0, math.Min(x, float64(w-1))), math.Max(0, math.Min(y, float64(h-1)))
	x0, y0 := int(x), int(y)
	x1, y1 := min(x0+1, w-1), min(y0+1, h-1)
	fx, fy := x-float64(x0), y-float64(y0)
	p := func(x, y int) float64 { return float64(src.Pix[y*src.Stride+x]) }
	return (p(x0, y0)*(1-fx)+p(x1, y0)*fx)*(1-fy) + (p(x0, y1)*(1-fx)+p(x1, y1)*fx)*fy
}

func clamp(v float64) uint8 { return uint8(math.Max(0, math.Min(255, math.Round(v)))) }

// crop removes the given fractions from the left, top, right and bottom.
func crop(src *image.Gray, l, t, r, b float64) *image.Gray {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	rect := image.Rect(int(l*float64(w)), int(t*float64(h)), w-int(r*float64(w)), h-int(b*float64(h)))
	out := image.NewGray(image.Rect(0, 0, rect.Dx(), rect.Dy()))
	for y := range rect.Dy() {
		copy(out.Pix[y*out.Stride:], src.Pix[(rect.Min.Y+y)*src.Stride+rect.Min.X:][:rect.Dx()])
	}
	return out
}

// levels applies brightness (added, 0..255), contrast (about mid-gray) and gamma.
func levels(src *image.Gray, brightness, contrast, gamma float64) *image.Gray {
	var lut [256]uint8
	for i := range lut {
		v := math.Pow(float64(i)/255, gamma) * 255
		lut[i] = clamp((v-128)*contrast + 128 + brightness)
	}
	out := image.NewGray(src.Rect)
	for i, v := range src.Pix {
		out.Pix[i] = lut[v]
	}
	return out
}

func noise(src *image.Gray, sigma float64, r *rand.Rand) *image.Gray {
	out := image.NewGray(src.Rect)
	for i, v := range src.Pix {
		out.Pix[i] = clamp(float64(v) + r.NormFloat64()*sigma)
	}
	return out
}

func flipH(src *image.Gray) *image.Gray {
	out := image.NewGray(src.Rect)
	w := src.Rect.Dx()
	for y := range src.Rect.Dy() {
		for x := range w {
			out.Pix[y*out.Stride+x] = src.Pix[y*src.Stride+w-1-x]
		}
	}
	return out
}

// rotate turns by deg degrees about the centre, same size, edges clamped.
func rotate(src *image.Gray, deg float64) *image.Gray {
	out := image.NewGray(src.Rect)
	w, h := float64(src.Rect.Dx()), float64(src.Rect.Dy())
	s, c := math.Sincos(deg * math.Pi / 180)
	for y := range src.Rect.Dy() {
		for x := range src.Rect.Dx() {
			dx, dy := float64(x)-w/2+0.5, float64(y)-h/2+0.5
			out.Pix[y*out.Stride+x] = clamp(sample(src, c*dx+s*dy+w/2-0.5, -s*dx+c*dy+h/2-0.5))
		}
	}
	return out
}

func encodeJPEG(img image.Image, q int) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		panic(err) // in-memory encoding of a valid image
	}
	return buf.Bytes()
}

func encodePNG(img image.Image, level png.CompressionLevel) []byte {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: level}
	if err := enc.Encode(&buf, img); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// withText inserts a tEXt chunk after IHDR: other metadata, same pixels.
func withText(data []byte, key, value string) []byte {
	const ihdrEnd = 8 + 8 + 13 + 4
	body := append([]byte(key+"\x00"), value...)
	var c bytes.Buffer
	binary.Write(&c, binary.BigEndian, uint32(len(body)))
	c.WriteString("tEXt")
	c.Write(body)
	binary.Write(&c, binary.BigEndian, crc32.ChecksumIEEE(append([]byte("tEXt"), body...)))
	out := append([]byte{}, data[:ihdrEnd]...)
	out = append(out, c.Bytes()...)
	return append(out, data[ihdrEnd:]...)
}
