package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const oaiFile = "examples/oai-knees.yaml"

// kneeKLDir writes a kneeKL224-style directory: folders 0..4 by grade,
// <7-digit patient><L|R>.png, both knees of each patient (graded
// independently), and one exact copy of patient 0's left knee filed under
// patient 1's name (same bytes, same grade): it links the two patients.
func kneeKLDir(t *testing.T, patients int) string {
	t.Helper()
	dir := t.TempDir()
	for p := range patients {
		for s, side := range []string{"L", "R"} {
			id := p*2 + s
			grade := (id * 7 / 3) % 5
			writeObject(t, dir, fmt.Sprintf("%d/%07d%s.png", grade, 9000000+p, side), noisePNG(t, id))
		}
	}
	grade := (0 * 7 / 3) % 5
	writeObject(t, dir, fmt.Sprintf("%d/%07dL.png", grade, 9000001), noisePNG(t, 0))
	os.Remove(filepath.Join(dir, fmt.Sprintf("%d/%07dL.png", (2*7/3)%5, 9000001))) // its own left knee is gone
	return dir
}

// noisePNG is a 48x48 grey PNG of noise seeded by id (about 2.4 kB).
func noisePNG(t *testing.T, id int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 48, 48))
	x := uint64(id)*0x9E3779B97F4A7C15 + 1
	for i := range img.Pix {
		x ^= x >> 31
		x *= 0xBF58476D1CE4E5B9
		img.Pix[i] = uint8(x>>60) * 16
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The training set end to end: kneeKL224-style files in, group-pure
// splits out, both exports read back by DuckDB and by PyTorch.
func TestTrainingSetExports(t *testing.T) {
	src := kneeKLDir(t, 60)
	file := editedCopy(t, oaiFile,
		"formats: [huggingface, webdataset]", "formats: [huggingface, webdataset]\n      max_shard_samples: 10\n      max_shard_bytes: 65536")
	out, cache := t.TempDir(), t.TempDir()
	res := kneepipe(t, nil, "run", "-f", file, "--source", src, "--out", out, "--cache", cache)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	// fetch-hash's keep_images left every image in the image cache.
	if _, _, counts := stageReport(t, readReport(t, out), "export"); counts["downloaded"] != 0 || counts["images"] != 119 {
		t.Errorf("cold run: export counts %v, want 0 downloaded of 119 (fetch-hash kept them)", counts)
	}

	// Group purity: a patient's knees, and the patients linked by a
	// copied image, in one split.
	splitOf := map[string]string{}
	rows := csvRows(t, filepath.Join(out, "splits.csv"))
	if len(rows) != 120 {
		t.Fatalf("splits.csv has %d rows, want 120", len(rows))
	}
	for _, r := range rows {
		if s, ok := splitOf[r["patient"]]; ok && s != r["split"] {
			t.Errorf("patient %s in %s and %s", r["patient"], s, r["split"])
		}
		splitOf[r["patient"]] = r["split"]
	}
	if splitOf["9000000"] != splitOf["9000001"] {
		t.Errorf("patients 9000000 and 9000001 share an image but are split %s / %s", splitOf["9000000"], splitOf["9000001"])
	}
	perSplit := map[string]int{}
	for _, s := range splitOf {
		perSplit[s]++
	}
	if perSplit["train"] < 30 || perSplit["val"] == 0 || perSplit["test"] == 0 {
		t.Errorf("patients per split %v", perSplit)
	}

	// The report's leakage audit, recomputed from the split rows: no
	// leak, the patient column checked, as many groups as splits.csv has.
	var audit struct {
		Splits struct {
			Rows, Groups, Leaks int
			Keys                []struct {
				Column   string
				Values   int
				Crossing int
			}
		}
	}
	data, err := os.ReadFile(filepath.Join(out, "report", "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &audit); err != nil {
		t.Fatal(err)
	}
	groups := map[string]bool{}
	for _, r := range rows {
		groups[r["split_group"]] = true
	}
	if a := audit.Splits; a.Rows != 120 || a.Groups != len(groups) || a.Leaks != 0 || len(a.Keys) != 3 || a.Keys[2].Column != "patient" || a.Keys[2].Values != len(splitOf) {
		t.Errorf("leakage audit %+v, want 120 rows, %d groups, %d patients, no leak", a, len(groups), len(splitOf))
	}

	// What each export must hold: one sample per image (the copy once).
	expected := map[string]wantSample{}
	for _, r := range rows {
		var g int
		fmt.Sscan(r["severity"], &g)
		expected[strings.Split(r["file_id"], ":")[0]] = wantSample{g, r["split"]}
	}
	if len(expected) != 119 {
		t.Fatalf("%d distinct images, want 119", len(expected))
	}

	checkParquetExport(t, out, expected)

	exp, err := json.Marshal(expected)
	if err != nil {
		t.Fatal(err)
	}
	expPath := filepath.Join(t.TempDir(), "expected.json")
	if err := os.WriteFile(expPath, exp, 0o644); err != nil {
		t.Fatal(err)
	}
	py := exec.Command("/usr/bin/python3", filepath.Join(repoRoot, "e2e", "testdata", "train_webdataset.py"), filepath.Join(out, "webdataset"), expPath)
	py.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	pyOut, err := py.CombinedOutput()
	if err != nil {
		t.Fatalf("PyTorch reading the WebDataset shards (make torch installs it): %v\n%s", err, pyOut)
	}
	lines := strings.Split(strings.TrimSpace(string(pyOut)), "\n")
	var summary struct {
		Samples, Shards, Steps int
		Workers                []int
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &summary); err != nil || summary.Samples != 119 || summary.Steps != 5 || len(summary.Workers) != 2 {
		t.Errorf("PyTorch summary %s (%v)", lines[len(lines)-1], err)
	}
	t.Logf("PyTorch: %s", lines[len(lines)-1])

	// Another export over the same cache (new shard bounds, new --out)
	// downloads nothing and, with the old bounds again, gives the same bytes.
	file2 := editedCopy(t, oaiFile, "formats: [huggingface, webdataset]", "formats: [webdataset]\n      max_shard_samples: 7\n      concurrency: 1")
	out2 := t.TempDir()
	if res := kneepipe(t, nil, "run", "-f", file2, "--source", src, "--out", out2, "--cache", cache); res.code != 0 {
		t.Fatalf("second export: exit %d\n%s", res.code, res.stderr)
	}
	if _, _, counts := stageReport(t, readReport(t, out2), "export"); counts["downloaded"] != 0 || counts["images"] != 119 {
		t.Errorf("another export over the same cache: counts %v, want 0 downloaded of 119", counts)
	}
	out3 := t.TempDir()
	if res := kneepipe(t, nil, "run", "-f", file, "--source", src, "--out", out3, "--cache", t.TempDir()); res.code != 0 {
		t.Fatalf("cold rerun: exit %d\n%s", res.code, res.stderr)
	}
	sameOutputs(t, out, out3)
}

// wantSample is what an exported image must carry.
type wantSample struct {
	Label int    `json:"label"`
	Split string `json:"split"`
}

// checkParquetExport reads data/*.parquet with DuckDB: the Hub layout, the
// schema, the "huggingface" metadata, and every image's bytes and label.
func checkParquetExport(t *testing.T, out string, expected map[string]wantSample) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(out, "data", "*.parquet"))
	sort.Strings(files)
	shards := map[string]int{}
	for _, f := range files {
		var split string
		var k, n int
		if _, err := fmt.Sscanf(strings.ReplaceAll(filepath.Base(f), "-", " "), "%s %05d of %05d.parquet", &split, &k, &n); err != nil {
			t.Fatalf("%s: not <split>-NNNNN-of-NNNNN.parquet", f)
		}
		shards[split]++
		if k >= n {
			t.Errorf("%s: shard %d of %d", f, k, n)
		}
	}
	if shards["train"] < 2 || shards["val"] == 0 || shards["test"] == 0 {
		t.Fatalf("parquet shards per split %v (%v)", shards, files)
	}
	db := openDuckDB(t)
	glob := sqlString(filepath.Join(out, "data", "*.parquet"))
	wantMeta := `{"info": {"features": {"image": {"_type": "Image"}, "label": {"names": ["0", "1", "2", "3", "4"], "_type": "ClassLabel"}, ` +
		`"file_id": {"dtype": "string", "_type": "Value"}, "relative_path": {"dtype": "string", "_type": "Value"}, "patient": {"dtype": "string", "_type": "Value"}, ` +
		`"side": {"dtype": "string", "_type": "Value"}, "severity": {"dtype": "int64", "_type": "Value"}, "split": {"dtype": "string", "_type": "Value"}, "split_group": {"dtype": "string", "_type": "Value"}}}}`
	meta := queryStrings(t, db, "SELECT file_name, decode(value) FROM parquet_kv_metadata("+glob+") WHERE decode(key) = 'huggingface' ORDER BY file_name")
	if len(meta) != len(files) {
		t.Errorf("%d files carry huggingface metadata, want all %d", len(meta), len(files))
	}
	for _, m := range meta {
		if m[1] != wantMeta {
			t.Errorf("%s: huggingface metadata\n%s\nwant\n%s", m[0], m[1], wantMeta)
		}
	}
	schema := queryStrings(t, db, "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet("+glob+"))")
	if got := fmt.Sprint(schema[:3]); got != "[[image STRUCT(bytes BLOB, path VARCHAR)] [label BIGINT] [file_id VARCHAR]]" {
		t.Errorf("schema %s", got)
	}
	rows, err := db.Query("SELECT filename, image.bytes, image.path, label, file_id FROM read_parquet(" + glob + ", filename = true)")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var fileName, path, id string
		var data []byte
		var label int
		if err := rows.Scan(&fileName, &data, &path, &label, &id); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		sha := hex.EncodeToString(sum[:])
		w, ok := expected[sha]
		switch {
		case !ok || !strings.HasPrefix(id, sha+":"):
			t.Errorf("%s: image %s: bytes hash to %s, file_id %s", fileName, path, sha, id)
		case label != w.Label:
			t.Errorf("%s: image %s: label %d, want %d", fileName, path, label, w.Label)
		case !strings.HasPrefix(filepath.Base(fileName), w.Split+"-"):
			t.Errorf("%s: image %s belongs to %s", fileName, path, w.Split)
		case seen[sha]:
			t.Errorf("image %s twice", path)
		}
		seen[sha] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(expected) {
		t.Errorf("%d images in the Parquet shards, want %d", len(seen), len(expected))
	}
}
