// Command fpdump prints, for every image file below the folders given, its
// path and the SHA-256 of its encoded near-duplicate fingerprint
// (neardup.FromBytes, MarshalBinary), or the error, one line a file in
// path order. scripts/compare-fingerprints.sh runs it from two commits to
// show that a change to the decoders or the fingerprint leaves every
// fingerprint bit-identical. With -no-pixels first, the version byte and
// the pixel hash are left out of what is hashed (for a change of the pixel
// hash: the rest must still be identical).
//
//	go run ./bench/fpdump [-no-pixels] ../shared/knee-dev testdata
package main

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kneepipe/kneepipe/internal/neardup"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fpdump DIR...")
		os.Exit(2)
	}
	dirs, skip := os.Args[1:], 0
	if dirs[0] == "-no-pixels" {
		dirs, skip = dirs[1:], 1+32 // version, neardup.Fingerprint.Pixels
	}
	for _, dir := range dirs {
		if err := dump(dir, skip); err != nil {
			fmt.Fprintln(os.Stderr, "fpdump:", err)
			os.Exit(1)
		}
	}
}

// dump prints one line for each .png, .jpg or .jpeg file below dir,
// hashing the encoded fingerprint from byte skip.
func dump(dir string, skip int) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".png", ".jpg", ".jpeg":
			if d.Type().IsRegular() {
				paths = append(paths, p)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(paths)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fp, err := neardup.FromBytes(data, 0)
		if err != nil {
			fmt.Printf("%s error %v\n", p, err)
			continue
		}
		b, err := fp.MarshalBinary()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		fmt.Printf("%s %x\n", p, sha256.Sum256(b[skip:]))
	}
	return nil
}
