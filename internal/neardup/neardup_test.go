package neardup

import (
	"context"
	"image"
	"image/color"
	"image/png"
	"slices"
	"strings"
	"testing"
)

// The same pixels in another encoding (compression level, 16-bit, RGB)
// have one pixel hash; one changed pixel changes it.
func TestPixelIdentity(t *testing.T) {
	img := field(1, 96, 80)
	want := fingerprint(t, pngBytes(t, img, png.BestCompression)).Pixels
	g16 := image.NewGray16(img.Rect)
	rgb := image.NewRGBA(img.Rect)
	for y := range 80 {
		for x := range 96 {
			v := img.GrayAt(x, y).Y
			g16.SetGray16(x, y, color.Gray16{uint16(v) * 257})
			rgb.SetRGBA(x, y, color.RGBA{v, v, v, 255})
		}
	}
	for name, data := range map[string][]byte{
		"no compression": pngBytes(t, img, png.NoCompression),
		"16-bit":         pngBytes(t, g16, png.DefaultCompression),
		"RGB":            pngBytes(t, rgb, png.BestSpeed),
	} {
		if got := fingerprint(t, data).Pixels; got != want {
			t.Errorf("%s: pixel hash differs", name)
		}
	}
	img.Pix[500]++
	if fingerprint(t, pngBytes(t, img, png.BestCompression)).Pixels == want {
		t.Error("a changed pixel keeps the pixel hash")
	}
}

// Copies of the kinds the issue names are grouped with their original,
// and distinct images never share a group.
func TestNearCopiesGrouped(t *testing.T) {
	const originals = 40
	var fps []Fingerprint
	var root []int
	add := func(r int, data []byte) {
		fps = append(fps, fingerprint(t, data))
		root = append(root, r)
	}
	for s := range originals {
		img := field(uint64(100+s), 200, 180)
		add(s, pngBytes(t, img, png.DefaultCompression))
		if s%5 == 0 { // copies of some originals
			add(s, pngBytes(t, boxResize(img, 100, 90), png.DefaultCompression))
			add(s, pngBytes(t, cropGray(img, image.Rect(10, 4, 192, 171)), png.DefaultCompression))
			add(s, pngBytes(t, gammaNoise(img, 0.7, 2, uint64(s)), png.DefaultCompression))
			add(s, jpegBytes(t, img, 75))
			add(s, jpegBytes(t, boxResize(cropGray(img, image.Rect(4, 8, 194, 174)), 140, 116), 85))
		}
	}
	res, err := Find(context.Background(), fps, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	groupOf := map[int]int{}
	for _, g := range res.Groups {
		for _, m := range g.Members {
			if root[m.Index] != root[g.Members[0].Index] {
				t.Errorf("group %d holds images of originals %d and %d", g.ID, root[g.Members[0].Index], root[m.Index])
			}
			groupOf[m.Index] = g.ID
		}
	}
	for i := range fps {
		orig := slices.Index(root, root[i])
		if i != orig && (groupOf[i] == 0 || groupOf[i] != groupOf[orig]) {
			t.Errorf("copy %d (of original %d) not grouped with it", i, root[i])
		}
	}
	for _, p := range res.Pairs {
		if root[p.A] != root[p.B] {
			t.Errorf("pair %d~%d of distinct originals (similarity %.3f)", p.A, p.B, p.Similarity)
		}
	}
}

// A chain a~b~c where a and c are unlike never joins a and c: groups form
// around a representative that every member was verified against.
func TestNoChaining(t *testing.T) {
	fps := make([]Fingerprint, 4)
	for i := range fps {
		fps[i].Width, fps[i].Height = 10, 10
		fps[i].Pixels[0] = byte(i)
	}
	fps[1].Width = 20 // the largest: the first representative
	classes := [][]int{{0}, {1}, {2}, {3}}
	// 0~1, 1~2, 2~3; not 0~2 nor 1~3.
	nb := [][]Member{{{1, 0.97}}, {{0, 0.97}, {2, 0.96}}, {{1, 0.96}, {3, 0.98}}, {{2, 0.98}}}
	got := groupAround(fps, classes, nb)
	want := []Group{{1, []Member{{1, 1}, {0, 0.97}, {2, 0.96}}}}
	if !slices.EqualFunc(got, want, func(x, y Group) bool { return x.ID == y.ID && slices.Equal(x.Members, y.Members) }) {
		t.Errorf("groups %+v, want %+v (3 stays alone: only verified against 2)", got, want)
	}
}

// Results do not depend on the number of workers, and identical pixels
// group with similarity 1.
func TestFindDeterministic(t *testing.T) {
	var fps []Fingerprint
	for s := range 6 {
		img := field(uint64(s), 120, 120)
		fps = append(fps, fingerprint(t, pngBytes(t, img, png.DefaultCompression)))
		fps = append(fps, fingerprint(t, jpegBytes(t, img, 80)))
		fps = append(fps, fingerprint(t, pngBytes(t, img, png.NoCompression)))
	}
	var first Result
	for w := range 4 {
		opt := DefaultOptions()
		opt.Workers = w + 1
		res, err := Find(context.Background(), fps, opt)
		if err != nil {
			t.Fatal(err)
		}
		if w == 0 {
			first = res
			continue
		}
		if !slices.EqualFunc(res.Groups, first.Groups, func(x, y Group) bool { return x.ID == y.ID && slices.Equal(x.Members, y.Members) }) || !slices.Equal(res.Pairs, first.Pairs) {
			t.Fatalf("workers %d: %+v, workers 1: %+v", w+1, res, first)
		}
	}
	if len(first.Groups) != 6 {
		t.Fatalf("%d groups, want 6: %+v", len(first.Groups), first.Groups)
	}
	for _, g := range first.Groups {
		if len(g.Members) != 3 || g.Members[1].Similarity != 1 || g.Members[2].Similarity >= 1 {
			t.Errorf("group %+v: want the two identical PNGs (similarity 1) and the JPEG", g)
		}
	}
}

func TestEncodingRoundTrip(t *testing.T) {
	fp := fingerprint(t, pngBytes(t, field(3, 70, 50), png.DefaultCompression))
	b, err := fp.MarshalBinary()
	if err != nil || len(b) != EncodedSize {
		t.Fatalf("MarshalBinary: %d bytes, %v", len(b), err)
	}
	var got Fingerprint
	if err := got.UnmarshalBinary(b); err != nil || got != fp {
		t.Fatalf("round trip: %v", err)
	}
	b[0] = 99
	if err := got.UnmarshalBinary(b); err == nil || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("bad version: %v", err)
	}
	if err := got.UnmarshalBinary(b[:10]); err == nil {
		t.Error("short fingerprint accepted")
	}
}

func TestBadInput(t *testing.T) {
	if _, err := Find(context.Background(), nil, Options{Threshold: 1.5}); err == nil {
		t.Error("threshold 1.5 accepted")
	}
	if _, err := FromBytes([]byte("not an image"), 0); err == nil {
		t.Error("text fingerprinted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fps := make([]Fingerprint, 3)
	if _, err := Find(ctx, fps, DefaultOptions()); err == nil {
		t.Error("cancelled Find returned no error")
	}
}

// The index (used from exhaustiveBelow images on) finds near copies among
// many random fingerprints without listing all pairs, below allProbesBelow
// (8 probes) and above it (4).
func TestIndexFindsPlanted(t *testing.T) {
	for _, n := range []int{20000, allProbesBelow + 10000} {
		fps := synthetic(n)
		ptrs := make([]*Fingerprint, n)
		for i := range fps {
			ptrs[i] = &fps[i]
		}
		cand, err := candidates(context.Background(), ptrs, DefaultMaxHamming, 2)
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, c := range cand {
			if c[1] == c[0]+1 && c[1]%100 == 99 {
				found++
			}
		}
		if found < n/100*98/100 {
			t.Errorf("n %d: index found %d of %d planted pairs", n, found, n/100)
		}
		if len(cand) > 4*n/100 {
			t.Errorf("n %d: %d candidates for %d planted pairs: the index lists random pairs", n, len(cand), n/100)
		}
	}
}
