package inflate

import "encoding/binary"

// Adler32 is zlib's checksum of p, the same as hash/adler32's, in ~0.7
// of its CPU time on a loaded machine (BenchmarkAdler32): hash/adler32
// adds one byte at a time into two dependent sums, ~10 % of inflating a
// knee PNG.
// Here 8 bytes are taken at a time: the running sum s1 advances by their
// total, and s2, which adds s1 after every byte, by 8·s1 plus each byte
// weighted by the bytes after it. The per-column byte sums are kept in
// 16-bit lanes (even and odd bytes apart), which is exact for up to 257
// words, so p is taken in chunks of 256 words.
func Adler32(p []byte) uint32 { return AdlerUpdate(1, p) }

// AdlerMod is Adler-32's modulus.
const AdlerMod = 65521

// AdlerUpdate is the Adler-32 of the bytes whose Adler-32 is adler
// followed by p (Adler32(a+b) = AdlerUpdate(Adler32(a), b)).
func AdlerUpdate(adler uint32, p []byte) uint32 {
	s1, s2 := uint64(adler&0xffff), uint64(adler>>16)
	for len(p) >= 8 {
		words := min(len(p)/8, 256)
		var even, odd uint64   // byte columns 0,2,4,6 and 1,3,5,7
		var sum, prefix uint64 // bytes so far in the chunk; sum of those sums
		for i := 0; i < words*8; i += 8 {
			w := binary.LittleEndian.Uint64(p[i:])
			e, o := w&0x00ff00ff00ff00ff, w>>8&0x00ff00ff00ff00ff
			even += e
			odd += o
			prefix += sum
			sum += (e + o) * 0x0001000100010001 >> 48
		}
		s1, s2 = AdlerChunk(s1, s2, words, even, odd, sum, prefix)
		p = p[words*8:]
	}
	for _, c := range p {
		s1 += uint64(c)
		s2 += s1
	}
	return uint32(s2%AdlerMod)<<16 | uint32(s1%AdlerMod)
}

// AdlerChunk adds a chunk of words 8-byte words (at most 256) to
// Adler-32's running sums s1 and s2: even and odd are its byte columns
// 0,2,4,6 and 1,3,5,7 summed in 16-bit lanes, sum the sum of its bytes and
// prefix the sum over its words of the bytes before each word.
func AdlerChunk(s1, s2 uint64, words int, even, odd, sum, prefix uint64) (uint64, uint64) {
	// Byte j of a word is followed by 7-j more in it (weight 8-j).
	cols := 8*(even&0xffff) + 6*(even>>16&0xffff) + 4*(even>>32&0xffff) + 2*(even>>48) +
		7*(odd&0xffff) + 5*(odd>>16&0xffff) + 3*(odd>>32&0xffff) + 1*(odd>>48)
	return (s1 + sum) % AdlerMod, (s2 + uint64(words)*8*s1 + 8*prefix + cols) % AdlerMod
}
