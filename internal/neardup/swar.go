package neardup

import (
	"encoding/binary"
	"math"
)

// The SWAR path of resampleExact, for 8-bit images of up to swarMaxW
// columns and about four times ThumbSize rows (knee-dev's 224×224): a
// target row's source rows summed eight pixels a step as 16-bit lanes of
// uint64s, then every target pixel of four target rows at once from at
// most four column sums (its taps).

// swarMaxW bounds the width: taps index a row with a byte, no bounds
// checks. Four taps cover at most four source columns a target, so no
// wider image could take them anyway.
const swarMaxW = 256

// colTaps are the column sums a target column takes (index, weight times
// 2^mx); unused ones weigh 0 and index 0.
type colTaps struct {
	i [4]uint8
	k [4]uint32
}

// rowTaps are the source rows a target row takes: y0..y0+3, weighing k
// (times 2^my; 0 for rows the target does not cover).
type rowTaps struct {
	y0 int
	k  [4]uint64
}

// swarFits tells whether resampleSWAR can take a w×h 8-bit image onto
// these spans, and sets its taps if so: at most four source rows and
// columns a target, row sums within 16 bits.
func swarFits(w, h int, ix, iy *intSpans, rows *[ThumbSize]rowTaps, cols *[ThumbSize]colTaps) bool {
	if w > swarMaxW || h < 4 || math.MaxUint8*iy.maxSum >= 1<<16 {
		return false
	}
	for d := range iy.sp {
		i, k, n := spanTaps(&iy.sp[d], iy.m)
		if n > 4 {
			return false
		}
		t := &rows[d]
		if n > 0 {
			t.y0 = min(i[0], h-4) // i[0].. are consecutive, below h
		}
		for j := range n {
			if r := i[j] - t.y0; r < len(t.k) {
				t.k[r] = uint64(k[j])
			} else {
				return false
			}
		}
	}
	for e := range ix.sp {
		i, k, n := spanTaps(&ix.sp[e], ix.m)
		if n > 4 {
			return false
		}
		for j := range n {
			cols[e].i[j], cols[e].k[j] = uint8(i[j]), k[j]
		}
	}
	return true
}

// spanTaps lists the samples sp takes, in order, and their weights (times
// 2^m); n > 4 when there are more.
func spanTaps(sp *ispan, m uint) (i [4]int, k [4]uint32, n int) {
	add := func(x int, wt uint32) {
		if wt > 0 && n < len(i) {
			i[n], k[n] = x, wt
		}
		if wt > 0 {
			n++
		}
	}
	add(sp.iLo, sp.kLo)
	for x := sp.lo; x < sp.hi && n <= len(i); x++ {
		add(x, 1<<m)
	}
	add(sp.iHi, sp.kHi)
	return i, k, n
}

// resampleSWAR is resampleExact for images swarFits takes, four target
// rows at a time: their row sums (rowsSWAR), transposed so that one uint64
// holds the four rows' sums of a column (transpose4), then their pixels
// (colsSWAR).
func resampleSWAR(pix []uint8, stride int, gain float32, pl *plan, s *scratch) {
	w := pl.w
	words := (w + 7) / 8
	for d0 := 0; d0 < ThumbSize; d0 += 4 {
		var ny [4]float32
		for r := range s.evod {
			rowsSWAR(&s.evod[r], w, pix, stride, &pl.rows[d0+r])
			ny[r] = pl.wy[d0+r].norm
		}
		for j := range words {
			x := 8 * j
			a := (*[8]uint64)(s.cols[x : x+8])
			a[0], a[2], a[4], a[6] = transpose4(s.evod[0][0][j], s.evod[1][0][j], s.evod[2][0][j], s.evod[3][0][j])
			a[1], a[3], a[5], a[7] = transpose4(s.evod[0][1][j], s.evod[1][1][j], s.evod[2][1][j], s.evod[3][1][j])
		}
		colsSWAR((*[4 * ThumbSize]float32)(s.small[d0*ThumbSize:]), &s.cols, &pl.cols, &pl.nx, &ny, gain)
	}
}

// rowsSWAR sets evod to the rows of t weighed, eight pixels a uint64:
// the even ones in evod[0], the odd ones in evod[1], four 16-bit lanes
// each (pixels 8j, 8j+2, 8j+4, 8j+6 in evod[0][j]), weighed and summed
// lane by lane: swarFits keeps every lane within 16 bits (whatever the
// bytes), so none carries into the next. Pixels past w are whatever
// follows in pix (no tap takes them), zero past its end.
func rowsSWAR(evod *[2][swarMaxW / 8]uint64, w int, pix []uint8, stride int, t *rowTaps) {
	const lanes = 0x00ff00ff00ff00ff
	k0, k1, k2, k3 := t.k[0], t.k[1], t.k[2], t.k[3]
	ev, od := &evod[0], &evod[1]
	o := t.y0 * stride
	j := 0
	if end := o + 3*stride + w; end <= len(pix) {
		// Whole words: the four rows advance 8 bytes a step, their lengths
		// checked by the loop condition only.
		r0, r1, r2, r3 := pix[o:o+w], pix[o+stride:o+stride+w], pix[o+2*stride:o+2*stride+w], pix[o+3*stride:end]
		for ; len(r0) >= 8 && len(r1) >= 8 && len(r2) >= 8 && len(r3) >= 8; j++ {
			v0, v1 := binary.LittleEndian.Uint64(r0), binary.LittleEndian.Uint64(r1)
			v2, v3 := binary.LittleEndian.Uint64(r2), binary.LittleEndian.Uint64(r3)
			r0, r1, r2, r3 = r0[8:], r1[8:], r2[8:], r3[8:]
			ev[j%len(ev)] = k0*(v0&lanes) + k1*(v1&lanes) + k2*(v2&lanes) + k3*(v3&lanes)
			od[j%len(od)] = k0*(v0>>8&lanes) + k1*(v1>>8&lanes) + k2*(v2>>8&lanes) + k3*(v3>>8&lanes)
		}
	}
	for ; 8*j < w; j++ { // the rest, zero past the end of pix
		x := o + 8*j
		v0, v1, v2, v3 := load8(pix, x), load8(pix, x+stride), load8(pix, x+2*stride), load8(pix, x+3*stride)
		ev[j%len(ev)] = k0*(v0&lanes) + k1*(v1&lanes) + k2*(v2&lanes) + k3*(v3&lanes)
		od[j%len(od)] = k0*(v0>>8&lanes) + k1*(v1>>8&lanes) + k2*(v2>>8&lanes) + k3*(v3>>8&lanes)
	}
}

// load8 is the 8 bytes of pix from x, little-endian, zero past its end.
func load8(pix []uint8, x int) uint64 {
	if x+8 <= len(pix) {
		return binary.LittleEndian.Uint64(pix[x:])
	}
	var b [8]byte
	copy(b[:], pix[min(x, len(pix)):])
	return binary.LittleEndian.Uint64(b[:])
}

// transpose4 transposes four rows of four 16-bit lanes: lane l of
// output l' is lane l' of input l.
func transpose4(e0, e1, e2, e3 uint64) (o0, o1, o2, o3 uint64) {
	const m16, m32 = 0x0000ffff0000ffff, 0x00000000ffffffff
	t0 := e0&m16 | (e1&m16)<<16 // e0.0 e1.0 e0.2 e1.2 (lanes from the low end)
	t1 := e0>>16&m16 | e1&^m16  // e0.1 e1.1 e0.3 e1.3
	t2 := e2&m16 | (e3&m16)<<16
	t3 := e2>>16&m16 | e3&^m16
	return t0&m32 | t2<<32, t1&m32 | t3<<32, t0>>32 | t2&^m32, t1>>32 | t3&^m32
}

// colsSWAR sets row r of out to target row r of cols (lane r of each
// column), each sum S of a target's taps (times 2^(mx+my)) scaled as
// resample scales its float32 sums: ((S·nx[e])·ny[r])·gain. The sums are
// taken for rows 0 and 2, and 1 and 3, in the two 32-bit lanes of a
// uint64 (they stay below 2^24).
func colsSWAR(out *[4 * ThumbSize]float32, cols *[swarMaxW]uint64, taps *[ThumbSize]colTaps, nx *[ThumbSize]float32, ny *[4]float32, gain float32) {
	const m16 = 0x0000ffff0000ffff
	for e := range taps {
		t := &taps[e]
		c0, c1, c2, c3 := cols[t.i[0]], cols[t.i[1]], cols[t.i[2]], cols[t.i[3]]
		k0, k1, k2, k3 := uint64(t.k[0]), uint64(t.k[1]), uint64(t.k[2]), uint64(t.k[3])
		s02 := k0*(c0&m16) + k1*(c1&m16) + k2*(c2&m16) + k3*(c3&m16)
		s13 := k0*(c0>>16&m16) + k1*(c1>>16&m16) + k2*(c2>>16&m16) + k3*(c3>>16&m16)
		n := nx[e]
		out[e] = float32(uint32(s02)) * n * ny[0] * gain
		out[ThumbSize+e] = float32(uint32(s13)) * n * ny[1] * gain
		out[2*ThumbSize+e] = float32(uint32(s02>>32)) * n * ny[2] * gain
		out[3*ThumbSize+e] = float32(uint32(s13>>32)) * n * ny[3] * gain
	}
}
