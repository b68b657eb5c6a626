package neardup

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// synthetic makes n fingerprints: random coefficients and thumbnails
// (noise: distinct images correlate near 0), and every 100th a near copy
// of the one before it (coefficients and thumbnail slightly perturbed),
// so that 1 % of them form pairs.
func synthetic(n int) []Fingerprint {
	fps := make([]Fingerprint, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range fps {
		fp := &fps[i]
		if i%100 == 99 {
			*fp = fps[i-1]
			fp.Pixels[31] = 1
			for k := range fp.Coeffs {
				fp.Coeffs[k] += int16(r.NormFloat64() * 100)
			}
			for range 64 {
				fp.Thumb[r.IntN(thumbPixels)] ^= 8
			}
			continue
		}
		fp.Width, fp.Height = 224, 224
		binary.LittleEndian.PutUint64(fp.Pixels[:], uint64(i))
		for k := range fp.Coeffs {
			fp.Coeffs[k] = int16(r.NormFloat64() * coeffScale)
		}
		for k := 0; k < thumbPixels; k += 8 {
			binary.LittleEndian.PutUint64(fp.Thumb[k:], r.Uint64())
		}
	}
	return fps
}

// BenchmarkFind1M groups 1,000,000 synthetic fingerprints (NEARDUP_BENCH_N to change) (issue 10: in
// at most 10 s here). It reports the heap in use after grouping beside
// the fingerprints' own size.
func BenchmarkFind1M(b *testing.B) {
	n := benchN()
	fps := synthetic(n)
	opt := DefaultOptions()
	opt.Workers = runtime.GOMAXPROCS(0)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	var res Result
	for b.Loop() {
		var err error
		if res, err = Find(context.Background(), fps, opt); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	pairs := 0
	for _, p := range res.Pairs {
		if p.B == p.A+1 && p.B%100 == 99 {
			pairs++
		}
	}
	if pairs < n/100*9/10 {
		b.Fatalf("found %d of the %d planted pairs", pairs, n/100)
	}
	b.ReportMetric(float64(pairs), "planted-pairs-found")
	b.ReportMetric(float64(len(res.Pairs)), "pairs")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/(1<<20), "MB-alloc/op")
	b.ReportMetric(float64(after.HeapSys)/(1<<20), "MB-heap-sys")
	b.ReportMetric(float64(n*EncodedSize)/(1<<20), "MB-fingerprints")
}

// benchN is the benchmark's size: NEARDUP_BENCH_N, else 1,000,000.
func benchN() int {
	if v, err := strconv.Atoi(os.Getenv("NEARDUP_BENCH_N")); err == nil && v > 0 {
		return v
	}
	return 1_000_000
}
