package report_test

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kneepipe/kneepipe/internal/report"
)

// The figures of the bundled sample, as testdata/README.md lays them out.
func TestSampleSummary(t *testing.T) {
	files := sampleFiles(t, "")
	if len(files) != 2 || files["report.html"] == nil || files["summary.json"] == nil {
		t.Fatalf("files %v", len(files))
	}
	var s report.Summary
	if err := json.Unmarshal(files["summary.json"], &s); err != nil {
		t.Fatal(err)
	}
	if s.Totals != (report.Totals{Files: 99, Images: 46, Observations: 91, Disagreements: 5}) {
		t.Errorf("totals %+v", s.Totals)
	}
	if strings.Join(s.Raters, ",") != "MedicalExpert-I,MedicalExpert-II" || len(s.Grades) != 5 || s.Grades[4].Label != "4Severe" {
		t.Errorf("raters %v grades %+v", s.Raters, s.Grades)
	}
	// Rows per expert and grade (the notebook's class tables).
	wantFiles := []int{12, 9, 10, 11, 8, 10, 12, 8, 11, 8}
	// Distinct images: I drops B2, M3, T5×2; II drops N4, B2, T5×2.
	wantImages := []int{12, 8, 9, 9, 8, 9, 11, 8, 9, 8}
	for i, c := range s.Counts {
		if c.Files != wantFiles[i] || c.Images != wantImages[i] {
			t.Errorf("%s grade %d: %d files, %d images; want %d, %d", c.Rater, c.Grade, c.Files, c.Images, wantFiles[i], wantImages[i])
		}
	}
	d := s.Duplicates
	if d.Groups != 6 || d.Surplus != 8 || d.Conflicting != 0 {
		t.Errorf("duplicates %d groups, %d surplus, %d conflicting", d.Groups, d.Surplus, d.Conflicting)
	}
	if g := d.List[2]; g.Rater != "MedicalExpert-I" || strings.Join(g.Paths, "|") !=
		"MedicalExpert-I/3Moderate/ModerateG3 (10).png|MedicalExpert-I/3Moderate/ModerateG3 (11).png|MedicalExpert-I/3Moderate/ModerateG3 (2).png" {
		t.Errorf("T5 under I: %+v", g)
	}
	if len(s.Agreement.Pairs) != 1 || len(s.Agreement.Matrix) != 7 {
		t.Fatalf("agreement %+v", s.Agreement)
	}
	p := s.Agreement.Pairs[0]
	// κ by hand: p_o = 41/45, p_e = (12·9 + 8·11 + 9·8 + 8·9 + 8·8)/45² = 404/2025.
	pe := 404.0 / 2025
	if p.N != 45 || math.Abs(*p.Observed-41.0/45) > 1e-12 || math.Abs(*p.Unweighted.Value-(41.0/45-pe)/(1-pe)) > 1e-12 {
		t.Errorf("pair n %d, observed %v, kappa %v", p.N, *p.Observed, *p.Unweighted.Value)
	}
	if !(*p.Unweighted.Lo < *p.Unweighted.Value && *p.Quadratic.Hi <= 1 && *p.Quadratic.Value > *p.Linear.Value) {
		t.Errorf("intervals %v..%v, quadratic %v, linear %v", *p.Unweighted.Lo, *p.Unweighted.Hi, *p.Quadratic.Value, *p.Linear.Value)
	}
	if len(s.Disagreements) != 5 {
		t.Fatalf("%d disagreements, want 5 (X1-X3, Y1, and U1 graded by I only)", len(s.Disagreements))
	}
	missing := 0
	for _, x := range s.Disagreements {
		if x.Grades["MedicalExpert-II"] == nil {
			missing++
			if *x.Grades["MedicalExpert-I"] != 3 || x.Paths["MedicalExpert-I"][0] != "MedicalExpert-I/3Moderate/ModerateG3 (6).png" {
				t.Errorf("U1: %+v", x)
			}
		}
	}
	if missing != 1 {
		t.Errorf("%d disagreements lack a grade, want 1 (U1)", missing)
	}
	// Grade 4 has only the small size: the one warning.
	if len(s.Warnings) != 1 || s.Warnings[0].Grade != 4 || s.Warnings[0].Value != "300×162" || s.Warnings[0].Kind != "grade_one_value" {
		t.Errorf("warnings %+v", s.Warnings)
	}
	size := s.Properties[0]
	if strings.Join(size.Values, ",") != "300×162,640×161" || size.ByGrade[4].Counts[1] != 0 || size.ByGrade[0].Counts[1] != 7 {
		t.Errorf("sizes %+v", size)
	}
	if s.Thumbnails != (report.ThumbnailCount{Shown: 11, Failed: 0}) { // 6 groups (B2 twice) + 5 disagreements - shared + N9, N6
		t.Errorf("thumbnails %+v", s.Thumbnails)
	}
	// The planted near-duplicate: N6 rescanned from N9; N9 (listed first) is kept.
	if n := s.Near; n == nil || n.Groups != 1 || n.Copies != 1 || len(n.List) != 1 || len(n.List[0].Members) != 2 ||
		n.List[0].Members[0].Path != "MedicalExpert-I/0Normal/NormalG0 (12).png" || n.List[0].Members[1].Path != "MedicalExpert-I/0Normal/NormalG0 (8).png" ||
		n.List[0].Members[1].Similarity < 0.986 || n.List[0].Members[1].Similarity >= 1 {
		t.Errorf("near-duplicates %+v, want N9 kept and N6 its copy", n)
	}
	if s.MeanImages != nil {
		t.Errorf("mean images computed though off by default")
	}
	// Excluded: the 8 duplicate copies, X1-X3 and Y1 under both experts,
	// U1 graded by I only, N6 (a rescan of N9) under both; nothing
	// rejected or failed to list.
	want := []report.ReasonCount{{Reason: "duplicate", Objects: 8}, {Reason: "disagreement", Objects: 8}, {Reason: "missing_rater", Objects: 1}, {Reason: "near_duplicate", Objects: 2}}
	if e := s.Excluded; e == nil || e.Total != 19 || !slices.Equal(e.Reasons, want) || len(e.Listed) != 0 || e.Unlisted != 0 {
		t.Errorf("excluded %+v, want 19: %v", e, want)
	}
	page := string(files["report.html"])
	for _, want := range []string{"19 listed objects are not in the clean table", `<td><code>missing_rater</code></td><td>not graded by every rater (see <a href="#disagreements">disagreements</a>)</td><td class="n">1</td>`} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}

// Same inputs, same bytes: whatever the download concurrency, and run
// after run. The mean images take every image through the workers.
func TestSampleDeterministic(t *testing.T) {
	a := sampleFiles(t, "{mean_images: true, concurrency: 1}")
	b := sampleFiles(t, "{mean_images: true, concurrency: 32}")
	for _, name := range []string{"report.html", "summary.json"} {
		if !bytes.Equal(a[name], b[name]) {
			t.Errorf("%s differs between runs", name)
		}
	}
	var s report.Summary
	if err := json.Unmarshal(a["summary.json"], &s); err != nil {
		t.Fatal(err)
	}
	if s.MeanImages == nil || s.MeanImages.Skipped != 0 || s.MeanImages.Grades[4].Images != 8 || s.MeanImages.Grades[0].Images != 12 {
		t.Errorf("mean images %+v", s.MeanImages)
	}
}

// The page loads nothing: no scripts, links, imports or remote URLs, and
// every image is a data: URI.
func TestSampleSelfContained(t *testing.T) {
	page := string(sampleFiles(t, "{mean_images: true}")["report.html"])
	for _, bad := range []string{"<script", "<link", "@import", "url(", "<iframe", "<object", "https://", "//cdn"} {
		if strings.Contains(strings.ToLower(page), bad) {
			t.Errorf("report.html contains %q", bad)
		}
	}
	for _, m := range regexp.MustCompile(`(?i)\b(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		if !strings.HasPrefix(m[1], "data:image/png;base64,") && !strings.HasPrefix(m[1], "#") {
			t.Errorf("reference %.60q", m[1])
		}
	}
	// http:// only as the SVG namespace.
	if n, ns := strings.Count(page, "http://"), strings.Count(page, `xmlns="http://www.w3.org/2000/svg"`); n != ns {
		t.Errorf("%d http:// in the page, %d of them SVG namespaces", n, ns)
	}
	for _, id := range report.SectionIDs {
		if !strings.Contains(page, `<section id="`+id+`"`) {
			t.Errorf("section %s missing", id)
		}
	}
	if len(page) > 400<<10 {
		t.Errorf("report.html is %d KB: thumbnails not downscaled?", len(page)>>10)
	}
}
