package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrLocked means another run holds the cache; the CLI gives it its own
// exit code so a scheduler can tell "busy" from "failed".
var ErrLocked = errors.New("cache is locked by another kneepipe run")

// lockCache takes an exclusive lock on the cache directory, waiting up to
// wait for another run to finish. The kernel drops the lock when the
// process dies, so a killed run never leaves the cache locked.
func lockCache(dir string, wait time.Duration) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cache lock: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("cache lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w (%s); waited %s: pass --wait to wait longer", ErrLocked, path, wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
