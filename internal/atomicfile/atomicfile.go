// Package atomicfile replaces files so that readers, and a run killed
// part-way, see the old content or the new, never a torn file.
package atomicfile

import (
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Write writes path through a temporary file in the same directory, synced
// and renamed into place, then syncs the directory: the new content
// survives a crash once Write returns. write must not keep w.
func Write(path string, write func(w io.Writer) error) error {
	if err := replace(path, write, true); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// WriteBytes is Write for content already in memory.
func WriteBytes(path string, data []byte) error {
	return Write(path, func(w io.Writer) error { _, err := w.Write(data); return err })
}

// WriteUnsynced is Write without the syncs, for files whose readers verify
// them (a checksum) and recreate them when torn: a crash may leave the old
// file, the new one or a damaged one, but never a partly written one
// under another run's eyes, and a thousand files cost no thousand fsyncs.
func WriteUnsynced(path string, write func(w io.Writer) error) error {
	return replace(path, write, false)
}

// tempInfix marks a temporary file: "." + the file's name + tempInfix + a
// random number.
const tempInfix = ".tmp-"

// IsTemp says whether a file name is one of Write's temporary files, which
// a killed run may leave behind for a clean-up to remove.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tempInfix)
}

func replace(path string, write func(io.Writer) error, sync bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+tempInfix)
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = write(f)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644) // CreateTemp's 0600 would hide it from other users
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// SyncDir syncs a directory, so that the renames and creations in it
// survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
