package neardup

import "math"

// The exact path of resample. Every weight of axisSpans is a multiple of
// 2^-m for a small m (a span's ends are d·n/64, so m <= 6). When, in
// addition, every sum resample's float32 arithmetic forms stays below
// 2^24 in units of the weights' 2^-(mx+my), every one of those float32
// additions and multiplications is exact (its true result is
// representable), so its result is the exact weighted sum whatever the
// order: integer arithmetic gives it bit for bit, and far cheaper. Only
// the final scaling by the norms and gain rounds, and it is done as
// before. Wider 16-bit images, whose sums need more bits, take the float32
// path.

// exactLimit bounds the integer sums: float32 holds every integer below it.
const exactLimit = 1 << 24

// maxWeightBits bounds the m tried (the weights are multiples of 1/64).
const maxWeightBits = 8

// ispan is a span with its weights times 2^m: whole samples lo..hi-1
// weigh 2^m each, lo-1 and hi weigh kLo and kHi. iLo and iHi index those
// partial samples, or 0 when their weight is 0 (so that reading them is
// always in range and adds nothing).
type ispan struct {
	lo, hi   int
	iLo, iHi int
	kLo, kHi uint32
}

// intSpans is an axis's spans as integers: m is the weights' shift and
// maxSum the largest total weight of a span (times 2^m).
type intSpans struct {
	sp     [ThumbSize]ispan
	m      uint
	maxSum uint64
}

// exactSpans converts spans whose weights are all multiples of 2^-m for
// some m <= maxWeightBits; ok is false otherwise.
func exactSpans(sps *[ThumbSize]span) (out intSpans, ok bool) {
	for m := uint(0); m <= maxWeightBits; m++ {
		if out, ok = spansAt(sps, m); ok {
			return out, true
		}
	}
	return out, false
}

// spansAt is exactSpans at one m.
func spansAt(sps *[ThumbSize]span, m uint) (out intSpans, ok bool) {
	scale := float64(uint64(1) << m)
	toInt := func(w float32) (uint32, bool) {
		f := float64(w) * scale // exact: w has 24 significant bits
		return uint32(f), f >= 0 && f == math.Trunc(f) && f < exactLimit
	}
	out.m = m
	for d, sp := range sps {
		kLo, okLo := toInt(sp.wLo)
		kHi, okHi := toInt(sp.wHi)
		if !okLo || !okHi {
			return out, false
		}
		is := ispan{lo: sp.lo, hi: sp.hi, kLo: kLo, kHi: kHi}
		if kLo > 0 {
			is.iLo = sp.lo - 1
		}
		if kHi > 0 {
			is.iHi = sp.hi
		}
		out.sp[d] = is
		out.maxSum = max(out.maxSum, uint64(sp.hi-sp.lo)<<m+uint64(kLo)+uint64(kHi))
	}
	return out, true
}

// plan is how resample maps a w×h image of pixels up to maxPix: the
// spans of both axes, as integers too when exact, and the taps when
// swar (see swar.go). It depends on those three numbers only, so scratch
// keeps the last one.
type plan struct {
	w, h   int
	maxPix uint64
	wx, wy [ThumbSize]span
	ix, iy intSpans
	exact  bool
	swar   bool
	rows   [ThumbSize]rowTaps
	cols   [ThumbSize]colTaps
	nx     [ThumbSize]float32 // wx's norms times 2^-(mx+my)
}

// planFor returns s's plan for a w×h image, made anew when the size or
// pixel type differs from the last one's.
func (s *scratch) planFor(w, h int, maxPix uint64) *plan {
	pl := &s.plan
	if pl.w == w && pl.h == h && pl.maxPix == maxPix {
		return pl
	}
	*pl = plan{w: w, h: h, maxPix: maxPix, wx: axisSpans(w), wy: axisSpans(h)}
	ix, okx := exactSpans(&pl.wx)
	iy, oky := exactSpans(&pl.wy)
	pl.ix, pl.iy = ix, iy
	pl.exact = okx && oky && maxPix*ix.maxSum*iy.maxSum < exactLimit
	if !pl.exact {
		return pl
	}
	// (S·2^-k)·norm rounds as S·(norm·2^-k): the power of two is exact.
	unit := float32(1 / float64(uint64(1)<<(ix.m+iy.m)))
	for e := range pl.nx {
		pl.nx[e] = pl.wx[e].norm * unit
	}
	pl.swar = maxPix == math.MaxUint8 && swarFits(w, h, &pl.ix, &pl.iy, &pl.rows, &pl.cols)
	return pl
}

// resampleExact is resample through integer sums (see plan.exact).
func resampleExact[T uint8 | uint16](pix []T, stride, w int, gain float32, pl *plan, s *scratch) {
	if p8, ok := any(pix).([]uint8); ok && pl.swar {
		resampleSWAR(p8, stride, gain, pl, s)
		return
	}
	if cap(s.whole) < w {
		s.whole, s.acc = make([]uint32, w), make([]float32, w)
	}
	acc := s.whole[:w]
	row := func(y int) []T { return pix[y*stride : y*stride+w] }
	for d := range pl.iy.sp {
		sumRowsExact(acc, row, &pl.iy.sp[d], pl.iy.m)
		colsExact((*[ThumbSize]float32)(s.small[d*ThumbSize:]), acc, &pl.ix, &pl.nx, pl.wy[d].norm, gain)
	}
}

// sumRowsExact sets acc to the rows of sp weighed (times 2^m): up to
// three whole rows and one partial one in one pass, else the whole rows
// summed (sumRows) and then the partial ones weighed in.
func sumRowsExact[T uint8 | uint16](acc []uint32, row func(int) []T, sp *ispan, m uint) {
	n := len(acc)
	m &= 31 // as is (the sums fit 24 bits): lets the shifts go unchecked
	lo, hi := row(sp.iLo)[:n], row(sp.iHi)[:n]
	kLo, kHi := sp.kLo, sp.kHi
	if k := sp.hi - sp.lo; k >= 1 && k <= 3 && (kLo == 0 || kHi == 0) {
		if kLo == 0 { // one partial row at most: call it lo
			lo, kLo = hi, kHi
		}
		a := row(sp.lo)[:n]
		switch k {
		case 1:
			for x := range acc {
				acc[x] = uint32(a[x])<<m + kLo*uint32(lo[x])
			}
		case 2:
			b := row(sp.lo + 1)[:n]
			for x := range acc {
				acc[x] = (uint32(a[x])+uint32(b[x]))<<m + kLo*uint32(lo[x])
			}
		default:
			b, c := row(sp.lo + 1)[:n], row(sp.lo + 2)[:n]
			for x := range acc {
				acc[x] = (uint32(a[x])+uint32(b[x])+uint32(c[x]))<<m + kLo*uint32(lo[x])
			}
		}
		return
	}
	sumRows(acc, row, sp.lo, sp.hi)
	for x := range acc {
		acc[x] = acc[x]<<m + kLo*uint32(lo[x]) + kHi*uint32(hi[x])
	}
}

// colsExact sets o to the column spans of acc, each sum S (times
// 2^(mx+my)) scaled as resample scales its float32 sums:
// ((S·nx[e])·ny)·gain.
func colsExact(o *[ThumbSize]float32, acc []uint32, ix *intSpans, nx *[ThumbSize]float32, ny, gain float32) {
	m := ix.m & 31 // as is (the sums fit 24 bits)
	for e := range ix.sp {
		sp := &ix.sp[e]
		var whole uint32
		if sp.hi-sp.lo == 3 {
			three := acc[sp.lo : sp.lo+3 : sp.lo+3]
			whole = three[0] + three[1] + three[2]
		} else {
			for _, v := range acc[sp.lo:sp.hi] {
				whole += v
			}
		}
		sum := whole<<m + sp.kLo*acc[sp.iLo] + sp.kHi*acc[sp.iHi]
		o[e] = float32(sum) * nx[e] * ny * gain
	}
}
