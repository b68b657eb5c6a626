package neardup

import (
	"context"
	"runtime"
	"testing"

	"github.com/kneepipe/kneepipe/internal/kneedev"
)

// BenchmarkKneeFingerprint fingerprints knee-dev PNGs, one per op:
// "decode" through image/png and an image.Image (the path before
// imagedecode.DecodeRaw), "raw" as FromBytes does now.
func BenchmarkKneeFingerprint(b *testing.B) {
	_, files := kneedev.Files(b, 200)
	for _, c := range []struct {
		name string
		fn   func([]byte, int64) (Fingerprint, error)
	}{{"decode", fromDecoded}, {"raw", FromBytes}} {
		b.Run(c.name, func(b *testing.B) {
			cpu0 := kneedev.CPUTime()
			i := 0
			for b.Loop() {
				if _, err := c.fn(files[i%len(files)], 0); err != nil {
					b.Fatal(err)
				}
				i++
			}
			kneedev.ReportCPU(b, cpu0)
		})
	}
}

// BenchmarkKneeFind groups the fingerprints of the knee-dev images.
func BenchmarkKneeFind(b *testing.B) {
	_, files := kneedev.Files(b, 1000)
	fps := make([]Fingerprint, len(files))
	for i, data := range files {
		var err error
		if fps[i], err = FromBytes(data, 0); err != nil {
			b.Fatal(err)
		}
	}
	opt := DefaultOptions()
	opt.Workers = runtime.GOMAXPROCS(0)
	cpu0 := kneedev.CPUTime()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Find(context.Background(), fps, opt); err != nil {
			b.Fatal(err)
		}
	}
	kneedev.ReportCPU(b, cpu0)
}
