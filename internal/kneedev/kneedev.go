// Package kneedev gives tests and benchmarks the real knee radiographs of
// the workspace's shared/knee-dev folder, and skips them where it is absent:
// `make test` on a fresh clone has no such folder.
package kneedev

import (
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// Dir is NEARDUP_KNEE_DEV, or else ../shared/knee-dev beside the repository.
func Dir() string {
	if dir := os.Getenv("NEARDUP_KNEE_DEV"); dir != "" {
		return dir
	}
	_, file, _, _ := runtime.Caller(0) // <repo>/internal/kneedev/kneedev.go
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "knee-dev")
}

// Files reads up to n of the PNGs (all when n <= 0), in name order, and
// skips tb when there are none.
func Files(tb testing.TB, n int) (paths []string, data [][]byte) {
	tb.Helper()
	paths, _ = filepath.Glob(filepath.Join(Dir(), "*", "*.png"))
	if len(paths) == 0 {
		tb.Skipf("no knee-dev PNGs under %s (set NEARDUP_KNEE_DEV)", Dir())
	}
	if n > 0 {
		paths = paths[:min(n, len(paths))]
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		data = append(data, b)
	}
	return paths, data
}

// CPUTime is the process's user + system CPU time in nanoseconds: on a
// machine shared with other jobs it varies less than wall time.
func CPUTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// ReportCPU reports the CPU time per op since start (a CPUTime) as
// cpu-ns/op.
func ReportCPU(b *testing.B, start int64) {
	b.ReportMetric(float64(CPUTime()-start)/float64(b.N), "cpu-ns/op")
}
