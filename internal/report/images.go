package report

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/kneepipe/kneepipe/internal/atomicfile"
	"github.com/kneepipe/kneepipe/internal/imagedecode"
	"github.com/kneepipe/kneepipe/internal/safe"
)

// thumb is an embedded image: a PNG data: URI and its size, or why there
// is none.
type thumb struct {
	URI  string
	W, H int
	Err  string
}

// images fetches what the report shows: a thumbnail of the item of each
// duplicate group and disagreement shown with thumbnails (the first
// Options.Groups and Options.Disagreements) and, with MeanImages, every
// item for the mean images.
func (r *Report) images(ctx context.Context, in Input, obsOrder []obsKey, first map[obsKey]int) error {
	s := &r.Summary
	// The object of each item: its first row with a key, in listing order.
	objects := map[string]Object{}
	for _, row := range in.Rows {
		if _, ok := objects[row.Item]; !ok && row.Key != "" {
			objects[row.Item] = Object{Key: row.Key, Size: row.Size, SHA256: strings.ToLower(row.SHA256)}
		}
	}
	shown := map[string]bool{}
	for _, g := range s.Duplicates.List[:min(len(s.Duplicates.List), r.opt.Groups)] {
		shown[g.Item] = true
	}
	for _, d := range s.Disagreements[:min(len(s.Disagreements), r.opt.Disagreements)] {
		shown[d.Item] = true
	}
	for _, item := range s.Near.shown(r.opt.Groups) {
		shown[item] = true
	}
	want := slices.Sorted(maps.Keys(shown))
	r.thumbs = map[string]thumb{}
	if r.opt.Fetch == nil {
		return nil
	}
	c := &derivedCache{dir: r.opt.CacheDir, used: map[string]bool{}}
	thumbs := make([]thumb, len(want))
	err := forEach(ctx, len(want), r.opt.Concurrency, func(i int) {
		obj, ok := objects[want[i]]
		if !ok {
			thumbs[i] = thumb{Err: "no object key"}
			return
		}
		_, data, err := r.derived(ctx, c, obj, fmt.Sprintf("thumb%d", r.opt.ThumbWidth), true, png.BestCompression, func(img image.Image) image.Image {
			return downscale(img, r.opt.ThumbWidth)
		})
		if err == nil {
			thumbs[i], err = pngThumb(data)
		}
		if err != nil {
			thumbs[i] = thumb{Err: err.Error()}
		}
	})
	if err != nil {
		return err
	}
	for i, item := range want {
		r.thumbs[item] = thumbs[i]
		if thumbs[i].Err != "" {
			s.Thumbnails.Failed++
			r.Problems = append(r.Problems, fmt.Sprintf("thumbnail of %s (%s): %s", item, objects[item].Key, thumbs[i].Err))
		} else {
			s.Thumbnails.Shown++
		}
	}
	if r.opt.MeanImages {
		if err := r.meanImages(ctx, c, in, obsOrder, first, objects); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err // cancelled: no partial report, and the cache left whole
	}
	if err := c.prune(); err != nil {
		r.Problems = append(r.Problems, "image cache: "+err.Error())
	}
	r.Problems = append(r.Problems, c.problems...)
	return nil
}

// derived returns derive(the object's image), and its PNG encoding when
// want is true: from the cache when it holds them, else fetched, checked,
// decoded, derived and cached. level is the compression of what is
// encoded (the report embeds thumbnails, whose bytes must not vary: they
// use png.BestCompression).
func (r *Report) derived(ctx context.Context, c *derivedCache, obj Object, kind string, want bool, level png.CompressionLevel, derive func(image.Image) image.Image) (image.Image, []byte, error) {
	name := c.name(obj, kind)
	if img, data, ok := c.get(name); ok {
		return img, data, nil
	}
	raw, err := r.opt.Fetch(ctx, obj)
	if err != nil {
		return nil, nil, err
	}
	if err := check(obj, raw); err != nil {
		return nil, nil, err
	}
	src, err := decodeBounded(raw, r.opt.MaxPixels)
	if err != nil {
		return nil, nil, err
	}
	img := derive(src)
	var data []byte
	if want || name != "" {
		if data, err = encodePNG(img, level); err != nil {
			return nil, nil, err
		}
		c.put(name, data)
	}
	return img, data, nil
}

// decodeBounded decodes with imagedecode, which reads the header first: an
// image that declares more than maxPixels is refused before the decoder
// allocates its pixels. The refusal keeps the report's wording.
func decodeBounded(raw []byte, maxPixels int64) (image.Image, error) {
	img, h, err := imagedecode.Decode(raw, maxPixels)
	if errors.Is(err, imagedecode.ErrTooLarge) {
		return nil, fmt.Errorf("not decoded: %d×%d is %d pixels, more than %d", h.Width, h.Height, h.Pixels(), maxPixels)
	}
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return img, nil
}

// check compares fetched bytes with what the object must be.
func check(obj Object, data []byte) error {
	if obj.Size > 0 && int64(len(data)) != obj.Size {
		return fmt.Errorf("got %d bytes, want %d", len(data), obj.Size)
	}
	if obj.SHA256 != "" {
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != obj.SHA256 {
			return fmt.Errorf("SHA-256 %s, want %s", got, obj.SHA256)
		}
	}
	return nil
}

// derivedCache keeps derived images as PNG files named by the source
// object's SHA-256 and the kind of derivation. Files are written to a
// temporary name and renamed; one that does not decode is ignored.
type derivedCache struct {
	dir      string
	mu       sync.Mutex
	used     map[string]bool
	problems []string
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (c *derivedCache) name(obj Object, kind string) string {
	if c.dir == "" || !sha256Hex.MatchString(obj.SHA256) {
		return ""
	}
	return obj.SHA256 + "-" + kind + ".png"
}

func (c *derivedCache) get(name string) (image.Image, []byte, bool) {
	if name == "" {
		return nil, nil, false
	}
	data, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil {
		return nil, nil, false
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, nil, false // damaged: derive again
	}
	c.mu.Lock()
	c.used[name] = true
	c.mu.Unlock()
	return img, data, true
}

func (c *derivedCache) put(name string, data []byte) {
	if name == "" {
		return
	}
	err := os.MkdirAll(c.dir, 0o755)
	if err == nil {
		err = atomicfile.WriteUnsynced(filepath.Join(c.dir, name), func(w io.Writer) error { _, err := w.Write(data); return err })
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.problems = append(c.problems, "image cache: "+err.Error())
		return
	}
	c.used[name] = true
}

// prune removes the cached images this run did not use.
func (c *derivedCache) prune() error {
	if c.dir == "" {
		return nil
	}
	entries, err := os.ReadDir(c.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || c.used[e.Name()] {
			continue
		}
		if strings.HasSuffix(e.Name(), ".png") || atomicfile.IsTemp(e.Name()) {
			errs = append(errs, os.Remove(filepath.Join(c.dir, e.Name())))
		}
	}
	return errors.Join(errs...)
}

// meanImages averages every item per grade on a MeanWidth × MeanHeight
// canvas: images are converted to gray, placed at the top left and padded
// with black (or cropped). An item counts once for each grade some rater
// gave it.
func (r *Report) meanImages(ctx context.Context, c *derivedCache, in Input, obsOrder []obsKey, first map[obsKey]int, objects map[string]Object) error {
	w, h := r.opt.MeanWidth, r.opt.MeanHeight
	gradesOf := map[string]map[int64]bool{}
	for _, k := range obsOrder {
		if gradesOf[k.item] == nil {
			gradesOf[k.item] = map[int64]bool{}
		}
		gradesOf[k.item][in.Rows[first[k]].Grade] = true
	}
	items := slices.Sorted(maps.Keys(gradesOf))
	sums := map[int64][]uint64{}
	n := map[int64]int{}
	for _, g := range r.Summary.Grades {
		sums[g.Grade] = make([]uint64, w*h)
	}
	pad := func(img image.Image) image.Image {
		canvas := image.NewGray(image.Rect(0, 0, w, h))
		draw.Draw(canvas, canvas.Rect, toGray(img), img.Bounds().Min, draw.Src)
		return canvas
	}
	var mu sync.Mutex
	skipped := 0
	err := forEach(ctx, len(items), r.opt.Concurrency, func(i int) {
		var canvas *image.Gray
		if obj, ok := objects[items[i]]; ok {
			img, _, err := r.derived(ctx, c, obj, fmt.Sprintf("gray%dx%d", w, h), false, png.BestSpeed, pad)
			if g, ok := img.(*image.Gray); err == nil && ok && g.Rect == image.Rect(0, 0, w, h) {
				canvas = g
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if canvas == nil {
			skipped++
			return
		}
		// Integer sums: the order images arrive in does not matter.
		for g := range gradesOf[items[i]] {
			sum := sums[g]
			for p, v := range canvas.Pix {
				sum[p] += uint64(v)
			}
			n[g]++
		}
	})
	if err != nil {
		return err
	}
	m := &MeanImages{Width: w, Height: h, Skipped: skipped, Grades: []MeanGrade{}}
	r.means = map[int64]thumb{}
	for _, g := range r.Summary.Grades {
		m.Grades = append(m.Grades, MeanGrade{Grade: g.Grade, Images: n[g.Grade]})
		if n[g.Grade] == 0 {
			continue
		}
		mean := image.NewGray(image.Rect(0, 0, w, h))
		cnt := uint64(n[g.Grade])
		for p, v := range sums[g.Grade] {
			mean.Pix[p] = uint8((v + cnt/2) / cnt)
		}
		data, err := encodePNG(mean, png.BestCompression)
		if err != nil {
			return err
		}
		if r.means[g.Grade], err = pngThumb(data); err != nil {
			return err
		}
	}
	if skipped > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("mean images: %d images could not be fetched or decoded", skipped))
	}
	r.Summary.MeanImages = m
	return nil
}

// forEach runs fn for 0..n-1 on up to workers goroutines (safe.ForEach):
// it stops handing out work when ctx is done and returns ctx's error then,
// or the panic of fn.
func forEach(ctx context.Context, n, workers int, fn func(int)) error {
	return safe.ForEach(ctx, n, workers, func() func(int) { return fn })
}

// isGray reports whether an image holds gray levels only.
func isGray(img image.Image) bool {
	switch m := img.ColorModel(); m {
	case color.GrayModel, color.Gray16Model:
		return true
	default:
		if p, ok := m.(color.Palette); ok {
			for _, c := range p {
				r, g, b, a := c.RGBA()
				if r != g || g != b || a != 0xffff {
					return false
				}
			}
			return true
		}
	}
	return false
}

// toGray converts an image to 8-bit gray (ITU-R 601 luma, as color.GrayModel).
func toGray(img image.Image) *image.Gray {
	if g, ok := img.(*image.Gray); ok {
		return g
	}
	b := img.Bounds()
	out := image.NewGray(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out.SetGray(x, y, color.GrayModel.Convert(img.At(x, y)).(color.Gray))
		}
	}
	return out
}

// downscale shrinks an image to width w (keeping the aspect ratio) by
// averaging the source pixels each target pixel covers (a box filter in
// integer arithmetic). Images no wider than w keep their size. Gray
// images stay gray; others become RGBA.
func downscale(img image.Image, w int) image.Image {
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	if sw <= w || sw == 0 || sh == 0 {
		w = sw
	}
	h := max(1, (sh*w+sw/2)/max(sw, 1))
	span := func(i, dst, src int) (int, int) {
		lo, hi := i*src/dst, (i+1)*src/dst
		return lo, max(hi, lo+1)
	}
	if isGray(img) {
		src := toGray(img)
		out := image.NewGray(image.Rect(0, 0, w, h))
		for y := range h {
			y0, y1 := span(y, h, sh)
			for x := range w {
				x0, x1 := span(x, w, sw)
				var sum, cnt uint32
				for sy := y0; sy < y1; sy++ {
					at := src.PixOffset(b.Min.X, b.Min.Y+sy)
					for sx := x0; sx < x1; sx++ {
						sum += uint32(src.Pix[at+sx])
						cnt++
					}
				}
				out.Pix[y*out.Stride+x] = uint8((sum + cnt/2) / cnt)
			}
		}
		return out
	}
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		y0, y1 := span(y, h, sh)
		for x := range w {
			x0, x1 := span(x, w, sw)
			var sr, sg, sb, sa, cnt uint64
			for sy := y0; sy < y1; sy++ {
				for sx := x0; sx < x1; sx++ {
					r, g, bl, a := img.At(b.Min.X+sx, b.Min.Y+sy).RGBA()
					sr, sg, sb, sa = sr+uint64(r), sg+uint64(g), sb+uint64(bl), sa+uint64(a)
					cnt++
				}
			}
			avg := func(v uint64) uint8 { return uint8(((v+cnt/2)/cnt*255 + 0x7fff) / 0xffff) }
			out.SetRGBA(x, y, color.RGBA{avg(sr), avg(sg), avg(sb), avg(sa)})
		}
	}
	return out
}

// encodePNG encodes an image with Go's encoder: the same pixels and level
// give the same bytes.
func encodePNG(img image.Image, level png.CompressionLevel) ([]byte, error) {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: level}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// pngThumb embeds PNG bytes as a data: URI.
func pngThumb(data []byte) (thumb, error) {
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return thumb{}, err
	}
	return thumb{URI: "data:image/png;base64," + base64.StdEncoding.EncodeToString(data), W: cfg.Width, H: cfg.Height}, nil
}

func decodeBase64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
