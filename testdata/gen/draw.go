package main

import "image"

// The drawing varies every image the way real radiographs of different
// patients differ, so that distinct sample images stay well apart under
// internal/neardup's aligned correlation (neardup_test.go): the knee's
// position, tilt and magnification; the shape of each condyle, the plateau,
// the shafts and their lean, the fibula and the patella; a medial/lateral
// asymmetry of the joint space; the soft tissue; a smooth exposure field
// (heel effect, tissue thickness); a trabecular texture; collimation
// borders and a side marker. Grade still sets the joint space, the
// osteophytes and the sclerosis. Integers only (see the package comment).

// knee holds the integer geometry of one drawn knee, in local coordinates:
// origin at the joint centre, u across (towards the fibula when side is 1),
// v down, in pixels before magnification.
type knee struct {
	cx, cy    int        // joint centre in the image
	sin, cos  int        // rotation, ×4096
	zoom      int        // magnification, per cent
	side      int        // +1 or -1: side of the fibula (lateral)
	gap       [2]int     // joint-space width, medial and lateral
	cond      [2]condyle // [0] medial, [1] lateral
	shaftW    int        // femoral shaft half-width
	flare     int        // rows over which the shaft widens into the condyles
	femLean   int        // femoral shaft lean, pixels per 64 rows
	plateauW  [2]int     // tibial plateau half-width, medial and lateral
	tibShaftW int
	taper     int // rows over which the plateau narrows into the shaft
	tibLean   int
	spine     int // height of the tibial spines
	fib       fibula
	pat       patella
	osteo     int    // osteophyte size in pixels (0 for low grades)
	tissue    [3]int // soft tissue: axis offset, thickness, width change
}

// condyle is an ellipse dx from the axis with radii rx, ry.
type condyle struct{ dx, rx, ry int }

// fibula: a head ellipse (rx, ry) in from the lateral plateau edge and down
// from the plateau, and a shaft of half-width w leaning lean per 64 rows.
type fibula struct{ in, down, rx, ry, w, lean int }

// patella: an ellipse (rx, ry) at dx across and dy above the joint, adding
// add to the femur's brightness.
type patella struct{ dx, dy, rx, ry, add int }

func newKnee(r *rng, cx, cy, grade int, side int) knee {
	gaps := [5]int{15, 12, 8, 5, 2}
	s := r.between(-520, 520) // up to about ±7.3°
	k := knee{
		cx: cx + r.between(-20, 20), cy: cy + r.between(-14, 14),
		sin: s, cos: isqrt(4096*4096 - s*s), zoom: r.between(84, 118), side: side,
		shaftW: r.between(24, 42), flare: r.between(26, 60), femLean: r.between(-9, 9),
		tibShaftW: r.between(26, 42), taper: r.between(30, 64), tibLean: r.between(-8, 8),
		spine:  r.between(2, 9),
		fib:    fibula{r.between(2, 14), r.between(24, 42), r.between(9, 17), r.between(7, 13), r.between(4, 9), r.between(-6, 6)},
		pat:    patella{r.between(-16, 16), r.between(28, 56), r.between(22, 34), r.between(24, 38), r.between(10, 30)},
		tissue: [3]int{r.between(-25, 25), r.between(30, 70), r.between(-40, 0)},
	}
	for i := range 2 {
		k.gap[i] = max(1, gaps[grade]+r.between(-3, 3))
		k.cond[i] = condyle{r.between(24, 40), r.between(28, 46), r.between(18, 34)}
		k.plateauW[i] = r.between(58, 84)
	}
	if grade >= 2 { // medial narrowing, as in most osteoarthritic knees
		k.gap[0] = max(1, k.gap[0]-r.between(0, grade))
		k.osteo = 2*grade + r.between(0, 4)
	}
	return k
}

// local maps image pixel (x, y) to the knee's local coordinates.
func (k *knee) local(x, y int) (u, v int) {
	dx, dy := x-k.cx, y-k.cy
	d := 4096 * k.zoom / 100
	return (dx*k.cos + dy*k.sin) / d, (dy*k.cos - dx*k.sin) / d
}

// lateral is 1 when local column u lies on the fibula's side, else 0.
func (k *knee) lateral(u int) int {
	if u*k.side > 0 {
		return 1
	}
	return 0
}

// femur reports whether local (u, v) is inside the femur.
func (k *knee) femur(u, v int) bool {
	for i, c := range k.cond {
		cu := (2*i - 1) * k.side * c.dx // medial on the -side, lateral on +side
		cv := -k.gap[i]/2 - c.ry
		if inEllipse(u, v, cu, cv, c.rx, c.ry) {
			return true
		}
		// Osteophytes: lips at the outer margin of each condyle.
		edge := c.dx + c.rx
		du := abs(u)
		if k.osteo > 0 && (u*k.side > 0) == (i == 1) && du >= edge-2 && du <= edge+k.osteo && v > cv && v-cv <= c.ry/2-(du-edge) {
			return true
		}
	}
	top := -k.gap[0]/2 - k.cond[0].ry
	if t := -k.gap[1]/2 - k.cond[1].ry; t < top {
		top = t
	}
	if v > top+4 {
		return false
	}
	// Shaft, leaning, widening into the metaphysis over flare rows above top.
	w := k.shaftW
	if d := top - v; d < k.flare {
		reach := (k.cond[0].dx + k.cond[0].rx + k.cond[1].dx + k.cond[1].rx) / 2
		w += (reach - k.shaftW) * (k.flare - d) / k.flare
	}
	return abs(u-v*k.femLean/64) <= w
}

// tibia reports whether local (u, v) is inside the tibia or the fibula.
func (k *knee) tibia(u, v int) bool {
	i := k.lateral(u)
	pw := k.plateauW[i]
	top := (k.gap[i] + 1) / 2
	du := abs(u)
	// Plateau surface: concave on each side, with the spines in the middle.
	surf := top + 3*du*du/(pw*pw/4+1)
	if du < 12 {
		surf -= (12 - du) * k.spine / 12
	}
	if v >= surf {
		w := pw
		if d := v - top; d > 10 {
			if d >= 10+k.taper {
				w = k.tibShaftW
			} else {
				w = pw - (pw-k.tibShaftW)*(d-10)/k.taper
			}
		}
		if abs(u-v*k.tibLean/64) <= w {
			return true
		}
		if k.osteo > 0 && v-top <= k.osteo && du <= pw+k.osteo-(v-top) {
			return true
		}
	}
	f := k.fib
	fu := k.side * (k.plateauW[1] - f.in)
	if inEllipse(u, v, fu, top+f.down, f.rx, f.ry) {
		return true
	}
	return v >= top+f.down && abs(u-fu-(v-top-f.down)*f.lean/64) <= f.w
}

func (k *knee) bone(x, y int) bool {
	u, v := k.local(x, y)
	return k.femur(u, v) || k.tibia(u, v)
}

// tissueAt is the soft-tissue thickness over (x, y), 0 outside the limb:
// thickest at the limb's axis, falling off towards its edges.
func (k *knee) tissueAt(x, y int) int {
	u, v := k.local(x, y)
	u -= k.tissue[0] + v*k.femLean/128
	half := k.plateauW[0] + 34 + k.tissue[2]/2 + v*v/400
	if abs(u) >= half {
		return 0
	}
	return k.tissue[1] * (half*half - u*u) / (half * half)
}

// grid is smooth value noise: random values at the corners of cw×ch
// cells, bilinearly interpolated.
type grid struct {
	cw, ch, nx int
	v          []int
}

func newGrid(r *rng, w, h, cw, ch, amp int) grid {
	g := grid{cw: cw, ch: ch, nx: w/cw + 2}
	g.v = make([]int, g.nx*(h/ch+2))
	for i := range g.v {
		g.v[i] = r.between(-amp, amp)
	}
	return g
}

func (g grid) at(x, y int) int {
	i, j := x/g.cw, y/g.ch
	fx, fy := x-i*g.cw, y-j*g.ch
	p := g.v[j*g.nx+i:]
	q := g.v[(j+1)*g.nx+i:]
	top := p[0]*(g.cw-fx) + p[1]*fx
	bot := q[0]*(g.cw-fx) + q[1]*fx
	return (top*(g.ch-fy) + bot*fy) / (g.cw * g.ch)
}

// look holds the per-image rendering levels and fields.
type look struct {
	field, texture     grid
	tissue, bone, cort int
	sclerosis          int
	contrast, bright   int
	clip               image.Rectangle // collimated area; darker outside
	marker             image.Point     // top-left of the side marker
}

func newLook(r *rng, w, h, grade int) look {
	l := look{
		field:   newGrid(r, w, h, w/r.between(2, 5)+1, h/r.between(2, 4)+1, r.between(10, 26)),
		texture: newGrid(r, w, h, r.between(12, 22), r.between(12, 22), r.between(8, 16)),
		tissue:  r.between(34, 62), bone: r.between(120, 156), cort: r.between(40, 70),
		contrast: r.between(80, 120), bright: r.between(-14, 14),
	}
	if grade >= 3 {
		l.sclerosis = 8 + 4*grade + r.between(0, 8)
	}
	l.clip = image.Rect(r.between(0, 1)*r.between(4, w/12), r.between(0, 1)*r.between(3, h/10),
		w-r.between(0, 1)*r.between(4, w/12), h-r.between(0, 1)*r.between(3, h/10))
	l.marker = image.Pt(r.between(l.clip.Min.X+4, l.clip.Max.X-24), r.between(0, 1)*(h-30)+r.between(6, 10))
	return l
}

// draw renders one image.
func draw(spec *imageSpec) *image.Gray {
	r := &rng{s: seedOf(spec.id)}
	if spec.rescanOf != "" {
		orig := *spec
		orig.id, orig.rescanOf = spec.rescanOf, ""
		return rescan(draw(&orig), r)
	}
	w, h := 300, 162
	var knees []knee
	if spec.wide {
		w, h = 640, 161
		knees = []knee{newKnee(r, w/4, h/2, spec.look, 1), newKnee(r, 3*w/4, h/2, spec.look, -1)}
	} else {
		knees = []knee{newKnee(r, w/2, h/2, spec.look, 2*r.intn(2)-1)}
	}
	l := newLook(r, w, h, spec.look)
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			// 32 levels before exposure: the smooth fields then come in flat
			// steps, which PNG stores in a third of the bytes.
			v := l.pixel(knees, x, y, h) &^ 7
			img.Pix[y*img.Stride+x] = uint8(max(0, min(255, v*l.contrast/100+l.bright)))
		}
	}
	drawMarker(img, l.marker, knees[0].side)
	sprinkle(img, r)
	return img
}

// sprinkle adds sparse deterministic noise: about one pixel in 300 moves a
// little.
func sprinkle(img *image.Gray, r *rng) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	for range w * h / 300 {
		x, y := r.intn(w), r.intn(h)
		p := &img.Pix[y*img.Stride+x]
		*p = uint8(max(0, min(255, int(*p)+r.between(-8, 8))))
	}
}

// rescan is src scanned again: cropped by a few pixels per side and scaled
// back to the same size (bilinear), exposed a little brighter, with its own
// sparse noise. internal/neardup must find it (neardup_test.go).
func rescan(src *image.Gray, r *rng) *image.Gray {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	crop := image.Rect(r.between(6, 12), r.between(2, 5), w-r.between(6, 12), h-r.between(2, 5))
	out := image.NewGray(src.Rect)
	at := func(x, y int) int { return int(src.Pix[y*src.Stride+x]) }
	for y := range h {
		sy := crop.Min.Y*256 + y*crop.Dy()*256/h // source row, ×256
		y0, fy := sy/256, sy%256
		y1 := min(y0+1, h-1)
		for x := range w {
			sx := crop.Min.X*256 + x*crop.Dx()*256/w
			x0, fx := sx/256, sx%256
			x1 := min(x0+1, w-1)
			top := at(x0, y0)*(256-fx) + at(x1, y0)*fx
			bot := at(x0, y1)*(256-fx) + at(x1, y1)*fx
			v := (top*(256-fy) + bot*fy) / 65536 &^ 7 // flat steps, as in draw
			out.Pix[y*out.Stride+x] = uint8(min(255, v*105/100+6))
		}
	}
	sprinkle(out, r)
	return out
}

// pixel is the value at (x, y) before exposure: background field, soft
// tissue, then bone (cortex at its edges, texture and the subchondral
// band inside).
func (l *look) pixel(knees []knee, x, y, h int) int {
	const c = 3 // cortex thickness
	v := 26 + 12*y/h + l.field.at(x, y)
	for i := range knees {
		v += knees[i].tissueAt(x, y) * l.tissue / 64
	}
	for i := range knees {
		k := &knees[i]
		if !k.bone(x, y) {
			continue
		}
		ku, kv := k.local(x, y)
		d := abs(kv)
		bone := l.bone + 30*(h/2-min(d, h/2))/(h/2) + l.texture.at(x, y)
		if l.sclerosis > 0 && d < k.gap[0]/2+10 {
			bone += l.sclerosis
		}
		if !k.bone(x-c, y) || !k.bone(x+c, y) || !k.bone(x, y-c) || !k.bone(x, y+c) {
			bone += l.cort
		}
		if inEllipse(ku, kv, k.pat.dx, -k.pat.dy, k.pat.rx, k.pat.ry) {
			bone += k.pat.add // the patella, seen through the femur
		}
		v = max(v, bone)
	}
	if !(image.Point{x, y}).In(l.clip) {
		v = 10 + v/8
	}
	return v
}

// drawMarker writes a bright 12×18 side letter, L or R, at p.
func drawMarker(img *image.Gray, p image.Point, side int) {
	rows := [2][6]uint8{ // 4-wide glyphs, scaled ×3
		{0b1000, 0b1000, 0b1000, 0b1000, 0b1000, 0b1111}, // L
		{0b1110, 0b1001, 0b1110, 0b1100, 0b1010, 0b1001}, // R
	}[max(side, 0)]
	for j := range 18 {
		for i := range 12 {
			if rows[j/3]>>(3-i/3)&1 == 1 {
				if q := p.Add(image.Pt(i, j)); q.In(img.Rect) {
					img.Pix[q.Y*img.Stride+q.X] = 235
				}
			}
		}
	}
}

// isqrt is the integer square root of 0 <= n < 1<<30 (floor), in 32-bit
// int arithmetic like everything here.
func isqrt(n int) int {
	x := 0
	for b := 1 << 15; b > 0; b >>= 1 {
		if (x+b)*(x+b) <= n {
			x += b
		}
	}
	return x
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// inEllipse reports whether (x,y) lies in the axis-aligned ellipse centred
// at (ex,ey) with radii rx, ry (integer arithmetic only).
func inEllipse(x, y, ex, ey, rx, ry int) bool {
	dx, dy := int64(x-ex), int64(y-ey)
	a, b := int64(rx), int64(ry)
	return dx*dx*b*b+dy*dy*a*a <= a*a*b*b
}
