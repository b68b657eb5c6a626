// Package imagedecode decodes PNG, JPEG and GIF images from untrusted
// bytes with bounded memory: the header is read first and an image whose
// declared width × height exceeds a cap is rejected before the decoder
// allocates anything for its pixels. Go's decoders allocate the whole
// pixel buffer from the header alone, so a 70-byte PNG declaring
// 20000×20000 pixels would otherwise cost ~400 MB.
package imagedecode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
)

// DefaultMaxPixels is the default cap on declared pixels: 64 Mi pixels
// (e.g. 8192×8192), well above radiographs (mammograms reach ~5000×6000).
// The worst case decode at the cap (a progressive colour JPEG) holds
// about 12 bytes per pixel.
const DefaultMaxPixels = 64 << 20

// DefaultMaxBytes is the default cap on the encoded size ReadAll accepts.
const DefaultMaxBytes = 512 << 20

var (
	// ErrTooLarge is wrapped by errors for images over a pixel or byte cap.
	ErrTooLarge = errors.New("image too large")
	// ErrFormat is wrapped by errors for bytes that are no PNG, JPEG or GIF,
	// or whose header is damaged.
	ErrFormat = errors.New("unsupported or damaged image")
)

// Header is what an image's header declares.
type Header struct {
	Format        string // "png", "jpeg" or "gif"
	Width, Height int
}

// Pixels is the declared pixel count.
func (h Header) Pixels() int64 { return int64(h.Width) * int64(h.Height) }

// ReadAll reads r up to maxBytes (DefaultMaxBytes when <= 0); a longer
// stream is an ErrTooLarge error, after reading at most maxBytes+1 bytes.
func ReadAll(r io.Reader, maxBytes int64) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	data, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > maxBytes {
		return nil, fmt.Errorf("%w: more than the cap of %d bytes", ErrTooLarge, maxBytes)
	}
	return data, nil
}

// ReadHeader reads the format and declared size from the first bytes of
// an image, without decoding.
func ReadHeader(data []byte) (Header, error) {
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return pngHeader(data)
	case bytes.HasPrefix(data, []byte{0xff, 0xd8}):
		return jpegHeader(data)
	case bytes.HasPrefix(data, []byte("GIF87a")) || bytes.HasPrefix(data, []byte("GIF89a")):
		if len(data) < 10 {
			return Header{}, fmt.Errorf("%w: GIF header truncated", ErrFormat)
		}
		return Header{"gif", int(binary.LittleEndian.Uint16(data[6:])), int(binary.LittleEndian.Uint16(data[8:]))}, nil
	}
	return Header{}, fmt.Errorf("%w: not a PNG, JPEG or GIF", ErrFormat)
}

// pngHeader reads IHDR, which the PNG specification requires first.
func pngHeader(data []byte) (Header, error) {
	if len(data) < 8+8+13 || string(data[12:16]) != "IHDR" {
		return Header{}, fmt.Errorf("%w: PNG without IHDR chunk first", ErrFormat)
	}
	w, h := binary.BigEndian.Uint32(data[16:]), binary.BigEndian.Uint32(data[20:])
	if w == 0 || h == 0 || w > 1<<31-1 || h > 1<<31-1 {
		return Header{}, fmt.Errorf("%w: PNG declares %dx%d pixels", ErrFormat, w, h)
	}
	return Header{"png", int(w), int(h)}, nil
}

// jpegHeader walks the marker segments up to the first start-of-frame
// (SOF0..SOF15 but DHT, JPG and DAC), which Go's decoder also takes as the
// only one.
func jpegHeader(data []byte) (Header, error) {
	i := 2
	for {
		for i < len(data) && data[i] == 0xff { // fill bytes before a marker
			i++
		}
		if i >= len(data) || data[i-1] != 0xff {
			return Header{}, fmt.Errorf("%w: JPEG ends or breaks before its frame header", ErrFormat)
		}
		m := data[i]
		i++
		if m == 0x01 || (m >= 0xd0 && m <= 0xd8) { // markers without a length
			continue
		}
		if i+2 > len(data) {
			return Header{}, fmt.Errorf("%w: JPEG ends before its frame header", ErrFormat)
		}
		n := int(binary.BigEndian.Uint16(data[i:]))
		if n < 2 {
			return Header{}, fmt.Errorf("%w: JPEG segment length %d", ErrFormat, n)
		}
		isSOF := m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc
		switch {
		case isSOF:
			if n < 8 || i+7 > len(data) {
				return Header{}, fmt.Errorf("%w: JPEG frame header truncated", ErrFormat)
			}
			h, w := int(binary.BigEndian.Uint16(data[i+3:])), int(binary.BigEndian.Uint16(data[i+5:]))
			if w == 0 || h == 0 {
				return Header{}, fmt.Errorf("%w: JPEG declares %dx%d pixels", ErrFormat, w, h)
			}
			return Header{"jpeg", w, h}, nil
		case m == 0xda || m == 0xd9:
			return Header{}, fmt.Errorf("%w: JPEG scan or end before any frame header", ErrFormat)
		}
		i += n
	}
}

// Decode checks the header against maxPixels (DefaultMaxPixels when
// <= 0) and only then decodes. An image over the cap is an ErrTooLarge
// error naming its declared size.
func Decode(data []byte, maxPixels int64) (image.Image, Header, error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	h, err := ReadHeader(data)
	if err != nil {
		return nil, h, err
	}
	if h.Pixels() > maxPixels {
		return nil, h, fmt.Errorf("%w: %s declares %dx%d pixels, more than the cap of %d", ErrTooLarge, h.Format, h.Width, h.Height, maxPixels)
	}
	var img image.Image
	r := bytes.NewReader(data)
	switch h.Format {
	case "png":
		img, err = png.Decode(r)
	case "jpeg":
		img, err = jpeg.Decode(r)
	case "gif":
		img, err = gif.Decode(r)
	}
	if err != nil {
		return nil, h, fmt.Errorf("decode %s: %w", h.Format, err)
	}
	if b := img.Bounds(); b.Dx() != h.Width || b.Dy() != h.Height {
		return nil, h, fmt.Errorf("%w: %s header says %dx%d, decoder %dx%d", ErrFormat, h.Format, h.Width, h.Height, b.Dx(), b.Dy())
	}
	return img, h, nil
}
