package audio

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Limits a WAV header must respect, for Probe and WriteWAV alike.
const (
	minSampleRate = 4000
	maxSampleRate = 192000
	maxChannels   = 8
	maxFmtSize    = 1024 // far above the 40 bytes of WAVE_FORMAT_EXTENSIBLE
	unknownLength = 0xFFFFFFFF
)

// WAVE format tags (RFC 2361, Microsoft mmreg.h).
const (
	tagPCM        = 0x0001
	tagALaw       = 0x0006
	tagMuLaw      = 0x0007
	tagExtensible = 0xFFFE
)

// guidSuffix is bytes 2–15 of every KSDATAFORMAT_SUBTYPE GUID derived from a
// format tag, {0000xxxx-0000-0010-8000-00aa00389b71} in little-endian
// layout; bytes 0–1 hold the tag.
const guidSuffix = "\x00\x00\x00\x00\x10\x00\x80\x00\x00\xAA\x00\x38\x9B\x71"

// wav parses a RIFF/WAVE header; p.buf starts with "RIFF".
func (p *prober) wav() (Info, error) {
	if err := p.need(12, fmt.Errorf("%w: too short to identify", ErrUnsupported)); err != nil {
		return Info{}, err
	}
	if string(p.buf[8:12]) != "WAVE" {
		return Info{}, fmt.Errorf("%w: RIFF file that is not WAVE", ErrUnsupported)
	}
	truncated := fmt.Errorf("%w: wav header incomplete", ErrTruncated)
	var (
		info   Info
		align  int64
		gotFmt bool
	)
	for pos := int64(12); ; {
		if err := p.need(pos+8, truncated); err != nil {
			return Info{}, err
		}
		id := p.buf[pos : pos+4]
		for _, c := range id {
			if c < 0x20 || c > 0x7E {
				return Info{}, fmt.Errorf("%w: wav chunk id is not printable", ErrMalformed)
			}
		}
		size := int64(binary.LittleEndian.Uint32(p.buf[pos+4:]))
		body := pos + 8
		switch string(id) {
		case "fmt ":
			if gotFmt {
				return Info{}, fmt.Errorf("%w: wav has two fmt chunks", ErrMalformed)
			}
			if size < 16 || size > maxFmtSize {
				return Info{}, fmt.Errorf("%w: wav fmt chunk size %d out of range", ErrMalformed, size)
			}
			if err := p.need(body+size, truncated); err != nil {
				return Info{}, err
			}
			var err error
			info, align, err = parseFmt(p.buf[body : body+size])
			if err != nil {
				return Info{}, err
			}
			gotFmt = true
		case "data":
			if !gotFmt {
				return Info{}, fmt.Errorf("%w: wav data chunk before fmt chunk", ErrMalformed)
			}
			if size == unknownLength {
				return Info{}, fmt.Errorf("%w: wav data chunk length unknown", ErrMalformed)
			}
			if size%align != 0 {
				return Info{}, fmt.Errorf("%w: wav data chunk length is not a whole number of blocks", ErrMalformed)
			}
			info.DataOffset = body
			info.DataBytes = size
			return info, nil
		}
		// Skip this chunk and its pad byte; the next need reads through
		// it, or fails with errWindow before reading past the window.
		pos = body + size + size&1
	}
}

// parseFmt validates the body of a "fmt " chunk and returns the Info it
// describes (without data offset and length) and the block align.
func parseFmt(b []byte) (Info, int64, error) {
	tag := binary.LittleEndian.Uint16(b[0:])
	channels := int(binary.LittleEndian.Uint16(b[2:]))
	rate := int(binary.LittleEndian.Uint32(b[4:]))
	align := int(binary.LittleEndian.Uint16(b[12:]))
	bits := int(binary.LittleEndian.Uint16(b[14:]))

	if tag == tagExtensible {
		if len(b) < 40 || binary.LittleEndian.Uint16(b[16:]) < 22 {
			return Info{}, 0, fmt.Errorf("%w: wav extensible fmt chunk too short", ErrMalformed)
		}
		if string(b[26:40]) != guidSuffix {
			return Info{}, 0, fmt.Errorf("%w: wav extensible sub-format", ErrUnsupported)
		}
		if valid := int(binary.LittleEndian.Uint16(b[18:])); valid > bits {
			return Info{}, 0, fmt.Errorf("%w: wav valid bits exceed bits per sample", ErrMalformed)
		}
		tag = binary.LittleEndian.Uint16(b[24:])
	}

	var enc Encoding
	switch tag {
	case tagPCM:
		enc = PCM16
	case tagALaw:
		enc = ALaw
	case tagMuLaw:
		enc = MuLaw
	default:
		return Info{}, 0, fmt.Errorf("%w: wav codec 0x%04x", ErrUnsupported, tag)
	}
	if bits == 0 || bits%8 != 0 {
		return Info{}, 0, fmt.Errorf("%w: wav bits per sample %d", ErrMalformed, bits)
	}
	if bits != bitsPerSample(enc) {
		if enc == PCM16 { // valid PCM, just not a depth callvault takes
			return Info{}, 0, fmt.Errorf("%w: wav pcm with %d bits per sample", ErrUnsupported, bits)
		}
		return Info{}, 0, fmt.Errorf("%w: wav g.711 with %d bits per sample", ErrMalformed, bits)
	}
	if channels < 1 || channels > maxChannels {
		return Info{}, 0, fmt.Errorf("%w: wav channel count %d", ErrMalformed, channels)
	}
	if rate < minSampleRate || rate > maxSampleRate {
		return Info{}, 0, fmt.Errorf("%w: wav sample rate %d", ErrMalformed, rate)
	}
	if align != channels*bits/8 {
		return Info{}, 0, fmt.Errorf("%w: wav block align %d for %d channels of %d bits", ErrMalformed, align, channels, bits)
	}
	return Info{Container: "wav", Encoding: enc, Channels: channels, SampleRate: rate}, int64(align), nil
}

// bitsPerSample returns the sample size of a WAV encoding.
func bitsPerSample(enc Encoding) int {
	if enc == PCM16 {
		return 16
	}
	return 8
}

// WAVHeader returns the header WriteWAV writes for frames sample frames of
// channels channels, so that a caller can stream the data itself (frames
// interleaved, encoded with enc, then a pad byte if the data length is
// odd). It refuses what WriteWAV refuses.
func WAVHeader(enc Encoding, sampleRate, channels int, frames int64) ([]byte, error) {
	var tag uint16
	switch enc {
	case PCM16:
		tag = tagPCM
	case MuLaw:
		tag = tagMuLaw
	case ALaw:
		tag = tagALaw
	default:
		return nil, fmt.Errorf("audio: write wav: encoding %q not supported", enc)
	}
	if channels < 1 || channels > maxChannels {
		return nil, fmt.Errorf("audio: write wav: %d channels, want 1 to %d", channels, maxChannels)
	}
	if sampleRate < minSampleRate || sampleRate > maxSampleRate {
		return nil, fmt.Errorf("audio: write wav: sample rate %d out of range", sampleRate)
	}
	if frames < 0 {
		return nil, fmt.Errorf("audio: write wav: negative length")
	}
	bytesPer := bitsPerSample(enc) / 8
	align := channels * bytesPer
	dataLen := uint64(frames) * uint64(align)
	fmtLen, factLen := 16, 0
	if enc != PCM16 {
		fmtLen, factLen = 18, 12
	}
	riffLen := 4 + 8 + uint64(fmtLen) + uint64(factLen) + 8 + dataLen + dataLen&1
	if riffLen > math.MaxUint32 {
		return nil, fmt.Errorf("audio: write wav: too long for a WAV file")
	}

	h := make([]byte, 0, 58)
	h = append(h, "RIFF"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(riffLen))
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, uint32(fmtLen))
	h = binary.LittleEndian.AppendUint16(h, tag)
	h = binary.LittleEndian.AppendUint16(h, uint16(channels))
	h = binary.LittleEndian.AppendUint32(h, uint32(sampleRate))
	h = binary.LittleEndian.AppendUint32(h, uint32(sampleRate*align))
	h = binary.LittleEndian.AppendUint16(h, uint16(align))
	h = binary.LittleEndian.AppendUint16(h, uint16(bytesPer*8))
	if enc != PCM16 {
		h = binary.LittleEndian.AppendUint16(h, 0) // cbSize: no extension
		h = append(h, "fact"...)
		h = binary.LittleEndian.AppendUint32(h, 4)
		h = binary.LittleEndian.AppendUint32(h, uint32(frames))
	}
	h = append(h, "data"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(dataLen))
	return h, nil
}

// WriteWAV writes a complete WAV file to w: the header, then the samples
// interleaved by frame and encoded with enc (PCM16, MuLaw or ALaw).
// samples[c][i] is channel c's i-th sample; there must be 1–8 channels of
// equal length, and sampleRate must be 4000–192000, so that Probe accepts
// the result. PCM16 gets the canonical 44-byte header; G.711 gets an 18-byte
// fmt chunk and a fact chunk, as the WAVE specification asks of non-PCM
// formats. An odd-length data chunk is followed by its pad byte.
func WriteWAV(w io.Writer, enc Encoding, sampleRate int, samples [][]int16) error {
	channels := len(samples)
	if channels < 1 || channels > maxChannels {
		return fmt.Errorf("audio: write wav: %d channels, want 1 to %d", channels, maxChannels)
	}
	frames := len(samples[0])
	for _, c := range samples[1:] {
		if len(c) != frames {
			return fmt.Errorf("audio: write wav: channels differ in length")
		}
	}
	h, err := WAVHeader(enc, sampleRate, channels, int64(frames))
	if err != nil {
		return err
	}
	dataLen := uint64(frames) * uint64(channels*bitsPerSample(enc)/8)
	if _, err := w.Write(h); err != nil {
		return fmt.Errorf("audio: write wav: %w", err)
	}

	buf := make([]byte, 0, 32<<10)
	for i := range frames {
		for _, c := range samples {
			switch enc {
			case PCM16:
				buf = binary.LittleEndian.AppendUint16(buf, uint16(c[i]))
			case MuLaw:
				buf = append(buf, EncodeMuLaw(c[i]))
			case ALaw:
				buf = append(buf, EncodeALaw(c[i]))
			}
		}
		if len(buf) > cap(buf)-2*maxChannels {
			if _, err := w.Write(buf); err != nil {
				return fmt.Errorf("audio: write wav: %w", err)
			}
			buf = buf[:0]
		}
	}
	if dataLen&1 == 1 {
		buf = append(buf, 0)
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("audio: write wav: %w", err)
	}
	return nil
}
