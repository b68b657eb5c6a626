package stages

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/kneepipe/kneepipe/internal/source"
)

func TestListDirectory(t *testing.T) {
	root := t.TempDir()
	for key, content := range map[string]string{
		"MedicalExpert-II/0Normal/NormalG0 (1).png":  "aa",
		"MedicalExpert-I/2Mild/MildG2 (3, copy).png": "bbb",
		"MedicalExpert-I/2Mild/MildG2 (3).png":       "c",
		"MedicalExpert-I/notes.txt":                  "notes",
		"MedicalExpert-I/0Normal/NormalG0 (10).png":  "dddd",
	} {
		p := filepath.Join(root, filepath.FromSlash(key))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	store, err := source.Open(context.Background(), source.Config{URI: root}, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	env := testEnv(t)
	env.Store = store

	res := run(t, env, "list", build(t, "list", ""), nil)
	rec := res.Outputs["objects"]
	if got, want := schemaOf(rec), "key:utf8,relative_path:utf8,uri:utf8,size:int64,etag:utf8,last_modified:timestamp[us, tz=UTC]"; got != want {
		t.Errorf("schema %s, want %s", got, want)
	}
	keys := rec.Column(0).(*array.String)
	var got []string
	for i := range keys.Len() {
		got = append(got, keys.Value(i))
	}
	want := []string{
		"MedicalExpert-I/0Normal/NormalG0 (10).png",
		"MedicalExpert-I/2Mild/MildG2 (3).png",
		"MedicalExpert-I/2Mild/MildG2 (3, copy).png",
		"MedicalExpert-II/0Normal/NormalG0 (1).png",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("keys:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if sizes := rec.Column(3).(*array.Int64); sizes.Value(0) != 4 || sizes.Value(2) != 3 {
		t.Errorf("sizes %v", sizes)
	}
	if uri := rec.Column(2).(*array.String).Value(0); uri != store.URI(want[0]) || !filepath.IsAbs(uri) {
		t.Errorf("uri %q", uri)
	}
	if res.Objects.Listed != 4 {
		t.Errorf("objects %+v", res.Objects)
	}

	all := run(t, env, "list", build(t, "list", "{suffix: ''}"), nil)
	if all.Outputs["objects"].NumRows() != 5 {
		t.Errorf("suffix '': %d rows, want 5", all.Outputs["objects"].NumRows())
	}

	env.Store = nil
	if _, err := build(t, "list", "").Run(t.Context(), env, nil); err == nil || !strings.Contains(err.Error(), "no source") {
		t.Errorf("no store: %v", err)
	}
}
