package inflate

import "encoding/binary"

const (
	litMask  = 1<<litBits - 1
	distMask = 1<<distBits - 1
	// The fast loop runs while each iteration can refill twice with a
	// whole-word load (at most 7 bytes each) and write the literals of two
	// lookups (up to two each) and a match copied in 8-byte words (up to 7
	// bytes past its end), so it
	// needs no other check of the input's or output's end.
	fastIn  = 16
	fastOut = 2*2 + 258 + 8
)

// block decodes a Huffman-coded block with d's tables into dst[out:] and
// returns the new output length: runs of literals in literals, the rest
// here, until near the end of the input or the output, where blockTail
// takes over.
func (d *Decoder) block(dst []byte, out int, br *bitReader) (int, error) {
	br.refill()
	src := br.src
	b, n, in := br.b, br.n, br.in
	for {
		var e uint32
		out, in, b, n, e = d.literals(dst, out, src, in, b, n)
		if e == 0 {
			break
		}
		// e is the entry of the buffer's low bits, which hold at least 32
		// (literals): enough for a length (15+5).
		if e&litSpecial != 0 {
			if e&litLink != 0 {
				e = d.lit[1<<litBits+e>>16&0x3ff+uint32(b>>litBits)&(1<<(e>>8&15)-1)]
			}
			if int32(e) < 0 {
				b >>= e & 63
				n -= uint(e & 63)
				binary.LittleEndian.PutUint16(dst[out:], uint16(e>>8))
				out += 1 + int(e>>24&1)
				continue
			}
			if e&litSpecial != 0 {
				if e&litEOB == 0 {
					return out, ErrCorrupt
				}
				b >>= e & 63
				n -= uint(e & 63)
				br.b, br.n, br.in = b, n, in
				return out, nil
			}
		}
		length := int(e>>16) + extra(b, e)
		b >>= e & 63
		n -= uint(e & 63)
		// Room for the distance (15+13) and the next lookup.
		if n < 28+litBits {
			b |= binary.LittleEndian.Uint64(src[in:in+8]) << (n & 63)
			in += int(63-n) >> 3
			n |= 56
		}
		e = d.dist[b&distMask]
		if e&distSpecial != 0 {
			if e&distLink == 0 {
				return out, ErrCorrupt
			}
			e = d.dist[1<<distBits+e>>16&0x3ff+uint32(b>>distBits)&(1<<(e>>8&15)-1)]
			if e&distSpecial != 0 {
				return out, ErrCorrupt
			}
		}
		back := int(e>>16) + extra(b, e)
		b >>= e & 63
		n -= uint(e & 63)
		if back > out {
			return out, ErrCorrupt
		}
		copyFast(dst, out, back, length)
		out += length
	}
	br.b, br.n, br.in = b, n, in
	return d.blockTail(dst, out, br)
}

// literals decodes literals from the bit buffer b (n bits, at least
// litBits) into dst[out:] while the input and the output have room for
// the fast path (fastIn, fastOut), and returns the new state with the
// first entry that is not a literal of the primary table, or 0 (no entry
// is 0) when it stopped for room. The bit buffer then holds at least 32
// bits, of which that entry's code is the first.
//
// An iteration looks its first symbol up before it refills: the buffer
// holds at least litBits bits at its top, so the refill's shift and OR
// wait beside the table load rather than before it. Each lookup waits for
// the one before it, which is the loop's cost. After the refill the
// buffer holds at least 56 bits: three literal lookups (12 bits each)
// leave litBits for the next iteration. A lookup writes two bytes (the
// second is overwritten when the entry holds one literal) under one
// bounds check. The loop is apart from block's so that it keeps few values
// and the bit buffer stays in a register.
func (d *Decoder) literals(dst []byte, out int, src []byte, in int, b uint64, n uint) (int, int, uint64, uint, uint32) {
	t := &d.lit
	for in+fastIn <= len(src) && len(dst)-out >= fastOut {
		e := t[b&litMask]
		b |= binary.LittleEndian.Uint64(src[in:in+8]) << (n & 63)
		in += int(63-n) >> 3
		n |= 56
		if int32(e) >= 0 {
			return out, in, b, n, e
		}
		b >>= e & 63
		n -= uint(e & 63)
		out = putLiterals(dst, out, e)
		e = t[b&litMask]
		if int32(e) >= 0 {
			return out, in, b, n, e
		}
		b >>= e & 63
		n -= uint(e & 63)
		out = putLiterals(dst, out, e)
		e = t[b&litMask]
		if int32(e) >= 0 {
			return out, in, b, n, e
		}
		b >>= e & 63
		n -= uint(e & 63)
		out = putLiterals(dst, out, e)
	}
	return out, in, b, n, 0
}

// putLiterals writes the one or two literals of entry e at dst[out:] and
// returns the new output length: two bytes under one bounds check, the
// second overwritten later when e holds one literal. Small enough to be
// inlined, so the bit buffer stays in a register.
func putLiterals(dst []byte, out int, e uint32) int {
	_ = dst[out+1]
	dst[out] = byte(e >> 8)
	dst[out+1] = byte(e >> 16)
	return out + 1 + int(e>>24&1)
}

// copyFast copies a match of length bytes from back bytes before out,
// writing up to 7 bytes past its end: in 8-byte words when they do not
// overlap the bytes they read, a repeated word for a run of one byte.
func copyFast(dst []byte, out, back, length int) {
	s := out - back
	switch {
	case back >= 8:
		for i := 0; i < length; i += 8 {
			binary.LittleEndian.PutUint64(dst[out+i:], binary.LittleEndian.Uint64(dst[s+i:]))
		}
	case back == 1:
		w := uint64(dst[s]) * 0x0101010101010101
		for i := 0; i < length; i += 8 {
			binary.LittleEndian.PutUint64(dst[out+i:], w)
		}
	default:
		for i := range length {
			dst[out+i] = dst[s+i]
		}
	}
}

// blockTail decodes the rest of a block near the end of the input or the
// output, one symbol at a time with every check.
func (d *Decoder) blockTail(dst []byte, out int, br *bitReader) (int, error) {
	for {
		br.refill()
		if br.overrun() {
			return out, ErrTruncated
		}
		e := d.lit[br.b&litMask]
		if e&(litSpecial|litLink) == litSpecial|litLink {
			e = d.lit[1<<litBits+e>>16&0x3ff+uint32(br.b>>litBits)&(1<<(e>>8&15)-1)]
		}
		switch {
		case int32(e) < 0:
			if len(dst)-out < 1+int(e>>24&1) {
				return out, ErrTooLong
			}
			dst[out] = byte(e >> 8)
			out++
			if e&litPair != 0 {
				dst[out] = byte(e >> 16)
				out++
			}
		case e&litEOB != 0:
			br.drop(uint(e & 63))
			return out, nil
		case e&litSpecial != 0:
			return out, ErrCorrupt
		}
		if int32(e) < 0 {
			br.drop(uint(e & 63))
			continue
		}
		length := int(e>>16) + extra(br.b, e)
		br.drop(uint(e & 63))
		br.refill()
		e = d.dist[br.b&distMask]
		if e&(distSpecial|distLink) == distSpecial|distLink {
			e = d.dist[1<<distBits+e>>16&0x3ff+uint32(br.b>>distBits)&(1<<(e>>8&15)-1)]
		}
		if e&distSpecial != 0 {
			return out, ErrCorrupt
		}
		back := int(e>>16) + extra(br.b, e)
		br.drop(uint(e & 63))
		if back > out {
			return out, ErrCorrupt
		}
		if length > len(dst)-out {
			return out, ErrTooLong
		}
		if len(dst)-out-length >= 8 {
			copyFast(dst, out, back, length)
		} else {
			for i := range length {
				dst[out+i] = dst[out-back+i]
			}
		}
		out += length
	}
}

// extra is the value of length or distance entry e's extra bits, which
// follow its code in b.
func extra(b uint64, e uint32) int {
	n := e & 63
	return int(b & (1<<n - 1) >> (n - e>>8&15))
}
