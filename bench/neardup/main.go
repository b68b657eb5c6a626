// Command neardup measures kneepipe's near-duplicate detection
// (internal/neardup) on real radiographs with planted copies, beside
// Debian's findimagedupes on the same files.
//
//	go run ./bench/neardup -knee ../shared/knee-dev -work .tools/neardup
//	go run ./bench/neardup -corpus .tools/xray-corpus -work .tools/neardup-xray -hardneg
//
// -corpus takes any folder of 8-bit gray PNGs with an images.csv whose
// first column is the path (scripts/fetch-xray-corpus.sh writes one of
// chest radiographs); a patient column splits the false pairs into
// different patients and one patient's other radiographs, and a radiograph
// column marks files that are one radiograph twice in the source (no false
// pair). -hardneg prints the most similar pairs of distinct originals.
//
// It writes a corpus under -work (the originals, and for a seeded sample
// of them one copy per kind of edit: see kinds), then fingerprints and
// groups it, and prints per kind the recall (copies grouped with their
// original) and the false pairs (two images of different originals in one
// group, or verified as a pair). With -fid it runs findimagedupes at 90 %
// and 95 % on the same corpus, and times both tools on the originals.
package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kneepipe/kneepipe/internal/neardup"
)

func main() {
	knee := flag.String("knee", "../shared/knee-dev", "knee-dev directory (images.csv and PNGs)")
	corpusDir := flag.String("corpus", "", "another corpus instead of -knee: images.csv (path first; optional patient and radiograph columns) and 8-bit gray PNGs")
	hardneg := flag.Bool("hardneg", false, "compare all pairs of originals: the most similar distinct pairs and the least similar copies")
	work := flag.String("work", ".tools/neardup", "work directory for the corpus")
	sample := flag.Int("sample", 200, "originals that get planted copies")
	seed := flag.Uint64("seed", 1, "seed of the sample and the edits")
	fid := flag.Bool("fid", false, "also run findimagedupes (Debian) at 90 and 95 %")
	diag := flag.Bool("diag", false, "print Hamming and similarity distributions of the planted copies")
	diagAll := flag.Bool("diagall", false, "with -diag, the similarity of all pairs of originals too (slow)")
	threshold := flag.Float64("threshold", neardup.DefaultThreshold, "similarity threshold")
	hamming := flag.Int("hamming", neardup.DefaultMaxHamming, "max Hamming distance of candidates")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the timed originals run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "neardup:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if *corpusDir != "" {
		*knee = *corpusDir
	}
	if err := run(*knee, *work, *sample, *seed, *fid, *diag, *diagAll, *hardneg, neardup.Options{Threshold: *threshold, MaxHamming: *hamming, Workers: runtime.GOMAXPROCS(0)}); err != nil {
		fmt.Fprintln(os.Stderr, "neardup:", err)
		os.Exit(1)
	}
}

// item is one corpus file and the original it was made from.
type item struct {
	path, root, kind string
}

func run(knee, work string, sample int, seed uint64, fid, diag, diagAll, hardneg bool, opt neardup.Options) error {
	corpus := filepath.Join(work, "corpus")
	items, err := generate(knee, corpus, sample, seed)
	if err != nil {
		return err
	}
	labels, err := labelsOf(knee)
	if err != nil {
		return err
	}
	fmt.Printf("corpus: %d files (%d originals, %d planted copies) in %s\n", len(items), count(items, "orig"), len(items)-count(items, "orig"), corpus)

	if err := checkDecoders(items); err != nil {
		return err
	}
	t0 := time.Now()
	fps, err := fingerprintAll(items, opt.Workers)
	if err != nil {
		return err
	}
	tFP := time.Since(t0)
	t0 = time.Now()
	res, err := neardup.Find(context.Background(), fps, opt)
	if err != nil {
		return err
	}
	tGroup := time.Since(t0)
	fmt.Printf("kneepipe: fingerprint %v, group %v (threshold %.3f, max Hamming %d): %d groups, %d verified pairs\n",
		tFP.Round(time.Millisecond), tGroup.Round(time.Millisecond), opt.Threshold, opt.MaxHamming, len(res.Groups), len(res.Pairs))
	var sets [][]int
	for _, g := range res.Groups {
		var s []int
		for _, m := range g.Members {
			s = append(s, m.Index)
		}
		sets = append(sets, s)
	}
	var pairs [][2]int
	for _, p := range res.Pairs {
		pairs = append(pairs, [2]int{p.A, p.B})
	}
	report("kneepipe", items, sets, pairs)
	patientSplit("kneepipe", items, sets, labels)
	if hardneg {
		hardNegatives(items, fps, sets, labels, opt.Threshold)
	}
	if err := mirrored(items, opt.Threshold); err != nil {
		return err
	}
	if diag {
		diagnose(items, fps, diagAll)
	}
	if fid {
		if err := findimagedupes(items, corpus, labels); err != nil {
			return err
		}
	}
	return timeOriginals(items, corpus, opt, fid)
}

func count(items []item, kind string) int {
	n := 0
	for _, it := range items {
		if it.kind == kind {
			n++
		}
	}
	return n
}

// timeOriginals times read + fingerprint + group over the originals
// alone, and with fid findimagedupes on the same directory, in alternating
// rounds (the machine is shared: the best round of each is compared).
func timeOriginals(items []item, corpus string, opt neardup.Options, fid bool) error {
	var orig []item
	for _, it := range items {
		if it.kind == "orig" {
			orig = append(orig, it)
		}
	}
	const rounds = 3
	best, bestFP, bestGroup, bestFid := time.Duration(1<<62), time.Duration(0), time.Duration(0), time.Duration(1<<62)
	for range rounds {
		t0 := time.Now()
		fps, err := fingerprintAll(orig, opt.Workers)
		if err != nil {
			return err
		}
		t1 := time.Now()
		if _, err := neardup.Find(context.Background(), fps, opt); err != nil {
			return err
		}
		if el := time.Since(t0); el < best {
			best, bestFP, bestGroup = el, t1.Sub(t0), time.Since(t1)
		}
		if fid {
			t0 := time.Now()
			if err := exec.Command("findimagedupes", "-t", "90%", filepath.Join(corpus, "orig")).Run(); err != nil {
				return fmt.Errorf("findimagedupes on the originals: %w", err)
			}
			bestFid = min(bestFid, time.Since(t0))
		}
	}
	fmt.Printf("kneepipe: read + fingerprint + group of the %d originals: %v (fingerprint %v, group %v; best of %d, %d workers)\n",
		len(orig), best.Round(time.Millisecond), bestFP.Round(time.Millisecond), bestGroup.Round(time.Millisecond), rounds, opt.Workers)
	if fid {
		fmt.Printf("findimagedupes -t 90%% on the %d originals: %v (best of %d, alternating with kneepipe): kneepipe %.1fx faster\n",
			len(orig), bestFid.Round(time.Millisecond), rounds, float64(bestFid)/float64(best))
	}
	return nil
}

func fingerprintAll(items []item, workers int) ([]neardup.Fingerprint, error) {
	fps := make([]neardup.Fingerprint, len(items))
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				data, err := os.ReadFile(items[i].path)
				if err == nil {
					fps[i], err = neardup.FromBytes(data, 0)
				}
				if err != nil {
					errs[i] = fmt.Errorf("%s: %w", items[i].path, err)
				}
			}
		}()
	}
	for i := range items {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return fps, nil
}

// report prints recall per kind and false pairs for one tool's groups
// (sets of item indices) and pairs.
func report(tool string, items []item, sets [][]int, pairs [][2]int) {
	setOf := map[int]int{}
	for s, members := range sets {
		for _, i := range members {
			setOf[i] = s
		}
	}
	origIndex := map[string]int{}
	for i, it := range items {
		if it.kind == "orig" {
			origIndex[it.root] = i
		}
	}
	found, total := map[string]int{}, map[string]int{}
	for i, it := range items {
		if it.kind == "orig" {
			continue
		}
		total[it.kind]++
		s, ok := setOf[i]
		if o, ok2 := setOf[origIndex[it.root]]; ok && ok2 && s == o {
			found[it.kind]++
		}
	}
	falseGrouped := 0
	var examples []string
	for _, members := range sets {
		for x, i := range members {
			for _, j := range members[x+1:] {
				if items[i].root != items[j].root {
					falseGrouped++
					if len(examples) < 5 {
						examples = append(examples, items[i].path+" ~ "+items[j].path)
					}
				}
			}
		}
	}
	falsePairs := 0
	for _, p := range pairs {
		if items[p[0]].root != items[p[1]].root {
			falsePairs++
		}
	}
	var line []string
	core, coreTotal := 0, 0
	for _, k := range kinds {
		line = append(line, fmt.Sprintf("%s %d/%d", k.name, found[k.name], total[k.name]))
		if !k.separate {
			core += found[k.name]
			coreTotal += total[k.name]
		}
	}
	fmt.Printf("%s: recall %.3f (%d/%d, flips and rotations apart) | %s\n", tool, float64(core)/float64(max(coreTotal, 1)), core, coreTotal, strings.Join(line, ", "))
	fmt.Printf("%s: pairs of different originals in one group: %d; among verified pairs: %d\n", tool, falseGrouped, falsePairs)
	for _, e := range examples {
		fmt.Printf("  false: %s\n", e)
	}
}

// findimagedupes runs Debian's findimagedupes at 90 and 95 % on the corpus.
func findimagedupes(items []item, corpus string, l labels) error {
	if _, err := exec.LookPath("findimagedupes"); err != nil {
		return fmt.Errorf("findimagedupes not installed (apt-get install findimagedupes): %w", err)
	}
	index := map[string]int{}
	for i, it := range items {
		abs, _ := filepath.Abs(it.path)
		index[abs] = i
	}
	for _, t := range []string{"90%", "95%"} {
		t0 := time.Now()
		out, err := exec.Command("findimagedupes", "-R", "-t", t, corpus).Output()
		if err != nil {
			return fmt.Errorf("findimagedupes -t %s: %w", t, err)
		}
		el := time.Since(t0)
		var sets [][]int
		var pairs [][2]int
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var s []int
			for _, f := range strings.Fields(line) {
				abs, _ := filepath.Abs(f)
				if i, ok := index[abs]; ok {
					s = append(s, i)
				}
			}
			for x := range s {
				for _, j := range s[x+1:] {
					pairs = append(pairs, [2]int{s[x], j})
				}
			}
			sets = append(sets, s)
		}
		fmt.Printf("findimagedupes -t %s on the corpus: %v\n", t, el.Round(time.Millisecond))
		report("findimagedupes "+t, items, sets, pairs)
		patientSplit("findimagedupes "+t, items, sets, l)
	}
	return nil
}

// kind is one way of making a planted copy; separate kinds (flips,
// rotations) are measured apart from the recall target.
type kind struct {
	name     string
	separate bool
	make     func(src *image.Gray, r *rand.Rand) (data []byte, ext string)
}

func between(r *rand.Rand, lo, hi float64) float64 { return lo + r.Float64()*(hi-lo) }

var kinds = []kind{
	{"reencode", false, func(src *image.Gray, r *rand.Rand) ([]byte, string) {
		lvl := []png.CompressionLevel{png.NoCompression, png.BestSpeed, png.BestCompression}[r.IntN(3)]
		return withText(encodePNG(src, lvl), "Software", "another tool"), "png"
	}},
	{"resize", false, func(src *image.Gray, r *rand.Rand) ([]byte, string) {
		return encodePNG(resize(src, between(r, 0.5, 0.9), r.IntN(2) == 0), png.DefaultCompression), "png"
	}},
	{"crop", false, func(src *image.Gray, r *rand.Rand) ([]byte, string) {
		return encodePNG(crop(src, between(r, .01, .05), between(r, .01, .05), between(r, .01, .05), between(r, .01, .05)), png.DefaultCompression), "png"
	}},
	{"levels", false, func(src *image.Gray, r *rand.Rand) ([]byte, string) {
		return encodePNG(levels(src, between(r, -20, 20), between(r, 0.8, 1.25), between(r, 0.7, 1.4)), png.DefaultCompression), "png"
	}},
	{"jpeg", false, func(src *image.Gray, r *rand.Rand) ([]byte, string) {
		return encodeJPEG(src, 75+r.IntN(21)), "jpg"
	}},
	{"noise", false, func(src *image.Gray, r *rand.Rand) ([]byte, string) {
		return encodePNG(noise(src, between(r, 1.5, 4), r), png.DefaultCompression), "png"
	}},
	{"combo", false, func(src *image.Gray, r *rand.Rand) ([]byte, string) {
		img := crop(src, between(r, .01, .05), between(r, .01, .05), between(r, .01, .05), between(r, .01, .05))
		img = resize(img, between(r, 0.5, 0.9), r.IntN(2) == 0)
		img = levels(img, between(r, -15, 15), between(r, 0.85, 1.15), between(r, 0.8, 1.25))
		return encodeJPEG(img, 75+r.IntN(21)), "jpg"
	}},
	{"flip", true, func(src *image.Gray, r *rand.Rand) ([]byte, string) {
		return encodePNG(flipH(src), png.DefaultCompression), "png"
	}},
	{"rotate", true, func(src *image.Gray, r *rand.Rand) ([]byte, string) {
		deg := between(r, 1, 5)
		if r.IntN(2) == 0 {
			deg = -deg
		}
		return encodePNG(rotate(src, deg), png.DefaultCompression), "png"
	}},
}

// generate writes the corpus (unless a complete one for the same
// parameters is there) and returns its items, originals first.
func generate(knee, corpus string, sample int, seed uint64) ([]item, error) {
	f, err := os.Open(filepath.Join(knee, "images.csv"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("images.csv: %w", err)
	}
	var paths []string
	for _, row := range rows[1:] {
		paths = append(paths, row[0])
	}
	slices.Sort(paths)
	stamp := filepath.Join(corpus, fmt.Sprintf(".done-%d-%d-%d", len(paths), sample, seed))
	_, statErr := os.Stat(stamp)
	fresh := statErr != nil
	if fresh {
		if err := os.RemoveAll(corpus); err != nil {
			return nil, err
		}
	}
	r := rand.New(rand.NewPCG(seed, 1))
	chosen := map[string]bool{}
	for _, i := range r.Perm(len(paths))[:min(sample, len(paths))] {
		chosen[paths[i]] = true
	}
	var items []item
	var copies []item
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".png")
		dst := filepath.Join(corpus, "orig", name+".png")
		items = append(items, item{dst, name, "orig"})
		switch {
		case !fresh && chosen[p]:
			found, err := existingCopies(corpus, name)
			if err != nil {
				return nil, err
			}
			copies = append(copies, found...)
		case fresh:
			made, err := makeCopies(filepath.Join(knee, p), dst, corpus, name, chosen[p], rand.New(rand.NewPCG(seed, uint64(len(items)))))
			if err != nil {
				return nil, err
			}
			copies = append(copies, made...)
		}
	}
	if fresh {
		if err := write(stamp, nil); err != nil {
			return nil, err
		}
	}
	return append(items, copies...), nil
}

// makeCopies copies an original into the corpus and, when chosen, writes
// one copy of it per kind.
func makeCopies(src, dst, corpus, name string, chosen bool, r *rand.Rand) ([]item, error) {
	data, err := os.ReadFile(src)
	if err != nil {
		return nil, err
	}
	if err := write(dst, data); err != nil || !chosen {
		return nil, err
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	g, ok := img.(*image.Gray)
	if !ok {
		return nil, fmt.Errorf("%s: not 8-bit gray", src)
	}
	var out []item
	for _, k := range kinds {
		data, ext := k.make(g, r)
		path := filepath.Join(corpus, k.name, name+"."+ext)
		if err := write(path, data); err != nil {
			return nil, err
		}
		out = append(out, item{path, name, k.name})
	}
	return out, nil
}

// existingCopies finds the copies of an original in a generated corpus.
func existingCopies(corpus, name string) ([]item, error) {
	var out []item
	for _, k := range kinds {
		m, _ := filepath.Glob(filepath.Join(corpus, k.name, name+".*"))
		if len(m) != 1 {
			return nil, fmt.Errorf("corpus %s: no single %s copy of %s (remove the directory)", corpus, k.name, name)
		}
		out = append(out, item{m[0], name, k.name})
	}
	return out, nil
}

func write(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
