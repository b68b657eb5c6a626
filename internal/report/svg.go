package report

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// Colours. Grades run from cool to warm (Kellgren–Lawrence 0..4); raters
// and property values take a categorical palette.
var (
	gradePalette = []string{"#3b7dd8", "#4fae9b", "#d9a93c", "#e07b39", "#c4463a", "#8e6cbf", "#6f8a3c", "#b5577d"}
	raterPalette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f"}
	valuePalette = []string{"#5b8cc0", "#e8a33d", "#7bb36b", "#c7707c", "#8e7cc3", "#5fb3b3", "#a0a0a0", "#d4b483"}
)

func pick(p []string, i int) string { return p[((i%len(p))+len(p))%len(p)] }

// svgDoc accumulates one inline SVG element.
type svgDoc struct{ b strings.Builder }

func newSVG(w, h int, label string) *svgDoc {
	s := &svgDoc{}
	fmt.Fprintf(&s.b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`, w, h, w, h, esc(label))
	fmt.Fprintf(&s.b, `<title>%s</title>`, esc(label))
	return s
}

func (s *svgDoc) raw(format string, args ...any) { fmt.Fprintf(&s.b, format, args...) }

// text writes a text element; anchor is start, middle or end.
func (s *svgDoc) text(x, y float64, anchor, class, txt string) {
	fmt.Fprintf(&s.b, `<text x="%s" y="%s" text-anchor="%s" class="%s">%s</text>`, num(x), num(y), anchor, class, esc(txt))
}

func (s *svgDoc) done() template.HTML {
	s.b.WriteString(`</svg>`)
	return template.HTML(s.b.String()) //nolint:gosec // every text goes through esc
}

func esc(s string) string { return html.EscapeString(s) }

// num formats a coordinate with at most one decimal.
func num(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

// niceMax rounds a maximum up to 1, 2 or 5 × 10^k and returns the tick step.
func niceMax(v float64) (top, step float64) {
	if v <= 0 {
		return 1, 1
	}
	raw := v / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	step = math.Max(step, 1) // counts: whole ticks
	return math.Ceil(v/step) * step, step
}

// countsChart draws files per rater and grade as grouped bars.
func (r *Report) countsChart() template.HTML {
	s := &r.Summary
	const W, H, left, right, top, bottom = 1040, 300, 52, 16, 40, 44
	k, m := len(s.Grades), len(s.Raters)
	svg := newSVG(W, H, "Files per rater and grade")
	if k == 0 || m == 0 {
		svg.text(W/2, H/2, "middle", "muted", "no rows")
		return svg.done()
	}
	maxN := 0
	for _, c := range s.Counts {
		maxN = max(maxN, c.Files)
	}
	yTop, step := niceMax(float64(maxN))
	plotW, plotH := float64(W-left-right), float64(H-top-bottom)
	y := func(v float64) float64 { return top + plotH - v/yTop*plotH }
	for v := 0.0; v <= yTop+1e-9; v += step {
		svg.raw(`<line x1="%d" x2="%d" y1="%s" y2="%s" class="grid"/>`, left, W-right, num(y(v)), num(y(v)))
		svg.text(left-8, y(v)+4, "end", "tick", strconv.FormatFloat(v, 'f', -1, 64))
	}
	groupW := plotW / float64(k)
	barW := math.Min(40, groupW*0.78/float64(m))
	for gi, g := range s.Grades {
		x0 := left + groupW*float64(gi) + (groupW-barW*float64(m))/2
		for ri, rater := range s.Raters {
			c := s.Counts[ri*k+gi]
			x := x0 + barW*float64(ri)
			svg.raw(`<rect x="%s" y="%s" width="%s" height="%s" fill="%s" rx="2"><title>%s, grade %s: %d files (%d distinct images)</title></rect>`,
				num(x+1), num(y(float64(c.Files))), num(barW-2), num(plotH-(y(float64(c.Files))-top)), pick(raterPalette, ri),
				esc(rater), esc(r.gradeName(g.Grade)), c.Files, c.Images)
			svg.text(x+barW/2, y(float64(c.Files))-4, "middle", "value", strconv.Itoa(c.Files))
		}
		svg.text(left+groupW*(float64(gi)+0.5), H-bottom+20, "middle", "label", r.gradeName(g.Grade))
	}
	svg.raw(`<line x1="%d" x2="%d" y1="%s" y2="%s" class="axis"/>`, left, W-right, num(y(0)), num(y(0)))
	// Legend, top left.
	x := float64(left)
	for ri, rater := range s.Raters {
		svg.raw(`<rect x="%s" y="12" width="12" height="12" rx="2" fill="%s"/>`, num(x), pick(raterPalette, ri))
		svg.text(x+18, 22, "start", "label", rater)
		x += 30 + 7.2*float64(len([]rune(rater)))
	}
	return svg.done()
}

// heatmap draws one pair's agreement matrix: agreeing cells in blue,
// disagreeing ones in red, darker for more items.
func (r *Report) heatmap(a, b string) template.HTML {
	s := &r.Summary
	grades := s.Grades
	k := len(grades)
	// The axis titles and row labels set the chart's size when they are
	// wider than the grid (one grade: one cell).
	const cell, top, pad = 64, 78, 16
	labelW := 0.0
	for _, g := range grades {
		labelW = math.Max(labelW, textWidth(r.gradeName(g.Grade), 12, false))
	}
	grid := float64(cell * k)
	colTitle, rowTitle := textWidth(b, 13, true), textWidth(a, 13, true)
	// The row title runs up the left side when the grid is tall enough,
	// else across, above the row labels.
	across := rowTitle+8 > grid
	left := int(math.Max(128, 30+labelW+10))
	if across {
		left = int(math.Max(math.Max(128, 14+labelW+10), 14+rowTitle+10))
	}
	W := left + int(math.Ceil(math.Max(grid, colTitle))) + pad
	H := top + cell*k + pad
	svg := newSVG(W, H, fmt.Sprintf("Agreement matrix, %s (rows) against %s (columns)", a, b))
	idx := map[int64]int{}
	for i, g := range grades {
		idx[g.Grade] = i
	}
	counts := make([][]int64, k)
	for i := range counts {
		counts[i] = make([]int64, k)
	}
	var maxDiag, maxOff int64
	for _, c := range s.Agreement.Matrix {
		if c.RaterA != a || c.RaterB != b {
			continue
		}
		i, j := idx[c.GradeA], idx[c.GradeB]
		counts[i][j] += c.Count
	}
	for i := range counts {
		for j, n := range counts[i] {
			if i == j {
				maxDiag = max(maxDiag, n)
			} else {
				maxOff = max(maxOff, n)
			}
		}
	}
	// Each title centred on the grid, moved inwards where it would leave the chart.
	cx := clamp(float64(left)+grid/2, colTitle/2+4, float64(W)-colTitle/2-4)
	svg.text(cx, 18, "middle", "axis-title", b)
	if across {
		svg.text(float64(left)-10, top-10, "end", "axis-title", a)
	} else {
		cy := top + grid/2
		svg.raw(`<text x="14" y="%s" text-anchor="middle" class="axis-title" transform="rotate(-90 14 %s)">%s</text>`, num(cy), num(cy), esc(a))
	}
	for i, g := range grades {
		n, rest := r.gradeParts(g.Grade)
		svg.text(float64(left)+float64(cell*i)+cell/2, top-26, "middle", "label strong", n)
		svg.text(float64(left)+float64(cell*i)+cell/2, top-10, "middle", "tick", shorten(rest, 10))
		svg.text(float64(left)-10, top+float64(cell*i)+cell/2+4, "end", "label", r.gradeName(g.Grade))
	}
	for i := range grades {
		for j := range grades {
			n := counts[i][j]
			x, y := left+cell*j, top+cell*i
			fill, ink := "#f4f6f9", "muted"
			switch {
			case n > 0 && i == j:
				t := float64(n) / float64(maxDiag)
				fill = mix("#dbe8f7", "#1d4f91", t)
				if t > 0.45 {
					ink = "on-dark"
				} else {
					ink = "value"
				}
			case n > 0:
				t := float64(n) / float64(maxOff)
				fill = mix("#fbd9d3", "#b2302a", t)
				if t > 0.6 {
					ink = "on-dark"
				} else {
					ink = "value"
				}
			}
			svg.raw(`<rect x="%d" y="%d" width="%d" height="%d" fill="%s" stroke="#fff" stroke-width="2"><title>%s %s, %s %s: %d</title></rect>`,
				x, y, cell, cell, fill, esc(a), esc(r.gradeName(grades[i].Grade)), esc(b), esc(r.gradeName(grades[j].Grade)), n)
			label := strconv.FormatInt(n, 10)
			if n == 0 {
				label = "·"
			}
			svg.text(float64(x)+cell/2, float64(y)+cell/2+5, "middle", ink+" cell", label)
		}
	}
	return svg.done()
}

// mix interpolates two #rrggbb colours.
func mix(from, to string, t float64) string {
	t = math.Max(0, math.Min(1, t))
	p := func(s string, i int) float64 { v, _ := strconv.ParseUint(s[1+2*i:3+2*i], 16, 8); return float64(v) }
	out := "#"
	for i := range 3 {
		out += fmt.Sprintf("%02x", int(math.Round(p(from, i)+(p(to, i)-p(from, i))*t)))
	}
	return out
}

// kappaChart draws every pair's kappas as points with 95 % intervals on a
// common axis, over the conventional Landis & Koch (1977) bands.
func (r *Report) kappaChart() template.HTML {
	pairs := r.Summary.Agreement.Pairs
	const W, left, right, top, rowH, headH = 540, 92, 126, 46, 26, 26
	H := top + (3*rowH+headH)*max(len(pairs), 1) + 28
	svg := newSVG(W, H, "Cohen's kappa with 95% confidence intervals")
	lo := 0.0
	for _, p := range pairs {
		for _, iv := range []Interval{p.Unweighted, p.Linear, p.Quadratic} {
			if iv.Lo != nil {
				lo = math.Min(lo, math.Floor(*iv.Lo*5)/5)
			}
		}
	}
	plotW := float64(W - left - right)
	x := func(v float64) float64 { return left + (v-lo)/(1-lo)*plotW }
	bottom := float64(H - 28)
	bands := []struct {
		from, to    float64
		name, name2 string
		fill        string
	}{
		{0.2, 0.4, "fair", "", "#f6f8fb"}, {0.4, 0.6, "moder-", "ate", "#eef2f7"},
		{0.6, 0.8, "substan-", "tial", "#e6edf6"}, {0.8, 1, "almost", "perfect", "#dde8f5"},
	}
	for _, band := range bands {
		cx := (x(band.from) + x(band.to)) / 2
		if band.name2 == "" {
			svg.text(cx, top-12, "middle", "tick", band.name)
		} else {
			svg.text(cx, top-24, "middle", "tick", band.name)
			svg.text(cx, top-12, "middle", "tick", band.name2)
		}
	}
	y := float64(top)
	for pi, p := range pairs {
		svg.text(4, y+headH-9, "start", "label strong", shorten(p.RaterA+" × "+p.RaterB, 52)+fmt.Sprintf("  (n = %d)", p.N))
		y += headH
		for _, band := range bands {
			svg.raw(`<rect x="%s" y="%s" width="%s" height="%d" fill="%s"/>`, num(x(band.from)), num(y), num(x(band.to)-x(band.from)), 3*rowH, band.fill)
		}
		for v := lo; v <= 1+1e-9; v += 0.2 {
			svg.raw(`<line x1="%s" x2="%s" y1="%s" y2="%s" class="grid"/>`, num(x(v)), num(x(v)), num(y), num(y+3*rowH))
		}
		for si, iv := range []Interval{p.Unweighted, p.Linear, p.Quadratic} {
			cy := y + rowH/2
			name := []string{"unweighted", "linear", "quadratic"}[si]
			svg.text(float64(left)-10, cy+4, "end", "label", name)
			y += rowH
			if iv.Value == nil {
				svg.text(x(lo)+6, cy+4, "start", "muted", "undefined")
				continue
			}
			color := pick(raterPalette, pi)
			if iv.Lo != nil && iv.Hi != nil {
				svg.raw(`<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="%s" stroke-width="3" stroke-linecap="round"/>`, num(x(*iv.Lo)), num(x(*iv.Hi)), num(cy), num(cy), color)
			}
			svg.raw(`<circle cx="%s" cy="%s" r="6" fill="%s" stroke="#fff" stroke-width="1.5"><title>%s</title></circle>`, num(x(*iv.Value)), num(cy), color, esc(name+" kappa "+interval(iv)))
			svg.text(float64(W-right)+10, cy+4, "start", "value", interval(iv))
		}
	}
	svg.raw(`<line x1="%d" x2="%d" y1="%s" y2="%s" class="axis"/>`, left, W-right, num(bottom), num(bottom))
	for v := lo; v <= 1+1e-9; v += 0.2 {
		svg.text(x(v), bottom+16, "middle", "tick", strconv.FormatFloat(math.Round(v*10)/10, 'f', 1, 64))
	}
	return svg.done()
}

// propertyChart draws, per grade, the share of each property value as a
// 100 % stacked bar; grades under a warning are marked.
func (r *Report) propertyChart(p Property, warned map[int64]bool) template.HTML {
	const W, left, right, top, rowH, barH = 1040, 150, 70, 16, 34, 22
	n := len(p.ByGrade)
	legendY := top + rowH*n + 14
	H := legendY + 24
	svg := newSVG(W, H, fmt.Sprintf("Image %s per grade", p.Name))
	plotW := float64(W - left - right)
	for gi, d := range p.ByGrade {
		y := float64(top + rowH*gi)
		label := "grade " + r.gradeName(d.Grade)
		class := "label"
		if warned[d.Grade] {
			label = "⚠ " + label
			class = "label warn"
		}
		svg.text(float64(left)-10, y+barH/2+4, "end", class, label)
		if d.Images == 0 {
			svg.text(float64(left)+4, y+barH/2+4, "start", "muted", "no images")
			continue
		}
		x := float64(left)
		for vi, c := range d.Counts {
			if c == 0 {
				continue
			}
			w := float64(c) / float64(d.Images) * plotW
			svg.raw(`<rect x="%s" y="%s" width="%s" height="%d" fill="%s"><title>grade %s, %s %s: %d of %d images</title></rect>`,
				num(x), num(y), num(w), barH, pick(valuePalette, vi), esc(r.gradeName(d.Grade)), esc(p.Name), esc(p.Values[vi]), c, d.Images)
			if w > 44 {
				svg.text(x+w/2, y+barH/2+4, "middle", "on-dark small", pct(float64(c)/float64(d.Images)))
			}
			x += w
		}
		svg.text(float64(W-right)+8, y+barH/2+4, "start", "tick", fmt.Sprintf("n = %d", d.Images))
	}
	x := float64(left)
	for vi, v := range p.Values {
		svg.raw(`<rect x="%s" y="%d" width="12" height="12" rx="2" fill="%s"/>`, num(x), legendY, pick(valuePalette, vi))
		svg.text(x+18, float64(legendY)+10, "start", "label", v)
		x += 34 + 7.2*float64(len([]rune(v)))
	}
	return svg.done()
}

// textWidth is a generous estimate of a text's width in pixels at a font
// size (DejaVu Sans, the widest of the fonts the page names, averages
// about 0.6 em per character, bold 0.66).
func textWidth(s string, px float64, bold bool) float64 {
	em := 0.62
	if bold {
		em = 0.68
	}
	return float64(len([]rune(s))) * px * em
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(v, hi)) }

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// interval renders "0.87 [0.76, 0.98]".
func interval(iv Interval) string {
	if iv.Value == nil {
		return "undefined"
	}
	s := f2(*iv.Value)
	if iv.Lo != nil && iv.Hi != nil {
		s += " [" + f2(*iv.Lo) + ", " + f2(*iv.Hi) + "]"
	}
	return s
}

func f2(v float64) string {
	s := strconv.FormatFloat(v, 'f', 2, 64)
	if s == "-0.00" {
		s = "0.00"
	}
	return s
}
