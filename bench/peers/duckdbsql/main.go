// Command duckdbsql is the SQL benchmark peer: the EDA notebook's table
// steps (severity map, in-expert de-duplication keeping the first row in
// file order, the pivot's disagreements, isin / ~isin) written as DuckDB SQL,
// from a raw_data.csv to the same three CSVs:
//
//	duckdbsql RAW_DATA_CSV OUTDIR
//
// writes OUTDIR/deleted_paths.csv, different_severity.csv and
// normalized_data.csv. "First" and "listing order" are the row order of the
// CSV: the table is created with DuckDB's default preserve_insertion_order,
// so its rowid is the line number, and every COPY orders by it. The pivot is
// written with conditional aggregates over the two experts the notebook
// hard-codes; an image one expert lacks counts as a disagreement, as the
// notebook's NaN != grade does. Per-step seconds go to stderr.
//
// DuckDB runs in-process (github.com/duckdb/duckdb-go/v2, driver "duckdb")
// on an in-memory database with its default thread count (all cores).
package main

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: duckdbsql RAW_DATA_CSV OUTDIR")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "duckdbsql:", err)
		os.Exit(1)
	}
}

// lit quotes s as a SQL string literal.
func lit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func run(src, outDir string) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	// One connection: the temp tables below live in it.
	db.SetMaxOpenConns(1)

	out := func(name string) string { return lit(filepath.Join(outDir, name)) }
	csvOpts := "(FORMAT csv, HEADER true, DELIMITER ',')"
	steps := []struct{ name, sql string }{
		{"read_csv+map", `CREATE TEMP TABLE data AS
			SELECT expert, file_id,
			       CASE severity WHEN '0Normal' THEN 0 WHEN '1Doubtful' THEN 1 WHEN '2Mild' THEN 2
			                     WHEN '3Moderate' THEN 3 WHEN '4Severe' THEN 4 END::BIGINT AS severity,
			       relative_path
			FROM read_csv(` + lit(src) + `, header = true, delim = ',', quote = '"',
			     columns = {'expert': 'VARCHAR', 'file_id': 'VARCHAR', 'severity': 'VARCHAR', 'relative_path': 'VARCHAR'})`},
		// The first row (in file order) of every (expert, file_id).
		{"firsts", `CREATE TEMP TABLE firsts AS
			SELECT min(rowid) AS rn, count(*) AS n, count(DISTINCT severity) AS grades
			FROM data GROUP BY expert, file_id`},
		{"deleted_paths.csv", `COPY (SELECT relative_path FROM data
			WHERE rowid NOT IN (SELECT rn FROM firsts) ORDER BY rowid) TO ` + out("deleted_paths.csv") + " " + csvOpts},
		// The pivot: one row per file_id, a grade per expert (NULL if absent).
		{"pivot", `CREATE TEMP TABLE cross_check AS
			SELECT d.file_id,
			       max(d.severity) FILTER (WHERE d.expert = 'MedicalExpert-I')  AS g1,
			       max(d.severity) FILTER (WHERE d.expert = 'MedicalExpert-II') AS g2
			FROM data d SEMI JOIN firsts f ON d.rowid = f.rn
			GROUP BY d.file_id`},
		{"disagreements", `CREATE TEMP TABLE different_level AS
			SELECT file_id FROM cross_check WHERE g1 IS NULL OR g2 IS NULL OR g1 <> g2`},
		{"different_severity.csv", `COPY (SELECT file_id, severity, relative_path FROM data
			WHERE file_id IN (SELECT file_id FROM different_level) ORDER BY rowid) TO ` + out("different_severity.csv") + " " + csvOpts},
		{"normalized_data.csv", `COPY (SELECT expert, file_id, severity, relative_path FROM data
			WHERE file_id NOT IN (SELECT file_id FROM different_level) ORDER BY rowid) TO ` + out("normalized_data.csv") + " " + csvOpts},
	}
	start := time.Now()
	var times []string
	for _, s := range steps {
		t := time.Now()
		if _, err := db.Exec(s.sql); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		times = append(times, fmt.Sprintf("%s=%.3f", s.name, time.Since(t).Seconds()))
		if s.name == "firsts" {
			// The notebook's hand check: duplicates agree on the grade.
			var bad int
			if err := db.QueryRow(`SELECT count(*) FROM firsts WHERE n > 1 AND grades > 1`).Scan(&bad); err != nil {
				return err
			}
			if bad > 0 {
				return fmt.Errorf("%d duplicate groups have conflicting grades", bad)
			}
		}
	}
	// The agreement matrix (the notebook's groupby drops NULL grades).
	var cells, rows, deleted, dis int
	if err := db.QueryRow(`SELECT count(*) FROM (SELECT g1, g2, count(*) FROM cross_check
		WHERE g1 IS NOT NULL AND g2 IS NOT NULL GROUP BY g1, g2)`).Scan(&cells); err != nil {
		return err
	}
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM data), (SELECT sum(n - 1) FROM firsts), (SELECT count(*) FROM different_level)`).Scan(&rows, &deleted, &dis); err != nil {
		return err
	}
	var version string
	_ = db.QueryRow(`SELECT version()`).Scan(&version)
	fmt.Fprintf(os.Stderr, "duckdbsql: duckdb %s rows=%d deleted=%d disagreements=%d matrix_cells=%d total=%.3fs %s\n",
		version, rows, deleted, dis, cells, time.Since(start).Seconds(), strings.Join(times, " "))
	return nil
}
