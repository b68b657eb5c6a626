package neardup

import "math"

// coeffCount is the number of DCT coefficients kept.
const coeffCount = 128

// coeffScale maps unit RMS to int16 steps.
const coeffScale = 2048

// coeffs lists the DCT coefficients (u, v) kept: the lowest frequencies
// but the mean, by u+v then u. Low frequencies barely move under a crop
// of a few per cent or a resize.
var coeffs = func() [coeffCount][2]int {
	var c [coeffCount][2]int
	n := 0
	for s := 1; n < coeffCount; s++ {
		for u := 0; u <= s && n < coeffCount; u++ {
			c[n] = [2]int{u, s - u}
			n++
		}
	}
	return c
}()

// maxFreq bounds the frequencies in coeffs.
const maxFreq = 16

// cosTable[k][i] is cos(pi*(2i+1)k/(2*half)), the DCT-II basis.
var cosTable = func() [maxFreq][half]float64 {
	var t [maxFreq][half]float64
	for k := range maxFreq {
		for i := range half {
			t[k][i] = math.Cos(math.Pi * float64((2*i+1)*k) / (2 * half))
		}
	}
	return t
}()

// dctVals are the unscaled coefficients of the thumbnail box-filtered to
// half resolution (apart, so that tests compare the sums exactly, before
// rounding hides differences). Rows go to frequencies u, then columns to
// v; every sum runs over x (then y) in order, four sums at a time.
func (s *scratch) dctVals(th *[thumbPixels]uint8) [coeffCount]float64 {
	halveInto(th, &s.half)
	for y := range half {
		r := (*[half]float64)(s.half[y*half:])
		for u := 0; u < maxFreq; u += 4 {
			s.rowT[u][y], s.rowT[u+1][y], s.rowT[u+2][y], s.rowT[u+3][y] =
				dot4(r, &cosTable[u], r, &cosTable[u+1], r, &cosTable[u+2], r, &cosTable[u+3])
		}
	}
	var vals [coeffCount]float64
	for i := 0; i < coeffCount; i += 4 {
		c := coeffs[i : i+4]
		vals[i], vals[i+1], vals[i+2], vals[i+3] = dot4(
			&s.rowT[c[0][0]], &cosTable[c[0][1]], &s.rowT[c[1][0]], &cosTable[c[1][1]],
			&s.rowT[c[2][0]], &cosTable[c[2][1]], &s.rowT[c[3][0]], &cosTable[c[3][1]])
	}
	return vals
}

// dot4 returns the dot products a0·b0 .. a3·b3, each summed in index
// order: four independent chains of additions instead of one.
func dot4(a0, b0, a1, b1, a2, b2, a3, b3 *[half]float64) (s0, s1, s2, s3 float64) {
	for x := range half {
		s0 += a0[x] * b0[x]
		s1 += a1[x] * b1[x]
		s2 += a2[x] * b2[x]
		s3 += a3[x] * b3[x]
	}
	return s0, s1, s2, s3
}

// quantize scales coefficients to unit RMS in int16.
func quantize(vals [coeffCount]float64) [coeffCount]int16 {
	var ss float64
	for _, s := range vals {
		ss += s * s
	}
	var out [coeffCount]int16
	if ss == 0 {
		return out
	}
	norm := coeffScale / math.Sqrt(ss/coeffCount)
	for i, v := range vals {
		out[i] = int16(max(-32767, min(32767, math.Round(v*norm))))
	}
	return out
}

// halve box-filters a thumbnail to half×half.
func halve(th *[thumbPixels]uint8) *[halfPixels]float64 {
	var out [halfPixels]float64
	halveInto(th, &out)
	return &out
}

func halveInto(th *[thumbPixels]uint8, out *[halfPixels]float64) {
	for y := range half {
		r0, r1 := th[2*y*ThumbSize:], th[(2*y+1)*ThumbSize:]
		for x := range half {
			out[y*half+x] = float64(int(r0[2*x])+int(r0[2*x+1])+int(r1[2*x])+int(r1[2*x+1])) / 4
		}
	}
}

// Signatures exposes the index bits for diagnostics (bench/neardup).
func Signatures(fps []Fingerprint) [][2]uint64 {
	p := make([]*Fingerprint, len(fps))
	for i := range fps {
		p[i] = &fps[i]
	}
	st := coeffStats(p)
	out := make([][2]uint64, len(fps))
	for i, fp := range p {
		out[i] = st.signature(fp)
	}
	return out
}

// CoeffCorrelations exposes, for diagnostics, the correlation of the
// whitened coefficients of each pair (indices into fps).
func CoeffCorrelations(fps []Fingerprint, pairs [][2]int) []float32 {
	p := make([]*Fingerprint, len(fps))
	for i := range fps {
		p[i] = &fps[i]
	}
	st := coeffStats(p)
	out := make([]float32, len(pairs))
	for k, pr := range pairs {
		a, b := st.whitened(p[pr[0]]), st.whitened(p[pr[1]])
		out[k] = dot(&a, &b)
	}
	return out
}
