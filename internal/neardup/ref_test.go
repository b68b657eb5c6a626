package neardup

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The implementations before the exact speed-ups (commit 2ac392a), kept
// verbatim as references the faster ones must match bit for bit.

func align1DRef(a, b *[ThumbSize]float64) transform {
	best, bestC := transform{1, 0}, math.Inf(-1)
	try := func(p transform) {
		if c := ncc1DRef(a[:], b[:], p); c > bestC {
			best, bestC = p, c
		}
	}
	for s := minScale; s <= maxScale+1e-9; s += scaleStep {
		for t := -maxShift; t <= maxShift+1e-9; t += shiftStep {
			try(transform{s, t})
		}
	}
	for ds, dt := scaleStep/3, shiftStep/3; ds > scaleStep/10; ds, dt = ds/3, dt/3 {
		c := best
		for i := -1; i <= 1; i++ {
			for j := -1; j <= 1; j++ {
				try(transform{c.s + float64(i)*ds, c.t + float64(j)*dt})
			}
		}
	}
	return best
}

func dctValsRef(th *[thumbPixels]uint8) [coeffCount]float64 {
	small := halve(th)
	var rowDCT [half][maxFreq]float64 // rows to frequencies u, then columns to v
	for y := range half {
		for u := range maxFreq {
			var s float64
			for x := range half {
				s += small[y*half+x] * cosTable[u][x]
			}
			rowDCT[y][u] = s
		}
	}
	var vals [coeffCount]float64
	for i, c := range coeffs {
		var s float64
		for y := range half {
			s += rowDCT[y][c[0]] * cosTable[c[1]][y]
		}
		vals[i] = s
	}
	return vals
}

// randomThumb is noise (smooth or not) or a constant thumbnail.
func randomThumb(r *rand.Rand) *[thumbPixels]uint8 {
	var th [thumbPixels]uint8
	kind := r.IntN(3)
	for i := range th {
		switch kind {
		case 0:
			th[i] = uint8(r.Uint32())
		case 1:
			th[i] = uint8(i%ThumbSize*3 + i/ThumbSize + r.IntN(8))
		default:
			th[i] = 77
		}
	}
	return &th
}

// dctVals with the sums innermost gives exactly the old sums (before
// rounding, which would hide most differences).
func TestDCTValsMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for i := range 300 {
		th := randomThumb(r)
		if got, want := dctVals(th), dctValsRef(th); got != want {
			t.Fatalf("thumbnail %d: coefficients differ from the reference", i)
		}
	}
}

// align1D (coordinates per scale, early exit for little overlap) finds
// exactly the old transform, on profiles of related and unrelated
// thumbnails.
func TestAlign1DMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for i := range 100 {
		a := randomThumb(r)
		b := a
		if i%2 == 0 {
			b = randomThumb(r)
		}
		ca, ra := profiles(a)
		cb, rb := profiles(b)
		for _, p := range [][2]*[ThumbSize]float64{{&ca, &cb}, {&ra, &rb}, {&ca, &rb}} {
			if got, want := align1D(p[0], p[1]), align1DRef(p[0], p[1]); got != want {
				t.Fatalf("pair %d: align1D %+v, reference %+v", i, got, want)
			}
		}
	}
}
