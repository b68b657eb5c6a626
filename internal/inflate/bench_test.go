package inflate

import (
	"bytes"
	"compress/zlib"
	"hash/adler32"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	kzlib "github.com/klauspost/compress/zlib"
)

// BenchmarkKneeInflate inflates the IDAT streams of knee-dev PNGs, one
// per op: "zlib" with compress/zlib, "klauspost" with the reader DecodeRaw
// used before, "decoder" with Decoder.Zlib (all reused, as DecodeRaw
// reuses them).
func BenchmarkKneeInflate(b *testing.B) {
	paths, _ := filepath.Glob(filepath.Join(kneeDir(), "*", "*.png"))
	if len(paths) == 0 {
		b.Skipf("no knee-dev PNGs under %s (set NEARDUP_KNEE_DEV)", kneeDir())
	}
	var streams [][]byte
	size := 0
	for _, p := range paths[:min(200, len(paths))] {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		streams = append(streams, idatStream(data))
	}
	{
		zr, _ := zlib.NewReader(bytes.NewReader(streams[0]))
		out, _ := io.ReadAll(zr)
		size = len(out) // every knee PNG is 224x224 gray
	}
	dst := make([]byte, size)
	var src bytes.Reader
	b.Run("zlib", func(b *testing.B) {
		b.SetBytes(int64(size))
		defer reportCPU(b, cpuTime())
		var zr io.ReadCloser
		for i := 0; b.Loop(); i++ {
			src.Reset(streams[i%len(streams)])
			if zr == nil {
				zr, _ = zlib.NewReader(&src)
			} else {
				zr.(zlib.Resetter).Reset(&src, nil)
			}
			if _, err := io.ReadFull(zr, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("klauspost", func(b *testing.B) {
		b.SetBytes(int64(size))
		defer reportCPU(b, cpuTime())
		var zr io.ReadCloser
		for i := 0; b.Loop(); i++ {
			src.Reset(streams[i%len(streams)])
			if zr == nil {
				zr, _ = kzlib.NewReader(&src)
			} else {
				zr.(kzlib.Resetter).Reset(&src, nil)
			}
			if _, err := io.ReadFull(zr, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decoder", func(b *testing.B) {
		b.SetBytes(int64(size))
		defer reportCPU(b, cpuTime())
		var d Decoder
		for i := 0; b.Loop(); i++ {
			if err := d.Zlib(dst, streams[i%len(streams)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// cpuTime is the process's user + system CPU time in nanoseconds: on a
// machine shared with other jobs it varies less than wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkAdler32 of a knee PNG's decompressed size.
func BenchmarkAdler32(b *testing.B) {
	buf := bytes.Repeat([]byte{1, 2, 3, 250}, 225*224/4)
	b.Run("hash/adler32", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		defer reportCPU(b, cpuTime())
		for b.Loop() {
			adler32.Checksum(buf)
		}
	})
	b.Run("Adler32", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		defer reportCPU(b, cpuTime())
		for b.Loop() {
			Adler32(buf)
		}
	})
}

func reportCPU(b *testing.B, cpu0 int64) {
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}
