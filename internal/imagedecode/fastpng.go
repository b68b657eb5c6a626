package imagedecode

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math"
	"sync"

	"github.com/kneepipe/kneepipe/internal/inflate"
)

// RawFormat is a PNG sample layout DecodeRaw handles.
type RawFormat uint8

const (
	RawGray8  RawFormat = iota + 1 // colour type 0, 8 bits: 1 byte a pixel
	RawGray16                      // colour type 0, 16 bits: 2 bytes, big-endian
	RawRGB8                        // colour type 2, 8 bits: R, G, B
)

// bytesPerPixel of each format.
func (f RawFormat) bytesPerPixel() int {
	switch f {
	case RawGray16:
		return 2
	case RawRGB8:
		return 3
	}
	return 1
}

// Raw is a decoded PNG in its own sample layout, without conversion into
// an image.Image: row y is Pix[y*Stride:][:Width*bytes per pixel].
type Raw struct {
	Format        RawFormat
	Width, Height int
	Stride        int
	Pix           []byte
}

// Row is row y's samples.
func (r *Raw) Row(y int) []byte {
	return r.Pix[y*r.Stride : y*r.Stride+r.Width*r.Format.bytesPerPixel()]
}

// rawDecoder is DecodeRaw's reusable state: the inflater and the buffers.
type rawDecoder struct {
	z    inflate.Decoder
	idat []byte // the IDAT chunks' data joined, when there are several
	pix  []byte // filter byte + samples, row after row
	zero []byte // the row "above" the first one
}

// rawDecoders keeps decoders between calls: a decoder holds ~24 KB of
// Huffman tables and its buffers, which callers decoding from many
// goroutines would otherwise allocate per image.
var rawDecoders = sync.Pool{New: func() any { return new(rawDecoder) }}

// maxPooledPix is the largest buffer a decoder keeps for reuse.
const maxPooledPix = 16 << 20

// maxRawBytes bounds the filtered rows' size: an int (32-bit platforms),
// and below the runtime's 2^48-byte slice limit, past which make panics.
const maxRawBytes = min(math.MaxInt, 1<<46)

// DecodeRaw decodes the common PNG layouts of radiographs (non-interlaced
// 8- or 16-bit gray, 8-bit RGB, without tRNS or PLTE) ~1.7× as fast as
// Decode on knee PNGs (BenchmarkKneeDecode): internal/inflate straight
// into the row buffer, no image.Image, buffers reused. It calls
// fn with the pixels, which are valid only during fn, and reports whether
// it did. It is stricter than image/png: anything else, damaged data or a
// header over maxPixels (DefaultMaxPixels when <= 0) is left to Decode
// (false), which then gives the error, so its errors stay the same.
func DecodeRaw(data []byte, maxPixels int64, fn func(*Raw)) bool {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	d := rawDecoders.Get().(*rawDecoder)
	defer func() {
		if cap(d.pix) > maxPooledPix {
			d.pix, d.zero = nil, nil
		}
		if cap(d.idat) > maxPooledPix {
			d.idat = nil
		}
		rawDecoders.Put(d)
	}()
	raw, idat, ok := d.chunks(data, maxPixels)
	if !ok || !d.inflate(&raw, idat) {
		return false
	}
	fn(&raw)
	return true
}

// chunks walks the chunks up to IEND, checking every CRC as image/png does,
// and returns the header and the IDAT data. ok is false for a layout
// DecodeRaw leaves to Decode and for anything unusual.
func (d *rawDecoder) chunks(data []byte, maxPixels int64) (raw Raw, idat []byte, ok bool) {
	const sig = "\x89PNG\r\n\x1a\n"
	if !bytes.HasPrefix(data, []byte(sig)) {
		return raw, nil, false
	}
	// One IDAT is used where it lies; several are joined as they come
	// (d.idat): a list of them would cost 24 bytes for each 12-byte chunk.
	var idat1 []byte
	nIDAT := 0
	idatDone := false
	for i := len(sig); ; {
		if len(data)-i < 12 {
			return raw, nil, false
		}
		n := binary.BigEndian.Uint32(data[i:])
		if n > 0x7fffffff || int64(n) > int64(len(data)-i-12) {
			return raw, nil, false
		}
		typ, body := string(data[i+4:i+8]), data[i+8:i+8+int(n)]
		if crc32.ChecksumIEEE(data[i+4:i+8+int(n)]) != binary.BigEndian.Uint32(data[i+8+int(n):]) {
			return raw, nil, false
		}
		i += 12 + int(n)
		first := raw.Format == 0
		switch {
		case typ == "IHDR":
			if !first || !parseIHDR(body, maxPixels, &raw) {
				return raw, nil, false
			}
		case first, typ == "PLTE", typ == "tRNS":
			return raw, nil, false
		case typ == "IDAT":
			if idatDone {
				return raw, nil, false
			}
			switch nIDAT++; nIDAT {
			case 1:
				idat1 = body
			case 2:
				d.idat = append(append(d.idat[:0], idat1...), body...)
			default:
				d.idat = append(d.idat, body...)
			}
		case typ == "IEND":
			if nIDAT == 0 || n != 0 {
				return raw, nil, false
			}
			if nIDAT == 1 {
				return raw, idat1, true
			}
			return raw, d.idat, true
		default:
			idatDone = nIDAT > 0
		}
	}
}

// parseIHDR accepts the layouts DecodeRaw handles within maxPixels.
func parseIHDR(b []byte, maxPixels int64, raw *Raw) bool {
	if len(b) != 13 || b[10] != 0 || b[11] != 0 || b[12] != 0 {
		return false
	}
	w, h := int32(binary.BigEndian.Uint32(b)), int32(binary.BigEndian.Uint32(b[4:]))
	if w <= 0 || h <= 0 || int64(w)*int64(h) > maxPixels {
		return false
	}
	switch depth, ct := b[8], b[9]; {
	case depth == 8 && ct == 0:
		raw.Format = RawGray8
	case depth == 16 && ct == 0:
		raw.Format = RawGray16
	case depth == 8 && ct == 2:
		raw.Format = RawRGB8
	default:
		return false
	}
	raw.Width, raw.Height = int(w), int(h)
	return true
}

// inflate decompresses idat into the pixel buffer and unfilters it. The
// zlib stream must fill the rows exactly, end with a valid checksum and
// use up idat.
func (d *rawDecoder) inflate(raw *Raw, idat []byte) bool {
	bpp := raw.Format.bytesPerPixel()
	// In uint64: h·(1+w·bpp) < 2^64 for w, h < 2^31, but not always below
	// an int's or a slice's limit when maxPixels is large.
	if n := uint64(raw.Height) * (1 + uint64(raw.Width)*uint64(bpp)); n > maxRawBytes {
		return false
	}
	stride := 1 + raw.Width*bpp
	total := stride * raw.Height
	if cap(d.pix) < total {
		d.pix = make([]byte, total)
	}
	pix := d.pix[:total]
	want, err := d.z.ZlibUnchecked(pix, idat)
	if err != nil {
		return false
	}
	if cap(d.zero) < stride {
		d.zero = make([]byte, stride)
	}
	// The checksum of the filtered rows is taken row by row as they are
	// unfiltered: a Sub-filtered gray row on the same pass.
	prev, sum := d.zero[:stride], uint32(1)
	for y := range raw.Height {
		row := pix[y*stride : (y+1)*stride]
		if row[0] == 1 && bpp == 1 {
			sum = subGray8(sum, row)
		} else {
			sum = inflate.AdlerUpdate(sum, row)
			if !unfilter(row[0], row[1:], prev[1:], bpp) {
				return false
			}
		}
		prev = row
	}
	if sum != want {
		return false
	}
	raw.Stride, raw.Pix = stride, pix[1:]
	return true
}

// unfilter reverses a row's PNG filter in place, given the unfiltered row
// above (zeros for the first); false for an unknown filter type.
func unfilter(ft byte, cur, prev []byte, bpp int) bool {
	switch ft {
	case 0:
	case 1: // Sub
		if bpp == 1 { // gray: the left sample stays in a register
			var a byte
			for i, v := range cur {
				a += v
				cur[i] = a
			}
			break
		}
		for i := bpp; i < len(cur); i++ {
			cur[i] += cur[i-bpp]
		}
	case 2: // Up
		for i, p := range prev[:len(cur)] {
			cur[i] += p
		}
	case 3: // Average
		if bpp == 1 {
			var a int
			for i, p := range prev[:len(cur)] {
				a = (int(cur[i]) + (a+int(p))/2) & 0xff
				cur[i] = uint8(a)
			}
			break
		}
		for i := range bpp {
			cur[i] += prev[i] / 2
		}
		for i := bpp; i < len(cur); i++ {
			cur[i] += uint8((int(cur[i-bpp]) + int(prev[i])) / 2)
		}
	case 4:
		paeth(cur, prev, bpp)
	default:
		return false
	}
	return true
}

// subGray8 reverses the Sub filter of row (filter byte 1, then one-byte
// samples) in place and returns adler (the Adler-32 of the rows before it)
// updated with row's filtered bytes: both eight bytes at a time, from the
// same split of each word into 16-bit lanes of its even and odd bytes.
// The Sub filter's prefix sum mod 256: the lanes' pair sums are added up
// the lanes with one multiply, without carries between lanes (8·255 plus
// the carried-in byte < 2^16), and the carry from word to word is one add,
// so the words do not wait for each other's arithmetic. The checksum's
// sums are inflate.AdlerUpdate's, folded by the same inflate.AdlerChunk. Every
// knee-dev row is Sub-filtered.
func subGray8(adler uint32, row []byte) uint32 {
	s1, s2 := uint64(adler&0xffff)+uint64(row[0]), uint64(adler>>16)
	s2 += s1
	cur := row[1:]
	var a uint64 // the last reconstructed byte
	for len(cur) >= 8 {
		words := min(len(cur)/8, 256) // lanes of column sums exact up to 257 words
		var even, odd, sum, prefix uint64
		a, even, odd, sum, prefix = subWords(cur[:words*8], a)
		s1, s2 = inflate.AdlerChunk(s1, s2, words, even, odd, sum, prefix)
		cur = cur[words*8:]
	}
	b := byte(a)
	for i, c := range cur {
		s1 += uint64(c)
		s2 += s1
		b += c
		cur[i] = b
	}
	return uint32(s2%inflate.AdlerMod)<<16 | uint32(s1%inflate.AdlerMod)
}

// subWords is subGray8's pass over whole words (at most 256), given the
// byte left of them, a: it returns the last byte reconstructed and the
// chunk's sums for inflate.AdlerChunk. It is a function of its own, with
// the words taken off the front of q, so that the loop's few values stay
// in registers (inlined into subGray8 its index went through memory, and
// a pass took ~1.2x as long).
func subWords(q []byte, a uint64) (_, even, odd, sum, prefix uint64) {
	const lanes, ones = 0x00ff00ff00ff00ff, 0x0001000100010001
	for len(q) >= 8 {
		x := binary.LittleEndian.Uint64(q)
		e, o := x&lanes, x>>8&lanes
		even += e
		odd += o
		sums := (e + o) * ones // lane k: bytes 0..2k+1 of the word
		prefix += sum
		t := sums >> 48
		sum += t
		s := sums + a*ones
		binary.LittleEndian.PutUint64(q, (s-o)&lanes|(s&lanes)<<8)
		a = (a + t) & 0xff
		q = q[8:]
	}
	return a, even, odd, sum, prefix
}

// paeth reverses the Paeth filter, one channel at a time so that the left
// and upper-left samples stay in registers.
func paeth(cur, prev []byte, bpp int) {
	prev = prev[:len(cur)]
	for ch := range bpp {
		var a, c int // left and upper-left, reconstructed
		for j := ch; j < len(cur); j += bpp {
			b := int(prev[j])
			pa, pb := b-c, a-c // |p-a| and |p-b| before abs, p = a+b-c
			pc := abs(pa + pb)
			pa, pb = abs(pa), abs(pb)
			switch {
			case pa <= pb && pa <= pc:
			case pb <= pc:
				a = b
			default:
				a = c
			}
			a = (a + int(cur[j])) & 0xff
			cur[j] = uint8(a)
			c = b
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
