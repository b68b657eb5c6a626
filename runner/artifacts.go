package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/kneepipe/kneepipe/internal/table"
	"github.com/kneepipe/kneepipe/runner/cache"
)

// writeArtifacts writes every artifact to a temporary file first and
// renames them all only when every one was written: a failed run leaves
// the previous artifacts as they were. An artifact whose source (stage
// output and artifact settings) is what last wrote the files now in --out,
// with the same checksums, is left alone: a no-op run neither reads its
// stage output nor rewrites it, and the files keep their modification time.
func (x *execution) writeArtifacts() ([]string, error) {
	recordPath := x.artifactRecordPath()
	prev := readArtifactRecord(recordPath)
	next := artifactRecord{}
	var staged []stagedFile
	var names []string
	cleanup := func() {
		for _, p := range staged {
			os.Remove(p.tmp)
		}
	}
	for _, a := range x.cfg.Artifacts {
		source := x.artifactSource(a)
		if old, ok := prev[a.Name]; ok && old.Source == source && x.unchanged(old.Files) {
			next[a.Name] = old
			names = append(names, slices.Collect(maps.Keys(old.Files))...)
			continue
		}
		rec, err := x.runs[a.From.Stage].output(context.Background(), x.env.Mem, a.From.Output)
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("artifact %s: %w", a.Name, err)
		}
		files, release, err := artifactFiles(a, rec)
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("artifact %s: %w", a.Name, err)
		}
		written := writtenArtifact{Source: source, Files: map[string]string{}}
		for _, f := range files {
			dst := filepath.Join(x.opts.OutDir, f.name)
			tmp := dst + ".tmp-kneepipe"
			err := os.MkdirAll(filepath.Dir(dst), 0o755)
			var sum string
			if err == nil {
				sum, err = writeSynced(tmp, f.write)
			}
			if err != nil {
				release()
				cleanup()
				return nil, fmt.Errorf("artifact %s: %w", f.name, err)
			}
			staged = append(staged, stagedFile{tmp, dst})
			written.Files[filepath.ToSlash(f.name)] = sum
		}
		release()
		next[a.Name] = written
	}
	for _, p := range staged {
		if err := os.Rename(p.tmp, p.dst); err != nil {
			cleanup()
			return nil, err
		}
		rel, _ := filepath.Rel(x.opts.OutDir, p.dst)
		names = append(names, filepath.ToSlash(rel))
	}
	if err := writeArtifactRecord(recordPath, next); err != nil {
		x.opts.Log.Warn("could not record the artifacts written; the next run rewrites them", "err", err)
	}
	sort.Strings(names)
	return names, nil
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
func (x *execution) artifactSource(a *Artifact) string {
	var h cache.Hasher
	h.Add("output", string(x.runs[a.From.Stage].key)+"/"+a.From.Output).
		Add("name", a.Name).
		Add("formats", strings.Join(a.Formats, ",")).
		Add("columns", strings.Join(a.Columns, ","))
	for _, k := range slices.Sorted(maps.Keys(a.Rename)) {
		h.Add("rename:"+k, a.Rename[k])
	}
	return string(h.Key())
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
	return cache.WriteFileAtomic(path, data)
}

type stagedFile struct{ tmp, dst string }

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
		ci, err := table.Index(rec, "content")
		if err != nil {
			return nil, nil, err
		}
		content, ok := rec.Column(ci).(*array.Binary)
		if !ok {
			return nil, nil, fmt.Errorf("column content is %s, want binary", rec.Column(ci).DataType())
		}
		var out []artifactFile
		for i := range names.Len() {
			name := filepath.Join(a.Name, filepath.FromSlash(names.Value(i)))
			if !filepath.IsLocal(name) {
				return nil, nil, fmt.Errorf("file name %q leaves the output folder", names.Value(i))
			}
			data := content.Value(i)
			out = append(out, artifactFile{name, func(w io.Writer) error { _, err := w.Write(data); return err }})
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

// writeSynced writes path through write, syncs it, and returns the
// content's SHA-256.
func writeSynced(path string, write func(io.Writer) error) (string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if err := write(io.MultiWriter(f, h)); err != nil {
		f.Close()
		os.Remove(path)
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}
