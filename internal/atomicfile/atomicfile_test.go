package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "run.json")
	for _, content := range []string{"one", "two, longer"} {
		if err := WriteBytes(p, []byte(content)); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != content {
			t.Errorf("file = %q, want %q", b, content)
		}
	}
	boom := errors.New("boom")
	if err := Write(p, func(w io.Writer) error { io.WriteString(w, "partial"); return boom }); !errors.Is(err, boom) {
		t.Errorf("Write error = %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two, longer" {
		t.Errorf("a failed write changed the file: %q", b)
	}
	if des, _ := os.ReadDir(dir); len(des) != 1 {
		t.Errorf("temporary files left: %d entries", len(des))
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
}

func TestWriteUnsynced(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "img")
	if err := WriteUnsynced(p, func(w io.Writer) error { _, err := io.WriteString(w, "whole"); return err }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := WriteUnsynced(p, func(w io.Writer) error { io.WriteString(w, "part"); return boom }); !errors.Is(err, boom) {
		t.Errorf("WriteUnsynced error = %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "whole" {
		t.Errorf("file = %q, want the first write's", b)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v; want 0644", fi.Mode(), err)
	}
	if des, _ := os.ReadDir(dir); len(des) != 1 {
		t.Errorf("temporary files left: %d entries", len(des))
	}
}

// IsTemp knows the names of the temporary files Write makes.
func TestIsTemp(t *testing.T) {
	dir := t.TempDir()
	err := Write(filepath.Join(dir, "a.png"), func(io.Writer) error {
		des, err := os.ReadDir(dir)
		if err != nil || len(des) != 1 || !IsTemp(des[0].Name()) {
			t.Errorf("during the write: %v, %v; want one temporary file", des, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if IsTemp("a.png") || IsTemp("0a1b.tmp-3") {
		t.Error("IsTemp took a file of the cache's for a temporary one")
	}
}
