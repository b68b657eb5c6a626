// Package inflate decompresses DEFLATE (RFC 1951) and zlib (RFC 1950)
// streams held whole in memory into a buffer whose size the caller knows,
// as a PNG's IDAT data is: the output is one flat buffer that
// back-references copy from, so there is no sliding window, no io.Reader
// and no copying out, and the hot loop refills a 64-bit bit buffer with
// one load and decodes most symbols with one table lookup. On knee PNGs
// it takes ~0.23 of compress/zlib's CPU time and ~0.3 of klauspost's
// (BenchmarkKneeInflate, 3 runs).
//
// Malformed input of any kind (bad headers, over-subscribed or incomplete
// codes, distances before the start, more output than the buffer holds,
// truncated input, a wrong checksum) is an error, never a panic, and
// nothing is allocated.
package inflate

import (
	"encoding/binary"
	"errors"
)

var (
	ErrCorrupt   = errors.New("inflate: corrupt deflate data")
	ErrTruncated = errors.New("inflate: deflate data ends early")
	ErrTooLong   = errors.New("inflate: output longer than the buffer")
	ErrShort     = errors.New("inflate: output shorter than the buffer")
	ErrHeader    = errors.New("inflate: invalid zlib header")
	ErrDict      = errors.New("inflate: zlib preset dictionaries are not supported")
	ErrChecksum  = errors.New("inflate: zlib checksum mismatch")
	ErrTrailing  = errors.New("inflate: data after the zlib stream")
)

// Decoder holds the Huffman tables (~24 KB); reusing one saves that
// allocation per stream. Its zero value is ready; it is not safe for
// concurrent use.
type Decoder struct {
	lit  [litTableSize]uint32
	dist [distTableSize]uint32
	clen [1 << clenBits]uint32
	lens [286 + 30]uint8 // a dynamic block's code lengths
}

// Zlib decompresses the zlib stream src, which must fill dst exactly, end
// with dst's Adler-32 and have nothing after it.
func (d *Decoder) Zlib(dst, src []byte) error {
	sum, err := d.ZlibUnchecked(dst, src)
	if err == nil && Adler32(dst) != sum {
		err = ErrChecksum
	}
	return err
}

// ZlibUnchecked is Zlib but for the checksum, which it returns: for a
// caller that computes dst's Adler-32 (AdlerUpdate) on a pass over dst it
// makes anyway, and compares it itself.
func (d *Decoder) ZlibUnchecked(dst, src []byte) (adler uint32, err error) {
	if len(src) < 2 {
		return 0, ErrTruncated
	}
	cmf, flg := src[0], src[1]
	if cmf&0x0f != 8 || cmf>>4 > 7 || (uint(cmf)<<8|uint(flg))%31 != 0 {
		return 0, ErrHeader
	}
	if flg&0x20 != 0 {
		return 0, ErrDict
	}
	n, used, err := d.Inflate(dst, src[2:])
	if err != nil {
		return 0, err
	}
	if n != len(dst) {
		return 0, ErrShort
	}
	switch rest := src[2+used:]; {
	case len(rest) < 4:
		return 0, ErrTruncated
	case len(rest) > 4:
		return 0, ErrTrailing
	default:
		return binary.BigEndian.Uint32(rest), nil
	}
}

// Inflate decompresses the raw DEFLATE stream at the start of src into dst
// and returns the bytes written and the bytes of src the stream took
// (the rest follows it). A stream that needs more than len(dst) bytes is
// ErrTooLong. dst[n:] may be overwritten.
func (d *Decoder) Inflate(dst, src []byte) (n, used int, err error) {
	br := bitReader{src: src}
	out := 0
	for final := false; !final; {
		br.refill()
		if br.overrun() {
			return out, 0, ErrTruncated
		}
		final = br.b&1 != 0
		typ := br.b >> 1 & 3
		br.drop(3)
		switch typ {
		case 0:
			out, err = stored(dst, out, &br)
		case 1:
			d.fixed()
			out, err = d.block(dst, out, &br)
		case 2:
			if err = d.dynamic(&br); err == nil {
				out, err = d.block(dst, out, &br)
			}
		default:
			err = ErrCorrupt
		}
		if err != nil {
			return out, 0, err
		}
	}
	if br.overrun() {
		return out, 0, ErrTruncated
	}
	return out, br.used(), nil
}

// bitReader reads src's bits from the least significant end of b, which
// holds n of them (at most 63). Past the end of src it supplies zero
// bytes, and in counts them: overrun reports whether any was used.
type bitReader struct {
	src []byte
	in  int // the next byte of src to load
	b   uint64
	n   uint
}

// refill tops b up to at least 56 bits. The bits of b above n are either
// zero or the stream's next bits (the whole-word load puts them there), so
// OR-ing the next bytes in at n is always right.
func (br *bitReader) refill() {
	if br.in+8 <= len(br.src) {
		br.b |= binary.LittleEndian.Uint64(br.src[br.in:]) << br.n
		br.in += int(63-br.n) >> 3
		br.n |= 56
		return
	}
	for br.n <= 56 {
		if br.in < len(br.src) {
			br.b |= uint64(br.src[br.in]) << br.n
		}
		br.in++
		br.n += 8
	}
}

func (br *bitReader) drop(k uint) {
	br.b >>= k & 63
	br.n -= k
}

// used is the number of bytes of src consumed, counting a partly used one.
func (br *bitReader) used() int { return br.in - int(br.n>>3) }

func (br *bitReader) overrun() bool { return br.used() > len(br.src) }

// stored copies a stored block (after its 3 header bits).
func stored(dst []byte, out int, br *bitReader) (int, error) {
	br.drop(br.n & 7)
	in := br.used()
	if in > len(br.src) {
		return out, ErrTruncated
	}
	br.b, br.n = 0, 0
	src := br.src[in:]
	if len(src) < 4 {
		return out, ErrTruncated
	}
	n := int(binary.LittleEndian.Uint16(src))
	if uint16(n) != ^binary.LittleEndian.Uint16(src[2:]) {
		return out, ErrCorrupt
	}
	src = src[4:]
	if len(src) < n {
		return out, ErrTruncated
	}
	if len(dst)-out < n {
		return out, ErrTooLong
	}
	copy(dst[out:], src[:n])
	br.in = in + 4 + n
	return out + n, nil
}

// fixed builds the tables of the fixed Huffman code (RFC 1951 3.2.6).
func (d *Decoder) fixed() {
	var lens [288]uint8
	for i := range lens {
		switch {
		case i < 144:
			lens[i] = 8
		case i < 256:
			lens[i] = 9
		case i < 280:
			lens[i] = 7
		default:
			lens[i] = 8
		}
	}
	build(d.lit[:], litBits, lens[:], litValues, litSpecial, litSpecial|litLink, true)
	for i := range 32 {
		lens[i] = 5
	}
	build(d.dist[:], distBits, lens[:32], distValues, distSpecial, distSpecial|distLink, false)
}

// clenOrder is the order of the code-length code's lengths in a header.
var clenOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// dynamic reads a dynamic block's header (after its 3 bits) and builds its
// tables.
func (d *Decoder) dynamic(br *bitReader) error {
	br.refill()
	nlit := int(br.b&31) + 257
	ndist := int(br.b>>5&31) + 1
	nclen := int(br.b>>10&15) + 4
	br.drop(14)
	if nlit > 286 || ndist > 30 {
		return ErrCorrupt
	}
	var clens [19]uint8
	for _, s := range clenOrder[:nclen] {
		br.refill()
		clens[s] = uint8(br.b & 7)
		br.drop(3)
	}
	if !build(d.clen[:], clenBits, clens[:], clenValues, clenInvalid, clenInvalid, false) {
		return ErrCorrupt
	}
	lens := d.lens[:nlit+ndist]
	if err := d.codeLengths(br, lens); err != nil {
		return err
	}
	if br.overrun() {
		return ErrTruncated
	}
	if lens[256] == 0 || // a block must be able to end
		!build(d.lit[:], litBits, lens[:nlit], litValues, litSpecial, litSpecial|litLink, true) ||
		!build(d.dist[:], distBits, lens[nlit:], distValues, distSpecial, distSpecial|distLink, false) {
		return ErrCorrupt
	}
	return nil
}

// codeLengths reads a dynamic block's litlen and distance code lengths
// into lens with the code-length code's table. The bit buffer is kept in
// locals and refilled only below 14 bits, the most a symbol and its
// repeat count take: one refill serves four symbols.
func (d *Decoder) codeLengths(br *bitReader, lens []uint8) error {
	b, n := br.b, br.n
	for i := 0; i < len(lens); {
		if n < 14 {
			br.b, br.n = b, n
			br.refill()
			b, n = br.b, br.n
		}
		e := d.clen[b&(1<<clenBits-1)]
		if e&clenInvalid != 0 {
			return ErrCorrupt
		}
		b >>= e & 63
		n -= uint(e & 63)
		sym := uint8(e >> 16)
		if sym < 16 {
			lens[i] = sym
			i++
			continue
		}
		var rep int
		var v uint8
		switch sym {
		case 16:
			if i == 0 {
				return ErrCorrupt
			}
			rep, v = 3+int(b&3), lens[i-1]
			b >>= 2
			n -= 2
		case 17:
			rep = 3 + int(b&7)
			b >>= 3
			n -= 3
		default:
			rep = 11 + int(b&127)
			b >>= 7
			n -= 7
		}
		if rep > len(lens)-i {
			return ErrCorrupt
		}
		for range rep {
			lens[i] = v
			i++
		}
	}
	br.b, br.n = b, n
	return nil
}
