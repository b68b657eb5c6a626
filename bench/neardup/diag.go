package main

import (
	"fmt"
	"math/bits"
	"slices"
	"sync"

	"github.com/kneepipe/kneepipe/internal/neardup"
)

// diagnose prints, per kind, the Hamming distance and similarity of each
// planted copy to its original (min, quantiles), and for all pairs of
// distinct originals the Hamming distances and the highest similarities:
// the margin the threshold sits in.
func diagnose(items []item, fps []neardup.Fingerprint, all bool) {
	orig := map[string]int{}
	var origs []int
	for i, it := range items {
		if it.kind == "orig" {
			orig[it.root] = i
			origs = append(origs, i)
		}
	}
	sigs := neardup.Signatures(fps)
	ham := func(a, b int) int {
		return bits.OnesCount64(sigs[a][0]^sigs[b][0]) + bits.OnesCount64(sigs[a][1]^sigs[b][1])
	}
	for _, k := range kinds {
		var pairs [][2]int
		for i, it := range items {
			if it.kind == k.name {
				pairs = append(pairs, [2]int{orig[it.root], i})
			}
		}
		cs := neardup.CoeffCorrelations(fps, pairs)
		slices.Sort(cs)
		if len(cs) > 0 {
			fmt.Printf("diag %-8s coefficient correlation min %.3f p1 %.3f p50 %.3f\n", k.name, cs[0], cs[len(cs)/100], cs[len(cs)/2])
		}
		var hs []int
		var ss []float64
		for i, it := range items {
			if it.kind == k.name {
				o := orig[it.root]
				hs = append(hs, ham(o, i))
				ss = append(ss, neardup.Similarity(&fps[o], &fps[i]))
			}
		}
		slices.Sort(hs)
		slices.Sort(ss)
		if len(hs) == 0 {
			continue
		}
		fmt.Printf("diag %-8s hamming max %d p99 %d p50 %d | similarity min %.4f p1 %.4f p5 %.4f p50 %.4f\n", k.name,
			hs[len(hs)-1], hs[len(hs)*99/100], hs[len(hs)/2], ss[0], ss[len(ss)/100], ss[len(ss)*5/100], ss[len(ss)/2])
	}
	if !all {
		var pairs [][2]int
		for x, i := range origs {
			for _, j := range origs[x+1:] {
				pairs = append(pairs, [2]int{i, j})
			}
		}
		cs := neardup.CoeffCorrelations(fps, pairs)
		slices.Sort(cs)
		m := len(cs)
		fmt.Printf("diag distinct coefficient correlation max %.3f p99.99 %.3f p99.9 %.3f p99 %.3f p50 %.3f\n", cs[m-1], cs[m-1-m/10000], cs[m-1-m/1000], cs[m-1-m/100], cs[m/2])
		var hs []int
		for x, i := range origs {
			for _, j := range origs[x+1:] {
				hs = append(hs, ham(i, j))
			}
		}
		slices.Sort(hs)
		n := len(hs)
		fmt.Printf("diag distinct pairs %d: hamming min %d p0.01%% %d p0.1%% %d p1%% %d p5%% %d p50 %d\n", n, hs[0], hs[n/10000], hs[n/1000], hs[n/100], hs[n/20], hs[n/2])
		return
	}
	// All pairs of distinct originals.
	type res struct {
		h []int
		s []float64
	}
	results := make([]res, 2)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for x := w; x < len(origs); x += 2 {
				for _, j := range origs[x+1:] {
					i := origs[x]
					results[w].h = append(results[w].h, ham(i, j))
					results[w].s = append(results[w].s, neardup.Similarity(&fps[i], &fps[j]))
				}
			}
		}()
	}
	wg.Wait()
	hs := append(results[0].h, results[1].h...)
	ss := append(results[0].s, results[1].s...)
	slices.Sort(hs)
	slices.Sort(ss)
	n := len(ss)
	fmt.Printf("diag distinct pairs %d: hamming min %d p0.01%% %d p0.1%% %d p1%% %d p50 %d | similarity top %.4f %.4f %.4f %.4f %.4f, p99.9 %.4f p99 %.4f\n", n,
		hs[0], hs[n/10000], hs[n/1000], hs[n/100], hs[n/2], ss[n-1], ss[n-2], ss[n-3], ss[n-5], ss[n-10], ss[n-n/1000], ss[n-n/100])
}
