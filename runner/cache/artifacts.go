package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kneepipe/kneepipe/internal/atomicfile"
)

// Rendered artifacts are kept too, so that a run into a new --out (a
// fresh Airflow workspace, a benchmark) copies the bytes an earlier run
// wrote instead of reading the stage outputs and encoding them again, as
// DVC checks its outputs out of its cache.
//
// Files are stored once by content, <root>/files/<sha256>; a set,
// <root>/artifacts/<key>.json, names the files one artifact source renders
// to (path under --out -> sha256). A stored file is checked against its name
// whenever it is copied out, so a damaged one is a miss, never wrong bytes.

// ArtifactSet returns the files stored for an artifact source, ErrMiss if
// there are none.
func (s Store) ArtifactSet(k Key) (map[string]string, error) {
	data, err := os.ReadFile(s.setPath(k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrMiss
	}
	if err != nil {
		return nil, err
	}
	var files map[string]string
	if err := json.Unmarshal(data, &files); err != nil || len(files) == 0 {
		return nil, fmt.Errorf("artifact set %s is damaged", short(k))
	}
	return files, nil
}

// PutArtifactSet records the files of an artifact source; each must have
// been stored with KeepFile first.
func (s Store) PutArtifactSet(k Key, files map[string]string) error {
	data, err := json.MarshalIndent(files, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.setPath(k)), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteBytes(s.setPath(k), data)
}

// KeepFile stores a written file whose SHA-256 is sum. It links
// the file when the cache is on the same file system (kneepipe never writes
// a file in place, so the link only changes if someone edits --out by hand,
// which CopyFile detects) and copies it otherwise.
func (s Store) KeepFile(path, sum string) error {
	if !validSum(sum) {
		return fmt.Errorf("keep %s: bad checksum %q", path, sum)
	}
	dst := s.filePath(sum)
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".tmp-link"
	os.Remove(tmp)
	if err := os.Link(path, tmp); err == nil {
		if err := os.Rename(tmp, dst); err != nil {
			os.Remove(tmp)
			return err
		}
		return atomicfile.SyncDir(filepath.Dir(dst))
	}
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	return atomicfile.Write(dst, func(w io.Writer) error { _, err := io.Copy(w, src); return err })
}

// CopyFile writes the stored file with SHA-256 sum to dst; the caller syncs
// it (artifacts are synced together before they are renamed into place).
// It is ErrMiss when no such file is stored; a stored file whose content no
// longer has that checksum is removed and reported as damaged, and dst is
// not left behind.
func (s Store) CopyFile(sum, dst string) error {
	if !validSum(sum) {
		return ErrMiss
	}
	src, err := os.Open(s.filePath(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return ErrMiss
	}
	if err != nil {
		return err
	}
	defer src.Close()
	// dst may be a leftover linked to a stored file: replace it, never
	// write through it.
	os.Remove(dst)
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		out.Close()
		os.Remove(dst)
		return err
	}
	size := int64(1 << 20)
	if st, err := src.Stat(); err == nil {
		size = min(size, st.Size()+1)
	}
	h := sha256.New()
	if _, err := io.CopyBuffer(io.MultiWriter(out, h), src, make([]byte, size)); err != nil {
		return fail(err)
	}
	if hex.EncodeToString(h.Sum(nil)) != sum {
		os.Remove(s.filePath(sum))
		return fail(fmt.Errorf("stored artifact file %s does not match its checksum", sum[:12]))
	}
	if err := out.Close(); err != nil {
		os.Remove(dst)
		return err
	}
	return nil
}

// gcArtifacts removes the sets not in keep and the files no kept set names.
func (s Store) gcArtifacts(keep map[Key]bool) (sets int, err error) {
	dir := filepath.Join(s.Root, "artifacts")
	des, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	used := map[string]bool{}
	for _, d := range des {
		k, ok := strings.CutSuffix(d.Name(), ".json")
		if ok && keep[Key(k)] {
			files, err := s.ArtifactSet(Key(k))
			if err == nil {
				for _, sum := range files {
					used[sum] = true
				}
				continue
			}
		}
		if err := os.Remove(filepath.Join(dir, d.Name())); err != nil {
			return sets, err
		}
		if ok {
			sets++
		}
	}
	fileDir := filepath.Join(s.Root, "files")
	des, err = os.ReadDir(fileDir)
	if errors.Is(err, fs.ErrNotExist) {
		return sets, nil
	}
	if err != nil {
		return sets, err
	}
	for _, d := range des {
		if used[d.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(fileDir, d.Name())); err != nil {
			return sets, err
		}
	}
	return sets, nil
}

func (s Store) setPath(k Key) string {
	return filepath.Join(s.Root, "artifacts", string(k)+".json")
}

func (s Store) filePath(sum string) string {
	return filepath.Join(s.Root, "files", sum)
}

func validSum(sum string) bool {
	return len(sum) == 64 && strings.Trim(sum, "0123456789abcdef") == ""
}
