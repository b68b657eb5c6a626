package stages

import (
	"strings"
	"testing"
)

// fill rebuilds a path from a layout and field values, reading the layout
// the way ParseLayout does: "{name}" or "{name:regexp}" is a field, all
// else literal.
func fill(layout string, vals []string) string {
	var b strings.Builder
	n := 0
	for {
		open := strings.IndexByte(layout, '{')
		if open < 0 {
			b.WriteString(layout)
			return b.String()
		}
		end := fieldEnd(layout[open:])
		b.WriteString(layout[:open])
		b.WriteString(vals[n])
		n++
		layout = layout[open+end+1:]
	}
}

// FuzzLayout: ParseLayout and Match never panic; a match fills every field
// with a non-empty value free of '/', and the layout filled with those
// values is the path again.
func FuzzLayout(f *testing.F) {
	for _, s := range [][2]string{
		{"{expert}/{severity}/{file}", "MedicalExpert-I/0Normal/NormalG0 (1).png"},
		{"{expert}/{severity}/{file}", "MedicalExpert-I/2Mild/MildG2 (3, copy).png"},
		{"{expert}/{severity}/{file}", "MedicalExpert-II/1Doubtful/DoubtfulG1 (12) recheck.png"},
		{"{expert}/{severity}/{stem} ({n}).png", "MedicalExpert-I/2Mild/MildG2 (3, copy).png"},
		{"scans/{rater}/KL-{kl}/{name}", "scans/a/KL-2/x.png"},
		{"[{a}]+.{b}", "[x]+.y"},
		{"{a}.{b}", "x.y.z"},
		{"{a}\uFFFD{b}", "x\xffy"},
		{"{a}{b}", "ab"},
		{"{g}/{patient:[0-9]{7}}{side}.png", "3/9000296L.png"},
		{"{a:.*}{b}", "x/y"},
		{"{a:\\}}{b}", "}x"},
		{"{a", "a"},
		{"}{a}", "}a"},
		{"\xff{a}", "\xffa"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, layout, path string) {
		l, err := ParseLayout(layout)
		if err != nil {
			if l != nil {
				t.Fatalf("ParseLayout(%q) returned a layout and an error", layout)
			}
			return
		}
		if len(l.Fields) == 0 {
			t.Fatalf("ParseLayout(%q): no fields and no error", layout)
		}
		vals, ok := l.Match(path)
		if !ok {
			if vals != nil {
				t.Fatalf("Match(%q) = %q without a match", path, vals)
			}
			return
		}
		if len(vals) != len(l.Fields) {
			t.Fatalf("%q.Match(%q) = %d values for %d fields", layout, path, len(vals), len(l.Fields))
		}
		for i, v := range vals {
			if v == "" || strings.Contains(v, "/") {
				t.Fatalf("%q.Match(%q): field %s = %q", layout, path, l.Fields[i], v)
			}
		}
		if got := fill(layout, vals); got != path {
			t.Fatalf("%q.Match(%q) = %q, which fills in as %q", layout, path, vals, got)
		}
	})
}
