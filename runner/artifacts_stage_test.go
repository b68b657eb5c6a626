package runner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/table"
	"github.com/kneepipe/kneepipe/stages"
)

// lockedBuffer is a log sink for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitStaged waits until the staged (temporary) file of an artifact holds
// want, for a stage that runs after the artifact's stage.
func waitStaged(path string, want []byte) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if got, err := os.ReadFile(path); err == nil && bytes.Equal(got, want) {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return errors.New(path + " not staged while the later stage ran")
}

const earlyArtifacts = `stages:
  - {name: a, kind: gen, params: {n: 5}}
  - {name: b, kind: probe, inputs: {rows: a}}
artifacts:
  - {from: a, name: one}
  - {from: a, name: two}
  - {from: b, name: three}
`

// An artifact is rendered as soon as its stage is done, while the stages
// after it still run, and all artifacts concurrently. The bytes are those
// of the table writers called one after the other; artifacts with the same
// bytes (one and two) are both stored in the cache without a warning.
func TestArtifactsStagedWhileStagesRun(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	out := filepath.Join(dir, "out")
	mem := memory.NewGoAllocator()
	rec := table.New(table.Strings(mem, "key", []string{"k", "kk", "kkk", "kkkk", "kkkkk"}))
	defer rec.Release()
	var wantCSV, wantParquet bytes.Buffer
	if err := table.WriteCSV(&wantCSV, rec); err != nil {
		t.Fatal(err)
	}
	if err := table.WriteParquet(&wantParquet, rec); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	k.probe = func(*stages.Env) {
		for _, name := range []string{"one.csv", "two.csv"} {
			if waitErr = waitStaged(filepath.Join(out, name+".tmp-kneepipe"), wantCSV.Bytes()); waitErr != nil {
				return
			}
		}
	}
	var logs lockedBuffer
	opts := testOptions(dir)
	opts.Log = slog.New(slog.NewTextHandler(&logs, nil))
	cfg := k.pipeline(t, dir, "p.yaml", earlyArtifacts)
	if _, err := Run(context.Background(), cfg, opts); err != nil {
		t.Fatal(err)
	}
	if waitErr != nil {
		t.Error(waitErr)
	}
	for _, name := range []string{"one", "two", "three"} {
		for file, want := range map[string][]byte{name + ".csv": wantCSV.Bytes(), name + ".parquet": wantParquet.Bytes()} {
			got, err := os.ReadFile(filepath.Join(out, file))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %d bytes (%v), want the %d bytes of the writer alone", file, len(got), err, len(want))
			}
		}
	}
	if strings.Contains(logs.String(), "could not store") {
		t.Errorf("storing identical artifacts at once warned:\n%s", logs.String())
	}
	// Into a new --out every artifact comes from the cache, same bytes.
	opts.OutDir = filepath.Join(dir, "out2")
	k.probe = nil
	if _, err := Run(context.Background(), cfg, opts); err != nil {
		t.Fatal(err)
	}
	rep := readRunJSON(t, opts.OutDir)
	for name, st := range rep.ArtifactStatus {
		if st != ArtifactCopied {
			t.Errorf("rerun into a new --out: %s %s, want copied", name, st)
		}
	}
	for _, file := range []string{"one.csv", "two.parquet", "three.csv"} {
		a, _ := os.ReadFile(filepath.Join(out, file))
		b, err := os.ReadFile(filepath.Join(opts.OutDir, file))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s copied from the cache differs (%v)", file, err)
		}
	}
}

// A stage failing after an artifact was staged leaves --out without it:
// no artifact file and no staged leftover.
func TestArtifactsAbandonedWhenALaterStageFails(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	out := filepath.Join(dir, "out")
	var waitErr error
	k.probe = func(*stages.Env) {
		waitErr = waitStaged(filepath.Join(out, "a.csv.tmp-kneepipe"), []byte("key\nk\nkk\nkkk\n"))
	}
	cfg := k.pipeline(t, dir, "p.yaml", `stages:
  - {name: a, kind: gen}
  - {name: b, kind: probe, inputs: {rows: a}}
  - {name: c, kind: broken, inputs: {rows: b}}
artifacts:
  - {from: a, name: a}
`)
	if _, err := Run(context.Background(), cfg, testOptions(dir)); !errors.Is(err, errBroken) {
		t.Fatalf("run: %v, want %v", err, errBroken)
	}
	if waitErr != nil {
		t.Error(waitErr)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "run.json" {
			t.Errorf("--out holds %s after a failed run", e.Name())
		}
	}
	if rep := readRunJSON(t, out); len(rep.Artifacts) != 0 {
		t.Errorf("run.json lists artifacts %v", rep.Artifacts)
	}
}

// writeHashed's checksum and file are those of the bytes written, in
// small writes and in big ones (written and hashed at once).
func TestWriteHashedBigWrites(t *testing.T) {
	data := make([]byte, 3<<20+17)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	path := filepath.Join(t.TempDir(), "f")
	for _, size := range []int{1000, 256 << 10, 1 << 20, len(data)} {
		sum, err := writeHashed(path, func(w io.Writer) error {
			for p := data; len(p) > 0; {
				n := min(size, len(p))
				if _, err := w.Write(p[:n]); err != nil {
					return err
				}
				p = p[n:]
			}
			return nil
		})
		want := sha256.Sum256(data)
		got, rerr := os.ReadFile(path)
		if err != nil || rerr != nil || sum != hex.EncodeToString(want[:]) || !bytes.Equal(got, data) {
			t.Errorf("writes of %d bytes: sum %s (%v), file %d bytes (%v)", size, sum, err, len(got), rerr)
		}
	}
}
