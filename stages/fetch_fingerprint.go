package stages

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/neardup"
	"github.com/kneepipe/kneepipe/internal/table"
)

// Columns fetch-hash adds with fingerprint: true.
const (
	colFingerprint      = "fingerprint"
	colFingerprintError = "fingerprint_error"
)

// fingerprintOpts says whether and how fetch-hash fingerprints the bodies
// it hashes. The zero value fingerprints nothing and keeps no bytes.
type fingerprintOpts struct {
	on        bool
	maxBytes  int64 // a longer body is not kept, so not fingerprinted
	maxPixels int64 // a header declaring more pixels is not decoded
}

// fingerprinted is the outcome for one body: the encoded fingerprint, or
// why there is none.
type fingerprinted struct {
	fp     []byte // neardup.EncodedSize bytes; nil with reason set
	reason string
}

// cappedBuffer keeps a copy of the bytes written to it up to a cap; past
// the cap it drops them and remembers that it overflowed. Its storage is
// reused from body to body.
type cappedBuffer struct {
	b        []byte
	max      int64
	overflow bool
}

func (c *cappedBuffer) reset() { c.b, c.overflow = c.b[:0], false }

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if !c.overflow {
		if int64(len(c.b)+len(p)) > c.max {
			c.overflow, c.b = true, c.b[:0]
		} else {
			c.b = append(c.b, p...)
		}
	}
	return len(p), nil
}

// fingerprint decodes the kept body (never one whose header declares more
// than maxPixels: imagedecode checks before allocating) and fingerprints it.
func (c *cappedBuffer) fingerprint(maxPixels int64) fingerprinted {
	if c.overflow {
		return fingerprinted{reason: fmt.Sprintf("not fingerprinted: more than fingerprint_max_bytes (%d bytes)", c.max)}
	}
	fp, err := neardup.FromBytes(c.b, maxPixels)
	if err != nil {
		return fingerprinted{reason: "not fingerprinted: " + err.Error()}
	}
	b, err := fp.MarshalBinary()
	if err != nil {
		return fingerprinted{reason: "not fingerprinted: " + err.Error()}
	}
	return fingerprinted{fp: b}
}

// fingerprintStore remembers fingerprints by content (the object's
// SHA-256) under the stage's state dir, one small file per sha: 4.4 KB a
// fingerprint is too much for the JSON record of hashed objects, and an
// object renamed or copied keeps its fingerprint. Each file is written
// atomically (temporary file, then rename) and carries a checksum, so a
// torn or damaged file reads as missing and the object is fetched again.
type fingerprintStore struct{ dir string }

// File layout: kind byte, payload, SHA-256 of kind and payload.
const (
	fpKindPrint  = 'F' // payload: neardup.Fingerprint.MarshalBinary
	fpKindReason = 'R' // payload: why the body has no fingerprint (UTF-8)
	fpMaxFile    = 1 + neardup.EncodedSize + sha256.Size
)

func newFingerprintStore(stateDir string) (*fingerprintStore, error) {
	dir := filepath.Join(stateDir, "fingerprints")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("fingerprint store: %w", err)
	}
	return &fingerprintStore{dir: dir}, nil
}

func (s *fingerprintStore) path(sha string) string { return filepath.Join(s.dir, sha+".fp") }

// get reads the remembered outcome for a sha; ok is false when there is
// none or the file does not verify.
func (s *fingerprintStore) get(sha string) (fingerprinted, bool) {
	if _, err := hex.DecodeString(sha); err != nil || len(sha) != 2*sha256.Size {
		return fingerprinted{}, false
	}
	f, err := os.Open(s.path(sha))
	if err != nil {
		return fingerprinted{}, false
	}
	defer f.Close()
	buf := make([]byte, fpMaxFile+1)
	n, _ := io.ReadFull(f, buf)
	b := buf[:n]
	if n > fpMaxFile || n < 1+sha256.Size {
		return fingerprinted{}, false
	}
	body, sum := b[:n-sha256.Size], b[n-sha256.Size:]
	if want := sha256.Sum256(body); !bytes.Equal(sum, want[:]) {
		return fingerprinted{}, false
	}
	switch body[0] {
	case fpKindPrint:
		var fp neardup.Fingerprint
		if fp.UnmarshalBinary(body[1:]) != nil { // another encoding version: compute again
			return fingerprinted{}, false
		}
		return fingerprinted{fp: body[1:]}, true
	case fpKindReason:
		return fingerprinted{reason: string(body[1:])}, true
	}
	return fingerprinted{}, false
}

// put writes the outcome for a sha atomically.
func (s *fingerprintStore) put(sha string, f fingerprinted) error {
	body := []byte{fpKindPrint}
	if f.fp == nil {
		body = []byte{fpKindReason}
		body = append(body, f.reason...)
		if len(body) > neardup.EncodedSize {
			body = body[:neardup.EncodedSize]
		}
	} else {
		body = append(body, f.fp...)
	}
	sum := sha256.Sum256(body)
	tmp, err := os.CreateTemp(s.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("fingerprint store: %w", err)
	}
	_, err = tmp.Write(append(body, sum[:]...))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.path(sha))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("fingerprint store: %w", err)
	}
	return nil
}

// prune removes the files of shas not in keep: deleted objects leave the
// store as they leave the record of hashed objects.
func (s *fingerprintStore) prune(keep map[string]bool) error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("fingerprint store: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		sha, isFP := strings.CutSuffix(name, ".fp")
		if isFP && keep[sha] {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("fingerprint store: %w", err)
		}
	}
	return nil
}

// lookup says what is remembered for an unchanged object: with
// fingerprints off there is nothing to remember (have is true); with them
// on, have is false when the store holds nothing verified for the sha.
func (s *fingerprintStore) lookup(on bool, sha string) (f fingerprinted, have bool) {
	if !on {
		return fingerprinted{}, true
	}
	if s == nil {
		return fingerprinted{}, false
	}
	return s.get(sha)
}

// remember stores the outcome of every object fetched in this run.
func (s *fingerprintStore) remember(results []fetched, fetchedNow []int) error {
	if s == nil {
		return nil
	}
	for _, i := range fetchedNow {
		if r := results[i]; r.err == nil {
			if err := s.put(r.sha, r.fp); err != nil {
				return err
			}
		}
	}
	return nil
}

// pruneTo keeps the store to the contents listed now.
func (s *fingerprintStore) pruneTo(results []fetched) error {
	if s == nil {
		return nil
	}
	keep := make(map[string]bool, len(results))
	for _, r := range results {
		if r.err == nil {
			keep[r.sha] = true
		}
	}
	return s.prune(keep)
}

// fingerprintColumns collects the fingerprint and fingerprint_error
// columns row by row.
type fingerprintColumns struct {
	fps     [][]byte
	reasons []string
}

func (c *fingerprintColumns) add(f fingerprinted) {
	c.fps, c.reasons = append(c.fps, f.fp), append(c.reasons, f.reason)
}

func (c *fingerprintColumns) columns(mem memory.Allocator) []table.Column {
	fb := array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary)
	defer fb.Release()
	eb := array.NewStringBuilder(mem)
	defer eb.Release()
	for i, fp := range c.fps {
		if fp == nil {
			fb.AppendNull()
			eb.Append(c.reasons[i])
		} else {
			fb.Append(fp)
			eb.AppendNull()
		}
	}
	return []table.Column{{Name: colFingerprint, Array: fb.NewArray()}, {Name: colFingerprintError, Array: eb.NewArray()}}
}
