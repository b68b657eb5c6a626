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

// dctCoeffs computes coeffs of the thumbnail box-filtered to half
// resolution, scaled to unit RMS.
func dctCoeffs(th *[thumbPixels]uint8) [coeffCount]int16 {
	return quantize(dctVals(th))
}

// dctVals are the unscaled coefficients (apart, so that tests compare the
// sums exactly, before rounding hides differences).
func dctVals(th *[thumbPixels]uint8) [coeffCount]float64 {
	small := halve(th)
	// Rows to frequencies u, then columns to v. Each sum runs over x (then
	// y) in order, but the loops over sums are innermost: independent
	// additions instead of one chain, the same values.
	var rowDCT [half][maxFreq]float64
	for y := range half {
		s := &rowDCT[y]
		for x, v := range small[y*half : (y+1)*half] {
			for u := range maxFreq {
				s[u] += v * cosTable[u][x]
			}
		}
	}
	var vals [coeffCount]float64
	for y := range half {
		for i, c := range coeffs {
			vals[i] += rowDCT[y][c[0]] * cosTable[c[1]][y]
		}
	}
	return vals
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
	for y := range half {
		r0, r1 := th[2*y*ThumbSize:], th[(2*y+1)*ThumbSize:]
		for x := range half {
			out[y*half+x] = float64(int(r0[2*x])+int(r0[2*x+1])+int(r1[2*x])+int(r1[2*x+1])) / 4
		}
	}
	return &out
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
