package stages

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/kneepipe/kneepipe/internal/source"
	"github.com/kneepipe/kneepipe/internal/table"
)

// versionedStore is a bucket whose objects the test overwrites and deletes
// between the listing and the GETs. Its ETags are multipart-style (not an
// MD5), so only the version check can tell an overwrite of the same size.
type versionedStore struct {
	mu      sync.Mutex
	objects map[string]versioned
}

type versioned struct {
	data []byte
	etag string
}

func (s *versionedStore) put(key string, data []byte, etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[key] = versioned{data, etag}
}

func (s *versionedStore) remove(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objects, key)
}

func (s *versionedStore) List(_ context.Context, fn func(source.Object) error) error {
	s.mu.Lock()
	var objs []source.Object
	for k, v := range s.objects {
		objs = append(objs, source.Object{Key: k, Rel: k, Size: int64(len(v.data)), ETag: v.etag, LastModified: time.Unix(1700000000, 0).UTC()})
	}
	s.mu.Unlock()
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	for _, o := range objs {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

func (s *versionedStore) Get(_ context.Context, key string) (io.ReadCloser, source.Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.objects[key]
	if !ok {
		return nil, source.Version{}, fmt.Errorf("%w: no such key %s", fs.ErrNotExist, key)
	}
	return io.NopCloser(bytes.NewReader(v.data)), source.Version{Size: int64(len(v.data)), ETag: v.etag, LastModified: time.Unix(1700000001, 0).UTC()}, nil
}

func (s *versionedStore) URI(key string) string { return "test://" + key }

// An object overwritten (same size, another ETag) or deleted between the
// listing and its GET gets no row: its hash would be attributed to the
// listed version. It is failed as changed, kept out of the record of
// hashed objects, and the next run's listing fetches the new version.
func TestFetchHashObjectChangedSinceListing(t *testing.T) {
	env := testEnv(t)
	env.Progress = func(string, int) Progress { return noProgress{} }
	env.StateDir = t.TempDir()
	store := &versionedStore{objects: map[string]versioned{}}
	env.Store = store
	imgs := map[string][]byte{"a.png": grayPNG(t, 8, 8, 1), "b.png": grayPNG(t, 8, 8, 2), "c.png": grayPNG(t, 8, 8, 3)}
	for k, data := range imgs {
		store.put(k, data, "etag-"+k+"-1")
	}
	listed := run(t, env, "list", build(t, "list", ""), nil).Outputs["objects"]

	// The same size, other bytes after the PNG header.
	newB := append([]byte(nil), imgs["b.png"]...)
	newB[len(newB)-20] ^= 0xff
	store.put("b.png", newB, "etag-b.png-2")
	store.remove("c.png")
	res := run(t, env, "fetch-hash", build(t, "fetch-hash", "{attempts: 3}"), map[string]arrow.RecordBatch{"objects": listed})

	if got := hashesByKey(t, res.Outputs["rows"]); len(got) != 1 || got["a.png"] != sha(imgs["a.png"]) {
		t.Errorf("rows %v, want a.png only, with its hash", got)
	}
	failed := res.Outputs["failed"]
	keys, _ := table.StringCol(failed, "key")
	errs, _ := table.StringCol(failed, "error")
	attempts, _ := table.Int64Col(failed, "attempts")
	if failed.NumRows() != 2 || keys.Value(0) != "b.png" || keys.Value(1) != "c.png" {
		t.Fatalf("failed has %d rows, want b.png and c.png", failed.NumRows())
	}
	if e := errs.Value(0); !strings.Contains(e, "changed since it was listed") || !strings.Contains(e, "etag-b.png-2") || attempts.Value(0) != 1 {
		t.Errorf("b.png failed with %q after %d attempts, want one attempt and the changed ETag named", e, attempts.Value(0))
	}
	if e := errs.Value(1); !strings.Contains(e, "no such key") || attempts.Value(1) != 1 {
		t.Errorf("c.png failed with %q after %d attempts, want one attempt, gone", e, attempts.Value(1))
	}
	if res.Stats["changed"] != 1 || !res.Partial {
		t.Errorf("stats %v, partial %v; want changed 1 and a partial result", res.Stats, res.Partial)
	}

	// The next run lists the new version and fetches it (and only it).
	relisted := run(t, env, "list", build(t, "list", ""), nil).Outputs["objects"]
	res = run(t, env, "fetch-hash", build(t, "fetch-hash", ""), map[string]arrow.RecordBatch{"objects": relisted})
	if got := hashesByKey(t, res.Outputs["rows"]); len(got) != 2 || got["a.png"] != sha(imgs["a.png"]) || got["b.png"] != sha(newB) {
		t.Errorf("rerun rows %v, want a.png and the new b.png", got)
	}
	if res.Stats["downloaded"] != 1 || res.Stats["changed"] != 0 || res.Partial {
		t.Errorf("rerun stats %v, partial %v; want the new b.png downloaded alone", res.Stats, res.Partial)
	}
}

func hashesByKey(t *testing.T, rows arrow.RecordBatch) map[string]string {
	t.Helper()
	keys, err := table.StringCol(rows, "key")
	if err != nil {
		t.Fatal(err)
	}
	shas, err := table.StringCol(rows, "sha256")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for i := range keys.Len() {
		out[keys.Value(i)] = shas.Value(i)
	}
	return out
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Changed compares what a GET's answer says with the listing.
func TestObjectChangedSinceListing(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)
	listed := source.Object{Key: "k", Size: 10, ETag: "abc", LastModified: at}
	for _, c := range []struct {
		name    string
		o       source.Object
		v       source.Version
		changed bool
	}{
		{"same", listed, source.Version{Size: 10, ETag: "abc", LastModified: at.Truncate(time.Second)}, false},
		{"size unknown", listed, source.Version{Size: -1, ETag: "abc"}, false},
		{"other size", listed, source.Version{Size: 11, ETag: "abc"}, true},
		{"other etag", listed, source.Version{Size: 10, ETag: "abd"}, true},
		{"etag decides over the time", listed, source.Version{Size: 10, ETag: "abc", LastModified: at.Add(time.Hour)}, false},
		{"no etag, same second", source.Object{Size: 10, LastModified: at}, source.Version{Size: 10, LastModified: at.Truncate(time.Second)}, false},
		{"no etag, other second", source.Object{Size: 10, LastModified: at}, source.Version{Size: 10, LastModified: at.Add(time.Second)}, true},
		{"no etag, microseconds kept", source.Object{Size: 10, LastModified: at.Truncate(time.Microsecond)}, source.Version{Size: 10, LastModified: at}, false},
		{"no etag, other microsecond", source.Object{Size: 10, LastModified: at}, source.Version{Size: 10, LastModified: at.Add(time.Millisecond)}, true},
		{"nothing to compare", source.Object{Size: 10}, source.Version{Size: 10}, false},
	} {
		err := source.Changed(c.o, c.v)
		if got := err != nil; got != c.changed {
			t.Errorf("%s: Changed = %v, want changed %v", c.name, err, c.changed)
		}
		if err != nil && (!errors.Is(err, source.ErrChanged) || !source.Permanent(err)) {
			t.Errorf("%s: %v is not ErrChanged and permanent", c.name, err)
		}
	}
}
