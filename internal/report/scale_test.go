package report

import (
	"context"
	"fmt"
	"image"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// scaleInput is the bucket of issue 9 item 14 at about its size: 99 groups
// of 500 copies of one image under rater A (49,500 rows), 600 images the
// two raters grade differently, and 1000 objects rejected before grading.
func scaleInput() Input {
	in := Input{Title: "scale", Raters: []string{"A", "B"}}
	for g := range 99 {
		item := fmt.Sprintf("dup%02d", g)
		for c := range 500 {
			r := row("A", item, int64(g%5), 300, 162)
			r.Key = fmt.Sprintf("A/%d/%s copy %d.png", g%5, item, c)
			r.Path = r.Key
			in.Rows = append(in.Rows, r)
		}
	}
	for d := range 600 {
		item := fmt.Sprintf("dis%03d", d)
		a, b := int64(d%4), int64(d%4+1)
		in.Rows = append(in.Rows, row("A", item, a, 300, 162), row("B", item, b, 300, 162))
		in.Disagreements = append(in.Disagreements, Disagreement{Item: item, Grades: []*int64{&a, &b}})
	}
	for i := range 1000 {
		in.Excluded = append(in.Excluded, Excluded{Key: fmt.Sprintf("bad/%04d.png", i), Reason: "rejected", Detail: "empty object"})
	}
	return in
}

// noise is a thumbnail that compresses badly, as real radiographs do.
func noise(w, h int, seed uint32) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	x := seed | 1
	for i := range img.Pix {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		img.Pix[i] = uint8(x >> 24)
	}
	return img
}

// With the default caps the page stays a few MB and fetches a bounded
// number of images, whatever the bucket: 40 groups × 4 copies and 80
// disagreements with thumbnails, then compact tables, then "+N more".
func TestReportAtScale(t *testing.T) {
	in := scaleInput()
	if len(in.Rows) != 50700 {
		t.Fatalf("%d rows", len(in.Rows))
	}
	var mu sync.Mutex
	fetched := map[string]int{}
	data := pngBytes(t, noise(300, 162, 7))
	fetch := func(_ context.Context, obj Object) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		fetched[obj.Key]++
		return data, nil
	}
	r := build(t, in, Options{Fetch: fetch})
	// One image per group shown (its copies are the same bytes) and per
	// disagreement shown; each once.
	if len(fetched) != 40+80 {
		t.Errorf("fetched %d images, want 120 (40 groups, 80 disagreements)", len(fetched))
	}
	for k, n := range fetched {
		if n != 1 {
			t.Errorf("%s fetched %d times", k, n)
		}
	}
	page, err := r.HTML()
	if err != nil {
		t.Fatal(err)
	}
	imgs := strings.Count(string(page), `<img src="data:`)
	if imgs != 40*4+80 {
		t.Errorf("%d thumbnails in the page, want 240", imgs)
	}
	// The page without its images is small; with them a few MB.
	text := regexp.MustCompile(`data:image/png;base64,[^"]*`).ReplaceAll(page, nil)
	if len(text) > 1<<20 {
		t.Errorf("report.html without images is %d KB, want at most 1 MB", len(text)>>10)
	}
	if len(page) > 8<<20 {
		t.Errorf("report.html is %.1f MB, want at most 8", float64(len(page))/(1<<20))
	}
	t.Logf("report.html %.2f MB (%d KB without images), %d thumbnails, %d fetches", float64(len(page))/(1<<20), len(text)>>10, imgs, len(fetched))
	for _, want := range []string{
		"500 copies of",
		"+496 more copies",
		"<h3>59 more groups</h3>",
		"<h3>500 more disagreements</h3>",
		"+20 more disagreements, not listed here",
		"1000 listed objects are not in the clean table",
		"+500 more <code>rejected</code>, not listed here",
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	js, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if len(js) > 1<<20 {
		t.Errorf("summary.json is %d KB, want at most 1 MB", len(js)>>10)
	}
	s := r.Summary
	if s.Duplicates.Groups != 99 || s.Duplicates.Surplus != 99*499 || len(s.Duplicates.List) != 99 || s.Duplicates.List[0].Copies != 500 || len(s.Duplicates.List[0].Paths) != 4 {
		t.Errorf("duplicates: %d groups, %d surplus, %d listed", s.Duplicates.Groups, s.Duplicates.Surplus, len(s.Duplicates.List))
	}
	if s.Totals.Disagreements != 600 || len(s.Disagreements) != 580 || s.Excluded.Total != 1000 || len(s.Excluded.Listed) != 500 || s.Excluded.Unlisted != 500 {
		t.Errorf("disagreements %d (%d listed), excluded %d (%d listed, %d more)", s.Totals.Disagreements, len(s.Disagreements), s.Excluded.Total, len(s.Excluded.Listed), s.Excluded.Unlisted)
	}

	// Smaller caps: fewer fetches, and the groups past the table counted.
	fetched = map[string]int{}
	r = build(t, in, Options{Fetch: fetch, GroupCopies: 2, Groups: 3, Disagreements: 5, TableRows: 10})
	if len(fetched) != 3+5 {
		t.Errorf("fetched %d images with caps 3 and 5, want 8", len(fetched))
	}
	page, err = r.HTML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"+498 more copies", "<h3>10 more groups</h3>", "+86 more groups, not listed here", "+585 more disagreements", "+990 more <code>rejected</code>, not listed here"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html (small caps) lacks %q", want)
		}
	}
}
