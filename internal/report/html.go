package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"path"
	"strconv"
	"strings"
	"sync"
)

//go:embed report.html.tmpl
var pageTemplate string

// page is parsed on first use, not at start-up: most runs write no report,
// and every millisecond of start-up is paid by every run.
var page = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("report").Funcs(template.FuncMap{
		"pct": pct,
		"f2":  f2,
		"sub": func(a, b int) int { return a - b },
	}).Parse(pageTemplate))
})

// SectionIDs are the ids of the report's sections, in page order.
var SectionIDs = []string{"overview", "counts", "duplicates", "agreement", "disagreements", "near-duplicates", "excluded", "splits", "sizes", "mean-images", "method"}

type view struct {
	S             *Summary
	Tiles         []tile
	CountsSVG     template.HTML
	GradeHeads    []gradeHead
	CountRows     []countRow
	CountTotal    []int
	Dups          []dupView // shown with thumbnails
	DupRows       []dupView // listed without
	DupMore       int       // neither
	Heatmaps      []heatmapView
	Kappas        []kappaView
	KappaSVG      template.HTML
	Disagreements []disView // shown with thumbnails
	DisRows       []disView // listed without
	DisMore       int       // neither
	Excluded      *excludedView
	Splits        *splitsView
	Near          *nearView
	RaterHeads    []string
	Props         []propView
	Warnings      []Warning
	Means         []meanView
	MeanOn        bool
	MeanSkipped   int
	NoSource      bool
	NoCrossCheck  bool
	ThumbWidth    int
}

type tile struct {
	Value, Label, Note string
	Warn, Fail         bool
}

type gradeHead struct {
	Name  string
	Style template.CSS
}

type countRow struct {
	Rater  string
	Style  template.CSS
	Cells  []Count
	Files  int
	Images int
}

type thumbView struct {
	URI  template.URL
	W, H int
	Alt  string
	Err  string
}

type copyView struct {
	Path  string
	Base  string
	Kept  bool
	Grade string
	Thumb thumbView
}

type dupView struct {
	Rater, Grades, Item, ItemShort string
	Conflict                       bool
	Copies                         []copyView
	N, More                        int // copies in all, and beyond those shown
}

type heatmapView struct {
	A, B string
	SVG  template.HTML
}

type kappaView struct {
	A, B, N, Observed             string
	Unweighted, Linear, Quadratic string
}

type chip struct {
	Rater, Text string
	Style       template.CSS
	Missing     bool
	Paths       []string
	More        int // copies beyond Paths
}

type disView struct {
	Item, ItemShort string
	Thumb           thumbView
	Chips           []chip
}

type propView struct {
	Name, Lower      string
	SVG              template.HTML
	Values           []string
	Rows             []propRow
	Single           string
	Unknown          int
	Guess, Baseline  string
	HasGuess, IsSize bool
}

type propRow struct {
	Grade  string
	Warn   bool
	Counts []int
	Images int
}

type meanView struct {
	Grade  string
	Images int
	Thumb  thumbView
}

// HTML renders report.html.
func (r *Report) HTML() ([]byte, error) {
	s := &r.Summary
	v := view{S: s, NoSource: r.noSource, NoCrossCheck: !s.CrossCheck, ThumbWidth: r.opt.ThumbWidth, Warnings: s.Warnings}

	// Overview tiles.
	dis := strconv.Itoa(s.Totals.Disagreements)
	v.Tiles = []tile{
		{Value: strconv.Itoa(s.Totals.Files), Label: "files", Note: fmt.Sprintf("%d raters", len(s.Raters))},
		{Value: strconv.Itoa(s.Totals.Images), Label: "distinct images", Note: "by content hash"},
		{Value: strconv.Itoa(s.Duplicates.Groups), Label: "duplicate groups", Note: fmt.Sprintf("%d surplus files", s.Duplicates.Surplus), Warn: s.Duplicates.Conflicting > 0},
	}
	if s.CrossCheck {
		v.Tiles = append(v.Tiles, tile{Value: dis, Label: "disagreements", Note: "items graded differently"})
	}
	if e := s.Excluded; e != nil {
		v.Tiles = append(v.Tiles, tile{Value: strconv.Itoa(e.Total), Label: "excluded", Note: "listed objects not in clean"})
	}
	if a := s.Splits; a != nil {
		t := tile{Value: strconv.Itoa(a.Groups), Label: "split groups", Note: "no group crosses splits"}
		if a.Leaks > 0 {
			t.Note, t.Fail = fmt.Sprintf("%d group values cross splits", a.Leaks), true
		}
		v.Tiles = append(v.Tiles, t)
	}
	for _, p := range s.Agreement.Pairs {
		if len(s.Agreement.Pairs) > 1 {
			break
		}
		v.Tiles = append(v.Tiles, tile{Value: valueOr(p.Quadratic.Value), Label: "quadratic kappa", Note: "95% CI " + ciText(p.Quadratic)})
	}
	v.Tiles = append(v.Tiles, tile{Value: strconv.Itoa(len(s.Warnings)), Label: "warnings", Note: "property ↔ grade", Warn: len(s.Warnings) > 0})

	// Counts.
	v.CountsSVG = r.countsChart()
	for gi, g := range s.Grades {
		v.GradeHeads = append(v.GradeHeads, gradeHead{Name: r.gradeName(g.Grade), Style: chipStyle(gi)})
	}
	v.CountTotal = make([]int, len(s.Grades)*2)
	for ri, rater := range s.Raters {
		row := countRow{Rater: rater, Style: template.CSS("background:" + pick(raterPalette, ri))}
		row.Cells = s.Counts[ri*len(s.Grades) : (ri+1)*len(s.Grades)]
		for gi, c := range row.Cells {
			row.Files += c.Files
			row.Images += c.Images
			v.CountTotal[2*gi] += c.Files
			v.CountTotal[2*gi+1] += c.Images
		}
		v.CountRows = append(v.CountRows, row)
	}

	// Duplicates.
	for n, g := range s.Duplicates.List {
		d := dupView{Rater: g.Rater, Item: g.Item, ItemShort: shortID(g.Item), Conflict: g.Conflict, N: g.Copies, More: g.Copies - len(g.Paths)}
		var names []string
		for _, gr := range g.Grades {
			names = append(names, r.gradeName(gr))
		}
		d.Grades = strings.Join(names, ", ")
		for i, p := range g.Paths {
			c := copyView{Path: p, Base: path.Base(p), Kept: i == 0, Grade: r.gradeName(g.grades[i])}
			if n < r.opt.Groups {
				c.Thumb = r.thumbView(g.Item, p)
			}
			d.Copies = append(d.Copies, c)
		}
		if n < r.opt.Groups {
			v.Dups = append(v.Dups, d)
		} else {
			v.DupRows = append(v.DupRows, d)
		}
	}
	v.DupMore = s.Duplicates.Groups - len(s.Duplicates.List)

	// Agreement.
	for _, p := range s.Agreement.Pairs {
		v.Heatmaps = append(v.Heatmaps, heatmapView{A: p.RaterA, B: p.RaterB, SVG: r.heatmap(p.RaterA, p.RaterB)})
		v.Kappas = append(v.Kappas, kappaView{
			A: p.RaterA, B: p.RaterB, N: strconv.FormatInt(p.N, 10), Observed: pctOr(p.Observed),
			Unweighted: interval(p.Unweighted), Linear: interval(p.Linear), Quadratic: interval(p.Quadratic),
		})
	}
	if len(s.Agreement.Pairs) > 0 {
		v.KappaSVG = r.kappaChart()
	}

	// Disagreements.
	v.RaterHeads = s.Raters
	for n, d := range s.Disagreements {
		dv := disView{Item: d.Item, ItemShort: shortID(d.Item)}
		if n < r.opt.Disagreements {
			dv.Thumb = r.thumbView(d.Item, shortID(d.Item))
		}
		for _, rater := range s.Raters {
			g, ok := d.Grades[rater]
			c := chip{Rater: rater, Paths: d.Paths[rater], More: d.Copies[rater] - len(d.Paths[rater])}
			if !ok || g == nil {
				c.Text, c.Missing = "not graded", true
			} else {
				c.Text = r.gradeName(*g)
				c.Style = chipStyle(r.gradeIndex(*g))
			}
			dv.Chips = append(dv.Chips, c)
		}
		if n < r.opt.Disagreements {
			v.Disagreements = append(v.Disagreements, dv)
		} else {
			v.DisRows = append(v.DisRows, dv)
		}
	}
	v.DisMore = s.Totals.Disagreements - len(s.Disagreements)
	v.Excluded = excludedOf(s.Excluded, s.Near != nil)
	v.Near = r.nearOf(s.Near)
	v.Splits = r.splitsOf(s.Splits)

	// Properties.
	for _, p := range s.Properties {
		warned := map[int64]bool{}
		for _, w := range s.Warnings {
			if w.Property == p.Name {
				warned[w.Grade] = true
			}
		}
		pv := propView{Name: capitalize(p.Name), Lower: p.Name, Values: p.Values, Unknown: p.Unknown, IsSize: p.Name == "size"}
		switch len(p.Values) {
		case 0:
			pv.Single = fmt.Sprintf("No image has a known %s.", p.Name)
		case 1:
			pv.Single = fmt.Sprintf("All %d images: %s.", s.Totals.Observations-p.Unknown, p.Values[0])
			if p.Unknown > 0 {
				pv.Single = fmt.Sprintf("All %d images with a known %s: %s (%d unknown).", s.Totals.Observations-p.Unknown, p.Name, p.Values[0], p.Unknown)
			}
		default:
			pv.SVG = r.propertyChart(p, warned)
			pv.HasGuess = true
			pv.Guess, pv.Baseline = pct(p.GuessAccuracy), pct(p.BaselineAccuracy)
		}
		for _, d := range p.ByGrade {
			pv.Rows = append(pv.Rows, propRow{Grade: r.gradeName(d.Grade), Warn: warned[d.Grade], Counts: d.Counts, Images: d.Images})
		}
		v.Props = append(v.Props, pv)
	}

	// Mean images.
	if m := s.MeanImages; m != nil {
		v.MeanOn, v.MeanSkipped = true, m.Skipped
		for _, g := range m.Grades {
			t := r.means[g.Grade]
			v.Means = append(v.Means, meanView{Grade: r.gradeName(g.Grade), Images: g.Images, Thumb: thumbView{
				URI: template.URL(t.URI), W: t.W, H: t.H, Alt: "mean image of grade " + r.gradeName(g.Grade),
			}})
		}
	}

	var b bytes.Buffer
	if err := page().Execute(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (r *Report) thumbView(item, alt string) thumbView {
	t, ok := r.thumbs[item]
	switch {
	case r.noSource:
		return thumbView{Alt: alt, Err: "no source to fetch from"}
	case !ok:
		return thumbView{Alt: alt, Err: "not fetched"}
	case t.Err != "":
		return thumbView{Alt: alt, Err: t.Err}
	}
	return thumbView{URI: template.URL(t.URI), W: t.W, H: t.H, Alt: alt} //nolint:gosec // a data: URI we encoded
}

func (r *Report) gradeIndex(g int64) int {
	for i, x := range r.Summary.Grades {
		if x.Grade == g {
			return i
		}
	}
	return 0
}

func chipStyle(i int) template.CSS {
	return template.CSS("background:" + pick(gradePalette, i))
}

// shortID shortens a content id (sha256:md5) to its first 12 hex digits.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12] + "…"
	}
	return id
}

func valueOr(v *float64) string {
	if v == nil {
		return "—"
	}
	return f2(*v)
}

func pctOr(v *float64) string {
	if v == nil {
		return "—"
	}
	return strconv.FormatFloat(*v*100, 'f', 1, 64) + "%"
}

func ciText(iv Interval) string {
	if iv.Lo == nil || iv.Hi == nil {
		return "—"
	}
	return f2(*iv.Lo) + "–" + f2(*iv.Hi)
}
