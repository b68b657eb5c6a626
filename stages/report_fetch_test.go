package stages

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/kneepipe/kneepipe/internal/imagecache"
	"github.com/kneepipe/kneepipe/internal/report"
	"github.com/kneepipe/kneepipe/internal/source"
	"github.com/kneepipe/kneepipe/internal/table"
)

// flakyStore serves objects, failing each key's first attempts in turn
// with the faults listed for it.
type flakyStore struct {
	mu      sync.Mutex
	objects map[string][]byte
	faults  map[string][]string // per key, one per attempt: error, cut, flip, stall, gone
	gets    map[string]int
}

func (s *flakyStore) List(context.Context, func(source.Object) error) error { return nil }
func (s *flakyStore) URI(key string) string                                 { return "test://" + key }

func (s *flakyStore) Get(ctx context.Context, key string) (io.ReadCloser, source.Version, error) {
	s.mu.Lock()
	n := s.gets[key]
	s.gets[key]++
	var fault string
	if n < len(s.faults[key]) {
		fault = s.faults[key][n]
	}
	data := append([]byte(nil), s.objects[key]...)
	s.mu.Unlock()
	switch fault {
	case "error":
		return nil, source.Version{}, errors.New("503 slow down")
	case "gone":
		return nil, source.Version{}, fmt.Errorf("%w: no such key", fs.ErrNotExist)
	case "cut":
		return io.NopCloser(bytes.NewReader(data[:len(data)/2])), source.Version{Size: -1}, nil
	case "flip":
		data[len(data)/2] ^= 0x10
	case "stall":
		return io.NopCloser(stallBody{ctx}), source.Version{Size: -1}, nil
	}
	return io.NopCloser(bytes.NewReader(data)), source.Version{Size: -1}, nil
}

type stallBody struct{ ctx context.Context }

func (b stallBody) Read([]byte) (int, error) { <-b.ctx.Done(); return 0, b.ctx.Err() }

func grayPNG(t *testing.T, w, h int, v uint8) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = v
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// hashedRows builds rows as fetch-hash and map-severity would: key, size
// and sha256 of each object.
func hashedRows(t *testing.T, env *Env, objects map[string][]byte, spec ...string) arrow.RecordBatch {
	t.Helper()
	var items, raters, keys, shas []string
	var grades, sizes []int64
	for _, line := range spec { // item|rater|grade|key
		f := strings.Split(line, "|")
		sum := sha256.Sum256(objects[f[3]])
		items, raters, keys = append(items, f[0]), append(raters, f[1]), append(keys, f[3])
		grades = append(grades, int64(f[2][0]-'0'))
		sizes = append(sizes, int64(len(objects[f[3]])))
		shas = append(shas, hex.EncodeToString(sum[:]))
	}
	m := env.Mem
	return table.New(
		table.Strings(m, "file_id", items), table.Strings(m, "expert", raters), table.Int64s(m, "severity", grades, nil),
		table.Strings(m, "key", keys), table.Int64s(m, "size", sizes, nil), table.Strings(m, "sha256", shas),
	)
}

func summaryOf(t *testing.T, res *Result) report.Summary {
	t.Helper()
	var s report.Summary
	if err := jsonUnmarshal(res.Outputs["files"], 1, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// Transient faults are retried into the right bytes; a permanent one is
// not retried; after attempts the thumbnail is reported missing.
func TestReportFetchRetries(t *testing.T) {
	env := testEnv(t)
	objects := map[string][]byte{
		"I/a": grayPNG(t, 300, 162, 10), "II/a": grayPNG(t, 300, 162, 10),
		"I/b": grayPNG(t, 640, 161, 20), "I/c": grayPNG(t, 300, 162, 30), "I/d": grayPNG(t, 300, 162, 40),
	}
	store := &flakyStore{objects: objects, gets: map[string]int{}, faults: map[string][]string{
		"I/a": {"error", "cut", "flip", "stall"}, // four faults, then the bytes
		"I/b": {"gone"},
		"I/c": {"flip", "flip", "flip", "flip", "flip"},
	}}
	env.Store = store
	in := hashedRows(t, env, objects, "a|I|0|I/a", "a|II|1|II/a", "b|I|2|I/b", "b|I|2|I/b", "c|I|3|I/c", "c|I|3|I/c", "d|I|4|I/d")
	defer in.Release()
	st := build(t, "report", "{attempts: 5, stall_timeout: 50ms, concurrency: 2}")
	res := run(t, env, "report", st, reportInputs(t, env, in))
	s := summaryOf(t, res)
	// Shown: a and d (disagreements; d only I graded), b and c (duplicates).
	if s.Thumbnails != (report.ThumbnailCount{Shown: 2, Failed: 2}) {
		t.Errorf("thumbnails %+v, want a and d shown, b (gone) and c (always damaged) failed", s.Thumbnails)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if store.gets["I/a"] != 5 || store.gets["I/b"] != 1 || store.gets["I/c"] != 5 || store.gets["II/a"] != 0 {
		t.Errorf("GETs %v: want 5 for a (4 faults), 1 for b (permanent), 5 for c (attempts), none for II/a", store.gets)
	}
}

// With a state directory, a rerun fetches no image it has derived before.
func TestReportRerunFetchesNothing(t *testing.T) {
	env := testEnv(t)
	env.StateDir = t.TempDir()
	objects := map[string][]byte{"I/a": grayPNG(t, 300, 162, 10), "II/a": grayPNG(t, 300, 162, 10), "I/b": grayPNG(t, 640, 161, 20)}
	store := &flakyStore{objects: objects, gets: map[string]int{}}
	env.Store = store
	in := hashedRows(t, env, objects, "a|I|0|I/a", "a|II|1|II/a", "b|I|2|I/b", "b|II|2|I/b")
	defer in.Release()
	inputs := reportInputs(t, env, in)
	st := build(t, "report", "{mean_images: true}")
	first := run(t, env, "report", st, inputs)
	if n := store.gets["I/a"] + store.gets["I/b"]; n != 3 { // thumbnail of a; padded gray a and b
		t.Errorf("first run: %d GETs (%v), want 3", n, store.gets)
	}
	store.gets = map[string]int{}
	second := run(t, env, "report", st, inputs)
	if len(store.gets) != 0 {
		t.Errorf("rerun GETs %v, want none", store.gets)
	}
	a, b := first.Outputs["files"].Column(1).(*array.Binary), second.Outputs["files"].Column(1).(*array.Binary)
	if !bytes.Equal(a.Value(0), b.Value(0)) || !bytes.Equal(a.Value(1), b.Value(1)) {
		t.Error("rerun changed the report")
	}
}

func jsonUnmarshal(files arrow.RecordBatch, row int, v any) error {
	c, ok := files.Column(1).(interface{ Value(int) []byte })
	if !ok {
		return errors.New("content is not binary")
	}
	return jsonDecode(c.Value(row), v)
}

func jsonDecode(data []byte, v any) error { return json.Unmarshal(data, v) }

// The images fetch-hash kept in the image cache (keep_images) are read from
// there: a cold report makes no GET, and shows the same page.
func TestReportReadsTheImageCache(t *testing.T) {
	objects := map[string][]byte{"I/a": grayPNG(t, 300, 162, 10), "II/a": grayPNG(t, 300, 162, 10), "I/b": grayPNG(t, 640, 161, 20)}
	page := func(kept bool) ([]byte, map[string]int) {
		env := testEnv(t)
		env.StateDir = t.TempDir()
		env.ImageCache = t.TempDir()
		if kept {
			for _, data := range objects {
				if err := (imagecache.Cache{Dir: env.ImageCache}).Put(sha256Hex(data), data); err != nil {
					t.Fatal(err)
				}
			}
		}
		store := &flakyStore{objects: objects, gets: map[string]int{}}
		env.Store = store
		in := hashedRows(t, env, objects, "a|I|0|I/a", "a|II|1|II/a", "b|I|2|I/b", "b|II|2|I/b")
		defer in.Release()
		res := run(t, env, "report", build(t, "report", "{mean_images: true}"), reportInputs(t, env, in))
		return bytes.Clone(res.Outputs["files"].Column(1).(*array.Binary).Value(0)), store.gets
	}
	cold, coldGets := page(false)
	kept, keptGets := page(true)
	if len(coldGets) == 0 || len(keptGets) != 0 {
		t.Errorf("GETs %v without the images kept, %v with them; want some, then none", coldGets, keptGets)
	}
	if !bytes.Equal(cold, kept) {
		t.Error("the report read from the image cache differs")
	}
}
