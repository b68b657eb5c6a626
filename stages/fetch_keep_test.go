package stages

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/kneepipe/kneepipe/internal/table"
)

// fetch-hash with keep_images files every verified body in the image cache
// export reads: fetch-hash then export GET each object once. A body over
// fingerprint_max_bytes is not kept (export fetches it), nor is one that
// failed its checks (a cut body, retried). Without keep_images, export
// fetches every image again.
func TestFetchHashKeepImagesSparesExportsGETs(t *testing.T) {
	const n = 6
	for _, tt := range []struct {
		name   string
		params string
		extra  map[string]int // export's GETs, beyond fetch-hash's
	}{
		{"keep_images", "{keep_images: true, fingerprint_max_bytes: 200}", map[string]int{"img/big.png": 1}},
		{"keep_images with fingerprints", "{keep_images: true, fingerprint: true, fingerprint_max_bytes: 200}", map[string]int{"img/big.png": 1}},
		{"without keep_images", "{}", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := newMemStore()
			for i := range n {
				store.put(fmt.Sprintf("img/%d.png", i), grayPNG(t, 4+i, 4, uint8(i)))
			}
			store.put("img/big.png", append(grayPNG(t, 6, 6, 9), make([]byte, 300)...)) // over 200 bytes
			// fetch-hash's first GET of img/0.png is cut short: the retry's
			// body is the one kept.
			cut := true
			store.serve = func(ctx context.Context, key string, attempt int, body []byte) (io.Reader, error) {
				if key == "img/0.png" && attempt == 1 && cut {
					return bytes.NewReader(body[:len(body)/2]), nil
				}
				return bytes.NewReader(body), nil
			}
			env := fetchEnv(t, store)
			env.StateDir = t.TempDir()
			env.ImageCache = t.TempDir()
			fetched := fetchRun(t, env, tt.params)
			want := map[string]int{"img/0.png": 2, "img/big.png": 1}
			for i := 1; i < n; i++ {
				want[fmt.Sprintf("img/%d.png", i)] = 1
			}
			if got := store.getCounts(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("fetch-hash GETs %v, want %v", got, want)
			}

			cut = false
			rows := exportRowsOf(t, env, fetched.Outputs["rows"])
			env.StateDir = t.TempDir() // export's own state dir
			res := run(t, env, "export", build(t, "export", "{formats: [webdataset]}"), map[string]arrow.RecordBatch{"rows": rows})
			got := store.getCounts()
			wantExtra := tt.extra
			if wantExtra == nil {
				wantExtra = map[string]int{"img/big.png": 1}
				for i := range n {
					wantExtra[fmt.Sprintf("img/%d.png", i)] = 1
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(wantExtra) {
				t.Errorf("export GETs %v, want %v", got, wantExtra)
			}
			if d := res.Stats["downloaded"]; d != int64(len(wantExtra)) {
				t.Errorf("export downloaded %d, want %d", d, len(wantExtra))
			}
		})
	}
}

// exportRowsOf gives fetch-hash's rows the grade and split export needs.
func exportRowsOf(t *testing.T, env *Env, rows arrow.RecordBatch) arrow.RecordBatch {
	t.Helper()
	keys, err := table.StringCol(rows, "key")
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := table.StringCol(rows, "file_id")
	sizes, _ := table.Int64Col(rows, "size")
	var ks, paths, fids, splits []string
	var ns, grades []int64
	for i := range keys.Len() {
		ks, paths, fids = append(ks, keys.Value(i)), append(paths, keys.Value(i)), append(fids, ids.Value(i))
		ns, grades, splits = append(ns, sizes.Value(i)), append(grades, int64(i%5)), append(splits, []string{"train", "val"}[i%2])
	}
	rec := table.New(
		table.Strings(env.Mem, "key", ks), table.Strings(env.Mem, "relative_path", paths),
		table.Int64s(env.Mem, "size", ns, nil), table.Strings(env.Mem, "file_id", fids),
		table.Int64s(env.Mem, "severity", grades, nil), table.Strings(env.Mem, "split", splits),
	)
	t.Cleanup(rec.Release)
	return rec
}
