package neardup

import (
	"math/rand/v2"
	"testing"
)

// ncc1DRef is ncc1D as it was before align1D precomputed the scaled
// coordinates: the reference the faster one must match bit for bit.
func ncc1DRef(a, b []float64, p transform) float64 {
	var n, sa, sb, saa, sbb, sab float64
	size := len(a)
	off, last := p.t*float64(size)-0.5, float64(size-1)
	lo, hi := 0, size-1
	for lo < size && p.s*(float64(lo)+0.5)+off < 0 {
		lo++
	}
	for hi >= lo && p.s*(float64(hi)+0.5)+off > last {
		hi--
	}
	for i := lo; i <= hi; i++ {
		x := p.s*(float64(i)+0.5) + off
		x0 := min(int(x), size-2)
		f := x - float64(x0)
		va := a[x0]*(1-f) + a[x0+1]*f
		vb := b[i]
		n++
		sa, sb, saa, sbb, sab = sa+va, sb+vb, saa+va*va, sbb+vb*vb, sab+va*vb
	}
	if n < minOverlap*float64(size) {
		return -1
	}
	return pearson(n, sa, sb, saa, sbb, sab)
}

// ncc1D gives exactly the reference's correlations over and beyond the
// search range, including shifts that leave too little overlap.
func TestNCC1DMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var a, b, u [ThumbSize]float64
	for range 200 {
		for i := range a {
			a[i], b[i] = r.Float64()*255, r.Float64()*255
		}
		s := 0.8 + 0.4*r.Float64()
		scaled(&u, s)
		for range 20 {
			sh := (r.Float64() - 0.5) * 0.6
			if got, want := ncc1D(&a, &b, &u, sh), ncc1DRef(a[:], b[:], transform{s, sh}); got != want {
				t.Fatalf("s %v t %v: %v, reference %v", s, sh, got, want)
			}
		}
	}
}

// profiles are the float sums the verification was tuned with.
func TestProfiles(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var th [thumbPixels]uint8
	for i := range th {
		th[i] = uint8(r.Uint32())
	}
	var col, row [ThumbSize]float64
	for y := range ThumbSize {
		for x := range ThumbSize {
			v := float64(th[y*ThumbSize+x])
			col[x] += v
			row[y] += v
		}
	}
	if c, w := profiles(&th); c != col || w != row {
		t.Fatal("profiles differ from the float sums")
	}
}
