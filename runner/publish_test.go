package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/kneepipe/kneepipe/internal/table"
	"github.com/kneepipe/kneepipe/stages"
)

// stage writes each of names as a staged file holding "new <name>" and,
// when old, puts "old <name>" at its destination first.
func stage(t *testing.T, dir string, names []string, old map[string]bool) []stagedFile {
	t.Helper()
	var files []stagedFile
	for _, n := range names {
		f := stagedFile{tmp: filepath.Join(dir, n+".tmp-kneepipe"), dst: filepath.Join(dir, n)}
		if err := os.WriteFile(f.tmp, []byte("new "+n), 0o644); err != nil {
			t.Fatal(err)
		}
		if old[n] {
			if err := os.WriteFile(f.dst, []byte("old "+n), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		files = append(files, f)
	}
	return files
}

// dirContents maps each file in dir to its content.
func dirContents(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got[e.Name()] = string(data)
	}
	return got
}

// A rename that fails part-way through publishing puts back every file
// the earlier renames replaced and removes the ones they added, whichever
// of its two renames (moving the old file aside, or the new one in) fails.
func TestPublishFailureRestoresPreviousFiles(t *testing.T) {
	names := []string{"a.csv", "b.csv", "c.csv", "d.csv"}
	old := map[string]bool{"a.csv": true, "c.csv": true, "d.csv": true}
	for _, failing := range [][2]string{
		{"d.csv", "d.csv" + backupSuffix}, // moving the old file aside
		{"d.csv.tmp-kneepipe", "d.csv"},   // replacing it
		{"b.csv.tmp-kneepipe", "b.csv"},   // adding a file
	} {
		t.Run(failing[1], func(t *testing.T) {
			dir := t.TempDir()
			files := stage(t, dir, names, old)
			rename := func(from, to string) error {
				if [2]string{filepath.Base(from), filepath.Base(to)} == failing {
					return errors.New("injected")
				}
				return os.Rename(from, to)
			}
			err := publishFiles(files, rename)
			if err == nil || !strings.Contains(err.Error(), "injected") {
				t.Fatalf("publish: %v, want the injected failure", err)
			}
			want := map[string]string{}
			for _, n := range names {
				want[n+".tmp-kneepipe"] = "new " + n // staged, for the caller to remove
				if old[n] {
					want[n] = "old " + n
				}
			}
			if got := dirContents(t, dir); !equalMaps(got, want) {
				t.Errorf("after the failure:\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestPublishReplacesAll(t *testing.T) {
	dir := t.TempDir()
	names := []string{"a.csv", "b.csv"}
	if err := publishFiles(stage(t, dir, names, map[string]bool{"a.csv": true}), os.Rename); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a.csv": "new a.csv", "b.csv": "new b.csv"} // no staged or old files left
	if got := dirContents(t, dir); !equalMaps(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// namedFiles is a kind whose files table has one row per name in its
// names parameter (comma-separated).
func namedFiles() stages.Kind {
	return stages.Kind{
		Name: "named-files", Outputs: []stages.Port{{Name: "files"}},
		Params: []stages.Param{{Name: "names", Type: stages.String, Required: true}},
		Schema: func(stages.Params, map[string]stages.Schema) (map[string]stages.Schema, error) {
			return map[string]stages.Schema{"files": stages.FilesSchema()}, nil
		},
		New: func(p stages.Params) (stages.Stage, error) {
			return stageFunc(func(_ context.Context, env *stages.Env, _ map[string]arrow.RecordBatch) (*stages.Result, error) {
				names := strings.Split(p.Str("names"), ",")
				b := array.NewBinaryBuilder(env.Mem, arrow.BinaryTypes.Binary)
				defer b.Release()
				for _, n := range names {
					b.Append([]byte("row " + n))
				}
				content := b.NewArray()
				files := table.New(table.Strings(env.Mem, "name", names), table.Column{Name: "content", Array: content})
				return &stages.Result{Outputs: map[string]arrow.RecordBatch{"files": files}}, nil
			}), nil
		},
	}
}

// A files artifact's rows are file names known only at run time: one that
// another artifact also writes, or run.json, or the same name twice, fails
// the run with an error naming both, and nothing is published.
func TestFilesArtifactNameCollisions(t *testing.T) {
	for _, c := range []struct{ names, want string }{
		{"x.txt,a.csv", "file a.csv is also written by a"},
		{"run.json", "file run.json is also written by the run's report"},
		{"x.txt,x.txt", `file name "x.txt" is in two rows`},
	} {
		t.Run(c.names, func(t *testing.T) {
			dir := t.TempDir()
			k := &testKinds{}
			reg := k.registry()
			reg["named-files"] = namedFiles()
			src := "stages:\n  - {name: g, kind: gen}\n  - {name: f, kind: named-files, params: {names: \"" + c.names + "\"}}\n" +
				"artifacts:\n  - {from: g, name: a, formats: [csv]}\n  - {from: f, name: ., formats: [files]}\n"
			path := filepath.Join(dir, "p.yaml")
			if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path, reg, noEnv)
			if err != nil {
				t.Fatal(err)
			}
			opts := testOptions(dir)
			_, err = Run(context.Background(), cfg, opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("run: %v, want %q", err, c.want)
			}
			if left := outFiles(t, opts.OutDir); len(left) > 0 {
				t.Errorf("--out holds %v after the failed run", left)
			}
		})
	}
}
