package inflate

import (
	"bytes"
	"compress/zlib"
	"hash/adler32"
	"io"
	"testing"

	kzlib "github.com/klauspost/compress/zlib"

	"github.com/kneepipe/kneepipe/internal/kneedev"
)

// BenchmarkKneeInflate inflates the IDAT streams of knee-dev PNGs, one
// per op: "zlib" with compress/zlib, "klauspost" with the reader DecodeRaw
// used before, "decoder" with Decoder.Zlib (all reused, as DecodeRaw
// reuses them).
func BenchmarkKneeInflate(b *testing.B) {
	_, files := kneedev.Files(b, 200)
	var streams [][]byte
	size := 0
	for _, data := range files {
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
		defer kneedev.ReportCPU(b, kneedev.CPUTime())
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
		defer kneedev.ReportCPU(b, kneedev.CPUTime())
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
		defer kneedev.ReportCPU(b, kneedev.CPUTime())
		var d Decoder
		for i := 0; b.Loop(); i++ {
			if err := d.Zlib(dst, streams[i%len(streams)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAdler32 of a knee PNG's decompressed size.
func BenchmarkAdler32(b *testing.B) {
	buf := bytes.Repeat([]byte{1, 2, 3, 250}, 225*224/4)
	b.Run("hash/adler32", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		defer kneedev.ReportCPU(b, kneedev.CPUTime())
		for b.Loop() {
			adler32.Checksum(buf)
		}
	})
	b.Run("Adler32", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		defer kneedev.ReportCPU(b, kneedev.CPUTime())
		for b.Loop() {
			Adler32(buf)
		}
	})
}
