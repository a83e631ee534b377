package audio

import (
	"math"
	"testing"
)

// The reference functions below transcribe the ITU-T G.191 Software Tool
// Library's g711.c (ulaw_compress, ulaw_expand, alaw_compress, alaw_expand)
// one sample at a time, loops and all, so that the package's bit-twiddling
// versions are checked against the Recommendation's own code for every
// 16-bit input.

func refULawCompress(x int16) byte {
	var absno int
	if x < 0 {
		absno = int(^x>>2) + 33
	} else {
		absno = int(x>>2) + 33
	}
	if absno > 0x1FFF {
		absno = 0x1FFF
	}
	segno := 1
	for i := absno >> 6; i != 0; i >>= 1 {
		segno++
	}
	high := 0x0008 - segno
	low := 0x000F - (absno>>segno)&0x000F
	out := high<<4 | low
	if x >= 0 {
		out |= 0x0080
	}
	return byte(out)
}

func refULawExpand(b byte) int16 {
	sign := 1
	if b < 0x80 {
		sign = -1
	}
	mantissa := ^int(b)
	exponent := (mantissa >> 4) & 0x0007
	segment := exponent + 1
	mantissa &= 0x000F
	step := 4 << segment
	return int16(sign * ((0x0080 << exponent) + step*mantissa + step/2 - 4*33))
}

func refALawCompress(x int16) byte {
	var ix int
	if x < 0 {
		ix = int(^x >> 4)
	} else {
		ix = int(x >> 4)
	}
	if ix > 15 {
		iexp := 1
		for ix > 16+15 {
			ix >>= 1
			iexp++
		}
		ix -= 16
		ix += iexp << 4
	}
	if x >= 0 {
		ix |= 0x0080
	}
	return byte(ix ^ 0x0055)
}

func refALawExpand(b byte) int16 {
	ix := int(b) ^ 0x0055
	iexp := (ix & 0x7F) >> 4
	mant := ix & 0x0F
	if iexp > 0 {
		mant += 16
	}
	mant = mant<<4 + 0x0008
	if iexp > 1 {
		mant <<= iexp - 1
	}
	if ix > 127 {
		return int16(mant)
	}
	return int16(-mant)
}

func TestG711MatchesReference(t *testing.T) {
	for x := math.MinInt16; x <= math.MaxInt16; x++ {
		s := int16(x)
		if got, want := EncodeMuLaw(s), refULawCompress(s); got != want {
			t.Fatalf("EncodeMuLaw(%d) = %#02x, reference %#02x", s, got, want)
		}
		if got, want := EncodeALaw(s), refALawCompress(s); got != want {
			t.Fatalf("EncodeALaw(%d) = %#02x, reference %#02x", s, got, want)
		}
	}
	for b := range 256 {
		if got, want := DecodeMuLaw(byte(b)), refULawExpand(byte(b)); got != want {
			t.Fatalf("DecodeMuLaw(%#02x) = %d, reference %d", b, got, want)
		}
		if got, want := DecodeALaw(byte(b)), refALawExpand(byte(b)); got != want {
			t.Fatalf("DecodeALaw(%#02x) = %d, reference %d", b, got, want)
		}
	}
}

// Spot checks against the G.711 code tables.
func TestG711Table(t *testing.T) {
	for _, c := range []struct {
		code byte
		mu   int16
		a    int16
	}{
		{0x00, -32124, -5504},
		{0x01, -31100, -5248},
		{0x0F, -16764, -6784},
		{0x2A, -5372, -32256},
		{0x55, -716, -8},
		{0x7E, -8, -880},
		{0x7F, 0, -848},
		{0x80, 32124, 5504},
		{0xAA, 5372, 32256},
		{0xD5, 716, 8},
		{0xFE, 8, 880},
		{0xFF, 0, 848},
	} {
		if got := DecodeMuLaw(c.code); got != c.mu {
			t.Errorf("DecodeMuLaw(%#02x) = %d, want %d", c.code, got, c.mu)
		}
		if got := DecodeALaw(c.code); got != c.a {
			t.Errorf("DecodeALaw(%#02x) = %d, want %d", c.code, got, c.a)
		}
	}
	for _, c := range []struct {
		x     int16
		mu, a byte
	}{
		{0, 0xFF, 0xD5},
		{-1, 0x7F, 0x55},
		{8, 0xFE, 0xD5},
		{-9, 0x7E, 0x55},
		{16, 0xFD, 0xD4},
		{math.MaxInt16, 0x80, 0xAA},
		{math.MinInt16, 0x00, 0x2A},
		{32124, 0x80, 0xAA},
		{1000, 0xCE, 0xFA},
		{-1000, 0x4E, 0x7A},
	} {
		if got := EncodeMuLaw(c.x); got != c.mu {
			t.Errorf("EncodeMuLaw(%d) = %#02x, want %#02x", c.x, got, c.mu)
		}
		if got := EncodeALaw(c.x); got != c.a {
			t.Errorf("EncodeALaw(%d) = %#02x, want %#02x", c.x, got, c.a)
		}
	}
}

func TestG711RoundTrip(t *testing.T) {
	codecs := []struct {
		name   string
		enc    func(int16) byte
		dec    func(byte) int16
		peak   int // largest decoded magnitude
		relErr int // error bound as a fraction of the magnitude: |x|/relErr
	}{
		{"mulaw", EncodeMuLaw, DecodeMuLaw, 32124, 16},
		{"alaw", EncodeALaw, DecodeALaw, 32256, 32},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			prev := math.MinInt
			for x := math.MinInt16; x <= math.MaxInt16; x++ {
				code := c.enc(int16(x))
				d := int(c.dec(code))
				// Decoding yields the representative of the code
				// (μ-law's negative zero decodes to plain zero).
				if c.enc(int16(d)) != code && !(c.name == "mulaw" && code == 0x7F) {
					t.Fatalf("encode(decode(encode(%d))) differs", x)
				}
				// Monotone: louder input never decodes quieter.
				if d < prev {
					t.Fatalf("decode(encode(%d)) = %d < decode(encode(%d)) = %d", x, d, x-1, prev)
				}
				prev = d
				// Symmetric about −½.
				if c.enc(^int16(x)) != code^0x80 {
					t.Fatalf("encode(%d) and encode(%d) differ beyond the sign bit", x, ^int16(x))
				}
				// Close: within half a quantization step, which is at
				// most 1/relErr of the magnitude (16 near zero), unless
				// the input is beyond the largest code.
				ax, err := abs(x), abs(d-x)
				if ax <= c.peak && err > max(16, ax/c.relErr) {
					t.Fatalf("decode(encode(%d)) = %d, error %d", x, d, err)
				}
				if ax > c.peak && abs(d) != c.peak {
					t.Fatalf("decode(encode(%d)) = %d, want ±%d", x, d, c.peak)
				}
			}
			for b := range 256 {
				d := c.dec(byte(b))
				if c.name == "mulaw" && b == 0x7F { // negative zero
					continue
				}
				if got := c.enc(d); got != byte(b) {
					t.Errorf("encode(decode(%#02x)) = %#02x", b, got)
				}
			}
		})
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
