package neardup

import "sync"

// scratch is the working memory of one thumbnail and its coefficients,
// pooled: allocated (or, on the stack, zeroed) per image it cost more than
// the arithmetic, and large frames grew the stacks of every goroutine that
// fingerprints.
type scratch struct {
	small [thumbPixels]float32      // resample's output
	q     [thumbPixels]uint16       // equalize's quantized values
	count [1 << equalizeBits]uint16 // zero between images
	half  [halfPixels]float64
	rowT  [maxFreq][half]float64 // rowT[u][y]: row y's DCT at frequency u
	whole []uint32               // a source row's worth, resample's
	acc   []float32
	evod  [4][2][swarMaxW / 8]uint64 // resampleSWAR's, with cols
	cols  [swarMaxW]uint64
	plan  plan // the last image's
}

// scratches holds scratch between fingerprints.
var scratches = sync.Pool{New: func() any { return new(scratch) }}

// finish equalizes the resampled thumbnail into fp.Thumb and takes its
// coefficients.
func (s *scratch) finish(fp *Fingerprint) {
	s.equalize(&fp.Thumb)
	fp.Coeffs = quantize(s.dctVals(&fp.Thumb))
}

// resample area-averages a w×h luma image (rows stride apart, values
// times gain on the 16-bit scale) to ThumbSize×ThumbSize into s.small:
// each target pixel is the mean of the source area it covers (fractional
// at the edges), so an image and its resized copy give nearly the same
// result. Columns collapse first (whole source rows summed as integers,
// then the partial ones weighed in, one pass over the pixels), then each
// of the ThumbSize rows.
func resample[T uint8 | uint16](pix []T, stride, w, h int, gain float32, s *scratch) {
	out := &s.small
	if w == 0 || h == 0 {
		clear(out[:])
		return
	}
	pl := s.planFor(w, h, uint64(^T(0)))
	if pl.exact {
		resampleExact(pix, stride, w, gain, pl, s)
		return
	}
	wx, wy := &pl.wx, &pl.wy
	if cap(s.whole) < w {
		s.whole, s.acc = make([]uint32, w), make([]float32, w)
	}
	whole, acc := s.whole[:w], s.acc[:w]
	row := func(y int) []T { return pix[y*stride : y*stride+w] }
	for d, sp := range wy {
		if n := sp.hi - sp.lo; n >= 1 && n <= 3 && (sp.wLo == 0 || sp.wHi == 0) {
			sumWeighFew(acc, row, sp)
		} else {
			sumRows(whole, row, sp.lo, sp.hi)
			weighRows(acc, whole, row, sp)
		}
		o := out[d*ThumbSize : (d+1)*ThumbSize]
		for e, sx := range wx {
			var sum float32
			if sx.hi-sx.lo == 3 { // as the loop below: 0 + a is a
				sum = acc[sx.lo] + acc[sx.lo+1] + acc[sx.lo+2]
			} else {
				for _, v := range acc[sx.lo:sx.hi] {
					sum += v
				}
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
}

// sumRows sets whole to the sum of rows lo..hi-1 (none: zero), up to
// three rows a pass.
func sumRows[T uint8 | uint16](whole []uint32, row func(int) []T, lo, hi int) {
	n := len(whole)
	if hi == lo {
		clear(whole)
		return
	}
	for y := lo; y < hi; y += 3 {
		set := y == lo
		switch hi - y {
		case 1:
			a := row(y)[:n]
			if set {
				for x := range whole {
					whole[x] = uint32(a[x])
				}
			} else {
				for x := range whole {
					whole[x] += uint32(a[x])
				}
			}
		case 2:
			a, b := row(y)[:n], row(y + 1)[:n]
			if set {
				for x := range whole {
					whole[x] = uint32(a[x]) + uint32(b[x])
				}
			} else {
				for x := range whole {
					whole[x] += uint32(a[x]) + uint32(b[x])
				}
			}
		default:
			a, b, c := row(y)[:n], row(y + 1)[:n], row(y + 2)[:n]
			if set {
				for x := range whole {
					whole[x] = uint32(a[x]) + uint32(b[x]) + uint32(c[x])
				}
			} else {
				for x := range whole {
					whole[x] += uint32(a[x]) + uint32(b[x]) + uint32(c[x])
				}
			}
		}
	}
}

// sumWeighFew is sumRows then weighRows in one pass, for 1 to 3 whole
// rows and at most one partial one (a target row of an image up to ~4
// times ThumbSize: 224 rows give 3 whole rows and a half): the same
// float32 operations, as adding 0·v changes no sum.
func sumWeighFew[T uint8 | uint16](acc []float32, row func(int) []T, sp span) {
	n := len(acc)
	w, part := sp.wLo, row(sp.lo)[:n] // part: any row when w is 0
	if w > 0 {
		part = row(sp.lo - 1)[:n]
	} else if sp.wHi > 0 {
		w, part = sp.wHi, row(sp.hi)[:n]
	}
	switch a := row(sp.lo)[:n]; sp.hi - sp.lo {
	case 1:
		for x := range acc {
			acc[x] = float32(uint32(a[x])) + w*float32(part[x])
		}
	case 2:
		b := row(sp.lo + 1)[:n]
		for x := range acc {
			acc[x] = float32(uint32(a[x])+uint32(b[x])) + w*float32(part[x])
		}
	default:
		b, c := row(sp.lo + 1)[:n], row(sp.lo + 2)[:n]
		for x := range acc {
			acc[x] = float32(uint32(a[x])+uint32(b[x])+uint32(c[x])) + w*float32(part[x])
		}
	}
}

// weighRows sets acc to whole plus the partial rows of sp at their
// weights, in that order (the float32 operations of adding each row in a
// pass of its own).
func weighRows[T uint8 | uint16](acc []float32, whole []uint32, row func(int) []T, sp span) {
	whole = whole[:len(acc)]
	switch {
	case sp.wLo > 0 && sp.wHi > 0:
		lo, hi := row(sp.lo - 1)[:len(acc)], row(sp.hi)[:len(acc)]
		for x := range acc {
			acc[x] = float32(whole[x]) + sp.wLo*float32(lo[x]) + sp.wHi*float32(hi[x])
		}
	case sp.wLo > 0:
		lo := row(sp.lo - 1)[:len(acc)]
		for x := range acc {
			acc[x] = float32(whole[x]) + sp.wLo*float32(lo[x])
		}
	case sp.wHi > 0:
		hi := row(sp.hi)[:len(acc)]
		for x := range acc {
			acc[x] = float32(whole[x]) + sp.wHi*float32(hi[x])
		}
	default:
		for x := range acc {
			acc[x] = float32(whole[x])
		}
	}
}

// equalize replaces each value of s.small (0..65535) by its rank among
// the values quantized to equalizeLevels (ties share their mean rank),
// scaled to 0..255: a counting sort, no comparisons, whose running sum
// covers only the levels between the lowest and the highest.
func (s *scratch) equalize(out *[thumbPixels]uint8) {
	const shift = 16 - equalizeBits
	lowest, highest := uint16(len(s.count)-1), uint16(0)
	for i, x := range &s.small {
		f := x + 0.5 // as min(max(x+0.5, 0), 65535): x is never NaN
		if f < 0 {
			f = 0
		}
		if f > 65535 {
			f = 65535
		}
		l := uint16(f) >> shift
		s.q[i] = l
		s.count[l]++
		lowest, highest = min(lowest, l), max(highest, l)
	}
	// count becomes twice the mean rank of each level: 2·below + (n-1),
	// at most 3n-2.
	var below uint16
	levels := s.count[lowest : highest+1]
	for l, c := range levels {
		levels[l] = 2*below + c - 1
		below += c
	}
	scale := 128 / float64(thumbPixels) // mean rank × 256 / n, from twice the rank
	for i, l := range &s.q {
		out[i] = uint8(float64(s.count[l]) * scale)
	}
	clear(levels)
}
