package stages

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/source"
	"github.com/kneepipe/kneepipe/internal/table"
)

// checkAccounting asserts clean + excluded = listed in object terms: every
// listed key is either excluded (once) or a row under clean (the rows clean
// was de-duplicated from: each expert's copy of a kept image), never both.
func checkAccounting(t *testing.T, cleanRows, excluded arrow.RecordBatch, listed ...arrow.RecordBatch) {
	t.Helper()
	count := map[string]int{}
	for _, rec := range []arrow.RecordBatch{cleanRows, excluded} {
		keys := rec.Column(0).(*array.String)
		if rec.ColumnName(0) != "key" {
			t.Fatalf("first column %q, want key", rec.ColumnName(0))
		}
		for i := range keys.Len() {
			count[keys.Value(i)]++
		}
	}
	want := map[string]bool{}
	for _, rec := range listed {
		keys := rec.Column(0).(*array.String)
		for i := range keys.Len() {
			want[keys.Value(i)] = true
			if n := count[keys.Value(i)]; n != 1 {
				t.Errorf("listed %s: %d times in clean's rows and excluded, want once", keys.Value(i), n)
			}
		}
	}
	for k := range count {
		if !want[k] {
			t.Errorf("%s is in clean's rows or excluded but was not listed", k)
		}
	}
	if got, n := cleanRows.NumRows()+excluded.NumRows(), int64(len(want)); got != n {
		t.Errorf("clean's rows %d + excluded %d = %d, listed %d", cleanRows.NumRows(), excluded.NumRows(), got, n)
	}
}

// nearGroups builds a near_groups input from "group|file_id|similarity"
// rows.
func nearGroups(t *testing.T, m memory.Allocator, data ...string) arrow.RecordBatch {
	t.Helper()
	var gs []int64
	var ids []string
	var sims []float64
	for _, line := range data {
		f := strings.Split(line, "|")
		g, err1 := strconv.ParseInt(f[0], 10, 64)
		sim, err2 := strconv.ParseFloat(f[2], 64)
		if len(f) != 3 || err1 != nil || err2 != nil {
			t.Fatalf("near group row %q", line)
		}
		gs, ids, sims = append(gs, g), append(ids, f[1]), append(sims, sim)
	}
	return table.New(table.Int64s(m, "group", gs, nil), table.Strings(m, "file_id", ids), float64s(m, "similarity", sims))
}

// A crafted case with every reason: each listed key once, in listing
// order, the first reason standing when two inputs name a key.
func TestExclusionsReasons(t *testing.T) {
	env := testEnv(t)
	m := env.Mem
	objects := rows(t, m, "key,relative_path", nil,
		"s/k1|k1", "s/k2|k2", "s/k3|k3", "s/k4|k4", "s/k11|k11", "s/k5|k5", "s/k12|k12",
		"s/k6|k6", "s/k7|k7", "s/k8|k8", "s/k9|k9", "s/k13|k13", "s/k15|k15", "s/k16|k16", "s/k17|k17", "s/k4|k4")
	listRejected := rows(t, m, "key,reason", nil, "s/k14|key is not valid UTF-8")
	failed := rows(t, m, "key,error,attempts", []string{"attempts"}, "s/k1|GET: connection reset|4")
	fetchRejected := rows(t, m, "key,reason", nil, "s/k2|empty object", "s/k1|bytes are not a PNG")
	rejected := rows(t, m, "key,relative_path,reason", nil, "s/k3|k3|unknown grade label \"9Odd\"")
	const hdr = "key,relative_path,expert,file_id,severity"
	unique := rows(t, m, hdr, []string{"severity"},
		"s/k4|k4|I|h1|0", "s/k5|k5|II|h1|0", // agreed: in clean through k4's row
		"s/k6|k6|I|h2|1", "s/k7|k7|II|h2|2", // disagree
		"s/k8|k8|I|h3|3",                        // II lacks it
		"s/k9|k9|I|h5|2",                        // dropped by something no input tells of
		"s/k15|k15|I|h6|1", "s/k16|k16|II|h6|1", // a near-duplicate of h1
		"s/k17|k17|I|h2|1", // h2 disagreed on: that reason stands
	)
	removed := rows(t, m, hdr, []string{"severity"}, "s/k11|k11|I|h1|0", "s/k12|k12|II|h1|1")
	dis := rows(t, m, "file_id,I,II", []string{"I", "II"}, "h2|1|2", "h3|3|")
	near := nearGroups(t, m, "1|h1|1", "1|h6|0.97", "1|h2|0.96")
	clean := rows(t, m, hdr, []string{"severity"}, "s/k4|k4|I|h1|0")
	cleanRows := rows(t, m, "key", nil, "s/k4", "s/k5")
	for _, r := range []arrow.RecordBatch{objects, listRejected, failed, fetchRejected, rejected, unique, removed, dis, near, clean, cleanRows} {
		defer r.Release()
	}
	res := run(t, env, "exclusions", build(t, "exclusions", ""), map[string]arrow.RecordBatch{
		"objects": objects, "list_rejected": listRejected, "failed": failed, "fetch_rejected": fetchRejected, "rejected": rejected,
		"rows": unique, "removed": removed, "disagreements": dis, "near_groups": near, "clean": clean,
	})
	got := res.Outputs["excluded"]
	want := lines("key,relative_path,reason,detail,kept_key,kept_relative_path",
		"s/k1,k1,failed,GET: connection reset (4 attempts),,",
		"s/k2,k2,rejected,empty object,,",
		`s/k3,k3,rejected,"unknown grade label ""9Odd""",,`,
		`s/k11,k11,duplicate,"same expert, file_id as the kept copy",s/k4,k4`,
		`s/k12,k12,duplicate,"same expert, file_id as the kept copy; severity 1 here, 0 on the kept copy",s/k5,k5`,
		`s/k6,k6,disagreement,"I 1, II 2",,`,
		`s/k7,k7,disagreement,"I 1, II 2",,`,
		"s/k8,k8,missing_rater,I 3; not graded by II,,",
		`s/k9,k9,unexplained,"its image is not in clean, and no input says why",,`,
		`s/k13,k13,unexplained,"not among the compared rows, and no input says why",,`,
		"s/k15,k15,near_duplicate,near-duplicate group 1: similarity 0.9700 to the kept image,s/k4,k4",
		"s/k16,k16,near_duplicate,near-duplicate group 1: similarity 0.9700 to the kept image,s/k4,k4",
		`s/k17,k17,disagreement,"I 1, II 2",,`,
		"s/k14,,rejected,key is not valid UTF-8,,",
	)
	if g := csvOf(t, got); g != want {
		t.Errorf("excluded:\n%s\nwant\n%s", g, want)
	}
	checkAccounting(t, cleanRows, got, objects, listRejected)
}

// Three raters: present grades that differ are a disagreement even with
// a rater missing; present grades that agree are a missing rater.
func TestExclusionsThreeRaters(t *testing.T) {
	env := testEnv(t)
	m := env.Mem
	objects := rows(t, m, "key", nil, "a", "b")
	empty := rows(t, m, "key,error", nil)
	emptyR := rows(t, m, "key,reason", nil)
	unique := rows(t, m, "key,expert,file_id", nil, "a|A|h1", "b|B|h2")
	removed := rows(t, m, "key,expert,file_id", nil)
	dis := rows(t, m, "file_id,A,B,C", []string{"A", "B", "C"}, "h1|1||2", "h2|3|3|")
	clean := rows(t, m, "file_id", nil)
	for _, r := range []arrow.RecordBatch{objects, empty, emptyR, unique, removed, dis, clean} {
		defer r.Release()
	}
	res := run(t, env, "exclusions", build(t, "exclusions", ""), map[string]arrow.RecordBatch{
		"objects": objects, "list_rejected": emptyR, "failed": empty, "fetch_rejected": emptyR, "rejected": emptyR,
		"rows": unique, "removed": removed, "disagreements": dis, "clean": clean, // near_groups is optional
	})
	want := lines("key,relative_path,reason,detail,kept_key,kept_relative_path",
		`a,,disagreement,"A 1, C 2; not graded by B",,`,
		`b,,missing_rater,"A 3, B 3; not graded by C",,`,
	)
	if g := csvOf(t, res.Outputs["excluded"]); g != want {
		t.Errorf("excluded:\n%s\nwant\n%s", g, want)
	}
}

func TestExclusionsBadInputs(t *testing.T) {
	env := testEnv(t)
	m := env.Mem
	good := map[string]arrow.RecordBatch{
		"objects": rows(t, m, "key", nil, "a"), "list_rejected": rows(t, m, "key,reason", nil), "failed": rows(t, m, "key,error", nil), "fetch_rejected": rows(t, m, "key,reason", nil),
		"rejected": rows(t, m, "key,reason", nil), "rows": rows(t, m, "key,expert,file_id", nil, "a|A|h1"),
		"removed": rows(t, m, "key,expert,file_id", nil), "disagreements": rows(t, m, "file_id", nil), "near_groups": nearGroups(t, m), "clean": rows(t, m, "file_id", nil, "h1"),
	}
	for _, r := range good {
		defer r.Release()
	}
	noError := rows(t, m, "key", nil)
	defer noError.Release()
	noOn := rows(t, m, "key,file_id", nil)
	defer noOn.Release()
	st := build(t, "exclusions", "")
	for _, tt := range []struct {
		port string
		rec  arrow.RecordBatch
		want string
	}{
		{"failed", noError, `failed: no column "error"`},
		{"removed", noOn, `removed: no column "expert"`},
		{"clean", noError, `clean: no column "file_id"`},
		{"near_groups", noError, `near_groups: no column "group"`},
		{"objects", nil, `input "objects" missing`},
	} {
		in := map[string]arrow.RecordBatch{}
		for k, v := range good {
			in[k] = v
		}
		in[tt.port] = tt.rec
		_, err := st.Run(context.Background(), env, in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.port, err, tt.want)
		}
	}
	if err := buildErr(t, "exclusions", "{on: []}"); err == nil || !strings.Contains(err.Error(), "on:") {
		t.Errorf("on: [] gave %v", err)
	}
}

// The default pipeline's stages on the bundled sample: clean + excluded =
// listed, and the figures testdata/README.md lays out (8 duplicates, X1-X3
// and Y1 under both experts, U1 graded by I only).
func TestExclusionsSample(t *testing.T) {
	store, err := source.Open(context.Background(), source.Config{URI: "../testdata/sample"}, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	env := testEnv(t)
	env.Store = store
	env.Progress = func(string, int) Progress { return nopProgress{} }
	in := func(kv ...any) map[string]arrow.RecordBatch {
		out := map[string]arrow.RecordBatch{}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1].(arrow.RecordBatch)
		}
		return out
	}
	list := run(t, env, "list", build(t, "list", ""), nil).Outputs
	fetch := run(t, env, "fetch-hash", build(t, "fetch-hash", "{fingerprint: true}"), in("objects", list["objects"])).Outputs
	graded := run(t, env, "map-severity", build(t, "map-severity", ""), in("rows", fetch["rows"])).Outputs
	unique := run(t, env, "dedupe", build(t, "dedupe", ""), in("rows", graded["rows"])).Outputs
	cross := run(t, env, "cross-check", build(t, "cross-check", "{missing_disagrees: true}"), in("rows", unique["rows"])).Outputs
	agreed := run(t, env, "filter", build(t, "filter", "{column: file_id, mode: drop}"), in("rows", unique["rows"], "by", cross["disagreements"])).Outputs
	// The pipeline's min_similarity, 0.986: the sample's distinct images stay
	// below it (testdata/gen's TestNearDuplicates).
	near := run(t, env, "near-duplicates", build(t, "near-duplicates", "{min_similarity: '0.986'}"), in("rows", agreed["rows"])).Outputs
	clean := run(t, env, "dedupe", build(t, "dedupe", "{on: [file_id]}"), in("rows", near["rows"])).Outputs
	ex := run(t, env, "exclusions", build(t, "exclusions", ""), in(
		"objects", list["objects"], "list_rejected", list["rejected"], "failed", fetch["failed"], "fetch_rejected", fetch["rejected"], "rejected", graded["rejected"],
		"rows", unique["rows"], "removed", unique["removed"], "disagreements", cross["disagreements"], "near_groups", near["groups"], "clean", clean["rows"],
	)).Outputs["excluded"]

	// clean's rows: the kept row of each image and its other copies; 41
	// agreed images, 82 rows, less N6 (a rescan of N9) under each expert.
	if list["objects"].NumRows() != 99 || clean["rows"].NumRows() != 40 || clean["rows"].NumRows()+clean["removed"].NumRows() != 80 {
		t.Fatalf("listed %d, clean %d+%d", list["objects"].NumRows(), clean["rows"].NumRows(), clean["removed"].NumRows())
	}
	underClean := rows(t, env.Mem, "key", nil, append(keysOf(clean["rows"]), keysOf(clean["removed"])...)...)
	defer underClean.Release()
	checkAccounting(t, underClean, ex, list["objects"], list["rejected"])

	reasons := map[string]int{}
	rc := ex.Column(2).(*array.String)
	for i := range rc.Len() {
		reasons[rc.Value(i)]++
	}
	if len(reasons) != 4 || reasons[ReasonDuplicate] != 8 || reasons[ReasonDisagreement] != 8 || reasons[ReasonMissingRater] != 1 || reasons[ReasonNearDup] != 2 {
		t.Errorf("reasons %v, want 8 duplicates, 8 disagreements, 1 missing rater, 2 near-duplicates", reasons)
	}
	// Rows in listing order (byte order: (1), (10), (11), ...): the first
	// excluded is X3 under I, NormalG0 (11); DoubtfulG1 (2) is the copy
	// kept for (9); N9, under I at NormalG0 (12), is kept for N6 under both
	// experts.
	text := csvOf(t, ex)
	for _, want := range []string{
		"MedicalExpert-I/0Normal/NormalG0 (4).png,MedicalExpert-I/0Normal/NormalG0 (4).png,disagreement,\"MedicalExpert-I 0, MedicalExpert-II 1\",,\n",
		"MedicalExpert-I/1Doubtful/DoubtfulG1 (9).png,MedicalExpert-I/1Doubtful/DoubtfulG1 (9).png,duplicate,\"same expert, file_id as the kept copy\",MedicalExpert-I/1Doubtful/DoubtfulG1 (2).png,MedicalExpert-I/1Doubtful/DoubtfulG1 (2).png\n",
		"MedicalExpert-I/3Moderate/ModerateG3 (6).png,MedicalExpert-I/3Moderate/ModerateG3 (6).png,missing_rater,MedicalExpert-I 3; not graded by MedicalExpert-II,,\n",
		"MedicalExpert-I/0Normal/NormalG0 (8).png,MedicalExpert-I/0Normal/NormalG0 (8).png,near_duplicate,near-duplicate group 1: similarity 0.99",
		"MedicalExpert-II/0Normal/NormalG0 (6).png,MedicalExpert-II/0Normal/NormalG0 (6).png,near_duplicate,near-duplicate group 1: similarity 0.99",
		" to the kept image,MedicalExpert-I/0Normal/NormalG0 (12).png,MedicalExpert-I/0Normal/NormalG0 (12).png\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("excluded lacks %q:\n%s", want, text)
		}
	}
	if first := strings.SplitN(text, "\n", 3)[1]; !strings.HasPrefix(first, "MedicalExpert-I/0Normal/NormalG0 (11).png,") {
		t.Errorf("first row %q, want X3 under I", first)
	}
}

func keysOf(rec arrow.RecordBatch) []string {
	keys := rec.Column(0).(*array.String)
	out := make([]string, keys.Len())
	for i := range out {
		out[i] = keys.Value(i)
	}
	sort.Strings(out)
	return out
}
