package neardup

import (
	"cmp"
	"context"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"

	"github.com/kneepipe/kneepipe/internal/safe"
)

// The candidate index is multi-probe locality-sensitive hashing over the
// signatures: the signs of the coefficients relative to their mean over
// the images being grouped (what sets an image apart from the typical
// image of its collection, so that distinct images differ in about half
// the bits). Each of bandCount bands is a fixed pseudo-random choice of
// maxBandBits of the sigBits lowest-frequency bits, which move least under
// a crop; a run uses the first bandBits(n) of them, about log2 of the
// number of images, so that a random image shares a bucket with less than
// one other whatever the size of the collection (shorter keys find more heavily
// cropped copies in small collections, at no cost there); an image is
// filed under its key in each band and looks itself up under that key and
// under the keys with subsets of its probeBits least reliable bits of the
// band (the coefficients nearest the mean, which a crop flips most)
// flipped (fewer subsets from allProbesBelow images on, for speed). Two
// images are candidates when one finds the other in some band and their
// signatures differ in at most MaxHamming of all coeffCount bits and
// their sigBits lowest whitened coefficients correlate at least
// minCoeffCorrelation (which rejects random pairs far more sharply than
// bits: planted copies other than flips and rotations correlate >= 0.673
// on knee-dev and >= 0.659 on chest films, 99 % of distinct pairs < 0.52,
// random vectors ~N(0, 1/64)). Buckets are addressed
// directly (a counting sort per band), so the work grows linearly with
// the number of images.
const (
	sigBits     = 64
	bandCount   = 32
	maxBandBits = 21
	minBandBits = 12
	probeBits   = 3 // probes() flips subsets of the three least reliable bits
	// allProbesBelow is the collection size under which an image looks
	// itself up under all 1<<probeBits probes; above it, the first 4 (the
	// key and its two least reliable bits flipped) only: all 8 (measured
	// with a looser filter) cost ~1.6× the CPU time at 1M images
	// (BenchmarkFind1M, over its 10 s target);
	// in 65,536 images they cost little.
	allProbesBelow = 1 << 16
	meanPrior      = 64

	minCoeffCorrelation = 0.6
)

// bandPositions are the bit positions of each band, drawn from a fixed
// seed (so keys, and thus results, never vary).
var bandPositions = func() [bandCount][maxBandBits]uint8 {
	var p [bandCount][maxBandBits]uint8
	r := rand.New(rand.NewPCG(10, 10))
	for b := range bandCount {
		perm := r.Perm(sigBits)
		for i := range maxBandBits {
			p[b][i] = uint8(perm[i])
		}
	}
	return p
}()

// stats are the mean and spread of each coefficient.
type stats struct{ mean, scale [coeffCount]float64 }

// whitened is fp's coefficients centred and scaled by the stats, as a
// unit vector: the dot product of two is their correlation.
func (s *stats) whitened(fp *Fingerprint) [coeffCount]float32 {
	var w [coeffCount]float32
	var ss float64
	for i, c := range fp.Coeffs {
		v := (float64(c) - s.mean[i]) * s.scale[i]
		w[i] = float32(v)
		ss += v * v
	}
	if ss > 0 {
		k := float32(1 / math.Sqrt(ss))
		for i := range w {
			w[i] *= k
		}
	}
	return w
}

// lowUnit is the sigBits lowest-frequency coefficients of a whitened
// vector, rescaled to unit norm: the filter's correlation. The high
// frequencies move most under a crop and, on chest films (which sit close
// to their collection's mean), dominate the full vector: one crop of
// similarity 0.9991 correlates 0.457 over all 128, while over these 64
// every planted chest copy correlates >= 0.659.
func lowUnit(w *[coeffCount]float32) [sigBits]float32 {
	var u [sigBits]float32
	var ss float64
	for i := range u {
		u[i] = w[i]
		ss += float64(w[i]) * float64(w[i])
	}
	if ss > 0 {
		k := float32(1 / math.Sqrt(ss))
		for i := range u {
			u[i] *= k
		}
	}
	return u
}

func dotLow(a, b *[sigBits]float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func dot(a, b *[coeffCount]float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// coeffStats computes the stats over fps. The mean is shrunk towards 0 by
// n/(n+meanPrior): in a small set, a few copies of one image would
// otherwise make the mean that image, and its copies' bits noise.
func coeffStats(fps []*Fingerprint) stats {
	var s stats
	n := float64(max(len(fps), 1))
	for _, fp := range fps {
		for i := range coeffCount {
			s.mean[i] += float64(fp.Coeffs[i]) / (n + meanPrior)
		}
	}
	var v [coeffCount]float64
	for _, fp := range fps {
		for i := range coeffCount {
			d := float64(fp.Coeffs[i]) - s.mean[i]
			v[i] += d * d / n
		}
	}
	for i := range v {
		s.scale[i] = 1 / math.Sqrt(v[i]+1)
	}
	return s
}

func (s *stats) signature(fp *Fingerprint) [2]uint64 {
	var sig [2]uint64
	for i := range coeffCount {
		if float64(fp.Coeffs[i]) > s.mean[i] {
			sig[i/64] |= 1 << (i % 64)
		}
	}
	return sig
}

func hamming(a, b *[2]uint64) int {
	return bits.OnesCount64(a[0]^b[0]) + bits.OnesCount64(a[1]^b[1])
}

// probes are the keys an image looks itself up under in band b: its key
// (keyBits bits from sign, its signature's sigBits low bits), then the
// key with subsets of its probeBits least reliable bits (smallest rel:
// |whitened coefficient|) flipped: the first, then the second, both,
// the third, and so on. Three bits, not two: with two, a chest combo copy
// (similarity 0.9985) and a knee crop and combo copy (0.9976, 0.9962)
// differed from their originals in some unprobed bit of every band.
func probes(sign uint64, rel *[sigBits]uint8, b, keyBits int) [1 << probeBits]uint32 {
	var key uint32
	// r0 <= r1 <= r2 are the three smallest rel<<5 | j over the band's
	// bits (j < 32): the least reliable, ties to the earlier band bit,
	// kept by min and max rather than by branches, which mispredict.
	const none = 256 << 5
	r0, r1, r2 := uint32(none), uint32(none), uint32(none)
	for j, pos := range bandPositions[b][:keyBits] {
		key |= uint32(sign>>pos&1) << j
		v := uint32(rel[pos])<<5 | uint32(j)
		v, r0 = max(v, r0), min(v, r0)
		v, r1 = max(v, r1), min(v, r1)
		r2 = min(v, r2)
	}
	k0, k1, k2 := uint32(1)<<(r0&31), uint32(1)<<(r1&31), uint32(1)<<(r2&31)
	return [1 << probeBits]uint32{key, key ^ k0, key ^ k1, key ^ k0 ^ k1, key ^ k2, key ^ k2 ^ k0, key ^ k2 ^ k1, key ^ k2 ^ k0 ^ k1}
}

// reliability quantizes |w| of the sigBits low coefficients to a byte
// (the whitened vector has unit norm: a coefficient of one σ is ~1/11).
func reliability(w *[coeffCount]float32) [sigBits]uint8 {
	var r [sigBits]uint8
	for i := range r {
		r[i] = uint8(min(255, max(w[i], -w[i])*2048))
	}
	return r
}

// exhaustiveBelow is the collection size under which every pair is
// checked (Hamming and aspect filters only): at most ~33k pairs,
// cheaper than the index and missing nothing.
const exhaustiveBelow = 256

// candidates returns the candidate pairs (i < j, sorted, each once) of
// fps, bands spread over up to workers goroutines.
func candidates(ctx context.Context, fps []*Fingerprint, maxHamming, workers int) ([][2]int32, error) {
	f, err := newFilter(ctx, fps, maxHamming, workers)
	if err != nil {
		return nil, err
	}
	sigs := f.sigs
	if len(fps) < exhaustiveBelow {
		var out [][2]int32
		for i := range fps {
			for j := i + 1; j < len(fps); j++ {
				if hamming(&sigs[i], &sigs[j]) <= maxHamming && f.pass(i, j) {
					out = append(out, [2]int32{int32(i), int32(j)})
				}
			}
		}
		return out, ctx.Err()
	}
	perBand := make([][][2]int32, bandCount)
	err = safe.ForEach(ctx, bandCount, workers, func() func(int) {
		bk := newBuckets(len(fps))
		return func(b int) { perBand[b] = bk.pairs(&f, b) }
	})
	if err != nil {
		return nil, err
	}
	var out [][2]int32
	for _, p := range perBand {
		out = append(out, p...)
	}
	slices.SortFunc(out, func(x, y [2]int32) int { return cmp.Or(cmp.Compare(x[0], y[0]), cmp.Compare(x[1], y[1])) })
	return slices.Compact(out), nil
}

// newFilter takes the collection's coefficient statistics, then each
// image's signature, low whitened coefficients and their reliabilities,
// chunks of images spread over up to workers goroutines.
func newFilter(ctx context.Context, fps []*Fingerprint, maxHamming, workers int) (filter, error) {
	st := coeffStats(fps)
	n := len(fps)
	f := filter{fps: fps, sigs: make([][2]uint64, n), low: make([][sigBits]float32, n), rel: make([][sigBits]uint8, n), maxHamming: maxHamming}
	const chunk = 4096
	err := safe.ForEach(ctx, (n+chunk-1)/chunk, workers, func() func(int) {
		return func(c int) {
			for i := c * chunk; i < min((c+1)*chunk, n); i++ {
				f.sigs[i] = st.signature(fps[i])
				w := st.whitened(fps[i])
				f.low[i] = lowUnit(&w)
				f.rel[i] = reliability(&w)
			}
		}
	})
	return f, err
}

// buckets holds one band's images by key: start[k]..start[k+1] in items.
type buckets struct {
	bits   int // key length
	nProbe int // probes looked up per image
	start  []int32
	sigs   [][2]uint64 // signatures in bucket order, next to each other
	items  []int32
	probes []uint32 // nProbe per image, image i's key at i*nProbe
	sorted []uint32 // the same in bucket order: items[y]'s at y*nProbe
}

func newBuckets(n int) *buckets {
	k := bandBits(n)
	nProbe := 1 << probeBits
	if n >= allProbesBelow {
		nProbe = 4
	}
	return &buckets{bits: k, nProbe: nProbe, start: make([]int32, 1<<k+1), items: make([]int32, n), sigs: make([][2]uint64, n), probes: make([]uint32, n*nProbe), sorted: make([]uint32, n*nProbe)}
}

// bandBits is the key length for n images: ceil(log2 n) + 1, clamped, so
// a random probe meets about half an image.
func bandBits(n int) int {
	return min(maxBandBits, max(minBandBits, bits.Len(uint(n))+1))
}

// pairs files every image under its key in band b (a counting sort),
// then lists the filtered pairs each image finds through its probes.
func (bk *buckets) pairs(f *filter, b int) [][2]int32 {
	fps := f.fps
	clear(bk.start)
	for i := range fps {
		p := probes(f.sigs[i][0], &f.rel[i], b, bk.bits)
		copy(bk.probes[i*bk.nProbe:(i+1)*bk.nProbe], p[:])
		bk.start[p[0]+1]++
	}
	for k := 1; k < len(bk.start); k++ {
		bk.start[k] += bk.start[k-1]
	}
	fill := slices.Clone(bk.start[:1<<bk.bits])
	for i := range fps {
		k := bk.probes[i*bk.nProbe]
		bk.items[fill[k]] = int32(i)
		bk.sigs[fill[k]] = f.sigs[i]
		copy(bk.sorted[fill[k]*int32(bk.nProbe):], bk.probes[i*bk.nProbe:(i+1)*bk.nProbe])
		fill[k]++
	}
	// Images are visited in bucket order, so an image's own bucket, its
	// signature and its probes are where the previous image's were: only
	// the flipped-bit buckets are random accesses.
	var out [][2]int32
	for y, i := range bk.items {
		sig := &bk.sigs[y]
		for _, k := range bk.sorted[y*bk.nProbe : (y+1)*bk.nProbe] {
			for x := bk.start[k]; x < bk.start[k+1]; x++ {
				j := bk.items[x]
				if j == i || hamming(sig, &bk.sigs[x]) > f.maxHamming || !f.pass(int(i), int(j)) {
					continue
				}
				out = append(out, [2]int32{min(i, j), max(i, j)})
			}
		}
	}
	return out
}

// filter decides whether two images are candidates.
type filter struct {
	fps        []*Fingerprint
	sigs       [][2]uint64
	low        [][sigBits]float32 // lowUnit of each image
	rel        [][sigBits]uint8
	maxHamming int
}

// pass checks all but the Hamming distance, which callers check first
// (cheaply, on signatures they hold).
func (f *filter) pass(i, j int) bool {
	return dotLow(&f.low[i], &f.low[j]) >= minCoeffCorrelation && aspectClose(f.fps[i], f.fps[j])
}

// aspectClose says whether two sizes could be crops of one another (5 %
// per side changes the aspect ratio by at most ~11 %).
func aspectClose(a, b *Fingerprint) bool {
	ra := math.Log(float64(a.Width) / float64(max(a.Height, 1)))
	rb := math.Log(float64(b.Width) / float64(max(b.Height, 1)))
	return math.Abs(ra-rb) <= 0.2
}
