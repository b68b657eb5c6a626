// Command gen writes kneepipe's bundled sample dataset: a small synthetic
// stand-in for the "Digital Knee X-ray Images" bucket, laid out like the real
// one (<expert>/<grade folder>/<file>.png) under the -out directory.
//
//	go run ./testdata/gen -out testdata/sample
//
// The output is fully deterministic: no clock, no environment, no math/rand.
// Every pixel comes from integer arithmetic and a fixed-seed splitmix64
// generator (integers only, so no architecture may fuse floating-point
// operations differently), and the PNGs are encoded by image/png at
// png.BestCompression. The committed testdata/sample must be byte-identical
// to a fresh run; main_test.go checks that.
//
// # Images
//
// 46 distinct 8-bit grayscale images (image.Gray), each a crude knee joint
// (draw.go): femur with patella above, tibia and fibula below, a joint space
// whose width shrinks and bone margins that grow osteophytes as the
// Kellgren-Lawrence grade rises, over soft tissue, with a trabecular texture,
// an exposure field, collimation borders, a side marker and sparse noise.
// Each image's seed also sets its position, tilt, magnification and bone
// shapes, so distinct images differ the way different patients' radiographs
// do: no two reach 0.97 under internal/neardup's verified similarity
// (neardup_test.go), except the one planted near-duplicate (item 8), and
// the default pipeline's 0.986 groups only byte copies and that one. Sizes
// are 300x162 (one knee) and 640x161 (two knees side by side); grade 4 only
// ever uses 300x162, as in the real data.
//
// # Planted features (the layout table in layout() is the source of truth)
//
// Rows: MedicalExpert-I 50 (grades 0..4: 12/9/10/11/8),
// MedicalExpert-II 49 (10/12/8/11/8); 99 .png files, 46 distinct file_ids.
//
//  1. In-expert duplicates (identical bytes stored twice or three times under
//     one expert, same grade): 6 groups, 8 surplus rows.
//     - T5 (grade 3): three copies under each expert. Under I at
//     ModerateG3 (2), (10), (11): byte order lists (10) first, so (10) is
//     kept and (11), (2) are the surplus rows. Under II at (3), (7), (11):
//     (11) is kept, (3) and (7) go.
//     - B2 (grade 1): two copies under each expert. I: DoubtfulG1 (2) kept,
//     (9) goes. II: (3) and (11): (11) sorts first and is kept, (3) goes.
//     - M3 (grade 2): two copies under I only: MildG2 (3) kept and
//     "MildG2 (3, copy).png" (comma in the name) goes.
//     - N4 (grade 0): two copies under II only: NormalG0 (4) and (10):
//     (10) is kept, (4) goes.
//  2. Cross-expert disagreements (same bytes, different grades):
//     X1, X2, X3 graded 0 by I and 1 by II; Y1 graded 2 by I and 3 by II.
//  3. One image under one expert only: U1, MedicalExpert-I/3Moderate/
//     ModerateG3 (6).png. (The notebook's pivot gives it NaN for expert II,
//     and NaN != 3 makes it a "disagreement" in the notebook's filter.)
//  4. Names are not aligned across experts: the same image has different
//     numbers under each expert (e.g. N4 is NormalG0 (5) under I but (4) and
//     (10) under II), and some same-named files hold different bytes
//     (e.g. NormalG0 (4) is X1 under I but N4 under II).
//  5. Special characters: "MildG2 (3, copy).png" (comma; a surplus duplicate,
//     so it lands in deleted_paths.csv) and `DoubtfulG1 (12) "recheck".png`
//     under MedicalExpert-II (double quote; it holds X1, a disagreement, so it
//     lands in different_severity.csv). See quoteName.
//  6. A stray non-PNG file, MedicalExpert-I/notes.txt, that the .png suffix
//     filter must drop.
//  7. Folders with 10+ files, so byte order ("(10)" < "(2)") differs from
//     numeric order; several keep='first' decisions depend on it (item 1).
//  8. One near-duplicate: N6 is N9 rescanned (draw.go, rescan). The
//     notebook counts it as an image of its own; the default pipeline's
//     near stage drops it, keeping N9.
//
// Every other image appears exactly once under each expert with the same
// grade. The agreement matrix (I, II) over the 45 images both experts hold:
// (0,0) 9, (0,1) 3, (1,1) 8, (2,2) 8, (2,3) 1, (3,3) 8, (4,4) 8.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Experts and grade folders, spelled as in the real bucket.
const (
	expertI  = "MedicalExpert-I"
	expertII = "MedicalExpert-II"
)

var gradeFolders = [5]string{"0Normal", "1Doubtful", "2Mild", "3Moderate", "4Severe"}
var gradeStems = [5]string{"NormalG0", "DoubtfulG1", "MildG2", "ModerateG3", "SevereG4"}

// quoteName once held a double quote; a '"' in a committed path is
// rejected by golang.org/x/mod/module.CheckFilePath (the module could not be
// zipped by the proxy) and by Windows, so CSV quoting of '"' is covered by
// unit tests instead and this name carries a plain word.
const quoteName = `DoubtfulG1 (12) recheck.png`

// commaName is the one file name with a comma in it.
const commaName = "MildG2 (3, copy).png"

// strayFile is the non-PNG object that the .png filter drops.
const strayFile = expertI + "/notes.txt"

const strayText = "Synthetic kneepipe sample data, written by testdata/gen.\n" +
	"This file is not a .png and must be skipped by the listing filter.\n"

// imageSpec describes one distinct image (one file_id).
type imageSpec struct {
	id   string // label used in the layout and the README
	look int    // KL grade the drawing imitates
	wide bool   // 640x161 (two knees) instead of 300x162
	// rescanOf, when set, names the image this one is a near-duplicate of
	// (same look and size): the same knee, rescanned (draw.go, rescan).
	rescanOf string
	bytes    []byte // encoded PNG, filled by main
}

// images lists the 46 distinct images. Grade-4 images are never wide.
func images() []*imageSpec {
	var out []*imageSpec
	add := func(prefix string, n, look int, wide ...int) {
		w := map[int]bool{}
		for _, i := range wide {
			w[i] = true
		}
		for i := 1; i <= n; i++ {
			out = append(out, &imageSpec{id: fmt.Sprintf("%s%d", prefix, i), look: look, wide: w[i]})
		}
	}
	add("N", 9, 0, 2, 6, 9) // agree 0/0; N4 is duplicated under II
	add("X", 3, 0, 2)       // I says 0, II says 1
	add("B", 8, 1, 3, 7)    // agree 1/1; B2 is duplicated under both
	add("M", 8, 2, 1, 5, 8) // agree 2/2; M3 is duplicated under I
	add("Y", 1, 2, 1)       // I says 2, II says 3 (wide)
	add("T", 8, 3, 2, 5)    // agree 3/3; T5 is tripled under both (wide)
	add("U", 1, 3)          // only under I, grade 3
	add("V", 8, 4)          // agree 4/4; always 300x162
	for _, s := range out {
		if s.id == "N6" {
			// The one planted near-duplicate (same grade, both wide). The
			// near stage keeps the original, N9: of two images of one size
			// it keeps the one listed first, MedicalExpert-I/0Normal/
			// NormalG0 (12).png ("(12)" < "(8)" in byte order).
			s.rescanOf = "N9"
		}
	}
	return out
}

// entry is one file of the layout: a name in a grade folder holding an image.
type entry struct {
	expert string
	grade  int
	name   string // file name; "" means "<stem> (<num>).png"
	num    int
	image  string
}

func (e entry) path() string {
	name := e.name
	if name == "" {
		name = fmt.Sprintf("%s (%d).png", gradeStems[e.grade], e.num)
	}
	return e.expert + "/" + gradeFolders[e.grade] + "/" + name
}

// layout is the whole bucket: for each expert and grade folder, the images
// in numeric order of their names (numbers 1..n; the comma and quote names
// are given explicitly).
func layout() []entry {
	var out []entry
	folder := func(expert string, grade int, ids ...string) {
		for i, id := range ids {
			e := entry{expert: expert, grade: grade, num: i + 1, image: id}
			if j := strings.IndexByte(id, '='); j >= 0 { // "name=ID"
				e.name, e.image, e.num = id[:j], id[j+1:], 0
			}
			out = append(out, e)
		}
	}
	// MedicalExpert-I
	folder(expertI, 0, "N1", "N2", "N3", "X1", "N4", "N5", "X2", "N6", "N7", "N8", "X3", "N9")
	folder(expertI, 1, "B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B2")
	folder(expertI, 2, "M1", "M2", "M3", commaName+"=M3", "M4", "Y1", "M5", "M6", "M7", "M8")
	folder(expertI, 3, "T1", "T5", "T2", "T3", "T4", "U1", "T6", "T7", "T8", "T5", "T5")
	folder(expertI, 4, "V1", "V2", "V3", "V4", "V5", "V6", "V7", "V8")
	// MedicalExpert-II
	folder(expertII, 0, "N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8", "N9", "N4")
	folder(expertII, 1, "X2", "B1", "B2", "B3", "B4", "X3", "B5", "B6", "B7", "B8", "B2", quoteName+"=X1")
	folder(expertII, 2, "M1", "M2", "M3", "M4", "M5", "M6", "M7", "M8")
	folder(expertII, 3, "T1", "T2", "T5", "T3", "T4", "Y1", "T5", "T6", "T7", "T8", "T5")
	folder(expertII, 4, "V1", "V2", "V3", "V4", "V5", "V6", "V7", "V8")
	// Fix the numbering of the explicitly named files: numbers continue
	// from the position in the folder, skipping the named ones.
	for i := range out {
		if out[i].name != "" {
			continue
		}
		n := 0
		for j := 0; j <= i; j++ {
			if out[j].expert == out[i].expert && out[j].grade == out[i].grade && out[j].name == "" {
				n++
			}
		}
		out[i].num = n
	}
	return out
}

// rng is splitmix64: tiny, fixed, and the same on every platform.
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

// between returns a value in [lo, hi].
func (r *rng) between(lo, hi int) int { return lo + r.intn(hi-lo+1) }

func seedOf(id string) uint64 {
	// FNV-1a of the id, mixed with a fixed project constant.
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h ^ 0x6b6e656570697065 // "kneepipe"
}

func encode(img *image.Gray) ([]byte, error) {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// generate writes the sample under out. It first removes the two expert
// folders under out (and nothing else), so stale files cannot survive.
func generate(out string) error {
	specs := images()
	byID := map[string]*imageSpec{}
	for _, s := range specs {
		if s.look == 4 && s.wide {
			return fmt.Errorf("%s: grade 4 must be 300x162", s.id)
		}
		b, err := encode(draw(s))
		if err != nil {
			return fmt.Errorf("%s: %w", s.id, err)
		}
		s.bytes = b
		byID[s.id] = s
	}
	// Distinct images must have distinct bytes, or the planted figures lie.
	seen := map[string]string{}
	for _, s := range specs {
		if o := byID[s.rescanOf]; s.rescanOf != "" && (o == nil || o.rescanOf != "" || o.look != s.look || o.wide != s.wide) {
			return fmt.Errorf("%s: a rescan of %q, which must be an original of the same look and size", s.id, s.rescanOf)
		}
		if other, ok := seen[string(s.bytes)]; ok {
			return fmt.Errorf("images %s and %s encode identically", other, s.id)
		}
		seen[string(s.bytes)] = s.id
	}
	entries := layout()
	paths := map[string]bool{}
	for _, e := range entries {
		if byID[e.image] == nil {
			return fmt.Errorf("%s: unknown image %q", e.path(), e.image)
		}
		if paths[e.path()] {
			return fmt.Errorf("%s: listed twice", e.path())
		}
		paths[e.path()] = true
	}

	for _, ex := range []string{expertI, expertII} {
		if err := os.RemoveAll(filepath.Join(out, ex)); err != nil {
			return err
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].path() < entries[j].path() })
	write := func(rel string, data []byte) error {
		p := filepath.Join(out, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, 0o644)
	}
	for _, e := range entries {
		if err := write(e.path(), byID[e.image].bytes); err != nil {
			return err
		}
	}
	return write(strayFile, []byte(strayText))
}

func main() {
	out := flag.String("out", "testdata/sample", "directory to write the sample dataset into")
	flag.Parse()
	if err := generate(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
