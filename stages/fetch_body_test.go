package stages

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/kneepipe/kneepipe/internal/imagecache"
)

// With fingerprints on, a body is read straight into the copy to decode
// (in pieces of any size), hashed from there, and leaves with the result
// for the fingerprint pool: the next body goes to another buffer. A body
// longer than fingerprint_max_bytes keeps no copy but is hashed whole.
func TestDualHashKeepsBodyForPool(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 5000)
	bodies := &sync.Pool{New: func() any { return &cappedBuffer{max: int64(len(data))} }}
	h := newDualHash(fingerprintOpts{on: true, maxBytes: int64(len(data))}, imagecache.Cache{}, bodies)
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	r, err := h.object(iotest.HalfReader(bytes.NewReader(data)), hashed{Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	if r.sha != want || r.body == nil || !bytes.Equal(r.body.b, data) || r.body.overflow {
		t.Fatalf("sha %s (want %s), kept body %v", r.sha, want, r.body != nil)
	}
	if h.body == r.body {
		t.Fatal("the dualHash kept the body it handed out")
	}

	long := append(bytes.Clone(data), 'x')
	sum = sha256.Sum256(long)
	r2, err := h.object(iotest.OneByteReader(bytes.NewReader(long)), hashed{Size: int64(len(long))})
	if err != nil {
		t.Fatal(err)
	}
	if r2.sha != hex.EncodeToString(sum[:]) || !r2.body.overflow || len(r2.body.b) != 0 {
		t.Fatalf("over the cap: sha ok %v, overflow %v, kept %d bytes", r2.sha == hex.EncodeToString(sum[:]), r2.body.overflow, len(r2.body.b))
	}
	if !bytes.Equal(r.body.b, data) {
		t.Fatal("the first body was overwritten by the second")
	}
}

// A copy of content the run has already seen is answered from the memo
// once the queued work is done.
func TestFingerprintPoolAnswersCopiesFromMemo(t *testing.T) {
	k := [32]byte{7}
	sha := hex.EncodeToString(k[:])
	memo := newFingerprintMemo(nil)
	memo.do(k, func() fingerprinted { return fingerprinted{fp: []byte{1, 2, 3}} })
	results := []fetched{{sha: sha}, {sha: sha}}
	bodies := &sync.Pool{New: func() any { return &cappedBuffer{max: 10} }}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	p := startFingerprints(fingerprintOpts{on: true, maxBytes: 10, memo: memo}, results, bodies, cancel)
	body := &cappedBuffer{max: 10, b: []byte("not a png")}
	p.add(ctx, 1, body) // "not a png": decoded, it would get a reason
	if err := p.wait(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(results[1].fp.fp, []byte{1, 2, 3}) {
		t.Fatalf("copy got %+v, want the memo's fingerprint", results[1].fp)
	}
}
