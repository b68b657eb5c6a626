package main

import (
	"fmt"
	"os"

	"github.com/kneepipe/kneepipe/internal/imagedecode"
	"github.com/kneepipe/kneepipe/internal/neardup"
)

// checkDecoders fingerprints every corpus file both ways, through
// neardup.FromBytes (imagedecode.DecodeRaw for the PNG layouts it takes)
// and through image/png (imagedecode.Decode, neardup.FromImage), and fails
// unless the fingerprints are identical.
func checkDecoders(items []item) error {
	raw := 0
	for _, it := range items {
		data, err := os.ReadFile(it.path)
		if err != nil {
			return err
		}
		if imagedecode.DecodeRaw(data, 0, func(*imagedecode.Raw) {}) {
			raw++
		}
		got, err := neardup.FromBytes(data, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", it.path, err)
		}
		img, _, err := imagedecode.Decode(data, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", it.path, err)
		}
		if neardup.FromImage(img) != got {
			return fmt.Errorf("%s: the fast PNG path's fingerprint differs from image/png's", it.path)
		}
	}
	fmt.Printf("decoders: %d of %d files took the fast PNG path; all %d fingerprints equal image/png's\n", raw, len(items), len(items))
	return nil
}
