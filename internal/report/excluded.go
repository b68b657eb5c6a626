package report

import (
	"maps"
	"slices"
	"sort"
)

// Exclusions counts the listed objects the clean table leaves out, per
// reason, and lists those no other section of the report shows (rejected,
// failed, ...).
type Exclusions struct {
	Total   int              `json:"total"`
	Reasons []ReasonCount    `json:"reasons"` // in pipeline order, unknown reasons last by name
	Listed  []ExcludedObject `json:"listed"`  // objects of reasons without a section: by reason, in listing order, at most Options.TableRows per reason
	// Unlisted counts the further objects of those reasons, beyond the caps.
	Unlisted int `json:"unlisted"`
}

// ReasonCount is the number of objects excluded for one reason.
type ReasonCount struct {
	Reason  string `json:"reason"`
	Objects int    `json:"objects"`
	Listed  int    `json:"listed"` // of them in Exclusions.Listed
}

// ExcludedObject is one excluded object as summary.json lists it.
type ExcludedObject struct {
	Key    string `json:"key"`
	Path   string `json:"path"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

// reasonInfo describes the exclusion reasons the exclusions stage gives,
// in pipeline order. A reason with a section is shown there (its objects
// are not listed again); any other reason, known or not, is listed in the
// exclusions section.
var reasonInfo = []struct {
	reason, what, section string
}{
	{"failed", "could not be fetched", ""},
	{"rejected", "rejected (not a usable image, or a path that does not fit the layout)", ""},
	{"duplicate", "a rater's second copy of the same bytes", "duplicates"},
	{"disagreement", "graded differently by the raters", "disagreements"},
	{"missing_rater", "not graded by every rater", "disagreements"},
	{"near_duplicate", "a near-duplicate of a kept image (resized, cropped, re-encoded...)", "near-duplicates"},
	{"unexplained", "not in clean, and no input says why", ""},
}

func reasonRank(reason string) int {
	for i, r := range reasonInfo {
		if r.reason == reason {
			return i
		}
	}
	return len(reasonInfo)
}

// reasonSection is the section that shows a reason's objects; "" for
// none. The near-duplicates section shows them only when the groups are
// known (near is true).
func reasonSection(reason string, near bool) string {
	if i := reasonRank(reason); i < len(reasonInfo) && (near || reasonInfo[i].section != "near-duplicates") {
		return reasonInfo[i].section
	}
	return ""
}

// exclusions summarises the excluded objects; nil when they are not known.
func exclusions(in []Excluded, limit int, near bool) *Exclusions {
	if in == nil {
		return nil
	}
	out := &Exclusions{Total: len(in), Reasons: []ReasonCount{}, Listed: []ExcludedObject{}}
	counts, listed := map[string]int{}, map[string]int{}
	for _, e := range in {
		counts[e.Reason]++
		if reasonSection(e.Reason, near) != "" {
			continue
		}
		if listed[e.Reason] == limit {
			out.Unlisted++
			continue
		}
		listed[e.Reason]++
		out.Listed = append(out.Listed, ExcludedObject{Key: e.Key, Path: e.Path, Reason: e.Reason, Detail: e.Detail})
	}
	for _, r := range slices.Sorted(maps.Keys(counts)) {
		out.Reasons = append(out.Reasons, ReasonCount{Reason: r, Objects: counts[r], Listed: listed[r]})
	}
	byRank := func(a, b string) bool {
		if ra, rb := reasonRank(a), reasonRank(b); ra != rb {
			return ra < rb
		}
		return a < b
	}
	sort.SliceStable(out.Reasons, func(a, b int) bool { return byRank(out.Reasons[a].Reason, out.Reasons[b].Reason) })
	sort.SliceStable(out.Listed, func(a, b int) bool { return byRank(out.Listed[a].Reason, out.Listed[b].Reason) })
	return out
}

type excludedView struct {
	Total    int
	Reasons  []reasonView
	Listed   []ExcludedObject
	Unlisted int
}

type reasonView struct {
	Reason, What, Section string
	Objects, More         int // More: objects of a reason without a section, beyond those listed
}

func excludedOf(e *Exclusions, near bool) *excludedView {
	if e == nil {
		return nil
	}
	v := &excludedView{Total: e.Total, Listed: e.Listed, Unlisted: e.Unlisted}
	for _, r := range e.Reasons {
		rv := reasonView{Reason: r.Reason, Objects: r.Objects, Section: reasonSection(r.Reason, near)}
		if rv.Section == "" {
			rv.More = r.Objects - r.Listed
		}
		if i := reasonRank(r.Reason); i < len(reasonInfo) {
			rv.What = reasonInfo[i].what
		}
		v.Reasons = append(v.Reasons, rv)
	}
	return v
}
