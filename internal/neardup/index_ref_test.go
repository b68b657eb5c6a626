package neardup

import (
	"math/rand/v2"
	"testing"
)

// probesRef is probes before its branchless selection of the three least
// reliable bits (commit 062b977).
func probesRef(sign uint64, rel *[sigBits]uint8, b, keyBits int) [1 << probeBits]uint32 {
	var key uint32
	w0, w1, w2 := 0, 0, 0
	r0, r1, r2 := 256, 256, 256
	for j, pos := range bandPositions[b][:keyBits] {
		key |= uint32(sign>>pos&1) << j
		switch r := int(rel[pos]); {
		case r < r0:
			w2, r2 = w1, r1
			w1, r1 = w0, r0
			w0, r0 = j, r
		case r < r1:
			w2, r2 = w1, r1
			w1, r1 = j, r
		case r < r2:
			w2, r2 = j, r
		}
	}
	k0, k1, k2 := uint32(1)<<w0, uint32(1)<<w1, uint32(1)<<w2
	return [1 << probeBits]uint32{key, key ^ k0, key ^ k1, key ^ k0 ^ k1, key ^ k2, key ^ k2 ^ k0, key ^ k2 ^ k1, key ^ k2 ^ k0 ^ k1}
}

// TestProbesMatchReference compares probes with probesRef on random
// signatures and reliabilities, ties among them frequent.
func TestProbesMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for n := range 20000 {
		var rel [sigBits]uint8
		levels := 1 + n%40 // few levels: many ties
		for i := range rel {
			rel[i] = uint8(r.IntN(levels) * 255 / 40)
		}
		sign, band, keyBits := r.Uint64(), n%bandCount, minBandBits+n%(maxBandBits-minBandBits+1)
		if got, want := probes(sign, &rel, band, keyBits), probesRef(sign, &rel, band, keyBits); got != want {
			t.Fatalf("case %d: probes %v, want %v", n, got, want)
		}
	}
}
