package inflate

import (
	"compress/flate"
	"fmt"
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

// build with pairs, one store a pair, makes the same table as the
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
	build(ref.lit[:], litBits, lens[:], litValues, litSpecial, litSpecial|litLink, false)
	pairLiteralsRef(&ref.lit, lens[:])
	if d.lit != ref.lit {
		t.Fatal("fixed code: the pairs differ from the enumeration")
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
					build(ref.lit[:], litBits, d.lens[:nlit], litValues, litSpecial, litSpecial|litLink, false)
					pairLiteralsRef(&ref.lit, d.lens[:nlit])
					if !slices.Equal(d.lit[:1<<litBits], ref.lit[:1<<litBits]) {
						t.Fatalf("%s level %d block %d: the pairs differ from the enumeration", name, level, blocks)
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

// randomCode is the lengths of a random complete code of symbols 0..256
// (literals and end-of-block) whose longest codes take 15 bits, made by
// splitting leaves of a code tree, mostly the deepest (long codes) or a
// random one (short codes, many pairs).
func randomCode(r *rand.Rand) []uint8 {
	depths := []uint8{0}
	for n := 2 + r.IntN(256); len(depths) < n; {
		i := r.IntN(len(depths))
		if r.IntN(3) == 0 {
			i = slices.Index(depths, slices.Max(depths))
		}
		if depths[i] == maxCodeLen {
			continue
		}
		depths[i]++
		depths = append(depths, depths[i])
	}
	if slices.Max(depths) < maxCodeLen {
		i := slices.Index(depths, slices.Max(depths))
		for depths[i] < maxCodeLen {
			depths[i]++
			depths = append(depths, depths[i])
		}
	}
	lens := make([]uint8, 257)
	for i, s := range r.Perm(257)[:len(depths)] {
		lens[s] = depths[i]
	}
	if lens[256] == 0 { // give end-of-block a leaf
		for s := range lens {
			if lens[s] != 0 {
				lens[256], lens[s] = lens[s], 0
				break
			}
		}
	}
	return lens
}

// TestLongCodesAndMixedBlocks: streams of a stored block, a fixed one and
// dynamic ones of random complete codes up to 15 bits long (codes in
// subtables, literal pairs in the primary table next to their links)
// decode as compress/flate decodes them, and each code's primary table
// holds exactly the pairs of the enumeration.
func TestLongCodesAndMixedBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var d, ref Decoder
	for i := range 300 {
		var w bitWriter
		w.storedBlock(false, []byte("stored"))
		w.fixedBlock(false, []int{'f', 'i', 'x', 200, 256})
		var used []int
		for range 1 + r.IntN(3) {
			lit := randomCode(r)
			var syms, present []int
			for s, l := range lit[:256] {
				if l != 0 {
					present = append(present, s)
				}
			}
			for range 1000 + r.IntN(3000) {
				if len(present) > 0 {
					syms = append(syms, present[r.IntN(len(present))])
				}
			}
			w.dynamicBlock(false, lit, []uint8{1}, append(syms, 256))
			build(d.lit[:], litBits, lit, litValues, litSpecial, litSpecial|litLink, true)
			build(ref.lit[:], litBits, lit, litValues, litSpecial, litSpecial|litLink, false)
			pairLiteralsRef(&ref.lit, lit)
			if !slices.Equal(d.lit[:1<<litBits], ref.lit[:1<<litBits]) {
				t.Fatalf("stream %d: the primary table differs from the enumeration's", i)
			}
			used = append(used, int(slices.Max(lit)))
		}
		w.fixedBlock(true, []int{'e', 'n', 'd', 256})
		check(t, fmt.Sprintf("stream %d (longest codes %v)", i, used), w.bytes())
	}
}
