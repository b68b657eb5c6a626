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
	b.Run("zlib", func(b *testing.B) {
		benchReader(b, streams, dst, func(r io.Reader) (io.ReadCloser, error) { return zlib.NewReader(r) })
	})
	b.Run("klauspost", func(b *testing.B) {
		benchReader(b, streams, dst, func(r io.Reader) (io.ReadCloser, error) { return kzlib.NewReader(r) })
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

// benchReader inflates streams into dst, one per op, with a zlib reader
// made once by newReader and then reset, as DecodeRaw reused its reader.
func benchReader(b *testing.B, streams [][]byte, dst []byte, newReader func(io.Reader) (io.ReadCloser, error)) {
	b.SetBytes(int64(len(dst)))
	defer kneedev.ReportCPU(b, kneedev.CPUTime())
	var src bytes.Reader
	var zr io.ReadCloser
	for i := 0; b.Loop(); i++ {
		src.Reset(streams[i%len(streams)])
		var err error
		if zr == nil {
			zr, err = newReader(&src)
		} else {
			err = zr.(interface{ Reset(io.Reader, []byte) error }).Reset(&src, nil)
		}
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(zr, dst); err != nil {
			b.Fatal(err)
		}
	}
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
