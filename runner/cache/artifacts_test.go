package cache

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// keep writes content to a file under dir and stores it, returning its sum.
func keep(t *testing.T, s Store, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := Digest([]byte(content))
	if err := s.KeepFile(p, sum); err != nil {
		t.Fatalf("KeepFile(%s): %v", name, err)
	}
	return sum
}

func TestArtifactSetRoundTrip(t *testing.T) {
	s := Store{Root: t.TempDir()}
	out := t.TempDir()
	k := key("artifact", "raw_data")
	if _, err := s.ArtifactSet(k); !errors.Is(err, ErrMiss) {
		t.Fatalf("ArtifactSet before Put: %v, want ErrMiss", err)
	}
	files := map[string]string{
		"raw_data.csv":     keep(t, s, out, "a.csv", "expert,file_id\n1,2\n"),
		"raw_data.parquet": keep(t, s, out, "a.parquet", "PAR1...PAR1"),
	}
	if err := s.PutArtifactSet(k, files); err != nil {
		t.Fatal(err)
	}
	got, err := s.ArtifactSet(k)
	if err != nil || !reflect.DeepEqual(got, files) {
		t.Fatalf("ArtifactSet = %v, %v; want %v", got, err, files)
	}
	dst := filepath.Join(t.TempDir(), "copy.csv")
	if err := s.CopyFile(files["raw_data.csv"], dst); err != nil {
		t.Fatalf("CopyFile: %v", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "expert,file_id\n1,2\n" {
		t.Errorf("copied %q", b)
	}

	os.WriteFile(s.setPath(k), []byte("{not json"), 0o644)
	if _, err := s.ArtifactSet(k); err == nil || errors.Is(err, ErrMiss) || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged set: %v, want a damaged error", err)
	}
}

// A stored file edited after it was kept (through a hard link into --out,
// say) is detected when copied: removed from the store, no file left at dst.
func TestCopyFileDetectsDamage(t *testing.T) {
	s := Store{Root: t.TempDir()}
	out := t.TempDir()
	sum := keep(t, s, out, "report.html", "<html>ok</html>")
	stored := s.filePath(sum)
	if err := os.WriteFile(stored, []byte("<html>edited</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(out, "copy.html")
	err := s.CopyFile(sum, dst)
	if err == nil || errors.Is(err, ErrMiss) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("CopyFile of an edited file: %v, want a checksum error", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("CopyFile left %s behind (%v)", dst, err)
	}
	if _, err := os.Stat(stored); !os.IsNotExist(err) {
		t.Errorf("the damaged stored file is still there (%v)", err)
	}
	if err := s.CopyFile(sum, dst); !errors.Is(err, ErrMiss) {
		t.Errorf("CopyFile after removal: %v, want ErrMiss", err)
	}
	if err := s.CopyFile("../../etc/passwd", dst); !errors.Is(err, ErrMiss) {
		t.Errorf("CopyFile of a bad sum: %v, want ErrMiss", err)
	}
}

// KeepFile keeps an already stored file as it is.
func TestKeepFileIdempotent(t *testing.T) {
	s := Store{Root: t.TempDir()}
	out := t.TempDir()
	sum := keep(t, s, out, "x.csv", "a,b\n")
	before, _ := os.Stat(s.filePath(sum))
	// The same content from another file: nothing new stored.
	if got := keep(t, s, out, "y.csv", "a,b\n"); got != sum {
		t.Fatalf("sum %s, want %s", got, sum)
	}
	after, _ := os.Stat(s.filePath(sum))
	if !os.SameFile(before, after) {
		t.Error("storing identical content replaced the stored file")
	}
	if err := s.KeepFile(filepath.Join(out, "x.csv"), "not-a-sum"); err == nil {
		t.Error("KeepFile accepted a malformed checksum")
	}
	des, _ := os.ReadDir(filepath.Join(s.Root, "files"))
	if len(des) != 1 {
		t.Errorf("%d stored files, want 1", len(des))
	}
}

func TestGCArtifacts(t *testing.T) {
	s := Store{Root: t.TempDir()}
	out := t.TempDir()
	shared := keep(t, s, out, "shared", "same bytes in both sets")
	onlyOld := keep(t, s, out, "old", "only the old set")
	onlyNew := keep(t, s, out, "new", "only the new set")
	orphan := keep(t, s, out, "orphan", "kept, then the run failed before its set")
	oldK, newK := key("set", "old"), key("set", "new")
	s.PutArtifactSet(oldK, map[string]string{"a.csv": shared, "b.csv": onlyOld})
	s.PutArtifactSet(newK, map[string]string{"a.csv": shared, "c.csv": onlyNew})

	r, err := s.GC(nil, map[Key]bool{newK: true})
	if err != nil || r != (Removed{ArtifactSets: 1}) {
		t.Fatalf("GC = %+v, %v; want 1 artifact set removed", r, err)
	}
	if _, err := s.ArtifactSet(oldK); !errors.Is(err, ErrMiss) {
		t.Errorf("old set after GC: %v, want ErrMiss", err)
	}
	for sum, want := range map[string]bool{shared: true, onlyNew: true, onlyOld: false, orphan: false} {
		_, err := os.Stat(s.filePath(sum))
		if got := err == nil; got != want {
			t.Errorf("stored file %s present = %v, want %v", sum[:8], got, want)
		}
	}
	if err := s.CopyFile(onlyNew, filepath.Join(out, "restored")); err != nil {
		t.Errorf("a kept set's file after GC: %v", err)
	}
}

// KeepFile links on the same file system, and copies across file systems
// (--out on one disk, the cache on another), where linking fails.
func TestKeepFileLinksOrCopies(t *testing.T) {
	s := Store{Root: t.TempDir()}
	same := t.TempDir()
	sum := keep(t, s, same, "linked.csv", "x\n")
	a, _ := os.Stat(filepath.Join(same, "linked.csv"))
	b, _ := os.Stat(s.filePath(sum))
	if !os.SameFile(a, b) {
		t.Error("same file system: the stored file is not a link to the written one")
	}

	other, err := os.MkdirTemp("/dev/shm", "kneepipe-cache-test-")
	if err != nil {
		t.Skipf("no second file system to copy across: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(other) })
	if st, _ := os.Stat(other); sameDevice(st, b) {
		t.Skip("/dev/shm is on the cache's file system")
	}
	sum = keep(t, s, other, "copied.csv", "y\n")
	a, _ = os.Stat(filepath.Join(other, "copied.csv"))
	b, _ = os.Stat(s.filePath(sum))
	if os.SameFile(a, b) {
		t.Error("across file systems: same file")
	}
	if got, _ := os.ReadFile(s.filePath(sum)); string(got) != "y\n" {
		t.Errorf("copied content %q", got)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(s.Root, "files", "*.tmp*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func sameDevice(a, b os.FileInfo) bool {
	sa, okA := a.Sys().(*syscall.Stat_t)
	sb, okB := b.Sys().(*syscall.Stat_t)
	return okA && okB && sa.Dev == sb.Dev
}

// A leftover at the destination that is a hard link to a stored file (a
// run killed between storing a file and renaming it into --out) is
// replaced, not written through: the stored file keeps its bytes.
func TestCopyFileDoesNotWriteThroughLinks(t *testing.T) {
	s := Store{Root: t.TempDir()}
	out := t.TempDir()
	a := keep(t, s, out, "a.csv", "first artifact\n")
	b := keep(t, s, out, "b.csv", "second, different artifact\n")
	leftover := filepath.Join(out, "leftover.tmp")
	if err := os.Link(s.filePath(a), leftover); err != nil {
		t.Fatal(err)
	}
	if err := s.CopyFile(b, leftover); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(s.filePath(a)); string(got) != "first artifact\n" {
		t.Errorf("stored file a now holds %q", got)
	}
	if got, _ := os.ReadFile(leftover); string(got) != "second, different artifact\n" {
		t.Errorf("destination holds %q", got)
	}
}
