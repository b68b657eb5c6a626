package inflate

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"io"
	"math/rand/v2"
	"testing"
)

// FuzzInflate: on any input, Inflate agrees with compress/flate (the same
// bytes and input used, or both an error) and Zlib with compress/zlib,
// and neither panics.
func FuzzInflate(f *testing.F) {
	f.Add([]byte{})
	for _, level := range []int{flate.NoCompression, flate.HuffmanOnly, flate.BestSpeed, flate.BestCompression} {
		f.Add(deflate(f, []byte("knee knee knee radiograph"), level))
	}
	// Literal runs long enough for the fast loops (literals, block).
	img := testInputs(rand.New(rand.NewPCG(9, 10)))["image"][:3000]
	f.Add(deflate(f, img, flate.HuffmanOnly))
	f.Add(deflate(f, img, flate.DefaultCompression))
	f.Fuzz(func(t *testing.T, data []byte) {
		check(t, "raw", data)
		checkZlib(t, data)
	})
}

// checkZlib compares Zlib with compress/zlib, which ignores data after
// the stream (Zlib's ErrTrailing).
func checkZlib(t *testing.T, data []byte) {
	r := bytes.NewReader(data)
	var want []byte
	zr, err := zlib.NewReader(r)
	if err == nil {
		want, err = io.ReadAll(zr)
	}
	if err == nil && r.Len() > 0 {
		err = ErrTrailing
	}
	var d Decoder
	got := make([]byte, len(want))
	gotErr := d.Zlib(got, data)
	if (gotErr != nil) != (err != nil) || err == nil && !bytes.Equal(got, want) {
		t.Fatalf("zlib: error %v, compress/zlib's %v", gotErr, err)
	}
}
