package inflate

import "math/bits"

// A table entry (uint32) decodes one Huffman code from the low bits of the
// bit buffer, so that a literal costs one lookup, and two literals whose
// codes fit in the primary bits together cost one too:
//
//	bits 0-5   bits to consume: the code's length plus its extra bits (two
//	           literals: both lengths; a subtable link: the primary bits)
//	literal    bit 31; bits 8-15 the byte; with bit 24, bits 16-23 a
//	           second byte
//	length,    bits 8-11 the extra bits' count, bits 16-30 the base
//	distance
//	link       bits 8-11 the subtable's bits, bits 16-29 its start
//	code-length bits 16-20 the symbol
//	litlen flags: bit 31 literal, bit 30 not a literal nor a length, then
//	           bit 29 subtable link, bit 28 end of block, neither: invalid
//	distance flags: bit 31 not a distance, then bit 30 subtable link,
//	           else invalid
const (
	litFlag     = 1 << 31
	litSpecial  = 1 << 30
	litLink     = 1 << 29
	litEOB      = 1 << 28
	litPair     = 1 << 24
	distSpecial = 1 << 31
	distLink    = 1 << 30
	clenInvalid = 1 << 31
)

// Primary table sizes: 11 bits hold the litlen codes of typical blocks
// whole; longer codes go through one subtable. A complete code's
// subtables need at most 2^k entries per k+1 codes longer than the primary
// bits (a subtree k deep has at least k+1 leaves): at most 16/5 entries a
// symbol for litlen (286 symbols, k <= 4) and 128/8 for distance (30
// symbols, k <= 7), so the extra room below always suffices.
const (
	litBits       = 11
	litTableSize  = 1<<litBits + 1024
	distBits      = 8
	distTableSize = 1<<distBits + 512
	clenBits      = 7 // the longest code-length code
	maxCodeLen    = 15
)

var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// litValue is litlen symbol s's entry before its code length is added.
func litValue(s int) uint32 {
	switch {
	case s < 256:
		return litFlag | uint32(s)<<8
	case s == 256:
		return litSpecial | litEOB
	case s < 286:
		x := uint32(lengthExtra[s-257])
		return uint32(lengthBase[s-257])<<16 | x<<8 | x
	}
	return litSpecial // 286 and 287: in the fixed code, never valid
}

// distValue is distance symbol s's entry before its code length is added.
func distValue(s int) uint32 {
	if s < 30 {
		x := uint32(distExtra[s])
		return uint32(distBase[s])<<16 | x<<8 | x
	}
	return distSpecial // 30 and 31: in the fixed code, never valid
}

func clenValue(s int) uint32 { return uint32(s) << 16 }

// build fills t with the decoding table of the code with these lengths
// (one a symbol, 0: unused): a primary table of 1<<primary entries, then
// subtables, linked by link entries. value gives a symbol's entry without
// its length; invalid marks the bit patterns no code starts (only for an
// empty code or a single code of length 1). As compress/flate and zlib,
// it accepts complete codes, those two incomplete ones, and nothing else
// (false): an over-subscribed code would be ambiguous, and an incomplete
// one lets corrupt input decode silently.
func build(t []uint32, primary uint, lens []uint8, value func(int) uint32, invalid, link uint32) bool {
	var count [maxCodeLen + 1]uint16
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	left := 1
	for l := 1; l <= maxCodeLen; l++ {
		left = left<<1 - int(count[l])
		if left < 0 {
			return false // over-subscribed
		}
	}
	if left != 0 {
		ncodes := 0
		for _, c := range count {
			ncodes += int(c)
		}
		if ncodes > 1 || ncodes == 1 && count[1] != 1 {
			return false // incomplete
		}
		for i := range 1 << primary {
			t[i] = invalid
		}
		if ncodes == 0 {
			return true
		}
	}
	// Symbols sorted by code length, then by symbol: canonical order.
	var offs [maxCodeLen + 2]uint16
	for l := 1; l <= maxCodeLen; l++ {
		offs[l+1] = offs[l] + count[l]
	}
	var sorted [288]uint16
	for s, l := range lens {
		if l != 0 {
			sorted[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	return fill(t, primary, lens, sorted[:offs[maxCodeLen]], count, value, link)
}

// fill writes the entries of the symbols in canonical order; count is the
// number of codes of each length.
func fill(t []uint32, primary uint, lens []uint8, sorted []uint16, count [maxCodeLen + 1]uint16, value func(int) uint32, link uint32) bool {
	mask := 1<<primary - 1
	code, prevLen := 0, uint(0)
	next := 1 << primary // where the next subtable goes
	subStart, subBits, subPrefix := 0, uint(0), -1
	for _, s := range sorted {
		l := uint(lens[s])
		code <<= l - prevLen
		prevLen = l
		rev := int(bits.Reverse16(uint16(code)) >> (16 - l))
		code++
		e := value(int(s)) + uint32(l)
		if l <= primary {
			for i := rev; i <= mask; i += 1 << l {
				t[i] = e
			}
			count[l]--
			continue
		}
		if p := rev & mask; p != subPrefix {
			// A new subtree below prefix p: as deep as its codes, which
			// follow in canonical order, need to fill it.
			subBits = l - primary
			for room := 1<<subBits - int(count[l]); room > 0 && primary+subBits < maxCodeLen; {
				subBits++
				room = room<<1 - int(count[primary+subBits])
			}
			subStart, subPrefix = next, p
			next += 1 << subBits
			if next > len(t) {
				return false
			}
			t[p] = link | uint32(subStart)<<16 | uint32(subBits)<<8 | uint32(primary)
		}
		for i := rev >> primary; i < 1<<subBits; i += 1 << (l - primary) {
			t[subStart+i] = e
		}
		count[l]--
	}
	return true
}

// pairLiterals turns each entry of the primary litlen table t that
// decodes a literal into one that decodes two, where the bits after the
// first code hold a whole second literal code within the primary bits:
// image data is mostly literals, and each lookup waits for the one before
// it. The second code is the one that t's entry for the bits after the
// first decodes, when its length fits in what is left of the primary
// bits; t is walked from the top, so that entry (at a lower index) is
// still a single one. One pass over the table, whatever the code.
func pairLiterals(t *[litTableSize]uint32) {
	for i := 1<<litBits - 1; i >= 0; i-- {
		e := t[i]
		n := e & 63
		if e&(litFlag|litPair) != litFlag || n >= litBits {
			continue
		}
		f := t[i>>n]
		if m := f & 63; f&(litFlag|litPair) == litFlag && n+m <= litBits {
			t[i] = e | litPair | (f>>8&0xff)<<16 + m
		}
	}
}
