package inflate

import (
	"compress/flate"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
)

// pairLiteralsRef is the pairing by enumeration: every two literal codes
// whose lengths fit in the primary bits together, in canonical order, get
// an entry at each index their bits select.
func pairLiteralsRef(t *[litTableSize]uint32, lens []uint8) {
	type code struct {
		sym, len uint8
		rev      uint16
	}
	var count, next [maxCodeLen + 1]uint16
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	for l := 1; l <= maxCodeLen; l++ {
		next[l] = (next[l-1] + count[l-1]) << 1
	}
	var lit []code
	for s, l := range lens[:min(len(lens), 256)] {
		if l > 0 {
			c := next[l]
			next[l]++
			if l < litBits {
				lit = append(lit, code{uint8(s), l, bits.Reverse16(c) >> (16 - l)})
			}
		}
	}
	for _, a := range lit {
		for _, b := range lit {
			l := uint(a.len + b.len)
			if l > litBits {
				continue
			}
			e := litFlag | litPair | uint32(b.sym)<<16 | uint32(a.sym)<<8 | uint32(l)
			for i := int(a.rev) | int(b.rev)<<a.len; i < 1<<litBits; i += 1 << l {
				t[i] = e
			}
		}
	}
}

// pairLiterals, one pass over the table, makes the same table as the
// enumeration of code pairs, for the fixed code and every dynamic block
// of compress/flate's streams of the test inputs (knee-like noise, text,
// runs, random bytes) at every level.
func TestPairLiteralsMatchesEnumeration(t *testing.T) {
	var d, ref Decoder
	d.fixed()
	ref.fixed()
	var lens [288]uint8
	for i := range lens {
		lens[i] = map[bool]uint8{true: 8, false: 9}[i < 144 || i >= 280]
		if i >= 256 && i < 280 {
			lens[i] = 7
		}
	}
	build(ref.lit[:], litBits, lens[:], litValue, litSpecial, litSpecial|litLink)
	pairLiteralsRef(&ref.lit, lens[:])
	if d.lit != ref.lit {
		t.Fatal("fixed code: pairLiterals differs from the enumeration")
	}
	blocks := 0
	for name, data := range testInputs(rand.New(rand.NewPCG(5, 6))) {
		for _, level := range []int{flate.HuffmanOnly, 1, 6, 9} {
			src := deflate(t, data, level)
			br := bitReader{src: src}
			out := make([]byte, len(data)+fastOut)
			n := 0
			for final := false; !final; {
				br.refill()
				final = br.b&1 != 0
				typ := br.b >> 1 & 3
				br.drop(3)
				var err error
				switch typ {
				case 0:
					n, err = stored(out, n, &br)
					continue
				case 1:
					d.fixed()
				case 2:
					br.refill()
					nlit := int(br.b&31) + 257 // the header's litlen count
					if err = d.dynamic(&br); err != nil {
						t.Fatalf("%s level %d: %v", name, level, err)
					}
					build(ref.lit[:], litBits, d.lens[:nlit], litValue, litSpecial, litSpecial|litLink)
					pairLiteralsRef(&ref.lit, d.lens[:nlit])
					if !slices.Equal(d.lit[:1<<litBits], ref.lit[:1<<litBits]) {
						t.Fatalf("%s level %d block %d: pairLiterals differs from the enumeration", name, level, blocks)
					}
					blocks++
				}
				if n, err = d.blockTail(out, n, &br); err != nil {
					t.Fatalf("%s level %d: %v", name, level, err)
				}
			}
		}
	}
	if blocks < 20 {
		t.Fatalf("only %d dynamic blocks compared", blocks)
	}
}
