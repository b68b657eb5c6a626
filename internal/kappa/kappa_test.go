package kappa

import (
	"errors"
	"math"
	"testing"
)

// near fails unless got is within tol of want.
func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(got) || math.Abs(got-want) > tol {
		t.Errorf("%s = %.7f, want %.7f (±%g)", what, got, want, tol)
	}
}

func mustCompute(t *testing.T, counts, w [][]float64) Estimate {
	t.Helper()
	e, err := Compute(counts, w)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func index(k int) []float64 {
	s := make([]float64, k)
	for i := range s {
		s[i] = float64(i + 1)
	}
	return s
}

// Wikipedia, "Cohen's kappa", worked example: 50 grant proposals, readers
// A and B; Yes/Yes 20, Yes/No 5, No/Yes 10, No/No 15: p_o = 0.7,
// p_e = 0.5, κ = 0.4. The article gives no standard error.
func TestWikipediaWorkedExample(t *testing.T) {
	e := mustCompute(t, [][]float64{{20, 5}, {10, 15}}, Weights(index(2), Unweighted))
	near(t, "p_o", e.Observed, 0.7, 1e-12)
	near(t, "p_e", e.Chance, 0.5, 1e-12)
	near(t, "kappa", e.Kappa, 0.4, 1e-12)
}

// Wikipedia, "Cohen's kappa", section "Same percentages but different
// numbers": both tables have p_o = 0.60, but κ = 0.1304 and 0.2593.
// Kappa only (the article gives no standard errors).
func TestWikipediaSamePercentages(t *testing.T) {
	w := Weights(index(2), Unweighted)
	near(t, "kappa 45/15/25/15", mustCompute(t, [][]float64{{45, 15}, {25, 15}}, w).Kappa, 0.1304, 5e-5)
	near(t, "kappa 25/35/5/35", mustCompute(t, [][]float64{{25, 35}, {5, 35}}, w).Kappa, 0.2593, 5e-5)
}

// Cohen (1960) / Cohen (1968): 200 items, proportions
//
//	.44 .07 .09
//	.05 .20 .05
//	.01 .03 .06
//
// p_o = .70, p_c = .41, κ = .492; with Cohen's (1968) disagreement weights
// v = [0 1 3; 1 0 6; 3 6 0], κ_w = .348, and with the non-symmetric
// weights v = [0 1 4; 1 0 6; 2 2 0], κ_w = .353. The values are as quoted
// in the R psych package's documentation of cohen.kappa ("cohen reports
// .492 and .348", "Cohen reports kw = .353"). Agreement weights are
// 1 − v/max(v); kappa does not depend on that scaling. The published
// figures carry no confidence interval that could be checked here, so
// only the point estimates are compared.
func TestCohen1960And1968(t *testing.T) {
	p := [][]float64{{0.44, 0.07, 0.09}, {0.05, 0.20, 0.05}, {0.01, 0.03, 0.06}}
	counts := make([][]float64, 3)
	for i := range p {
		counts[i] = make([]float64, 3)
		for j := range p[i] {
			counts[i][j] = 200 * p[i][j]
		}
	}
	e := mustCompute(t, counts, Weights(index(3), Unweighted))
	near(t, "p_o", e.Observed, 0.70, 1e-12)
	near(t, "p_c", e.Chance, 0.41, 1e-12)
	near(t, "kappa", e.Kappa, 0.492, 5e-4)

	agree := func(v [][]float64, vmax float64) [][]float64 {
		w := make([][]float64, len(v))
		for i := range v {
			w[i] = make([]float64, len(v[i]))
			for j := range v[i] {
				w[i][j] = 1 - v[i][j]/vmax
			}
		}
		return w
	}
	near(t, "kappa_w (symmetric)", mustCompute(t, counts, agree([][]float64{{0, 1, 3}, {1, 0, 6}, {3, 6, 0}}, 6)).Kappa, 0.348, 5e-4)
	near(t, "kappa_w (non-symmetric)", mustCompute(t, counts, agree([][]float64{{0, 1, 4}, {1, 0, 6}, {2, 2, 0}}, 6)).Kappa, 0.353, 5e-4)
}

// SAS PROC FREQ (AGREE) printout for the 3×3 table [0 4 1; 0 8 0; 0 1 5],
// as recorded in statsmodels' test suite (statsmodels/stats/tests/
// test_inter_rater.py, "comparison to printout of a SAS example"):
//
//	Simple Kappa:   κ 0.4842, ASE 0.1380, 95% CL 0.2137 – 0.7547, ASE under H0 0.1484
//	Weighted Kappa: κ 0.4701, ASE 0.1457, 95% CL 0.1845 – 0.7558, ASE under H0 0.1426
//
// SAS's weighted kappa uses Cicchetti–Allison (linear) weights on the
// column scores, here 1, 2, 3. SAS's ASE is the Fleiss, Cohen & Everitt
// (1969) standard error, so this checks the interval formula.
func TestSASPrintout(t *testing.T) {
	table := [][]float64{{0, 4, 1}, {0, 8, 0}, {0, 1, 5}}
	const tol = 5e-5 // the printout has four decimals
	e := mustCompute(t, table, Weights(index(3), Unweighted))
	near(t, "kappa", e.Kappa, 0.4842, tol)
	near(t, "ASE", e.SE, 0.1380, tol)
	near(t, "lower", e.Lo, 0.2137, tol)
	near(t, "upper", e.Hi, 0.7547, tol)
	near(t, "ASE under H0", e.SE0, 0.1484, tol)

	w := mustCompute(t, table, Weights(index(3), Linear))
	near(t, "weighted kappa", w.Kappa, 0.4701, tol)
	near(t, "weighted ASE", w.SE, 0.1457, tol)
	near(t, "weighted lower", w.Lo, 0.1845, tol)
	near(t, "weighted upper", w.Hi, 0.7558, tol)
	near(t, "weighted ASE under H0", w.SE0, 0.1426, tol)
}

// R statpsych::ci.kappa(.05, 31, 12, 4, 58), documented output (Bonett;
// reference Fleiss, Levin & Paik 2003, whose large-sample standard error
// is Fleiss, Cohen & Everitt's):
//
//	Cohen kappa: Estimate 0.6756757, SE 0.07344761, LL 0.5317210, UL 0.8196303
//
// f00 = 31, f01 = 12, f10 = 4, f11 = 58 (rater 1 in rows).
func TestStatpsychCIKappa(t *testing.T) {
	e := mustCompute(t, [][]float64{{31, 12}, {4, 58}}, Weights(index(2), Unweighted))
	const tol = 5e-8
	near(t, "kappa", e.Kappa, 0.6756757, tol)
	near(t, "SE", e.SE, 0.07344761, tol)
	near(t, "LL", e.Lo, 0.5317210, tol)
	near(t, "UL", e.Hi, 0.8196303, tol)
}

// R irr::kappa2 on raters 2 and 3 of irr's `anxiety` data set, as recorded
// in statsmodels' test suite (test_cohens_kappa_irr): unweighted
// κ = -0.006289308 (z = -0.0604067), "equal" (linear) κ = 0.1459075
// (z = 1.282472), "squared" (quadratic) κ = 0.2520325 (z = 1.437451).
// irr's z is κ / SE under H0, which checks SE0 for all three weightings.
// irr drops the level nobody used (5 of 1..6) and spaces the remaining
// levels 1, 2, 3, 4, 6 evenly, so the scores here are 1..5. irr gives no
// confidence interval.
func TestIrrAnxiety(t *testing.T) {
	r2 := []int{3, 6, 4, 6, 2, 4, 2, 4, 3, 3, 2, 3, 3, 3, 2, 2, 1, 3, 3, 4}
	r3 := []int{2, 1, 4, 4, 3, 2, 1, 6, 1, 1, 1, 2, 3, 3, 1, 1, 3, 3, 2, 2}
	level := map[int]int{1: 0, 2: 1, 3: 2, 4: 3, 6: 4}
	counts := make([][]float64, 5)
	for i := range counts {
		counts[i] = make([]float64, 5)
	}
	for i := range r2 {
		counts[level[r2[i]]][level[r3[i]]]++
	}
	for _, c := range []struct {
		s        Scheme
		kappa, z float64
	}{
		{Unweighted, -0.006289308, -0.0604067},
		{Linear, 0.1459075, 1.282472},
		{Quadratic, 0.2520325, 1.437451},
	} {
		e := mustCompute(t, counts, Weights(index(5), c.s))
		near(t, c.s.String()+" kappa", e.Kappa, c.kappa, 5e-8)
		near(t, c.s.String()+" z", e.Kappa/e.SE0, c.z, 5e-6)
	}
}

func TestWeights(t *testing.T) {
	lin := Weights([]float64{0, 1, 2, 3, 4}, Linear)
	near(t, "linear w[0][1]", lin[0][1], 0.75, 1e-15)
	near(t, "linear w[0][4]", lin[0][4], 0, 1e-15)
	quad := Weights([]float64{0, 1, 2, 3, 4}, Quadratic)
	near(t, "quadratic w[0][1]", quad[0][1], 1-1.0/16, 1e-15)
	near(t, "quadratic w[1][3]", quad[1][3], 0.75, 1e-15)
	// Scores, not positions: a grade nobody used still counts in distances.
	gap := Weights([]float64{0, 1, 4}, Linear)
	near(t, "gap w[0][1]", gap[0][1], 0.75, 1e-15)
	one := Weights([]float64{2}, Quadratic)
	if len(one) != 1 || one[0][0] != 1 {
		t.Errorf("one category: %v", one)
	}
}

func TestPerfectAgreement(t *testing.T) {
	e := mustCompute(t, [][]float64{{5, 0}, {0, 7}}, Weights(index(2), Quadratic))
	if e.Kappa != 1 || e.SE != 0 || e.Lo != 1 || e.Hi != 1 {
		t.Errorf("perfect agreement: %+v", e)
	}
}

func TestUndefined(t *testing.T) {
	// No items.
	if e := mustCompute(t, [][]float64{{0, 0}, {0, 0}}, Weights(index(2), Unweighted)); e.Defined() {
		t.Errorf("no items: %+v", e)
	}
	// One category used by both: p_e = 1.
	e := mustCompute(t, [][]float64{{9}}, Weights(index(1), Unweighted))
	if e.Defined() || e.Observed != 1 || e.Chance != 1 {
		t.Errorf("one category: %+v", e)
	}
	if _, err := Compute([][]float64{{1, 2}}, [][]float64{{1}}); err == nil {
		t.Error("non-square table accepted")
	}
	if _, err := Compute([][]float64{{-1}}, [][]float64{{1}}); err == nil {
		t.Error("negative count accepted")
	}
	if _, err := Table([][]float64{{1, 0}, {0, 1}}, []float64{2, 1}); err == nil {
		t.Error("descending scores accepted")
	}
}

func TestIntervalClipped(t *testing.T) {
	// Near-perfect agreement on few items: κ + 1.96·SE would pass 1.
	e := mustCompute(t, [][]float64{{3, 1}, {0, 3}}, Weights(index(2), Unweighted))
	if e.Hi > 1 || e.Lo < -1 || !(e.Lo < e.Kappa && e.Kappa < e.Hi) {
		t.Errorf("interval %v..%v around %v", e.Lo, e.Hi, e.Kappa)
	}
}

// Pairs builds the table from grade pairs: the sample's agreement matrix
// (testdata/README.md) gives 45 items, 41 agreeing.
func TestPairsSample(t *testing.T) {
	a, grades, err := Pairs(map[[2]int64]int64{
		{0, 0}: 9, {0, 1}: 3, {1, 1}: 8, {2, 2}: 8, {2, 3}: 1, {3, 3}: 8, {4, 4}: 8,
	}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(grades) != 5 || grades[0] != 0 || grades[4] != 4 {
		t.Fatalf("grades %v", grades)
	}
	if a.N != 45 {
		t.Errorf("n = %v", a.N)
	}
	near(t, "observed", a.Observed, 41.0/45, 1e-12)
	// Every disagreement is one grade apart, so the weighted kappas exceed
	// the unweighted one, quadratic most.
	if !(a.Unweighted.Kappa < a.Linear.Kappa && a.Linear.Kappa < a.Quadratic.Kappa) {
		t.Errorf("kappas %v %v %v", a.Unweighted.Kappa, a.Linear.Kappa, a.Quadratic.Kappa)
	}
	// Hand computation: rows 12,8,9,8,8; columns 9,11,8,9,8; n = 45.
	pe := (12.0*9 + 8*11 + 9*8 + 8*9 + 8*8) / (45 * 45)
	near(t, "unweighted", a.Unweighted.Kappa, (41.0/45-pe)/(1-pe), 1e-12)

	empty, g, err := Pairs(nil, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(g) != 0 || empty.N != 0 || !math.IsNaN(empty.Observed) || empty.Quadratic.Defined() {
		t.Errorf("no pairs: %+v %v", empty, g)
	}
}

// Grades beyond 2⁵³ that collapse to one float64 stay two categories (this
// panicked), and grades spanning all of int64 get their exact distances:
// the kappas equal those of small grades in the same proportions.
func TestPairsHugeGrades(t *testing.T) {
	const big = 1 << 53 // float64(big) == float64(big+1)
	cases := []struct {
		name       string
		huge, same [3]int64
	}{
		{"beyond 2^53", [3]int64{big, big + 1, big + 2}, [3]int64{0, 1, 2}},
		{"all of int64", [3]int64{math.MinInt64, 0, math.MaxInt64}, [3]int64{-1, 0, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			table := func(g [3]int64) map[[2]int64]int64 {
				return map[[2]int64]int64{{g[0], g[0]}: 4, {g[1], g[1]}: 3, {g[2], g[2]}: 5, {g[0], g[1]}: 2, {g[2], g[0]}: 1}
			}
			got, grades, err := Pairs(table(c.huge), 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(grades) != 3 || grades[0] != c.huge[0] || grades[1] != c.huge[1] || grades[2] != c.huge[2] {
				t.Fatalf("grades %v, want %v", grades, c.huge)
			}
			want, _, err := Pairs(table(c.same), 3)
			if err != nil {
				t.Fatal(err)
			}
			near(t, "unweighted", got.Unweighted.Kappa, want.Unweighted.Kappa, 1e-12)
			near(t, "linear", got.Linear.Kappa, want.Linear.Kappa, 1e-9)
			near(t, "quadratic", got.Quadratic.Kappa, want.Quadratic.Kappa, 1e-9)
		})
	}
}

// More distinct grades than allowed is an error, not a k×k allocation.
func TestPairsTooManyGrades(t *testing.T) {
	cells := map[[2]int64]int64{}
	for g := range int64(10) {
		cells[[2]int64{g, g + 1}] = 1
	}
	if _, _, err := Pairs(cells, 11); err != nil {
		t.Fatalf("11 grades, limit 11: %v", err)
	}
	_, _, err := Pairs(cells, 10)
	if !errors.Is(err, ErrTooManyGrades) {
		t.Fatalf("11 grades, limit 10: err %v, want ErrTooManyGrades", err)
	}
	if _, _, err := Pairs(map[[2]int64]int64{{0, 1}: -1}, 10); err == nil {
		t.Error("a negative count: no error")
	}
}

// Scores and weights a float64 cannot order or bound are errors.
func TestBadScoresAndWeights(t *testing.T) {
	counts := [][]float64{{1, 1}, {1, 1}}
	for _, scores := range [][]float64{{0, math.Inf(1)}, {math.NaN(), 1}, {1, 1}, {2, 1}} {
		if _, err := Table(counts, scores); err == nil {
			t.Errorf("scores %v: no error", scores)
		}
	}
	for _, w := range [][][]float64{
		{{1, math.NaN()}, {0, 1}},
		{{1, 2}, {0, 1}},
		{{1, -0.5}, {0, 1}},
		{{0.5, 0}, {0, 1}},
	} {
		if _, err := Compute(counts, w); err == nil {
			t.Errorf("weights %v: no error", w)
		}
	}
}
