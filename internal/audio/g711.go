package audio

import "math/bits"

// The G.711 codecs below produce the same codes as the ITU-T's own
// reference implementation (G.191 Software Tool Library, g711.c): μ-law
// works on 14-bit and A-law on 13-bit values, so the low 2 (μ-law) or 3
// (A-law) bits of a 16-bit sample are dropped before encoding, and negative
// values take their ones' complement (−1 is "negative zero"), which makes
// both codes symmetric about −½. (Sun's widely copied g711.c differs for
// μ-law: it negates instead, shifting negative inputs by one step.)

// EncodeMuLaw encodes a 16-bit linear sample as a G.711 μ-law byte.
// 0 encodes as 0xFF and −1 as 0x7F; the loudest samples saturate at 0x80
// (positive) and 0x00 (negative).
func EncodeMuLaw(s int16) byte {
	const bias = 0x84 >> 2 // 33, the bias in the 14-bit domain
	v := int(s) >> 2
	mask := byte(0xFF)
	if v < 0 {
		v = ^v
		mask = 0x7F
	}
	v = min(v+bias, 0x1FFF)
	// Segment seg holds the biased magnitudes with bit length seg+6:
	// 0–63, 64–127, …, 4096–8191.
	seg := bits.Len(uint(v) >> 6)
	return (byte(seg<<4) | byte(v>>(seg+1))&0x0F) ^ mask
}

// DecodeMuLaw decodes a G.711 μ-law byte to a 16-bit linear sample, in
// −32124..32124. Both 0xFF and 0x7F decode to 0.
func DecodeMuLaw(b byte) int16 {
	u := ^b
	t := (int(u&0x0F)<<3 + 0x84) << (u & 0x70 >> 4)
	if u&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}

// EncodeALaw encodes a 16-bit linear sample as a G.711 A-law byte (with the
// even bits inverted, as transmitted). 0 encodes as 0xD5.
func EncodeALaw(s int16) byte {
	v := int(s) >> 3 // 13-bit: −4096..4095
	mask := byte(0xD5)
	if v < 0 {
		v = -v - 1
		mask = 0x55
	}
	// Segment seg holds the magnitudes with bit length seg+5: 0–31,
	// 32–63, …, 2048–4095; v is at most 4095, so seg is at most 7.
	seg := bits.Len(uint(v) >> 5)
	q := v >> seg
	if seg < 2 {
		q = v >> 1
	}
	return (byte(seg<<4) | byte(q)&0x0F) ^ mask
}

// DecodeALaw decodes a G.711 A-law byte to a 16-bit linear sample, in
// −32256..32256. Zero is not representable: 0xD5 decodes to 8, 0x55 to −8.
func DecodeALaw(b byte) int16 {
	a := b ^ 0x55
	t := int(a&0x0F)<<4 + 8
	if seg := a & 0x70 >> 4; seg > 0 {
		t = (t + 0x100) << (seg - 1)
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}
