package report

import (
	"bytes"
	"reflect"
	"testing"
)

// Counts per reason in pipeline order (unknown reasons last); the objects
// of reasons without a section listed by reason, at most TableRows each;
// the others only counted.
func TestExclusionsSummary(t *testing.T) {
	in := Input{Excluded: []Excluded{
		{Key: "r1", Reason: "rejected", Detail: "empty object"},
		{Key: "d1", Reason: "duplicate"},
		{Key: "n1", Reason: "unheard_of", Detail: "a reason the report does not know"},
		{Key: "r2", Reason: "rejected", Detail: "bytes are not a PNG"},
		{Key: "f1", Path: "p/f1", Reason: "failed", Detail: "GET: 403 (1 attempts)"},
		{Key: "r3", Reason: "rejected", Detail: "empty object"},
		{Key: "m1", Reason: "missing_rater"},
	}}
	r := build(t, in, Options{TableRows: 2})
	e := r.Summary.Excluded
	wantReasons := []ReasonCount{
		{"failed", 1, 1}, {"rejected", 3, 2}, {"duplicate", 1, 0}, {"missing_rater", 1, 0}, {"unheard_of", 1, 1},
	}
	if e == nil || e.Total != 7 || !reflect.DeepEqual(e.Reasons, wantReasons) || e.Unlisted != 1 {
		t.Fatalf("excluded %+v, want reasons %v", e, wantReasons)
	}
	var keys []string
	for _, o := range e.Listed {
		keys = append(keys, o.Key)
	}
	if !reflect.DeepEqual(keys, []string{"f1", "r1", "r2", "n1"}) {
		t.Errorf("listed %v, want f1, r1, r2, n1", keys)
	}
	page, err := r.HTML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<td>p/f1</td><td><code>failed</code></td><td>GET: 403 (1 attempts)</td>", "+1 more <code>rejected</code>, not listed here", "<td><code>unheard_of</code></td><td></td><td class=\"n\">1</td>"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("page lacks %q", want)
		}
	}

	// Unknown: no section content; none: said so.
	if r := build(t, Input{}, Options{}); r.Summary.Excluded != nil {
		t.Errorf("excluded without an input: %+v", r.Summary.Excluded)
	}
	page, err = build(t, Input{Excluded: []Excluded{}}, Options{}).HTML()
	if err != nil || !bytes.Contains(page, []byte("Every listed object is in the clean table.")) {
		t.Errorf("no exclusions: page lacks the all-clear (%v)", err)
	}
}
