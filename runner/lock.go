package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrLocked means another run holds the cache or --out; the CLI gives it
// its own exit code so a scheduler can tell "busy" from "failed".
var ErrLocked = errors.New("locked by another kneepipe run")

// lockPoll is how often a waiting run tries a held lock again.
const lockPoll = 100 * time.Millisecond

// lockCache takes an exclusive lock on the cache directory (its lock
// file), waiting until deadline for another run to finish or ctx to end.
// The kernel drops the lock when the process dies, so a killed run never
// leaves the cache locked.
func lockCache(ctx context.Context, dir string, deadline time.Time, log *slog.Logger) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cache lock: %w", err)
	}
	if err := flockWait(ctx, f, deadline, func() {
		log.Info("another run holds the cache; waiting", "cache", dir, "until", deadline.Format(time.RFC3339))
	}); err != nil {
		f.Close()
		return nil, fmt.Errorf("cache %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// lockOut takes an exclusive lock on the --out directory itself, so two
// runs with different caches cannot write one --out at once. It locks the
// directory (no lock file: --out holds artifacts and run.json only); where
// the file system cannot lock a directory it warns and goes on unlocked.
func lockOut(ctx context.Context, dir string, deadline time.Time, log *slog.Logger) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("out dir: %w", err)
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("out dir: %w", err)
	}
	err = flockWait(ctx, f, deadline, func() {
		log.Info("another run writes --out; waiting", "out", dir, "until", deadline.Format(time.RFC3339))
	})
	var unsupported lockUnsupported
	switch {
	case errors.As(err, &unsupported):
		log.Warn("cannot lock --out on this file system; another run may write it at the same time", "out", dir, "err", err)
	case err != nil:
		f.Close()
		return nil, fmt.Errorf("--out %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// lockUnsupported is a lock the file system refuses outright (not one
// another process holds).
type lockUnsupported struct{ error }

func (e lockUnsupported) Unwrap() error { return e.error }

// flockWait takes an exclusive flock on f, trying again every lockPoll
// until deadline; ctx ending (Ctrl-C) ends the wait at once. onWait is
// called once, when the first try finds the lock held and there is time
// to wait.
func flockWait(ctx context.Context, f *os.File, deadline time.Time, onWait func()) error {
	waited := false
	start := time.Now()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return lockUnsupported{fmt.Errorf("lock: %w", err)}
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w; waited %s: pass --wait to wait longer", ErrLocked, time.Since(start).Round(time.Millisecond))
		}
		if !waited {
			waited = true
			onWait()
		}
		t := time.NewTimer(min(lockPoll, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for the lock: %w", context.Cause(ctx))
		case <-t.C:
		}
	}
}
