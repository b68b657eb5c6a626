// Package kappa computes Cohen's kappa for two raters, unweighted and
// weighted (linear and quadratic weights), with large-sample standard
// errors and 95 % confidence intervals.
//
// # Definitions
//
// For a k×k table of counts n_ij (rater A's category i, rater B's category
// j), n = Σ n_ij, p_ij = n_ij/n, row margins p_i. and column margins p_.j,
// and agreement weights w_ij (1 on the diagonal, 0 ≤ w_ij ≤ 1 off it):
//
//	p_o = Σ w_ij p_ij                 observed (weighted) agreement
//	p_e = Σ w_ij p_i. p_.j            agreement expected by chance
//	κ   = (p_o − p_e) / (1 − p_e)
//
// Unweighted kappa (Cohen 1960) uses w_ij = 1 if i = j else 0. The weighted
// kappas (Cohen 1968) score the categories s_1 < … < s_k and use
//
//	linear    w_ij = 1 − |s_i − s_j| / (s_k − s_1)      (Cicchetti–Allison)
//	quadratic w_ij = 1 − (s_i − s_j)² / (s_k − s_1)²    (Fleiss–Cohen)
//
// With scores 1..k these are the weights of R irr::kappa2 ("equal",
// "squared"), vcd::Kappa, DescTools::CohenKappa and SAS PROC FREQ.
//
// # Variance
//
// The standard error is the large-sample (non-null) one of Fleiss, Cohen
// and Everitt (1969), "Large sample standard errors of kappa and weighted
// kappa", Psychological Bulletin 72, 323–327 — the formula SAS PROC FREQ
// calls ASE and psych::cohen.kappa uses for its confidence boundaries:
//
//	w̄_i. = Σ_j p_.j w_ij,   w̄_.j = Σ_i p_i. w_ij
//	Var(κ) = [ Σ_ij p_ij (w_ij(1 − p_e) − (w̄_i. + w̄_.j)(1 − p_o))²
//	           − (p_o p_e − 2 p_e + p_o)² ] / (n (1 − p_e)⁴)
//
// (for unweighted kappa this reduces to Fleiss et al.'s equation for κ).
// The 95 % interval is the Wald interval κ ± 1.959964·SE, clipped to
// [−1, 1]. The standard error under the hypothesis κ = 0 (what irr::kappa2
// divides by for its z statistic) is also given:
//
//	Var₀(κ) = [ Σ_ij p_i. p_.j (w_ij − (w̄_i. + w̄_.j))² − p_e² ] / (n (1 − p_e)²)
//
// Kappa is undefined (NaN) when there are no items or when p_e = 1 (both
// raters used a single category, or weights that are all 1).
package kappa

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
)

// Z95 is the standard normal quantile of a two-sided 95 % interval.
const Z95 = 1.959963984540054

// Scheme names a weighting of disagreements.
type Scheme int

const (
	Unweighted Scheme = iota // only exact agreement counts (Cohen 1960)
	Linear                   // 1 − |s_i − s_j| / range (Cicchetti–Allison)
	Quadratic                // 1 − (s_i − s_j)² / range² (Fleiss–Cohen)
)

func (s Scheme) String() string {
	switch s {
	case Unweighted:
		return "unweighted"
	case Linear:
		return "linear"
	case Quadratic:
		return "quadratic"
	}
	return fmt.Sprintf("Scheme(%d)", int(s))
}

// Estimate is one kappa with its uncertainty. Every field is NaN when
// kappa is undefined.
type Estimate struct {
	Kappa    float64
	Observed float64 // p_o, weighted by the scheme's weights
	Chance   float64 // p_e
	SE       float64 // Fleiss, Cohen & Everitt (1969) large-sample standard error
	SE0      float64 // standard error under κ = 0
	Lo, Hi   float64 // 95 % Wald interval, clipped to [−1, 1]
}

// Defined reports whether the estimate has a value.
func (e Estimate) Defined() bool { return !math.IsNaN(e.Kappa) }

func undefined() Estimate {
	nan := math.NaN()
	return Estimate{nan, nan, nan, nan, nan, nan, nan}
}

// Weights returns the k×k agreement weights of a scheme for categories
// scored by scores (ascending, distinct). Linear and quadratic weights
// scale distances by the range of the scores; with fewer than two
// categories every weight is 1.
func Weights(scores []float64, s Scheme) [][]float64 {
	k := len(scores)
	w := make([][]float64, k)
	span := 0.0
	if k > 1 {
		span = scores[k-1] - scores[0]
	}
	for i := range w {
		w[i] = make([]float64, k)
		for j := range w[i] {
			switch {
			case i == j:
				w[i][j] = 1
			case s == Unweighted || span == 0:
				w[i][j] = 0
			case s == Linear:
				w[i][j] = 1 - math.Abs(scores[i]-scores[j])/span
			case s == Quadratic:
				d := (scores[i] - scores[j]) / span
				w[i][j] = 1 - d*d
			}
		}
	}
	return w
}

// Compute returns kappa for a square table of counts (rows: rater A,
// columns: rater B) and a matrix of agreement weights of the same shape.
// Counts need not be integers (proportions with n = 1 give kappa and p_o
// but meaningless standard errors).
func Compute(counts, w [][]float64) (Estimate, error) {
	k := len(counts)
	if len(w) != k {
		return undefined(), fmt.Errorf("kappa: %d×? counts but %d rows of weights", k, len(w))
	}
	n := 0.0
	for i := range counts {
		if len(counts[i]) != k || len(w[i]) != k {
			return undefined(), errors.New("kappa: counts and weights must be square and of one size")
		}
		for j, c := range counts[i] {
			if c < 0 || math.IsNaN(c) || math.IsInf(c, 0) {
				return undefined(), fmt.Errorf("kappa: count [%d][%d] = %v", i, j, c)
			}
			if x := w[i][j]; !(x >= 0 && x <= 1) || (i == j && x != 1) {
				return undefined(), fmt.Errorf("kappa: weight [%d][%d] = %v, want 1 on the diagonal and within [0, 1] off it", i, j, x)
			}
			n += c
		}
	}
	if n == 0 {
		return undefined(), nil
	}
	row := make([]float64, k)
	col := make([]float64, k)
	for i := range counts {
		for j, c := range counts[i] {
			row[i] += c / n
			col[j] += c / n
		}
	}
	var po, pe float64
	for i := range k {
		for j := range k {
			po += w[i][j] * counts[i][j] / n
			pe += w[i][j] * row[i] * col[j]
		}
	}
	const eps = 1e-12
	if 1-pe < eps {
		e := undefined()
		e.Observed, e.Chance = po, pe
		return e, nil
	}
	kap := (po - pe) / (1 - pe)
	wRow := make([]float64, k) // w̄_i.
	wCol := make([]float64, k) // w̄_.j
	for i := range k {
		for j := range k {
			wRow[i] += col[j] * w[i][j]
			wCol[j] += row[i] * w[i][j]
		}
	}
	var s1, s0 float64
	for i := range k {
		for j := range k {
			p := counts[i][j] / n
			d := w[i][j]*(1-pe) - (wRow[i]+wCol[j])*(1-po)
			s1 += p * d * d
			d0 := w[i][j] - (wRow[i] + wCol[j])
			s0 += row[i] * col[j] * d0 * d0
		}
	}
	c := po*pe - 2*pe + po
	q := 1 - pe
	v := (s1 - c*c) / (n * q * q * q * q)
	v0 := (s0 - pe*pe) / (n * q * q)
	se, se0 := math.Sqrt(max(v, 0)), math.Sqrt(max(v0, 0))
	return Estimate{
		Kappa:    kap,
		Observed: po,
		Chance:   pe,
		SE:       se,
		SE0:      se0,
		Lo:       max(-1, kap-Z95*se),
		Hi:       min(1, kap+Z95*se),
	}, nil
}

// Agreement is what two raters' table says: the number of items both
// rated, the unweighted observed agreement and the three kappas.
type Agreement struct {
	N                             float64
	Observed                      float64 // share of items with the same category; NaN without items
	Unweighted, Linear, Quadratic Estimate
}

// Table computes every kappa for a square table of counts whose
// categories carry the given scores (ascending, distinct and finite: the
// grade values, so that a grade nobody used still counts in the
// distances).
func Table(counts [][]float64, scores []float64) (Agreement, error) {
	if len(scores) != len(counts) {
		return Agreement{}, fmt.Errorf("kappa: %d scores for %d categories", len(scores), len(counts))
	}
	for i, s := range scores {
		if math.IsInf(s, 0) || math.IsNaN(s) {
			return Agreement{}, fmt.Errorf("kappa: score %v is not finite", s)
		}
		if i > 0 && !(s > scores[i-1]) {
			return Agreement{}, errors.New("kappa: scores must be ascending and distinct")
		}
	}
	return agree(counts, func(s Scheme) [][]float64 { return Weights(scores, s) })
}

// agree computes the three kappas of a table with the weights of each
// scheme.
func agree(counts [][]float64, weights func(Scheme) [][]float64) (Agreement, error) {
	var a Agreement
	var err error
	for _, row := range counts {
		for _, c := range row {
			a.N += c
		}
	}
	if a.Unweighted, err = Compute(counts, weights(Unweighted)); err != nil {
		return Agreement{}, err
	}
	if a.Linear, err = Compute(counts, weights(Linear)); err != nil {
		return Agreement{}, err
	}
	if a.Quadratic, err = Compute(counts, weights(Quadratic)); err != nil {
		return Agreement{}, err
	}
	a.Observed = a.Unweighted.Observed
	if a.N == 0 {
		a.Observed = math.NaN()
	}
	return a, nil
}

// ErrTooManyGrades is returned by Pairs when the raters used more distinct
// grades than allowed: the tables are k×k.
var ErrTooManyGrades = errors.New("too many distinct grades")

// Pairs builds the table of two raters' grades from (grade A, grade B)
// pair counts and computes every kappa. The categories are the grades
// either rater used, scored by their values; more than maxGrades of them
// is an error wrapping ErrTooManyGrades (the tables take k² cells).
// Grades are told apart and their distances taken as integers, so grades
// that one float64 cannot tell apart (beyond 2⁵³) stay distinct
// categories.
func Pairs(cells map[[2]int64]int64, maxGrades int) (Agreement, []int64, error) {
	seen := map[int64]bool{}
	for k, c := range cells {
		if c < 0 {
			return Agreement{}, nil, fmt.Errorf("kappa: negative count %d for grades %d, %d", c, k[0], k[1])
		}
		seen[k[0]], seen[k[1]] = true, true
		if len(seen) > maxGrades {
			return Agreement{}, nil, fmt.Errorf("kappa: more than %d distinct grades: %w", maxGrades, ErrTooManyGrades)
		}
	}
	grades := slices.Sorted(maps.Keys(seen))
	idx := make(map[int64]int, len(grades))
	for i, g := range grades {
		idx[g] = i
	}
	counts := make([][]float64, len(grades))
	for i := range counts {
		counts[i] = make([]float64, len(grades))
	}
	for k, c := range cells {
		counts[idx[k[0]]][idx[k[1]]] += float64(c)
	}
	a, err := agree(counts, func(s Scheme) [][]float64 { return gradeWeights(grades, s) })
	if err != nil {
		return Agreement{}, nil, err
	}
	return a, grades, nil
}

// gradeWeights is Weights for integer grades (ascending, distinct): the
// distances are exact differences (in uint64, which holds any difference
// of two int64s), rounded only when divided by the range, so every weight
// lies in [0, 1] and only the diagonal is 1 short of rounding.
func gradeWeights(grades []int64, s Scheme) [][]float64 {
	k := len(grades)
	dist := func(i, j int) float64 {
		if i > j {
			i, j = j, i
		}
		return float64(uint64(grades[j]) - uint64(grades[i]))
	}
	w := make([][]float64, k)
	for i := range w {
		w[i] = make([]float64, k)
		for j := range w[i] {
			switch {
			case i == j:
				w[i][j] = 1
			case s == Unweighted:
				w[i][j] = 0
			case s == Linear:
				w[i][j] = 1 - dist(i, j)/dist(0, k-1)
			case s == Quadratic:
				d := dist(i, j) / dist(0, k-1)
				w[i][j] = 1 - d*d
			}
		}
	}
	return w
}
