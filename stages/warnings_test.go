package stages

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// An empty listing's warning is in the result, for run.json's warnings,
// not only in the log.
func TestListWarningsInResult(t *testing.T) {
	for _, tt := range []struct {
		files map[string]string
		want  string
	}{
		{map[string]string{}, "the listing is empty: the source holds no objects"},
		{map[string]string{"notes.txt": "x"}, "the listing is empty: no key has the suffix suffix=.png skipped=1"},
		{map[string]string{"a.png": "x"}, ""},
		{map[string]string{"a.png": "x", "b\xff.png": "x"}, `keys rejected: key is not valid UTF-8 keys=1 first=b\xff.png`},
	} {
		env, _ := listEnv(t, tt.files)
		res := run(t, env, "list", build(t, "list", ""), nil)
		if got := strings.Join(res.Warnings, "; "); got != tt.want {
			t.Errorf("files %q: warnings %q, want %q", tt.files, got, tt.want)
		}
	}
}

// A split lacking a grade the data has is a warning in the result, for
// run.json, besides the log.
func TestSplitWarningsInResult(t *testing.T) {
	env := testEnv(t)
	data := []string{"rare||||4"}
	for i := range 100 {
		data = append(data, fmt.Sprintf("h%d|||I|%d", i, i%2))
	}
	_, _, res := splitRows(t, env, "{splits: [a, b], fractions: ['0.5', '0.5']}", data)
	if len(res.Warnings) != 1 || !strings.HasSuffix(res.Warnings[0], "has no row of severity 4 (1 rows in all)") {
		t.Errorf("warnings %q, want one of a split lacking grade 4", res.Warnings)
	}
}

// A report with many broken images logs the first problems and a count,
// not a line per image, and gives run.json one warning with the count.
func TestReportProblemsBounded(t *testing.T) {
	env := testEnv(t)
	var logs bytes.Buffer
	env.Log = slog.New(slog.NewTextHandler(&logs, nil))
	objects := map[string][]byte{}
	faults := map[string][]string{}
	var spec []string
	for i := range 15 {
		for r, rater := range []string{"I", "II"} {
			key := fmt.Sprintf("%s/x%d", rater, i)
			objects[key] = []byte("not an image")
			faults[key] = []string{"gone"}
			spec = append(spec, fmt.Sprintf("x%d|%s|%d|%s", i, rater, r, key))
		}
	}
	env.Store = &flakyStore{objects: objects, gets: map[string]int{}, faults: faults}
	in := hashedRows(t, env, objects, spec...)
	defer in.Release()
	res := run(t, env, "report", build(t, "report", "{attempts: 1}"), reportInputs(t, env, in))
	if n := strings.Count(logs.String(), "msg=report problem="); n != problemsLogged {
		t.Errorf("%d problems logged one by one, want %d:\n%s", n, problemsLogged, logs.String())
	}
	if !strings.Contains(logs.String(), `msg="report: more problems, not logged" more=5`) {
		t.Errorf("no count of the problems not logged:\n%s", logs.String())
	}
	if len(res.Warnings) != 1 || !strings.HasPrefix(res.Warnings[0], "report: 15 problems") {
		t.Errorf("warnings %q, want one with the 15 problems", res.Warnings)
	}
}
