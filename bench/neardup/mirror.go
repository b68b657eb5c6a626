package main

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"slices"
	"strings"

	"github.com/kneepipe/kneepipe/internal/neardup"
)

// mirrored measures the hardest negatives of knee-dev: a patient's left
// knee mirrored against the same patient's right knee. They look alike
// but are distinct radiographs; it prints the highest similarities and
// how many reach the threshold.
func mirrored(items []item, threshold float64) error {
	byRoot := map[string]string{}
	for _, it := range items {
		if it.kind == "orig" {
			byRoot[it.root] = it.path
		}
	}
	var sims []float64
	for root, left := range byRoot {
		if !strings.HasSuffix(root, "L") {
			continue
		}
		right, ok := byRoot[strings.TrimSuffix(root, "L")+"R"]
		if !ok {
			continue
		}
		l, err := mirroredFingerprint(left)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(right)
		if err != nil {
			return err
		}
		r, err := neardup.FromBytes(data, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", right, err)
		}
		sims = append(sims, neardup.Similarity(&l, &r))
	}
	slices.Sort(sims)
	n := len(sims)
	if n == 0 {
		return nil
	}
	above := 0
	for _, s := range sims {
		if s >= threshold {
			above++
		}
	}
	fmt.Printf("mirrored left knee vs right knee of the same patient (%d patients): similarity max %.4f, p99 %.4f, median %.4f; at or above the threshold %.3f: %d\n",
		n, sims[n-1], sims[n*99/100], sims[n/2], threshold, above)
	return nil
}

func mirroredFingerprint(path string) (neardup.Fingerprint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return neardup.Fingerprint{}, err
	}
	img, err := png.Decode(strings.NewReader(string(data)))
	if err != nil {
		return neardup.Fingerprint{}, fmt.Errorf("%s: %w", path, err)
	}
	g, ok := img.(*image.Gray)
	if !ok {
		return neardup.Fingerprint{}, fmt.Errorf("%s: not 8-bit gray", path)
	}
	return neardup.FromImage(flipH(g)), nil
}
