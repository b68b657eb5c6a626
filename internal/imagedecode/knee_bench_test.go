package imagedecode

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// BenchmarkKneeDecode decodes knee-dev PNGs (NEARDUP_KNEE_DEV, default the
// repository's ../shared/knee-dev), one per op: "image/png" with Decode,
// "raw" with DecodeRaw.
func BenchmarkKneeDecode(b *testing.B) {
	dir := os.Getenv("NEARDUP_KNEE_DEV")
	if dir == "" {
		dir = "../../../shared/knee-dev"
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "*", "*.png"))
	if len(paths) == 0 {
		b.Skipf("no knee-dev PNGs under %s (set NEARDUP_KNEE_DEV)", dir)
	}
	var files [][]byte
	for _, p := range paths[:min(200, len(paths))] {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		files = append(files, data)
	}
	b.Run("image/png", func(b *testing.B) {
		cpu0 := cpuTime()
		for i := 0; b.Loop(); i++ {
			if _, _, err := Decode(files[i%len(files)], 0); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	})
	b.Run("raw", func(b *testing.B) {
		cpu0 := cpuTime()
		for i := 0; b.Loop(); i++ {
			if !DecodeRaw(files[i%len(files)], 0, func(*Raw) {}) {
				b.Fatal("declined")
			}
		}
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	})
}

// cpuTime is the process's user + system CPU time in nanoseconds: on a
// machine shared with other jobs it varies less than wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
