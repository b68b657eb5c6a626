package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kneepipe/kneepipe/internal/neardup"
)

// maxDistinct is the similarity no two distinct sample images may reach:
// well under neardup.DefaultThreshold (0.986), so the default pipeline can
// run on the sample at the tuned threshold without false groups.
const maxDistinct = 0.97

// TestNearDuplicates fingerprints every committed sample PNG and requires
// files of one label (byte copies) to score 1, the planted rescan (N6 of
// N9) to reach neardup.DefaultThreshold and every other pair of labels to
// stay below maxDistinct, both ways round; then neardup.Find at its
// defaults must group exactly the byte copies, N6's and N9's together.
func TestNearDuplicates(t *testing.T) {
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
	base := map[string]string{} // label -> the label it is a rescan of, or itself
	for _, s := range images() {
		base[s.id] = s.id
		if s.rescanOf != "" {
			base[s.id] = s.rescanOf
		}
	}
	if base["N6"] != "N9" {
		t.Fatalf("N6 is a rescan of %q, want N9", base["N6"])
	}
	top, topA, topB := -1.0, "", ""
	for x, a := range labels {
		for _, b := range labels[x+1:] {
			fa, fb := &fps[first[a]], &fps[first[b]]
			lo := min(neardup.Similarity(fa, fb), neardup.Similarity(fb, fa))
			hi := max(neardup.Similarity(fa, fb), neardup.Similarity(fb, fa))
			switch {
			case base[a] == base[b]:
				t.Logf("planted near-duplicate %s %s: %.4f..%.4f", a, b, lo, hi)
				if lo < neardup.DefaultThreshold {
					t.Errorf("planted near-duplicate %s and %s: similarity %.4f, want >= %v", a, b, lo, neardup.DefaultThreshold)
				}
			case hi >= maxDistinct:
				t.Errorf("distinct images %s and %s: similarity %.4f, want < %v", a, b, hi, maxDistinct)
			case hi > top:
				top, topA, topB = hi, a, b
			}
		}
	}
	t.Logf("most similar distinct pair: %s %s %.4f", topA, topB, top)
	checkGroups(t, entries, fps, base)
}

// checkGroups requires neardup.Find at its defaults to put every file of
// one base label, and nothing else, in one group.
func checkGroups(t *testing.T, entries []entry, fps []neardup.Fingerprint, base map[string]string) {
	res, err := neardup.Find(context.Background(), fps, neardup.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]int{} // base label -> files holding it
	for _, e := range entries {
		files[base[e.image]]++
	}
	want := 0 // base labels stored more than once
	for _, n := range files {
		if n > 1 {
			want++
		}
	}
	if len(res.Groups) != want {
		t.Errorf("neardup.Find: %d groups, want %d", len(res.Groups), want)
	}
	for _, g := range res.Groups {
		b := base[entries[g.Members[0].Index].image]
		if len(g.Members) != files[b] {
			t.Errorf("group %d: %d members, want the %d files of %s", g.ID, len(g.Members), files[b], b)
		}
		for _, m := range g.Members {
			if e := entries[m.Index]; base[e.image] != b || (m.Similarity != 1) != (e.image != entries[g.Members[0].Index].image) {
				t.Errorf("group %d: %s (%s, similarity %v) grouped with %s", g.ID, e.path(), e.image, m.Similarity, b)
			}
		}
	}
}
