package stages

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

const dedupeHeader = "expert,file_id,severity,relative_path"

func TestDedupe(t *testing.T) {
	env := testEnv(t)
	in := rows(t, env.Mem, dedupeHeader, []string{"severity"},
		"I|h1|0|p0",
		"I|h2|1|p1",
		"II|h1|0|p2",
		"I|h1|0|p3",  // duplicate of p0
		"I|h2|2|p4",  // duplicate of p1, another grade
		"II|h1|1|p5", // duplicate of p2, another grade
		"I|h1|0|p6",  // duplicate of p0
		"I|h3|3|p7",
		"I|h2|1|p8", // duplicate of p1, same grade
	)
	defer in.Release()
	res := run(t, env, "dedupe", build(t, "dedupe", ""), map[string]arrow.RecordBatch{"rows": in})

	if got, want := csvOf(t, res.Outputs["rows"]), lines(dedupeHeader, "I,h1,0,p0", "I,h2,1,p1", "II,h1,0,p2", "I,h3,3,p7"); got != want {
		t.Errorf("rows:\n%s\nwant\n%s", got, want)
	}
	if got, want := csvOf(t, res.Outputs["removed"]), lines(dedupeHeader, "I,h1,0,p3", "I,h2,2,p4", "II,h1,1,p5", "I,h1,0,p6", "I,h2,1,p8"); got != want {
		t.Errorf("removed (input order):\n%s\nwant\n%s", got, want)
	}
	// Groups are numbered by first duplicate seen: (I,h1) 1, (I,h2) 2,
	// (II,h1) 3; only the two that disagree are reported, every member in
	// input order, the kept row first.
	wantConflicts := lines(dedupeHeader+",group",
		"I,h2,1,p1,2", "I,h2,2,p4,2", "I,h2,1,p8,2",
		"II,h1,0,p2,3", "II,h1,1,p5,3",
	)
	if got := csvOf(t, res.Outputs["conflicts"]); got != wantConflicts {
		t.Errorf("conflicts:\n%s\nwant\n%s", got, wantConflicts)
	}
	if got := schemaOf(res.Outputs["conflicts"]); got != "expert:utf8,file_id:utf8,severity:int64,relative_path:utf8,group:int64" {
		t.Errorf("conflicts schema %s", got)
	}
}

func TestDedupeNoCheckAndNoDuplicates(t *testing.T) {
	env := testEnv(t)
	in := rows(t, env.Mem, dedupeHeader, []string{"severity"}, "I|h1|0|p0", "I|h1|4|p1", "I|h2|0|p2")
	defer in.Release()
	res := run(t, env, "dedupe", build(t, "dedupe", "{check: ''}"), map[string]arrow.RecordBatch{"rows": in})
	if got, want := csvOf(t, res.Outputs["rows"]), lines(dedupeHeader, "I,h1,0,p0", "I,h2,0,p2"); got != want {
		t.Errorf("rows:\n%s\nwant\n%s", got, want)
	}
	if got, want := csvOf(t, res.Outputs["conflicts"]), lines(dedupeHeader+",group"); got != want {
		t.Errorf("conflicts without a check:\n%s\nwant\n%s", got, want)
	}

	res = run(t, env, "dedupe", build(t, "dedupe", "{on: [relative_path]}"), map[string]arrow.RecordBatch{"rows": in})
	if res.Outputs["rows"].NumRows() != 3 || res.Outputs["removed"].NumRows() != 0 || res.Outputs["conflicts"].NumRows() != 0 {
		t.Errorf("unique keys: rows %d removed %d conflicts %d", res.Outputs["rows"].NumRows(), res.Outputs["removed"].NumRows(), res.Outputs["conflicts"].NumRows())
	}
	if got := schemaOf(res.Outputs["removed"]); got != schemaOf(in) {
		t.Errorf("empty removed schema %s, want the input's", got)
	}
}

// Key columns are compared as a tuple: no value can reach across a column
// boundary, and a null is not an empty string.
func TestDedupeKeyTuples(t *testing.T) {
	env := testEnv(t)
	in := rows(t, env.Mem, "a,b,n", []string{"n"},
		"x\x1fy|z|1",
		"x|y\x1fz|2",
		"x|y\x1fz|3", // the only real duplicate
		"1:x|y|4",
		"1|x:y|5",
		"|1|",
		"|1|7",
	)
	defer in.Release()
	res := run(t, env, "dedupe", build(t, "dedupe", "{on: [a, b], check: ''}"), map[string]arrow.RecordBatch{"rows": in})
	if got, want := csvOf(t, res.Outputs["removed"]), lines("a,b,n", "x,y\x1fz,3", ",1,7"); got != want {
		t.Errorf("removed:\n%q\nwant\n%q", got, want)
	}
	// An int64 key column, with a null: the null and 1 are different keys.
	res = run(t, env, "dedupe", build(t, "dedupe", "{on: [n], check: a}"), map[string]arrow.RecordBatch{"rows": in})
	if got, want := csvOf(t, res.Outputs["rows"]), lines("a,b,n", "x\x1fy,z,1", "x,y\x1fz,2", "x,y\x1fz,3", "1:x,y,4", "1,x:y,5", ",1,", ",1,7"); got != want {
		t.Errorf("rows on n:\n%q\nwant\n%q", got, want)
	}
}

func TestDedupeErrors(t *testing.T) {
	if err := buildErr(t, "dedupe", "{on: []}"); err == nil || !strings.Contains(err.Error(), "on: name at least one column") {
		t.Errorf("on: [] error %v", err)
	}
	if err := buildErr(t, "dedupe", "{on: expert}"); err == nil || !strings.Contains(err.Error(), `parameter "on": want a list of strings`) {
		t.Errorf("on: scalar error %v", err)
	}
	env := testEnv(t)
	in := rows(t, env.Mem, "expert,file_id", nil, "I|h")
	defer in.Release()
	for params, want := range map[string]string{
		"{on: [expert, nope]}":            `no column "nope" (have [expert file_id])`,
		"{on: [expert], check: severity}": `no column "severity"`,
	} {
		res, err := build(t, "dedupe", params).Run(t.Context(), env, map[string]arrow.RecordBatch{"rows": in})
		if err == nil {
			for _, r := range res.Outputs {
				r.Release()
			}
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("dedupe %s: error %v, want %q", params, err, want)
		}
	}
}
