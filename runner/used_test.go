package runner

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/table"
	"github.com/kneepipe/kneepipe/stages"
)

// notebookCSV is the notebook's raw_data.csv (duplicates, disagreements).
var notebookCSV = filepath.Join("..", "testdata", "golden", "notebook", "raw_data.csv")

// fromCSV loads examples/notebook-from-csv.yaml, plus extra artifacts
// (YAML list items), on notebookCSV.
func fromCSV(t *testing.T, dir, extra string) *Config {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "examples", "notebook-from-csv.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(path, append(src, extra...), 0o644); err != nil {
		t.Fatal(err)
	}
	csv, err := filepath.Abs(notebookCSV)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, stages.Builtin(), envOf(map[string]string{"MANIFEST": csv}))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// readAll artifacts read every column of every table stage's output.
const readAll = `  - {from: data, name: all_data}
  - {from: unique_data, name: all_unique}
  - {from: unique_data.removed, name: all_removed}
  - {from: normalized_data, name: all_normalized}
`

func TestUsedColumnsFromDeclarations(t *testing.T) {
	cfg := fromCSV(t, t.TempDir(), "")
	want := map[string]map[string][]string{
		"raw":  nil, // reads a file: never narrowed
		"data": {"rows": {"expert", "file_id", "relative_path", "severity"}},
		"unique_data": {
			"rows":    {"expert", "file_id", "severity"}, // cross-check's item, rater, grade
			"removed": {"relative_path"},                 // deleted_paths' columns
		},
		"cross_check":        {"disagreements": {"file_id"}},
		"different_severity": {"rows": {"file_id", "relative_path", "severity"}},
		"normalized_data":    {"rows": {"expert", "file_id", "relative_path", "severity"}},
	}
	for name, w := range want {
		if got := stageByName(cfg, name).Used; !reflect.DeepEqual(got, w) {
			t.Errorf("stage %s: Used = %v, want %v", name, got, w)
		}
	}
	// An artifact of every column keeps every column, back to the read.
	cfg = fromCSV(t, t.TempDir(), readAll)
	for _, name := range []string{"data", "unique_data", "normalized_data"} {
		if got := stageByName(cfg, name).Used; got != nil {
			t.Errorf("with artifacts of every column: stage %s: Used = %v, want nil (all)", name, got)
		}
	}
}

// columnNames runs the named stages of cfg and returns their outputs'
// column names.
func columnNames(t *testing.T, cfg *Config, dir string) map[string][]string {
	t.Helper()
	var names []string
	for _, st := range cfg.Stages {
		names = append(names, st.Name)
	}
	_, outs, err := RunStages(context.Background(), cfg, testOptions(dir), names)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for st, recs := range outs {
		for out, rec := range recs {
			got[st+"."+out] = table.Names(rec)
			rec.Release()
		}
	}
	return got
}

// Pruned columns change no artifact byte: the notebook's three CSVs are
// the same whether the tables keep every column or only those read.
func TestPrunedColumnsKeepArtifacts(t *testing.T) {
	pruned, full := t.TempDir(), t.TempDir()
	cfgPruned, cfgFull := fromCSV(t, pruned, ""), fromCSV(t, full, readAll)

	cols := columnNames(t, cfgPruned, pruned)
	if got, want := cols["unique_data.rows"], []string{"expert", "file_id", "severity"}; !slices.Equal(got, want) {
		t.Errorf("pruned unique_data columns %v, want %v", got, want)
	}
	if got := columnNames(t, cfgFull, full)["unique_data.rows"]; !slices.Contains(got, "relative_path") || !slices.Contains(got, "file") {
		t.Errorf("unpruned unique_data columns %v, want every column", got)
	}

	for _, run := range []struct {
		cfg *Config
		dir string
	}{{cfgPruned, pruned}, {cfgFull, full}} {
		if _, err := Run(context.Background(), run.cfg, testOptions(run.dir)); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"deleted_paths.csv", "different_severity.csv", "normalized_data.csv"} {
		a, errA := os.ReadFile(filepath.Join(pruned, "out", f))
		b, errB := os.ReadFile(filepath.Join(full, "out", f))
		golden, errG := os.ReadFile(filepath.Join("..", "testdata", "golden", "notebook", f))
		if errA != nil || errB != nil || errG != nil {
			t.Fatal(errA, errB, errG)
		}
		if !bytes.Equal(a, golden) || !bytes.Equal(b, golden) {
			t.Errorf("%s: pruned run and full run differ from the golden file (pruned equal %v, full equal %v)", f, bytes.Equal(a, golden), bytes.Equal(b, golden))
		}
	}
}

// The columns kept are part of a stage's cache key: an entry stored with
// fewer columns is not taken by a pipeline that reads more.
func TestPrunedColumnsInCacheKey(t *testing.T) {
	dir, fresh := t.TempDir(), t.TempDir()
	opts := testOptions(dir)
	if _, err := Run(context.Background(), fromCSV(t, dir, ""), opts); err != nil {
		t.Fatal(err)
	}
	opts.OutDir = filepath.Join(dir, "out2")
	if _, err := Run(context.Background(), fromCSV(t, dir, readAll), opts); err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, s := range readRunJSON(t, opts.OutDir).Stages {
		status[s.Name] = s.Status
	}
	for _, name := range []string{"data", "unique_data", "normalized_data"} {
		if status[name] != StatusOK {
			t.Errorf("stage %s reads more columns now: status %s, want %s (computed)", name, status[name], StatusOK)
		}
	}
	if _, err := Run(context.Background(), fromCSV(t, fresh, readAll), testOptions(fresh)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"all_data.csv", "all_unique.csv", "all_removed.csv", "all_normalized.csv", "normalized_data.csv"} {
		a, errA := os.ReadFile(filepath.Join(opts.OutDir, f))
		b, errB := os.ReadFile(filepath.Join(fresh, "out", f))
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("%s after the pruned run differs from a fresh cache's (%v, %v)", f, errA, errB)
		}
	}
	// And the first pipeline is still a no-op rerun on that cache.
	opts.OutDir = filepath.Join(dir, "out3")
	if _, err := Run(context.Background(), fromCSV(t, dir, ""), opts); err != nil {
		t.Fatal(err)
	}
	for _, s := range readRunJSON(t, opts.OutDir).Stages {
		if s.Name != "raw" && s.Status != StatusCached {
			t.Errorf("rerun of the pruned pipeline: stage %s is %s, want cached", s.Name, s.Status)
		}
	}
}

// Holds are counted per output: an output is released when its last
// reader is done, while the stage's other outputs stay readable.
func TestOutputsReleasedPerOutput(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	mk := func(n int) arrow.RecordBatch {
		return table.New(table.Int64s(mem, "v", make([]int64, n), nil))
	}
	o := newOutputs("s", 1, map[string]int{"big": 1, "small": 2})
	o.set(map[string]arrow.RecordBatch{"big": mk(1000), "small": mk(10), "unread": mk(100)})
	size := func() int { return mem.CurrentAlloc() }
	whole := size()

	o.doneWith("big") // big's reader is done while the stage still runs
	if size() != whole {
		t.Fatalf("released under the stage's own hold: %d of %d bytes left", size(), whole)
	}
	o.done() // the stage's run ends: big and the unread output go
	if _, err := o.get(ctx, mem, "big"); err == nil {
		t.Errorf("big readable after its only reader was done")
	}
	if _, err := o.get(ctx, mem, "unread"); err == nil {
		t.Errorf("an output nobody reads survived the stage's run")
	}
	rec, err := o.get(ctx, mem, "small")
	if err != nil || rec.NumRows() != 10 || size() >= whole/2 {
		t.Fatalf("small: %v, %d bytes held of %d", err, size(), whole)
	}
	o.doneWith("small")
	if _, err := o.get(ctx, mem, "small"); err != nil {
		t.Errorf("small released with a reader left: %v", err)
	}
	o.doneWith("small")
	if size() != 0 {
		t.Errorf("%d bytes held after every reader was done", size())
	}
}
