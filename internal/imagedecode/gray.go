package imagedecode

import (
	"image"
	"image/color"
)

// Gray is an image as 16-bit luma, row-major: 8-bit sources are scaled
// by 257 so 8- and 16-bit images of the same picture agree.
type Gray struct {
	Width, Height int
	Pix           []uint16
	// Color is true when some pixel is not an opaque gray (R=G=B, A=max):
	// the luma then loses information the source holds.
	Color bool
}

// ToGray converts a decoded image to luma (ITU-R 601 weights, as
// color.Gray16Model), with fast paths for the types Go's PNG and JPEG
// decoders return for radiographs.
func ToGray(img image.Image) *Gray {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	g := &Gray{Width: w, Height: h, Pix: make([]uint16, w*h)}
	switch m := img.(type) {
	case *image.Gray:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			out := g.Pix[y*w : (y+1)*w]
			for x, v := range row {
				out[x] = uint16(v) * 257
			}
		}
	case *image.Gray16:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+2*w]
			out := g.Pix[y*w : (y+1)*w]
			for x := range out {
				out[x] = uint16(row[2*x])<<8 | uint16(row[2*x+1])
			}
		}
	case *image.YCbCr:
		for y := range h {
			row := m.Y[y*m.YStride : y*m.YStride+w]
			out := g.Pix[y*w : (y+1)*w]
			for x, v := range row {
				out[x] = uint16(v) * 257
			}
		}
		g.Color = !neutralChroma(m.Cb) || !neutralChroma(m.Cr)
	case *image.Paletted:
		lut := make([]uint16, 256)
		colored := make([]bool, 256)
		for i, c := range m.Palette {
			lut[i], colored[i] = luma(c)
		}
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			out := g.Pix[y*w : (y+1)*w]
			for x, v := range row {
				out[x] = lut[v]
				g.Color = g.Color || colored[v]
			}
		}
	default:
		for y := range h {
			for x := range w {
				v, c := luma(img.At(b.Min.X+x, b.Min.Y+y))
				g.Pix[y*w+x] = v
				g.Color = g.Color || c
			}
		}
	}
	return g
}

// luma is c's 16-bit luma, and whether c is anything but an opaque gray.
func luma(c color.Color) (uint16, bool) {
	r, gr, bl, a := c.RGBA()
	y := (19595*r + 38470*gr + 7471*bl + 1<<15) >> 16
	return uint16(y), r != gr || gr != bl || a != 0xffff
}

// neutralChroma says whether a chroma plane is 128 throughout (a gray JPEG
// stored as YCbCr).
func neutralChroma(p []uint8) bool {
	for _, v := range p {
		if v != 128 {
			return false
		}
	}
	return true
}
