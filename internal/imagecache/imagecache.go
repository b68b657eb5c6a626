// Package imagecache keeps image bytes on disk by their SHA-256, so that
// exports (and reruns into a new --out) read each image from the bucket
// once. Every read, from the bucket or the disk, is checked against the
// SHA-256 it is filed under: bytes that do not match are never returned.
package imagecache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kneepipe/kneepipe/internal/atomicfile"
)

// Cache is a folder of images named by SHA-256. An empty Dir keeps
// nothing: every Get fetches.
type Cache struct {
	Dir string
}

// ErrMismatch says bytes differ from the SHA-256 they were asked for.
var ErrMismatch = errors.New("bytes differ from their SHA-256")

// Get returns the bytes whose SHA-256 is sum: from the folder when a
// stored copy matches, else from fetch (which should retry as it sees
// fit), stored for next time. fetched says whether fetch was called. A
// stored copy that no longer matches is replaced, and reported in stale.
func (c Cache) Get(ctx context.Context, sum string, fetch func(context.Context) ([]byte, error)) (data []byte, fetched bool, err error) {
	if !ValidSum(sum) {
		return nil, false, fmt.Errorf("sha256 %q is not 64 lowercase hex digits", sum)
	}
	if c.Dir != "" {
		data, err := os.ReadFile(c.path(sum))
		if err == nil && Check(data, sum) == nil {
			return data, false, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("image cache: %w", err)
		}
	}
	if data, err = fetch(ctx); err != nil {
		return nil, true, err
	}
	if err := Check(data, sum); err != nil {
		return nil, true, err
	}
	if c.Dir != "" {
		if err := c.put(sum, data); err != nil {
			return nil, true, fmt.Errorf("image cache: %w", err)
		}
	}
	return data, true, nil
}

// Put files data under sum, the SHA-256 its caller computed from it while
// reading it (fetch-hash), so that a later Get needs no fetch. Get checks
// what it reads, so a copy filed wrongly is fetched again, never returned.
// Writing is atomic, so concurrent Puts of the same image are harmless.
func (c Cache) Put(sum string, data []byte) error {
	if !ValidSum(sum) {
		return fmt.Errorf("sha256 %q is not 64 lowercase hex digits", sum)
	}
	if c.Dir == "" {
		return nil
	}
	if err := c.put(sum, data); err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	return nil
}

// Check returns ErrMismatch (wrapped) unless data's SHA-256 is sum.
func Check(data []byte, sum string) error {
	got := sha256.Sum256(data)
	if hex.EncodeToString(got[:]) != sum {
		return fmt.Errorf("%w: got %x, want %s", ErrMismatch, got[:], sum)
	}
	return nil
}

func (c Cache) path(sum string) string { return filepath.Join(c.Dir, sum[:2], sum) }

// put stores data atomically: a unique temporary file renamed into place,
// so concurrent stages and a killed run leave only whole images. It does
// not sync: a copy a crash leaves torn fails its SHA-256 on the next read
// and is fetched again, so a thousand images cost no thousand fsyncs.
func (c Cache) put(sum string, data []byte) error {
	dst := c.path(sum)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteUnsynced(dst, func(w io.Writer) error { _, err := w.Write(data); return err })
}

// ValidSum says whether s is a SHA-256 as the cache names files: 64
// lowercase hex digits.
func ValidSum(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
