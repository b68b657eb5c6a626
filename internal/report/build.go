package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Summary is summary.json: every figure the report shows, machine-readable.
type Summary struct {
	Title         string          `json:"title"`
	Raters        []string        `json:"raters"`
	Grades        []Grade         `json:"grades"`
	Totals        Totals          `json:"totals"`
	Counts        []Count         `json:"counts"`
	Duplicates    Duplicates      `json:"duplicates"`
	Agreement     Agreement       `json:"agreement"`
	CrossCheck    bool            `json:"cross_check"`     // false: the raters were not compared (no agreement, no disagreements)
	Disagreements []Disagreed     `json:"disagreements"`   // the first Totals.Disagreements the report lists
	Excluded      *Exclusions     `json:"excluded"`        // null: not known
	Near          *NearDuplicates `json:"near_duplicates"` // null: not known
	Splits        *SplitAudit     `json:"splits"`          // the leakage audit; null: not known
	Properties    []Property      `json:"properties"`
	Warnings      []Warning       `json:"warnings"`
	MeanImages    *MeanImages     `json:"mean_images"`
	Thumbnails    ThumbnailCount  `json:"thumbnails"`
	Settings      Settings        `json:"settings"`
}

// Grade is one grade seen in the data, with its most common label.
type Grade struct {
	Grade int64  `json:"grade"`
	Label string `json:"label,omitempty"`
}

// Totals counts the rows.
type Totals struct {
	Files        int `json:"files"`        // rows (objects) as listed
	Images       int `json:"images"`       // distinct items
	Observations int `json:"observations"` // distinct (rater, item) pairs
	// Disagreements counts the items the raters disagree on; the report
	// lists the first Options.Disagreements + Options.TableRows.
	Disagreements int `json:"disagreements"`
}

// Count is one cell of the rater × grade table.
type Count struct {
	Rater  string `json:"rater"`
	Grade  int64  `json:"grade"`
	Files  int    `json:"files"`  // rows, duplicates included (the notebook's value_counts)
	Images int    `json:"images"` // distinct items
}

// Duplicates are the in-rater duplicate groups: one rater holding the
// same item (bytes) more than once.
type Duplicates struct {
	Groups      int        `json:"groups"`
	Surplus     int        `json:"surplus"` // rows beyond the first of each group
	Conflicting int        `json:"conflicting"`
	List        []DupGroup `json:"list"` // the first Options.Groups + Options.TableRows groups
}

// DupGroup is one duplicate group; Paths[0] is the copy kept.
type DupGroup struct {
	Rater    string   `json:"rater"`
	Item     string   `json:"item"`
	Grades   []int64  `json:"grades"` // distinct grades of the copies, ascending
	Copies   int      `json:"copies"`
	Paths    []string `json:"paths"` // the first Options.GroupCopies copies, in listing order
	Conflict bool     `json:"conflict"`
	grades   []int64  // per copy in Paths
}

// Agreement holds the cross-check's figures.
type Agreement struct {
	Pairs  []Kappa `json:"pairs"`
	Matrix []Cell  `json:"matrix"`
}

// Disagreed is one item the raters disagree on.
type Disagreed struct {
	Item   string              `json:"item"`
	Grades map[string]*int64   `json:"grades"` // rater → grade; null: not graded
	Paths  map[string][]string `json:"paths"`  // rater → the item's first Options.GroupCopies paths under that rater
	Copies map[string]int      `json:"copies"` // rater → the item's copies under that rater
}

// Property is the distribution of one image property per grade.
type Property struct {
	Name    string      `json:"name"`
	Values  []string    `json:"values"` // most common first
	Unknown int         `json:"unknown"`
	ByGrade []GradeDist `json:"by_grade"`
	// Accuracy of guessing the grade from this property alone (each value's
	// most common grade), and of always guessing the most common grade.
	GuessAccuracy    float64 `json:"guess_accuracy"`
	BaselineAccuracy float64 `json:"baseline_accuracy"`
}

// GradeDist counts a grade's observations per property value (aligned
// with Property.Values).
type GradeDist struct {
	Grade  int64 `json:"grade"`
	Images int   `json:"images"`
	Counts []int `json:"counts"`
}

// Warning says that a property nearly determines the grade.
type Warning struct {
	Property string  `json:"property"`
	Kind     string  `json:"kind"` // grade_one_value or value_one_grade
	Grade    int64   `json:"grade"`
	Value    string  `json:"value"`
	Share    float64 `json:"share"`  // share of the grade's (value's) observations
	Images   int     `json:"images"` // observations of the grade (value)
	// OtherShare is the value's share among the other grades (kind
	// grade_one_value), or the grade's share among all observations (kind
	// value_one_grade).
	OtherShare float64 `json:"other_share"`
	Message    string  `json:"message"`
}

// MeanImages describes the mean image per grade, when computed.
type MeanImages struct {
	Width   int         `json:"width"`
	Height  int         `json:"height"`
	Grades  []MeanGrade `json:"grades"`
	Skipped int         `json:"skipped"` // images that could not be fetched or decoded
}

// MeanGrade is the number of images averaged for a grade.
type MeanGrade struct {
	Grade  int64 `json:"grade"`
	Images int   `json:"images"`
}

// ThumbnailCount says how many thumbnails the report embeds.
type ThumbnailCount struct {
	Shown  int `json:"shown"`
	Failed int `json:"failed"`
}

// Settings are the options that shaped the report.
type Settings struct {
	WarnShare     float64 `json:"warn_share"`
	WarnMinImages int     `json:"warn_min_images"`
	ThumbWidth    int     `json:"thumb_width"`
	MeanImages    bool    `json:"mean_images"`
	MeanSize      string  `json:"mean_size"`
	GroupCopies   int     `json:"group_copies"`
	Groups        int     `json:"groups"`
	Disagreements int     `json:"disagreements"`
	TableRows     int     `json:"table_rows"`
}

// Report is a built report: its summary and the images it embeds.
type Report struct {
	Summary  Summary
	opt      Options
	thumbs   map[string]thumb // item → thumbnail
	means    map[int64]thumb  // grade → mean image
	noSource bool
	// Problems lists what went wrong on the way (thumbnails that could
	// not be fetched or decoded), for the caller to log.
	Problems []string
}

type obsKey struct{ rater, item string }

// Build computes the summary, fetches and downscales the thumbnails of the
// images the report shows and, with Options.MeanImages, averages every
// image per grade.
func Build(ctx context.Context, in Input, opt Options) (*Report, error) {
	opt = opt.withDefaults()
	r := &Report{opt: opt, noSource: opt.Fetch == nil}
	s := &r.Summary
	s.Title = in.Title
	s.CrossCheck = !in.NoCrossCheck
	s.Settings = Settings{
		WarnShare: opt.WarnShare, WarnMinImages: opt.WarnMinImages, ThumbWidth: opt.ThumbWidth,
		MeanImages: opt.MeanImages, MeanSize: fmt.Sprintf("%dx%d", opt.MeanWidth, opt.MeanHeight),
		GroupCopies: opt.GroupCopies, Groups: opt.Groups, Disagreements: opt.Disagreements, TableRows: opt.TableRows,
	}

	// Observations: the first row of each (rater, item), in input order.
	first := map[obsKey]int{}
	copies := map[obsKey][]int{}
	var obsOrder []obsKey
	items := map[string]bool{}
	raters := map[string]bool{}
	for _, name := range in.Raters {
		raters[name] = true
	}
	gradeSet := map[int64]bool{}
	for i, row := range in.Rows {
		k := obsKey{row.Rater, row.Item}
		if _, ok := first[k]; !ok {
			first[k] = i
			obsOrder = append(obsOrder, k)
		}
		copies[k] = append(copies[k], i)
		items[row.Item] = true
		raters[row.Rater] = true
		gradeSet[row.Grade] = true
	}
	for _, c := range in.Matrix {
		gradeSet[c.GradeA], gradeSet[c.GradeB] = true, true
		raters[c.RaterA], raters[c.RaterB] = true, true
	}
	for _, d := range in.Disagreements {
		for _, g := range d.Grades {
			if g != nil {
				gradeSet[*g] = true
			}
		}
	}
	s.Raters = slices.Sorted(maps.Keys(raters))
	s.Grades = gradesOf(in.Rows, gradeSet)
	s.Totals = Totals{Files: len(in.Rows), Images: len(items), Observations: len(obsOrder)}

	// Counts per rater × grade: files and distinct images.
	files := map[obsGrade]int{}
	imgs := map[obsGrade]int{}
	for _, row := range in.Rows {
		files[obsGrade{row.Rater, row.Grade}]++
	}
	for _, k := range obsOrder {
		imgs[obsGrade{k.rater, in.Rows[first[k]].Grade}]++
	}
	for _, rater := range s.Raters {
		for _, g := range s.Grades {
			k := obsGrade{rater, g.Grade}
			s.Counts = append(s.Counts, Count{Rater: rater, Grade: g.Grade, Files: files[k], Images: imgs[k]})
		}
	}

	// Duplicate groups, by rater then listing order.
	for _, k := range obsOrder {
		idx := copies[k]
		if len(idx) < 2 {
			continue
		}
		g := DupGroup{Rater: k.rater, Item: k.item, Copies: len(idx)}
		seen := map[int64]bool{}
		for n, i := range idx {
			if n < opt.GroupCopies {
				g.Paths = append(g.Paths, in.Rows[i].shown())
				g.grades = append(g.grades, in.Rows[i].Grade)
			}
			if !seen[in.Rows[i].Grade] {
				seen[in.Rows[i].Grade] = true
				g.Grades = append(g.Grades, in.Rows[i].Grade)
			}
		}
		sort.Slice(g.Grades, func(a, b int) bool { return g.Grades[a] < g.Grades[b] })
		g.Conflict = len(g.Grades) > 1
		s.Duplicates.List = append(s.Duplicates.List, g)
		s.Duplicates.Surplus += len(idx) - 1
		if g.Conflict {
			s.Duplicates.Conflicting++
		}
	}
	sort.SliceStable(s.Duplicates.List, func(a, b int) bool {
		return s.Duplicates.List[a].Rater < s.Duplicates.List[b].Rater
	})
	s.Duplicates.Groups = len(s.Duplicates.List)
	s.Duplicates.List = capped(s.Duplicates.List, opt.Groups+opt.TableRows)

	// Agreement, in a fixed order.
	s.Agreement.Pairs = append([]Kappa{}, in.Kappas...)
	sort.SliceStable(s.Agreement.Pairs, func(a, b int) bool {
		x, y := s.Agreement.Pairs[a], s.Agreement.Pairs[b]
		if x.RaterA != y.RaterA {
			return x.RaterA < y.RaterA
		}
		return x.RaterB < y.RaterB
	})
	s.Agreement.Matrix = append([]Cell{}, in.Matrix...)
	sort.SliceStable(s.Agreement.Matrix, func(a, b int) bool {
		x, y := s.Agreement.Matrix[a], s.Agreement.Matrix[b]
		switch {
		case x.RaterA != y.RaterA:
			return x.RaterA < y.RaterA
		case x.RaterB != y.RaterB:
			return x.RaterB < y.RaterB
		case x.GradeA != y.GradeA:
			return x.GradeA < y.GradeA
		}
		return x.GradeB < y.GradeB
	})

	// Disagreements, by item.
	s.Disagreements = []Disagreed{}
	for _, d := range in.Disagreements {
		if len(d.Grades) != len(in.Raters) {
			return nil, fmt.Errorf("disagreement %s: %d grades for %d raters", d.Item, len(d.Grades), len(in.Raters))
		}
		out := Disagreed{Item: d.Item, Grades: map[string]*int64{}, Paths: map[string][]string{}, Copies: map[string]int{}}
		for i, rater := range in.Raters {
			out.Grades[rater] = d.Grades[i]
			idx := copies[obsKey{rater, d.Item}]
			out.Copies[rater] = len(idx)
			for _, ri := range idx[:min(len(idx), opt.GroupCopies)] {
				out.Paths[rater] = append(out.Paths[rater], in.Rows[ri].shown())
			}
		}
		s.Disagreements = append(s.Disagreements, out)
	}
	sort.SliceStable(s.Disagreements, func(a, b int) bool { return s.Disagreements[a].Item < s.Disagreements[b].Item })
	s.Totals.Disagreements = len(s.Disagreements)
	s.Disagreements = capped(s.Disagreements, opt.Disagreements+opt.TableRows)
	s.Near = nearDuplicates(in.NearGroups, opt)
	s.Excluded = exclusions(in.Excluded, opt.TableRows, s.Near != nil)
	var err error
	if s.Splits, err = auditSplits(in.Splits, r.gradeName); err != nil {
		return nil, err
	}

	// Properties per grade and the warnings they draw.
	obs := make([]Row, len(obsOrder))
	for i, k := range obsOrder {
		obs[i] = in.Rows[first[k]]
	}
	s.Properties, s.Warnings = properties(obs, s.Grades, opt, r.gradeName)

	if err := r.images(ctx, in, obsOrder, first); err != nil {
		return nil, err
	}
	return r, nil
}

// capped returns the first n elements of list, never nil (JSON: []).
func capped[T any](list []T, n int) []T {
	if list == nil {
		return []T{}
	}
	return list[:min(len(list), n)]
}

type obsGrade struct {
	rater string
	grade int64
}

// shown is how a row is named under its thumbnail.
func (row Row) shown() string {
	if row.Path != "" {
		return row.Path
	}
	if row.Key != "" {
		return row.Key
	}
	return row.Item
}

// gradesOf lists the grades with each one's most common label (ties: the
// smallest label).
func gradesOf(rows []Row, set map[int64]bool) []Grade {
	labels := map[int64]map[string]int{}
	for _, row := range rows {
		if row.Label == "" {
			continue
		}
		if labels[row.Grade] == nil {
			labels[row.Grade] = map[string]int{}
		}
		labels[row.Grade][row.Label]++
	}
	out := make([]Grade, 0, len(set))
	for g := range set {
		best, n := "", 0
		for _, l := range slices.Sorted(maps.Keys(labels[g])) {
			if labels[g][l] > n {
				best, n = l, labels[g][l]
			}
		}
		out = append(out, Grade{Grade: g, Label: best})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Grade < out[b].Grade })
	return out
}

// gradeName is how the report names a grade: "0 Normal" for grade 0
// labelled 0Normal, "3" without a label.
func (r *Report) gradeName(g int64) string {
	num, rest := r.gradeParts(g)
	if rest == "" {
		return num
	}
	return num + " " + rest
}

// gradeParts splits a grade's name into its number and the rest of its
// label ("0", "Normal"); the rest is empty without a label.
func (r *Report) gradeParts(g int64) (string, string) {
	num := strconv.FormatInt(g, 10)
	for _, x := range r.Summary.Grades {
		if x.Grade != g || x.Label == "" {
			continue
		}
		rest := strings.TrimPrefix(x.Label, num)
		if rest == "" {
			return num, ""
		}
		return num, strings.TrimLeft(rest, " _-:.")
	}
	return num, ""
}

// JSON renders summary.json: indented, keys in a fixed order, a final
// newline.
func (r *Report) JSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r.Summary); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
