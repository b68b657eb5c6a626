package source

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// makeTree writes files (key -> content) under a new directory.
func makeTree(t *testing.T, files map[string]string) string {
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
	return root
}

func openTestDir(t *testing.T, root string) Store {
	t.Helper()
	s, err := Open(context.Background(), Config{URI: root}, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("Open(%s): %v", root, err)
	}
	return s
}

// listKeys returns the keys of the objects listed, leaving out skipped
// entries.
func listKeys(t *testing.T, s Store) []string {
	t.Helper()
	keys, _ := listAll(t, s)
	return keys
}

// listAll returns the keys of the objects listed and, per skipped entry,
// "key: reason".
func listAll(t *testing.T, s Store) (keys, skipped []string) {
	t.Helper()
	err := s.List(context.Background(), func(o Object) error {
		if o.Rel != o.Key {
			t.Errorf("object %q: Rel %q, want the key", o.Key, o.Rel)
		}
		if o.Skip != "" {
			skipped = append(skipped, o.Key+": "+o.Skip)
			return nil
		}
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return keys, skipped
}

func walkOrder(t *testing.T, root string) []string {
	t.Helper()
	var keys []string
	filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(root, p)
			keys = append(keys, filepath.ToSlash(rel))
		}
		return err
	})
	return keys
}

// S3 lists keys in byte order of the whole key. '-' (0x2d) < '/' (0x2f) <
// '0' (0x30), and ')' (0x29) < ',' (0x2c) < '.' (0x2e): a directory walk
// (names sorted per directory) visits these in another order.
func TestDirListByteOrder(t *testing.T) {
	files := map[string]string{
		"a/b":                                  "1",
		"a-b/x":                                "2",
		"a0":                                   "3",
		"MedicalExpert-I/2Mild/MildG2 (3).png": "4",
		"MedicalExpert-I/2Mild/MildG2 (3, copy).png": "5",
		"MedicalExpert-II/0Normal/NormalG0 (1).png":  "6",
		"MedicalExpert-I/0Normal/NormalG0 (10).png":  "7",
		"MedicalExpert-I/0Normal/NormalG0 (2).png":   "8",
		"MedicalExpert-I.txt":                        "9",
	}
	root := makeTree(t, files)
	want := []string{
		"MedicalExpert-I.txt",
		"MedicalExpert-I/0Normal/NormalG0 (10).png",
		"MedicalExpert-I/0Normal/NormalG0 (2).png",
		"MedicalExpert-I/2Mild/MildG2 (3).png",
		"MedicalExpert-I/2Mild/MildG2 (3, copy).png",
		"MedicalExpert-II/0Normal/NormalG0 (1).png",
		"a-b/x",
		"a/b",
		"a0",
	}
	if !sort.StringsAreSorted(want) {
		t.Fatal("test table is not in byte order")
	}
	if walk := walkOrder(t, root); reflect.DeepEqual(walk, want) {
		t.Fatalf("walk order equals byte order; the tree does not test the sort: %q", walk)
	}
	if got := listKeys(t, openTestDir(t, root)); !reflect.DeepEqual(got, want) {
		t.Errorf("List order:\n got %q\nwant %q", got, want)
	}
}

func TestDirListObjectFields(t *testing.T) {
	root := makeTree(t, map[string]string{"d/f.png": "hello"})
	s := openTestDir(t, root)
	var objs []Object
	s.List(context.Background(), func(o Object) error { objs = append(objs, o); return nil })
	if len(objs) != 1 {
		t.Fatalf("listed %d objects, want 1", len(objs))
	}
	o := objs[0]
	if o.Key != "d/f.png" || o.Size != 5 || o.ETag != "" || o.LastModified.Location().String() != "UTC" || o.LastModified.IsZero() {
		t.Errorf("object = %+v", o)
	}
	if want := filepath.Join(mustEval(t, root), "d", "f.png"); s.URI(o.Key) != want {
		t.Errorf("URI = %q, want %q", s.URI(o.Key), want)
	}
	if s.URI("../x") != "" {
		t.Errorf("URI(../x) = %q, want empty", s.URI("../x"))
	}
}

func TestDirListStopsOnCallbackError(t *testing.T) {
	s := openTestDir(t, makeTree(t, map[string]string{"a": "", "b": "", "c": ""}))
	stop := errors.New("stop")
	var seen []string
	err := s.List(context.Background(), func(o Object) error {
		seen = append(seen, o.Key)
		if o.Key == "b" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || !reflect.DeepEqual(seen, []string{"a", "b"}) {
		t.Errorf("err = %v, seen %q", err, seen)
	}
}

func TestDirListCancelled(t *testing.T) {
	s := openTestDir(t, makeTree(t, map[string]string{"a": ""}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.List(ctx, func(Object) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("List on a cancelled context: %v", err)
	}
}

func mustEval(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDirSymlinks(t *testing.T) {
	outside := makeTree(t, map[string]string{"secret.png": "secret"})
	root := makeTree(t, map[string]string{"in/real.png": "real"})
	links := map[string]string{
		"in/escape.png":   filepath.Join(outside, "secret.png"),                            // absolute, outside
		"in/relative.png": filepath.Join("..", "..", filepath.Base(outside), "secret.png"), // relative, outside
		"in/dir":          outside,                                                         // a directory outside
		"in/alias.png":    "real.png",                                                      // inside: listed
		"in/broken.png":   "nothing-here.png",                                              // dangling
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(name))); err != nil {
			t.Skipf("symlinks not supported: %v", err)
		}
	}
	s := openTestDir(t, root)
	got, skipped := listAll(t, s)
	if want := []string{"in/alias.png", "in/real.png"}; !reflect.DeepEqual(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	wantSkipped := []string{
		"in/broken.png: broken symlink",
		"in/dir: symlink out of the source root",
		"in/escape.png: symlink out of the source root",
		"in/relative.png: symlink out of the source root",
	}
	if !reflect.DeepEqual(skipped, wantSkipped) {
		t.Errorf("skipped = %q, want %q", skipped, wantSkipped)
	}
	for _, key := range []string{"in/escape.png", "in/relative.png", "in/dir/secret.png", "in/broken.png"} {
		if rc, _, err := s.Get(context.Background(), key); err == nil {
			rc.Close()
			t.Errorf("Get(%q) opened a file outside the root", key)
		}
	}
	rc, _, err := s.Get(context.Background(), "in/alias.png")
	if err != nil {
		t.Fatalf("Get(in/alias.png): %v", err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "real" {
		t.Errorf("Get(in/alias.png) = %q, want real", b)
	}
}

// A root that is itself a symlink is resolved first: its files are inside.
func TestDirRootThroughSymlink(t *testing.T) {
	real := makeTree(t, map[string]string{"x/y.png": "y"})
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Skipf("symlinks not supported: %v", err)
	}
	s := openTestDir(t, link)
	if got := listKeys(t, s); !reflect.DeepEqual(got, []string{"x/y.png"}) {
		t.Errorf("List = %q", got)
	}
	rc, _, err := s.Get(context.Background(), "x/y.png")
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
}

func TestDirGetRejectsBadKeys(t *testing.T) {
	parent := makeTree(t, map[string]string{"top.png": "top", "root/ok.png": "ok", "root/sub/f.png": "f"})
	s := openTestDir(t, filepath.Join(parent, "root"))
	for _, key := range []string{
		"../top.png",
		"x/../../top.png",
		"./ok.png",
		"/etc/passwd",
		filepath.Join(parent, "top.png"),
		"ok.png\x00",
		"ok\x00.png",
		"",
		".",
		"ok.png/",
		"a//ok.png",
		"sub", // a directory
	} {
		rc, _, err := s.Get(context.Background(), key)
		if err == nil {
			rc.Close()
			t.Errorf("Get(%q) succeeded, want an error", key)
		}
	}
	rc, _, err := s.Get(context.Background(), "ok.png")
	if err != nil {
		t.Fatalf("Get(ok.png): %v", err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "ok" {
		t.Errorf("Get(ok.png) = %q", b)
	}
	if _, _, err := s.Get(context.Background(), "missing.png"); err == nil {
		t.Error("Get(missing.png) succeeded")
	}
}

func TestOpenErrors(t *testing.T) {
	file := filepath.Join(makeTree(t, map[string]string{"f": "x"}), "f")
	lookup := func(string) (string, bool) { return "", false }
	tests := []struct {
		uri, want string
	}{
		{"", "no source"},
		{"s3://", "no bucket name"},
		{"s3:///prefix/", "no bucket name"},
		{"gs://bucket/x", "unsupported scheme"},
		{file, "not a directory"},
		{filepath.Join(t.TempDir(), "missing"), "no such file"},
	}
	for _, tt := range tests {
		_, err := Open(context.Background(), Config{URI: tt.uri}, lookup)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%q) error = %v, want %q", tt.uri, err, tt.want)
		}
	}
	// file:// names a directory too.
	dir := makeTree(t, map[string]string{"k": "v"})
	s, err := Open(context.Background(), Config{URI: "file://" + dir}, lookup)
	if err != nil {
		t.Fatalf("Open(file://): %v", err)
	}
	if got := listKeys(t, s); !reflect.DeepEqual(got, []string{"k"}) {
		t.Errorf("file:// List = %q", got)
	}
}

func TestIsLocalEndpoint(t *testing.T) {
	for ep, want := range map[string]bool{
		"":                                   false,
		"http://127.0.0.1:7070":              true,
		"http://localhost:9000":              true,
		"http://[::1]:9000":                  true,
		"https://storage.yandexcloud.net":    false,
		"https://s3.eu-west-1.amazonaws.com": false,
		"::not a url":                        false,
	} {
		if got := isLocalEndpoint(ep); got != want {
			t.Errorf("isLocalEndpoint(%q) = %v, want %v", ep, got, want)
		}
	}
}

// Entries that are not regular files are skipped with that reason, in key
// order with the objects.
func TestDirSkipsNonRegular(t *testing.T) {
	root := makeTree(t, map[string]string{"a/real.png": "real", "b/x.png": "x"})
	if err := os.Symlink("../b", filepath.Join(root, "a", "dir-link")); err != nil {
		t.Skipf("symlinks not supported: %v", err)
	}
	sock, err := net.Listen("unix", filepath.Join(root, "a", "sock.png"))
	if err != nil {
		t.Skipf("unix sockets not supported: %v", err)
	}
	defer sock.Close()
	var order []string
	err = openTestDir(t, root).List(context.Background(), func(o Object) error {
		order = append(order, o.Key+"|"+o.Skip)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a/dir-link|not a regular file", "a/real.png|", "a/sock.png|not a regular file", "b/x.png|"}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("List = %q, want %q", order, want)
	}
}

// A file name that is not valid UTF-8 is listed with its bytes as the key
// (the list stage rejects it); reading such a key fails at once, for good.
func TestDirKeyNotUTF8(t *testing.T) {
	root := makeTree(t, map[string]string{"ok.png": "ok"})
	if err := os.WriteFile(filepath.Join(root, "bad\xff.png"), []byte("bad"), 0o644); err != nil {
		t.Skipf("file system refuses names that are not UTF-8: %v", err)
	}
	s := openTestDir(t, root)
	if got := listKeys(t, s); !reflect.DeepEqual(got, []string{"bad\xff.png", "ok.png"}) {
		t.Errorf("List = %q", got)
	}
	_, _, err := s.Get(context.Background(), "bad\xff.png")
	if err == nil || !Permanent(err) || !strings.Contains(err.Error(), "not a path under the source root") {
		t.Errorf("Get(bad\\xff.png) = %v, want a permanent 'not a path' error", err)
	}
	attempts, err := Retry{Attempts: 4, Stall: time.Second}.Read(context.Background(), s, "bad\xff.png", func(io.Reader) error { return nil })
	if err == nil || attempts != 1 {
		t.Errorf("Retry.Read: %d attempts, err %v; want 1 and an error", attempts, err)
	}
}
