package stages

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/neardup"
	"github.com/kneepipe/kneepipe/internal/table"
)

// blobs is a smooth random gray image (seeded), radiograph-like enough
// for fingerprints.
func blobs(seed uint64, w, h int) *image.Gray {
	r := rand.New(rand.NewPCG(seed, 3))
	type blob struct{ x, y, s, a float64 }
	var bs []blob
	for range 30 {
		bs = append(bs, blob{r.Float64(), r.Float64(), 0.04 + 0.1*r.Float64(), r.NormFloat64() * 50})
	}
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			u, v := float64(x)/float64(w), float64(y)/float64(h)
			val := 120.0
			for _, b := range bs {
				val += b.a * math.Exp(-((u-b.x)*(u-b.x)+(v-b.y)*(v-b.y))/(2*b.s*b.s))
			}
			img.Pix[y*img.Stride+x] = uint8(max(0, min(255, val)))
		}
	}
	return img
}

func fingerprintOf(t *testing.T, img image.Image, asJPEG bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	if asJPEG {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80})
	} else {
		err = png.Encode(&buf, img)
	}
	if err != nil {
		t.Fatal(err)
	}
	fp, err := neardup.FromBytes(buf.Bytes(), 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := fp.MarshalBinary()
	return b
}

// fingerprintRows is a rows input: file_id, relative_path, fingerprint
// (nil: null).
func fingerprintRows(mem memory.Allocator, ids, paths []string, fps [][]byte) arrow.RecordBatch {
	b := array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary)
	defer b.Release()
	for _, f := range fps {
		if f == nil {
			b.AppendNull()
		} else {
			b.Append(f)
		}
	}
	return table.New(table.Strings(mem, "file_id", ids), table.Strings(mem, "relative_path", paths), table.Column{Name: "fingerprint", Array: b.NewArray()})
}

func TestNearDuplicates(t *testing.T) {
	env := testEnv(t)
	a, other := blobs(1, 160, 140), blobs(2, 160, 140)
	half := image.NewGray(image.Rect(0, 0, 80, 70))
	for y := range 70 {
		for x := range 80 {
			s := int(a.Pix[2*y*a.Stride+2*x]) + int(a.Pix[2*y*a.Stride+2*x+1]) + int(a.Pix[(2*y+1)*a.Stride+2*x]) + int(a.Pix[(2*y+1)*a.Stride+2*x+1])
			half.Pix[y*half.Stride+x] = uint8((s + 2) / 4)
		}
	}
	in := fingerprintRows(env.Mem,
		[]string{"other", "small", "none", "big", "same"},
		[]string{"o.png", "s.jpg", "n.txt", "b.png", "b2.png"},
		[][]byte{fingerprintOf(t, other, false), fingerprintOf(t, half, true), nil, fingerprintOf(t, a, false), fingerprintOf(t, a, false)})
	defer in.Release()
	res := run(t, env, "near-duplicates", build(t, "near-duplicates", ""), map[string]arrow.RecordBatch{"rows": in})
	// The largest image represents the group; its identical copy has
	// similarity 1, the half-size JPEG a little less.
	got := csvOf(t, res.Outputs["groups"])
	ls := strings.Split(strings.TrimSpace(got), "\n")
	if len(ls) != 4 || ls[0] != "group,file_id,relative_path,similarity" || ls[1] != "1,big,b.png,1.0" ||
		ls[2] != "1,same,b2.png,1.0" || !strings.HasPrefix(ls[3], "1,small,s.jpg,0.99") {
		t.Errorf("groups:\n%s", got)
	}
	// Pairs: the JPEG with the first of the identical pair, which pair
	// with similarity 1; never "other".
	pairs := csvOf(t, res.Outputs["pairs"])
	pl := strings.Split(strings.TrimSpace(pairs), "\n")
	if len(pl) != 3 || pl[0] != "file_id_a,relative_path_a,file_id_b,relative_path_b,similarity" || !strings.HasPrefix(pl[1], "small,s.jpg,big,b.png,0.99") ||
		pl[2] != "big,b.png,same,b2.png,1.0" {
		t.Errorf("pairs:\n%s", pairs)
	}
	// Rows: the copies (small, same) leave; the representative says its
	// group; the others are in none; the fingerprint column is gone.
	if got, want := csvOf(t, res.Outputs["rows"]), lines("file_id,relative_path,near_group", "other,o.png,", "none,n.txt,", "big,b.png,1"); got != want {
		t.Errorf("rows:\n%s\nwant\n%s", got, want)
	}
}

// Rows with the same id are one image: fingerprinted once, never a group
// of their own, kept or dropped together.
func TestNearDuplicatesSameID(t *testing.T) {
	env := testEnv(t)
	a, b := blobs(1, 120, 100), blobs(2, 120, 100)
	fa, fb := fingerprintOf(t, a, false), fingerprintOf(t, b, false)
	fsmall := fingerprintOf(t, a, true)
	in := fingerprintRows(env.Mem,
		[]string{"a", "b", "a", "j", "b", "j"},
		[]string{"x/a.png", "x/b.png", "y/a.png", "x/j.jpg", "y/b.png", "y/j.jpg"},
		[][]byte{fa, fb, fa, fsmall, fb, fsmall})
	defer in.Release()
	res := run(t, env, "near-duplicates", build(t, "near-duplicates", ""), map[string]arrow.RecordBatch{"rows": in})
	groups := strings.Split(strings.TrimSpace(csvOf(t, res.Outputs["groups"])), "\n")
	if len(groups) != 3 || !strings.HasPrefix(groups[1], "1,a,x/a.png,1.0") || !strings.HasPrefix(groups[2], "1,j,x/j.jpg,") {
		t.Errorf("groups:\n%s", strings.Join(groups, "\n"))
	}
	want := lines("file_id,relative_path,near_group", "a,x/a.png,1", "b,x/b.png,", "a,y/a.png,1", "b,y/b.png,")
	if got := csvOf(t, res.Outputs["rows"]); got != want {
		t.Errorf("rows:\n%s\nwant\n%s", got, want)
	}
}

func TestNearDuplicatesBadInput(t *testing.T) {
	env := testEnv(t)
	in := fingerprintRows(env.Mem, []string{"x"}, []string{"x.png"}, [][]byte{[]byte("short")})
	defer in.Release()
	_, err := build(t, "near-duplicates", "").(*declared).Stage.Run(context.Background(), env, map[string]arrow.RecordBatch{"rows": in})
	if err == nil || !strings.Contains(err.Error(), `row 1 (x): column "fingerprint"`) {
		t.Errorf("damaged fingerprint: %v", err)
	}
	if err := buildErr(t, "near-duplicates", "min_similarity: '1.5'"); err == nil || !strings.Contains(err.Error(), "min_similarity") {
		t.Errorf("min_similarity 1.5: %v", err)
	}
}
