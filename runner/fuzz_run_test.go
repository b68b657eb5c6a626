package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kneepipe/kneepipe/stages"
)

// FuzzRun loads and runs small pipelines, put together from pieces the
// fuzzer picks, over small generated directories and CSV tables: odd
// layouts, grades past 2⁵³ and at the ends of int64, duplicates, stray and
// broken files. Whatever the pieces, nothing panics; a run either fails
// with an error and a failed run.json or succeeds with a run.json that
// accounts for every listed object (listed = accepted + rejected +
// failed); a second run over the same cache gives byte-identical
// artifacts.
//
// Each input is a string of choices: byte i picks piece i (0 once the
// input runs out), so short inputs are the common pipelines.
func FuzzRun(f *testing.F) {
	// The seeds spell out, choice by choice (see bucketPipeline and
	// tablePipeline for the order), the cases worth keeping.
	for _, seed := range [][]byte{
		{}, // one expert, one image, the default pieces
		// Two experts on two images, grades 2⁵³ and 2⁵³+1 (one float64),
		// disagreeing on one; report with mean images.
		{0, 3, 0, 2, 0, 0, 1, 3, 0, 0, 0, 3, 1, 1, 1, 3, 1, 1, 0, 0, 0, 0, 4, 0, 0, 1},
		// Grades at both ends of int64; missing raters disagree; no report.
		{0, 3, 0, 4, 0, 0, 1, 5, 0, 0, 0, 0, 2, 2, 1, 0, 2, 2, 0, 0, 0, 1, 4, 1, 1},
		// Strays: a .txt, an unknown grade, a deeper path, an empty file, a
		// PNG cut short, junk named .png; dedupe on file_id alone.
		{0, 7, 3, 6, 3, 4, 0, 6, 0, 0, 0, 7, 4, 1, 1, 7, 1, 5, 2, 1, 0, 6, 0, 1, 1, 3, 1, 1, 1, 3, 2, 0, 0, 4, 1, 0, 1, 0, 4, 0, 0, 0},
		// expect: any accepts junk; exactly max_grades (2) grades.
		{0, 2, 0, 0, 0, 4, 1, 0, 0, 4, 2, 7, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0},
		// A table with grades 2⁵³, 2⁵³+1 and both ends of int64.
		{1, 6, 0, 0, 5, 0, 1, 6, 1, 0, 6, 1, 1, 6, 2, 0, 7, 2, 1, 8, 0, 0, 5, 0},
		// A table with an empty grade.
		{1, 2, 0, 0, 9, 0, 1, 0, 0, 0, 0, 0},
		// A table with more grades than max_grades.
		{1, 4, 0, 0, 0, 0, 1, 1, 1, 0, 2, 1, 1, 3, 0, 0, 0, 0},
		// A table whose duplicates conflict (dedupe on file_id).
		{1, 2, 0, 0, 0, 0, 1, 1, 1, 1, 3, 1},
	} {
		f.Add(seed)
	}
	contents := fuzzContents(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &choices{data: data}
		dir := t.TempDir()
		var yaml string
		var listed int64
		if c.pick(2) == 0 {
			yaml, listed = bucketPipeline(t, c, dir, contents)
		} else {
			yaml = tablePipeline(t, c, dir)
			listed = -1
		}
		file := filepath.Join(dir, "pipeline.yaml")
		if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(file, stages.Builtin(), func(string) (string, bool) { return "", false })
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Load: %v is a %T, want *ConfigError\n%s", err, err, yaml)
			}
			t.Logf("Load: %v", err)
			return // pieces may not fit (a layout without the grade field)
		}
		out, cache := filepath.Join(dir, "out"), filepath.Join(dir, "cache")
		opts := Options{OutDir: out, CacheDir: cache, Log: slog.New(slog.DiscardHandler)}
		first := fuzzRunOnce(t, cfg, opts, yaml, listed)
		if first == nil {
			return
		}
		again := fuzzRunOnce(t, cfg, opts, yaml, listed)
		if again == nil {
			t.Fatalf("the second run failed, the first did not\n%s", yaml)
		}
		for name, b := range first {
			if !bytes.Equal(again[name], b) {
				t.Errorf("%s differs between two runs of the same inputs\n%s", name, yaml)
			}
		}
		if len(again) != len(first) {
			t.Errorf("the second run wrote %d files, the first %d", len(again), len(first))
		}
	})
}

// fuzzRunOnce runs cfg and checks run.json against the error. It returns
// the artifacts (every file in the output directory but run.json) of a run
// that succeeded, nil after an error.
func fuzzRunOnce(t *testing.T, cfg *Config, opts Options, yaml string, listed int64) map[string][]byte {
	t.Helper()
	rep, err := Run(context.Background(), cfg, opts)
	data, rerr := os.ReadFile(filepath.Join(opts.OutDir, "run.json"))
	if rerr != nil {
		t.Fatalf("run error %v, and no run.json: %v\n%s", err, rerr, yaml)
	}
	var got Report
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("run.json: %v", err)
	}
	if rep == nil {
		t.Fatalf("Run returned no report (error %v)", err)
	}
	t.Logf("run: status %s, objects %+v, error %v", got.Status, got.Objects, err)
	switch {
	case err == nil && got.Status != StatusOK,
		errors.Is(err, ErrObjectsFailed) && got.Status != "partial",
		err != nil && !errors.Is(err, ErrObjectsFailed) && got.Status != StatusFailed:
		t.Fatalf("run error %v, run.json status %q\n%s", err, got.Status, yaml)
	}
	if err != nil && !errors.Is(err, ErrObjectsFailed) {
		if got.Error == "" {
			t.Fatalf("failed run.json without an error\n%s", yaml)
		}
		return nil
	}
	o := got.Objects
	if o.Listed != o.Accepted+o.Rejected+o.Failed {
		t.Fatalf("run.json objects %+v: listed != accepted + rejected + failed\n%s", o, yaml)
	}
	if listed >= 0 && o.Listed != listed {
		t.Fatalf("run.json lists %d objects, the directory holds %d .png files\n%s", o.Listed, listed, yaml)
	}
	files := map[string][]byte{}
	err = filepath.WalkDir(opts.OutDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "run.json" {
			return err
		}
		b, err := os.ReadFile(path)
		files[path] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// choices hands out the fuzzer's picks.
type choices struct {
	data []byte
	i    int
}

// pick returns the next choice among n, 0 when the input has run out.
func (c *choices) pick(n int) int {
	if c.i >= len(c.data) {
		return 0
	}
	c.i++
	return int(c.data[c.i-1]) % n
}

func (c *choices) of(xs ...string) string { return xs[c.pick(len(xs))] }

// fuzzGrades is map-severity's grades parameter: the notebook's labels and
// labels of grades a float64 cannot tell apart, or at the ends of int64.
const fuzzGrades = `{"0Normal": 0, "1Doubtful": 1, "2Mild": 2, "big": 9007199254740992, "big1": 9007199254740993, "min": -9223372036854775808, "max": 9223372036854775807}`

// bucketPipeline writes a directory of files under dir and returns a
// pipeline over it (list, fetch-hash, map-severity, dedupe, cross-check,
// filter, and maybe a report) with the number of .png files it lists.
func bucketPipeline(t *testing.T, c *choices, dir string, contents [][]byte) (string, int64) {
	src := filepath.Join(dir, "bucket")
	n := 1 + c.pick(8)
	var listed int64
	for range n {
		rel := c.of("A", "B", "C", "") + "/" + c.of("0Normal", "1Doubtful", "big", "big1", "min", "max", "Unknown", "2Mild") + "/" +
			c.of("x.png", "y.png", "z (1).png", "w.txt", "sub/v.png")
		rel = strings.TrimPrefix(rel, "/")
		content := contents[c.pick(len(contents))]
		path := filepath.Join(src, filepath.FromSlash(rel))
		if _, err := os.Stat(path); err == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(rel, ".png") {
			listed++
		}
	}
	layout := c.of("{expert}/{severity}/{file}", "{expert}/{severity}/{name}.png", "{severity}/{file}", "{expert}/{file}")
	yaml := fmt.Sprintf(`version: 1
source: {uri: %q}
stages:
  - name: list
    kind: list
  - name: fetch
    kind: fetch-hash
    inputs: {objects: list}
    params: {concurrency: 2, attempts: 1, expect: %s, fingerprint: true}
  - name: graded
    kind: map-severity
    inputs: {rows: fetch}
    params: {layout: %q, grades: %s}
  - name: near
    kind: near-duplicates
    inputs: {rows: graded}
`, src, c.of("png", "any"), layout, fuzzGrades)
	yaml += agreementStages(c, "near")
	if c.pick(2) == 0 {
		yaml += fmt.Sprintf(`  - name: excluded
    kind: exclusions
    inputs: {objects: list, list_rejected: list.rejected, failed: fetch.failed, fetch_rejected: fetch.rejected, rejected: graded.rejected, rows: unique, removed: unique.removed, disagreements: agreement.disagreements, near_groups: near.groups, clean: agreed}
  - name: report
    kind: report
    inputs: {rows: graded, matrix: agreement.matrix, kappa: agreement.kappa, disagreements: agreement.disagreements, excluded: excluded, near_groups: near.groups}
    params: {mean_images: %v, mean_size: 8x8}
`, c.pick(2) == 1)
		yaml += agreementArtifacts + "  - {from: report, name: ., formats: [files]}\n"
		return yaml, listed
	}
	return yaml + agreementArtifacts, listed
}

// tablePipeline writes a CSV of (file_id, expert, severity) rows under dir
// and returns a pipeline that reads it into the agreement stages.
func tablePipeline(t *testing.T, c *choices, dir string) string {
	var csv strings.Builder
	csv.WriteString("file_id,expert,severity\n")
	for range c.pick(12) {
		fmt.Fprintf(&csv, "%s,%s,%s\n", c.of("a", "b", "c"), c.of("A", "B", "C"),
			c.of("0", "1", "2", "4", "-3", "9007199254740992", "9007199254740993", "9223372036854775807", "-9223372036854775808", "", "x"))
	}
	path := filepath.Join(dir, "grades.csv")
	if err := os.WriteFile(path, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`version: 1
stages:
  - name: raw
    kind: read
    params: {path: %q, types: {severity: int64}}
`, path) + agreementStages(c, "raw") + agreementArtifacts
}

// agreementStages de-duplicates rows and cross-checks the raters.
func agreementStages(c *choices, rows string) string {
	return fmt.Sprintf(`  - name: unique
    kind: dedupe
    inputs: {rows: %s}
    params: {on: %s, check: severity}
  - name: agreement
    kind: cross-check
    inputs: {rows: unique}
    params: {missing_disagrees: %v, max_grades: %d}
  - name: agreed
    kind: filter
    inputs: {rows: unique, by: agreement.disagreements}
    params: {mode: %s}
`, rows, c.of("[expert, file_id]", "[file_id]"), c.pick(2) == 1, 2+c.pick(6), c.of("drop", "keep"))
}

const agreementArtifacts = `artifacts:
  - {from: agreed, name: agreed, formats: [csv, parquet]}
  - {from: agreement.matrix, name: matrix, formats: [csv]}
  - {from: agreement.kappa, name: kappa, formats: [csv]}
`

// fuzzContents are the files' possible contents: a few tiny PNGs (8- and
// 16-bit grey, two sizes), junk, an empty file and a PNG cut short.
func fuzzContents(f *testing.F) [][]byte {
	var out [][]byte
	for _, img := range []image.Image{
		gray(2, 2, 10), gray(2, 2, 200), gray(3, 1, 10), image.NewGray16(image.Rect(0, 0, 2, 2)),
	} {
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			f.Fatal(err)
		}
		out = append(out, b.Bytes())
	}
	return append(out, []byte("junk"), nil, out[0][:20])
}

func gray(w, h int, v uint8) image.Image {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = v
	}
	img.Set(0, 0, color.Gray{v / 2})
	return img
}
