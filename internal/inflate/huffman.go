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
//	link       bits 8-11 the subtable's bits, bits 16-25 its start past
//	           the primary table
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

// Primary table sizes: 12 bits hold the litlen codes of typical blocks
// whole, and twice as many literal pairs as 11 (a knee IDAT's literal
// codes take 5 to 9 bits: ~1500 pairs a block, 71 % of its lookups decode
// two literals against 53 % with 11, 10 % fewer lookups; 13 bits were no
// faster); longer codes go through one subtable. A complete code's
// subtables need at most 2^k entries per k+1 codes longer than the
// primary bits (a subtree k deep has at least k+1 leaves): at most 8/4
// entries a symbol for litlen (286 symbols, k <= 3) and 128/8 for
// distance (30 symbols, k <= 7), so the extra room below always suffices.
const (
	litBits       = 12
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

// The entries of each kind of symbol before their lengths are added, read
// by build (a lookup rather than a call a code).
var (
	litValues  = values(288, litValue)
	distValues = values(32, distValue)
	clenValues = values(19, clenValue)
)

func values(n int, value func(int) uint32) []uint32 {
	v := make([]uint32, n)
	for s := range v {
		v[s] = value(s)
	}
	return v
}

// build fills t with the decoding table of the code with these lengths
// (one a symbol, 0: unused): a primary table of 1<<primary entries, then
// subtables, linked by link entries. values are the symbols' entries without
// their lengths; invalid marks the bit patterns no code starts (only for an
// empty code or a single code of length 1). With pair, an entry whose
// bits hold two whole literal codes decodes both (pairs). As
// compress/flate and zlib, it accepts complete codes, those two
// incomplete ones, and nothing else (false): an over-subscribed code
// would be ambiguous, and an incomplete one lets corrupt input decode
// silently.
func build(t []uint32, primary uint, lens []uint8, values []uint32, invalid, link uint32, pair bool) bool {
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
	var c codes
	c.sorted, c.count = sorted[:offs[maxCodeLen]], count
	c.primary(t, primary, values, invalid, pair)
	return c.subtables(t, primary, values, link)
}

// codes are a code's symbols in canonical order (sorted), with the
// number of each length, walked by primary and then subtables.
type codes struct {
	sorted []uint16
	count  [maxCodeLen + 1]uint16
	next   int // sorted's next symbol
	code   int // its canonical code
	// The literals of the primary bits, their bit-reversed codes and
	// symbol<<8, those of length l at [litEnd[l-1]:litEnd[l]].
	litRev [256]uint16
	litSym [256]uint32
	litEnd [maxCodeLen + 1]int
}

// primary fills t[:1<<bits] one code length at a time: the table for l
// bits is two copies of the one for l-1 (an entry depends only on the
// low bits its codes take), with the codes of length l, and with pair
// the literal pairs l bits long, written over it, once each. Entries no
// code reaches keep invalid; the prefixes of longer codes are left for
// subtables.
func (c *codes) primary(t []uint32, bits uint, values []uint32, invalid uint32, pair bool) {
	t[0] = invalid
	for l := uint(1); l <= bits; l++ {
		h := 1 << (l - 1)
		copy(t[h:2*h], t[:h])
		c.code <<= 1
		nlit := c.litEnd[l-1]
		for range c.count[l] {
			s := c.sorted[c.next]
			r := reverse(c.code, l)
			t[r] = values[s] + uint32(l)
			if s < 256 {
				c.litRev[nlit&255], c.litSym[nlit&255] = r, uint32(s)<<8
				nlit++
			}
			c.next++
			c.code++
		}
		c.litEnd[l] = nlit
		if pair {
			c.pairs(t, l)
		}
	}
}

// pairs writes the entries of the literal pairs whose codes take l bits
// together: image data is mostly literals, and each lookup waits for the
// one before it, so an entry whose bits hold a whole second literal code
// decodes both. For each second literal, the first ones of its length
// pair are written in a loop of two loads and a store.
func (c *codes) pairs(t []uint32, l uint) {
	tt := (*[1 << litBits]uint32)(t)
	for lb := uint(1); lb < l; lb++ {
		la := l - lb
		a0, a1 := c.litEnd[la-1], c.litEnd[la]
		revs, syms := c.litRev[a0:a1], c.litSym[a0:a1]
		syms = syms[:len(revs)]
		if len(revs) == 0 {
			continue
		}
		for j := c.litEnd[lb-1]; j < c.litEnd[lb]; j++ {
			rb := int(c.litRev[j&255]) << la
			e := litFlag | litPair | c.litSym[j&255]<<8 | uint32(l)
			for i, ra := range revs {
				tt[(int(ra)|rb)&litMask] = e | syms[i]
			}
		}
	}
}

// subtables writes the codes longer than the primary bits: a link in
// the primary table for each prefix, to a subtable of the bits after it.
func (c *codes) subtables(t []uint32, primary uint, values []uint32, link uint32) bool {
	mask := 1<<primary - 1
	next := 1 << primary // where the next subtable goes
	subStart, subBits, subPrefix := 0, uint(0), -1
	for l := primary + 1; l <= maxCodeLen; l++ {
		c.code <<= 1
		for range c.count[l] {
			s := c.sorted[c.next]
			rev := int(reverse(c.code, l))
			c.next++
			c.code++
			if p := rev & mask; p != subPrefix {
				// A new subtree below prefix p: as deep as its codes, which
				// follow in canonical order, need to fill it.
				subBits = l - primary
				for room := 1<<subBits - int(c.count[l]); room > 0 && primary+subBits < maxCodeLen; {
					subBits++
					room = room<<1 - int(c.count[primary+subBits])
				}
				subStart, subPrefix = next, p
				next += 1 << subBits
				if next > len(t) {
					return false
				}
				t[p] = link | uint32(subStart-1<<primary)<<16 | uint32(subBits)<<8 | uint32(primary)
			}
			e := values[s] + uint32(l)
			for i := rev >> primary; i < 1<<subBits; i += 1 << (l - primary) {
				t[subStart+i] = e
			}
			c.count[l]--
		}
	}
	return true
}

// reverse is code's l low bits in reverse order: DEFLATE packs Huffman
// codes most significant bit first.
func reverse(code int, l uint) uint16 { return bits.Reverse16(uint16(code)) >> (16 - l) }
