package audio

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Duration reads a whole WAV or MP3 stream and returns how long it plays.
// For WAV it is the data chunk's length over the byte rate (the samples
// must all be there); for MP3 the frames are walked from the first to the
// last (an ID3v1 tag at the end is allowed) and their samples counted.
// It returns the Info of Probe. Errors wrap ErrUnsupported, ErrMalformed
// (a broken frame header between frames) or ErrTruncated (a frame or the
// data chunk cut short), or r's error.
func Duration(r io.Reader) (Info, time.Duration, error) {
	info, rest, err := Probe(r)
	if err != nil {
		return info, 0, err
	}
	if info.Container == "wav" {
		if _, err := io.Copy(io.Discard, rest); err != nil {
			return info, 0, err
		}
		perSecond := int64(info.SampleRate) * int64(info.Channels) * int64(bitsPerSample(info.Encoding)/8)
		if perSecond == 0 {
			return info, 0, fmt.Errorf("%w: zero byte rate", ErrMalformed)
		}
		return info, time.Duration(info.DataBytes * int64(time.Second) / perSecond), nil
	}
	samples, err := mp3Samples(bufio.NewReaderSize(rest, 64<<10))
	if err != nil {
		return info, 0, err
	}
	return info, time.Duration(samples * int64(time.Second) / int64(info.SampleRate)), nil
}

// mp3Samples walks the frames of an MP3 stream and counts samples.
func mp3Samples(r *bufio.Reader) (int64, error) {
	if err := skipID3v2(r); err != nil {
		return 0, err
	}
	var samples int64
	var hdr [4]byte
	for frames := 0; ; frames++ {
		_, err := io.ReadFull(r, hdr[:])
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("%w: frame header cut short after %d frames", ErrTruncated, frames)
		}
		if string(hdr[:3]) == "TAG" && frames > 0 {
			// ID3v1: 128 bytes, the last thing in the file.
			rest, err := io.Copy(io.Discard, r)
			if err != nil {
				return 0, err
			}
			if rest != 128-4 {
				return 0, fmt.Errorf("%w: data after the ID3v1 tag", ErrMalformed)
			}
			break
		}
		fh, ok := parseFrameHeader(hdr[:])
		if !ok {
			return 0, fmt.Errorf("%w: no frame header after frame %d", ErrMalformed, frames)
		}
		if _, err := r.Discard(int(fh.length) - 4); err != nil {
			return 0, fmt.Errorf("%w: frame %d cut short", ErrTruncated, frames)
		}
		if fh.version == 3 {
			samples += 1152
		} else {
			samples += 576
		}
	}
	return samples, nil
}

// skipID3v2 skips an ID3v2 tag (and zero padding after it) at the start.
func skipID3v2(r *bufio.Reader) error {
	h, err := r.Peek(10)
	if err != nil || string(h[:3]) != "ID3" {
		return nil // Probe has checked the start already
	}
	size := int(h[6])<<21 | int(h[7])<<14 | int(h[8])<<7 | int(h[9])
	skip := 10 + size
	if h[3] == 4 && h[5]&0x10 != 0 {
		skip += 10
	}
	if _, err := r.Discard(skip); err != nil {
		return fmt.Errorf("%w: ID3v2 tag incomplete", ErrTruncated)
	}
	for {
		b, err := r.Peek(1)
		if err != nil || b[0] != 0 {
			return nil
		}
		r.Discard(1)
	}
}

// WriteSilentMP3 writes a decodable MPEG-1 layer III stream (44.1 kHz,
// mono, 128 kbit/s) of at least d of silence: every frame has empty main
// data, so a decoder outputs zeros. The frames' ancillary bytes carry tag
// (little-endian, repeated) so that test files of equal length differ. It
// is test material: legacy stores are full of MP3s, and this needs no
// encoder.
func WriteSilentMP3(w io.Writer, d time.Duration, tag uint64) error {
	if d < 0 {
		return errors.New("audio: negative duration")
	}
	const frameLen = 417 // 144000 * 128 / 44100, no padding
	frames := int((d*44100/time.Second + 1151) / 1152)
	if frames < 2 {
		frames = 2 // Probe wants two frame headers
	}
	frame := make([]byte, frameLen)
	copy(frame, []byte{0xFF, 0xFB, 0x90, 0xC0})
	// Bytes 4..20 are the mono side information: all zero (main_data_begin
	// 0, part2_3_length 0). The rest is ancillary data.
	for i := 21; i+8 <= frameLen; i += 8 {
		binary.LittleEndian.PutUint64(frame[i:], tag)
	}
	bw := bufio.NewWriter(w)
	for range frames {
		if _, err := bw.Write(frame); err != nil {
			return err
		}
	}
	return bw.Flush()
}
