package imagedecode

import (
	"testing"

	"github.com/kneepipe/kneepipe/internal/kneedev"
)

// BenchmarkKneeDecode decodes knee-dev PNGs (kneedev), one per op: "image/png" with Decode,
// "raw" with DecodeRaw.
func BenchmarkKneeDecode(b *testing.B) {
	_, files := kneedev.Files(b, 200)
	b.Run("image/png", func(b *testing.B) {
		cpu0 := kneedev.CPUTime()
		for i := 0; b.Loop(); i++ {
			if _, _, err := Decode(files[i%len(files)], 0); err != nil {
				b.Fatal(err)
			}
		}
		kneedev.ReportCPU(b, cpu0)
	})
	b.Run("raw", func(b *testing.B) {
		cpu0 := kneedev.CPUTime()
		for i := 0; b.Loop(); i++ {
			if !DecodeRaw(files[i%len(files)], 0, func(*Raw) {}) {
				b.Fatal("declined")
			}
		}
		kneedev.ReportCPU(b, cpu0)
	})
}
