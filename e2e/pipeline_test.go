package e2e

import (
	"crypto/md5"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

// gradeOf maps the notebook's grade folder labels to integers.
var gradeOf = map[string]int64{"0Normal": 0, "1Doubtful": 1, "2Mild": 2, "3Moderate": 3, "4Severe": 4}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(recs) == 0 {
		t.Fatalf("%s: empty", path)
	}
	return recs
}

// column returns the named column's index in a CSV header.
func column(t *testing.T, header []string, name string) int {
	t.Helper()
	for i, h := range header {
		if h == name {
			return i
		}
	}
	t.Fatalf("no column %q in %v", name, header)
	return -1
}

// expectedCleanGrades derives, from the notebook's raw_data.csv alone, how
// many images of each grade the default pipeline keeps: those both experts
// graded, with the same grade (copies within one expert agree in the
// sample, as the README says; a disagreement anywhere drops the image),
// less the sample's one planted near-duplicate, N6 (grade 0, a rescan of
// N9), which the notebook counts as an image of its own.
func expectedCleanGrades(t *testing.T) map[int64]int64 {
	t.Helper()
	raw := readCSV(t, repoPath(goldenDir+"/raw_data.csv"))
	ex, id, sev := column(t, raw[0], "expert"), column(t, raw[0], "file_id"), column(t, raw[0], "severity")
	grades := map[string]map[string]map[int64]bool{} // file_id -> expert -> grades
	for _, r := range raw[1:] {
		g, ok := gradeOf[r[sev]]
		if !ok {
			t.Fatalf("raw_data.csv: unknown grade label %q", r[sev])
		}
		if grades[r[id]] == nil {
			grades[r[id]] = map[string]map[int64]bool{}
		}
		if grades[r[id]][r[ex]] == nil {
			grades[r[id]][r[ex]] = map[int64]bool{}
		}
		grades[r[id]][r[ex]][g] = true
	}
	counts := map[int64]int64{}
	for _, byExpert := range grades {
		if len(byExpert["MedicalExpert-I"]) == 0 || len(byExpert["MedicalExpert-II"]) == 0 {
			continue // one expert only: the notebook's NaN counts it as a disagreement
		}
		all := map[int64]bool{}
		for _, gs := range byExpert {
			for g := range gs {
				all[g] = true
			}
		}
		if len(all) == 1 {
			for g := range all {
				counts[g]++
			}
		}
	}

	// Cross-check with normalized_data.csv (the rows whose file_id is not a
	// disagreement): its distinct images must carry the same grades.
	norm := readCSV(t, repoPath(goldenDir+"/normalized_data.csv"))
	nid, nsev := column(t, norm[0], "file_id"), column(t, norm[0], "severity")
	seen := map[string]bool{}
	normCounts := map[int64]int64{}
	for _, r := range norm[1:] {
		if seen[r[nid]] {
			continue
		}
		seen[r[nid]] = true
		g, err := strconv.ParseInt(r[nsev], 10, 64)
		if err != nil {
			t.Fatalf("normalized_data.csv: severity %q: %v", r[nsev], err)
		}
		normCounts[g]++
	}
	if !reflect.DeepEqual(counts, normCounts) {
		t.Fatalf("expected grades from raw_data.csv %v and normalized_data.csv %v disagree", counts, normCounts)
	}
	// And with the README's agreement matrix diagonal.
	if want := map[int64]int64{0: 9, 1: 8, 2: 8, 3: 8, 4: 8}; !reflect.DeepEqual(counts, want) {
		t.Fatalf("expected grades %v, but testdata/README.md's agreement matrix gives %v", counts, want)
	}
	counts[0]-- // N6 leaves at the near stage
	return counts
}

func openDuckDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatalf("duckdb: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// sqlString quotes s as a SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// queryStrings runs q and returns every row with each value as a string
// (NULL as "<NULL>").
func queryStrings(t *testing.T, db *sql.DB, q string) [][]string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = "<NULL>"
			if v.Valid {
				row[i] = v.String
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

func queryInt(t *testing.T, db *sql.DB, q string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// schema returns "name TYPE" per column as DuckDB reads the Parquet file.
func schema(t *testing.T, db *sql.DB, parquet string) []string {
	t.Helper()
	var out []string
	for _, r := range queryStrings(t, db, "DESCRIBE SELECT * FROM read_parquet("+sqlString(parquet)+")") {
		out = append(out, r[0]+" "+r[1])
	}
	return out
}

// sameRowsAsCSV requires the Parquet file's rows, in order, to equal the
// CSV file's as DuckDB's own CSV reader sees them (values compared as text).
func sameRowsAsCSV(t *testing.T, db *sql.DB, parquet, csvPath string, cols []string) {
	t.Helper()
	var casts []string
	for _, c := range cols {
		casts = append(casts, fmt.Sprintf("CAST(%q AS VARCHAR)", c))
	}
	list := strings.Join(casts, ", ")
	pq := queryStrings(t, db, "SELECT "+list+" FROM read_parquet("+sqlString(parquet)+")")
	cv := queryStrings(t, db, "SELECT "+list+" FROM read_csv("+sqlString(csvPath)+", header = true, all_varchar = true)")
	if len(pq) != len(cv) {
		t.Fatalf("%s has %d rows, %s %d", parquet, len(pq), csvPath, len(cv))
	}
	for i := range pq {
		if !reflect.DeepEqual(pq[i], cv[i]) {
			t.Errorf("row %d differs:\n  parquet %q\n  csv     %q", i+1, pq[i], cv[i])
		}
	}
}

// fileID is the notebook's identity of a file: <sha256 hex>:<md5 hex>.
func fileID(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, m := sha256.Sum256(data), md5.Sum(data)
	return hex.EncodeToString(s[:]) + ":" + hex.EncodeToString(m[:])
}

var pipelineStages = map[string]stageWant{
	"list":      {"list", map[string]int64{"objects": 99}},
	"fetch":     {"fetch-hash", map[string]int64{"rows": 99, "failed": 0, "rejected": 0}},
	"graded":    {"map-severity", map[string]int64{"rows": 99, "rejected": 0}},
	"unique":    {"dedupe", map[string]int64{"rows": 91, "removed": 8, "conflicts": 0}},
	"agreement": {"cross-check", map[string]int64{"wide": 46, "matrix": 7, "disagreements": 5, "missing": 1, "kappa": 1}},
	"report":    {"report", map[string]int64{"files": 2}},
	// 8 duplicates, X1-X3 and Y1 under both experts (8), U1 (1), N6 under
	// both experts (2).
	"excluded": {"exclusions", map[string]int64{"excluded": 19}},
	// 91 unique rows minus X1-X3 and Y1 under both experts (8) and U1 (1).
	"agreed": {"filter", map[string]int64{"rows": 82}},
	// One near-duplicate group at the pipeline's min_similarity: N9 and
	// N6, its rescan (one pair); N6's two rows leave.
	"near":   {"near-duplicates", map[string]int64{"rows": 80, "groups": 2, "pairs": 1}},
	"clean":  {"dedupe", map[string]int64{"rows": 40, "removed": 40, "conflicts": 0}},
	"splits": {"split", map[string]int64{"rows": 40, "shares": 15}}, // 3 splits x 5 grades
	"export": {"export", map[string]int64{"files": 6}},              // 3 splits x 2 formats
}

// Test 4a: the default pipeline through S3; its training set read back
// with DuckDB.
func TestPipelineCleanParquet(t *testing.T) {
	want := expectedCleanGrades(t)
	var wantRows int64
	for _, n := range want {
		wantRows += n
	}

	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	res := runS3(t, pipelineFile, out, filepath.Join(dir, "cache"))
	wantCode(t, res, 0, "pipeline.yaml through S3")
	rep := readReport(t, out)
	if rep.Status != "ok" {
		t.Errorf("run.json status %q, want ok (error %q)", rep.Status, rep.Error)
	}
	checkObjects(t, rep, 99, 99, 0, 0)
	checkStages(t, rep, pipelineStages, func(string) string { return "ok" })

	db := openDuckDB(t)
	clean := filepath.Join(out, "clean.parquet")
	wantSchema := []string{"file_id VARCHAR", "severity BIGINT", "uri VARCHAR", "relative_path VARCHAR", "size BIGINT"}
	if got := schema(t, db, clean); !reflect.DeepEqual(got, wantSchema) {
		t.Errorf("clean.parquet schema %q, want %q", got, wantSchema)
	}
	from := " FROM read_parquet(" + sqlString(clean) + ")"
	if n := queryInt(t, db, "SELECT count(*)"+from); n != wantRows || n != 40 {
		t.Errorf("clean.parquet: %d rows, want %d (40)", n, wantRows)
	}
	if n := queryInt(t, db, "SELECT count(DISTINCT file_id)"+from); n != wantRows {
		t.Errorf("clean.parquet: %d distinct file_ids, want %d", n, wantRows)
	}
	if n := queryInt(t, db, "SELECT count(*)"+from+" WHERE NOT starts_with(uri, "+sqlString(s3Source)+")"); n != 0 {
		t.Errorf("clean.parquet: %d uris outside %s", n, s3Source)
	}
	got := map[int64]int64{}
	for _, r := range queryStrings(t, db, "SELECT severity, count(*)"+from+" GROUP BY severity ORDER BY severity") {
		g, _ := strconv.ParseInt(r[0], 10, 64)
		n, _ := strconv.ParseInt(r[1], 10, 64)
		got[g] = n
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("clean.parquet images per grade %v, want %v", got, want)
	}

	// Every row describes its object truly: the uri is the object's, the
	// size and file_id are those of the sample file, the grade its folder's.
	for _, r := range queryStrings(t, db, "SELECT file_id, severity, uri, relative_path, size"+from) {
		id, sev, uri, rel, size := r[0], r[1], r[2], r[3], r[4]
		if uri != s3Source+rel {
			t.Errorf("%s: uri %q, want %q", rel, uri, s3Source+rel)
		}
		local := filepath.Join(repoRoot, sampleDir, filepath.FromSlash(rel))
		st, err := os.Stat(local)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		if size != strconv.FormatInt(st.Size(), 10) {
			t.Errorf("%s: size %s, want %d", rel, size, st.Size())
		}
		if want := fileID(t, local); id != want {
			t.Errorf("%s: file_id %s, want %s", rel, id, want)
		}
		parts := strings.Split(rel, "/")
		if g, ok := gradeOf[parts[min(1, len(parts)-1)]]; !ok || sev != strconv.FormatInt(g, 10) {
			t.Errorf("%s: severity %s, want the folder's grade", rel, sev)
		}
	}
	sameRowsAsCSV(t, db, clean, filepath.Join(out, "clean.csv"), []string{"file_id", "severity", "uri", "relative_path", "size"})
	checkExcluded(t, out, queryStrings(t, db, "SELECT file_id"+from))
}

// checkExcluded: clean + excluded = listed, from the sample's own files.
// Every sample PNG is in excluded.csv once, or else its bytes' file_id is
// in clean (through the row of its image); 19 are excluded (8 duplicate
// copies, X1-X3 and Y1 under both experts, U1, N6 under both experts).
func checkExcluded(t *testing.T, out string, cleanIDs [][]string) {
	t.Helper()
	inClean := map[string]bool{}
	for _, r := range cleanIDs {
		inClean[r[0]] = true
	}
	recs := readCSV(t, filepath.Join(out, "excluded.csv"))
	if want := []string{"key", "relative_path", "reason", "detail", "kept_key", "kept_relative_path"}; !reflect.DeepEqual(recs[0], want) {
		t.Fatalf("excluded.csv header %q, want %q", recs[0], want)
	}
	excluded := map[string]string{}
	reasons := map[string]int{}
	for _, r := range recs[1:] {
		if _, dup := excluded[r[1]]; dup {
			t.Errorf("excluded.csv names %s twice", r[1])
		}
		excluded[r[1]] = r[2]
		reasons[r[2]]++
		// N6 (I: NormalG0 (8), II: NormalG0 (6)) is a rescan of N9, kept.
		nearCopy := r[1] == "MedicalExpert-I/0Normal/NormalG0 (8).png" || r[1] == "MedicalExpert-II/0Normal/NormalG0 (6).png"
		if (r[2] == "near_duplicate") != nearCopy || (nearCopy && r[5] != "MedicalExpert-I/0Normal/NormalG0 (12).png") {
			t.Errorf("excluded.csv: %s: reason %s, kept %q; want N6 (and only N6) a near_duplicate of N9, MedicalExpert-I/0Normal/NormalG0 (12).png", r[1], r[2], r[5])
		}
	}
	if want := map[string]int{"duplicate": 8, "disagreement": 8, "missing_rater": 1, "near_duplicate": 2}; !reflect.DeepEqual(reasons, want) {
		t.Errorf("excluded.csv reasons %v, want %v", reasons, want)
	}
	root := filepath.Join(repoRoot, sampleDir)
	listed, under := 0, 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".png") {
			return err
		}
		listed++
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if _, ok := excluded[rel]; ok {
			delete(excluded, rel)
			return nil
		}
		under++
		if !inClean[fileID(t, path)] {
			t.Errorf("%s is neither excluded nor in clean", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(excluded) > 0 {
		t.Errorf("excluded.csv names objects that are not listed: %v", excluded)
	}
	if listed != 99 || under != 80 || len(recs)-1 != 19 {
		t.Errorf("listed %d = %d under clean + %d excluded, want 99 = 80 + 19", listed, under, len(recs)-1)
	}
}

// Test 4b: the notebook's raw_data.parquet read back with DuckDB.
func TestRawDataParquet(t *testing.T) {
	out, _ := sharedNotebookS3(t)
	db := openDuckDB(t)
	raw := filepath.Join(out, "raw_data.parquet")
	wantSchema := []string{"expert VARCHAR", "file_id VARCHAR", "severity VARCHAR", "relative_path VARCHAR"}
	if got := schema(t, db, raw); !reflect.DeepEqual(got, wantSchema) {
		t.Errorf("raw_data.parquet schema %q, want %q", got, wantSchema)
	}
	from := " FROM read_parquet(" + sqlString(raw) + ")"
	if n := queryInt(t, db, "SELECT count(*)"+from); n != sampleObjects {
		t.Errorf("raw_data.parquet: %d rows, want %d", n, sampleObjects)
	}
	if n := queryInt(t, db, "SELECT count(DISTINCT file_id)"+from); n != sampleFileIDs {
		t.Errorf("raw_data.parquet: %d distinct file_ids, want %d", n, sampleFileIDs)
	}
	sameRowsAsCSV(t, db, raw, filepath.Join(out, "raw_data.csv"), []string{"expert", "file_id", "severity", "relative_path"})
}
