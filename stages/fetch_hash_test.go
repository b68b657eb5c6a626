package stages

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/kneepipe/kneepipe/internal/source"
	"github.com/kneepipe/kneepipe/internal/table"
)

// memStore is an in-process bucket for fetch-hash: objects with an ETag
// and a last-modified time, GETs counted per key, and optional hooks that
// change what a GET serves.
type memStore struct {
	mu   sync.Mutex
	objs map[string]*memObject
	gets map[string]int
	// serve, when set, wraps the body of every GET (attempt counts from 1).
	serve func(ctx context.Context, key string, attempt int, body []byte) (io.Reader, error)
}

type memObject struct {
	data     []byte
	etag     string // "" for none; see md5ETag
	modified time.Time
	listSize int64 // size the listing reports; -1: len(data)
}

func newMemStore() *memStore {
	return &memStore{objs: map[string]*memObject{}, gets: map[string]int{}}
}

// put stores data under key with its MD5 as ETag, as a single-part upload.
func (s *memStore) put(key string, data []byte) *memObject {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &memObject{data: data, etag: md5Hex(data), modified: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), listSize: -1}
	s.objs[key] = o
	return o
}

func (s *memStore) remove(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objs, key)
}

// edit changes an object under the lock.
func (s *memStore) edit(key string, fn func(*memObject)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.objs[key])
}

func (s *memStore) List(ctx context.Context, fn func(source.Object) error) error {
	s.mu.Lock()
	var objs []source.Object
	for k, o := range s.objs {
		size := o.listSize
		if size < 0 {
			size = int64(len(o.data))
		}
		objs = append(objs, source.Object{Key: k, Rel: k, Size: size, ETag: o.etag, LastModified: o.modified})
	}
	s.mu.Unlock()
	slices.SortFunc(objs, func(a, b source.Object) int { return strings.Compare(a.Key, b.Key) })
	for _, o := range objs {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

func (s *memStore) Get(ctx context.Context, key string) (io.ReadCloser, source.Version, error) {
	s.mu.Lock()
	o, ok := s.objs[key]
	s.gets[key]++
	attempt := s.gets[key]
	var data []byte
	if ok {
		data = bytes.Clone(o.data)
	}
	serve := s.serve
	s.mu.Unlock()
	if !ok {
		return nil, source.Version{}, fmt.Errorf("get %s: %w", key, fs.ErrNotExist)
	}
	if serve == nil {
		return io.NopCloser(bytes.NewReader(data)), unknownVersion, nil
	}
	r, err := serve(ctx, key, attempt, data)
	if err != nil {
		return nil, source.Version{}, err
	}
	return io.NopCloser(r), unknownVersion, nil
}

// unknownVersion: memStore's answers say nothing of the version (the
// version check has its own tests in fetch_hash_changed_test.go).
var unknownVersion = source.Version{Size: -1}

func (s *memStore) URI(key string) string { return "mem://" + key }

// getCounts returns and resets the GETs per key.
func (s *memStore) getCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.gets
	s.gets = map[string]int{}
	return out
}

type nopProgress struct{}

func (nopProgress) Add(int) {}
func (nopProgress) Done()   {}

func fetchEnv(t *testing.T, store source.Store) *Env {
	env := testEnv(t)
	env.Store = store
	env.Progress = func(string, int) Progress { return nopProgress{} }
	return env
}

// fetchRun lists the store and runs fetch-hash with params on the listing.
func fetchRun(t *testing.T, env *Env, params string) *Result {
	t.Helper()
	listed := run(t, env, "list", build(t, "list", "{suffix: ''}"), nil)
	return run(t, env, "fetch-hash", build(t, "fetch-hash", params), map[string]arrow.RecordBatch{"objects": listed.Outputs["objects"]})
}

func md5Hex(b []byte) string    { s := md5.Sum(b); return hex.EncodeToString(s[:]) }
func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// pngHead builds a PNG signature and IHDR chunk start with the given facts.
func pngHead(chunk string, w, h uint32, depth, color byte) []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	b = binary.BigEndian.AppendUint32(b, 13)
	b = append(b, chunk...)
	b = binary.BigEndian.AppendUint32(b, w)
	b = binary.BigEndian.AppendUint32(b, h)
	return append(b, depth, color, 0, 0, 0, 0, 0, 0, 0) // compression, filter, interlace, CRC
}

func TestParsePNGHeader(t *testing.T) {
	real := grayPNG(t, 3, 2, 7)
	valid := pngHead("IHDR", 0x01020304, 20000, 16, 6)
	for _, tt := range []struct {
		name string
		in   []byte
		want pngHeader
	}{
		{"encoded by image/png", real, pngHeader{OK: true, Width: 3, Height: 2, BitDepth: 8, ColorType: 0}},
		{"big-endian fields", valid, pngHeader{OK: true, Width: 0x01020304, Height: 20000, BitDepth: 16, ColorType: 6}},
		{"exactly the header", valid[:pngHeaderLen], pngHeader{OK: true, Width: 0x01020304, Height: 20000, BitDepth: 16, ColorType: 6}},
		{"truncated in the colour type", valid[:pngHeaderLen-1], pngHeader{}},
		{"signature only", valid[:8], pngHeader{}},
		{"empty", nil, pngHeader{}},
		{"first chunk not IHDR", pngHead("IDAT", 3, 2, 8, 0), pngHeader{}},
		{"lower-case ihdr", pngHead("ihdr", 3, 2, 8, 0), pngHeader{}},
		{"signature damaged", append([]byte{0x88}, valid[1:]...), pngHeader{}},
		{"JPEG", append([]byte{0xff, 0xd8, 0xff, 0xe0}, make([]byte, 40)...), pngHeader{}},
		{"text", []byte("just some text, long enough to hold a header"), pngHeader{}},
	} {
		if got := parsePNGHeader(tt.in); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// Rows carry the hashes of the bytes, file_id and the PNG facts; empty
// objects and (with expect: png) non-PNG bytes are rejected with a reason.
func TestFetchHashRowsAndRejections(t *testing.T) {
	store := newMemStore()
	img := grayPNG(t, 4, 3, 9)
	text := []byte("not an image\n")
	store.put("a.png", img)
	store.put("b.txt", text)
	store.put("c.empty", nil)
	env := fetchEnv(t, store)

	hashes := func(b []byte) string { return sha256Hex(b) + "," + md5Hex(b) + "," + sha256Hex(b) + ":" + md5Hex(b) }
	for _, tt := range []struct {
		expect, rows, rejected string
		objects                Objects
	}{
		{"png",
			lines("key,sha256,md5,file_id,width,height,bit_depth,color_type", "a.png,"+hashes(img)+",4,3,8,0"),
			lines("key,reason", "b.txt,bytes are not a PNG", "c.empty,empty object"),
			Objects{Rejected: 2}},
		{"any",
			lines("key,sha256,md5,file_id,width,height,bit_depth,color_type", "a.png,"+hashes(img)+",4,3,8,0", "b.txt,"+hashes(text)+",,,,"),
			lines("key,reason", "c.empty,empty object"),
			Objects{Rejected: 1}},
	} {
		res := fetchRun(t, env, "{expect: "+tt.expect+"}")
		rows := res.Outputs["rows"]
		if got := schemaOf(rows); got != "key:utf8,relative_path:utf8,uri:utf8,size:int64,etag:utf8,last_modified:timestamp[us, tz=UTC],"+
			"sha256:utf8,md5:utf8,file_id:utf8,width:int64,height:int64,bit_depth:int64,color_type:int64" {
			t.Errorf("expect %s: schema %s", tt.expect, got)
		}
		if got := csvOf(t, selectCols(t, rows, "key", "sha256", "md5", "file_id", "width", "height", "bit_depth", "color_type")); got != tt.rows {
			t.Errorf("expect %s: rows\n%s\nwant\n%s", tt.expect, got, tt.rows)
		}
		if got := csvOf(t, res.Outputs["rejected"]); got != tt.rejected {
			t.Errorf("expect %s: rejected\n%s\nwant\n%s", tt.expect, got, tt.rejected)
		}
		if got := csvOf(t, res.Outputs["failed"]); got != "key,error,attempts\n" {
			t.Errorf("expect %s: failed\n%s", tt.expect, got)
		}
		if res.Objects != tt.objects || res.Stats["downloaded"] != 3 || res.Partial || len(res.Failures) > 0 {
			t.Errorf("expect %s: objects %+v, stats %v, partial %v, failures %v; want %+v, 3 downloaded, none failed",
				tt.expect, res.Objects, res.Stats, res.Partial, res.Failures, tt.objects)
		}
	}
}

// selectCols keeps the named columns of rec, released with the test.
func selectCols(t *testing.T, rec arrow.RecordBatch, names ...string) arrow.RecordBatch {
	t.Helper()
	out, err := table.Select(rec, names, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(out.Release)
	return out
}

// failedRows renders the failed output as "key|attempts|error".
func failedRows(t *testing.T, res *Result) []string {
	t.Helper()
	rec := res.Outputs["failed"]
	keys, _ := table.StringCol(rec, "key")
	errs, _ := table.StringCol(rec, "error")
	attempts, _ := table.Int64Col(rec, "attempts")
	var out []string
	for i := range int(rec.NumRows()) {
		out = append(out, fmt.Sprintf("%s|%d|%s", keys.Value(i), attempts.Value(i), errs.Value(i)))
	}
	return out
}

// A plain-MD5 ETag is checked against the body: a mismatch is retried and
// then fails; a multipart ETag ("-N") is not an MD5 and is not checked.
func TestFetchHashETagCheck(t *testing.T) {
	store := newMemStore()
	body := grayPNG(t, 2, 2, 1)
	other := md5Hex([]byte("other bytes"))
	store.put("damaged.png", body).etag = other
	store.put("multipart.png", body).etag = other + "-3"
	store.put("upper.png", body).etag = strings.ToUpper(md5Hex(body))
	store.put("flipped-once.png", body)
	store.serve = func(_ context.Context, key string, attempt int, data []byte) (io.Reader, error) {
		if key == "flipped-once.png" && attempt == 1 {
			data[len(data)/2] ^= 0x01 // damaged in transit, same length
		}
		return bytes.NewReader(data), nil
	}
	env := fetchEnv(t, store)
	res := fetchRun(t, env, "{attempts: 3}")

	failed := failedRows(t, res)
	want := fmt.Sprintf("damaged.png|3|MD5 %s differs from ETag %s: body damaged in transit", md5Hex(body), other)
	if len(failed) != 1 || failed[0] != want {
		t.Errorf("failed %q, want [%q]", failed, want)
	}
	if got := listedKeys(res.Outputs["rows"]); got != "flipped-once.png,multipart.png,upper.png" {
		t.Errorf("rows %q", got)
	}
	if got, want := store.getCounts(), map[string]int{"damaged.png": 3, "flipped-once.png": 2, "multipart.png": 1, "upper.png": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("GETs %v, want %v", got, want)
	}
	if res.Objects.Failed != 1 || res.Stats["downloaded"] != 3 || !res.Partial || len(res.Failures) != 1 || res.Failures[0].Key != "damaged.png" || res.Failures[0].Attempts != 3 {
		t.Errorf("objects %+v, stats %v, partial %v, failures %v", res.Objects, res.Stats, res.Partial, res.Failures)
	}
}

// A body shorter or longer than the listing says is retried, then fails.
func TestFetchHashSizeMismatch(t *testing.T) {
	store := newMemStore()
	store.put("long.png", grayPNG(t, 2, 2, 1)).listSize = 10
	store.put("short.png", grayPNG(t, 2, 2, 2)).listSize = 1 << 20
	store.put("cut-once.png", grayPNG(t, 2, 2, 3))
	store.serve = func(_ context.Context, key string, attempt int, data []byte) (io.Reader, error) {
		if key == "cut-once.png" && attempt == 1 {
			data = data[:len(data)-5]
		}
		return bytes.NewReader(data), nil
	}
	for _, key := range []string{"long.png", "short.png"} {
		store.edit(key, func(o *memObject) { o.etag = "" }) // leave the size check alone to catch it
	}
	env := fetchEnv(t, store)
	res := fetchRun(t, env, "{attempts: 2}")
	n := len(grayPNG(t, 2, 2, 1))
	want := []string{
		fmt.Sprintf("long.png|2|got %d bytes, listing says 10", n),
		fmt.Sprintf("short.png|2|got %d bytes, listing says %d", len(grayPNG(t, 2, 2, 2)), 1<<20),
	}
	if got := failedRows(t, res); !slices.Equal(got, want) {
		t.Errorf("failed %q, want %q", got, want)
	}
	if got := listedKeys(res.Outputs["rows"]); got != "cut-once.png" {
		t.Errorf("rows %q, want cut-once.png (fetched on its second attempt)", got)
	}
}

// The record under StateDir spares unchanged objects a download; a changed
// ETag, size or last-modified time costs that object one GET; a deleted
// object leaves the record; a failed one is not recorded.
func TestFetchHashRecordReuse(t *testing.T) {
	store := newMemStore()
	for _, k := range []string{"a.png", "b.png", "c.png", "d.png", "e.png"} {
		store.put(k, grayPNG(t, 2, 2, k[0]))
	}
	store.edit("b.png", func(o *memObject) { o.etag = "" }) // as a directory lists it: size and mtime only
	store.put("gone.png", grayPNG(t, 2, 2, 'g'))
	store.remove("gone.png")
	env := fetchEnv(t, store)
	env.StateDir = t.TempDir()
	step := func(name string, wantGets map[string]int) *Result {
		t.Helper()
		res := fetchRun(t, env, "{attempts: 2}")
		if got := store.getCounts(); fmt.Sprint(got) != fmt.Sprint(wantGets) {
			t.Errorf("%s: GETs %v, want %v", name, got, wantGets)
		}
		var n int64
		for _, c := range wantGets {
			n += min(int64(c), 1)
		}
		if got := res.Stats["downloaded"]; got != n-res.Objects.Failed {
			t.Errorf("%s: downloaded %d, want %d", name, got, n-res.Objects.Failed)
		}
		return res
	}
	all := map[string]int{"a.png": 1, "b.png": 1, "c.png": 1, "d.png": 1, "e.png": 1}
	first := csvOf(t, step("first run", all).Outputs["rows"])
	if got := csvOf(t, step("second run", map[string]int{}).Outputs["rows"]); got != first {
		t.Errorf("rows from the record differ from the fetched ones:\n%s\nwant\n%s", got, first)
	}

	store.edit("a.png", func(o *memObject) { o.etag = strings.Repeat("0", 31) + "1-2" })
	store.edit("b.png", func(o *memObject) { o.data = append(o.data, 0) })
	store.edit("c.png", func(o *memObject) { o.modified = o.modified.Add(time.Second) })
	step("changed a (ETag), b (size), c (mtime)", map[string]int{"a.png": 1, "b.png": 1, "c.png": 1})
	step("unchanged again", map[string]int{})

	// d leaves the record with the listing; put back as it was, it is
	// fetched again. e fails for good: it is not recorded either.
	d := store.objs["d.png"]
	store.remove("d.png")
	step("d deleted", map[string]int{})
	store.edit("e.png", func(o *memObject) { o.etag = md5Hex([]byte("x")) })
	res := step("e damaged", map[string]int{"e.png": 2})
	if res.Objects.Failed != 1 {
		t.Errorf("e damaged: objects %+v", res.Objects)
	}
	store.mu.Lock()
	store.objs["d.png"] = d
	store.mu.Unlock()
	store.edit("e.png", func(o *memObject) { o.etag = md5Hex(o.data) })
	step("d back, e mended", map[string]int{"d.png": 1, "e.png": 1})
	step("all recorded", map[string]int{})

	// --force: the record is a cache like the others, not used; it is
	// written again, so the run after reuses it.
	env.Forced = true
	step("forced", map[string]int{"a.png": 1, "b.png": 1, "c.png": 1, "d.png": 1, "e.png": 1})
	env.Forced = false
	step("after forced", map[string]int{})
}

// Rows stay in listing order however the downloads finish: here each
// object's body ends only after the next key's has been read, so they
// finish in reverse order.
func TestFetchHashListingOrder(t *testing.T) {
	const n = 16
	store := newMemStore()
	var keys []string
	done := map[string]chan struct{}{}
	for i := range n {
		k := fmt.Sprintf("k%02d.png", i)
		keys = append(keys, k)
		store.put(k, grayPNG(t, 2, 2, byte(i)))
		done[k] = make(chan struct{})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	var finished []string
	store.serve = func(_ context.Context, key string, _ int, data []byte) (io.Reader, error) {
		i := slices.Index(keys, key)
		return &gatedReader{data: data, wait: func() error {
			if i+1 < n {
				select {
				case <-done[keys[i+1]]:
				case <-ctx.Done():
					return fmt.Errorf("%s: waited for %s: %w", key, keys[i+1], ctx.Err())
				}
			}
			return nil
		}, onEOF: func() {
			mu.Lock()
			finished = append(finished, key)
			mu.Unlock()
			close(done[key])
		}}, nil
	}
	env := fetchEnv(t, store)
	res := fetchRun(t, env, fmt.Sprintf("{concurrency: %d, attempts: 1}", n))
	if failed := failedRows(t, res); len(failed) > 0 {
		t.Fatalf("failed: %q", failed)
	}
	want := slices.Clone(keys)
	slices.Reverse(want)
	if !slices.Equal(finished, want) {
		t.Fatalf("downloads finished in order %q; the test wants them reversed", finished)
	}
	rows := res.Outputs["rows"]
	gotKeys, _ := table.StringCol(rows, "key")
	shas, _ := table.StringCol(rows, "sha256")
	for i, k := range keys {
		if i >= gotKeys.Len() || gotKeys.Value(i) != k || shas.Value(i) != sha256Hex(grayPNG(t, 2, 2, byte(i))) {
			t.Fatalf("row %d: not %s with its hash (rows:\n%s)", i, k, csvOf(t, selectCols(t, rows, "key", "sha256")))
		}
	}
}

// gatedReader serves data once wait returns, and calls onEOF once at the end.
type gatedReader struct {
	data   []byte
	wait   func() error
	onEOF  func()
	opened bool
	ended  bool
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if !g.opened {
		g.opened = true
		if err := g.wait(); err != nil {
			return 0, err
		}
	}
	if len(g.data) == 0 {
		if !g.ended {
			g.ended = true
			g.onEOF()
		}
		return 0, io.EOF
	}
	n := copy(p, g.data)
	g.data = g.data[n:]
	return n, nil
}

// fail_fast ends the run at the first object that fails for good; without
// it the failure is one row of the failed output.
func TestFetchHashFailFast(t *testing.T) {
	store := newMemStore()
	store.put("a.png", grayPNG(t, 2, 2, 1))
	store.put("b.png", grayPNG(t, 2, 2, 2))
	store.serve = func(_ context.Context, key string, _ int, data []byte) (io.Reader, error) {
		if key == "b.png" {
			return nil, fmt.Errorf("%w: access denied", source.ErrPermanent)
		}
		return bytes.NewReader(data), nil
	}
	env := fetchEnv(t, store)
	env.StateDir = t.TempDir()

	res := fetchRun(t, env, "{concurrency: 1}")
	if got := failedRows(t, res); len(got) != 1 || !strings.HasPrefix(got[0], "b.png|1|") {
		t.Errorf("without fail_fast: failed %q, want b.png after 1 attempt (permanent)", got)
	}
	if got := listedKeys(res.Outputs["rows"]); got != "a.png" {
		t.Errorf("without fail_fast: rows %q", got)
	}

	listed := run(t, env, "list", build(t, "list", "{suffix: ''}"), nil)
	_, err := build(t, "fetch-hash", "{fail_fast: true}").Run(t.Context(), env, map[string]arrow.RecordBatch{"objects": listed.Outputs["objects"]})
	if err == nil || !errors.Is(err, source.ErrPermanent) || !strings.Contains(err.Error(), "fetch b.png") {
		t.Errorf("fail_fast: err %v, want the permanent failure of b.png", err)
	}

	// The run that stopped recorded no hash for b.png: the next run tries
	// it again.
	store.getCounts()
	res = fetchRun(t, env, "")
	if got := failedRows(t, res); len(got) != 1 || !strings.HasPrefix(got[0], "b.png|1|") {
		t.Errorf("after fail_fast: failed %q, want b.png", got)
	}
	if got := store.getCounts(); got["b.png"] != 1 {
		t.Errorf("after fail_fast: GETs %v, want b.png tried again", got)
	}
}
