// Package journal is an append-only, crash-safe record log: each record is
// one line "crc32c-hex json\n". A line cut short by a crash or a bit flipped
// on disk fails its checksum and is skipped with a count, never trusted.
//
// A journal lives in a directory as "snapshot" (compacted, replaced
// atomically) plus "log" (appended as work completes, synced at
// checkpoints). Compact folds both into a new snapshot and empties the log.
package journal

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kneepipe/kneepipe/internal/atomicfile"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Load reads every intact record of the snapshot and then the log, in
// order, calling fn for each. It returns how many lines were damaged.
func Load(dir string, fn func(json.RawMessage) error) (damaged int, err error) {
	for _, name := range []string{"snapshot", "log"} {
		n, err := loadFile(filepath.Join(dir, name), fn)
		damaged += n
		if err != nil {
			return damaged, err
		}
	}
	return damaged, nil
}

func loadFile(path string, fn func(json.RawMessage) error) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	damaged := 0
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			if rec, ok := parseLine(line); ok {
				if err := fn(rec); err != nil {
					return damaged, err
				}
			} else {
				damaged++
			}
		}
		if errors.Is(err, io.EOF) {
			return damaged, nil
		}
		if err != nil {
			return damaged, err
		}
	}
}

func parseLine(line []byte) (json.RawMessage, bool) {
	if len(line) < 10 || line[len(line)-1] != '\n' || line[8] != ' ' {
		return nil, false
	}
	var sum [4]byte
	if _, err := hex.Decode(sum[:], line[:8]); err != nil {
		return nil, false
	}
	body := line[9 : len(line)-1]
	want := uint32(sum[0])<<24 | uint32(sum[1])<<16 | uint32(sum[2])<<8 | uint32(sum[3])
	if crc32.Checksum(body, castagnoli) != want || !json.Valid(body) {
		return nil, false
	}
	return json.RawMessage(body), true
}

func appendLine(buf []byte, v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return buf, err
	}
	buf = fmt.Appendf(buf, "%08x ", crc32.Checksum(body, castagnoli))
	buf = append(buf, body...)
	return append(buf, '\n'), nil
}

// Writer appends records to the log and syncs them to disk every
// `every` records or `interval`, whichever comes first.
type Writer struct {
	mu       sync.Mutex
	f        *os.File
	buf      []byte
	pending  int
	every    int
	interval time.Duration
	last     time.Time
}

// Append opens dir's log for appending.
func Append(dir string, every int, interval time.Duration) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &Writer{f: f, every: every, interval: interval, last: time.Now()}, nil
}

// Add records v; it reaches the disk at the next checkpoint.
func (w *Writer) Add(v any) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var err error
	if w.buf, err = appendLine(w.buf, v); err != nil {
		return err
	}
	w.pending++
	if w.pending >= w.every || time.Since(w.last) >= w.interval {
		return w.syncLocked()
	}
	return nil
}

// Sync writes and syncs what was added so far.
func (w *Writer) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.syncLocked()
}

func (w *Writer) syncLocked() error {
	w.last = time.Now()
	if len(w.buf) == 0 {
		return nil
	}
	if _, err := w.f.Write(w.buf); err != nil {
		return err
	}
	w.buf, w.pending = w.buf[:0], 0
	return w.f.Sync()
}

// Close syncs and closes the log.
func (w *Writer) Close() error {
	err := w.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Compact replaces dir's snapshot with records (atomically) and empties
// the log. Call it with no Writer open on dir.
func Compact[T any](dir string, records []T) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	err := atomicfile.Write(filepath.Join(dir, "snapshot"), func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<16)
		var line []byte
		var err error
		for _, r := range records {
			if line, err = appendLine(line[:0], r); err != nil {
				return err
			}
			bw.Write(line)
		}
		return bw.Flush()
	})
	if err != nil {
		return err
	}
	// The snapshot holds everything the log did; an empty log is now correct.
	if err := os.Truncate(filepath.Join(dir, "log"), 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return atomicfile.SyncDir(dir)
}
