package runner

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kneepipe/kneepipe/stages"
)

// outFiles lists --out's entries but run.json and skip.
func outFiles(t *testing.T, out string, skip ...string) []string {
	t.Helper()
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != "run.json" && !strings.Contains(strings.Join(skip, "\x00"), e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names
}

// An artifact file that cannot be written fails the run with an error
// naming it; --out keeps the previous run's artifacts byte for byte (the
// other artifacts rendered in this run are not published), nothing staged
// is left, and run.json says why.
func TestArtifactWriteErrorKeepsPreviousOut(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	out := filepath.Join(dir, "out")
	src := `stages:
  - {name: a, kind: gen, params: {n: N}}
  - {name: b, kind: copy, inputs: {rows: a}}
artifacts:
  - {from: a, name: one}
  - {from: b, name: two}
`
	if _, err := Run(context.Background(), k.pipeline(t, dir, "p.yaml", strings.Replace(src, "N", "3", 1)), testOptions(dir)); err != nil {
		t.Fatal(err)
	}
	before := map[string][]byte{}
	for _, f := range []string{"one.csv", "one.parquet", "two.csv", "two.parquet"} {
		data, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		before[f] = data
	}
	// A directory where two.parquet is staged: its write fails.
	blocker := filepath.Join(out, "two.parquet.tmp-kneepipe")
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), k.pipeline(t, dir, "p.yaml", strings.Replace(src, "N", "4", 1)), testOptions(dir))
	if err == nil || !strings.Contains(err.Error(), "two.parquet") {
		t.Fatalf("run: %v, want an error naming two.parquet", err)
	}
	for f, want := range before {
		if got, err := os.ReadFile(filepath.Join(out, f)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s changed by the failed run (%v)", f, err)
		}
	}
	if left := outFiles(t, out, "one.csv", "one.parquet", "two.csv", "two.parquet", "two.parquet.tmp-kneepipe"); len(left) > 0 {
		t.Errorf("--out holds %v after a failed write", left)
	}
	if rep := readRunJSON(t, out); rep.Status != RunFailed || !strings.Contains(rep.Error, "two.parquet") || len(rep.Artifacts) != 0 {
		t.Errorf("run.json: status %q error %q artifacts %v", rep.Status, rep.Error, rep.Artifacts)
	}
}

// Ctrl-C while an artifact is staged and a later stage runs: the run ends
// with the cancellation, --out holds run.json only, and it says so.
func TestArtifactsCancelledWhileStaged(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	out := filepath.Join(dir, "out")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waitErr error
	k.probe = func(*stages.Env) {
		waitErr = waitStaged(filepath.Join(out, "a.csv.tmp-kneepipe"), []byte("key\nk\nkk\nkkk\n"))
		cancel()
	}
	cfg := k.pipeline(t, dir, "p.yaml", `stages:
  - {name: a, kind: gen}
  - {name: b, kind: probe, inputs: {rows: a}}
  - {name: c, kind: copy, inputs: {rows: b}}
artifacts:
  - {from: a, name: a}
  - {from: c, name: c}
`)
	if _, err := Run(ctx, cfg, testOptions(dir)); !errors.Is(err, context.Canceled) {
		t.Fatalf("run: %v, want %v", err, context.Canceled)
	}
	if waitErr != nil {
		t.Error(waitErr)
	}
	if left := outFiles(t, out); len(left) > 0 {
		t.Errorf("--out holds %v after a cancelled run", left)
	}
	if rep := readRunJSON(t, out); rep.Status == RunOK || rep.Error == "" || len(rep.Artifacts) != 0 {
		t.Errorf("run.json: status %q error %q artifacts %v", rep.Status, rep.Error, rep.Artifacts)
	}
}

// A write that fails half way (here the writer's own error after a big
// write and a small one) leaves no file behind: never a half-written one
// to be renamed into --out.
func TestWriteHashedFailureRemovesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	errHalf := errors.New("half way")
	_, err := writeHashed(path, func(w io.Writer) error {
		if _, err := w.Write(make([]byte, 300<<10)); err != nil {
			return err
		}
		if _, err := w.Write([]byte("tail")); err != nil {
			return err
		}
		return errHalf
	})
	if !errors.Is(err, errHalf) {
		t.Errorf("err %v, want %v", err, errHalf)
	}
	if _, serr := os.Stat(path); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("file left after a failed write: %v", serr)
	}
}

// A directory where an artifact file goes fails the run before anything
// is published: not one.csv renamed into --out and then two.csv refused.
func TestArtifactOverDirectoryPublishesNothing(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(filepath.Join(out, "two.csv"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := k.pipeline(t, dir, "p.yaml", `stages:
  - {name: a, kind: gen}
artifacts:
  - {from: a, name: one}
  - {from: a, name: two}
`)
	_, err := Run(context.Background(), cfg, testOptions(dir))
	if err == nil || !strings.Contains(err.Error(), "two.csv") || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("run: %v, want an error naming two.csv", err)
	}
	if left := outFiles(t, out, "two.csv"); len(left) > 0 {
		t.Errorf("--out holds %v after the failed run", left)
	}
	if rep := readRunJSON(t, out); rep.Status != RunFailed || len(rep.Artifacts) != 0 {
		t.Errorf("run.json: status %q artifacts %v", rep.Status, rep.Artifacts)
	}
}
