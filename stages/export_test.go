package stages

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/kneepipe/kneepipe/internal/table"
)

// exportInput makes n graded PNGs in three splits, the store serving them
// and the rows describing them; order permutes the rows.
func exportInput(t *testing.T, env *Env, n int, order []int) (*flakyStore, arrow.RecordBatch) {
	t.Helper()
	st := &flakyStore{objects: map[string][]byte{}, faults: map[string][]string{}, gets: map[string]int{}}
	var keys, paths, ids, splits []string
	var sizes, grades []int64
	for _, i := range order {
		img := grayPNG(t, 8+i, 8, uint8(i))
		sum := sha256.Sum256(img)
		key := fmt.Sprintf("data/%d/%07dL.png", i%5, i)
		st.objects[key] = img
		keys = append(keys, key)
		paths = append(paths, strings.TrimPrefix(key, "data/"))
		ids = append(ids, hex.EncodeToString(sum[:])+":md5")
		splits = append(splits, []string{"train", "val", "test"}[i%3])
		sizes = append(sizes, int64(len(img)))
		grades = append(grades, int64(i%5))
	}
	rec := table.New(
		table.Strings(env.Mem, "key", keys), table.Strings(env.Mem, "relative_path", paths),
		table.Int64s(env.Mem, "size", sizes, nil), table.Strings(env.Mem, "file_id", ids),
		table.Int64s(env.Mem, "severity", grades, nil), table.Strings(env.Mem, "split", splits),
	)
	t.Cleanup(rec.Release)
	return st, rec
}

func identity(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// exportFiles runs an export and returns its files by name, in order.
func exportFiles(t *testing.T, env *Env, params string, rows arrow.RecordBatch) ([]string, map[string][]byte, *Result) {
	t.Helper()
	res := run(t, env, "export", build(t, "export", params), map[string]arrow.RecordBatch{"rows": rows})
	out := res.Outputs["files"]
	if got := schemaOf(out); got != "name:utf8,path:utf8,sha256:utf8,size:int64" {
		t.Fatalf("files schema %s", got)
	}
	names, _ := table.StringCol(out, "name")
	paths, _ := table.StringCol(out, "path")
	sums, _ := table.StringCol(out, "sha256")
	sizes, _ := table.Int64Col(out, "size")
	var order []string
	files := map[string][]byte{}
	for i := range names.Len() {
		data, err := os.ReadFile(paths.Value(i))
		sum := sha256.Sum256(data)
		if err != nil || hex.EncodeToString(sum[:]) != sums.Value(i) || int64(len(data)) != sizes.Value(i) {
			t.Fatalf("%s: stored file %s: %v", names.Value(i), paths.Value(i), err)
		}
		order = append(order, names.Value(i))
		files[names.Value(i)] = data
	}
	return order, files, res
}

func TestExportWebDatasetFetchesOnceWithRetries(t *testing.T) {
	env := testEnv(t)
	env.StateDir = t.TempDir()
	env.ImageCache = t.TempDir()
	st, rows := exportInput(t, env, 12, identity(12))
	st.faults["data/1/0000001L.png"] = []string{"cut", "flip", "error"}
	env.Store = st
	names, files, res := exportFiles(t, env, "{formats: [webdataset], attempts: 4}", rows)
	if got := strings.Join(names, ","); got != "webdataset/test-000000.tar,webdataset/train-000000.tar,webdataset/val-000000.tar" {
		t.Fatalf("files %s", got)
	}
	if res.Stats["downloaded"] != 12 || st.gets["data/1/0000001L.png"] != 4 {
		t.Errorf("downloaded %d, gets of the flaky object %d", res.Stats["downloaded"], st.gets["data/1/0000001L.png"])
	}
	// Every PNG in the shards is the object's bytes, in its split.
	seen := 0
	for name, data := range files {
		split := strings.TrimSuffix(strings.TrimPrefix(name, "webdataset/"), "-000000.tar")
		tr := tar.NewReader(bytes.NewReader(data))
		var prev string
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(tr)
			if h.Name < prev {
				t.Errorf("%s: %s after %s", name, h.Name, prev)
			}
			prev = h.Name
			if !strings.HasSuffix(h.Name, ".json") {
				continue
			}
			var i int
			fmt.Sscanf(string(body[strings.Index(string(body), `"relative_path":"`)+17:]), "%d/%07dL.png", new(int), &i)
			if want := []string{"train", "val", "test"}[i%3]; want != split || !strings.Contains(string(body), `"split":"`+split+`"`) {
				t.Errorf("%s: row %s in split %s", name, body, split)
			}
			seen++
		}
	}
	if seen != 12 {
		t.Errorf("%d samples, want 12", seen)
	}

	// Another export (another format, rows in another order, one worker)
	// over the same cache downloads nothing; the same export is byte-identical.
	before := fmt.Sprint(st.gets)
	st2, shuffled := exportInput(t, env, 12, []int{5, 3, 11, 0, 1, 2, 4, 6, 7, 8, 9, 10})
	st2.gets = st.gets
	env.Store = st2
	_, _, hf := exportFiles(t, env, "{formats: [huggingface]}", rows)
	_, again, res2 := exportFiles(t, env, "{formats: [webdataset], concurrency: 1}", shuffled)
	if after := fmt.Sprint(st.gets); after != before || hf.Stats["downloaded"] != 0 || res2.Stats["downloaded"] != 0 {
		t.Errorf("reruns downloaded: gets %s -> %s", before, after)
	}
	for name, data := range files {
		if !bytes.Equal(again[name], data) {
			t.Errorf("%s differs when the rows come in another order with another concurrency", name)
		}
	}
}

func TestExportHuggingFaceNames(t *testing.T) {
	env := testEnv(t)
	env.StateDir = t.TempDir()
	env.ImageCache = t.TempDir()
	st, rows := exportInput(t, env, 9, identity(9))
	env.Store = st
	names, files, res := exportFiles(t, env, "{splits: [train, val, test], columns: [file_id, relative_path, severity]}", rows)
	if res.Stats["downloaded"] != 9 {
		t.Errorf("both formats: %d downloads for 9 images", res.Stats["downloaded"])
	}
	if got := strings.Join(names, ","); got != "data/train-00000-of-00001.parquet,data/val-00000-of-00001.parquet,data/test-00000-of-00001.parquet,"+
		"webdataset/train-000000.tar,webdataset/val-000000.tar,webdataset/test-000000.tar" {
		t.Errorf("files %s", got)
	}
	if !bytes.HasPrefix(files[names[0]], []byte("PAR1")) {
		t.Errorf("not Parquet")
	}
}

func TestExportRefuses(t *testing.T) {
	env := testEnv(t)
	env.StateDir = t.TempDir()
	env.ImageCache = t.TempDir()
	st, rows := exportInput(t, env, 6, identity(6))
	for _, tt := range []struct {
		name   string
		setup  func() arrow.RecordBatch
		params string
		want   string
	}{
		{"damaged object", func() arrow.RecordBatch {
			st.faults["data/2/0000002L.png"] = []string{"flip", "flip"}
			return rows
		}, "{formats: [webdataset], attempts: 2}", "image data/2/0000002L.png: body damaged in transit or object changed since fetch-hash"},
		{"leak", func() arrow.RecordBatch {
			st.faults = map[string][]string{}
			cols := table.Columns(rows)
			ids, _ := table.StringCol(rows, "file_id")
			vals := make([]string, ids.Len())
			for i := range vals {
				vals[i] = ids.Value(i)
			}
			vals[1] = vals[0] // the same image in train and val
			rec := table.New(table.Set(cols, table.Strings(env.Mem, "file_id", vals))...)
			t.Cleanup(rec.Release)
			return rec
		}, "{formats: [webdataset]}", "is in split train and val: refusing to leak it"},
		{"file_id", func() arrow.RecordBatch {
			cols := table.Columns(rows)
			rec := table.New(table.Set(cols, table.Strings(env.Mem, "file_id", []string{"x", "x", "x", "x", "x", "x"}))...)
			t.Cleanup(rec.Release)
			return rec
		}, "{formats: [webdataset]}", `rows: row 1: file_id "x" is not <sha256>:<md5>`},
		{"label", func() arrow.RecordBatch { return rows }, "{formats: [huggingface], label_names: [a, b]}", "label 2 is not an index of the 2 label names"},
		{"unlisted split", func() arrow.RecordBatch { return rows }, "{splits: [train, validation, test]}", `splits: 2 rows are in split "val", which is not listed (train, validation, test)`},
		{"selected columns", func() arrow.RecordBatch { return rows }, "{formats: [huggingface], columns: [split, key]}", ""},
	} {
		env.Store = st
		in := tt.setup()
		res, err := build(t, "export", tt.params).Run(t.Context(), env, map[string]arrow.RecordBatch{"rows": in})
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			} else {
				res.Outputs["files"].Release()
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := build(t, "export", "").Run(t.Context(), &Env{Mem: env.Mem, Log: env.Log, Store: st}, map[string]arrow.RecordBatch{"rows": rows}); err == nil || !strings.Contains(err.Error(), "--cache") {
		t.Errorf("no state dir: %v", err)
	}
	env.Store = nil
	if _, err := build(t, "export", "").Run(t.Context(), env, map[string]arrow.RecordBatch{"rows": rows}); err == nil || !strings.Contains(err.Error(), "source") {
		t.Errorf("no store: %v", err)
	}
	for params, want := range map[string]string{
		"{formats: []}":                       "formats: name at least one",
		"{formats: [zip]}":                    `formats: "zip" is not one of huggingface, webdataset`,
		"{formats: [webdataset, webdataset]}": `formats: "webdataset" named twice`,
		"{label_names: []}":                   "label_names: name at least one class",
		"{label_names: [a, a]}":               `label_names: "a" named twice`,
	} {
		if err := buildErr(t, "export", params); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", params, err, want)
		}
	}
}

// The loader refuses, before anything runs, what Run would refuse later.
func TestExportAndSplitSchemaChecks(t *testing.T) {
	rows := Closed(Col{"key", StringType}, Col{"relative_path", StringType}, Col{"file_id", StringType},
		Col{"severity", Int64Type}, Col{"split", StringType}, Col{"label", StringType}, Col{"blob", BinaryType})
	for params, want := range map[string]string{
		"{columns: [file_id, label]}":               `parameter columns: column "label" would shadow the Parquet export's own`,
		"{columns: [file_id, blob]}":                `parameter columns: column "blob" is binary, which the exports do not write`,
		"{columns: [file_id, nope]}":                `parameter columns: rows has no column "nope"`,
		"{grade: split}":                            `parameter grade: column "split" of rows is string, want int64`,
		"{formats: [webdataset], columns: [label]}": "",
	} {
		p, err := decode(t, "export", params)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Builtin()["export"].OutputSchemas(p, map[string]Schema{"rows": rows})
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", params, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", params, err, want)
		}
	}
	p, _ := decode(t, "split", "{groups: [patient]}")
	if _, err := Builtin()["split"].OutputSchemas(p, map[string]Schema{"rows": rows}); err == nil || !strings.Contains(err.Error(), `parameter groups: rows has no column "patient"`) {
		t.Errorf("split without the group column: %v", err)
	}
}
