package neardup

import (
	"math/bits"
	"testing"
)

// TestProbesFlipWeakestBits checks the probe keys of one band: the key,
// then every subset of the three least reliable band bits flipped, in
// the order that makes the first four the large-collection probes (key,
// weakest, second weakest, both).
func TestProbesFlipWeakestBits(t *testing.T) {
	const band, keyBits = 3, 14
	var rel [sigBits]uint8
	for i := range rel {
		rel[i] = 200
	}
	// Band bits 5, 9 and 2 are the least reliable, in that order.
	pos := bandPositions[band]
	rel[pos[5]], rel[pos[9]], rel[pos[2]] = 1, 2, 3
	sign := uint64(0x9e3779b97f4a7c15)
	p := probes(sign, &rel, band, keyBits)
	var key uint32
	for j := range keyBits {
		key |= uint32(sign>>pos[j]&1) << j
	}
	w := [3]uint32{1 << 5, 1 << 9, 1 << 2}
	for m, got := range p {
		want := key
		for q := range 3 {
			if m>>q&1 == 1 {
				want ^= w[q]
			}
		}
		if got != want {
			t.Errorf("probe %d = %014b, want %014b", m, got, want)
		}
		if d := bits.OnesCount32(got ^ key); d != bits.OnesCount(uint(m)) {
			t.Errorf("probe %d differs from the key in %d bits", m, d)
		}
	}
}
