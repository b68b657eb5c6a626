package stages

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/kneepipe/kneepipe/internal/table"
)

const splitHeader = "file_id,patient,near_group,expert,severity"

// splitRows runs a split stage over data rows of splitHeader and returns
// file_id -> split and file_id -> group.
func splitRows(t *testing.T, env *Env, params string, data []string) (map[string]string, map[string]string, *Result) {
	t.Helper()
	in := rows(t, env.Mem, splitHeader, []string{"severity"}, data...)
	defer in.Release()
	res := run(t, env, "split", build(t, "split", params), map[string]arrow.RecordBatch{"rows": in})
	out := res.Outputs["rows"]
	ids, _ := table.StringCol(out, "file_id")
	sp, err := table.StringCol(out, "split")
	if err != nil {
		t.Fatal(err)
	}
	gr, err := table.StringCol(out, "split_group")
	if err != nil {
		t.Fatal(err)
	}
	splits, groups := map[string]string{}, map[string]string{}
	for i := range ids.Len() {
		id := ids.Value(i)
		if s, ok := splits[id]; ok && s != sp.Value(i) {
			t.Fatalf("file_id %s in %s and %s", id, s, sp.Value(i))
		}
		splits[id], groups[id] = sp.Value(i), gr.Value(i)
	}
	return splits, groups, res
}

const patientGroups = "{groups: [patient, file_id], optional_groups: [near_group]}"

func TestSplitGroupPure(t *testing.T) {
	env := testEnv(t)
	var data []string
	// 40 patients with two knees each, both raters' copies of every image,
	// and near-duplicate groups that link patient pairs (p0-p1, p2-p3, ...).
	for p := range 40 {
		for side := range 2 {
			id := fmt.Sprintf("h%d%c", p, 'L'+side*('R'-'L'))
			near := ""
			if side == 1 {
				near = fmt.Sprintf("n%d", p/2)
			}
			for _, ex := range []string{"I", "II"} {
				data = append(data, fmt.Sprintf("%s|%07d|%s|%s|%d", id, p, near, ex, p%5))
			}
		}
	}
	splits, groups, res := splitRows(t, env, patientGroups, data)
	for p := 0; p < 40; p += 2 {
		a, b := fmt.Sprintf("h%dL", p), fmt.Sprintf("h%dR", p+1)
		if splits[a] != splits[b] {
			t.Errorf("patients %d and %d are linked by near_group n%d but split %s / %s", p, p+1, p/2, splits[a], splits[b])
		}
		// The component's key is its least own key: the smaller patient.
		if want := fmt.Sprintf("patient=%07d", p); groups[b] != want {
			t.Errorf("group of %s = %q, want %q", b, groups[b], want)
		}
	}
	if got := res.Stats["groups"]; got != 20 {
		t.Errorf("groups = %d, want 20", got)
	}
	// The odd patients' 4 rows each take the even patient's key.
	if got := res.Stats["borrowed"]; got != 80 {
		t.Errorf("borrowed = %d, want 80", got)
	}
	seen := map[string]bool{}
	for _, s := range splits {
		seen[s] = true
	}
	if len(seen) < 2 {
		t.Errorf("20 groups all went to %v: the hash does not spread", seen)
	}
}

// A component's split must not depend on the order of the rows.
func TestSplitIndependentOfRowOrder(t *testing.T) {
	env := testEnv(t)
	var data []string
	for i := range 200 {
		data = append(data, fmt.Sprintf("h%d|%07d|n%d|I|%d", i, i/3, i/7, i%5))
	}
	want, wantGroups, _ := splitRows(t, env, patientGroups, data)
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(data), func(i, j int) { data[i], data[j] = data[j], data[i] })
	got, gotGroups, _ := splitRows(t, env, patientGroups, data)
	for id := range want {
		if got[id] != want[id] || gotGroups[id] != wantGroups[id] {
			t.Errorf("%s: %s/%s after shuffling, %s/%s before", id, got[id], gotGroups[id], want[id], wantGroups[id])
		}
	}
}

// The stability promise: adding images that share no group value with
// existing ones, and removing images, never moves an existing image; an
// image alone in its group gets the split it would get alone.
func TestSplitStableUnderAdditionsAndRemovals(t *testing.T) {
	env := testEnv(t)
	image := func(p, side int) string {
		return fmt.Sprintf("h%d_%d|%07d|n%d|I|%d", p, side, p, p/2, p%5) // near groups link patient pairs
	}
	var base []string
	for p := range 300 {
		base = append(base, image(p, 0), image(p, 1))
	}
	before, beforeGroups, _ := splitRows(t, env, patientGroups, base)

	// Remove every third pair of linked patients (whole components), add 500 new patients.
	var changed []string
	for p := range 300 {
		if (p/2)%3 != 0 {
			changed = append(changed, image(p, 0), image(p, 1))
		}
	}
	for p := 1000; p < 1500; p++ {
		changed = append(changed, image(p, 0), image(p, 1))
	}
	// A new knee of an existing patient joins its component without moving it.
	changed = append(changed, fmt.Sprintf("extra|%07d||I|2", 5))
	after, afterGroups, _ := splitRows(t, env, patientGroups, changed)
	moved := 0
	for id, s := range after {
		if b, ok := before[id]; ok && b != s {
			moved++
		}
		// Stronger than the split (which a changed key keeps by chance
		// with the probability of its fraction): the key itself holds.
		if g, ok := beforeGroups[id]; ok && g != afterGroups[id] {
			t.Errorf("%s: group key %s became %s", id, g, afterGroups[id])
		}
	}
	if moved > 0 {
		t.Errorf("%d existing images moved split when unrelated images were added or removed", moved)
	}
	if after["extra"] != before["h5_0"] {
		t.Errorf("a new knee of patient 5 went to %s, the patient is in %s", after["extra"], before["h5_0"])
	}

	// Alone, every image of the base set gets the split it had among all.
	for i := 0; i < len(base); i += 37 {
		fields := strings.Split(base[i], "|")
		fields[2] = "" // no near-duplicate partner when alone
		alone, _, _ := splitRows(t, env, patientGroups, []string{strings.Join(fields, "|")})
		if id := fields[0]; alone[id] != before[id] && !linkedToSmaller(fields[1]) {
			t.Errorf("%s alone in %s, among all in %s", id, alone[id], before[id])
		}
	}
}

// linkedToSmaller says whether the patient's near group links it to a
// patient with a smaller id (then its component key is the other's).
func linkedToSmaller(patient string) bool {
	var p int
	fmt.Sscanf(patient, "%d", &p)
	return p%2 == 1
}

// Merging is the only way an image moves: a new near-duplicate that links
// two patients puts the larger patient's images into the smaller's split.
func TestSplitMergeTakesTheLeastKey(t *testing.T) {
	env := testEnv(t)
	// Find two patients the hash puts into different splits.
	s := build(t, "split", patientGroups).(*declared).Stage.(*split)
	a, b := "0000001", ""
	for p := 2; b == ""; p++ {
		if id := fmt.Sprintf("%07d", p); s.assign("patient="+id) != s.assign("patient="+a) {
			b = id
		}
	}
	before, _, _ := splitRows(t, env, patientGroups, []string{"ha|" + a + "||I|0", "hb|" + b + "||I|1"})
	after, groups, _ := splitRows(t, env, patientGroups, []string{"ha|" + a + "|n|I|0", "hb|" + b + "||I|1", "hc|" + b + "|n|I|1"})
	if before["ha"] == before["hb"] {
		t.Fatalf("setup: both patients in %s", before["ha"])
	}
	if after["ha"] != before["ha"] || after["hb"] != before["ha"] || groups["hb"] != "patient="+a {
		t.Errorf("after the merge ha %s hb %s (group %s); want both in %s, patient %s's split", after["ha"], after["hb"], groups["hb"], before["ha"], a)
	}
}

// The hash of a key is the contract with every earlier run: pin it. The
// values were computed independently with Python's hashlib:
// int.from_bytes(sha256(b"8:kneepipe" + key)[:8], "big") >> 11) / 2**53.
func TestSplitAssignmentPinned(t *testing.T) {
	s := build(t, "split", "").(*declared).Stage.(*split)
	got := []string{}
	for _, k := range []string{"file_id=a", "file_id=b", "patient=9000296", "patient=9000297", "x", ""} {
		got = append(got, s.assign(k))
	}
	if want := "train,train,train,test,train,train"; strings.Join(got, ",") != want {
		t.Errorf("assignments %s, want %s: changing the hash moves every image of every existing split", strings.Join(got, ","), want)
	}
	salted := build(t, "split", "{salt: other}").(*declared).Stage.(*split)
	differ := 0
	for i := range 100 {
		k := fmt.Sprintf("file_id=%d", i)
		if s.assign(k) != salted.assign(k) {
			differ++
		}
	}
	if differ < 10 {
		t.Errorf("another salt changed only %d of 100 assignments", differ)
	}
}

func TestSplitFractionsAndShares(t *testing.T) {
	var logs bytes.Buffer
	env := testEnv(t)
	env.Log = slog.New(slog.NewTextHandler(&logs, nil))
	var data []string
	for i := range 10000 {
		data = append(data, fmt.Sprintf("h%d|||I|%d", i, i%4)) // grades 0..3
	}
	data = append(data, "rare||||4") // one image of grade 4: two splits lack it
	splits, _, res := splitRows(t, env, "{splits: [a, b, c], fractions: ['0.7', '0.2', '0.1']}", data)
	count := map[string]int{}
	for _, s := range splits {
		count[s]++
	}
	for name, f := range map[string]float64{"a": 0.7, "b": 0.2, "c": 0.1} {
		if got := float64(count[name]) / float64(len(splits)); got < f-0.02 || got > f+0.02 {
			t.Errorf("split %s holds %.3f of the rows, want about %.1f", name, got, f)
		}
	}
	shares := res.Outputs["shares"]
	if got := schemaOf(shares); got != "split:utf8,grade:int64,count:int64,share:float64" {
		t.Fatalf("shares schema %s", got)
	}
	if shares.NumRows() != 15 {
		t.Fatalf("shares has %d rows, want 3 splits x 5 grades", shares.NumRows())
	}
	sp, _ := table.StringCol(shares, "split")
	gr, _ := table.Int64Col(shares, "grade")
	cn, _ := table.Int64Col(shares, "count")
	sh := shares.Column(3).(*array.Float64)
	sum := map[int64]float64{}
	for i := range int(shares.NumRows()) {
		want := map[string]int{}
		for id, s := range splits {
			g := int64(4)
			if id != "rare" {
				fmt.Sscanf(id, "h%d", &g)
				g %= 4
			}
			if s == sp.Value(i) && g == gr.Value(i) {
				want[s]++
			}
		}
		if int(cn.Value(i)) != want[sp.Value(i)] {
			t.Errorf("shares row %d (%s, grade %d): count %d, want %d", i, sp.Value(i), gr.Value(i), cn.Value(i), want[sp.Value(i)])
		}
		sum[gr.Value(i)] += sh.Value(i)
		if gr.Value(i) < 4 && (sh.Value(i) < 0.05) {
			t.Errorf("grade %d share in %s is %.3f", gr.Value(i), sp.Value(i), sh.Value(i))
		}
	}
	for g, s := range sum {
		if s < 0.999 || s > 1.001 {
			t.Errorf("grade %d shares sum to %f", g, s)
		}
	}
	if n := strings.Count(logs.String(), "has no row of severity 4 (1 rows in all)"); n != 2 {
		t.Errorf("%d warnings of a split lacking grade 4, want 2; log:\n%s", n, logs.String())
	}
}

func TestSplitOptionalGroupsAbsent(t *testing.T) {
	env := testEnv(t)
	in := rows(t, env.Mem, "file_id,severity", []string{"severity"}, "a|0", "a|0", "b|1")
	defer in.Release()
	res := run(t, env, "split", build(t, "split", "{optional_groups: [near_group]}"), map[string]arrow.RecordBatch{"rows": in})
	if got := schemaOf(res.Outputs["rows"]); got != "file_id:utf8,severity:int64,split:utf8,split_group:utf8" {
		t.Errorf("schema %s", got)
	}
}

func TestSplitErrors(t *testing.T) {
	for _, tt := range []struct{ params, want string }{
		{"{fractions: ['0.8', '0.1']}", "fractions: 2 given for 3 splits"},
		{"{fractions: ['0.8', '0.1', '0.2']}", "fractions: they sum to 1.1, want 1"},
		{"{fractions: ['0.8', 'x', '0.1']}", `fractions: "x" is not a number`},
		{"{fractions: ['1.5', '-0.5', '0']}", `fractions: "1.5" is not a number between 0 and 1`},
		{"{splits: [a, a, b]}", `splits: "a" must be unique`},
		{"{splits: [a.b, c, d]}", `splits: "a.b" must be unique`},
		{"{splits: []}", "splits: name at least one split"},
		{"{groups: []}", "groups: name at least one column"},
		{"{groups: [file_id], optional_groups: [file_id]}", `groups: column "file_id" named twice`},
	} {
		err := buildErr(t, "split", tt.params)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("split %s: error %v, want %q", tt.params, err, tt.want)
		}
	}

	env := testEnv(t)
	for _, tt := range []struct {
		header, params, want string
		data                 []string
	}{
		{"file_id,severity", "{groups: [patient]}", `groups: `, []string{"a|0"}},
		{"file_id,severity", "", "rows: row 1: severity is empty", []string{"a|"}},
		{"file_id,grade", "", `grade: `, []string{"a|0"}},
		{"file_id,patient,severity", "{groups: [patient, file_id]}", "rows: row 2 has no value in any group column (patient, file_id)", []string{"a|p|0", "||1"}},
	} {
		in := rows(t, env.Mem, tt.header, []string{"severity"}, tt.data...)
		_, err := build(t, "split", tt.params).Run(t.Context(), env, map[string]arrow.RecordBatch{"rows": in})
		in.Release()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %v: error %v, want %q", tt.params, tt.data, err, tt.want)
		}
	}
}

// checkPure is the stage's guard on its own output; it must catch a group
// split across two splits.
func TestSplitCheckPureCatchesLeak(t *testing.T) {
	keys := [][]splitKey{{{0, "p1"}, {1, "a"}}, {{0, "p2"}, {1, "b"}}, {{0, "p1"}, {1, "c"}}}
	if err := checkPure([]string{"patient", "file_id"}, keys, []string{"train", "test", "train"}); err != nil {
		t.Errorf("pure assignment refused: %v", err)
	}
	err := checkPure([]string{"patient", "file_id"}, keys, []string{"train", "test", "test"})
	if err == nil || err.Error() != `split is not group-pure: patient "p1" is in train (row 1) and test (row 3)` {
		t.Errorf("leak: error %v", err)
	}
}

// A rerun that moves an image (its group changed) says so, with examples;
// unrelated additions and another salt do not count as moves.
func TestSplitWarnsOfMovedImages(t *testing.T) {
	var logs bytes.Buffer
	env := testEnv(t)
	env.Log = slog.New(slog.NewTextHandler(&logs, nil))
	env.StateDir = t.TempDir()
	s := build(t, "split", patientGroups).(*declared).Stage.(*split)
	a, b := "0000001", ""
	for p := 2; b == ""; p++ {
		if id := fmt.Sprintf("%07d", p); s.assign("patient="+id) != s.assign("patient="+a) {
			b = id
		}
	}
	base := []string{"ha|" + a + "||I|0", "hb|" + b + "||I|1"}
	_, _, res := splitRows(t, env, patientGroups, base)
	if res.Stats["moved"] != 0 {
		t.Errorf("first run: moved %d", res.Stats["moved"])
	}
	_, _, res = splitRows(t, env, patientGroups, append(base, "hz|0999999||I|3"))
	_, _, other := splitRows(t, env, "{groups: [patient, file_id], salt: other}", base)
	if res.Stats["moved"] != 0 || other.Stats["moved"] != 0 || strings.Contains(logs.String(), "moved") {
		t.Errorf("an unrelated image or another salt counted as moves: %d, %d\n%s", res.Stats["moved"], other.Stats["moved"], logs.String())
	}
	// A near-duplicate links b to a: b's image takes a's split.
	merged := []string{"ha|" + a + "|n|I|0", "hb|" + b + "||I|1", "hc|" + b + "|n|I|1"}
	_, _, res = splitRows(t, env, patientGroups, merged)
	if res.Stats["moved"] != 1 || !strings.Contains(logs.String(), "images moved to another split since the last run") || !strings.Contains(logs.String(), "hb: ") {
		t.Errorf("merge: moved %d; log:\n%s", res.Stats["moved"], logs.String())
	}
	if _, _, res = splitRows(t, env, patientGroups, merged); res.Stats["moved"] != 0 {
		t.Errorf("the same rows again: moved %d", res.Stats["moved"])
	}
}
