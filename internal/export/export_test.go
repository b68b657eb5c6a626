package export

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/kneepipe/kneepipe/internal/table"
)

// testSplit makes n rows with random "images" of varied sizes.
func testSplit(t testing.TB, mem memory.Allocator, name string, n int) (*Split, [][]byte) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	s := &Split{Name: name}
	imgs := make([][]byte, n)
	var ids, paths []string
	var sev []int64
	for i := range n {
		imgs[i] = make([]byte, 200+rng.IntN(3000))
		for j := range imgs[i] {
			imgs[i][j] = byte(rng.Uint32())
		}
		sum := sha256.Sum256(imgs[i])
		sha := hex.EncodeToString(sum[:])
		ids = append(ids, sha+":md5")
		paths = append(paths, fmt.Sprintf("%d/img %d.png", i%5, i))
		sev = append(sev, int64(i%5))
		s.Keys = append(s.Keys, sha)
		s.Labels = append(s.Labels, int64(i%5))
		s.Paths = append(s.Paths, paths[i])
		s.SHA256 = append(s.SHA256, sha)
		s.Sizes = append(s.Sizes, int64(len(imgs[i])))
	}
	s.Rows = table.New(table.Strings(mem, "file_id", ids), table.Strings(mem, "relative_path", paths), table.Int64s(mem, "severity", sev, nil))
	t.Cleanup(s.Rows.Release)
	s.Image = func(_ context.Context, i int) ([]byte, error) { return imgs[i], nil }
	return s, imgs
}

var labels = []string{"0", "1", "2", "3", "4"}

func TestWebDataset(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) }) // after the split's own cleanup
	s, imgs := testSplit(t, mem, "train", 50)
	opt := Options{LabelNames: labels, MaxShardBytes: 40 << 10, MaxShardSamples: 8}
	var sink MemSink
	names, err := WriteWebDataset(context.Background(), &sink, s, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 7 || names[0] != "webdataset/train-000000.tar" || names[1] != "webdataset/train-000001.tar" {
		t.Fatalf("shards %v", names)
	}
	row := 0
	for _, f := range sink.Files {
		if int64(len(f.Data)) > opt.MaxShardBytes {
			t.Errorf("%s: %d bytes, bound %d", f.Name, len(f.Data), opt.MaxShardBytes)
		}
		tr := tar.NewReader(bytes.NewReader(f.Data))
		members := 0
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f.Name, err)
			}
			data, _ := io.ReadAll(tr)
			i := row + members/3
			key := s.Keys[i]
			want := map[int]string{0: key + ".cls", 1: key + ".json", 2: key + ".png"}[members%3]
			if h.Name != want {
				t.Fatalf("%s member %d is %s, want %s (a sample's files adjacent, sorted)", f.Name, members, h.Name, want)
			}
			if !h.ModTime.Equal(tarEpoch) || h.Uid != 0 || h.Gid != 0 || h.Mode != 0o644 || h.Uname != "" || h.Typeflag != tar.TypeReg {
				t.Errorf("%s: header %+v not the fixed one", h.Name, h)
			}
			switch members % 3 {
			case 0:
				if string(data) != fmt.Sprint(i%5) {
					t.Errorf("%s = %q, want %d", h.Name, data, i%5)
				}
			case 1:
				var m map[string]any
				if err := json.Unmarshal(data, &m); err != nil || m["file_id"] != key+":md5" || m["relative_path"] != s.Paths[i] || m["severity"] != float64(i%5) {
					t.Errorf("%s = %s (%v)", h.Name, data, err)
				}
			case 2:
				if !bytes.Equal(data, imgs[i]) {
					t.Errorf("%s: bytes differ", h.Name)
				}
			}
			members++
		}
		if members/3 > opt.MaxShardSamples || members%3 != 0 {
			t.Errorf("%s: %d members", f.Name, members)
		}
		row += members / 3
	}
	if row != 50 {
		t.Errorf("%d samples written, want 50", row)
	}
	// The same input gives the same bytes.
	var again MemSink
	if _, err := WriteWebDataset(context.Background(), &again, s, opt); err != nil {
		t.Fatal(err)
	}
	for i := range sink.Files {
		if !bytes.Equal(sink.Files[i].Data, again.Files[i].Data) {
			t.Errorf("%s differs between runs", sink.Files[i].Name)
		}
	}
}

func TestWebDatasetShardBoundsExact(t *testing.T) {
	mem := memory.NewGoAllocator()
	s, _ := testSplit(t, mem, "val", 30)
	// The bound is met exactly by a sum of the samples: shards fill to it.
	var one int64
	for i := range 3 {
		js, _ := rowJSON(s.Rows, i)
		one += tarSize(1) + tarSize(int64(len(js))) + tarSize(s.Sizes[i])
	}
	var sink MemSink
	if _, err := WriteWebDataset(context.Background(), &sink, s, Options{LabelNames: labels, MaxShardBytes: one + 1024}); err != nil {
		t.Fatal(err)
	}
	if got := int64(len(sink.Files[0].Data)); got != one+1024 {
		t.Errorf("first shard %d bytes, want exactly the bound %d", got, one+1024)
	}
	// An image larger than the bound gets a shard of its own.
	var big MemSink
	if _, err := WriteWebDataset(context.Background(), &big, s, Options{LabelNames: labels, MaxShardBytes: 2048}); err != nil {
		t.Fatal(err)
	}
	if len(big.Files) != 30 {
		t.Errorf("%d shards for 30 oversize samples", len(big.Files))
	}
}

func TestWritersRefuseBadInput(t *testing.T) {
	mem := memory.NewGoAllocator()
	for _, tt := range []struct {
		name   string
		modify func(*Split)
		want   string
	}{
		{"damaged bytes", func(s *Split) {
			img := s.Image
			s.Image = func(ctx context.Context, i int) ([]byte, error) {
				b, _ := img(ctx, i)
				if i == 3 {
					b = append([]byte{}, b...)
					b[0] ^= 1
				}
				return b, nil
			}
		}, "image 3/img 3.png: bytes differ from the SHA-256 of its file_id"},
		{"duplicate key", func(s *Split) { s.Keys[4] = s.Keys[1] }, "appears twice"},
		{"dotted key", func(s *Split) { s.Keys[2] = "a.b" }, `row 3: key "a.b" is not`},
		{"label", func(s *Split) { s.Labels[0] = 5 }, "row 1: label 5 is not an index of the 5 label names"},
		{"lengths", func(s *Split) { s.Sizes = s.Sizes[:3] }, "3 sizes for 10 rows"},
		{"fetch", func(s *Split) {
			s.Image = func(context.Context, int) ([]byte, error) { return nil, fmt.Errorf("no such key") }
		}, "image 0/img 0.png: no such key"},
	} {
		for _, format := range []string{"webdataset", "huggingface"} {
			s, _ := testSplit(t, mem, "test", 10)
			tt.modify(s)
			var err error
			if format == "webdataset" {
				_, err = WriteWebDataset(context.Background(), &MemSink{}, s, Options{LabelNames: labels, MaxShardBytes: 1 << 20})
			} else {
				_, err = WriteHuggingFace(context.Background(), mem, &MemSink{}, s, Options{LabelNames: labels, MaxShardBytes: 1 << 20})
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s, %s: error %v, want %q", tt.name, format, err, tt.want)
			}
		}
	}
}

func TestHuggingFace(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) }) // after the split's own cleanup
	s, imgs := testSplit(t, mem, "train", 250)
	opt := Options{LabelNames: []string{"Normal", "Doubtful", "Mild", "Moderate", "Severe"}, MaxShardBytes: 200 << 10}
	var sink MemSink
	names, err := WriteHuggingFace(context.Background(), mem, &sink, s, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 2 || names[0] != fmt.Sprintf("data/train-00000-of-%05d.parquet", len(names)) {
		t.Fatalf("shards %v", names)
	}
	wantMeta := `{"info": {"features": {"image": {"_type": "Image"}, "label": {"names": ["Normal", "Doubtful", "Mild", "Moderate", "Severe"], "_type": "ClassLabel"}, ` +
		`"file_id": {"dtype": "string", "_type": "Value"}, "relative_path": {"dtype": "string", "_type": "Value"}, "severity": {"dtype": "int64", "_type": "Value"}}}}`
	row := 0
	for _, f := range sink.Files {
		if int64(len(f.Data)) > opt.MaxShardBytes+4<<10 {
			t.Errorf("%s: %d bytes, bound %d", f.Name, len(f.Data), opt.MaxShardBytes)
		}
		pf, err := file.NewParquetReader(bytes.NewReader(f.Data))
		if err != nil {
			t.Fatal(err)
		}
		if got := pf.MetaData().KeyValueMetadata().FindValue("huggingface"); got == nil || *got != wantMeta {
			t.Errorf("%s: huggingface metadata\n%v\nwant\n%s", f.Name, got, wantMeta)
		}
		for g := range pf.NumRowGroups() {
			if n := pf.MetaData().RowGroup(g).NumRows(); n > hfRowGroup {
				t.Errorf("%s: row group %d holds %d rows", f.Name, g, n)
			}
		}
		fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, mem)
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := fr.ReadTable(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if fs := tbl.Schema().Fields(); len(fs) != 5 || fs[0].Name != "image" || !arrow.TypeEqual(fs[0].Type, imageType) || fs[1].Name != "label" || fs[1].Type.ID() != arrow.INT64 {
			t.Errorf("schema %v", fs)
		}
		tr := array.NewTableReader(tbl, -1)
		for tr.Next() {
			rec := tr.RecordBatch()
			img := rec.Column(0).(*array.Struct)
			bs, ps := img.Field(0).(*array.Binary), img.Field(1).(*array.String)
			lab := rec.Column(1).(*array.Int64)
			ids := rec.Column(2).(*array.String)
			for i := range int(rec.NumRows()) {
				if !bytes.Equal(bs.Value(i), imgs[row]) || ps.Value(i) != s.Paths[row] || lab.Value(i) != s.Labels[row] || ids.Value(i) != s.Keys[row]+":md5" {
					t.Errorf("%s row %d differs", f.Name, i)
				}
				row++
			}
		}
		tr.Release()
		tbl.Release()
		pf.Close()
	}
	if row != 250 {
		t.Errorf("%d rows read back, want 250", row)
	}
	var again MemSink
	if _, err := WriteHuggingFace(context.Background(), mem, &again, s, opt); err != nil {
		t.Fatal(err)
	}
	for i := range sink.Files {
		if !bytes.Equal(sink.Files[i].Data, again.Files[i].Data) {
			t.Errorf("%s differs between runs", sink.Files[i].Name)
		}
	}
}

func TestHuggingFaceSchemaRefusals(t *testing.T) {
	mem := memory.NewGoAllocator()
	for _, col := range []table.Column{
		table.Strings(mem, "label", []string{"x"}),
		{Name: "blob", Array: func() arrow.Array {
			b := array.NewFixedSizeBinaryBuilder(mem, &arrow.FixedSizeBinaryType{ByteWidth: 2})
			defer b.Release()
			b.Append([]byte("ab"))
			return b.NewArray()
		}()},
	} {
		rec := table.New(col)
		_, err := hfSchema(rec.Schema(), labels)
		if err == nil {
			t.Errorf("column %s accepted", col.Name)
		}
		rec.Release()
	}
}

// The metadata text is what Python's json.dumps writes (checked against
// CPython 3.11: json.dumps of the same dict).
func TestPyJSON(t *testing.T) {
	o := pyObject{{"info", pyObject{{"features", pyObject{
		{"image", pyObject{{"_type", "Image"}}},
		{"label", pyObject{{"names", []string{"0Normal", "Ü\"\\\n\x7f\x01😀 /<>&"}}, {"_type", "ClassLabel"}}},
		{"file_id", pyObject{{"dtype", "string"}, {"_type", "Value"}}},
	}}}}}
	want := `{"info": {"features": {"image": {"_type": "Image"}, "label": {"names": ["0Normal", "\u00dc\"\\\n\u007f\u0001\ud83d\ude00 /<>&"], "_type": "ClassLabel"}, "file_id": {"dtype": "string", "_type": "Value"}}}}`
	if got := o.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestShards(t *testing.T) {
	sizes := []int64{5, 5, 5, 20, 1, 1, 1, 1}
	got := fmt.Sprint(shards(func(i int) int64 { return sizes[i] }, len(sizes), 10, 3))
	if want := "[[0 2] [2 3] [3 4] [4 7] [7 8]]"; got != want {
		t.Errorf("shards %s, want %s", got, want)
	}
	if got := fmt.Sprint(shards(nil, 0, 10, 3)); got != "[[0 0]]" {
		t.Errorf("no items: %s", got)
	}
}

func TestDirSink(t *testing.T) {
	mem := memory.NewGoAllocator()
	dir := t.TempDir()
	s, _ := testSplit(t, mem, "train", 20)
	sink := &DirSink{Dir: dir}
	names, err := WriteWebDataset(context.Background(), sink, s, Options{LabelNames: labels, MaxShardBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var mem2 MemSink
	if _, err := WriteWebDataset(context.Background(), &mem2, s, Options{LabelNames: labels, MaxShardBytes: 16 << 10}); err != nil {
		t.Fatal(err)
	}
	if len(sink.Files) != len(names) || len(names) < 2 {
		t.Fatalf("%d stored files for %d shards", len(sink.Files), len(names))
	}
	for i, f := range sink.Files {
		data, err := os.ReadFile(f.Path)
		sum := sha256.Sum256(data)
		if err != nil || f.Name != names[i] || f.Path != filepath.Join(dir, f.SHA256) || hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(data)) != f.Size || !bytes.Equal(data, mem2.Files[i].Data) {
			t.Errorf("stored %+v (%v)", f, err)
		}
	}
	// A failed shard leaves nothing behind, listed or not.
	failDir := t.TempDir()
	s.Image = func(context.Context, int) ([]byte, error) { return nil, fmt.Errorf("gone") }
	failing := &DirSink{Dir: failDir}
	if _, err := WriteWebDataset(context.Background(), failing, s, Options{LabelNames: labels, MaxShardBytes: 16 << 10}); err == nil {
		t.Fatal("no error")
	}
	if entries, _ := os.ReadDir(failDir); len(entries) != 0 || len(failing.Files) != 0 {
		t.Errorf("after a failure: %v on disk, %v listed", entries, failing.Files)
	}
}
