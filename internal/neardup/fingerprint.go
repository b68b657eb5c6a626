// Package neardup finds near-duplicate images: copies of one picture
// that were re-encoded, resized, cropped by a few per cent, shifted in
// brightness, contrast or gamma, JPEG-compressed or lightly noised.
//
// Each image gets a Fingerprint from its decoded pixels: an identity hash
// of the pixels (same pixels, same image, whatever the encoding), 128
// low-frequency DCT coefficients used only to find candidate pairs, and a
// small equalized thumbnail on which every candidate pair is verified by
// alignment and correlation. Perceptual hashes alone merge distinct
// radiographs, which look alike at low resolution; the verification is
// what keeps false pairs out.
package neardup

import (
	"encoding/binary"
	"image"
	"image/color"
	"math"

	"github.com/kneepipe/kneepipe/internal/imagedecode"
	"github.com/zeebo/blake3"
)

// ThumbSize is the side of the verification thumbnail; correlations are
// taken at half that resolution, so resampling one thumbnail onto the
// other blurs little.
const ThumbSize = 64

const (
	thumbPixels = ThumbSize * ThumbSize
	half        = ThumbSize / 2
	halfPixels  = half * half
)

// Fingerprint describes one image for near-duplicate search.
type Fingerprint struct {
	// Pixels is the BLAKE3-256 of the canonical decoded pixels and size:
	// equal for the same pixels in any encoding (BLAKE3: collision
	// resistant as SHA-256 is, and on knee images ~1.7 times as fast).
	Pixels        [32]byte
	Width, Height int32
	// Coeffs are 128 low-frequency DCT coefficients of the equalized
	// thumbnail at half resolution, scaled to unit RMS (× coeffScale). Find
	// takes their signs relative to the mean over all images as the bits
	// of its candidate index: what sets an image apart from the typical
	// image of its collection, not the shape every knee shares.
	Coeffs [coeffCount]int16
	// Thumb is the image area-averaged to ThumbSize×ThumbSize and rank
	// equalized (so monotonic intensity changes, gamma included, leave it
	// nearly unchanged), row-major.
	Thumb [thumbPixels]uint8
}

// FromBytes decodes an encoded PNG, JPEG or GIF (refusing headers that
// declare more than maxPixels; imagedecode.DefaultMaxPixels when <= 0)
// and fingerprints it. The common radiograph PNG layouts take
// imagedecode.DecodeRaw, which gives the same pixels as Decode at about
// half the cost; everything else, errors included, takes Decode.
func FromBytes(data []byte, maxPixels int64) (Fingerprint, error) {
	var fp Fingerprint
	if imagedecode.DecodeRaw(data, maxPixels, func(r *imagedecode.Raw) { fp = fromRaw(r) }) {
		return fp, nil
	}
	return fromDecoded(data, maxPixels)
}

// fromDecoded is FromBytes through imagedecode.Decode and an image.Image.
func fromDecoded(data []byte, maxPixels int64) (Fingerprint, error) {
	img, _, err := imagedecode.Decode(data, maxPixels)
	if err != nil {
		return Fingerprint{}, err
	}
	return FromImage(img), nil
}

// FromImage fingerprints a decoded image.
func FromImage(img image.Image) Fingerprint {
	if g8, ok := img.(*image.Gray); ok { // most radiographs: no conversion
		return fromGray8(g8.Pix, g8.Stride, g8.Rect.Dx(), g8.Rect.Dy())
	}
	g := imagedecode.ToGray(img)
	b := img.Bounds()
	return fromGray(g, func(y int, row []byte) []byte {
		for x := range g.Width {
			c := color.NRGBA64Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA64)
			for _, v := range []uint16{c.R, c.G, c.B, c.A} {
				row = binary.BigEndian.AppendUint16(row, v)
			}
		}
		return row
	})
}

// fromRaw fingerprints DecodeRaw's pixels exactly as FromImage does the
// image.Image that image/png makes of the same file (*image.Gray,
// *image.Gray16 or opaque *image.RGBA).
func fromRaw(r *imagedecode.Raw) Fingerprint {
	w, h := r.Width, r.Height
	switch r.Format {
	case imagedecode.RawGray8:
		return fromGray8(r.Pix, r.Stride, w, h)
	case imagedecode.RawGray16:
		g := &imagedecode.Gray{Width: w, Height: h, Pix: make([]uint16, w*h)}
		for y := range h {
			row, out := r.Row(y), g.Pix[y*w:(y+1)*w]
			for x := range out {
				out[x] = binary.BigEndian.Uint16(row[2*x:])
			}
		}
		return fromGray(g, nil) // never colour
	}
	g := &imagedecode.Gray{Width: w, Height: h, Pix: make([]uint16, w*h)}
	for y := range h {
		row, out := r.Row(y), g.Pix[y*w:(y+1)*w]
		for x := range out {
			// As luma(color.RGBA{...}): 16-bit channels, ITU-R 601 weights.
			cr, cg, cb := uint32(row[3*x])*257, uint32(row[3*x+1])*257, uint32(row[3*x+2])*257
			out[x] = uint16((19595*cr + 38470*cg + 7471*cb + 1<<15) >> 16)
			g.Color = g.Color || cr != cg || cg != cb
		}
	}
	return fromGray(g, func(y int, row []byte) []byte {
		src := r.Row(y)
		for x := range w {
			p := src[3*x : 3*x+3]
			row = append(row, p[0], p[0], p[1], p[1], p[2], p[2], 0xff, 0xff) // opaque
		}
		return row
	})
}

// fromGray8 fingerprints 8-bit gray pixels, rows stride apart.
func fromGray8(pix []byte, stride, w, h int) Fingerprint {
	fp := Fingerprint{Width: int32(w), Height: int32(h)}
	fp.Pixels = hashRows("gry8", w, h, func(y int) []byte { return pix[y*stride : y*stride+w] })
	s := scratches.Get().(*scratch)
	defer scratches.Put(s)
	resample(pix, stride, w, h, 257, s)
	s.finish(&fp)
	return fp
}

// fromGray fingerprints luma; rgbaRow appends row y as non-premultiplied
// 16-bit RGBA, for the pixel hash of a colour image.
func fromGray(g *imagedecode.Gray, rgbaRow func(y int, row []byte) []byte) Fingerprint {
	fp := Fingerprint{Width: int32(g.Width), Height: int32(g.Height)}
	fp.Pixels = pixelHash(g, rgbaRow)
	s := scratches.Get().(*scratch)
	defer scratches.Put(s)
	resample(g.Pix, g.Width, g.Width, g.Height, 1, s)
	s.finish(&fp)
	return fp
}

// pixelHash hashes the pixels in a form independent of the encoding:
// luma for images that are opaque gray (whatever their PNG colour type or
// bit depth: as 8-bit values when every 16-bit value is one, so 8- and
// 16-bit files of the same picture agree), non-premultiplied 16-bit RGBA
// (rgbaRow) otherwise.
func pixelHash(g *imagedecode.Gray, rgbaRow func(y int, row []byte) []byte) [32]byte {
	kind := "gry8"
	if g.Color {
		kind = "rgba"
	} else {
		for _, v := range g.Pix {
			if v%257 != 0 {
				kind = "gr16"
				break
			}
		}
	}
	row := make([]byte, 0, 8*g.Width)
	return hashRows(kind, g.Width, g.Height, func(y int) []byte {
		row = row[:0]
		pix := g.Pix[y*g.Width : (y+1)*g.Width]
		switch kind {
		case "gry8":
			for _, v := range pix {
				row = append(row, uint8(v/257))
			}
		case "gr16":
			for _, v := range pix {
				row = binary.BigEndian.AppendUint16(row, v)
			}
		default:
			row = rgbaRow(y, row)
		}
		return row
	})
}

// hashRows is the BLAKE3-256 of kind, width, height and the rows' bytes.
func hashRows(kind string, w, h int, row func(y int) []byte) [32]byte {
	hash := blake3.New()
	var hdr [12]byte
	copy(hdr[:4], kind)
	binary.BigEndian.PutUint32(hdr[4:], uint32(w))
	binary.BigEndian.PutUint32(hdr[8:], uint32(h))
	hash.Write(hdr[:])
	for y := range h {
		hash.Write(row(y))
	}
	var sum [32]byte
	hash.Sum(sum[:0])
	return sum
}

// span is the source interval a target sample covers: whole samples
// lo..hi-1 (weight 1 each) and partial ones at lo-1 and hi (weights wLo,
// wHi), all times norm.
type span struct {
	lo, hi   int
	wLo, wHi float32
	norm     float32
}

// axisSpans maps n source samples onto ThumbSize target samples.
func axisSpans(n int) [ThumbSize]span {
	var out [ThumbSize]span
	scale := float64(n) / ThumbSize // source units per target sample
	for d := range out {
		lo, hi := float64(d)*scale, float64(d+1)*scale
		sp := span{lo: int(math.Ceil(lo)), hi: int(math.Floor(hi)), norm: float32(1 / scale)}
		if sp.lo > sp.hi { // the target lies inside one source sample
			sp = span{lo: int(lo) + 1, hi: int(lo) + 1, wLo: float32(hi - lo), norm: sp.norm}
		} else {
			sp.wLo = float32(float64(sp.lo) - lo)
			if sp.hi < n {
				sp.wHi = float32(hi - float64(sp.hi))
			}
		}
		out[d] = sp
	}
	return out
}

// equalizeBits is the precision of intensities before equalization.
const equalizeBits = 14
