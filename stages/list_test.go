package stages

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
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
	if want := (Objects{Listed: 4, Skipped: 1}); res.Objects != want {
		t.Errorf("objects %+v, want %+v", res.Objects, want)
	}
	if got := csvOf(t, res.Outputs["rejected"]); got != "key,reason\n" {
		t.Errorf("rejected:\n%s", got)
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

// listEnv writes files (key -> content) under a new directory and
// returns a list stage's environment over it.
func listEnv(t *testing.T, files map[string]string) (*Env, string) {
	t.Helper()
	root := t.TempDir()
	for key, content := range files {
		p := filepath.Join(root, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	store, err := source.Open(context.Background(), source.Config{URI: root}, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	env := testEnv(t)
	env.Store = store
	return env, root
}

func listedKeys(rec arrow.RecordBatch) string {
	keys := rec.Column(0).(*array.String)
	var out []string
	for i := range keys.Len() {
		out = append(out, keys.Value(i))
	}
	return strings.Join(out, ",")
}

// A key that is not valid UTF-8 is rejected at listing time with its
// reason, shown with \xNN escapes, and never reaches a fetch.
func TestListRejectsKeysNotUTF8(t *testing.T) {
	env, _ := listEnv(t, map[string]string{
		"a/ok.png":          "ok",
		"a/bad\xff\xfe.png": "bad",
		"a/é\xc3.png":       "half a rune",
		"a/bad\xff.txt":     "other suffix first",
	})
	res := run(t, env, "list", build(t, "list", ""), nil)
	if got := listedKeys(res.Outputs["objects"]); got != "a/ok.png" {
		t.Errorf("objects %q, want only a/ok.png", got)
	}
	want := lines("key,reason", `a/bad\xff\xfe.png,key is not valid UTF-8`, `a/é\xc3.png,key is not valid UTF-8`)
	if got := csvOf(t, res.Outputs["rejected"]); got != want {
		t.Errorf("rejected:\n%s\nwant\n%s", got, want)
	}
	if want := (Objects{Listed: 3, Rejected: 2, Skipped: 1}); res.Objects != want {
		t.Errorf("objects %+v, want %+v", res.Objects, want)
	}
}

func TestListSuffixCase(t *testing.T) {
	env, _ := listEnv(t, map[string]string{"a.png": "1", "b.PNG": "2", "c.Png": "3", "d.jpg": "4", "png": "5"})
	for _, tt := range []struct {
		params, keys string
		skipped      int64
	}{
		{"", "a.png,b.PNG,c.Png", 2},
		{"{ignore_case: true}", "a.png,b.PNG,c.Png", 2},
		{"{ignore_case: false}", "a.png", 4},
		{"{suffix: .PNG, ignore_case: false}", "b.PNG", 4},
		{"{suffix: .JPG}", "d.jpg", 4},
		{"{suffix: ''}", "a.png,b.PNG,c.Png,d.jpg,png", 0},
		{"{suffixes: [.png, .JPG]}", "a.png,b.PNG,c.Png,d.jpg", 1},
		{"{suffixes: [.png, .jpg], suffix: .txt, ignore_case: false}", "a.png,d.jpg", 3},
	} {
		res := run(t, env, "list", build(t, "list", tt.params), nil)
		if got := listedKeys(res.Outputs["objects"]); got != tt.keys {
			t.Errorf("%s: keys %q, want %q", tt.params, got, tt.keys)
		}
		if res.Objects.Skipped != tt.skipped {
			t.Errorf("%s: skipped %d, want %d", tt.params, res.Objects.Skipped, tt.skipped)
		}
	}
}

// Symlinks out of the root, dangling ones and non-regular files are
// counted as skipped, not listed.
func TestListCountsSkipped(t *testing.T) {
	env, root := listEnv(t, map[string]string{"in/real.png": "real"})
	outside := filepath.Join(t.TempDir(), "secret.png")
	os.WriteFile(outside, []byte("secret"), 0o644)
	for name, target := range map[string]string{"in/escape.png": outside, "in/broken.png": "nothing.png", "in/alias.png": "real.png"} {
		if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(name))); err != nil {
			t.Skipf("symlinks not supported: %v", err)
		}
	}
	sock, err := net.Listen("unix", filepath.Join(root, "in", "sock.png"))
	if err != nil {
		t.Skipf("unix sockets not supported: %v", err)
	}
	defer sock.Close()
	var logs bytes.Buffer
	env.Log = slog.New(slog.NewTextHandler(&logs, nil))
	res := run(t, env, "list", build(t, "list", ""), nil)
	if got := listedKeys(res.Outputs["objects"]); got != "in/alias.png,in/real.png" {
		t.Errorf("objects %q", got)
	}
	if want := (Objects{Listed: 2, Skipped: 3}); res.Objects != want {
		t.Errorf("objects %+v, want %+v", res.Objects, want)
	}
	for _, want := range []string{"skipped=3", `"broken symlink"=1`, `"not a regular file"=1`, `"symlink out of the source root"=1`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}

// An empty listing (nothing there, or nothing with the suffix) warns.
func TestListEmptyWarns(t *testing.T) {
	for _, tt := range []struct {
		files map[string]string
		warn  bool
	}{
		{map[string]string{}, true},
		{map[string]string{"notes.txt": "x"}, true},
		{map[string]string{"bad\xff.png": "x"}, false}, // listed, then rejected
		{map[string]string{"a.png": "x"}, false},
	} {
		env, _ := listEnv(t, tt.files)
		var logs bytes.Buffer
		env.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		run(t, env, "list", build(t, "list", ""), nil)
		if got := strings.Contains(logs.String(), "level=WARN msg=\"the listing is empty"); got != tt.warn {
			t.Errorf("files %q: empty-listing warning %v, want %v; log:\n%s", tt.files, got, tt.warn, logs.String())
		}
	}
}

func TestEscapeKey(t *testing.T) {
	for in, want := range map[string]string{
		"plain/key.png":    "plain/key.png",
		"é/ü.png":          "é/ü.png",
		"a\xffb":           `a\xffb`,
		"\xe2\x82":         `\xe2\x82`,         // a cut-off rune
		"\xed\xa0\x80.png": `\xed\xa0\x80.png`, // a surrogate
	} {
		if got := escapeKey(in); got != want {
			t.Errorf("escapeKey(%q) = %q, want %q", in, got, want)
		}
	}
}
