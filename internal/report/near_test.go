package report

import (
	"bytes"
	"strings"
	"testing"
)

// Near-duplicate groups: counted, capped like the duplicate groups (the
// first Groups with thumbnails, TableRows more in a table, the rest
// counted), members capped at GroupCopies; their excluded copies are
// shown in this section, not listed again among the exclusions.
func TestNearDuplicatesSection(t *testing.T) {
	var members []NearMember
	for g := int64(1); g <= 4; g++ {
		for m := range 3 {
			sim := 1.0
			if m > 0 {
				sim = 0.99 - 0.001*float64(m)
			}
			item := string(rune('a'+g)) + string(rune('0'+m))
			members = append(members, NearMember{Group: g, Item: item, Path: "dir/" + item + ".png", Similarity: sim})
		}
	}
	in := Input{NearGroups: members, Excluded: []Excluded{{Key: "k", Path: "dir/b1.png", Reason: "near_duplicate", Detail: "near-duplicate group 1"}}}
	r := build(t, in, Options{Groups: 1, TableRows: 2, GroupCopies: 2})
	n := r.Summary.Near
	if n == nil || n.Groups != 4 || n.Copies != 8 || len(n.List) != 3 || n.List[0].Size != 3 || len(n.List[0].Members) != 2 ||
		n.List[0].Members[0].Item != "b0" || n.List[0].Members[1].Similarity != 0.989 {
		t.Fatalf("near %+v", n)
	}
	if e := r.Summary.Excluded; len(e.Listed) != 0 || len(e.Reasons) != 1 || e.Reasons[0].Reason != "near_duplicate" {
		t.Errorf("excluded %+v: near_duplicate should be counted, not listed", e)
	}
	page, err := r.HTML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`<section id="near-duplicates"`, "4 groups of near-duplicate images", "<h3>Group 1</h3>", "+1 more copies", "0.989",
		"<h3>2 more groups</h3>", "<td>dir/c0.png</td><td>dir/c1.png (0.989) +1 more</td>", "+1 more groups, not listed here",
	} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(string(page), "<h3>Group 2</h3>") {
		t.Errorf("group 2 shown with thumbnails; Groups is 1")
	}

	// Not known: said so; none: said so.
	if page, _ := build(t, Input{}, Options{}).HTML(); !bytes.Contains(page, []byte("given no near-duplicate groups")) {
		t.Errorf("no near input: page does not say so")
	}
	if page, _ := build(t, Input{NearGroups: []NearMember{}}, Options{}).HTML(); !bytes.Contains(page, []byte("No near-duplicate images found.")) {
		t.Errorf("no groups: page does not say so")
	}
}
