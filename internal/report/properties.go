package report

import (
	"fmt"
	"maps"
	"slices"
	"sort"
)

// property reads one categorical property of an observation; ok is false
// when it is unknown.
type property struct {
	name  string
	value func(Row) (string, bool)
}

var imageProperties = []property{
	{"size", func(r Row) (string, bool) {
		if !r.PNG {
			return "", false
		}
		return fmt.Sprintf("%d×%d", r.Width, r.Height), true
	}},
	{"pixel format", func(r Row) (string, bool) {
		if !r.PNG {
			return "", false
		}
		return pixelFormat(r.BitDepth, r.ColorType), true
	}},
}

// pixelFormat names a PNG bit depth and colour type.
func pixelFormat(depth, colorType int64) string {
	kind := map[int64]string{0: "grayscale", 2: "RGB", 3: "palette", 4: "grayscale+alpha", 6: "RGBA"}[colorType]
	if kind == "" {
		kind = fmt.Sprintf("colour type %d", colorType)
	}
	return fmt.Sprintf("%d-bit %s", depth, kind)
}

// properties tabulates every image property per grade over the
// observations and applies the "nearly determines" rules (see the package
// documentation).
func properties(obs []Row, grades []Grade, opt Options, name func(int64) string) ([]Property, []Warning) {
	props := []Property{}
	warnings := []Warning{}
	for _, p := range imageProperties {
		prop, w := tabulate(p, obs, grades, opt, name)
		props = append(props, prop)
		warnings = append(warnings, w...)
	}
	return props, warnings
}

func tabulate(p property, obs []Row, grades []Grade, opt Options, name func(int64) string) (Property, []Warning) {
	prop := Property{Name: p.name, Values: []string{}, ByGrade: []GradeDist{}}
	count := map[string]map[int64]int{} // value → grade → observations
	perValue := map[string]int{}
	perGrade := map[int64]int{}
	total := 0
	for _, o := range obs {
		v, ok := p.value(o)
		if !ok {
			prop.Unknown++
			continue
		}
		if count[v] == nil {
			count[v] = map[int64]int{}
		}
		count[v][o.Grade]++
		perValue[v]++
		perGrade[o.Grade]++
		total++
	}
	prop.Values = slices.Sorted(maps.Keys(perValue))
	sort.SliceStable(prop.Values, func(a, b int) bool { return perValue[prop.Values[a]] > perValue[prop.Values[b]] })
	for _, g := range grades {
		d := GradeDist{Grade: g.Grade, Images: perGrade[g.Grade], Counts: make([]int, len(prop.Values))}
		for i, v := range prop.Values {
			d.Counts[i] = count[v][g.Grade]
		}
		prop.ByGrade = append(prop.ByGrade, d)
	}
	if total == 0 {
		return prop, nil
	}
	right, baseline := 0, 0
	for _, v := range prop.Values {
		best := 0
		for _, n := range count[v] {
			best = max(best, n)
		}
		right += best
	}
	for _, n := range perGrade {
		baseline = max(baseline, n)
	}
	prop.GuessAccuracy = float64(right) / float64(total)
	prop.BaselineAccuracy = float64(baseline) / float64(total)
	if len(prop.Values) < 2 {
		return prop, nil
	}

	var byGrade, byValue []Warning
	covered := map[string]bool{} // values that drew a warning of kind 2
	// 2. A value nearly has one grade, which is not nearly everything.
	for _, v := range prop.Values {
		n := perValue[v]
		if n < opt.WarnMinImages {
			continue
		}
		var top int
		var g int64
		for _, gr := range grades {
			if c := count[v][gr.Grade]; c > top {
				top, g = c, gr.Grade
			}
		}
		share := float64(top) / float64(n)
		gradeShare := float64(perGrade[g]) / float64(total)
		if share < opt.WarnShare || gradeShare >= opt.WarnShare {
			continue
		}
		covered[v] = true
		byValue = append(byValue, Warning{
			Property: p.name, Kind: "value_one_grade", Grade: g, Value: v,
			Share: share, Images: n, OtherShare: gradeShare,
			Message: fmt.Sprintf("%s %s: %s of its %d images are grade %s, which is %s of all images. The %s gives the grade away.",
				capitalize(p.name), v, pct(share), n, name(g), pct(gradeShare), p.name),
		})
	}
	// 1. A grade nearly has one value, which the other grades do not,
	// unless every other value already drew a warning of kind 2 (which
	// then says the same thing better).
	for _, g := range grades {
		n := perGrade[g.Grade]
		if n < opt.WarnMinImages {
			continue
		}
		v, top := mode(prop.Values, func(v string) int { return count[v][g.Grade] })
		share := float64(top) / float64(n)
		others := total - n
		if share < opt.WarnShare || others == 0 {
			continue
		}
		otherShare := float64(perValue[v]-top) / float64(others)
		if otherShare >= opt.WarnShare {
			continue
		}
		explained := true
		for _, u := range prop.Values {
			if u != v && perValue[u] > count[u][g.Grade] && !covered[u] {
				explained = false
			}
		}
		if explained {
			continue
		}
		byGrade = append(byGrade, Warning{
			Property: p.name, Kind: "grade_one_value", Grade: g.Grade, Value: v,
			Share: share, Images: n, OtherShare: otherShare,
			Message: fmt.Sprintf("Grade %s: %s of its %d images have %s %s, against %s of the other grades' images. A model can learn the %s instead of what the image shows.",
				name(g.Grade), pct(share), n, p.name, v, pct(otherShare), p.name),
		})
	}
	return prop, append(byGrade, byValue...)
}

// mode returns the value with the highest count (ties: the first in
// values' order) and that count.
func mode(values []string, count func(string) int) (string, int) {
	best, n := "", -1
	for _, v := range values {
		if c := count(v); c > n {
			best, n = v, c
		}
	}
	return best, n
}

// pct renders a share as a whole percentage, never rounding a share below
// 1 up to 100 % or a share above 0 down to 0 %.
func pct(share float64) string {
	p := int(share*100 + 0.5)
	switch {
	case p == 100 && share < 1:
		p = 99
	case p == 0 && share > 0:
		return "<1%"
	}
	return fmt.Sprintf("%d%%", p)
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
