package neardup

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// kneeFiles reads up to n knee-dev PNGs (NEARDUP_KNEE_DEV, default the
// repository's ../shared/knee-dev), skipping the benchmark without them.
func kneeFiles(b testing.TB, n int) [][]byte {
	dir := os.Getenv("NEARDUP_KNEE_DEV")
	if dir == "" {
		dir = "../../../shared/knee-dev"
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "*", "*.png"))
	if len(paths) == 0 {
		b.Skipf("no knee-dev PNGs under %s (set NEARDUP_KNEE_DEV)", dir)
	}
	var out [][]byte
	for _, p := range paths[:min(n, len(paths))] {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// BenchmarkKneeFingerprint fingerprints knee-dev PNGs, one per op:
// "decode" through image/png and an image.Image (the path before
// imagedecode.DecodeRaw), "raw" as FromBytes does now.
func BenchmarkKneeFingerprint(b *testing.B) {
	files := kneeFiles(b, 200)
	for _, c := range []struct {
		name string
		fn   func([]byte, int64) (Fingerprint, error)
	}{{"decode", fromDecoded}, {"raw", FromBytes}} {
		b.Run(c.name, func(b *testing.B) {
			cpu0 := cpuTime()
			i := 0
			for b.Loop() {
				if _, err := c.fn(files[i%len(files)], 0); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user + system CPU time in nanoseconds: on a
// machine shared with other jobs it varies less than wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkKneeFind groups the fingerprints of the knee-dev images.
func BenchmarkKneeFind(b *testing.B) {
	files := kneeFiles(b, 1000)
	fps := make([]Fingerprint, len(files))
	for i, data := range files {
		var err error
		if fps[i], err = FromBytes(data, 0); err != nil {
			b.Fatal(err)
		}
	}
	opt := DefaultOptions()
	opt.Workers = runtime.GOMAXPROCS(0)
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Find(context.Background(), fps, opt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}
