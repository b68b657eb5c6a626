package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func key(parts ...string) Key {
	h := &Hasher{}
	for i := 0; i+1 < len(parts); i += 2 {
		h.Add(parts[i], parts[i+1])
	}
	return h.Key()
}

func TestHasherLengthPrefixed(t *testing.T) {
	pairs := []struct {
		name string
		a, b []string // label, value, label, value...
	}{
		{"value boundary", []string{"ab", "c"}, []string{"a", "bc"}},
		{"split across parts", []string{"x", "ab", "y", "c"}, []string{"x", "a", "y", "bc"}},
		{"label vs value", []string{"a=b", ""}, []string{"a", "b"}},
		{"embedded separator line", []string{"a", "1\n1:b=1:c"}, []string{"a", "1", "b", "c"}},
		{"empty part vs none", []string{"a", "1", "", ""}, []string{"a", "1"}},
		{"order matters", []string{"a", "1", "b", "2"}, []string{"b", "2", "a", "1"}},
	}
	for _, p := range pairs {
		if key(p.a...) == key(p.b...) {
			t.Errorf("%s: %q and %q give the same key", p.name, p.a, p.b)
		}
	}
	k := key("stage", "s", "params", `{"on":["expert"]}`)
	if k != key("stage", "s", "params", `{"on":["expert"]}`) {
		t.Error("the same parts give different keys")
	}
	if len(k) != 64 || strings.Trim(string(k), "0123456789abcdef") != "" {
		t.Errorf("key %q is not 64 hex digits", k)
	}
	// The format version is part of every key: a known vector pins it.
	s := sha256.Sum256([]byte(FormatVersion + "\n" + "2:ab=1:c\n"))
	if want := Key(hex.EncodeToString(s[:])); key("ab", "c") != want {
		t.Errorf("key(ab, c) = %s, want %s", key("ab", "c"), want)
	}
}

func commit(t *testing.T, s Store, k Key, outputs map[string]string) {
	t.Helper()
	w, err := s.Create(k, "stage-a", "dedupe")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	for name, content := range outputs {
		if err := w.Add(name, int64(len(content)), func(wr io.Writer) error {
			_, err := io.WriteString(wr, content)
			return err
		}); err != nil {
			t.Fatalf("Add(%s): %v", name, err)
		}
	}
	if err := w.Commit(map[string]int64{"rejected": 2}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func TestLookupMissThenHit(t *testing.T) {
	s := Store{Root: t.TempDir()}
	k := key("x", "1")
	if _, err := s.Lookup(k); !errors.Is(err, ErrMiss) {
		t.Fatalf("Lookup before Commit: err = %v, want ErrMiss", err)
	}
	commit(t, s, k, map[string]string{"rows": "ROWS", "removed": "REMOVED!"})

	e, err := s.Lookup(k)
	if err != nil {
		t.Fatalf("Lookup after Commit: %v", err)
	}
	if e.Key != k || e.Stage != "stage-a" || e.Kind != "dedupe" || !reflect.DeepEqual(e.Counts, map[string]int64{"rejected": 2}) {
		t.Errorf("manifest = %+v", e.Manifest)
	}
	if e.Outputs["rows"].Rows != 4 || e.Outputs["removed"].Rows != 8 {
		t.Errorf("rows = %+v", e.Outputs)
	}
	if want := fmt.Sprintf("%08x", crc32.Checksum([]byte("ROWS"), crc32.MakeTable(crc32.Castagnoli))); e.Outputs["rows"].CRC32C != want {
		t.Errorf("rows crc32c = %s, want %s", e.Outputs["rows"].CRC32C, want)
	}
	for name, want := range map[string]string{"rows": "ROWS", "removed": "REMOVED!"} {
		b, err := os.ReadFile(e.Paths[name])
		if err != nil || string(b) != want {
			t.Errorf("output %s at %q: %q, %v", name, e.Paths[name], b, err)
		}
	}
	// Another key is still a miss; no temporary directory is left behind.
	if _, err := s.Lookup(key("x", "2")); !errors.Is(err, ErrMiss) {
		t.Errorf("Lookup(other key): err = %v, want ErrMiss", err)
	}
	if keys, _ := s.Entries(); !reflect.DeepEqual(keys, []Key{k}) {
		t.Errorf("Entries = %v, want [%s]", keys, k)
	}
	assertNoTemp(t, s)
}

func assertNoTemp(t *testing.T, s Store) {
	t.Helper()
	des, _ := os.ReadDir(filepath.Join(s.Root, "entries"))
	for _, d := range des {
		if strings.HasPrefix(d.Name(), ".") {
			t.Errorf("leftover %s in entries/", d.Name())
		}
	}
}

func TestLookupDamaged(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   string
	}{
		{"flipped byte", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "rows.parquet")
			b, _ := os.ReadFile(p)
			b[1] ^= 0x01
			os.WriteFile(p, b, 0o644)
		}, "rows.parquet does not match its checksum"},
		{"truncated file", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "rows.parquet"), nil, 0o644)
		}, "does not match its checksum"},
		{"missing file", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "rows.parquet"))
		}, "rows.parquet"},
		{"manifest not JSON", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "manifest.json"), []byte("{\"key\": "), 0o644)
		}, "manifest is damaged"},
		{"manifest of another key", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
			b = []byte(strings.Replace(string(b), `"key": "`, `"key": "0`, 1))
			os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644)
		}, "manifest is damaged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Store{Root: t.TempDir()}
			k := key("damage", tt.name)
			commit(t, s, k, map[string]string{"rows": "some parquet bytes"})
			tt.damage(t, filepath.Join(s.Root, "entries", string(k)))
			e, err := s.Lookup(k)
			if err == nil {
				t.Fatalf("Lookup of a damaged entry succeeded: %+v", e)
			}
			if errors.Is(err, ErrMiss) {
				t.Fatalf("damaged entry reported as a plain miss: %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), string(k[:12])) {
				t.Errorf("error %q does not name the entry and %q", err, tt.want)
			}
		})
	}
}

func TestCommitTwiceKeepsFirst(t *testing.T) {
	s := Store{Root: t.TempDir()}
	k := key("same", "work")
	commit(t, s, k, map[string]string{"rows": "first"})
	commit(t, s, k, map[string]string{"rows": "second"})
	e, err := s.Lookup(k)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(e.Paths["rows"]); string(b) != "first" {
		t.Errorf("rows = %q, want the first commit's", b)
	}
	assertNoTemp(t, s)
}

func TestCommitReplacesDamagedEntry(t *testing.T) {
	s := Store{Root: t.TempDir()}
	k := key("half", "written")
	// A directory without a manifest is in the way (an interrupted write).
	dir := filepath.Join(s.Root, "entries", string(k))
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "rows.parquet"), []byte("junk"), 0o644)
	if _, err := s.Lookup(k); !errors.Is(err, ErrMiss) {
		t.Fatalf("entry without manifest: err = %v, want ErrMiss", err)
	}
	commit(t, s, k, map[string]string{"rows": "good"})
	e, err := s.Lookup(k)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(e.Paths["rows"]); string(b) != "good" {
		t.Errorf("rows = %q, want good", b)
	}
}

func TestAbortAndFailedAdd(t *testing.T) {
	s := Store{Root: t.TempDir()}
	k := key("a", "b")
	w, err := s.Create(k, "st", "filter")
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = w.Add("rows", 1, func(io.Writer) error { return boom })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "rows.parquet") {
		t.Errorf("Add error = %v", err)
	}
	w.Abort()
	assertNoTemp(t, s)
	if _, err := s.Lookup(k); !errors.Is(err, ErrMiss) {
		t.Errorf("aborted entry: err = %v, want ErrMiss", err)
	}
}

// The entry checksum is CRC-32C (Castagnoli): its standard check value.
func TestFileCRC32C(t *testing.T) {
	p := filepath.Join(t.TempDir(), "check")
	os.WriteFile(p, []byte("123456789"), 0o644)
	if got, err := fileCRC32C(p); got != "e3069283" || err != nil {
		t.Errorf("fileCRC32C(123456789) = %s, %v; want e3069283", got, err)
	}
}

func TestGC(t *testing.T) {
	s := Store{Root: t.TempDir()}
	if r, err := s.GC(nil, nil); r != (Removed{}) || err != nil {
		t.Fatalf("GC of an empty cache: %+v, %v", r, err)
	}
	a, b, c := key("a", "1"), key("b", "1"), key("c", "1")
	for _, k := range []Key{a, b, c} {
		commit(t, s, k, map[string]string{"rows": string(k)})
	}
	w, _ := s.Create(key("d", "1"), "st", "filter") // an interrupted write
	_ = w
	r, err := s.GC(map[Key]bool{b: true}, nil)
	if err != nil || r != (Removed{Entries: 3}) {
		t.Fatalf("GC = %+v, %v; want 3 entries removed", r, err)
	}
	if keys, _ := s.Entries(); !reflect.DeepEqual(keys, []Key{b}) {
		t.Errorf("Entries after GC = %v, want [%s]", keys, b)
	}
	assertNoTemp(t, s)
	if _, err := s.Lookup(b); err != nil {
		t.Errorf("kept entry: %v", err)
	}
}
