// Package cache stores stage outputs under a fingerprint of everything
// that determines them, so a rerun with nothing changed recomputes nothing.
//
// An entry is a directory <root>/entries/<key>/ holding one Parquet file per
// output and a manifest.json with each file's CRC-32C. Entries are written
// to a temporary directory, synced and renamed into place, so a reader sees
// a whole entry or none; a file whose checksum no longer matches makes the
// entry a miss, never a wrong answer. The checksum guards against damage
// (a truncated or flipped file), not against tampering, so it is the cheap
// hardware-accelerated CRC that storage engines use for the same purpose:
// every entry a run uses is checked, and a no-op run uses them all.
package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/kneepipe/kneepipe/internal/atomicfile"
)

// FormatVersion is mixed into every key; bump it when the layout of stage
// outputs changes so old entries stop matching.
const FormatVersion = "kneepipe-cache-2"

// Key is a hex fingerprint.
type Key string

// Hasher builds a Key from labelled parts, each length-prefixed so no two
// different part lists collide by concatenation.
type Hasher struct{ h [][2]string }

// Add appends a labelled part.
func (h *Hasher) Add(label, value string) *Hasher {
	h.h = append(h.h, [2]string{label, value})
	return h
}

// Key returns the fingerprint of the parts added so far.
func (h *Hasher) Key() Key {
	s := sha256.New()
	fmt.Fprintf(s, "%s\n", FormatVersion)
	for _, p := range h.h {
		fmt.Fprintf(s, "%d:%s=%d:%s\n", len(p[0]), p[0], len(p[1]), p[1])
	}
	return Key(hex.EncodeToString(s.Sum(nil)))
}

// Manifest describes one entry.
type Manifest struct {
	Key     Key              `json:"key"`
	Stage   string           `json:"stage"`
	Kind    string           `json:"kind"`
	Outputs map[string]File  `json:"outputs"`
	Counts  map[string]int64 `json:"counts,omitempty"`
	// Warnings are the stage's, kept so that a cached run reports them too.
	Warnings []string `json:"warnings,omitempty"`
}

// File is one stored output. An output recorded without its data (see
// Writer.Record) has no file name.
type File struct {
	Name   string `json:"file"`
	CRC32C string `json:"crc32c"`
	Rows   int64  `json:"rows"`
}

// Store is a cache directory.
type Store struct{ Root string }

func (s Store) dir(k Key) string { return filepath.Join(s.Root, "entries", string(k)) }

// ErrMiss means no usable entry exists.
var ErrMiss = errors.New("not cached")

// Entry is a stored, verified entry.
type Entry struct {
	Manifest
	Paths map[string]string // output name -> Parquet file, for stored outputs
}

// Lookup returns the entry after checking every file against its recorded
// checksum. A missing entry is ErrMiss; a damaged one is another error
// (the caller warns and recomputes).
func (s Store) Lookup(k Key) (*Entry, error) {
	dir := s.dir(k)
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrMiss
	}
	if err != nil {
		return nil, err
	}
	e := &Entry{Paths: map[string]string{}}
	if err := json.Unmarshal(data, &e.Manifest); err != nil || e.Key != k {
		return nil, fmt.Errorf("cache entry %s: manifest is damaged", short(k))
	}
	for name, f := range e.Outputs {
		if f.Name == "" {
			continue // recorded, not stored: not in Paths
		}
		p := filepath.Join(dir, f.Name)
		sum, err := fileCRC32C(p)
		if err != nil {
			return nil, fmt.Errorf("cache entry %s: %w", short(k), err)
		}
		if sum != f.CRC32C {
			return nil, fmt.Errorf("cache entry %s: %s does not match its checksum", short(k), f.Name)
		}
		e.Paths[name] = p
	}
	return e, nil
}

// Removed counts what GC removed.
type Removed struct {
	Entries      int // stage output entries
	ArtifactSets int // stored artifact sets (their files go with them)
	StoredFiles  int // files stages stored in their state (export's shards)
}

// GC removes every entry not in entries and every artifact set not in
// artifacts, the stored files no kept set names, and leftovers of
// interrupted writes. Run it only while holding the cache lock.
func (s Store) GC(entries, artifacts map[Key]bool) (Removed, error) {
	var r Removed
	dir := filepath.Join(s.Root, "entries")
	des, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return r, err
	}
	for _, d := range des {
		if entries[Key(d.Name())] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, d.Name())); err != nil {
			return r, err
		}
		r.Entries++
	}
	r.ArtifactSets, err = s.gcArtifacts(artifacts)
	return r, err
}

// Writer stages a new entry; Commit makes it visible atomically.
type Writer struct {
	store Store
	tmp   string
	m     Manifest
}

// Create starts an entry for key.
func (s Store) Create(k Key, stage, kind string) (*Writer, error) {
	if err := os.MkdirAll(filepath.Join(s.Root, "entries"), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.Root, "entries"), ".tmp-")
	if err != nil {
		return nil, err
	}
	return &Writer{store: s, tmp: tmp, m: Manifest{Key: k, Stage: stage, Kind: kind, Outputs: map[string]File{}}}, nil
}

// Add writes one output file through write, recording its checksum.
func (w *Writer) Add(output string, rows int64, write func(io.Writer) error) error {
	name := output + ".parquet"
	f, err := os.Create(filepath.Join(w.tmp, name))
	if err != nil {
		return err
	}
	h := crc32.New(castagnoli)
	if err := write(io.MultiWriter(f, h)); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	w.m.Outputs[output] = File{Name: name, CRC32C: hex.EncodeToString(h.Sum(nil)), Rows: rows}
	return nil
}

// Warnings records the stage's warnings in the manifest.
func (w *Writer) Warnings(ws []string) { w.m.Warnings = ws }

// Record lists an output by its row count without storing its data: the
// runner computes it again from the stage's inputs if it is read.
func (w *Writer) Record(output string, rows int64) {
	w.m.Outputs[output] = File{Rows: rows}
}

// Commit writes the manifest and renames the entry into place. An entry
// already there (another run computed the same thing) is kept.
func (w *Writer) Commit(counts map[string]int64) error {
	w.m.Counts = counts
	data, err := json.MarshalIndent(w.m, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(filepath.Join(w.tmp, "manifest.json"), data); err != nil {
		return err
	}
	dst := w.store.dir(w.m.Key)
	if err := os.Rename(w.tmp, dst); err != nil {
		// An entry is in the way. Keep it if it is intact (another run
		// computed the same thing); replace it if it is damaged.
		if _, lookErr := w.store.Lookup(w.m.Key); lookErr == nil {
			return os.RemoveAll(w.tmp)
		}
		if rmErr := os.RemoveAll(dst); rmErr != nil {
			return rmErr
		}
		if err := os.Rename(w.tmp, dst); err != nil {
			return err
		}
	}
	return atomicfile.SyncDir(filepath.Dir(dst))
}

// Abort removes a staged entry.
func (w *Writer) Abort() { os.RemoveAll(w.tmp) }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fileCRC32C is the hex CRC-32C of a file's content.
func fileCRC32C(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := crc32.New(castagnoli)
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// FileSHA256 is the hex SHA-256 of a file's content.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Entries lists the keys stored.
func (s Store) Entries() ([]Key, error) {
	des, err := os.ReadDir(filepath.Join(s.Root, "entries"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Key
	for _, d := range des {
		if d.IsDir() && d.Name()[0] != '.' {
			out = append(out, Key(d.Name()))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

func short(k Key) string {
	if len(k) > 12 {
		return string(k[:12])
	}
	return string(k)
}

// Digest is the hex SHA-256 of data.
func Digest(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}
