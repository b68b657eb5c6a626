package imagecache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sumOf(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestGetFetchesOnceAndVerifies(t *testing.T) {
	ctx := context.Background()
	c := Cache{Dir: t.TempDir()}
	img := []byte("\x89PNG fake image")
	sum := sumOf(img)
	calls := 0
	fetch := func(context.Context) ([]byte, error) { calls++; return img, nil }
	for range 3 {
		got, _, err := c.Get(ctx, sum, fetch)
		if err != nil || string(got) != string(img) {
			t.Fatalf("Get = %q, %v", got, err)
		}
	}
	if calls != 1 {
		t.Errorf("fetched %d times, want once", calls)
	}
	// A damaged stored copy is never returned: fetched again, replaced.
	if err := os.WriteFile(filepath.Join(c.Dir, sum[:2], sum), []byte("rot"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, fetched, err := c.Get(ctx, sum, fetch)
	if err != nil || string(got) != string(img) || !fetched || calls != 2 {
		t.Errorf("after damage: %q fetched=%v calls=%d err=%v", got, fetched, calls, err)
	}
	if _, fetched, _ := c.Get(ctx, sum, fetch); fetched {
		t.Error("the replaced copy was not used")
	}
}

func TestGetRefusesWrongBytes(t *testing.T) {
	c := Cache{Dir: t.TempDir()}
	sum := sumOf([]byte("right"))
	_, _, err := c.Get(context.Background(), sum, func(context.Context) ([]byte, error) { return []byte("wrong"), nil })
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("err = %v, want ErrMismatch", err)
	}
	if entries, _ := os.ReadDir(c.Dir); len(entries) != 0 {
		t.Errorf("wrong bytes were stored: %v", entries)
	}
	fetchErr := errors.New("gone")
	if _, _, err := c.Get(context.Background(), sum, func(context.Context) ([]byte, error) { return nil, fetchErr }); !errors.Is(err, fetchErr) {
		t.Errorf("fetch error lost: %v", err)
	}
}

func TestGetBadSumAndNoDir(t *testing.T) {
	never := func(context.Context) ([]byte, error) { t.Fatal("fetched for a bad sum"); return nil, nil }
	for _, s := range []string{"", "../../etc/passwd", strings.Repeat("A", 64), strings.Repeat("a", 63)} {
		if _, _, err := (Cache{Dir: t.TempDir()}).Get(context.Background(), s, never); err == nil || !strings.Contains(err.Error(), "not 64 lowercase hex") {
			t.Errorf("sum %q: err %v", s, err)
		}
	}
	img := []byte("x")
	calls := 0
	for range 2 {
		if _, _, err := (Cache{}).Get(context.Background(), sumOf(img), func(context.Context) ([]byte, error) { calls++; return img, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 2 {
		t.Errorf("no Dir: fetched %d times, want every time", calls)
	}
}

// Put files an image for Get without a fetch. Concurrent Puts of the same
// image (a hedged request and its hedge) leave one whole copy and no
// temporary file; a bad name is refused; an empty Dir keeps nothing.
func TestPutConcurrentIdempotent(t *testing.T) {
	ctx := context.Background()
	c := Cache{Dir: t.TempDir()}
	img := []byte(strings.Repeat("\x89PNG body ", 4096))
	sum := sumOf(img)
	errs := make(chan error, 8)
	for range cap(errs) {
		go func() { errs <- c.Put(sum, img) }()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got, fetched, err := c.Get(ctx, sum, func(context.Context) ([]byte, error) { return nil, errors.New("fetched") })
	if err != nil || fetched || string(got) != string(img) {
		t.Fatalf("Get after Put: fetched=%v err=%v", fetched, err)
	}
	des, err := os.ReadDir(filepath.Join(c.Dir, sum[:2]))
	if err != nil || len(des) != 1 || des[0].Name() != sum {
		t.Errorf("folder holds %v (%v), want only %s", des, err, sum)
	}
	if err := c.Put("NOT-A-SUM", img); err == nil {
		t.Error("Put accepted a name that is not a SHA-256")
	}
	if err := (Cache{}).Put(sum, img); err != nil {
		t.Errorf("Put with no Dir: %v", err)
	}
}
