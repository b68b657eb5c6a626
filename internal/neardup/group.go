package neardup

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/kneepipe/kneepipe/internal/safe"
)

// Options tune Find.
type Options struct {
	// Threshold is the Similarity a pair must reach to be a near-duplicate.
	Threshold float64
	// MaxHamming bounds the perceptual bits two candidates may differ in.
	MaxHamming int
	// Workers is the number of goroutines sorting bands and verifying pairs.
	Workers int
}

// DefaultOptions were tuned on real knee and chest radiographs with planted copies
// (bench/neardup): see the README's near-duplicates section.
func DefaultOptions() Options {
	return Options{Threshold: DefaultThreshold, MaxHamming: DefaultMaxHamming, Workers: 2}
}

// Tuned defaults (bench/neardup on knee-dev and chest films): 0.986 sits
// between the most similar distinct pair (0.9834, one patient's chest
// films two days apart) and the least similar planted copy (0.9879).
const (
	DefaultThreshold  = 0.986
	DefaultMaxHamming = 46
)

// Pair is a verified near-duplicate pair of input indices, A < B.
type Pair struct {
	A, B       int
	Similarity float64
}

// Member is one image of a group and its similarity to the representative.
type Member struct {
	Index      int
	Similarity float64
}

// Group is a representative and the images verified against it; the
// representative is Members[0] (similarity 1).
type Group struct {
	ID      int
	Members []Member
}

// Result is what Find returns, in a deterministic order: groups by ID,
// members by decreasing similarity then index, pairs by (A, B).
type Result struct {
	Groups []Group
	Pairs  []Pair
}

// Find groups near-duplicate fingerprints. Images with identical pixels
// are merged first; the others are paired through the candidate index,
// every candidate pair is verified (Similarity >= Threshold), and groups
// are formed around representatives: the largest image not yet grouped
// takes every ungrouped image verified against it. A chain a~b~c with a
// and c unlike never puts a and c in one group.
func Find(ctx context.Context, fps []Fingerprint, opt Options) (Result, error) {
	if opt.Threshold <= 0 || opt.Threshold > 1 {
		return Result{}, fmt.Errorf("neardup: threshold %v outside (0, 1]", opt.Threshold)
	}
	// Classes of identical pixels, in order of their first image.
	classOf := map[[32]byte]int{}
	var classes [][]int
	for i := range fps {
		c, ok := classOf[fps[i].Pixels]
		if !ok {
			c = len(classes)
			classOf[fps[i].Pixels] = c
			classes = append(classes, nil)
		}
		classes[c] = append(classes[c], i)
	}
	reps := make([]*Fingerprint, len(classes))
	for c, m := range classes {
		reps[c] = &fps[m[0]]
	}
	cand, err := candidates(ctx, reps, opt.MaxHamming, opt.Workers)
	if err != nil {
		return Result{}, err
	}
	sims, err := verify(ctx, reps, cand, opt.Threshold, opt.Workers)
	if err != nil {
		return Result{}, err
	}
	neighbours := make([][]Member, len(classes)) // verified, by class
	var res Result
	for k, p := range cand {
		if sims[k] < opt.Threshold {
			continue
		}
		a, b := int(p[0]), int(p[1])
		neighbours[a] = append(neighbours[a], Member{b, sims[k]})
		neighbours[b] = append(neighbours[b], Member{a, sims[k]})
		res.Pairs = append(res.Pairs, Pair{classes[a][0], classes[b][0], sims[k]})
	}
	for _, m := range classes {
		for _, i := range m[1:] {
			res.Pairs = append(res.Pairs, Pair{m[0], i, 1})
		}
	}
	slices.SortFunc(res.Pairs, func(x, y Pair) int { return cmp.Or(cmp.Compare(x.A, y.A), cmp.Compare(x.B, y.B)) })
	res.Groups = groupAround(fps, classes, neighbours)
	return res, nil
}

// groupAround forms the groups: classes in order of decreasing pixel
// count (then first index) each take, when not yet grouped, the
// ungrouped classes verified against them.
func groupAround(fps []Fingerprint, classes [][]int, neighbours [][]Member) []Group {
	order := make([]int, len(classes))
	for c := range order {
		order[c] = c
	}
	pixels := func(c int) int64 { fp := &fps[classes[c][0]]; return int64(fp.Width) * int64(fp.Height) }
	slices.SortStableFunc(order, func(x, y int) int { return cmp.Compare(pixels(y), pixels(x)) })
	grouped := make([]bool, len(classes))
	var groups []Group
	for _, c := range order {
		if grouped[c] || (len(classes[c]) == 1 && len(neighbours[c]) == 0) {
			continue
		}
		grouped[c] = true
		var members []Member
		for _, i := range classes[c] {
			members = append(members, Member{i, 1})
		}
		for _, n := range neighbours[c] {
			if grouped[n.Index] {
				continue
			}
			grouped[n.Index] = true
			for _, i := range classes[n.Index] {
				members = append(members, Member{i, n.Similarity})
			}
		}
		if len(members) < 2 {
			continue
		}
		slices.SortStableFunc(members[1:], func(x, y Member) int {
			return cmp.Or(cmp.Compare(y.Similarity, x.Similarity), cmp.Compare(x.Index, y.Index))
		})
		groups = append(groups, Group{ID: len(groups) + 1, Members: members})
	}
	return groups
}

// verify computes the similarity of every candidate pair on up to
// workers goroutines; results are by position, so order never varies.
func verify(ctx context.Context, fps []*Fingerprint, cand [][2]int32, floor float64, workers int) ([]float64, error) {
	sims := make([]float64, len(cand))
	const chunk = 256
	jobs := (len(cand) + chunk - 1) / chunk
	err := safe.ForEach(ctx, jobs, workers, func() func(int) {
		return func(j int) {
			for k := j * chunk; k < min((j+1)*chunk, len(cand)); k++ {
				sims[k] = similarity(fps[cand[k][0]], fps[cand[k][1]], floor)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return sims, nil
}
