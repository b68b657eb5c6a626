package stages

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/kneepipe/kneepipe/internal/imagecache"
	"github.com/kneepipe/kneepipe/internal/journal"
	"github.com/kneepipe/kneepipe/internal/safe"
	"github.com/kneepipe/kneepipe/internal/source"
	"github.com/kneepipe/kneepipe/internal/table"
)

// Checkpoints: the record of hashed objects reaches the disk at least every
// checkpointEvery objects or checkpointInterval, so a killed run loses at
// most that much work.
const (
	checkpointEvery    = 256
	checkpointInterval = time.Second
)

func fetchHashKind() Kind {
	return Kind{
		Name:   "fetch-hash",
		Doc:    "Downloads every listed object once, hashing the stream with SHA-256 and MD5 together; file_id = <sha256>:<md5>. Rows stay in listing order.",
		Source: true,
		Inputs: []Port{{"objects", "a list stage's output (key and size columns)"}},
		Outputs: []Port{
			{"rows", "the input rows with sha256, md5, file_id and the PNG header's width, height, bit_depth, color_type (null when not a PNG); with fingerprint: true also fingerprint (binary, null when the bytes do not decode as an image) and fingerprint_error (why not, else null)"},
			{"failed", "key, error, attempts: objects that could not be fetched"},
			{"rejected", "key, reason: objects fetched but unusable (empty; not a PNG with expect: png)"},
		},
		Params: []Param{
			{Name: "concurrency", Type: Int, Default: int64(64), Min: 1, Max: 1024, Tuning: true, Doc: "parallel downloads"},
			{Name: "attempts", Type: Int, Default: int64(4), Min: 1, Max: 20, Tuning: true, Doc: "tries per object, backing off exponentially between them"},
			{Name: "fail_fast", Type: Bool, Default: false, Tuning: true, Doc: "stop the run at the first object that fails for good"},
			{Name: "stall_timeout", Type: Duration, Default: 30 * time.Second, Tuning: true, Doc: "give up an attempt when no byte arrives for this long"},
			{Name: "expect", Type: String, Default: "png", Enum: []string{"png", "any"}, Doc: "png: reject objects whose bytes are not a PNG; any: accept all non-empty objects"},
			{Name: "max_pixels", Type: Int, Default: int64(maxPixelsDefault), Min: 1, Max: 1 << 40, Doc: "reject a PNG whose header declares more pixels (width × height): no later stage should decode it"},
			{Name: "fingerprint", Type: Bool, Default: false, Doc: "also fingerprint each image (PNG or JPEG) for near-duplicates from the bytes already read for hashing: no second GET; remembered by content between runs"},
			{Name: "fingerprint_max_bytes", Type: Int, Default: int64(64 << 20), Min: 1, Max: 1 << 40, Doc: "keep at most this many bytes of a body to fingerprint or keep (memory: (concurrency + 2 × CPUs) × this at worst); a longer object gets no fingerprint, with a reason, and is not kept"},
			{Name: "keep_images", Type: Bool, Default: false, Tuning: true, Doc: "write each verified body into the image cache under --cache that export and report read, so that they download nothing again: one GET per object"},
		},
		Connections: func(p Params) int { return int(p.Int("concurrency")) },
		New: func(p Params) (Stage, error) {
			return &fetchHash{
				concurrency: int(p.Int("concurrency")),
				retry:       source.Retry{Attempts: int(p.Int("attempts")), Stall: p.Duration("stall_timeout")},
				failFast:    p.Bool("fail_fast"),
				pngOnly:     p.Str("expect") == "png",
				keepImages:  p.Bool("keep_images"),
				maxPixels:   p.Int("max_pixels"),
				fp: fingerprintOpts{
					on:        p.Bool("fingerprint"),
					maxBytes:  p.Int("fingerprint_max_bytes"),
					maxPixels: p.Int("max_pixels"),
				},
			}, nil
		},
		Schema:   fetchHashSchema,
		RunStats: []string{"downloaded", "changed", "hedged", "hedges_won", "retried", "throttled"},

		PerObject: true, // a sharded run fetches each shard's objects apart
	}
}

// Columns fetch-hash adds that the report reads when present.
const (
	colSHA256    = "sha256"
	colWidth     = "width"
	colHeight    = "height"
	colBitDepth  = "bit_depth"
	colColorType = "color_type"
)

// fetchHashCols are the columns fetch-hash adds to its input's rows, in
// order.
func fetchHashCols() []Col {
	return []Col{
		{colSHA256, StringType}, {"md5", StringType}, {"file_id", StringType},
		{colWidth, Int64Type}, {colHeight, Int64Type}, {colBitDepth, Int64Type}, {colColorType, Int64Type},
	}
}

func fetchHashSchema(p Params, in map[string]Schema) (map[string]Schema, error) {
	for _, c := range []string{"key", colSize} {
		want, _, _ := listSchema().Lookup(c)
		if err := need(in, "objects", "", 0, c, want.Type); err != nil {
			return nil, err
		}
	}
	cols := fetchHashCols()
	if p.Bool("fingerprint") {
		cols = append(cols, Col{colFingerprint, BinaryType}, Col{colFingerprintError, StringType})
	}
	rows, err := in["objects"].Append(cols...)
	if err != nil {
		return nil, &InputError{Input: "objects", Msg: err.Error()}
	}
	return map[string]Schema{
		"rows":     rows,
		"failed":   Closed(Col{"key", StringType}, Col{"error", StringType}, Col{"attempts", Int64Type}),
		"rejected": Closed(Col{"key", StringType}, Col{"reason", StringType}),
	}, nil
}

type fetchHash struct {
	concurrency int
	retry       source.Retry
	failFast    bool
	pngOnly     bool
	maxPixels   int64
	keepImages  bool
	fp          fingerprintOpts
}

type fetched struct {
	sha, md5 string
	png      pngHeader
	fp       fingerprinted // with fingerprint: true
	body     *cappedBuffer // with fingerprint: true, the bytes to fingerprint, until queued
	err      error
	keepErr  error // the body could not be written to the image cache
	attempts int   // 0: taken from the record of an earlier run
}

// hashed is what fetch-hash remembers of an object between runs (in
// Env.StateDir): an object whose key, size, ETag and last-modified time
// are unchanged is not downloaded again.
type hashed struct {
	Key      string    `json:"k"`
	Size     int64     `json:"s"`
	ETag     string    `json:"e"`
	Modified int64     `json:"m"` // microseconds since the epoch
	SHA256   string    `json:"sha256"`
	MD5      string    `json:"md5"`
	PNG      pngHeader `json:"png"`
}

func (h hashed) same(o hashed) bool {
	return h.Key == o.Key && h.Size == o.Size && h.ETag == o.ETag && h.Modified == o.Modified
}

// loadHashed reads the record of earlier runs, keyed by object key.
func loadHashed(env *Env) map[string]hashed {
	out := map[string]hashed{}
	if env.StateDir == "" || env.Forced {
		return out
	}
	damaged, err := journal.Load(env.StateDir, func(raw json.RawMessage) error {
		var h hashed
		if err := json.Unmarshal(raw, &h); err != nil {
			return nil
		}
		out[h.Key] = h
		return nil
	})
	if err != nil {
		env.Log.Warn("record of hashed objects unreadable; fetching everything", "err", err)
		return map[string]hashed{}
	}
	if damaged > 0 {
		env.Log.Warn("skipped damaged lines in the record of hashed objects; those objects are fetched again", "lines", damaged)
	}
	return out
}

func (s *fetchHash) Run(ctx context.Context, env *Env, in map[string]arrow.RecordBatch) (res *Result, err error) {
	if env.Store == nil {
		return nil, errors.New("the pipeline has no source: set source.uri or pass --source")
	}
	objects, err := input(in, "objects")
	if err != nil {
		return nil, err
	}
	keys, err := table.StringCol(objects, "key")
	if err != nil {
		return nil, err
	}
	sizes, err := table.Int64Col(objects, "size")
	if err != nil {
		return nil, err
	}
	n := keys.Len()
	results := make([]fetched, n)
	ident := objectIdentities(objects, keys, sizes)

	// Reuse the hashes of unchanged objects; fetch the rest.
	// With fingerprints on, an unchanged object whose fingerprint is not
	// remembered is fetched again.
	previous := loadHashed(env)
	var fps *fingerprintStore
	if s.fp.on && env.StateDir != "" {
		if fps, err = newFingerprintStore(env); err != nil {
			return nil, err
		}
		fps.forCaps(s.fp)
	}
	var todo []int
	for i := range n {
		if p, ok := previous[ident[i].Key]; ok && p.same(ident[i]) {
			r := fetched{sha: p.SHA256, md5: p.MD5, png: p.PNG}
			var have bool
			if r.fp, have = fps.lookup(s.fp.on, p.SHA256, p.Size); have {
				results[i] = r
				continue
			}
		}
		todo = append(todo, i)
	}
	var record *journal.Writer
	if env.StateDir != "" {
		if record, err = journal.Append(env.StateDir, checkpointEvery, checkpointInterval); err != nil {
			return nil, fmt.Errorf("record of hashed objects: %w", err)
		}
		defer record.Close()
	}
	env.Log.Info("fetching", "objects", len(todo), "unchanged", n-len(todo))
	progress := env.Progress("fetch", len(todo))
	defer progress.Done()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The workers share one Tail: slow GETs are hedged, throttling lowers
	// their concurrency. A hedge reads alongside its request, each into a
	// hash of its own (and writes the image cache atomically: a hedge and its
	// request may both keep the same body).
	retry := s.retry
	retry.Tail = source.NewTail(s.concurrency)
	var keep imagecache.Cache // Dir "": keep nothing
	if s.keepImages {
		keep.Dir = env.ImageCache
	}
	fpo := s.fp
	bodies := &sync.Pool{New: func() any { return &cappedBuffer{max: fpo.maxBytes} }}
	var prints *fingerprintPool
	if fpo.on {
		fpo.memo = newFingerprintMemo(fps)
		prints = startFingerprints(fpo, results, bodies, cancel)
	}
	hashes := sync.Pool{New: func() any { return newDualHash(fpo, keep, bodies) }}
	next := make(chan int)
	workers := safe.NewGroup(cancel)
	for range min(s.concurrency, max(len(todo), 1)) {
		workers.Go(func() {
			for i := range next {
				r := fetchOne(ctx, env, retry, &hashes, ident[i])
				body := r.body
				r.body = nil
				results[i] = r
				if body != nil {
					prints.add(ctx, i, body) // writes results[i].fp
				}
				if r.keepErr != nil {
					env.Log.Warn("image not kept; export fetches it again", "key", keys.Value(i), "err", r.keepErr)
				}
				switch {
				case r.err != nil && s.failFast:
					cancel(fmt.Errorf("fetch %s: %w", keys.Value(i), r.err))
				case r.err == nil && record != nil:
					rec := ident[i]
					rec.SHA256, rec.MD5, rec.PNG = r.sha, r.md5, r.png
					if err := record.Add(rec); err != nil {
						cancel(fmt.Errorf("record of hashed objects: %w", err))
					}
				}
				progress.Add(1)
			}
		})
	}
feed:
	for _, i := range todo {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	err = workers.Wait()
	if prints != nil {
		if perr := prints.wait(); err == nil {
			err = perr
		}
	}
	if err != nil {
		return nil, err
	}
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	if err := fps.remember(results, todo); err != nil {
		return nil, err
	}
	if record != nil {
		if err := record.Close(); err != nil {
			return nil, fmt.Errorf("record of hashed objects: %w", err)
		}
		// Keep the record to the objects listed now: deleted ones leave it.
		var keep []hashed
		for i, r := range results {
			if r.err == nil {
				rec := ident[i]
				rec.SHA256, rec.MD5, rec.PNG = r.sha, r.md5, r.png
				keep = append(keep, rec)
			}
		}
		// Written while the result is assembled (both only read results):
		// with fingerprints, the store's ~4.4 MB and the result's columns
		// are each several ms at the end of the stage, when little else runs.
		var storeErr error
		g := safe.NewGroup(nil)
		g.Go(func() {
			if err := journal.Compact(env.StateDir, keep); err != nil {
				storeErr = fmt.Errorf("record of hashed objects: %w", err)
				return
			}
			storeErr = fps.pruneTo(results)
		})
		defer func() {
			if werr := g.Wait(); werr != nil {
				storeErr = werr
			}
			if err == nil && storeErr != nil {
				for _, rec := range res.Outputs {
					rec.Release()
				}
				res, err = nil, storeErr
			}
		}()
	}
	st := retry.Tail.Stats()
	if st.Throttled > 0 {
		env.Log.Info("throttled", "answers", st.Throttled, "lowest_concurrency", st.LowestLimit)
	}
	return s.result(ctx, env, objects, keys, results, st)
}

// objectIdentities reads what identifies each listed object's content
// without downloading it. ETag and last-modified are optional columns.
func objectIdentities(objects arrow.RecordBatch, keys *table.StringCells, sizes *array.Int64) []hashed {
	out := make([]hashed, keys.Len())
	etags, _ := table.StringCol(objects, "etag")
	var mtimes *array.Timestamp
	if i, err := table.Index(objects, "last_modified"); err == nil {
		mtimes, _ = objects.Column(i).(*array.Timestamp)
	}
	for i := range out {
		out[i] = hashed{Key: keys.Value(i), Size: sizes.Value(i)}
		if etags != nil {
			out[i].ETag = etags.Value(i)
		}
		if mtimes != nil {
			out[i].Modified = int64(mtimes.Value(i))
		}
	}
	return out
}

// fetchOne downloads and hashes one object through the retrying reader.
// An answer that brings another version than the listing's (the object
// was overwritten since) is refused before its bytes are read: its hash
// would be attributed to the listed version.
func fetchOne(ctx context.Context, env *Env, retry source.Retry, hashes *sync.Pool, obj hashed) fetched {
	listed := source.Object{Key: obj.Key, Size: obj.Size, ETag: obj.ETag}
	if obj.Modified != 0 {
		listed.LastModified = time.UnixMicro(obj.Modified).UTC()
	}
	r, attempts, err := source.Fetch(ctx, retry, env.Store, obj.Key, func(body io.Reader, v source.Version) (fetched, error) {
		if err := source.Changed(listed, v); err != nil {
			return fetched{}, err
		}
		h := hashes.Get().(*dualHash)
		defer hashes.Put(h)
		return h.object(body, obj)
	})
	if err != nil {
		return fetched{err: err, attempts: attempts}
	}
	r.attempts = attempts
	return r
}

// dualHash streams a body through SHA-256 and MD5 at once with one reused
// buffer, keeping the first bytes for the PNG header: an object is never
// held in memory whole, except (with fingerprints on or keep_images) a copy
// of at most fingerprint_max_bytes to decode or keep once the hashes check
// out. That copy is read into directly and hashed from there: no second
// copy of the bytes.
type dualHash struct {
	sha, md5 hash.Hash
	head     headBuffer
	body     *cappedBuffer // nil: no fingerprints, nothing kept
	bodies   *sync.Pool    // of *cappedBuffer: a kept body to fingerprint leaves with the result
	fp       fingerprintOpts
	keep     imagecache.Cache
	buf      []byte
}

func newDualHash(fp fingerprintOpts, keep imagecache.Cache, bodies *sync.Pool) *dualHash {
	h := &dualHash{sha: sha256.New(), md5: md5.New(), buf: make([]byte, 64<<10), fp: fp, keep: keep, bodies: bodies}
	if fp.on || keep.Dir != "" {
		h.body = bodies.Get().(*cappedBuffer)
	}
	return h
}

// object hashes one attempt's body. A byte count that differs from the
// listing, or an MD5 that differs from a plain-MD5 ETag, is an error (and
// so retried).
func (h *dualHash) object(body io.Reader, obj hashed) (fetched, error) {
	h.sha.Reset()
	h.md5.Reset()
	h.head.n = 0
	if h.body != nil {
		h.body.reset(obj.Size)
	}
	got, err := h.read(body)
	if err != nil {
		return fetched{}, fmt.Errorf("read body: %w", err)
	}
	if got != obj.Size {
		return fetched{}, fmt.Errorf("got %d bytes, listing says %d", got, obj.Size)
	}
	md := hex.EncodeToString(h.md5.Sum(nil))
	if plainMD5ETag(obj.ETag) && !strings.EqualFold(obj.ETag, md) {
		return fetched{}, fmt.Errorf("MD5 %s differs from ETag %s: body damaged in transit", md, obj.ETag)
	}
	r := fetched{sha: hex.EncodeToString(h.sha.Sum(nil)), md5: md, png: parsePNGHeader(h.head.bytes())}
	if h.keep.Dir != "" && !h.body.overflow {
		// The SHA-256 was just computed from these bytes: the body is
		// filed under it as is.
		r.keepErr = h.keep.Put(r.sha, h.body.b)
	}
	if h.fp.on { // fingerprinted by the run's pool, after the GET
		r.body, h.body = h.body, h.bodies.Get().(*cappedBuffer)
	}
	return r, nil
}

// read hashes body to its end, reading into the kept copy while it has
// room and through the scratch buffer otherwise.
func (h *dualHash) read(body io.Reader) (int64, error) {
	var total int64
	for {
		p, direct := h.buf, false
		if h.body != nil {
			if spare := h.body.spare(); len(spare) > 0 {
				p, direct = spare, true
			}
		}
		n, err := body.Read(p)
		if n > 0 {
			b := p[:n]
			h.sha.Write(b)
			h.md5.Write(b)
			h.head.Write(b)
			switch {
			case direct:
				h.body.b = h.body.b[:len(h.body.b)+n]
			case h.body != nil:
				h.body.Write(b)
			}
			total += int64(n)
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// plainMD5ETag says whether an ETag is an object's MD5: single-part
// uploads give 32 hex digits; multipart ones add "-N".
func plainMD5ETag(etag string) bool {
	if len(etag) != 32 {
		return false
	}
	_, err := hex.DecodeString(etag)
	return err == nil
}

// headBuffer keeps the first bytes written to it.
type headBuffer struct {
	b [pngHeaderLen]byte
	n int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.n += copy(h.b[h.n:], p)
	return len(p), nil
}

func (h *headBuffer) bytes() []byte { return h.b[:h.n] }

// pngHeaderLen is the signature plus the IHDR chunk up to its colour type.
const pngHeaderLen = 8 + 8 + 10

// pngHeader holds the facts of a PNG's IHDR chunk; OK is false for bytes
// that are not a PNG.
type pngHeader struct {
	OK        bool  `json:"ok,omitempty"`
	Width     int64 `json:"w,omitempty"`
	Height    int64 `json:"h,omitempty"`
	BitDepth  int64 `json:"d,omitempty"`
	ColorType int64 `json:"c,omitempty"`
}

func parsePNGHeader(b []byte) pngHeader {
	const sig = "\x89PNG\r\n\x1a\n"
	if len(b) < pngHeaderLen || string(b[:8]) != sig || string(b[12:16]) != "IHDR" {
		return pngHeader{}
	}
	be := func(x []byte) int64 { return int64(x[0])<<24 | int64(x[1])<<16 | int64(x[2])<<8 | int64(x[3]) }
	return pngHeader{OK: true, Width: be(b[16:20]), Height: be(b[20:24]), BitDepth: int64(b[24]), ColorType: int64(b[25])}
}

func (s *fetchHash) result(ctx context.Context, env *Env, objects arrow.RecordBatch, keys *table.StringCells, results []fetched, tail source.TailStats) (*Result, error) {
	var ok []int
	var downloaded, changed int64
	var shas, mds, ids, failedKeys, failedErrs, rejKeys, rejReasons []string
	var failedAttempts []int64
	var failures []Failure
	var png [4][]int64
	var pngValid []bool
	var fpCol fingerprintColumns
	sizes, err := table.Int64Col(objects, "size")
	if err != nil {
		return nil, err
	}
	for i, r := range results {
		if r.err != nil {
			if errors.Is(r.err, source.ErrChanged) {
				changed++
			}
			failedKeys = append(failedKeys, keys.Value(i))
			failedErrs = append(failedErrs, r.err.Error())
			failedAttempts = append(failedAttempts, int64(r.attempts))
			failures = append(failures, Failure{Key: keys.Value(i), Err: r.err, Attempts: r.attempts})
			env.Log.Warn("fetch failed", "key", keys.Value(i), "attempts", r.attempts, "err", r.err)
			continue
		}
		if r.attempts > 0 {
			downloaded++
		}
		switch {
		case sizes.Value(i) == 0:
			rejKeys, rejReasons = append(rejKeys, keys.Value(i)), append(rejReasons, "empty object")
			continue
		case s.pngOnly && !r.png.OK:
			rejKeys, rejReasons = append(rejKeys, keys.Value(i)), append(rejReasons, "bytes are not a PNG")
			continue
		case r.png.OK && uint64(r.png.Width)*uint64(r.png.Height) > uint64(s.maxPixels):
			rejKeys = append(rejKeys, keys.Value(i))
			rejReasons = append(rejReasons, fmt.Sprintf("image too large: %d×%d pixels (max_pixels %d)", r.png.Width, r.png.Height, s.maxPixels))
			continue
		}
		ok = append(ok, i)
		shas = append(shas, r.sha)
		mds = append(mds, r.md5)
		ids = append(ids, r.sha+":"+r.md5)
		png[0] = append(png[0], r.png.Width)
		png[1] = append(png[1], r.png.Height)
		png[2] = append(png[2], r.png.BitDepth)
		png[3] = append(png[3], r.png.ColorType)
		pngValid = append(pngValid, r.png.OK)
		fpCol.add(r.fp)
	}
	var fpCols []table.Column
	if s.fp.on {
		if fpCols, err = fpCol.columns(env.Mem); err != nil {
			return nil, err
		}
	}
	kept, err := table.Take(ctx, env.Mem, objects, ok)
	if err != nil {
		for _, c := range fpCols {
			c.Array.Release()
		}
		return nil, err
	}
	defer kept.Release()
	m := env.Mem
	cols := append(table.Columns(kept),
		table.Strings(m, "sha256", shas),
		table.Strings(m, "md5", mds),
		table.Strings(m, "file_id", ids),
		table.Int64s(m, "width", png[0], pngValid),
		table.Int64s(m, "height", png[1], pngValid),
		table.Int64s(m, "bit_depth", png[2], pngValid),
		table.Int64s(m, "color_type", png[3], pngValid),
	)
	if s.fp.on {
		cols = append(cols, fpCols...)
	}
	failed := table.New(
		table.Strings(m, "key", failedKeys),
		table.Strings(m, "error", failedErrs),
		table.Int64s(m, "attempts", failedAttempts, nil),
	)
	rejected := table.New(table.Strings(m, "key", rejKeys), table.Strings(m, "reason", rejReasons))
	return &Result{
		Outputs: map[string]arrow.RecordBatch{"rows": table.New(cols...), "failed": failed, "rejected": rejected},
		Objects: Objects{Failed: int64(len(failedKeys)), Rejected: int64(len(rejKeys))},
		// Counts only: a sharded run adds up its shards' Stats.
		Stats: map[string]int64{"downloaded": downloaded, "changed": changed,
			"hedged": tail.Hedged, "hedges_won": tail.HedgeWon, "retried": tail.Retried, "throttled": tail.Throttled},
		Partial:  len(failures) > 0,
		Failures: failures,
	}, nil
}
