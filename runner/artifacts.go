package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/kneepipe/kneepipe/internal/atomicfile"
	"github.com/kneepipe/kneepipe/internal/safe"
	"github.com/kneepipe/kneepipe/internal/table"
	"github.com/kneepipe/kneepipe/runner/cache"
)

// Artifact statuses in run.json.
const (
	ArtifactWritten   = "written"
	ArtifactCopied    = "copied"
	ArtifactUnchanged = "unchanged"
)

// publish renames the artifacts' staged files into --out once every one
// was written, and records them: a failed run leaves the previous
// artifacts as they were. The files were staged by startArtifacts while
// the stages ran.
func (x *execution) publish(w *artifactWork) error {
	names, status, err := x.writeArtifacts(w)
	x.artifacts, x.artifactStatus = names, status
	return err
}

// artifactWork is the artifacts being staged while the stages still run.
// Each artifact starts as soon as its stage has finished and all run
// concurrently (at 10M rows the artifacts were a fifth of the run's CPU,
// spent on one core after the last stage). Every file is rendered from its
// stage output alone, so the bytes do not depend on the order.
type artifactWork struct {
	results []artifactResult
	wg      sync.WaitGroup
	cancel  context.CancelCauseFunc
	keep    sync.Mutex // one writer of the cache's stored files at a time
}

// startArtifacts starts staging every artifact. An artifact whose source
// (stage output and artifact settings) is what last wrote the files now in
// --out, with the same checksums, is left alone: a no-op run neither reads
// its stage output nor rewrites it, and the files keep their modification
// time. Otherwise the files are copied from the cache when an earlier run
// stored that source's rendering, and rendered from the stage output (and
// stored) when not.
func (x *execution) startArtifacts(ctx context.Context) *artifactWork {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &artifactWork{results: make([]artifactResult, len(x.cfg.Artifacts)), cancel: cancel}
	prev := readArtifactRecord(x.artifactRecordPath())
	for i, a := range x.cfg.Artifacts {
		r, sr := &w.results[i], x.runs[a.From.Stage]
		w.wg.Go(func() {
			defer sr.outs.doneWith(a.From.Output) // the artifact's hold on its output (see plan)
			defer safe.Recover(&r.err)
			select {
			case <-sr.done:
			case <-ctx.Done():
				r.err = context.Cause(ctx)
				return
			}
			if sr.err != nil {
				r.err = skipError{fmt.Errorf("stage %s failed", sr.st.Name)} // the run fails with the stage's error
				return
			}
			r.source = x.artifactSource(a)
			x.stageArtifact(ctx, w, a, r, prev)
		})
	}
	return w
}

// stageArtifact stages one artifact's files into r (see startArtifacts).
func (x *execution) stageArtifact(ctx context.Context, w *artifactWork, a *Artifact, r *artifactResult, prev artifactRecord) {
	if old, ok := prev[a.Name]; ok && old.Source == string(r.source) && x.unchanged(old.Files) {
		r.status, r.sums = ArtifactUnchanged, old.Files
		return
	}
	files, sums, err := x.copyArtifact(r.source)
	if err != nil {
		x.opts.Log.Warn("stored copy of an artifact unusable; writing it again", "artifact", a.Name, "err", err)
	}
	if files != nil {
		r.status, r.files, r.sums = ArtifactCopied, files, sums
		return
	}
	files, sums, err = x.renderArtifact(ctx, w, a, r.source)
	if err != nil {
		r.err = err
		return
	}
	r.status, r.files, r.sums = ArtifactWritten, files, sums
}

// wait waits for every artifact and returns the first one's error, in the
// pipeline's order.
func (w *artifactWork) wait() error {
	w.wg.Wait()
	w.cancel(nil)
	for _, r := range w.results {
		if r.err != nil {
			return r.err
		}
	}
	return nil
}

// abandon stops the artifacts (the run failed) and removes what they staged.
func (w *artifactWork) abandon() {
	w.cancel(errAbandoned)
	w.wg.Wait()
	w.cleanup()
}

var errAbandoned = errors.New("the run failed")

func (w *artifactWork) cleanup() {
	for _, r := range w.results {
		removeStaged(r.files)
	}
}

func (x *execution) writeArtifacts(w *artifactWork) ([]string, map[string]string, error) {
	if err := w.wait(); err != nil {
		w.cleanup()
		return nil, nil, err
	}
	var staged []stagedFile
	for _, r := range w.results {
		x.artifactSources = append(x.artifactSources, r.source)
		staged = append(staged, r.files...)
	}
	files := make([][]string, len(w.results))
	for i, r := range w.results {
		files[i] = slices.Sorted(maps.Keys(r.sums))
	}
	if err := checkFileNames(x.cfg.Artifacts, files); err != nil {
		w.cleanup()
		return nil, nil, err
	}
	if err := syncFiles(staged); err != nil {
		w.cleanup()
		return nil, nil, err
	}
	if err := publishFiles(staged, os.Rename); err != nil {
		w.cleanup()
		return nil, nil, err
	}
	next := artifactRecord{}
	status := map[string]string{}
	var names []string
	for i, a := range x.cfg.Artifacts {
		r := w.results[i]
		next[a.Name] = writtenArtifact{Source: string(r.source), Files: r.sums}
		status[a.Name] = r.status
		names = append(names, slices.Collect(maps.Keys(r.sums))...)
	}
	if err := writeArtifactRecord(x.artifactRecordPath(), next); err != nil {
		x.opts.Log.Warn("could not record the artifacts written; the next run rewrites them", "err", err)
	}
	sort.Strings(names)
	return names, status, nil
}

// artifactResult is how one artifact's files got into --out: unchanged
// (nothing staged), or staged from the cache or from its stage output.
type artifactResult struct {
	source cache.Key
	status string
	files  []stagedFile      // staged temporary files, renamed at the end
	sums   map[string]string // path under --out -> sha256
	err    error
}

// copyArtifact stages the files the cache stored for source, verified
// against their checksums. It stages nothing (and says why, unless nothing
// is stored) when any file is missing or damaged.
func (x *execution) copyArtifact(source cache.Key) ([]stagedFile, map[string]string, error) {
	sums, err := x.store.ArtifactSet(source)
	if err != nil {
		if errors.Is(err, cache.ErrMiss) {
			err = nil
		}
		return nil, nil, err
	}
	var files []stagedFile
	for _, name := range slices.Sorted(maps.Keys(sums)) {
		f, err := x.stagedFile(name)
		if err == nil {
			err = x.store.CopyFile(sums[name], f.tmp)
		}
		if err != nil {
			removeStaged(files)
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		files = append(files, f)
	}
	return files, sums, nil
}

// renderArtifact writes an artifact's files from its stage output into
// temporary files, concurrently, and stores them in the cache for later
// runs.
func (x *execution) renderArtifact(ctx context.Context, w *artifactWork, a *Artifact, source cache.Key) ([]stagedFile, map[string]string, error) {
	rec, err := x.runs[a.From.Stage].outs.get(ctx, x.env.Mem, a.From.Output)
	if err != nil {
		return nil, nil, fmt.Errorf("artifact %s: %w", a.Name, err)
	}
	outs, release, err := artifactFiles(a, rec)
	if err != nil {
		return nil, nil, fmt.Errorf("artifact %s: %w", a.Name, err)
	}
	defer release()
	files := make([]stagedFile, len(outs))
	names := make([]string, len(outs))
	hashes := make([]string, len(outs))
	errs := make([]error, len(outs))
	err = safe.ForEach(ctx, len(outs), max(2, runtime.GOMAXPROCS(0)), func() func(int) {
		return func(i int) {
			names[i] = filepath.ToSlash(outs[i].name)
			f, err := x.stagedFile(names[i])
			if err == nil {
				files[i] = f
				hashes[i], err = writeHashed(f.tmp, func(w io.Writer) error { return outs[i].write(ctxWriter{ctx, w}) })
			}
			if err != nil {
				errs[i] = fmt.Errorf("artifact %s: %w", outs[i].name, err)
			}
		}
	})
	for _, e := range errs {
		if e != nil {
			err = e // the first file's, as one after the other would say
			break
		}
	}
	if err != nil {
		removeStaged(files)
		return nil, nil, err
	}
	sums := map[string]string{}
	for i, name := range names {
		sums[name] = hashes[i]
	}
	keep := func() error {
		w.keep.Lock()
		defer w.keep.Unlock()
		for i, f := range files {
			if err := x.store.KeepFile(f.tmp, hashes[i]); err != nil {
				return err
			}
		}
		return x.store.PutArtifactSet(source, sums)
	}
	if err := keep(); err != nil {
		x.opts.Log.Warn("could not store a copy of an artifact; later runs into a new --out write it again", "artifact", a.Name, "err", err)
	}
	return files, sums, nil
}

// stagedFile names the temporary file and destination of one artifact file
// (a slash-separated path under --out) and makes its folder.
func (x *execution) stagedFile(name string) (stagedFile, error) {
	rel := filepath.FromSlash(name)
	if !filepath.IsLocal(rel) {
		return stagedFile{}, fmt.Errorf("file name %q leaves the output folder", name)
	}
	dst := filepath.Join(x.opts.OutDir, rel)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return stagedFile{}, err
	}
	// Found now, not when publish renames it after other artifacts'
	// files: --out would hold some of this run's artifacts and not all.
	if fi, err := os.Lstat(dst); err == nil && fi.IsDir() {
		return stagedFile{}, fmt.Errorf("%s is a directory", dst)
	}
	return stagedFile{tmp: dst + ".tmp-kneepipe", dst: dst}, nil
}

// artifactRecord remembers, per artifact, what produced the files in --out
// and their SHA-256, in the cache's state (one record per --out folder).
type artifactRecord map[string]writtenArtifact

type writtenArtifact struct {
	Source string            `json:"source"`
	Files  map[string]string `json:"files"` // path under --out -> sha256
}

func (x *execution) artifactRecordPath() string {
	abs, err := filepath.Abs(x.opts.OutDir)
	if err != nil {
		abs = x.opts.OutDir
	}
	var h cache.Hasher
	h.Add("out", abs)
	return filepath.Join(x.opts.CacheDir, "state", "artifacts-"+string(h.Key()[:16])+".json")
}

// artifactSource identifies what an artifact's files are made from.
func (x *execution) artifactSource(a *Artifact) cache.Key {
	var h cache.Hasher
	h.Add("output", string(x.runs[a.From.Stage].key)+"/"+a.From.Output).
		Add("name", a.Name).
		Add("formats", strings.Join(a.Formats, ",")).
		Add("columns", strings.Join(a.Columns, ","))
	for _, k := range slices.Sorted(maps.Keys(a.Rename)) {
		h.Add("rename:"+k, a.Rename[k])
	}
	return h.Key()
}

// unchanged says whether every file is in --out with the recorded SHA-256.
func (x *execution) unchanged(files map[string]string) bool {
	for name, sum := range files {
		got, err := cache.FileSHA256(filepath.Join(x.opts.OutDir, filepath.FromSlash(name)))
		if err != nil || got != sum {
			return false
		}
	}
	return len(files) > 0
}

func readArtifactRecord(path string) artifactRecord {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var r artifactRecord
	if json.Unmarshal(data, &r) != nil {
		return nil
	}
	return r
}

func writeArtifactRecord(path string, r artifactRecord) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, data)
}

// removeStaged removes staged temporary files (a failed or abandoned write).
func removeStaged(files []stagedFile) {
	for _, f := range files {
		os.Remove(f.tmp)
	}
}

type artifactFile struct {
	name  string // relative to --out
	write func(io.Writer) error
}

// artifactFiles lists the files one artifact writes. CSV and Parquet hold
// the selected columns; "files" writes each row of a (name, content) table
// as a file in the artifact's folder.
func artifactFiles(a *Artifact, rec arrow.RecordBatch) ([]artifactFile, func(), error) {
	if len(a.Formats) == 1 && a.Formats[0] == "files" {
		names, err := table.StringCol(rec, "name")
		if err != nil {
			return nil, nil, err
		}
		write, err := filesContent(rec)
		if err != nil {
			return nil, nil, err
		}
		var out []artifactFile
		seen := make(map[string]bool, names.Len())
		for i := range names.Len() {
			name := filepath.Join(a.Name, filepath.FromSlash(names.Value(i)))
			if !filepath.IsLocal(name) {
				return nil, nil, fmt.Errorf("file name %q leaves the output folder", names.Value(i))
			}
			if seen[name] {
				return nil, nil, fmt.Errorf("file name %q is in two rows", names.Value(i))
			}
			seen[name] = true
			out = append(out, artifactFile{name, func(w io.Writer) error { return write(w, i) }})
		}
		return out, func() {}, nil
	}
	sel, err := table.Select(rec, a.Columns, a.Rename)
	if err != nil {
		return nil, nil, err
	}
	var out []artifactFile
	for i, f := range a.Formats {
		write := func(w io.Writer) error { return table.WriteParquet(w, sel) }
		if f == "csv" {
			write = func(w io.Writer) error { return table.WriteCSV(w, sel) }
		}
		out = append(out, artifactFile{a.Files()[i], write})
	}
	return out, sel.Release, nil
}

// filesContent returns how to write row i of a files table: its content
// column, or (for files too large to hold in memory, such as export
// shards) the file its path column names, streamed and checked against
// its sha256 column.
func filesContent(rec arrow.RecordBatch) (func(io.Writer, int) error, error) {
	if ci, err := table.Index(rec, "content"); err == nil {
		content, ok := rec.Column(ci).(*array.Binary)
		if !ok {
			return nil, fmt.Errorf("column content is %s, want binary", rec.Column(ci).DataType())
		}
		return func(w io.Writer, i int) error { _, err := w.Write(content.Value(i)); return err }, nil
	}
	paths, err := table.StringCol(rec, "path")
	if err != nil {
		return nil, fmt.Errorf("a files table needs a content or a path column: %w", err)
	}
	sums, err := table.StringCol(rec, "sha256")
	if err != nil {
		return nil, err
	}
	return func(w io.Writer, i int) error {
		f, err := os.Open(paths.Value(i))
		if err != nil {
			return fmt.Errorf("stored file: %w (rerun with --force)", err)
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(w, h), f); err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != sums.Value(i) {
			return fmt.Errorf("stored file %s is damaged: sha256 %s, want %s (rerun with --force)", paths.Value(i), got, sums.Value(i))
		}
		return nil
	}, nil
}

// writeHashed writes path through write and returns the content's
// SHA-256. The caller syncs it.
func writeHashed(path string, write func(io.Writer) error) (string, error) {
	// A leftover of a killed run may be hard-linked into the cache's
	// stored files: replace it, never write through it.
	os.Remove(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if err := write(hashingFile{f, h}); err != nil {
		f.Close()
		os.Remove(path)
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}

// hashingFile writes to f and h. A big write goes to the file on another
// goroutine while it is hashed, so that the two overlap (at 10M rows they
// were a second of the largest artifact's writing, one after the other).
type hashingFile struct {
	f *os.File
	h hash.Hash
}

func (w hashingFile) Write(p []byte) (int, error) {
	if len(p) < 256<<10 {
		n, err := w.f.Write(p)
		w.h.Write(p[:n])
		return n, err
	}
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := w.f.Write(p)
		done <- result{n, err}
	}()
	w.h.Write(p)
	r := <-done
	return r.n, r.err // on a short write the hash is wrong, and the file removed
}

// syncFiles syncs the staged files concurrently, so that their waits on
// the disk overlap rather than add up.
func syncFiles(files []stagedFile) error {
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, f := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = syncFile(f.tmp)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}
