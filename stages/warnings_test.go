package stages

import (
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
