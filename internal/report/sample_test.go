package report_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"gopkg.in/yaml.v3"

	"github.com/kneepipe/kneepipe/internal/source"
	"github.com/kneepipe/kneepipe/stages"
)

// sampleDir is the bundled sample dataset.
func sampleDir(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "sample")
}

// sampleFiles runs the default pipeline's stages over the bundled sample,
// through each kind's Go API, up to the report stage with reportParams
// (YAML, "" for none), and returns the report's files by name.
func sampleFiles(t *testing.T, reportParams string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	store, err := source.Open(ctx, source.Config{URI: sampleDir(t)}, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	env := &stages.Env{
		Store: store, Mem: mem, Log: slog.New(slog.DiscardHandler),
		Progress: func(string, int) stages.Progress { return nopProgress{} },
	}
	var held []arrow.RecordBatch
	defer func() {
		for _, r := range held {
			r.Release()
		}
	}()
	step := func(kind, params string, in map[string]arrow.RecordBatch) map[string]arrow.RecordBatch {
		t.Helper()
		k := stages.Builtin()[kind]
		var pn *yaml.Node
		if params != "" {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(params), &doc); err != nil {
				t.Fatal(err)
			}
			pn = doc.Content[0]
		}
		p, err := k.DecodeParams(pn, &yaml.Node{Line: 1, Column: 1})
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		st, err := k.New(p)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		res, err := st.Run(ctx, env, in)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		for _, r := range res.Outputs {
			held = append(held, r)
		}
		return res.Outputs
	}
	list := step("list", "", nil)
	fetch := step("fetch-hash", "{concurrency: 8, fingerprint: true}", map[string]arrow.RecordBatch{"objects": list["objects"]})
	graded := step("map-severity", "", map[string]arrow.RecordBatch{"rows": fetch["rows"]})
	unique := step("dedupe", "", map[string]arrow.RecordBatch{"rows": graded["rows"]})
	cross := step("cross-check", "{missing_disagrees: true}", map[string]arrow.RecordBatch{"rows": unique["rows"]})
	agreed := step("filter", "{column: file_id, mode: drop}", map[string]arrow.RecordBatch{"rows": unique["rows"], "by": cross["disagreements"]})
	near := step("near-duplicates", "{min_similarity: '0.986'}", map[string]arrow.RecordBatch{"rows": agreed["rows"]}) // as pipeline.yaml
	clean := step("dedupe", "{on: [file_id]}", map[string]arrow.RecordBatch{"rows": near["rows"]})
	excluded := step("exclusions", "", map[string]arrow.RecordBatch{
		"objects": list["objects"], "list_rejected": list["rejected"], "failed": fetch["failed"], "fetch_rejected": fetch["rejected"], "rejected": graded["rejected"],
		"rows": unique["rows"], "removed": unique["removed"], "disagreements": cross["disagreements"], "near_groups": near["groups"], "clean": clean["rows"],
	})
	splits := step("split", "{groups: [file_id]}", map[string]arrow.RecordBatch{"rows": clean["rows"]})
	out := step("report", reportParams, map[string]arrow.RecordBatch{
		"rows": graded["rows"], "matrix": cross["matrix"], "kappa": cross["kappa"], "disagreements": cross["disagreements"],
		"excluded": excluded["excluded"], "splits": splits["rows"], "near_groups": near["groups"],
	})
	files := out["files"]
	names := files.Column(0).(*array.String)
	content := files.Column(1).(*array.Binary)
	got := map[string][]byte{}
	for i := range names.Len() {
		got[names.Value(i)] = append([]byte(nil), content.Value(i)...)
	}
	return got
}

type nopProgress struct{}

func (nopProgress) Add(int) {}
func (nopProgress) Done()   {}
