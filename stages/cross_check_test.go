package stages

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

// Two experts as in the notebook: the pivot, the (I, II) agreement matrix
// and the items whose grades differ.
func TestCrossCheckTwoRaters(t *testing.T) {
	env := testEnv(t)
	in := rows(t, env.Mem, "file_id,expert,severity", []string{"severity"},
		"h1|MedicalExpert-I|0",
		"h2|MedicalExpert-II|1",
		"h1|MedicalExpert-II|0",
		"h2|MedicalExpert-I|0",
		"h3|MedicalExpert-I|2",
		"h3|MedicalExpert-II|3",
		"h4|MedicalExpert-I|1",
		"h4|MedicalExpert-II|1",
		"h5|MedicalExpert-I|3",  // only expert I graded h5
		"h0|MedicalExpert-II|4", // only expert II graded h0
		"h6|MedicalExpert-II|0",
		"h6|MedicalExpert-I|0",
	)
	defer in.Release()

	wantWide := lines("file_id,MedicalExpert-I,MedicalExpert-II",
		"h0,,4", "h1,0,0", "h2,0,1", "h3,2,3", "h4,1,1", "h5,3,", "h6,0,0")
	wantMatrix := lines("rater_a,rater_b,grade_a,grade_b,count",
		"MedicalExpert-I,MedicalExpert-II,0,0,2",
		"MedicalExpert-I,MedicalExpert-II,0,1,1",
		"MedicalExpert-I,MedicalExpert-II,1,1,1",
		"MedicalExpert-I,MedicalExpert-II,2,3,1",
	)
	wantMissing := lines("file_id,expert", "h0,MedicalExpert-I", "h5,MedicalExpert-II")
	for _, tt := range []struct {
		params        string
		disagreements []string
	}{
		{"", []string{"h2,0,1", "h3,2,3"}},
		{"{missing_disagrees: false}", []string{"h2,0,1", "h3,2,3"}},
		// The notebook's pivot: NaN != grade, so a lone grade disagrees.
		{"{missing_disagrees: true}", []string{"h0,,4", "h2,0,1", "h3,2,3", "h5,3,"}},
	} {
		t.Run(tt.params, func(t *testing.T) {
			res := run(t, env, "cross-check", build(t, "cross-check", tt.params), map[string]arrow.RecordBatch{"rows": in})
			if got := csvOf(t, res.Outputs["wide"]); got != wantWide {
				t.Errorf("wide:\n%s\nwant\n%s", got, wantWide)
			}
			if got, want := schemaOf(res.Outputs["wide"]), "file_id:utf8,MedicalExpert-I:int64,MedicalExpert-II:int64"; got != want {
				t.Errorf("wide schema %s, want %s", got, want)
			}
			if got := csvOf(t, res.Outputs["matrix"]); got != wantMatrix {
				t.Errorf("matrix:\n%s\nwant\n%s", got, wantMatrix)
			}
			want := lines(append([]string{"file_id,MedicalExpert-I,MedicalExpert-II"}, tt.disagreements...)...)
			if got := csvOf(t, res.Outputs["disagreements"]); got != want {
				t.Errorf("disagreements:\n%s\nwant\n%s", got, want)
			}
			if got := csvOf(t, res.Outputs["missing"]); got != wantMissing {
				t.Errorf("missing:\n%s\nwant\n%s", got, wantMissing)
			}
		})
	}
}

// Three raters: one matrix per pair (a before b in name order), grade
// pairs in order; a missing rater leaves the pairs it is part of.
func TestCrossCheckThreeRaters(t *testing.T) {
	env := testEnv(t)
	in := rows(t, env.Mem, "item,who,kl", []string{"kl"},
		"i1|A|0", "i1|B|0", "i1|C|0",
		"i2|A|1", "i2|B|0", "i2|C|1",
		"i3|A|2", "i3|B|2", // C did not grade i3
		"i4|C|2", "i4|B|1", "i4|A|0",
		"i5|A|0", "i5|B|0", "i5|C|0",
	)
	defer in.Release()
	st := build(t, "cross-check", "{item: item, rater: who, grade: kl}")
	res := run(t, env, "cross-check", st, map[string]arrow.RecordBatch{"rows": in})
	wantMatrix := lines("rater_a,rater_b,grade_a,grade_b,count",
		"A,B,0,0,2", "A,B,0,1,1", "A,B,1,0,1", "A,B,2,2,1",
		"A,C,0,0,2", "A,C,0,2,1", "A,C,1,1,1",
		"B,C,0,0,2", "B,C,0,1,1", "B,C,1,2,1",
	)
	if got := csvOf(t, res.Outputs["matrix"]); got != wantMatrix {
		t.Errorf("matrix:\n%s\nwant\n%s", got, wantMatrix)
	}
	if got, want := csvOf(t, res.Outputs["disagreements"]), lines("item,A,B,C", "i2,1,0,1", "i4,0,1,2"); got != want {
		t.Errorf("disagreements:\n%s\nwant\n%s", got, want)
	}
	if got, want := csvOf(t, res.Outputs["missing"]), lines("item,who", "i3,C"); got != want {
		t.Errorf("missing:\n%s\nwant\n%s", got, want)
	}

	res = run(t, env, "cross-check", build(t, "cross-check", "{item: item, rater: who, grade: kl, missing_disagrees: true}"), map[string]arrow.RecordBatch{"rows": in})
	if got, want := csvOf(t, res.Outputs["disagreements"]), lines("item,A,B,C", "i2,1,0,1", "i3,2,2,", "i4,0,1,2"); got != want {
		t.Errorf("disagreements (missing_disagrees):\n%s\nwant\n%s", got, want)
	}
}

// Grades are any integers: a negative grade is a grade, not "none yet".
func TestCrossCheckNegativeGrades(t *testing.T) {
	env := testEnv(t)
	in := rows(t, env.Mem, "file_id,expert,severity", []string{"severity"},
		"j1|A|-1", "j1|B|2",
		"j2|A|-1", "j2|B|-1",
		"j3|A|-2", "j3|B|-1",
	)
	defer in.Release()
	res := run(t, env, "cross-check", build(t, "cross-check", ""), map[string]arrow.RecordBatch{"rows": in})
	if got, want := csvOf(t, res.Outputs["disagreements"]), lines("file_id,A,B", "j1,-1,2", "j3,-2,-1"); got != want {
		t.Errorf("disagreements:\n%s\nwant\n%s", got, want)
	}
}

func TestCrossCheckEmpty(t *testing.T) {
	env := testEnv(t)
	in := rows(t, env.Mem, "file_id,expert,severity", []string{"severity"})
	defer in.Release()
	res := run(t, env, "cross-check", build(t, "cross-check", ""), map[string]arrow.RecordBatch{"rows": in})
	for name, want := range map[string]string{
		"wide":          "file_id\n",
		"matrix":        "rater_a,rater_b,grade_a,grade_b,count\n",
		"disagreements": "file_id\n",
		"missing":       "file_id,expert\n",
	} {
		if got := csvOf(t, res.Outputs[name]); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestCrossCheckErrors(t *testing.T) {
	env := testEnv(t)
	tests := []struct {
		name   string
		header string
		ints   []string
		data   []string
		want   string
	}{
		{"rater grades an item twice", "file_id,expert,severity", []string{"severity"},
			[]string{"h1|I|0", "h1|II|0", "h1|I|0"}, "item h1 has more than one grade from I: de-duplicate first"},
		{"empty grade", "file_id,expert,severity", []string{"severity"},
			[]string{"h1|I|0", "h2|I|"}, "row 2: severity is empty"},
		{"grade not an integer", "file_id,expert,severity", nil,
			[]string{"h1|I|0Normal"}, `column "severity" is utf8, want int64`},
		{"no rater column", "file_id,severity", []string{"severity"},
			[]string{"h1|0"}, `no column "expert"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := rows(t, env.Mem, tt.header, tt.ints, tt.data...)
			defer in.Release()
			res, err := build(t, "cross-check", "").Run(t.Context(), env, map[string]arrow.RecordBatch{"rows": in})
			if err == nil {
				for _, r := range res.Outputs {
					r.Release()
				}
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want %q", err, tt.want)
			}
		})
	}
}
