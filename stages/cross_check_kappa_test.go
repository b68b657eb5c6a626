package stages

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/kneepipe/kneepipe/internal/kappa"
	"github.com/kneepipe/kneepipe/internal/table"
)

func float64Col(t *testing.T, rec arrow.RecordBatch, name string) *array.Float64 {
	t.Helper()
	i, err := table.Index(rec, name)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := rec.Column(i).(*array.Float64)
	if !ok {
		t.Fatalf("column %s is %s", name, rec.Column(i).DataType())
	}
	return c
}

// The kappa output: one row per pair of raters, the columns the report
// reads, values equal to the kappa package's on the same table.
func TestCrossCheckKappa(t *testing.T) {
	env := testEnv(t)
	// Raters A, B, C; A and B grade items 1..6, C only item 1.
	in := rows(t, env.Mem, "file_id,expert,severity", []string{"severity"},
		"1|A|0", "1|B|0", "1|C|2",
		"2|A|1", "2|B|1",
		"3|A|2", "3|B|3",
		"4|A|3", "4|B|3",
		"5|A|4", "5|B|4",
		"6|A|0", "6|B|1",
	)
	defer in.Release()
	res := run(t, env, "cross-check", build(t, "cross-check", ""), map[string]arrow.RecordBatch{"rows": in})
	k := res.Outputs["kappa"]
	want := "rater_a:utf8,rater_b:utf8,n:int64,observed:float64,kappa:float64,kappa_lo:float64,kappa_hi:float64," +
		"linear:float64,linear_lo:float64,linear_hi:float64,quadratic:float64,quadratic_lo:float64,quadratic_hi:float64"
	if got := schemaOf(k); got != want {
		t.Fatalf("schema %s\nwant %s", got, want)
	}
	if k.NumRows() != 3 {
		t.Fatalf("%d rows, want 3 (A-B, A-C, B-C)", k.NumRows())
	}
	ra, _ := table.StringCol(k, "rater_a")
	rb, _ := table.StringCol(k, "rater_b")
	n, _ := table.Int64Col(k, "n")
	if ra.Value(0) != "A" || rb.Value(0) != "B" || n.Value(0) != 6 || ra.Value(2) != "B" || rb.Value(2) != "C" || n.Value(1) != 1 {
		t.Errorf("pairs: %s", csvOf(t, k))
	}
	ag, _, err := kappa.Pairs(map[[2]int64]int64{{0, 0}: 1, {1, 1}: 1, {2, 3}: 1, {3, 3}: 1, {4, 4}: 1, {0, 1}: 1}, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		col  string
		want float64
	}{
		{"observed", 4.0 / 6}, {"kappa", ag.Unweighted.Kappa}, {"kappa_lo", ag.Unweighted.Lo}, {"kappa_hi", ag.Unweighted.Hi},
		{"linear", ag.Linear.Kappa}, {"linear_hi", ag.Linear.Hi},
		{"quadratic", ag.Quadratic.Kappa}, {"quadratic_lo", ag.Quadratic.Lo},
	} {
		if got := float64Col(t, k, c.col).Value(0); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("A-B %s = %v, want %v", c.col, got, c.want)
		}
	}
	// A and C share one item, graded 0 and 2: each rater used one
	// category, different ones, so p_e = 0 and kappa = 0 (defined).
	for _, col := range []string{"kappa", "linear", "quadratic"} {
		if float64Col(t, k, col).IsNull(1) {
			t.Errorf("A-C %s null, want a value", col)
		}
	}
}

func TestCrossCheckKappaUndefined(t *testing.T) {
	env := testEnv(t)
	// Both raters give every item grade 2: p_e = 1, kappa undefined. A and
	// a rater with no common items: n = 0, everything null.
	in := rows(t, env.Mem, "file_id,expert,severity", []string{"severity"},
		"1|A|2", "1|B|2", "2|A|2", "2|B|2", "3|C|1",
	)
	defer in.Release()
	res := run(t, env, "cross-check", build(t, "cross-check", ""), map[string]arrow.RecordBatch{"rows": in})
	k := res.Outputs["kappa"]
	got := csvOf(t, k)
	want := lines(
		"rater_a,rater_b,n,observed,kappa,kappa_lo,kappa_hi,linear,linear_lo,linear_hi,quadratic,quadratic_lo,quadratic_hi",
		"A,B,2,1.0,,,,,,,,,",
		"A,C,0,,,,,,,,,,",
		"B,C,0,,,,,,,,,,",
	)
	if got != want {
		t.Errorf("kappa output:\n%s\nwant\n%s", got, want)
	}
}

// Grades a float64 cannot tell apart are no panic (the stage used to crash
// the process) but two grades; more distinct grades than max_grades is a
// stage error naming the parameter.
func TestCrossCheckGradeLimits(t *testing.T) {
	env := testEnv(t)
	in := rows(t, env.Mem, "file_id,expert,severity", []string{"severity"},
		"1|A|9007199254740992", "1|B|9007199254740993",
		"2|A|9007199254740993", "2|B|9007199254740993",
		"3|A|0", "3|B|0",
	)
	defer in.Release()
	res := run(t, env, "cross-check", build(t, "cross-check", ""), map[string]arrow.RecordBatch{"rows": in})
	if got := res.Outputs["disagreements"].NumRows(); got != 1 {
		t.Errorf("%d disagreements, want 1 (item 1)", got)
	}
	if k := float64Col(t, res.Outputs["kappa"], "kappa"); k.IsNull(0) || !(k.Value(0) > 0 && k.Value(0) < 1) {
		t.Errorf("kappa %v, want within (0, 1)", k)
	}

	_, err := build(t, "cross-check", "max_grades: 2").Run(context.Background(), env, map[string]arrow.RecordBatch{"rows": in})
	if err == nil || !strings.Contains(err.Error(), "max_grades") || !strings.Contains(err.Error(), "more than 2 distinct") {
		t.Errorf("3 grades, max_grades 2: err %v, want one naming max_grades", err)
	}
}
