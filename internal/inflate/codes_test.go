package inflate

import (
	"bytes"
	"errors"
	"math/bits"
	"testing"
)

// bitWriter packs bits LSB first, as DEFLATE does.
type bitWriter struct {
	out  []byte
	acc  uint64
	nacc uint
}

func (w *bitWriter) bits(v uint64, n uint) {
	w.acc |= v << w.nacc
	for w.nacc += n; w.nacc >= 8; w.nacc -= 8 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
	}
}

// code writes a Huffman code, which DEFLATE packs MSB first.
func (w *bitWriter) code(c uint16, n uint) { w.bits(uint64(bits.Reverse16(c)>>(16-n)), n) }

func (w *bitWriter) bytes() []byte {
	if w.nacc > 0 {
		return append(w.out, byte(w.acc))
	}
	return w.out
}

// dynamicStream is one final dynamic block with these code lengths (sent
// with a code-length code of 16 4-bit codes for 0..15), then the litlen
// symbols given (by their canonical codes; no lengths or distances).
func dynamicStream(lit, dist []uint8, syms ...int) []byte {
	var w bitWriter
	w.dynamicBlock(true, lit, dist, syms)
	return w.bytes()
}

func (w *bitWriter) dynamicBlock(final bool, lit, dist []uint8, syms []int) {
	w.bits(uint64(b2i(final)), 1)
	w.bits(2, 2) // dynamic
	w.bits(uint64(len(lit)-257), 5)
	w.bits(uint64(len(dist)-1), 5)
	w.bits(19-4, 4)
	for _, s := range clenOrder {
		if s < 16 {
			w.bits(4, 3)
		} else {
			w.bits(0, 3)
		}
	}
	for _, l := range append(append([]uint8{}, lit...), dist...) {
		w.code(uint16(l), 4)
	}
	w.symbols(lit, syms)
}

// symbols writes litlen symbols by their canonical codes.
func (w *bitWriter) symbols(lit []uint8, syms []int) {
	codes := canonical(lit)
	for _, s := range syms {
		w.code(codes[s], uint(lit[s]))
	}
}

// fixedBlock is a fixed-code block of these litlen symbols.
func (w *bitWriter) fixedBlock(final bool, syms []int) {
	w.bits(uint64(b2i(final)), 1)
	w.bits(1, 2) // fixed
	var lit [288]uint8
	for i := range lit {
		lit[i] = map[bool]uint8{true: 8, false: 9}[i < 144 || i >= 280]
		if i >= 256 && i < 280 {
			lit[i] = 7
		}
	}
	w.symbols(lit[:], syms)
}

// storedBlock is a stored block of data.
func (w *bitWriter) storedBlock(final bool, data []byte) {
	w.bits(uint64(b2i(final)), 1)
	w.bits(0, 2) // stored
	w.bits(0, (8-w.nacc)%8)
	w.bits(uint64(len(data)), 16)
	w.bits(uint64(^uint16(len(data))), 16)
	for _, c := range data {
		w.bits(uint64(c), 8)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// canonical is the canonical Huffman code of each symbol (RFC 1951 3.2.2).
func canonical(lens []uint8) []uint16 {
	var count, next [16]uint16
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	for l := 1; l < 16; l++ {
		next[l] = (next[l-1] + count[l-1]) << 1
	}
	codes := make([]uint16, len(lens))
	for s, l := range lens {
		if l != 0 {
			codes[s] = next[l]
			next[l]++
		}
	}
	return codes
}

// lengths is n code lengths, those given by symbol and the rest 0.
func lengths(n int, set map[int]uint8) []uint8 {
	l := make([]uint8, n)
	for s, v := range set {
		l[s] = v
	}
	return l
}

// TestCodeSets: complete codes decode; over-subscribed and incomplete
// ones are errors, except a single distance code of length 1 and no
// distance codes at all, which zlib writes and compress/flate accepts.
func TestCodeSets(t *testing.T) {
	complete := lengths(257, map[int]uint8{'a': 1, 256: 1})
	cases := []struct {
		name string
		src  []byte
		ok   bool
	}{
		{"complete", dynamicStream(complete, lengths(1, map[int]uint8{0: 1}), 'a', 'a', 256), true},
		{"no distance codes", dynamicStream(complete, lengths(1, nil), 'a', 256), true},
		{"two distance codes", dynamicStream(complete, lengths(2, map[int]uint8{0: 1, 1: 1}), 'a', 256), true},
		{"one distance code of length 2", dynamicStream(complete, lengths(1, map[int]uint8{0: 2}), 'a', 256), false},
		{"incomplete litlen", dynamicStream(lengths(258, map[int]uint8{'a': 2, 256: 2, 257: 2}), lengths(1, map[int]uint8{0: 1}), 'a', 256), false},
		{"only an end-of-block code", dynamicStream(lengths(257, map[int]uint8{256: 1}), lengths(1, nil), 256), true},
		{"over-subscribed litlen", dynamicStream(lengths(258, map[int]uint8{'a': 1, 'b': 1, 256: 1}), lengths(1, nil), 'a', 256), false},
		{"over-subscribed distance", dynamicStream(complete, lengths(3, map[int]uint8{0: 1, 1: 1, 2: 1}), 'a', 256), false},
		{"no end-of-block code", dynamicStream(lengths(257, map[int]uint8{'a': 1, 'b': 1}), lengths(1, nil), 'a'), false},
	}
	for _, c := range cases {
		want, _, wantErr := reference(c.src)
		if (wantErr == nil) != c.ok {
			t.Fatalf("%s: compress/flate: %v: the test's stream is wrong", c.name, wantErr)
		}
		var d Decoder
		dst := make([]byte, 10)
		n, _, err := d.Inflate(dst, c.src)
		if c.ok && (err != nil || !bytes.Equal(dst[:n], want)) {
			t.Errorf("%s: %q, %v; want %q", c.name, dst[:n], err, want)
		}
		if !c.ok && !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", c.name, err)
		}
	}
}
