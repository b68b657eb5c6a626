package stages

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/kneepipe/kneepipe/internal/table"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadCSV(t *testing.T) {
	env := testEnv(t)
	text := lines("expert,file_id,severity,relative_path,size",
		"MedicalExpert-I,h1,0Normal,MedicalExpert-I/0Normal/NormalG0 (1).png,10",
		`MedicalExpert-I,h2,2Mild,"MedicalExpert-I/2Mild/MildG2 (3, copy).png",`,
	)
	for _, name := range []string{"raw_data.csv", "RAW.CSV", "raw.txt"} {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, name, text)
			params := "{path: '" + path + "', types: {size: int64, severity: string}}"
			if !strings.HasSuffix(strings.ToLower(name), ".csv") {
				params = "{path: '" + path + "', format: csv, types: {size: int64}}"
			}
			res := run(t, env, "read", build(t, "read", params), nil)
			rec := res.Outputs["rows"]
			// Strings are dictionary-encoded, codes as narrow as the values allow.
			d := "dictionary<values=utf8, indices=int8, ordered=false>"
			if got, want := schemaOf(rec), "expert:"+d+",file_id:"+d+",severity:"+d+",relative_path:"+d+",size:int64"; got != want {
				t.Errorf("schema %s, want %s", got, want)
			}
			if got := csvOf(t, rec); got != text {
				t.Errorf("read back:\n%s\nwant\n%s", got, text)
			}
			if rec.Column(4).NullN() != 1 {
				t.Errorf("size has %d nulls, want 1", rec.Column(4).NullN())
			}
		})
	}
}

func TestReadParquet(t *testing.T) {
	env := testEnv(t)
	src := rows(t, env.Mem, "file_id,severity", []string{"severity"}, "h1|0", "h2|", "h3|4")
	defer src.Release()
	for _, name := range []string{"clean.parquet", "clean.pq", "clean.bin"} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), name)
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := table.WriteParquet(f, src); err != nil {
				t.Fatal(err)
			}
			f.Close()
			params := "{path: '" + p + "'}"
			if name == "clean.bin" {
				params = "{path: '" + p + "', format: parquet}"
			}
			res := run(t, env, "read", build(t, "read", params), nil)
			if got, want := csvOf(t, res.Outputs["rows"]), csvOf(t, src); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
			if got := schemaOf(res.Outputs["rows"]); got != "file_id:utf8,severity:int64" {
				t.Errorf("schema %s", got)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	for params, want := range map[string]string{
		"":                                 `read: parameter "path" is required`,
		"{format: csv}":                    `read: parameter "path" is required`,
		"{path: data.xlsx}":                `path "data.xlsx": cannot tell the format from the extension; set format`,
		"{path: data}":                     `path "data": cannot tell the format from the extension`,
		"{path: a.csv, format: json}":      `"json" is not one of auto, csv, parquet`,
		"{path: a.csv, types: {n: float}}": `types: column "n": "float" is not int64 or string`,
		"{path: a.csv, types: [n]}":        `parameter "types": want a map of string to string`,
	} {
		err := buildErr(t, "read", params)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("read %q: error %v, want %q", params, err, want)
		}
	}

	env := testEnv(t)
	missing := filepath.Join(t.TempDir(), "missing.csv")
	badInt := writeFile(t, "bad.csv", "a,n\nx,1\ny,two\n")
	notParquet := writeFile(t, "bad.parquet", "a,n\n")
	for params, want := range map[string]string{
		"{path: '" + missing + "'}":                   "no such file",
		"{path: '" + badInt + "', types: {n: int64}}": `read ` + badInt + `: line 3: column "n": "two" is not an integer`,
		"{path: '" + badInt + "', types: {m: int64}}": `typed column "m" is not in the header`,
		"{path: '" + notParquet + "'}":                notParquet + ": corrupt parquet footer: file is 4 bytes",
	} {
		res, err := build(t, "read", params).Run(t.Context(), env, map[string]arrow.RecordBatch{})
		if err == nil {
			res.Outputs["rows"].Release()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("read %q: error %v, want %q", params, err, want)
		}
	}
}
