package e2e

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

const nearFile = "examples/near-duplicates.yaml"

// radiographLike is a smooth random gray image (seeded): distinct seeds
// give distinct images, as distinct radiographs are.
func radiographLike(seed uint64, w, h int) *image.Gray {
	r := rand.New(rand.NewPCG(seed, 7))
	type blob struct{ x, y, s, a float64 }
	bs := make([]blob, 40)
	for i := range bs {
		bs[i] = blob{r.Float64(), r.Float64(), 0.03 + 0.1*r.Float64(), r.NormFloat64() * 45}
	}
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			u, v := float64(x)/float64(w), float64(y)/float64(h)
			val := 110.0
			for _, b := range bs {
				val += b.a * math.Exp(-((u-b.x)*(u-b.x)+(v-b.y)*(v-b.y))/(2*b.s*b.s))
			}
			img.Pix[y*img.Stride+x] = uint8(max(0, min(255, val)))
		}
	}
	return img
}

// resized scales img by f with area averaging.
func resized(img *image.Gray, f float64) *image.Gray {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	nw, nh := int(float64(w)*f), int(float64(h)*f)
	out := image.NewGray(image.Rect(0, 0, nw, nh))
	for y := range nh {
		for x := range nw {
			x0, x1 := x*w/nw, max((x+1)*w/nw, x*w/nw+1)
			y0, y1 := y*h/nh, max((y+1)*h/nh, y*h/nh+1)
			sum, n := 0, 0
			for yy := y0; yy < y1; yy++ {
				for xx := x0; xx < x1; xx++ {
					sum += int(img.Pix[yy*img.Stride+xx])
					n++
				}
			}
			out.Pix[y*out.Stride+x] = uint8((sum + n/2) / n)
		}
	}
	return out
}

// cropped cuts frac of each side.
func cropped(img *image.Gray, frac float64) image.Image {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	dx, dy := int(float64(w)*frac), int(float64(h)*frac)
	return img.SubImage(image.Rect(dx, dy, w-dx, h-dy))
}

func pngBytes(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t *testing.T, img image.Image, q int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// nearGroupsOf reads near_duplicates.csv as sorted groups of sorted
// relative paths (its columns: group, relative_path, ...).
func nearGroupsOf(t *testing.T, path string) []string {
	t.Helper()
	lines := readLines(t, path)
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "group,relative_path,") {
		t.Fatalf("%s: header %q", path, lines)
	}
	byGroup := map[string][]string{}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		byGroup[f[0]] = append(byGroup[f[0]], f[1])
	}
	var out []string
	for _, g := range byGroup {
		sort.Strings(g)
		out = append(out, strings.Join(g, " "))
	}
	sort.Strings(out)
	return out
}

// Issue 10: examples/near-duplicates.yaml on a bucket of PNGs and JPEGs in
// an arbitrary folder layout with planted copies (resized, cropped, JPEG,
// byte-identical): the groups are exactly the planted ones; a cold run
// makes one GET per listed object; a warm run none; adding two images
// costs two GETs. The same directory as a --source gives the same groups.
func TestNearDuplicatesExample(t *testing.T) {
	srv := scratchServer(t)
	bkt, data := newBucket(t, srv, "e2e-near")
	a, b, c := radiographLike(1, 240, 200), radiographLike(2, 240, 200), radiographLike(3, 200, 240)
	objects := map[string][]byte{
		"scans/2019/a.png":          pngBytes(t, a),
		"scans/2019/a-small.PNG":    pngBytes(t, resized(a, 0.6)),
		"elsewhere/deep/down/a.jpg": jpegBytes(t, a, 85),
		"b.png":                     pngBytes(t, b),
		"b-crop.jpeg":               jpegBytes(t, cropped(b, 0.03), 90),
		"copies/b.png":              pngBytes(t, b), // byte-identical
		"c.png":                     pngBytes(t, c), // no copy
		"d/e.png":                   pngBytes(t, radiographLike(4, 180, 180)),
		"broken.png":                []byte("not an image at all"),
		"notes.txt":                 []byte("not listed"),
	}
	for rel, d := range objects {
		writeObject(t, data, rel, d)
	}
	const listed = 9 // all but notes.txt
	want := []string{
		"b-crop.jpeg b.png copies/b.png",
		"elsewhere/deep/down/a.jpg scans/2019/a-small.PNG scans/2019/a.png",
	}
	dir := t.TempDir()
	out, cache := filepath.Join(dir, "out"), filepath.Join(dir, "cache")
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, nearFile, out, cache), 0, "near-duplicates example, cold")
	if got := srv.requests(t, "GetObject", bkt); got != listed {
		t.Errorf("cold run: %d GETs, want one per listed object (%d)", got, listed)
	}
	if got := nearGroupsOf(t, filepath.Join(out, "near_duplicates.csv")); !slices.Equal(got, want) {
		t.Errorf("groups:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, nearFile, filepath.Join(dir, "out2"), cache), 0, "warm")
	if got := srv.requests(t, "GetObject", bkt); got != listed {
		t.Errorf("warm run: %d more GETs, want none", got-listed)
	}
	sameFile(t, filepath.Join(out, "near_duplicates.csv"), filepath.Join(dir, "out2", "near_duplicates.csv"))

	// Two more images, one a copy of c: two GETs, one more group.
	writeObject(t, data, "new/c-90pct.png", pngBytes(t, resized(c, 0.9)))
	writeObject(t, data, "new/f.png", pngBytes(t, radiographLike(5, 220, 200)))
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, nearFile, filepath.Join(dir, "out3"), cache), 0, "two added")
	if got := srv.requests(t, "GetObject", bkt) - listed; got != 2 {
		t.Errorf("after adding two images: %d GETs, want 2", got)
	}
	want = append(want, "c.png new/c-90pct.png")
	sort.Strings(want)
	if got := nearGroupsOf(t, filepath.Join(dir, "out3", "near_duplicates.csv")); !slices.Equal(got, want) {
		t.Errorf("groups after adding:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The same images as a local directory.
	local := filepath.Join(dir, "out4")
	wantCode(t, kneepipe(t, nil, "run", "-f", nearFile, "--out", local, "--cache", filepath.Join(dir, "cache4"), "--source", data), 0, "directory source")
	if got := nearGroupsOf(t, filepath.Join(local, "near_duplicates.csv")); !slices.Equal(got, want) {
		t.Errorf("groups from the directory:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
