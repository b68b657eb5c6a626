package report

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func row(rater, item string, grade int64, w, h int64) Row {
	return Row{Rater: rater, Item: item, Grade: grade, Key: rater + "/" + item, Path: rater + "/" + item + ".png",
		PNG: w > 0, Width: w, Height: h, BitDepth: 8}
}

// obsRows makes one observation per (grade, size) count for rater "A".
func obsRows(spec map[int64]map[string]int) []Row {
	var rows []Row
	n := 0
	for _, g := range []int64{0, 1, 2, 3, 4} {
		for _, size := range []string{"small", "wide"} {
			for range spec[g][size] {
				n++
				w, h := int64(300), int64(162)
				if size == "wide" {
					w, h = 640, 161
				}
				rows = append(rows, row("A", "i"+string(rune('a'+n%26))+string(rune('a'+n/26)), g, w, h))
			}
		}
	}
	return rows
}

func build(t *testing.T, in Input, opt Options) *Report {
	t.Helper()
	r, err := Build(context.Background(), in, opt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sizeWarnings(r *Report) []Warning {
	var out []Warning
	for _, w := range r.Summary.Warnings {
		if w.Property == "size" {
			out = append(out, w)
		}
	}
	return out
}

// The real dataset's case: grade 4 has only the small size.
func TestWarnGradeOneValue(t *testing.T) {
	in := Input{Rows: obsRows(map[int64]map[string]int{
		0: {"small": 14, "wide": 7}, 1: {"small": 14, "wide": 5}, 2: {"small": 10, "wide": 7},
		3: {"small": 13, "wide": 5}, 4: {"small": 16},
	})}
	w := sizeWarnings(build(t, in, Options{}))
	if len(w) != 1 {
		t.Fatalf("warnings %+v, want one", w)
	}
	if w[0].Kind != "grade_one_value" || w[0].Grade != 4 || w[0].Value != "300×162" || w[0].Share != 1 || w[0].Images != 16 {
		t.Errorf("warning %+v", w[0])
	}
	if want := 51.0 / 75; w[0].OtherShare != want {
		t.Errorf("other share %v, want %v", w[0].OtherShare, want)
	}
	if !strings.Contains(w[0].Message, "Grade 4: 100% of its 16 images have size 300×162, against 68%") {
		t.Errorf("message %q", w[0].Message)
	}
}

// A size seen only with one grade gives that grade away.
func TestWarnValueOneGrade(t *testing.T) {
	in := Input{Rows: obsRows(map[int64]map[string]int{
		0: {"small": 20}, 1: {"small": 20}, 2: {"small": 14, "wide": 6}, 3: {"small": 20},
	})}
	w := sizeWarnings(build(t, in, Options{}))
	if len(w) != 1 || w[0].Kind != "value_one_grade" || w[0].Grade != 2 || w[0].Value != "640×161" || w[0].Images != 6 {
		t.Fatalf("warnings %+v, want 640×161 → grade 2", w)
	}
	if w[0].OtherShare != 0.25 {
		t.Errorf("grade 2's share %v, want 0.25", w[0].OtherShare)
	}
	// Grades 0, 1 and 3 are all small while 90 % of the other grades'
	// images are (rule 1), but the only other size is 640×161, which rule 2
	// already names: no second warning for the same fact.
}

func TestWarnThresholds(t *testing.T) {
	spec := map[int64]map[string]int{0: {"small": 10, "wide": 10}, 1: {"small": 10, "wide": 10}, 4: {"small": 4}}
	// Grade 4 has 4 images: below the default least number (5).
	if w := sizeWarnings(build(t, Input{Rows: obsRows(spec)}, Options{})); len(w) != 0 {
		t.Errorf("warnings below the least number of images: %+v", w)
	}
	if w := sizeWarnings(build(t, Input{Rows: obsRows(spec)}, Options{WarnMinImages: 4})); len(w) != 1 {
		t.Errorf("warn_min_images 4: %+v", w)
	}
	// 19 of 20 small = 95 %: warned at the default share, not at 96 %.
	spec = map[int64]map[string]int{0: {"small": 5, "wide": 15}, 1: {"small": 5, "wide": 15}, 4: {"small": 19, "wide": 1}}
	if w := sizeWarnings(build(t, Input{Rows: obsRows(spec)}, Options{})); len(w) != 1 || w[0].Grade != 4 {
		t.Errorf("95%%: %+v", w)
	}
	if w := sizeWarnings(build(t, Input{Rows: obsRows(spec)}, Options{WarnShare: 0.96})); len(w) != 0 {
		t.Errorf("96%%: %+v", w)
	}
}

func TestNoWarningWithoutVariety(t *testing.T) {
	// One size everywhere: nothing to learn.
	r := build(t, Input{Rows: obsRows(map[int64]map[string]int{0: {"small": 9}, 4: {"small": 9}})}, Options{})
	if len(r.Summary.Warnings) != 0 {
		t.Errorf("warnings %+v", r.Summary.Warnings)
	}
	// Sizes vary within every grade alike.
	r = build(t, Input{Rows: obsRows(map[int64]map[string]int{0: {"small": 9, "wide": 3}, 4: {"small": 9, "wide": 3}})}, Options{})
	if len(r.Summary.Warnings) != 0 {
		t.Errorf("warnings %+v", r.Summary.Warnings)
	}
	p := r.Summary.Properties[0]
	if p.GuessAccuracy != 0.5 || p.BaselineAccuracy != 0.5 {
		t.Errorf("accuracies %v %v", p.GuessAccuracy, p.BaselineAccuracy)
	}
}

func TestUnknownProperties(t *testing.T) {
	rows := []Row{row("A", "x", 0, 0, 0), row("A", "y", 1, 300, 162)}
	r := build(t, Input{Rows: rows}, Options{})
	p := r.Summary.Properties[0]
	if p.Unknown != 1 || len(p.Values) != 1 || p.ByGrade[0].Images != 0 || p.ByGrade[1].Images != 1 {
		t.Errorf("property %+v", p)
	}
}

// Observations count once per rater and item: duplicates do not inflate them.
func TestCountsAndDuplicates(t *testing.T) {
	rows := []Row{
		row("B", "x", 1, 300, 162), row("A", "x", 1, 300, 162), row("A", "x", 1, 300, 162),
		row("A", "y", 2, 300, 162), row("A", "y", 3, 300, 162), // conflicting copies
		row("A", "z", 0, 300, 162),
	}
	rows[2].Path = "A/x copy.png"
	r := build(t, Input{Rows: rows}, Options{})
	s := r.Summary
	if s.Totals != (Totals{Files: 6, Images: 3, Observations: 4}) {
		t.Errorf("totals %+v", s.Totals)
	}
	want := map[[2]string][2]int{{"A", "1"}: {2, 1}, {"A", "2"}: {1, 1}, {"A", "3"}: {1, 0}, {"B", "1"}: {1, 1}, {"A", "0"}: {1, 1}}
	for _, c := range s.Counts {
		k := [2]string{c.Rater, string(rune('0' + c.Grade))}
		if got := [2]int{c.Files, c.Images}; got != want[k] {
			t.Errorf("%s grade %d: files, images %v, want %v", c.Rater, c.Grade, got, want[k])
		}
	}
	d := s.Duplicates
	if d.Groups != 2 || d.Surplus != 2 || d.Conflicting != 1 {
		t.Fatalf("duplicates %+v", d)
	}
	if g := d.List[0]; g.Item != "x" || g.Paths[0] != "A/x.png" || g.Paths[1] != "A/x copy.png" || g.Conflict {
		t.Errorf("first group %+v", g)
	}
	if g := d.List[1]; g.Item != "y" || !g.Conflict || len(g.Grades) != 2 {
		t.Errorf("second group %+v", g)
	}
	page, err := r.HTML()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte("1 groups have copies with different grades")) {
		t.Error("no conflict callout in the page")
	}
}

func TestGradeNames(t *testing.T) {
	rows := []Row{row("A", "a", 0, 1, 1), row("A", "b", 1, 1, 1), row("A", "c", 2, 1, 1), row("A", "d", 3, 1, 1)}
	rows[0].Label, rows[1].Label, rows[2].Label = "0Normal", "Doubtful", "2"
	r := build(t, Input{Rows: rows}, Options{})
	for g, want := range map[int64]string{0: "0 Normal", 1: "1 Doubtful", 2: "2", 3: "3", 9: "9"} {
		if got := r.gradeName(g); got != want {
			t.Errorf("grade %d: %q, want %q", g, got, want)
		}
	}
}

func TestParseSize(t *testing.T) {
	if w, h, err := ParseSize("640x162"); err != nil || w != 640 || h != 162 {
		t.Errorf("640x162: %d %d %v", w, h, err)
	}
	if w, h, err := ParseSize(" 32X8 "); err != nil || w != 32 || h != 8 {
		t.Errorf("32X8: %d %d %v", w, h, err)
	}
	for _, bad := range []string{"", "640", "x162", "640x", "0x1", "-1x5", "9000x10", "axb"} {
		if _, _, err := ParseSize(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPct(t *testing.T) {
	for share, want := range map[float64]string{1: "100%", 0.999: "99%", 0: "0%", 0.001: "<1%", 0.68: "68%", 0.955: "96%"} {
		if got := pct(share); got != want {
			t.Errorf("pct(%v) = %q, want %q", share, got, want)
		}
	}
}

func TestDownscaleGray(t *testing.T) {
	src := image.NewGray(image.Rect(0, 0, 640, 161))
	for y := range 161 {
		for x := range 640 {
			if x%2 == 0 {
				src.SetGray(x, y, color.Gray{200})
			}
		}
	}
	out := downscale(src, 160)
	g, ok := out.(*image.Gray)
	if !ok || g.Bounds().Dx() != 160 || g.Bounds().Dy() != 40 {
		t.Fatalf("got %T %v", out, out.Bounds())
	}
	// Every 4×4 box holds two columns of 200 and two of 0.
	if v := g.GrayAt(10, 10).Y; v != 100 {
		t.Errorf("box average %d, want 100", v)
	}
	// Small images keep their size; a sub-image's offset is respected.
	sub := src.SubImage(image.Rect(1, 0, 101, 10)).(*image.Gray)
	small := downscale(sub, 160).(*image.Gray)
	if small.Bounds().Dx() != 100 || small.GrayAt(0, 0).Y != 0 || small.GrayAt(1, 0).Y != 200 {
		t.Errorf("sub-image: %v, %d %d", small.Bounds(), small.GrayAt(0, 0).Y, small.GrayAt(1, 0).Y)
	}
}

func TestDownscaleColor(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 4, 2))
	for y := range 2 {
		for x := range 4 {
			src.SetNRGBA(x, y, color.NRGBA{255, 255, 255, 255})
		}
	}
	src.SetNRGBA(0, 0, color.NRGBA{255, 0, 0, 255})
	src.SetNRGBA(1, 0, color.NRGBA{255, 0, 0, 255})
	src.SetNRGBA(0, 1, color.NRGBA{255, 0, 0, 255})
	src.SetNRGBA(1, 1, color.NRGBA{255, 0, 0, 255})
	out, ok := downscale(src, 2).(*image.RGBA)
	if !ok || out.Bounds().Dx() != 2 || out.Bounds().Dy() != 1 {
		t.Fatalf("got %v", out.Bounds())
	}
	if c := out.RGBAAt(0, 0); c != (color.RGBA{255, 0, 0, 255}) {
		t.Errorf("red box %v", c)
	}
	if c := out.RGBAAt(1, 0); c != (color.RGBA{255, 255, 255, 255}) {
		t.Errorf("white box %v (8-bit overflow?)", c)
	}
}

func pngBytes(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func decodeURI(t *testing.T, uri string) image.Image {
	t.Helper()
	data, ok := strings.CutPrefix(uri, "data:image/png;base64,")
	if !ok {
		t.Fatalf("not a PNG data URI: %.40s", uri)
	}
	raw, err := decodeBase64(data)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Mean images: padded at the bottom and right, cropped when larger; an
// item counts for each grade a rater gave it; failures are skipped.
func TestMeanImages(t *testing.T) {
	white := image.NewGray(image.Rect(0, 0, 2, 2))
	for i := range white.Pix {
		white.Pix[i] = 255
	}
	big := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range big.Pix {
		big.Pix[i] = 100
	}
	objects := map[string][]byte{"A/w": pngBytes(t, white), "A/b": pngBytes(t, big), "B/w": pngBytes(t, white)}
	fetched := map[string]int{}
	fetch := func(_ context.Context, obj Object) ([]byte, error) {
		key := obj.Key
		fetched[key]++ // one worker: no race
		if data, ok := objects[key]; ok {
			return data, nil
		}
		return nil, errors.New("no such object")
	}
	rows := []Row{row("A", "w", 0, 2, 2), row("B", "w", 1, 2, 2), row("A", "b", 0, 8, 8), row("A", "gone", 1, 2, 2)}
	r := build(t, Input{Rows: rows}, Options{MeanImages: true, MeanWidth: 4, MeanHeight: 3, Fetch: fetch, Concurrency: 1})
	m := r.Summary.MeanImages
	if m == nil || m.Width != 4 || m.Height != 3 || m.Skipped != 1 {
		t.Fatalf("mean images %+v", m)
	}
	if m.Grades[0].Images != 2 || m.Grades[1].Images != 1 {
		t.Errorf("images per grade %+v", m.Grades)
	}
	if fetched["A/w"] != 1 || fetched["B/w"] != 0 {
		t.Errorf("fetches %v: want each item once, by its first key", fetched)
	}
	g0 := decodeURI(t, r.means[0].URI).(*image.Gray)
	// Grade 0: white 2×2 at the top left, plus the 8×8 gray cropped to 4×3.
	if g0.GrayAt(0, 0).Y != (255+100+1)/2 || g0.GrayAt(3, 2).Y != 50 {
		t.Errorf("grade 0 mean %d %d", g0.GrayAt(0, 0).Y, g0.GrayAt(3, 2).Y)
	}
	g1 := decodeURI(t, r.means[1].URI).(*image.Gray)
	if g1.GrayAt(1, 1).Y != 255 || g1.GrayAt(2, 0).Y != 0 {
		t.Errorf("grade 1 mean %d %d", g1.GrayAt(1, 1).Y, g1.GrayAt(2, 0).Y)
	}
}

// Thumbnails: only for items shown; failures are reported, not fatal.
func TestThumbnails(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 320, 100))
	var keys []string
	fetch := func(_ context.Context, obj Object) ([]byte, error) {
		key := obj.Key
		keys = append(keys, key)
		if key == "B/bad" {
			return []byte("not an image"), nil
		}
		return pngBytes(t, img), nil
	}
	g := func(v int64) *int64 { return &v }
	in := Input{
		Raters: []string{"A", "B"},
		Rows: []Row{
			row("A", "dup", 0, 320, 100), row("A", "dup", 0, 320, 100),
			row("A", "dis", 0, 320, 100), row("B", "dis", 1, 320, 100),
			row("A", "plain", 2, 320, 100), row("B", "bad", 2, 320, 100), row("A", "bad", 3, 320, 100),
		},
		Disagreements: []Disagreement{{Item: "bad", Grades: []*int64{g(3), g(2)}}, {Item: "dis", Grades: []*int64{g(0), g(1)}}},
	}
	in.Rows[5].Key = "B/bad"
	r := build(t, in, Options{Fetch: fetch, Concurrency: 1})
	if strings.Join(keys, ",") != "B/bad,A/dis,A/dup" {
		t.Errorf("fetched %v", keys)
	}
	if r.Summary.Thumbnails != (ThumbnailCount{Shown: 2, Failed: 1}) || len(r.Problems) != 1 {
		t.Errorf("thumbnails %+v, problems %v", r.Summary.Thumbnails, r.Problems)
	}
	th := decodeURI(t, r.thumbs["dis"].URI)
	if th.Bounds().Dx() != 160 || th.Bounds().Dy() != 50 {
		t.Errorf("thumbnail %v", th.Bounds())
	}
	page, err := r.HTML()
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(page, []byte(`src="data:image/png;base64,`)); n != 3 { // 2 copies of dup + dis
		t.Errorf("%d embedded thumbnails, want 3", n)
	}
	if !bytes.Contains(page, []byte("no thumbnail: decode: unsupported or damaged image: not a PNG, JPEG or GIF")) {
		t.Error("the failed thumbnail is not explained")
	}
}

// Names from the data are escaped everywhere, charts included.
func TestEscaping(t *testing.T) {
	g := func(v int64) *int64 { return &v }
	evil := `<script>alert("x")</script>`
	in := Input{
		Title:         evil,
		Raters:        []string{evil, "B"},
		Rows:          []Row{row(evil, "i", 0, 1, 1), row("B", "i", 1, 1, 1)},
		Matrix:        []Cell{{RaterA: evil, RaterB: "B", GradeA: 0, GradeB: 1, Count: 1}},
		Kappas:        []Kappa{{RaterA: evil, RaterB: "B", N: 1}},
		Disagreements: []Disagreement{{Item: "i", Grades: []*int64{g(0), g(1)}}},
	}
	in.Rows[0].Label = evil
	page, err := build(t, in, Options{}).HTML()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(page, []byte("<script")) {
		t.Error("unescaped <script in the page")
	}
	if !bytes.Contains(page, []byte("&lt;script&gt;")) {
		t.Error("the escaped name is missing")
	}
}

// Without a source the report still renders, saying why images are missing.
func TestNoSource(t *testing.T) {
	g := func(v int64) *int64 { return &v }
	in := Input{Raters: []string{"A", "B"}, Rows: []Row{row("A", "i", 0, 1, 1), row("B", "i", 1, 1, 1)},
		Disagreements: []Disagreement{{Item: "i", Grades: []*int64{g(0), g(1)}}}}
	r := build(t, in, Options{MeanImages: true})
	if r.Summary.MeanImages != nil || r.Summary.Thumbnails.Shown != 0 {
		t.Errorf("images without a source: %+v %+v", r.Summary.MeanImages, r.Summary.Thumbnails)
	}
	page, err := r.HTML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"no thumbnail: no source to fetch from", "This report had no source", `id="mean-images"`} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("page lacks %q", want)
		}
	}
	if _, err := Build(context.Background(), Input{Raters: []string{"A"}, Disagreements: []Disagreement{{Item: "i"}}}, Options{}); err == nil {
		t.Error("a disagreement without a grade per rater was accepted")
	}
}

func TestEmptyInput(t *testing.T) {
	r := build(t, Input{Title: "empty"}, Options{})
	page, err := r.HTML()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range SectionIDs {
		if !bytes.Contains(page, []byte(`id="`+id+`"`)) {
			t.Errorf("section %s missing", id)
		}
	}
	js, err := r.JSON()
	if err != nil || !bytes.Contains(js, []byte(`"disagreements": []`)) || !bytes.Contains(js, []byte(`"warnings": []`)) {
		t.Errorf("summary %s (%v)", js, err)
	}
}

// Fetched bytes are checked against the size and SHA-256 the rows give.
func TestCheck(t *testing.T) {
	data := []byte("abc")
	const sum = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if err := check(Object{Size: 3, SHA256: sum}, data); err != nil {
		t.Error(err)
	}
	if err := check(Object{}, data); err != nil {
		t.Error(err)
	}
	if err := check(Object{Size: 4}, data); err == nil || !strings.Contains(err.Error(), "got 3 bytes, want 4") {
		t.Errorf("size: %v", err)
	}
	if err := check(Object{SHA256: strings.Repeat("0", 64)}, data); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("hash: %v", err)
	}
}

// With a cache directory, a second build fetches nothing, gives the same
// bytes, re-derives a damaged entry and removes entries it did not use.
func TestDerivedImageCache(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 320, 100))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	data := pngBytes(t, img)
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	var mu sync.Mutex
	gets := 0
	fetch := func(_ context.Context, obj Object) ([]byte, error) {
		mu.Lock()
		gets++
		mu.Unlock()
		return data, nil
	}
	g := func(v int64) *int64 { return &v }
	rows := []Row{row("A", "x", 0, 320, 100), row("B", "x", 1, 320, 100)}
	for i := range rows {
		rows[i].SHA256, rows[i].Size = hexSum, int64(len(data))
	}
	in := Input{Raters: []string{"A", "B"}, Rows: rows, Disagreements: []Disagreement{{Item: "x", Grades: []*int64{g(0), g(1)}}}}
	dir := t.TempDir()
	stale := filepath.Join(dir, strings.Repeat("1", 64)+"-thumb160.png")
	if err := os.WriteFile(stale, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	opt := Options{Fetch: fetch, CacheDir: dir, MeanImages: true}
	first, err := build(t, in, opt).HTML()
	if err != nil {
		t.Fatal(err)
	}
	if gets != 2 { // the thumbnail and the padded gray image, each derived once
		t.Errorf("first build: %d fetches, want 2", gets)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("unused cache entry kept: %v", err)
	}
	gets = 0
	second, err := build(t, in, opt).HTML()
	if err != nil {
		t.Fatal(err)
	}
	if gets != 0 || !bytes.Equal(first, second) {
		t.Errorf("second build: %d fetches, same page %v", gets, bytes.Equal(first, second))
	}
	// A damaged entry is derived again.
	if err := os.WriteFile(filepath.Join(dir, hexSum+"-thumb160.png"), []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	third, err := build(t, in, opt).HTML()
	if err != nil {
		t.Fatal(err)
	}
	if gets != 1 || !bytes.Equal(first, third) {
		t.Errorf("damaged entry: %d fetches, same page %v", gets, bytes.Equal(first, third))
	}
	// Bytes that are not what the rows say are refused, not cached.
	for i := range in.Rows {
		in.Rows[i].SHA256 = strings.Repeat("2", 64)
	}
	r := build(t, in, opt)
	if r.Summary.Thumbnails.Failed != 1 || !strings.Contains(strings.Join(r.Problems, " "), "SHA-256") {
		t.Errorf("wrong bytes: %+v %v", r.Summary.Thumbnails, r.Problems)
	}
}

// A cancelled build fails instead of writing a report with holes.
func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	fetch := func(ctx context.Context, obj Object) ([]byte, error) {
		cancel()
		return nil, ctx.Err()
	}
	g := func(v int64) *int64 { return &v }
	in := Input{Raters: []string{"A", "B"}, Rows: []Row{row("A", "i", 0, 1, 1), row("B", "i", 1, 1, 1)},
		Disagreements: []Disagreement{{Item: "i", Grades: []*int64{g(0), g(1)}}}}
	if _, err := Build(ctx, in, Options{Fetch: fetch}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled build: %v", err)
	}
}
