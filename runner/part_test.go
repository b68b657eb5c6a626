package runner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/table"
	"github.com/kneepipe/kneepipe/stages"
)

// RunStages computes only the named stages, reading the given ones, and
// hands their outputs over; it publishes nothing.
func TestRunStagesWithGiven(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	cfg := k.pipeline(t, dir, "p.yaml", chain+"artifacts:\n  - {from: b, name: b, formats: [csv]}\n")
	opts := testOptions(dir)
	given := table.New(table.Strings(memory.NewGoAllocator(), "key", []string{"x", "y"}))
	defer given.Release()
	opts.Given = map[string]*Given{"a": {Outputs: map[string]arrow.RecordBatch{"rows": given}, Objects: stages.Objects{Listed: 2}, Why: "given"}}
	rep, outs, err := RunStages(context.Background(), cfg, opts, []string{"b"})
	if err != nil {
		t.Fatal(err)
	}
	defer releaseAll(outs["b"])
	if len(k.gen) != 0 {
		t.Error("the given stage was computed")
	}
	if got := outs["b"]["rows"]; got == nil || got.NumRows() != 2 {
		t.Fatalf("b's output: %v", got)
	}
	if len(rep.Stages) != 2 || rep.Stages[0].Why != "given" || rep.Objects.Listed != 2 {
		t.Errorf("report: %+v", rep)
	}
	if _, err := os.Stat(filepath.Join(opts.OutDir, "b.csv")); err == nil {
		t.Error("RunStages wrote an artifact")
	}
	// A stage reading one neither run nor given is refused.
	_, _, err = RunStages(context.Background(), cfg, testOptions(t.TempDir()), []string{"c"})
	if err == nil || !strings.Contains(err.Error(), "reads b, which is neither run nor given") {
		t.Errorf("c without b: %v", err)
	}
}
