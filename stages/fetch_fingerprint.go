package stages

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/atomicfile"
	"github.com/kneepipe/kneepipe/internal/neardup"
	"github.com/kneepipe/kneepipe/internal/safe"
	"github.com/kneepipe/kneepipe/internal/table"
)

// Columns fetch-hash adds with fingerprint: true.
const (
	colFingerprint      = "fingerprint"
	colFingerprintError = "fingerprint_error"
)

// fingerprintOpts says whether and how fetch-hash fingerprints the bodies
// it hashes. The zero value fingerprints nothing and keeps no bytes.
type fingerprintOpts struct {
	on        bool
	maxBytes  int64            // a longer body is not kept, so not fingerprinted
	maxPixels int64            // a header declaring more pixels is not decoded
	memo      *fingerprintMemo // one per run; nil: no sharing
}

// fingerprint is the outcome for a body whose SHA-256 is sha, computed
// once per distinct sha in a run (byte-identical copies are common: the
// same image under two experts' prefixes).
func (o fingerprintOpts) fingerprint(sha string, body *cappedBuffer) fingerprinted {
	k, ok := shaKey(sha)
	if o.memo == nil || !ok || body.overflow { // overflow: no decoding to share
		return body.fingerprint(o.maxPixels)
	}
	return o.memo.do(k, func() fingerprinted { return body.fingerprint(o.maxPixels) })
}

// fingerprintMemo shares fingerprints between a run's workers by content,
// singleflight-style: the first worker to see a sha computes, the others
// wait for it. It also answers from the store, for a copy under a new key
// of a body fingerprinted in an earlier run. It holds the same slices as
// the run's results, so it costs little memory of its own.
type fingerprintMemo struct {
	known map[[sha256.Size]byte]fingerprinted // the store's; read only during the run
	mu    sync.Mutex
	calls map[[sha256.Size]byte]*fingerprintCall
}

type fingerprintCall struct {
	done chan struct{}
	f    fingerprinted
}

func newFingerprintMemo(store *fingerprintStore) *fingerprintMemo {
	m := &fingerprintMemo{calls: map[[sha256.Size]byte]*fingerprintCall{}}
	if store != nil {
		m.known = store.byKey
	}
	return m
}

// do returns the outcome for k, calling compute only if no other worker
// has or is computing it.
func (m *fingerprintMemo) do(k [sha256.Size]byte, compute func() fingerprinted) fingerprinted {
	if f, ok := m.known[k]; ok {
		return f
	}
	m.mu.Lock()
	if c, ok := m.calls[k]; ok {
		m.mu.Unlock()
		<-c.done
		return c.f
	}
	c := &fingerprintCall{done: make(chan struct{}), f: fingerprinted{reason: "not fingerprinted: fingerprinting failed"}}
	m.calls[k] = c
	m.mu.Unlock()
	defer close(c.done) // waiters go on even if compute panics (the run then fails)
	c.f = compute()
	return c.f
}

// seen says whether k's outcome is known or being computed.
func (m *fingerprintMemo) seen(k [sha256.Size]byte) bool {
	if _, ok := m.known[k]; ok {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.calls[k]
	return ok
}

// outcome is k's outcome once every computation has ended.
func (m *fingerprintMemo) outcome(k [sha256.Size]byte) fingerprinted {
	if f, ok := m.known[k]; ok {
		return f
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[k].f
}

// fingerprinted is the outcome for one body: the encoded fingerprint, or
// why there is none.
type fingerprinted struct {
	fp     []byte // neardup.EncodedSize bytes; nil with reason set
	reason string
}

// cappedBuffer keeps a copy of the bytes written to it up to a cap; past
// the cap it drops them and remembers that it overflowed. Its storage is
// reused from body to body.
type cappedBuffer struct {
	b        []byte
	max      int64
	overflow bool
}

// reset empties the buffer for a body of size bytes (the listing's): one
// that cannot fit overflows at once, one that can gets the room for it.
func (c *cappedBuffer) reset(size int64) {
	c.b, c.overflow = c.b[:0], size > c.max
	if !c.overflow && int64(cap(c.b)) < size {
		c.b = make([]byte, 0, size)
	}
}

// spare is the room left before the cap, to read into.
func (c *cappedBuffer) spare() []byte {
	if c.overflow {
		return nil
	}
	return c.b[len(c.b):min(int64(cap(c.b)), c.max)]
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if !c.overflow {
		if int64(len(c.b)+len(p)) > c.max {
			c.overflow, c.b = true, c.b[:0]
		} else {
			c.b = append(c.b, p...)
		}
	}
	return len(p), nil
}

// fingerprint decodes the kept body (never one whose header declares more
// than maxPixels: imagedecode checks before allocating) and fingerprints it.
func (c *cappedBuffer) fingerprint(maxPixels int64) fingerprinted {
	if c.overflow {
		return fingerprinted{reason: fmt.Sprintf("not fingerprinted: more than fingerprint_max_bytes (%d bytes)", c.max)}
	}
	fp, err := neardup.FromBytes(c.b, maxPixels)
	if err != nil {
		return fingerprinted{reason: "not fingerprinted: " + err.Error()}
	}
	b, err := fp.MarshalBinary()
	if err != nil {
		return fingerprinted{reason: "not fingerprinted: " + err.Error()}
	}
	return fingerprinted{fp: b}
}

// fingerprintStore remembers fingerprints by content (the object's
// SHA-256) under the stage's state dir: 4.4 KB a fingerprint is too much for
// the JSON record of hashed objects, and an object renamed or copied keeps
// its fingerprint. They live in one binary file of records, read whole at
// the start of a run and rewritten (temporary file, then rename) at its end
// when anything changed: one sequential write instead of a file per object.
// Each record carries a CRC-32C, so a damaged record reads as missing (its
// object is fetched again) and a torn tail is dropped.
//
// A reason may depend on the caps (fingerprint_max_bytes, max_pixels): the
// file records the caps it was written under, and reasons remembered under
// other caps are dropped (see forCaps).
type fingerprintStore struct {
	path  string
	byKey map[[sha256.Size]byte]fingerprinted
	dirty bool
	caps  storeCaps // the file's, then (forCaps) this run's
}

// storeCaps are the caps an outcome was computed under.
type storeCaps struct{ maxPixels, maxBytes int64 }

// Record layout: sha (32 bytes), kind (1), payload length (uint32 BE),
// payload, CRC-32C of all that (uint32 BE).
const (
	fpKindPrint  = 'F' // payload: neardup.Fingerprint.MarshalBinary
	fpKindReason = 'R' // payload: why the body has no fingerprint (UTF-8)
	fpKindCaps   = 'C' // sha zero, payload: storeCaps (2 × int64 BE), first
	fpHeaderLen  = sha256.Size + 1 + 4
	fpMaxPayload = neardup.EncodedSize
	fpStoreFile  = "fingerprints"
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// newFingerprintStore reads what earlier runs remembered; damage costs only
// the objects whose records are damaged (logged).
func newFingerprintStore(env *Env) (*fingerprintStore, error) {
	s := &fingerprintStore{path: filepath.Join(env.StateDir, fpStoreFile), byKey: map[[sha256.Size]byte]fingerprinted{}}
	if env.Forced {
		return s, nil
	}
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fingerprint store: %w", err)
	}
	defer f.Close()
	damaged, err := s.read(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		return nil, fmt.Errorf("fingerprint store %s: %w", s.path, err)
	}
	if damaged > 0 {
		env.Log.Warn("skipped damaged records in the fingerprint store; those objects are fetched again", "records", damaged)
		s.dirty = true
	}
	return s, nil
}

// read loads records until the end; a record whose checksum fails is
// skipped, and an implausible length or a short tail ends the reading
// (counted as one damaged record).
func (s *fingerprintStore) read(r io.Reader) (damaged int, err error) {
	var head [fpHeaderLen]byte
	buf := make([]byte, fpMaxPayload+4)
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return damaged, nil
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return damaged + 1, nil
			}
			return damaged, err
		}
		n := binary.BigEndian.Uint32(head[sha256.Size+1:])
		if n > fpMaxPayload {
			return damaged + 1, nil
		}
		rec := buf[:n+4]
		if _, err := io.ReadFull(r, rec); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return damaged + 1, nil
			}
			return damaged, err
		}
		sum := crc32.Update(crc32.Checksum(head[:], crc32c), crc32c, rec[:n])
		if sum != binary.BigEndian.Uint32(rec[n:]) {
			damaged++
			continue
		}
		var key [sha256.Size]byte
		copy(key[:], head[:])
		switch payload := rec[:n]; head[sha256.Size] {
		case fpKindPrint:
			var fp neardup.Fingerprint
			if fp.UnmarshalBinary(payload) != nil { // another encoding version: compute again
				s.dirty = true
				continue
			}
			s.byKey[key] = fingerprinted{fp: bytes.Clone(payload)}
		case fpKindReason:
			s.byKey[key] = fingerprinted{reason: string(payload)}
		case fpKindCaps:
			if n != 16 {
				damaged++
				continue
			}
			s.caps = storeCaps{int64(binary.BigEndian.Uint64(payload)), int64(binary.BigEndian.Uint64(payload[8:]))}
		default:
			damaged++
		}
	}
}

// forCaps keeps what holds under this run's caps: a fingerprint of at most
// maxPixels pixels (one over maxBytes is refused by lookup, which knows
// the size), a reason only if the caps are the same as when it was given
// (a body too large or refused as damaged may decode under larger caps).
func (s *fingerprintStore) forCaps(o fingerprintOpts) {
	c := storeCaps{o.maxPixels, o.maxBytes}
	if s == nil || s.caps == c {
		return
	}
	for k, f := range s.byKey {
		var fp neardup.Fingerprint
		if f.fp == nil || fp.UnmarshalBinary(f.fp) != nil || int64(fp.Width)*int64(fp.Height) > c.maxPixels {
			delete(s.byKey, k)
		}
	}
	s.caps, s.dirty = c, true
}

func shaKey(sha string) ([sha256.Size]byte, bool) {
	var k [sha256.Size]byte
	b, err := hex.DecodeString(sha)
	if err != nil || len(b) != sha256.Size {
		return k, false
	}
	copy(k[:], b)
	return k, true
}

// lookup says what is remembered for an unchanged object: with
// fingerprints off there is nothing to remember (have is true); with them
// on, have is false when the store holds nothing verified for the sha.
func (s *fingerprintStore) lookup(on bool, sha string, size int64) (f fingerprinted, have bool) {
	if !on {
		return fingerprinted{}, true
	}
	if s == nil {
		return fingerprinted{}, false
	}
	k, ok := shaKey(sha)
	if !ok {
		return fingerprinted{}, false
	}
	f, have = s.byKey[k]
	if have && f.fp != nil && size > s.caps.maxBytes { // fingerprinted under a larger cap
		return fingerprinted{}, false
	}
	return f, have
}

// remember adds the outcome of every object fetched in this run.
func (s *fingerprintStore) remember(results []fetched, fetchedNow []int) error {
	if s == nil {
		return nil
	}
	for _, i := range fetchedNow {
		r := results[i]
		if r.err != nil {
			continue
		}
		k, ok := shaKey(r.sha)
		if !ok {
			return fmt.Errorf("fingerprint store: sha256 %q is not 64 hex digits", r.sha)
		}
		s.byKey[k] = r.fp
		s.dirty = true
	}
	return nil
}

// pruneTo keeps the store to the contents listed now (deleted objects
// leave it, as they leave the record of hashed objects) and writes it
// when anything changed, records in listing order.
func (s *fingerprintStore) pruneTo(results []fetched) error {
	if s == nil {
		return nil
	}
	keep := make(map[[sha256.Size]byte]bool, len(results))
	var order [][sha256.Size]byte
	for _, r := range results {
		if r.err != nil {
			continue
		}
		if k, ok := shaKey(r.sha); ok && !keep[k] {
			if _, have := s.byKey[k]; have {
				keep[k] = true
				order = append(order, k)
			}
		}
	}
	if len(keep) != len(s.byKey) {
		s.dirty = true
	}
	if !s.dirty {
		return nil
	}
	if err := s.write(order); err != nil {
		return fmt.Errorf("fingerprint store: %w", err)
	}
	s.dirty = false
	return nil
}

// write replaces the store file. Unsynced, as before: every record carries
// a CRC-32C, and a torn tail is dropped when the store is read.
func (s *fingerprintStore) write(order [][sha256.Size]byte) error {
	return atomicfile.WriteUnsynced(s.path, func(out io.Writer) error {
		w := bufio.NewWriterSize(out, 1<<16)
		var head [fpHeaderLen]byte
		var tail [4]byte
		record := func(k [sha256.Size]byte, kind byte, payload []byte) {
			copy(head[:], k[:])
			head[sha256.Size] = kind
			binary.BigEndian.PutUint32(head[sha256.Size+1:], uint32(len(payload)))
			binary.BigEndian.PutUint32(tail[:], crc32.Update(crc32.Checksum(head[:], crc32c), crc32c, payload))
			w.Write(head[:])
			w.Write(payload)
			w.Write(tail[:])
		}
		caps := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(s.caps.maxPixels)), uint64(s.caps.maxBytes))
		record([sha256.Size]byte{}, fpKindCaps, caps)
		for _, k := range order {
			f := s.byKey[k]
			if f.fp != nil {
				record(k, fpKindPrint, f.fp)
			} else {
				record(k, fpKindReason, []byte(f.reason)[:min(len(f.reason), fpMaxPayload)])
			}
		}
		return w.Flush()
	})
}

// fingerprintColumns collects the fingerprint and fingerprint_error
// columns row by row.
type fingerprintColumns struct {
	fps     [][]byte
	reasons []string
}

func (c *fingerprintColumns) add(f fingerprinted) {
	c.fps, c.reasons = append(c.fps, f.fp), append(c.reasons, f.reason)
}

// columns makes the two columns. The fingerprints are copied once into a
// buffer of their own, wrapped as the binary column's values: an Arrow
// builder would clear its reserved ~4.4 KB a row first, a cost at the end
// of the stage, when nothing else runs beside it.
func (c *fingerprintColumns) columns(mem memory.Allocator) ([]table.Column, error) {
	size := 0
	for _, fp := range c.fps {
		size += len(fp)
	}
	if size > math.MaxInt32 { // the offsets are int32
		return nil, fmt.Errorf("fingerprint column: %d bytes of fingerprints, more than a binary column holds (2 GiB)", size)
	}
	n := len(c.fps)
	data := make([]byte, 0, size)
	offsets := make([]int32, n+1)
	valid := make([]byte, bitutil.BytesForBits(int64(n)))
	nulls := 0
	eb := array.NewStringBuilder(mem)
	defer eb.Release()
	for i, fp := range c.fps {
		if fp == nil {
			nulls++
			eb.Append(c.reasons[i])
		} else {
			bitutil.SetBit(valid, i)
			data = append(data, fp...)
			eb.AppendNull()
		}
		offsets[i+1] = int32(len(data))
	}
	d := array.NewData(arrow.BinaryTypes.Binary, n, []*memory.Buffer{memory.NewBufferBytes(valid),
		memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(offsets)), memory.NewBufferBytes(data)}, nil, nulls, 0)
	defer d.Release()
	return []table.Column{{Name: colFingerprint, Array: array.MakeFromData(d)}, {Name: colFingerprintError, Array: eb.NewArray()}}, nil
}

// fingerprintPool fingerprints the bodies the fetch workers kept, on
// GOMAXPROCS workers of its own: the fetch workers go on to their next GET
// (the connection released, the latency the hedges learn from not counting
// the decode), at most one decode runs per CPU (its decoder state stays in
// the cache, and only these goroutines' stacks grow), and a copy of a body
// already fingerprinted in this run or an earlier one is never queued.
// Memory: the queue holds at most GOMAXPROCS bodies, each worker one.
type fingerprintPool struct {
	opts    fingerprintOpts
	results []fetched // the run's, each written by its fetch worker before it is queued
	bodies  *sync.Pool
	jobs    chan fingerprintJob
	workers *safe.Group
	mu      sync.Mutex
	copies  []int // results whose content was seen: filled from the memo at the end
}

type fingerprintJob struct {
	i    int
	body *cappedBuffer
}

func startFingerprints(o fingerprintOpts, results []fetched, bodies *sync.Pool, cancel context.CancelCauseFunc) *fingerprintPool {
	n := runtime.GOMAXPROCS(0)
	p := &fingerprintPool{opts: o, results: results, bodies: bodies, jobs: make(chan fingerprintJob, n), workers: safe.NewGroup(cancel)}
	for range n {
		p.workers.Go(func() {
			for j := range p.jobs {
				p.results[j.i].fp = o.fingerprint(p.results[j.i].sha, j.body)
				p.bodies.Put(j.body)
			}
		})
	}
	return p
}

// add fingerprints results[i] from body, which it takes; results[i] is
// not written again by the caller.
func (p *fingerprintPool) add(ctx context.Context, i int, body *cappedBuffer) {
	if k, ok := shaKey(p.results[i].sha); ok && !body.overflow && p.opts.memo.seen(k) {
		p.bodies.Put(body)
		p.mu.Lock()
		p.copies = append(p.copies, i)
		p.mu.Unlock()
		return
	}
	select {
	case p.jobs <- fingerprintJob{i, body}:
	case <-ctx.Done(): // the run fails
	}
}

// wait fingerprints what is queued and fills in the copies; add must not
// be called any more.
func (p *fingerprintPool) wait() error {
	close(p.jobs)
	err := p.workers.Wait()
	for _, i := range p.copies {
		k, _ := shaKey(p.results[i].sha)
		p.results[i].fp = p.opts.memo.outcome(k)
	}
	return err
}
