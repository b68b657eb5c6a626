package neardup

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"testing"

	"github.com/kneepipe/kneepipe/internal/imagedecode"
)

// FromBytes through imagedecode.DecodeRaw gives the fingerprint the
// image/png path gives, bit for bit, for each layout DecodeRaw handles:
// 8-bit gray, 16-bit gray (8-bit values stored as 16 and true 16-bit), RGB
// (gray and colour), at sizes below, at and above the thumbnail, and every
// compression level (image/png picks other filters at each).
func TestRawFingerprintMatchesDecode(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	sizes := [][2]int{{1, 1}, {5, 3}, {63, 65}, {64, 64}, {97, 131}, {224, 224}, {301, 7}}
	levels := []png.CompressionLevel{png.NoCompression, png.BestSpeed, png.DefaultCompression, png.BestCompression}
	for _, sz := range sizes {
		g := field(uint64(sz[0]*1000+sz[1]), sz[0], sz[1])
		b := g.Rect
		g16, g16x, gray, rgb := image.NewGray16(b), image.NewGray16(b), image.NewRGBA(b), image.NewRGBA(b)
		for y := range b.Dy() {
			for x := range b.Dx() {
				v := g.GrayAt(x, y).Y
				g16.SetGray16(x, y, color.Gray16{uint16(v) * 257})
				g16x.SetGray16(x, y, color.Gray16{uint16(v)<<8 | uint16(r.IntN(256))})
				gray.SetRGBA(x, y, color.RGBA{v, v, v, 255})
				rgb.SetRGBA(x, y, color.RGBA{v, uint8(r.IntN(256)), v / 2, 255})
			}
		}
		for name, img := range map[string]image.Image{"gray8": g, "gray16-as-8": g16, "gray16": g16x, "rgb-gray": gray, "rgb": rgb} {
			for _, level := range levels {
				data := pngBytes(t, img, level)
				label := fmt.Sprintf("%s %dx%d level %d", name, sz[0], sz[1], level)
				if !imagedecode.DecodeRaw(data, 0, func(*imagedecode.Raw) {}) {
					t.Fatalf("%s: DecodeRaw declined", label)
				}
				want, err := fromDecoded(data, 0)
				if err != nil {
					t.Fatal(err)
				}
				if got := fingerprint(t, data); got != want {
					t.Errorf("%s: fingerprints differ (pixels %x vs %x)", label, got.Pixels[:4], want.Pixels[:4])
				}
			}
		}
	}
}
