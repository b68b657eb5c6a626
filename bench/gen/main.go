// Command gen writes the benchmark inputs: deterministic synthetic data
// shaped like the knee X-ray bucket and like the notebook's raw_data.csv.
//
//	gen bucket -out DIR         DIR/MedicalExpert-{I,II}/<grade>/<Stem> (N).png
//	gen big -out FILE -size N   one N-byte object (default 1 GiB)
//	gen csv -out FILE -rows N   a raw_data.csv with N rows (default 1,000,000)
//	gen many -out DIR -objects N  N small PNGs (default 100,000) in the bucket's layout
//
// Every byte comes from a fixed-seed splitmix64 generator: no clock, no
// environment, no math/rand, so two runs write identical files. With
// -stamp FILE, a run that finds FILE holding the same generator version and
// parameters does nothing, so scripts/bench.sh can call it every time.
//
// # bucket
//
// 3300 objects, 1650 per expert, with the per-grade counts, duplicates and
// disagreements of the real dataset (see /work/shared/SPEC.md, "Reference
// figures"):
//
//   - 1633 distinct images, every one under both experts. Agreement matrix
//     (I, II): (0,0) 502, (0,1) 11, (1,1) 474, (2,2) 227, (3,3) 213, (4,4) 206.
//   - In-expert duplicates (same bytes stored again in the same grade folder,
//     for both experts): grade 0 one pair, grade 1 three pairs, grade 2 five
//     pairs, grade 3 four pairs and two triples: 15 groups and 17 surplus
//     rows per expert, 30 groups and 34 surplus rows in all.
//   - Rows per expert and grade: I 514/477/232/221/206, II 503/488/232/221/206.
//   - File names do not identify images across experts: expert II reuses
//     expert I's numbering for roughly two thirds of the images only.
//
// Objects are 28,000..40,999 bytes (mean ~34.5 KB, ~114 MB in all):
// structurally valid PNGs (signature, IHDR of an 8-bit grayscale 300x162 or
// 640x161 image, grade 4 only the small size, one IDAT, IEND, correct CRCs)
// whose IDAT holds pseudo-random bytes, so they do not decode to pixels;
// nothing in the pipeline decodes them.
//
// # many
//
// N small objects (default 100,000; N even) in the bucket's layout
// DIR/MedicalExpert-{I,II}/<grade>/<Stem> (N).png, for the cost per object
// (listing pages, GETs, journal, cache) rather than per byte. Shaped like the
// real bucket, scaled up: N/2 objects per expert, every image stored under
// both experts, grades in the real proportions, ~1% in-expert surplus
// duplicates (extra copies of an agreeing image under both experts: pairs,
// every tenth a triple) and ~0.7% disagreements (Normal under expert I,
// Doubtful under expert II, as in the real bucket). Each expert's grade
// folder is numbered 1..n in its own shuffled order, so names do not
// identify images across experts. Every image has its own bytes: a
// structurally valid PNG of 1000..1999 bytes (mean ~1.5 KB), framed like the
// bucket's (signature, IHDR, one IDAT of pseudo-random bytes, IEND).
//
// # big
//
// One object of exactly -size bytes, shaped like the bucket's (a PNG header
// and one IDAT chunk of pseudo-random bytes).
//
// # csv
//
// raw_data.csv as the notebook writes it (expert,file_id,severity,
// relative_path; severity is the folder label; rows in S3 listing order, i.e.
// byte order of the path), scaled up: half the rows per expert, grades in the
// real proportions, ~1% in-expert surplus duplicates (pairs and some
// triples, same grade), ~0.7% cross-expert disagreements (mostly Normal vs
// Doubtful, some one grade apart elsewhere), ~0.1% images only one expert
// graded (the notebook's NaN quirk), and a few names with a comma that
// pandas must quote. file_ids are pseudo-random hex in the sha256:md5 shape.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const (
	expertI  = "MedicalExpert-I"
	expertII = "MedicalExpert-II"
)

var (
	folders = []string{"0Normal", "1Doubtful", "2Mild", "3Moderate", "4Severe"}
	stems   = []string{"NormalG0", "DoubtfulG1", "MildG2", "ModerateG3", "SevereG4"}
)

// rng is splitmix64: tiny, fixed, the same on every platform.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a value in [0, n).
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

func (r *rng) shuffle(n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		swap(i, r.intn(i+1))
	}
}

// fill writes pseudo-random bytes into b.
func (r *rng) fill(b []byte) {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		v := r.next()
		b[i], b[i+1], b[i+2], b[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		b[i+4], b[i+5], b[i+6], b[i+7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
	}
	for v := r.next(); i < len(b); i++ {
		b[i] = byte(v)
		v >>= 8
	}
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "bucket":
		fs := flag.NewFlagSet("bucket", flag.ExitOnError)
		out := fs.String("out", "", "directory to write (the prefix datasets/ of the bucket)")
		fs.StringVar(&stampFile, "stamp", "", "completion stamp file (kept outside the bucket)")
		fs.Parse(os.Args[2:])
		err = bucket(*out)
	case "big":
		fs := flag.NewFlagSet("big", flag.ExitOnError)
		out := fs.String("out", "", "file to write")
		size := fs.Int64("size", 1<<30, "bytes")
		fs.StringVar(&stampFile, "stamp", "", "completion stamp file (kept outside the bucket)")
		fs.Parse(os.Args[2:])
		err = big(*out, *size)
	case "many":
		fs := flag.NewFlagSet("many", flag.ExitOnError)
		out := fs.String("out", "", "directory to write (the prefix datasets/ of the bucket)")
		objects := fs.Int("objects", 100_000, "objects (even)")
		fs.StringVar(&stampFile, "stamp", "", "completion stamp file (kept outside the bucket)")
		fs.Parse(os.Args[2:])
		err = many(*out, *objects)
	case "csv":
		fs := flag.NewFlagSet("csv", flag.ExitOnError)
		out := fs.String("out", "", "file to write")
		rows := fs.Int("rows", 1_000_000, "rows (even)")
		fs.StringVar(&stampFile, "stamp", "", "completion stamp file")
		fs.Parse(os.Args[2:])
		err = csvFile(*out, *rows)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: gen bucket -out DIR | gen many -out DIR [-objects N] | gen big -out FILE [-size N] | gen csv -out FILE [-rows N]")
	os.Exit(2)
}

// stampFile, when set, records a finished generation: it holds the
// generator version and parameters, and a later run with the same ones is a
// no-op. It must live outside the bucket, or it would be listed as an object.
var stampFile string

// done reports whether the stamp holds want; mark writes it.
func done(want string) bool {
	if stampFile == "" {
		return false
	}
	b, err := os.ReadFile(stampFile)
	return err == nil && string(b) == want
}

func mark(want string) error {
	if stampFile == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(stampFile), 0o755); err != nil {
		return err
	}
	return os.WriteFile(stampFile, []byte(want), 0o644)
}

// ---------------------------------------------------------------- bucket

// image is one distinct image: its grade by each expert and its bytes' seed.
type image struct {
	id     int
	grades [2]int
	size   int
}

type file struct {
	img  *image
	name string
}

const bucketVersion = "bench-bucket-v2\n"

func bucket(out string) error {
	if out == "" {
		return errors.New("bucket: -out is required")
	}
	if done(bucketVersion) {
		fmt.Fprintf(os.Stderr, "gen: %s is up to date\n", out)
		return nil
	}
	for _, e := range []string{expertI, expertII} {
		if err := os.RemoveAll(filepath.Join(out, e)); err != nil {
			return err
		}
	}
	r := &rng{s: 20200101}

	// 1633 images in agreement-matrix classes.
	classes := []struct{ a, b, n int }{{0, 0, 502}, {0, 1, 11}, {1, 1, 474}, {2, 2, 227}, {3, 3, 213}, {4, 4, 206}}
	var imgs []*image
	for _, c := range classes {
		for range c.n {
			imgs = append(imgs, &image{id: len(imgs), grades: [2]int{c.a, c.b}, size: 28000 + r.intn(13000)})
		}
	}
	// Duplicate copies per grade (extra copies of an agreeing image, stored
	// under both experts): 1 surplus at grade 0, 3 at 1, 5 at 2, 8 at 3.
	dupPlan := map[int][]int{0: {1}, 1: {1, 1, 1}, 2: {1, 1, 1, 1, 1}, 3: {2, 1, 1, 2, 1, 1}}
	byGrade := map[int][]*image{}
	for _, im := range imgs {
		if im.grades[0] == im.grades[1] {
			byGrade[im.grades[0]] = append(byGrade[im.grades[0]], im)
		}
	}
	var dups []struct {
		img    *image
		extras int
	}
	for g := 0; g < 5; g++ {
		cands := byGrade[g]
		for _, extra := range dupPlan[g] {
			im := cands[r.intn(len(cands))]
			for containsImg(dups, im) {
				im = cands[r.intn(len(cands))]
			}
			dups = append(dups, struct {
				img    *image
				extras int
			}{im, extra})
		}
	}

	// Folder contents per expert, then numbering.
	var numI map[*image][]int // expert I's numbers per image, reused by II
	for e, expert := range []string{expertI, expertII} {
		nums := map[*image][]int{}
		for g := range folders {
			var copies []*image
			for _, im := range imgs {
				if im.grades[e] == g {
					copies = append(copies, im)
				}
			}
			for _, d := range dups {
				if d.img.grades[e] == g {
					for range d.extras {
						copies = append(copies, d.img)
					}
				}
			}
			n := len(copies)
			number := make([]int, n)
			for i := range number {
				number[i] = i + 1
			}
			if e == 0 {
				r.shuffle(n, func(i, j int) { number[i], number[j] = number[j], number[i] })
			} else {
				// Keep expert I's number where it is free and the image is
				// in the same grade folder, for ~2/3 of the images; number
				// the rest in the numbers left over, shuffled.
				used := make([]bool, n+1)
				assigned := make([]bool, n)
				seen := map[*image]int{}
				for i, im := range copies {
					k := seen[im]
					seen[im]++
					if ns := numI[im]; k < len(ns) && im.grades[0] == g && ns[k] <= n && !used[ns[k]] && r.intn(3) != 0 {
						number[i] = ns[k]
						used[ns[k]] = true
						assigned[i] = true
					}
				}
				var free []int
				for v := 1; v <= n; v++ {
					if !used[v] {
						free = append(free, v)
					}
				}
				r.shuffle(len(free), func(i, j int) { free[i], free[j] = free[j], free[i] })
				for i := range copies {
					if !assigned[i] {
						number[i], free = free[0], free[1:]
					}
				}
			}
			dir := filepath.Join(out, expert, folders[g])
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			for i, im := range copies {
				nums[im] = append(nums[im], number[i])
				name := fmt.Sprintf("%s (%d).png", stems[g], number[i])
				if err := os.WriteFile(filepath.Join(dir, name), imageBytes(im), 0o644); err != nil {
					return err
				}
			}
		}
		if e == 0 {
			numI = nums
		}
	}
	return mark(bucketVersion)
}

func containsImg(dups []struct {
	img    *image
	extras int
}, im *image) bool {
	for _, d := range dups {
		if d.img == im {
			return true
		}
	}
	return false
}

// imageBytes is a structurally valid PNG of im.size bytes: the signature,
// an IHDR chunk (8-bit grayscale, 300x162 or 640x161 as in the real data),
// one IDAT chunk of pseudo-random bytes and IEND, all with correct CRCs. The
// IDAT payload is not a valid zlib stream: nothing in the pipeline decodes
// pixels, but fetch-hash reads the IHDR facts and rejects non-PNG bytes.
func imageBytes(im *image) []byte {
	r := &rng{s: 0x6b6e6565 ^ uint64(im.id)*0x100000001b3}
	w, h := 300, 162
	if im.grades[0] != 4 && im.grades[1] != 4 && im.id%3 == 1 {
		w, h = 640, 161
	}
	return pngBytes(im.size, w, h, r)
}

const pngOverhead = 8 + (12 + 13) + 12 + 12 // signature, IHDR, IDAT framing, IEND

// pngBytes returns a size-byte PNG with an IDAT of pseudo-random bytes.
func pngBytes(size, w, h int, r *rng) []byte {
	b := make([]byte, 0, size)
	b = append(b, 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n')
	ihdr := []byte{0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0} // 8-bit, grayscale
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	b = appendChunk(b, "IHDR", ihdr)
	data := make([]byte, size-pngOverhead)
	r.fill(data)
	b = appendChunk(b, "IDAT", data)
	return appendChunk(b, "IEND", nil)
}

func appendChunk(b []byte, typ string, data []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	start := len(b)
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
}

// ---------------------------------------------------------------- many

func many(out string, objects int) error {
	if out == "" {
		return errors.New("many: -out is required")
	}
	if objects < 1000 || objects%2 != 0 {
		return errors.New("many: -objects must be even and at least 1000")
	}
	want := fmt.Sprintf("bench-many-v1 %s %d\n", out, objects)
	if done(want) {
		fmt.Fprintf(os.Stderr, "gen: %s is up to date\n", out)
		return nil
	}
	for _, e := range []string{expertI, expertII} {
		if err := os.RemoveAll(filepath.Join(out, e)); err != nil {
			return err
		}
	}
	r := &rng{s: 100_000}
	per := objects / 2
	surplus := per * 17 / 1650 // surplus copies per expert, as in the real bucket
	distinct := per - surplus
	nDis := distinct * 11 / 1633

	// Grade weights from the real dataset's distinct images (I's view).
	weights := []int{513, 474, 227, 213, 206}
	total := 0
	for _, w := range weights {
		total += w
	}
	pickGrade := func() int {
		v := r.intn(total)
		for g, w := range weights {
			if v < w {
				return g
			}
			v -= w
		}
		return 4
	}
	imgs := make([]*image, distinct)
	for i := range imgs {
		gg := [2]int{0, 1}
		if i >= nDis {
			g := pickGrade()
			gg = [2]int{g, g}
		}
		imgs[i] = &image{id: i, grades: gg, size: 1000 + r.intn(1000)}
	}
	// Surplus copies of agreeing images, the same under both experts.
	extra := map[int]int{}
	for left := surplus; left > 0; {
		id := nDis + r.intn(distinct-nDis)
		if extra[id] > 0 {
			continue
		}
		n := 1
		if left >= 2 && r.intn(10) == 0 {
			n = 2
		}
		extra[id] = n
		left -= n
	}
	for e, expert := range []string{expertI, expertII} {
		var copies [5][]*image
		for _, im := range imgs {
			g := im.grades[e]
			for range 1 + extra[im.id] {
				copies[g] = append(copies[g], im)
			}
		}
		for g, cs := range copies {
			r.shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
			dir := filepath.Join(out, expert, folders[g])
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			for n, im := range cs {
				name := fmt.Sprintf("%s (%d).png", stems[g], n+1)
				if err := os.WriteFile(filepath.Join(dir, name), smallImageBytes(im), 0o644); err != nil {
					return err
				}
			}
		}
	}
	return mark(want)
}

// smallImageBytes is im's PNG for the many bucket: like imageBytes, from a
// seed of its own so the many bucket shares no bytes with the 3300-object one.
func smallImageBytes(im *image) []byte {
	r := &rng{s: 0x6d616e79 ^ uint64(im.id)*0x100000001b3}
	w, h := 300, 162
	if im.grades[0] != 4 && im.grades[1] != 4 && im.id%3 == 1 {
		w, h = 640, 161
	}
	return pngBytes(im.size, w, h, r)
}

// ---------------------------------------------------------------- big

func big(out string, size int64) error {
	if out == "" {
		return errors.New("big: -out is required")
	}
	if size < pngOverhead || size-pngOverhead > 1<<31-1 {
		return fmt.Errorf("big: -size must be %d..%d", pngOverhead, 1<<31-1+pngOverhead)
	}
	want := fmt.Sprintf("bench-big-v2 %s %d\n", out, size)
	if done(want) {
		fmt.Fprintf(os.Stderr, "gen: %s is up to date\n", out)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	r := &rng{s: 1 << 30}
	w := bufio.NewWriterSize(f, 1<<20)
	// The PNG framing, with the IDAT written (and its CRC computed) in
	// pieces so the object never sits in memory whole.
	var head []byte
	head = append(head, 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n')
	head = appendChunk(head, "IHDR", []byte{0, 0, 0x10, 0, 0, 0, 0x10, 0, 8, 0, 0, 0, 0})
	n := size - pngOverhead
	head = binary.BigEndian.AppendUint32(head, uint32(n))
	head = append(head, "IDAT"...)
	w.Write(head)
	crc := crc32.ChecksumIEEE([]byte("IDAT"))
	buf := make([]byte, 1<<20)
	for left := n; left > 0; {
		k := min(left, int64(len(buf)))
		r.fill(buf[:k])
		crc = crc32.Update(crc, crc32.IEEETable, buf[:k])
		if _, err := w.Write(buf[:k]); err != nil {
			f.Close()
			return err
		}
		left -= k
	}
	w.Write(binary.BigEndian.AppendUint32(nil, crc))
	w.Write(appendChunk(nil, "IEND", nil))
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return mark(want)
}

// ---------------------------------------------------------------- csv

type row struct {
	path, fileID, label string
}

func csvFile(out string, rows int) error {
	if out == "" {
		return errors.New("csv: -out is required")
	}
	if rows < 1000 || rows%2 != 0 {
		return errors.New("csv: -rows must be even and at least 1000")
	}
	want := fmt.Sprintf("bench-csv-v1 %d\n", rows)
	if done(want) {
		fmt.Fprintf(os.Stderr, "gen: %s is up to date\n", out)
		return nil
	}
	r := &rng{s: 1_000_000}
	per := rows / 2
	// Per expert: per = distinct + surplus. Surplus ~1.03% (17/1650).
	surplus := per * 17 / 1650
	only := per / 1000 // images one expert only graded, per expert
	shared := per - surplus - only
	nDis := (shared + only) * 11 / 1633

	// Grade weights from the real dataset's distinct images (I's view).
	weights := []int{513, 474, 227, 213, 206}
	total := 0
	for _, w := range weights {
		total += w
	}
	pickGrade := func() int {
		v := r.intn(total)
		for g, w := range weights {
			if v < w {
				return g
			}
			v -= w
		}
		return 4
	}

	type item struct {
		id     string
		grades [2]int // -1: not graded by that expert
	}
	newID := func() string {
		var b [48]byte
		r.fill(b[:])
		return hex.EncodeToString(b[:32]) + ":" + hex.EncodeToString(b[32:])
	}
	var items []item
	for i := range shared {
		g := pickGrade()
		gg := [2]int{g, g}
		if i < nDis {
			// 80% Normal vs Doubtful (either way round), the rest one grade
			// apart elsewhere.
			if r.intn(5) != 0 {
				gg = [2]int{0, 1}
				if r.intn(4) == 0 {
					gg = [2]int{1, 0}
				}
			} else {
				a := 1 + r.intn(3)
				gg = [2]int{a, a + 1}
				if r.intn(2) == 0 {
					gg = [2]int{a + 1, a}
				}
			}
		}
		items = append(items, item{newID(), gg})
	}
	for e := range 2 {
		for range only {
			gg := [2]int{-1, -1}
			gg[e] = pickGrade()
			items = append(items, item{newID(), gg})
		}
	}
	r.shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })

	var all []row
	for e, expert := range []string{expertI, expertII} {
		var copies [5][]string // file_ids per grade folder
		var graded []int
		for i, it := range items {
			if g := it.grades[e]; g >= 0 {
				copies[g] = append(copies[g], it.id)
				graded = append(graded, i)
			}
		}
		// Surplus duplicates: pairs, and a triple every tenth group.
		for left := surplus; left > 0; {
			it := items[graded[r.intn(len(graded))]]
			n := 1
			if left >= 2 && r.intn(10) == 0 {
				n = 2
			}
			for range n {
				copies[it.grades[e]] = append(copies[it.grades[e]], it.id)
			}
			left -= n
		}
		var rs []row
		for g, ids := range copies {
			r.shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
			for n, id := range ids {
				name := stems[g] + " (" + strconv.Itoa(n+1) + ").png"
				if r.intn(20000) == 0 {
					name = stems[g] + " (" + strconv.Itoa(n+1) + ", copy).png"
				}
				rs = append(rs, row{expert + "/" + folders[g] + "/" + name, id, folders[g]})
			}
		}
		// S3 listing order: byte order of the key.
		sort.Slice(rs, func(i, j int) bool { return rs[i].path < rs[j].path })
		all = append(all, rs...)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	io.WriteString(w, "expert,file_id,severity,relative_path\n")
	for _, rw := range all {
		expert, _, _ := strings.Cut(rw.path, "/")
		w.WriteString(expert)
		w.WriteByte(',')
		w.WriteString(rw.fileID)
		w.WriteByte(',')
		w.WriteString(rw.label)
		w.WriteByte(',')
		if strings.ContainsAny(rw.path, ",\"\n\r") {
			w.WriteString(`"` + strings.ReplaceAll(rw.path, `"`, `""`) + `"`)
		} else {
			w.WriteString(rw.path)
		}
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	return mark(want)
}
