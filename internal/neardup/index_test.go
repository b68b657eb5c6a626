package neardup

import (
	"context"
	"math/bits"
	"math/rand/v2"
	"slices"
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

// TestFilterUsesLowFrequencies checks that the candidate filter looks at
// the low-frequency coefficients: a copy whose 64 high-frequency
// coefficients are replaced by strong noise (what a crop does to a film
// near its collection's mean; over all 128 it would correlate ~0.3) stays
// a candidate, one whose low ones are replaced is not.
func TestFilterUsesLowFrequencies(t *testing.T) {
	fps := synthetic(400)
	r := rand.New(rand.NewPCG(3, 4))
	fps[1], fps[2] = fps[0], fps[0]
	fps[1].Pixels[0]++
	fps[2].Pixels[0] += 2
	for k := sigBits; k < coeffCount; k++ {
		fps[1].Coeffs[k] = int16(r.NormFloat64() * 2 * coeffScale)
	}
	for k := range sigBits {
		fps[2].Coeffs[k] = int16(r.NormFloat64() * coeffScale)
	}
	ptrs := make([]*Fingerprint, len(fps))
	for i := range fps {
		ptrs[i] = &fps[i]
	}
	cand, err := candidates(context.Background(), ptrs, coeffCount, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cand, [2]int32{0, 1}) {
		t.Error("a copy with other high frequencies is not a candidate")
	}
	if slices.Contains(cand, [2]int32{0, 2}) {
		t.Error("a copy with other low frequencies is a candidate")
	}
}
