// Package export writes the splits of a dataset in the formats training
// jobs read: Hugging Face datasets Parquet in the Hub layout
// (huggingface.go) and WebDataset tar shards (webdataset.go). Writers are
// deterministic: the files depend only on the rows and the image bytes,
// never on time, host or concurrency. Every image is checked against its
// SHA-256 before a byte of it is written.
package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
)

// Split is the rows of one split, in the order they are written.
type Split struct {
	Name string
	// Rows holds the columns carried into the export (Parquet columns,
	// WebDataset .json); one row per image.
	Rows   arrow.RecordBatch
	Keys   []string // sample keys: unique, 1..90 of [A-Za-z0-9_-]
	Labels []int64  // class index of each image
	Paths  []string // the image's relative path (the Parquet image.path)
	SHA256 []string // what each image's bytes must hash to
	Sizes  []int64  // each image's byte count, to plan shards before reading
	// Image returns the bytes of row i; the writer checks them against
	// SHA256[i] and Sizes[i] before writing.
	Image func(ctx context.Context, i int) ([]byte, error)
}

// Options bound the shards and name the labels.
type Options struct {
	LabelNames      []string // class names, index = label
	MaxShardBytes   int64    // bytes of a shard (see each format for what counts)
	MaxShardSamples int      // samples of a WebDataset shard
}

// Sink receives the files a writer makes, by slash-separated name.
type Sink interface {
	Create(name string) (FileWriter, error)
}

// FileWriter is one file being written: Commit keeps it, Abort (after a
// failure) drops it, so no half-written shard is ever listed.
type FileWriter interface {
	io.Writer
	Commit() error
	Abort()
}

// File is one written file.
type File struct {
	Name string
	Data []byte
}

// MemSink keeps the files in memory, in the order they were created.
type MemSink struct {
	Files []File
}

func (m *MemSink) Create(name string) (FileWriter, error) {
	return &memFile{sink: m, name: name}, nil
}

type memFile struct {
	bytes.Buffer
	sink *MemSink
	name string
}

func (f *memFile) Commit() error {
	f.sink.Files = append(f.sink.Files, File{f.name, f.Bytes()})
	return nil
}

func (f *memFile) Abort() {}

func (s *Split) check(opt Options) error {
	n := int(s.Rows.NumRows())
	for name, l := range map[string]int{"keys": len(s.Keys), "labels": len(s.Labels), "paths": len(s.Paths), "sha256": len(s.SHA256), "sizes": len(s.Sizes)} {
		if l != n {
			return fmt.Errorf("split %s: %d %s for %d rows", s.Name, l, name, n)
		}
	}
	seen := make(map[string]bool, n)
	for i, k := range s.Keys {
		if !validKey(k) {
			return fmt.Errorf("split %s: row %d: key %q is not 1 to 90 of A-Z a-z 0-9 _ -", s.Name, i+1, k)
		}
		if seen[k] {
			return fmt.Errorf("split %s: key %q appears twice (one image, one sample: de-duplicate first)", s.Name, k)
		}
		seen[k] = true
		if l := s.Labels[i]; l < 0 || l >= int64(len(opt.LabelNames)) {
			return fmt.Errorf("split %s: row %d: label %d is not an index of the %d label names", s.Name, i+1, l, len(opt.LabelNames))
		}
	}
	return nil
}

// image fetches row i and checks it against its SHA-256 and size.
func (s *Split) image(ctx context.Context, i int) ([]byte, error) {
	data, err := s.Image(ctx, i)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", s.Paths[i], err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != s.SHA256[i] {
		return nil, fmt.Errorf("image %s: bytes differ from the SHA-256 of its file_id (%s): not written", s.Paths[i], s.SHA256[i])
	}
	if int64(len(data)) != s.Sizes[i] {
		return nil, fmt.Errorf("image %s: %d bytes, planned for %d", s.Paths[i], len(data), s.Sizes[i])
	}
	return data, nil
}

func validKey(k string) bool {
	if len(k) == 0 || len(k) > 90 {
		return false
	}
	for i := range len(k) {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// shards cuts n items into consecutive ranges of at most maxCount items
// (0: no bound) whose sizes sum to at most maxBytes; an item larger than
// maxBytes gets a shard of its own. There is always one shard, if empty.
func shards(size func(i int) int64, n int, maxBytes int64, maxCount int) [][2]int {
	var out [][2]int
	start, sum := 0, int64(0)
	for i := range n {
		s := size(i)
		if i > start && (sum+s > maxBytes || (maxCount > 0 && i-start >= maxCount)) {
			out = append(out, [2]int{start, i})
			start, sum = i, 0
		}
		sum += s
	}
	return append(out, [2]int{start, n})
}
