package export

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
)

// DirSink streams files into Dir, each named by its SHA-256 once closed,
// so that an export holds one image (or one Parquet row group) in memory
// at a time, whatever the size of its shards. Files lists what was
// written, in order.
type DirSink struct {
	Dir   string
	Files []Stored
}

// Stored is one file a DirSink wrote.
type Stored struct {
	Name   string // the name it was created with
	Path   string // Dir/<sha256>
	SHA256 string
	Size   int64
}

func (d *DirSink) Create(name string) (FileWriter, error) {
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(d.Dir, "writing-*")
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	return &dirFile{sink: d, name: name, f: f, h: h, w: io.MultiWriter(f, h)}, nil
}

type dirFile struct {
	sink *DirSink
	name string
	f    *os.File
	h    hash.Hash
	w    io.Writer
	n    int64
	err  error
}

func (f *dirFile) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	f.n += int64(n)
	if err != nil && f.err == nil {
		f.err = err
	}
	return n, err
}

// Abort removes the file.
func (f *dirFile) Abort() {
	f.f.Close()
	os.Remove(f.f.Name())
}

// Commit syncs the file and renames it to its SHA-256; a file whose
// writing failed is removed.
func (f *dirFile) Commit() error {
	err := f.err
	if err == nil {
		err = f.f.Sync()
	}
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	sum := hex.EncodeToString(f.h.Sum(nil))
	dst := filepath.Join(f.sink.Dir, sum)
	if err == nil {
		err = os.Rename(f.f.Name(), dst)
	}
	if err != nil {
		os.Remove(f.f.Name())
		return fmt.Errorf("%s: %w", f.name, err)
	}
	f.sink.Files = append(f.sink.Files, Stored{Name: f.name, Path: dst, SHA256: sum, Size: f.n})
	return nil
}
