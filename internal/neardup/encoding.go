package neardup

import (
	"encoding/binary"
	"fmt"
)

// encodingVersion is the first byte of an encoded Fingerprint; a change of
// layout or of how fingerprints are computed must change it, so that
// fingerprints remembered by an older version are recomputed. Version 2:
// the pixel hash is BLAKE3, not SHA-256.
const encodingVersion = 2

// EncodedSize is the length of MarshalBinary's output.
const EncodedSize = 1 + 32 + 4 + 4 + 2*coeffCount + thumbPixels

// MarshalBinary encodes the fingerprint in EncodedSize bytes (for a binary
// column): version, pixel hash, width, height, coefficients, thumbnail.
func (fp *Fingerprint) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, EncodedSize)
	b = append(b, encodingVersion)
	b = append(b, fp.Pixels[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(fp.Width))
	b = binary.BigEndian.AppendUint32(b, uint32(fp.Height))
	for _, c := range fp.Coeffs {
		b = binary.BigEndian.AppendUint16(b, uint16(c))
	}
	return append(b, fp.Thumb[:]...), nil
}

// UnmarshalBinary decodes MarshalBinary's output.
func (fp *Fingerprint) UnmarshalBinary(b []byte) error {
	if len(b) != EncodedSize {
		return fmt.Errorf("neardup: fingerprint of %d bytes, want %d", len(b), EncodedSize)
	}
	if b[0] != encodingVersion {
		return fmt.Errorf("neardup: fingerprint version %d, want %d", b[0], encodingVersion)
	}
	b = b[1:]
	copy(fp.Pixels[:], b)
	b = b[32:]
	w, h := int32(binary.BigEndian.Uint32(b)), int32(binary.BigEndian.Uint32(b[4:]))
	if w <= 0 || h <= 0 {
		return fmt.Errorf("neardup: fingerprint of a %dx%d image", w, h)
	}
	fp.Width, fp.Height = w, h
	b = b[8:]
	for i := range fp.Coeffs {
		fp.Coeffs[i] = int16(binary.BigEndian.Uint16(b[2*i:]))
	}
	copy(fp.Thumb[:], b[2*coeffCount:])
	return nil
}
