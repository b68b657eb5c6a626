package stages

import (
	"bytes"
	"crypto/sha256"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/kneepipe/kneepipe/internal/neardup"
	"github.com/kneepipe/kneepipe/internal/table"
)

// texturedGray is a w×h gray image with structure (not flat), so that its
// fingerprint is meaningful.
func texturedGray(w, h int, seed uint8) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Pix[y*img.Stride+x] = uint8(x*3+y*5) ^ seed
		}
	}
	return img
}

func jpegOf(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fingerprintsByKey reads the fingerprint and fingerprint_error columns.
func fingerprintsByKey(t *testing.T, rows arrow.RecordBatch) (fps map[string][]byte, reasons map[string]string) {
	t.Helper()
	keys, err := table.StringCol(rows, "key")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := table.Index(rows, colFingerprint)
	if err != nil {
		t.Fatal(err)
	}
	ei, err := table.Index(rows, colFingerprintError)
	if err != nil {
		t.Fatal(err)
	}
	fc, ec := rows.Column(fi).(*array.Binary), rows.Column(ei).(*array.String)
	fps, reasons = map[string][]byte{}, map[string]string{}
	for i := range keys.Len() {
		if fc.IsNull(i) != !ec.IsNull(i) {
			t.Errorf("%s: fingerprint null %v, reason null %v: want exactly one", keys.Value(i), fc.IsNull(i), ec.IsNull(i))
		}
		if fc.IsNull(i) {
			reasons[keys.Value(i)] = ec.Value(i)
		} else {
			fps[keys.Value(i)] = bytes.Clone(fc.Value(i))
		}
	}
	return fps, reasons
}

func wantFingerprint(t *testing.T, data []byte) []byte {
	t.Helper()
	fp, err := neardup.FromBytes(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := fp.MarshalBinary()
	return b
}

// Fingerprints come from the one GET that hashes each object, are null
// with a reason for bytes that are no image (or too large to keep or to
// decode), and are remembered by content: an unchanged object is not
// fetched again, an added one is fetched once, and a damaged store file
// costs only its object a GET.
func TestFetchHashFingerprints(t *testing.T) {
	store := newMemStore()
	pngA := encodePNG(t, texturedGray(80, 60, 1))
	jpg := jpegOf(t, texturedGray(64, 64, 7))
	big := jpegOf(t, texturedGray(200, 200, 9)) // 40000 pixels: over max_pixels
	store.put("a.png", pngA)
	store.put("b.jpg", jpg)
	store.put("c.txt", []byte("not an image"))
	store.put("d.jpg", big)
	env := fetchEnv(t, store)
	env.StateDir = t.TempDir()
	const params = "{expect: any, fingerprint: true, max_pixels: 10000}"

	res := fetchRun(t, env, params)
	if got := store.getCounts(); len(got) != 4 || got["a.png"] != 1 || got["b.jpg"] != 1 || got["c.txt"] != 1 || got["d.jpg"] != 1 {
		t.Fatalf("cold run GETs %v, want one per object", got)
	}
	fps, reasons := fingerprintsByKey(t, res.Outputs["rows"])
	if !bytes.Equal(fps["a.png"], wantFingerprint(t, pngA)) || !bytes.Equal(fps["b.jpg"], wantFingerprint(t, jpg)) {
		t.Errorf("fingerprints of a.png and b.jpg differ from neardup.FromBytes of their bytes")
	}
	if r := reasons["c.txt"]; !strings.Contains(r, "not fingerprinted") {
		t.Errorf("c.txt: reason %q", r)
	}
	if r := reasons["d.jpg"]; !strings.Contains(r, "too large") {
		t.Errorf("d.jpg (200×200, max_pixels 10000): reason %q, want too large", r)
	}

	// Warm: nothing fetched, same columns.
	plain := func(res *Result) string {
		return csvOf(t, selectCols(t, res.Outputs["rows"], "key", "sha256", "width", colFingerprintError))
	}
	first := plain(res)
	res = fetchRun(t, env, params)
	if got := store.getCounts(); len(got) != 0 {
		t.Errorf("warm run GETs %v, want none", got)
	}
	if got := plain(res); got != first {
		t.Errorf("warm rows differ:\n%s\nwant\n%s", got, first)
	}
	if warm, _ := fingerprintsByKey(t, res.Outputs["rows"]); len(warm) != 2 || !bytes.Equal(warm["a.png"], fps["a.png"]) || !bytes.Equal(warm["b.jpg"], fps["b.jpg"]) {
		t.Errorf("warm fingerprints differ from the cold ones")
	}

	// Added objects: only they are fetched. A copy of a.png under another
	// name shares its fingerprint file but was listed anew, so fetched once.
	store.put("e.png", encodePNG(t, texturedGray(50, 50, 3)))
	store.put("f.png", encodePNG(t, texturedGray(50, 40, 4)))
	fetchRun(t, env, params)
	if got := store.getCounts(); len(got) != 2 || got["e.png"] != 1 || got["f.png"] != 1 {
		t.Errorf("after adding two: GETs %v, want e.png and f.png once", got)
	}

	// A damaged record reads as missing: that object only is fetched
	// again, and its fingerprint is right. Records are in listing order:
	// a.png's is first.
	path := filepath.Join(env.StateDir, fpStoreFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[100] ^= 1
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	res = fetchRun(t, env, params)
	if got := store.getCounts(); len(got) != 1 || got["a.png"] != 1 {
		t.Errorf("after damaging a.png's file: GETs %v, want a.png once", got)
	}
	if fps, _ := fingerprintsByKey(t, res.Outputs["rows"]); !bytes.Equal(fps["a.png"], wantFingerprint(t, pngA)) {
		t.Errorf("a.png's fingerprint after refetch is wrong")
	}

	// Deleted objects leave the store.
	store.remove("e.png")
	fetchRun(t, env, params)
	if n := storedFingerprints(t, env); n != 5 {
		t.Errorf("store holds %d records after e.png was deleted, want 5 (a b c d f)", n)
	}

	// A torn tail (a run killed while writing would leave none: the file
	// is renamed into place) costs only the objects of the lost records.
	raw, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw[:len(raw)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	if n := storedFingerprints(t, env); n != 4 {
		t.Errorf("torn store: %d records read, want 4", n)
	}
	fetchRun(t, env, params)
	if got := store.getCounts(); len(got) != 1 || got["f.png"] != 1 {
		t.Errorf("after tearing the last record (f.png): GETs %v, want f.png once", got)
	}
}

func storedFingerprints(t *testing.T, env *Env) int {
	t.Helper()
	s, err := newFingerprintStore(env)
	if err != nil {
		t.Fatal(err)
	}
	return len(s.byKey)
}

// Turning fingerprints on after runs without them fetches each object
// once more (its fingerprint was never computed); fingerprints off adds no
// columns.
func TestFetchHashFingerprintSwitch(t *testing.T) {
	store := newMemStore()
	store.put("a.png", encodePNG(t, texturedGray(40, 40, 1)))
	env := fetchEnv(t, store)
	env.StateDir = t.TempDir()
	res := fetchRun(t, env, "{}")
	if _, err := table.Index(res.Outputs["rows"], colFingerprint); err == nil {
		t.Errorf("fingerprint column present with fingerprint off")
	}
	store.getCounts()
	fetchRun(t, env, "{fingerprint: true}")
	if got := store.getCounts(); got["a.png"] != 1 {
		t.Errorf("fingerprints turned on: GETs %v, want a.png once", got)
	}
	fetchRun(t, env, "{fingerprint: true}")
	if got := store.getCounts(); len(got) != 0 {
		t.Errorf("then warm: GETs %v, want none", got)
	}
}

// A fingerprint stored by another encoding version (neardup's
// encodingVersion changed: another pixel hash) is computed again, with one
// GET, and stored anew.
func TestFetchHashFingerprintOldVersion(t *testing.T) {
	store := newMemStore()
	data := encodePNG(t, texturedGray(48, 40, 2))
	store.put("a.png", data)
	env := fetchEnv(t, store)
	env.StateDir = t.TempDir()
	fetchRun(t, env, "{fingerprint: true}")
	s, err := newFingerprintStore(env)
	if err != nil {
		t.Fatal(err)
	}
	var order [][sha256.Size]byte
	for k, f := range s.byKey {
		if f.fp == nil {
			t.Fatal("a.png has no stored fingerprint")
		}
		f.fp[0]-- // the version byte
		order = append(order, k)
	}
	if err := s.write(order); err != nil {
		t.Fatal(err)
	}
	store.getCounts()
	res := fetchRun(t, env, "{fingerprint: true}")
	if got := store.getCounts(); len(got) != 1 || got["a.png"] != 1 {
		t.Errorf("old-version fingerprint: GETs %v, want a.png once", got)
	}
	if fps, _ := fingerprintsByKey(t, res.Outputs["rows"]); !bytes.Equal(fps["a.png"], wantFingerprint(t, data)) {
		t.Errorf("recomputed fingerprint is wrong")
	}
	fetchRun(t, env, "{fingerprint: true}")
	if got := store.getCounts(); len(got) != 0 {
		t.Errorf("then warm: GETs %v, want none", got)
	}
}

// A body longer than fingerprint_max_bytes is not kept: no fingerprint,
// with a reason; its hashes are still right.
func TestFetchHashFingerprintByteCap(t *testing.T) {
	store := newMemStore()
	data := encodePNG(t, texturedGray(64, 64, 5))
	store.put("a.png", data)
	env := fetchEnv(t, store)
	res := fetchRun(t, env, "{fingerprint: true, fingerprint_max_bytes: 100}")
	fps, reasons := fingerprintsByKey(t, res.Outputs["rows"])
	if len(fps) != 0 || !strings.Contains(reasons["a.png"], "fingerprint_max_bytes") {
		t.Errorf("fingerprints %d, reason %q", len(fps), reasons["a.png"])
	}
	if !strings.Contains(csvOf(t, selectCols(t, res.Outputs["rows"], "sha256")), sha256Hex(data)) {
		t.Errorf("sha256 of the capped body is wrong")
	}
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Byte-identical copies under other keys share one fingerprint, computed
// once in a run however many workers see them at the same time.
func TestFetchHashFingerprintSharedCopies(t *testing.T) {
	store := newMemStore()
	data := encodePNG(t, texturedGray(70, 50, 2))
	for _, k := range []string{"e1/a.png", "e2/a.png", "e3/copy.png"} {
		store.put(k, data)
	}
	store.put("other.png", encodePNG(t, texturedGray(70, 50, 3)))
	env := fetchEnv(t, store)
	res := fetchRun(t, env, "{fingerprint: true, concurrency: 4}")
	fps, _ := fingerprintsByKey(t, res.Outputs["rows"])
	want := wantFingerprint(t, data)
	for _, k := range []string{"e1/a.png", "e2/a.png", "e3/copy.png"} {
		if !bytes.Equal(fps[k], want) {
			t.Errorf("%s: fingerprint differs from neardup.FromBytes of its bytes", k)
		}
	}
	if bytes.Equal(fps["other.png"], want) || fps["other.png"] == nil {
		t.Errorf("other.png: fingerprint missing or equal to a.png's")
	}

	// In a synctest bubble the compute's sleep ends only once every other
	// lookup is blocked: all 64 overlap the first compute of their key.
	synctest.Test(t, func(t *testing.T) {
		m := newFingerprintMemo(nil)
		var computed atomic.Int32
		var wg sync.WaitGroup
		for i := range 64 {
			wg.Go(func() {
				k := [32]byte{byte(i % 4)}
				f := m.do(k, func() fingerprinted {
					computed.Add(1)
					time.Sleep(time.Millisecond)
					return fingerprinted{fp: []byte{k[0]}}
				})
				if len(f.fp) != 1 || f.fp[0] != k[0] {
					t.Errorf("key %d: got %v", k[0], f.fp)
				}
			})
		}
		wg.Wait()
		if n := computed.Load(); n != 4 {
			t.Errorf("64 lookups of 4 keys computed %d times, want 4", n)
		}
	})
}

// An outcome remembered under other caps is not reused where it may not
// hold: a reason given under a smaller fingerprint_max_bytes, for the
// object and for a copy under a new key (the memo answers from the
// store), nor a fingerprint for a body now over the cap.
func TestFetchHashFingerprintCapsChange(t *testing.T) {
	store := newMemStore()
	data := encodePNG(t, texturedGray(70, 50, 2))
	store.put("a.png", data)
	env := fetchEnv(t, store)
	env.StateDir = t.TempDir()
	small := "{fingerprint: true, fingerprint_max_bytes: 100}"
	if _, reasons := fingerprintsByKey(t, fetchRun(t, env, small).Outputs["rows"]); !strings.Contains(reasons["a.png"], "fingerprint_max_bytes (100") {
		t.Fatalf("a.png under a 100-byte cap: reason %q", reasons["a.png"])
	}
	store.put("copy/a.png", data)
	fps, reasons := fingerprintsByKey(t, fetchRun(t, env, "{fingerprint: true}").Outputs["rows"])
	want := wantFingerprint(t, data)
	for _, k := range []string{"a.png", "copy/a.png"} {
		if !bytes.Equal(fps[k], want) {
			t.Errorf("cap raised: %s: no fingerprint (reason %q)", k, reasons[k])
		}
	}
	fps, reasons = fingerprintsByKey(t, fetchRun(t, env, small).Outputs["rows"])
	for _, k := range []string{"a.png", "copy/a.png"} {
		if fps[k] != nil || !strings.Contains(reasons[k], "fingerprint_max_bytes (100") {
			t.Errorf("cap lowered again: %s: reason %q, fingerprint %v", k, reasons[k], fps[k] != nil)
		}
	}
}

// A worker whose fingerprinting panics (the run then fails) does not leave
// the workers waiting for the same content blocked.
func TestFingerprintMemoPanicReleasesWaiters(t *testing.T) {
	// synctest.Wait returns once the waiter is blocked on the computing
	// worker, so the panic always happens while someone waits.
	synctest.Test(t, func(t *testing.T) {
		m := newFingerprintMemo(nil)
		k := [32]byte{1}
		started, release := make(chan struct{}), make(chan struct{})
		go func() {
			defer func() { recover() }()
			m.do(k, func() fingerprinted {
				close(started)
				<-release
				panic("decoder bug")
			})
		}()
		<-started
		got := make(chan fingerprinted)
		go func() { got <- m.do(k, func() fingerprinted { t.Error("computed twice"); return fingerprinted{} }) }()
		synctest.Wait()
		close(release)
		select {
		case f := <-got:
			if f.fp != nil || !strings.Contains(f.reason, "failed") {
				t.Errorf("waiter got %+v, want a failure reason", f)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("waiter still blocked after the computing worker panicked")
		}
	})
}

// fingerprint_max_bytes decides whether an object gets a fingerprint or a
// reason, so it is part of what the cache keys the stage on; concurrency
// only changes how fast.
func TestFingerprintMaxBytesInCacheKey(t *testing.T) {
	p, err := decode(t, "fetch-hash", "{fingerprint: true, fingerprint_max_bytes: 100, concurrency: 3}")
	if err != nil {
		t.Fatal(err)
	}
	keyed := p.Fingerprinted()
	if v, ok := keyed["fingerprint_max_bytes"]; !ok || v != int64(100) {
		t.Errorf("fingerprint_max_bytes not in the cache key: %v", keyed)
	}
	if _, ok := keyed["concurrency"]; ok {
		t.Errorf("concurrency is in the cache key: %v", keyed)
	}
}
