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
	"math/rand/v2"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/kneepipe/kneepipe/internal/journal"
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
			{"rows", "the input rows with sha256, md5 and file_id added"},
			{"failed", "key, error, attempts: objects that could not be fetched"},
		},
		Params: []Param{
			{Name: "concurrency", Type: Int, Default: int64(64), Min: 1, Max: 1024, Tuning: true, Doc: "parallel downloads"},
			{Name: "attempts", Type: Int, Default: int64(4), Min: 1, Max: 20, Tuning: true, Doc: "tries per object, backing off exponentially between them"},
			{Name: "fail_fast", Type: Bool, Default: false, Tuning: true, Doc: "stop the run at the first object that fails for good"},
		},
		New: func(p Params) (Stage, error) {
			return &fetchHash{
				concurrency: int(p.Int("concurrency")),
				attempts:    int(p.Int("attempts")),
				failFast:    p.Bool("fail_fast"),
			}, nil
		},
	}
}

type fetchHash struct {
	concurrency int
	attempts    int
	failFast    bool
}

type fetched struct {
	sha, md5 string
	err      error
	attempts int // 0: taken from the record of an earlier run
}

// hashed is what fetch-hash remembers of an object between runs (in
// Env.StateDir): an object whose key, size, ETag and last-modified time
// are unchanged is not downloaded again.
type hashed struct {
	Key      string `json:"k"`
	Size     int64  `json:"s"`
	ETag     string `json:"e"`
	Modified int64  `json:"m"` // microseconds since the epoch
	SHA256   string `json:"sha256"`
	MD5      string `json:"md5"`
}

func (h hashed) same(o hashed) bool {
	return h.Key == o.Key && h.Size == o.Size && h.ETag == o.ETag && h.Modified == o.Modified
}

// loadHashed reads the record of earlier runs, keyed by object key.
func loadHashed(env *Env) map[string]hashed {
	out := map[string]hashed{}
	if env.StateDir == "" {
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

func (s *fetchHash) Run(ctx context.Context, env *Env, in map[string]arrow.RecordBatch) (*Result, error) {
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
	previous := loadHashed(env)
	var todo []int
	for i := range n {
		if p, ok := previous[ident[i].Key]; ok && p.same(ident[i]) {
			results[i] = fetched{sha: p.SHA256, md5: p.MD5}
			continue
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
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(s.concurrency, max(len(todo), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := newDualHash()
			for i := range next {
				r := s.fetchOne(ctx, env, h, keys.Value(i), sizes.Value(i))
				results[i] = r
				switch {
				case r.err != nil && s.failFast:
					cancel(fmt.Errorf("fetch %s: %w", keys.Value(i), r.err))
				case r.err == nil && record != nil:
					rec := ident[i]
					rec.SHA256, rec.MD5 = r.sha, r.md5
					if err := record.Add(rec); err != nil {
						cancel(fmt.Errorf("record of hashed objects: %w", err))
					}
				}
				progress.Add(1)
			}
		}()
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
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
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
				rec.SHA256, rec.MD5 = r.sha, r.md5
				keep = append(keep, rec)
			}
		}
		if err := journal.Compact(env.StateDir, keep); err != nil {
			return nil, fmt.Errorf("record of hashed objects: %w", err)
		}
	}
	return s.result(ctx, env, objects, keys, results)
}

// objectIdentities reads what identifies each listed object's content
// without downloading it. ETag and last-modified are optional columns.
func objectIdentities(objects arrow.RecordBatch, keys *array.String, sizes *array.Int64) []hashed {
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

// fetchOne downloads one object, retrying transient failures with capped
// exponential backoff and jitter.
func (s *fetchHash) fetchOne(ctx context.Context, env *Env, h *dualHash, key string, size int64) fetched {
	var err error
	for attempt := 1; ; attempt++ {
		var sha, md string
		sha, md, err = h.object(ctx, env, key, size)
		if err == nil {
			return fetched{sha: sha, md5: md, attempts: attempt}
		}
		if attempt >= s.attempts || ctx.Err() != nil {
			return fetched{err: err, attempts: attempt}
		}
		backoff := min(100*time.Millisecond<<(attempt-1), 5*time.Second)
		select {
		case <-time.After(backoff/2 + rand.N(backoff/2+1)):
		case <-ctx.Done():
			return fetched{err: err, attempts: attempt}
		}
	}
}

// dualHash streams a body through SHA-256 and MD5 at once with one reused
// buffer: an object is never held in memory whole.
type dualHash struct {
	sha, md5 hash.Hash
	w        io.Writer
	buf      []byte
}

func newDualHash() *dualHash {
	h := &dualHash{sha: sha256.New(), md5: md5.New(), buf: make([]byte, 64<<10)}
	h.w = io.MultiWriter(h.sha, h.md5)
	return h
}

func (h *dualHash) object(ctx context.Context, env *Env, key string, size int64) (string, string, error) {
	body, err := env.Store.Get(ctx, key)
	if err != nil {
		return "", "", err
	}
	defer body.Close()
	h.sha.Reset()
	h.md5.Reset()
	got, err := io.CopyBuffer(h.w, body, h.buf)
	if err != nil {
		return "", "", fmt.Errorf("read body: %w", err)
	}
	if got != size {
		return "", "", fmt.Errorf("got %d bytes, listing says %d", got, size)
	}
	return hex.EncodeToString(h.sha.Sum(nil)), hex.EncodeToString(h.md5.Sum(nil)), nil
}

func (s *fetchHash) result(ctx context.Context, env *Env, objects arrow.RecordBatch, keys *array.String, results []fetched) (*Result, error) {
	var ok []int
	var downloaded int64
	var shas, mds, ids, failedKeys, failedErrs []string
	var failedAttempts []int64
	for i, r := range results {
		if r.err != nil {
			failedKeys = append(failedKeys, keys.Value(i))
			failedErrs = append(failedErrs, r.err.Error())
			failedAttempts = append(failedAttempts, int64(r.attempts))
			env.Log.Warn("fetch failed", "key", keys.Value(i), "attempts", r.attempts, "err", r.err)
			continue
		}
		if r.attempts > 0 {
			downloaded++
		}
		ok = append(ok, i)
		shas = append(shas, r.sha)
		mds = append(mds, r.md5)
		ids = append(ids, r.sha+":"+r.md5)
	}
	kept, err := table.Take(ctx, env.Mem, objects, ok)
	if err != nil {
		return nil, err
	}
	defer kept.Release()
	m := env.Mem
	cols := append(table.Columns(kept),
		table.Strings(m, "sha256", shas),
		table.Strings(m, "md5", mds),
		table.Strings(m, "file_id", ids),
	)
	failed := table.New(
		table.Strings(m, "key", failedKeys),
		table.Strings(m, "error", failedErrs),
		table.Int64s(m, "attempts", failedAttempts, nil),
	)
	return &Result{
		Outputs: map[string]arrow.RecordBatch{"rows": table.New(cols...), "failed": failed},
		Counts:  map[string]int64{"failed": int64(len(failedKeys)), "downloaded": downloaded},
	}, nil
}
