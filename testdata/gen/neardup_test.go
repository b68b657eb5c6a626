package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kneepipe/kneepipe/internal/neardup"
)

// maxDistinct is the similarity no two distinct sample images may reach:
// well under neardup.DefaultThreshold (0.982), so the default pipeline can
// run on the sample at the tuned threshold without false groups.
const maxDistinct = 0.97

// TestDistinctImagesAreApart fingerprints every committed sample PNG and
// requires files of one label (byte copies) to score 1 and every pair of
// distinct labels to stay below maxDistinct, both ways round; then
// neardup.Find at its defaults must group exactly the byte copies.
func TestDistinctImagesAreApart(t *testing.T) {
	entries := layout()
	fps := make([]neardup.Fingerprint, len(entries))
	first := map[string]int{} // label -> index of its first file
	var labels []string
	for i, e := range entries {
		data, err := os.ReadFile(filepath.Join(committed, filepath.FromSlash(e.path())))
		if err != nil {
			t.Fatal(err)
		}
		if fps[i], err = neardup.FromBytes(data, 0); err != nil {
			t.Fatalf("%s: %v", e.path(), err)
		}
		j, ok := first[e.image]
		if !ok {
			first[e.image] = i
			labels = append(labels, e.image)
			continue
		}
		if s := neardup.Similarity(&fps[j], &fps[i]); s != 1 {
			t.Errorf("%s and %s (both %s): similarity %v, want 1", entries[j].path(), e.path(), e.image, s)
		}
	}
	if len(labels) != 46 {
		t.Fatalf("distinct labels: got %d, want 46", len(labels))
	}
	top, topA, topB := -1.0, "", ""
	for x, a := range labels {
		for _, b := range labels[x+1:] {
			fa, fb := &fps[first[a]], &fps[first[b]]
			s := max(neardup.Similarity(fa, fb), neardup.Similarity(fb, fa))
			if s >= maxDistinct {
				t.Errorf("distinct images %s and %s: similarity %.4f, want < %v", a, b, s, maxDistinct)
			}
			if s > top {
				top, topA, topB = s, a, b
			}
		}
	}
	t.Logf("most similar distinct pair: %s %s %.4f", topA, topB, top)

	res, err := neardup.Find(context.Background(), fps, neardup.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]int{} // label -> files holding it
	for _, e := range entries {
		files[e.image]++
	}
	copies := 0 // labels stored more than once
	for _, n := range files {
		if n > 1 {
			copies++
		}
	}
	if len(res.Groups) != copies {
		t.Errorf("neardup.Find: %d groups, want %d (the labels with byte copies)", len(res.Groups), copies)
	}
	for _, g := range res.Groups {
		label := entries[g.Members[0].Index].image
		if len(g.Members) != files[label] {
			t.Errorf("group %d: %d members, want the %d files of %s", g.ID, len(g.Members), files[label], label)
		}
		for _, m := range g.Members {
			if entries[m.Index].image != label || m.Similarity != 1 {
				t.Errorf("group %d: %s (%s, similarity %v) grouped with %s",
					g.ID, entries[m.Index].path(), entries[m.Index].image, m.Similarity, label)
			}
		}
	}
}
