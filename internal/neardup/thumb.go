package neardup

import "sync"

// scratch is the working memory of one thumbnail and its coefficients,
// pooled: allocated (or, on the stack, zeroed) per image it cost more than
// the arithmetic, and large frames grew the stacks of every goroutine that
// fingerprints.
type scratch struct {
	small [thumbPixels]float32          // resample's output
	q     [thumbPixels]uint16           // equalize's quantized values
	count [1 << equalizeBits / 4]uint64 // 4 levels a word; zero between images
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
// takes four levels a step (16-bit lanes of a uint64: the counts, and the
// sums below them, are at most thumbPixels, so no lane carries into the
// next). Thumbnails span most levels, so it runs over all of them.
func (s *scratch) equalize(out *[thumbPixels]uint8) {
	const shift = 16 - equalizeBits
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
		s.count[l/4] += 1 << (l % 4 * 16)
	}
	// Each lane becomes 2·below + c for its count c: one more than twice
	// the mean rank of the level (2·below + c-1), at most 2n.
	const ones = 0x0001000100010001 // times it, lanes sum those below them
	var below uint64
	for j, c := range &s.count {
		upTo := c * ones // lane: the counts up to its own
		s.count[j] = 2*(upTo+below*ones) - c
		below += upTo >> 48 // the only dependency between steps
	}
	// The mean rank × 256 / n from twice the rank, v·128/n, is v >> 5:
	// n is 128·2^5 (checked at compile time), so the float64 v·(128/n)
	// was exact and its truncation this floor.
	const rankShift = 5
	var _ [0]struct{} = [thumbPixels - 128<<rankShift]struct{}{}
	for i, l := range &s.q {
		twice := s.count[l/4] >> (l % 4 * 16) & 0xffff // >= 1: l occurs
		out[i] = uint8((twice - 1) >> rankShift)
	}
	clear(s.count[:])
}
