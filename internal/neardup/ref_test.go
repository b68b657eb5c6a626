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
		if got, want := new(scratch).dctVals(th), dctValsRef(th); got != want {
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

// resampleRef area-averages a w×h luma image (rows stride apart, values
// times gain on the 16-bit scale) to ThumbSize×ThumbSize: each target
// pixel is the mean of the source area it covers (fractional at the
// edges), so an image and its resized copy give nearly the same result.
// Columns collapse first (whole source rows summed as integers, one
// pass over the pixels), then each of the ThumbSize rows.
func resampleRef[T uint8 | uint16](pix []T, stride, w, h int, gain float32) [thumbPixels]float32 {
	var out [thumbPixels]float32
	if w == 0 || h == 0 {
		return out
	}
	wx, wy := axisSpans(w), axisSpans(h)
	whole := make([]uint32, w)
	acc := make([]float32, w)
	row := func(y int) []T { return pix[y*stride : y*stride+w] }
	for d, sp := range wy {
		clear(whole)
		for y := sp.lo; y < sp.hi; y++ {
			for x, v := range row(y) {
				whole[x] += uint32(v)
			}
		}
		for x, v := range whole {
			acc[x] = float32(v)
		}
		if sp.wLo > 0 {
			for x, v := range row(sp.lo - 1) {
				acc[x] += sp.wLo * float32(v)
			}
		}
		if sp.wHi > 0 {
			for x, v := range row(sp.hi) {
				acc[x] += sp.wHi * float32(v)
			}
		}
		o := out[d*ThumbSize : (d+1)*ThumbSize]
		for e, sx := range wx {
			var sum float32
			for _, v := range acc[sx.lo:sx.hi] {
				sum += v
			}
			if sx.wLo > 0 {
				sum += sx.wLo * acc[sx.lo-1]
			}
			if sx.wHi > 0 {
				sum += sx.wHi * acc[sx.hi]
			}
			o[e] = sum * sx.norm * sp.norm * gain
		}
	}
	return out
}

// equalizeRef replaces each value (0..65535) by its rank among the values
// quantized to equalizeLevels (ties share their mean rank), scaled to
// 0..255: a counting sort, no comparisons.
func equalizeRef(v []float32, out []uint8) {
	const shift = 16 - equalizeBits
	var count [1 << equalizeBits]int32
	q := make([]uint16, len(v))
	for i, x := range v {
		q[i] = uint16(min(max(x+0.5, 0), 65535)) >> shift
		count[q[i]]++
	}
	// count becomes twice the mean rank of each level: 2·below + (n-1).
	var below int32
	for l, c := range count {
		count[l] = 2*below + c - 1
		below += c
	}
	scale := 128 / float64(len(v)) // mean rank × 256 / n, from twice the rank
	for i, l := range q {
		out[i] = uint8(float64(count[l]) * scale)
	}
}

// resample (rows summed two a pass, partial rows weighed in the same
// pass, pooled scratch) and equalize (running sum over the levels that
// occur) give exactly the old thumbnails, for 8- and 16-bit pixels, sizes
// below and above ThumbSize, and strides wider than the rows.
func TestThumbnailMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	s := new(scratch)
	paths := map[string]int{}
	for i := range 400 {
		w, h := 1+r.IntN(300), 1+r.IntN(300)
		switch i % 5 {
		case 0:
			w, h = 1+r.IntN(64), 1+r.IntN(64)
		case 1:
			w, h = 160+r.IntN(97), 160+r.IntN(97) // mostly resampleSWAR
		}
		stride := w + r.IntN(3)
		var want [thumbPixels]float32
		if i%2 == 0 {
			pix := make([]uint8, stride*h)
			for j := range pix {
				pix[j] = uint8(r.Uint32())
			}
			want = resampleRef(pix, stride, w, h, 257)
			resample(pix, stride, w, h, 257, s)
		} else {
			pix := make([]uint16, stride*h)
			for j := range pix {
				pix[j] = uint16(r.Uint32())
			}
			want = resampleRef(pix, stride, w, h, 1)
			resample(pix, stride, w, h, 1, s)
		}
		switch pl := &s.plan; {
		case pl.swar:
			paths["swar"]++
		case pl.exact:
			paths["exact"]++
		default:
			paths["float32"]++
		}
		if s.small != want {
			t.Fatalf("%dx%d (stride %d): resampled thumbnail differs from the reference", w, h, stride)
		}
		var got, wantTh [thumbPixels]uint8
		equalizeRef(want[:], wantTh[:])
		s.equalize(&got)
		if got != wantTh {
			t.Fatalf("%dx%d: equalized thumbnail differs from the reference", w, h)
		}
	}
	for _, p := range []string{"swar", "exact", "float32"} {
		if paths[p] < 20 {
			t.Errorf("only %d images took the %s path (%v)", paths[p], p, paths)
		}
	}
}
