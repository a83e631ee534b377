package audio

import "fmt"

// mp3 parses an optional ID3v2 tag and the first two MPEG audio frame
// headers; p.buf starts with "ID3" or an 11-bit frame sync.
func (p *prober) mp3() (Info, error) {
	notMP3 := fmt.Errorf("%w: no MPEG layer III frames", ErrUnsupported)
	pos := int64(0)
	if string(p.buf[:3]) == "ID3" {
		// ID3v2 header (id3.org, ID3v2.4 structure §3.1): "ID3", major
		// and revision version, flags, then the tag size excluding this
		// header as four 7-bit bytes ("syncsafe"). A footer (flag bit 4,
		// version 4 only) adds another 10 bytes.
		if err := p.need(10, notMP3); err != nil {
			return Info{}, err
		}
		h := p.buf[:10]
		if h[3] < 2 || h[3] > 4 || h[4] == 0xFF || (h[6]|h[7]|h[8]|h[9])&0x80 != 0 {
			return Info{}, fmt.Errorf("%w: invalid ID3v2 tag header", ErrUnsupported)
		}
		size := int64(h[6])<<21 | int64(h[7])<<14 | int64(h[8])<<7 | int64(h[9])
		pos = 10 + size
		if h[3] == 4 && h[5]&0x10 != 0 {
			pos += 10
		}
		if err := p.need(pos, fmt.Errorf("%w: ID3v2 tag incomplete", ErrTruncated)); err != nil {
			return Info{}, err
		}
		// Some taggers pad beyond the declared size with zeros.
		for {
			if err := p.need(pos+1, notMP3); err != nil {
				return Info{}, err
			}
			if p.buf[pos] != 0 {
				break
			}
			pos++
		}
	}

	if err := p.need(pos+4, notMP3); err != nil {
		return Info{}, err
	}
	first, ok := parseFrameHeader(p.buf[pos : pos+4])
	if !ok {
		return Info{}, notMP3
	}
	// Four random bytes pass as a frame header about once in 22000; a
	// second header exactly where the first frame ends makes a false
	// positive vanishingly rare.
	next := pos + first.length
	if err := p.need(next+4, notMP3); err != nil {
		return Info{}, err
	}
	second, ok := parseFrameHeader(p.buf[next : next+4])
	if !ok || second.version != first.version || second.sampleRate != first.sampleRate {
		return Info{}, notMP3
	}
	return Info{
		Container:  "mp3",
		Encoding:   MP3,
		Channels:   first.channels,
		SampleRate: first.sampleRate,
		DataOffset: 0,
		DataBytes:  -1,
	}, nil
}

// frameHeader is the part of an MPEG audio frame header that Probe uses.
type frameHeader struct {
	version    byte  // 0: MPEG-2.5, 2: MPEG-2, 3: MPEG-1
	sampleRate int   // Hz
	channels   int   // 1 or 2
	length     int64 // bytes in the frame, header included
}

// parseFrameHeader parses a 4-byte MPEG audio layer III frame header
// (ISO/IEC 11172-3 §2.4.2.3, ISO/IEC 13818-3 for MPEG-2, and the MPEG-2.5
// extension):
//
//	AAAAAAAA AAABBCCD EEEEFFGH IIJJKLMM
//	A sync, B version, C layer, D no CRC, E bitrate, F sample rate,
//	G padding, H private, I channel mode, J mode extension,
//	K copyright, L original, M emphasis
//
// It reports false for anything but layer III with a known version,
// bitrate (free format is refused: its frame length cannot be computed from
// the header), sample rate and emphasis.
func parseFrameHeader(b []byte) (frameHeader, bool) {
	if b[0] != 0xFF || b[1]&0xE0 != 0xE0 {
		return frameHeader{}, false
	}
	version := b[1] >> 3 & 3
	layer := b[1] >> 1 & 3
	bitrateIndex := b[2] >> 4
	rateIndex := b[2] >> 2 & 3
	padding := int64(b[2] >> 1 & 1)
	mode := b[3] >> 6
	emphasis := b[3] & 3
	if version == 1 || layer != 1 || bitrateIndex == 0 || bitrateIndex == 15 || rateIndex == 3 || emphasis == 2 {
		return frameHeader{}, false
	}

	// Bitrates in kbit/s by index 1–14.
	mpeg1 := [15]int64{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320}
	mpeg2 := [15]int64{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160}
	rate := [3]int{44100, 48000, 32000}[rateIndex]
	var length int64
	switch version {
	case 3: // MPEG-1: 1152 samples per frame
		length = 144000*mpeg1[bitrateIndex]/int64(rate) + padding
	case 2: // MPEG-2: half the sample rate, 576 samples per frame
		rate /= 2
		length = 72000*mpeg2[bitrateIndex]/int64(rate) + padding
	case 0: // MPEG-2.5: a quarter of the sample rate, 576 samples per frame
		rate /= 4
		length = 72000*mpeg2[bitrateIndex]/int64(rate) + padding
	}
	channels := 2
	if mode == 3 {
		channels = 1
	}
	return frameHeader{version: version, sampleRate: rate, channels: channels, length: length}, true
}
