package report

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Row is one graded object: a row of the table before de-duplication.
type Row struct {
	Rater, Item string
	Grade       int64
	Label       string // the grade's label as found (e.g. 0Normal); may be empty
	Key         string // object key to fetch a thumbnail; empty: none
	Path        string // shown under thumbnails; the key when empty
	// What the object's bytes must be, when known: checked after every
	// fetch, and SHA256 names derived images in Options.CacheDir.
	Size   int64  // 0: unknown
	SHA256 string // hex; empty: unknown
	// PNG header facts; PNG is false when unknown (no columns, not a PNG).
	PNG                 bool
	Width, Height       int64
	BitDepth, ColorType int64
}

// Cell is one entry of an agreement matrix: items rater A graded GradeA
// and rater B graded GradeB.
type Cell struct {
	RaterA string `json:"rater_a"`
	RaterB string `json:"rater_b"`
	GradeA int64  `json:"grade_a"`
	GradeB int64  `json:"grade_b"`
	Count  int64  `json:"count"`
}

// Interval is a statistic with its 95 % interval; nil where undefined.
type Interval struct {
	Value *float64 `json:"value"`
	Lo    *float64 `json:"lo"`
	Hi    *float64 `json:"hi"`
}

// Kappa is the agreement of one pair of raters over the items both graded.
type Kappa struct {
	RaterA     string   `json:"rater_a"`
	RaterB     string   `json:"rater_b"`
	N          int64    `json:"n"`
	Observed   *float64 `json:"observed"`
	Unweighted Interval `json:"kappa"`
	Linear     Interval `json:"linear"`
	Quadratic  Interval `json:"quadratic"`
}

// Disagreement is an item the raters disagree on: one grade per rater of
// Input.Raters, nil where that rater did not grade it.
type Disagreement struct {
	Item   string
	Grades []*int64
}

// Excluded is a listed object the clean table leaves out, and why (a row
// of the exclusions stage's output).
type Excluded struct {
	Key, Path      string
	Reason, Detail string
}

// Input is what a report is built from.
type Input struct {
	Title         string
	Raters        []string // the raters of Disagreements' grades, in that order
	Rows          []Row    // in listing order: the first of a duplicate group is the one kept
	Matrix        []Cell
	Kappas        []Kappa
	Disagreements []Disagreement
	Excluded      []Excluded // in listing order; nil: not known (no such section)
	Splits        *SplitRows // nil: not known (no leakage audit)
	// NoCrossCheck: the raters were not compared (one rater): the
	// agreement and disagreement sections say so.
	NoCrossCheck bool
	// NearGroups are the near-duplicate groups' members, in group order;
	// nil: not known (no such section).
	NearGroups []NearMember
}

// Object names an image to fetch and what its bytes must be.
type Object struct {
	Key    string
	Size   int64  // 0: unknown
	SHA256 string // hex; empty: unknown
}

// Fetcher returns an object's bytes. It should retry transient failures
// and check the bytes against Size and SHA256 where they are known; Build
// checks them again.
type Fetcher func(ctx context.Context, obj Object) ([]byte, error)

// Options tune a report. The zero value is usable: defaults apply.
type Options struct {
	ThumbWidth int  // thumbnails are downscaled to this width (default 160)
	MeanImages bool // decode every image for the mean image per grade
	// MeanWidth × MeanHeight is the canvas images are padded (at the
	// bottom and right, with black) or cropped to before averaging
	// (default 640 × 162, as the study did).
	MeanWidth, MeanHeight int
	WarnShare             float64 // default 0.95
	WarnMinImages         int     // default 5
	Concurrency           int     // parallel fetches (default 16)
	// Caps that keep the page a few MB whatever the bucket (0: default).
	// GroupCopies is the copies shown per duplicate group (default 4);
	// Groups and Disagreements are how many duplicate groups (default 40)
	// and disagreements (default 80) are shown with thumbnails; TableRows
	// is how many more of each, and of the excluded objects, are listed in
	// a compact table without thumbnails (default 500). The rest are
	// counted ("+N more"). Only the images shown are fetched.
	GroupCopies, Groups, Disagreements, TableRows int
	// MaxPixels bounds what is decoded: an image whose header declares
	// more pixels is not decoded (a problem line instead), so a tiny file
	// declaring 20000×20000 cannot make the decoder allocate gigabytes
	// (default 50,000,000).
	MaxPixels int64
	Fetch     Fetcher // nil: no images
	// CacheDir keeps the images derived from each object (thumbnail,
	// padded gray image), named by the object's SHA-256, between runs: an
	// image already derived is not fetched again. Entries a run did not
	// use are removed. Empty: no cache.
	CacheDir string
}

// DefaultMaxPixels is Options.MaxPixels' default: 50 megapixels, far above
// any radiograph, at most 400 MB decoded at 16 bits per channel.
const DefaultMaxPixels = 50_000_000

func (o Options) withDefaults() Options {
	if o.ThumbWidth <= 0 {
		o.ThumbWidth = 160
	}
	if o.MeanWidth <= 0 || o.MeanHeight <= 0 {
		o.MeanWidth, o.MeanHeight = 640, 162
	}
	if o.WarnShare <= 0 || o.WarnShare > 1 {
		o.WarnShare = 0.95
	}
	if o.WarnMinImages <= 0 {
		o.WarnMinImages = 5
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.MaxPixels <= 0 {
		o.MaxPixels = DefaultMaxPixels
	}
	for _, c := range []struct {
		v   *int
		def int
	}{{&o.GroupCopies, 4}, {&o.Groups, 40}, {&o.Disagreements, 80}, {&o.TableRows, 500}} {
		if *c.v <= 0 {
			*c.v = c.def
		}
	}
	return o
}

// ParseSize reads "WIDTHxHEIGHT" (e.g. 640x162).
func ParseSize(s string) (w, h int, err error) {
	a, b, ok := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "x")
	if ok {
		w, err = strconv.Atoi(a)
		if err == nil {
			h, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || w <= 0 || h <= 0 || w > 8192 || h > 8192 {
		return 0, 0, fmt.Errorf("%q is not WIDTHxHEIGHT such as 640x162 (at most 8192 each)", s)
	}
	return w, h, nil
}
