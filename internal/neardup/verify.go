package neardup

import "math"

// The alignment searched between two thumbnails: b(u) ≈ a(s·u + t) per
// axis in image-relative coordinates. A crop of up to 5 % per side of
// either image gives s in [0.9, 1.11] and |t| up to 0.055; the search
// reaches a little further.
const (
	minScale, maxScale = 0.87, 1.15
	maxShift           = 0.075
	scaleStep          = 0.02
	shiftStep          = 0.01
	minOverlap         = 0.75 // share of b's samples that must land inside a
)

// transform maps b's coordinates to a's along one axis.
type transform struct{ s, t float64 }

// Similarity is the Pearson correlation of b's thumbnail with a's after
// the best alignment, at half the thumbnail resolution: a's thumbnail is
// resampled (bilinear) onto b's pixels by a scale and shift per axis,
// found on the row and column profiles and refined in two dimensions,
// then both are box-filtered to half size. 1 means identical up to a
// linear change of intensity; distinct images score lower.
func Similarity(a, b *Fingerprint) float64 { return similarity(a, b, -1) }

// refineMargin: pairs whose first alignment scores more than this below
// the floor are not refined. On knee-dev's planted copies refinement
// gained at most 0.0056.
const refineMargin = 0.015

// similarity is Similarity, but with floor > 0 a pair whose first
// estimate already reaches floor, or falls well below it, is returned
// unrefined: refinement could not change whether it reaches floor.
func similarity(a, b *Fingerprint, floor float64) float64 {
	if a.Pixels == b.Pixels {
		return 1
	}
	var fa [thumbPixels]float64
	for i, v := range a.Thumb {
		fa[i] = float64(v)
	}
	hb := halve(&b.Thumb)
	colA, rowA := profiles(&a.Thumb)
	colB, rowB := profiles(&b.Thumb)
	p := [2]transform{align1D(&colA, &colB), align1D(&rowA, &rowB)}
	best := ncc2D(&fa, hb, p)
	if floor > 0 && (best < floor-refineMargin || best >= floor) {
		return best // refining cannot change the verdict
	}
	// A few rounds of coordinate ascent on (sx, tx, sy, ty), halving the steps.
	for ds, dt := scaleStep/4, shiftStep/4; ds > scaleStep/32; ds, dt = ds/2, dt/2 {
		for axis := range 2 {
			for _, d := range []transform{{ds, 0}, {-ds, 0}, {0, dt}, {0, -dt}} {
				q := p
				q[axis].s += d.s
				q[axis].t += d.t
				if c := ncc2D(&fa, hb, q); c > best+1e-9 {
					best, p = c, q
				}
			}
		}
	}
	return best
}

// profiles are the column and row sums of a thumbnail (integers, so
// exact in any order).
func profiles(th *[thumbPixels]uint8) (col, row [ThumbSize]float64) {
	var c [ThumbSize]uint32
	for y := range ThumbSize {
		var s uint32
		for x, v := range th[y*ThumbSize : (y+1)*ThumbSize] {
			c[x] += uint32(v)
			s += uint32(v)
		}
		row[y] = float64(s)
	}
	for x, v := range c {
		col[x] = float64(v)
	}
	return col, row
}

// align1D finds the scale and shift that best correlate profile b with
// profile a resampled: a grid, then two finer grids around the best.
func align1D(a, b *[ThumbSize]float64) transform {
	best, bestC := transform{1, 0}, math.Inf(-1)
	var u [ThumbSize]float64 // a's coordinates of b's samples at scale u.s, before the shift
	try := func(p transform) {
		if c := ncc1D(a, b, &u, p.t); c > bestC {
			best, bestC = p, c
		}
	}
	for s := minScale; s <= maxScale+1e-9; s += scaleStep {
		scaled(&u, s)
		for t := -maxShift; t <= maxShift+1e-9; t += shiftStep {
			try(transform{s, t})
		}
	}
	for ds, dt := scaleStep/3, shiftStep/3; ds > scaleStep/10; ds, dt = ds/3, dt/3 {
		c := best
		for i := -1; i <= 1; i++ {
			scaled(&u, c.s+float64(i)*ds)
			for j := -1; j <= 1; j++ {
				try(transform{c.s + float64(i)*ds, c.t + float64(j)*dt})
			}
		}
	}
	return best
}

// scaled sets u[i] to s·(i+0.5): computed once per scale for all shifts.
func scaled(u *[ThumbSize]float64, s float64) {
	for i := range u {
		u[i] = s * (float64(i) + 0.5)
	}
}

// ncc1D correlates profile b with a resampled by scale and shift t (u as
// scaled sets it for the scale); -1 when too few of b's samples land
// inside a.
func ncc1D(a, b, u *[ThumbSize]float64, t float64) float64 {
	const size = ThumbSize
	off, last := t*size-0.5, float64(size-1)
	// x grows with i (s > 0): the samples inside a are one run lo..hi.
	lo, hi := 0, size-1
	for lo < size && u[lo]+off < 0 {
		lo++
	}
	for hi >= lo && u[hi]+off > last {
		hi--
	}
	if float64(hi-lo+1) < minOverlap*size {
		return -1
	}
	var n, sa, sb, saa, sbb, sab float64
	for i := lo; i <= hi; i++ {
		x := u[i] + off
		x0 := min(int(x), size-2)
		f := x - float64(x0)
		va := a[x0]*(1-f) + a[x0+1]*f
		vb := b[i]
		n++
		sa, sb, saa, sbb, sab = sa+va, sb+vb, saa+va*va, sbb+vb*vb, sab+va*vb
	}
	return pearson(n, sa, sb, saa, sbb, sab)
}

// tap is one bilinear sample position along an axis.
type tap struct {
	i0 int
	f  float64
}

// taps maps b's full-resolution samples along an axis into a; ok[i] is
// false for samples of b's half-resolution pixel i not wholly inside a.
func taps(p transform) (t [ThumbSize]tap, ok [half]bool, n int) {
	for i := range ThumbSize {
		x := p.s*(float64(i)+0.5) + p.t*ThumbSize - 0.5
		in := x >= 0 && x <= ThumbSize-1
		x = max(0, min(x, ThumbSize-1))
		x0 := min(int(x), ThumbSize-2)
		t[i] = tap{x0, x - float64(x0)}
		if i%2 == 0 {
			ok[i/2] = in
		} else {
			ok[i/2] = ok[i/2] && in
			if ok[i/2] {
				n++
			}
		}
	}
	return t, ok, n
}

// ncc2D is the correlation of b's half-resolution thumbnail with a
// resampled by p and halved, over b's pixels that land inside a; -1 when
// too few do.
func ncc2D(a *[thumbPixels]float64, hb *[halfPixels]float64, p [2]transform) float64 {
	tx, okx, nx := taps(p[0])
	ty, oky, ny := taps(p[1])
	if float64(nx) < minOverlap*half || float64(ny) < minOverlap*half {
		return -1
	}
	// Horizontal pass: each row of a at b's columns.
	var h [ThumbSize][ThumbSize]float64
	for y := range ThumbSize {
		row := a[y*ThumbSize : (y+1)*ThumbSize]
		for i, t := range tx {
			h[y][i] = row[t.i0]*(1-t.f) + row[t.i0+1]*t.f
		}
	}
	var n, sa, sb, saa, sbb, sab float64
	for J := range half {
		if !oky[J] {
			continue
		}
		t0, t1 := ty[2*J], ty[2*J+1]
		for I := range half {
			if !okx[I] {
				continue
			}
			var va float64
			for _, t := range [2]tap{t0, t1} {
				va += (h[t.i0][2*I]+h[t.i0][2*I+1])*(1-t.f) + (h[t.i0+1][2*I]+h[t.i0+1][2*I+1])*t.f
			}
			va /= 4
			vb := hb[J*half+I]
			n++
			sa, sb, saa, sbb, sab = sa+va, sb+vb, saa+va*va, sbb+vb*vb, sab+va*vb
		}
	}
	return pearson(n, sa, sb, saa, sbb, sab)
}

// pearson is the correlation from sums; 0 when either side is flat.
func pearson(n, sa, sb, saa, sbb, sab float64) float64 {
	va, vb := saa-sa*sa/n, sbb-sb*sb/n
	if va <= 1e-9 || vb <= 1e-9 {
		return 0
	}
	return (sab - sa*sb/n) / math.Sqrt(va*vb)
}
