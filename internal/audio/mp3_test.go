package audio

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// MPEG audio version field values.
const (
	mpeg25 = 0
	mpeg2  = 2
	mpeg1  = 3
)

// frameHeader4 returns a layer III frame header without CRC:
// mode 0 stereo, 1 joint stereo, 2 dual channel, 3 mono.
func frameHeader4(version, bitrateIndex, rateIndex, padding, mode byte) []byte {
	return []byte{
		0xFF,
		0xE0 | version<<3 | 1<<1 | 1, // layer III, no CRC
		bitrateIndex<<4 | rateIndex<<2 | padding<<1,
		mode << 6,
	}
}

// frame returns a header followed by zeros up to length bytes.
func frame(header []byte, length int) []byte {
	return append(append([]byte{}, header...), make([]byte, length-4)...)
}

// mp3File returns n MPEG-1 layer III frames, 128 kbit/s, 44100 Hz, stereo,
// with zero payload: 417 bytes each.
func mp3File(t testing.TB, n int) []byte {
	t.Helper()
	var b []byte
	for range n {
		b = append(b, frame(frameHeader4(mpeg1, 9, 0, 0, 0), 417)...)
	}
	return b
}

// id3Tag returns an ID3v2.4 tag with the given flags and a body of size
// 0xFF bytes (which would not parse as frames if not skipped), plus a
// footer if flag 0x10 is set.
func id3Tag(size int, flags byte) []byte {
	b := []byte{'I', 'D', '3', 4, 0, flags, byte(size >> 21 & 0x7F), byte(size >> 14 & 0x7F), byte(size >> 7 & 0x7F), byte(size & 0x7F)}
	b = append(b, bytes.Repeat([]byte{0xFF}, size)...)
	if flags&0x10 != 0 {
		b = append(b, '3', 'D', 'I', 4, 0, flags, b[6], b[7], b[8], b[9])
	}
	return b
}

func TestProbeMP3(t *testing.T) {
	stereo44 := Info{Container: "mp3", Encoding: MP3, Channels: 2, SampleRate: 44100, DataOffset: 0, DataBytes: -1}
	id3v3 := id3Tag(300, 0)
	id3v3[3] = 3
	tests := []struct {
		name string
		file []byte
		want Info
		read int64 // bytes Probe should read
	}{
		{"two frames", mp3File(t, 2), stereo44, 417 + 4},
		{"many frames", mp3File(t, 10), stereo44, 417 + 4},
		{"two headers, second frame cut", mp3File(t, 2)[:417+4], stereo44, 417 + 4},
		{
			"padded first frame",
			append(frame(frameHeader4(mpeg1, 9, 0, 1, 0), 418), frameHeader4(mpeg1, 9, 0, 0, 1)...),
			stereo44, 418 + 4,
		},
		{
			"MPEG-2 mono 24 kHz",
			append(frame(frameHeader4(mpeg2, 8, 1, 0, 3), 192), frameHeader4(mpeg2, 8, 1, 0, 3)...),
			Info{Container: "mp3", Encoding: MP3, Channels: 1, SampleRate: 24000, DataBytes: -1}, 192 + 4,
		},
		{
			"MPEG-2.5 mono 8 kHz 8 kbit/s",
			append(frame(frameHeader4(mpeg25, 1, 2, 0, 3), 72), frameHeader4(mpeg25, 1, 2, 0, 3)...),
			Info{Container: "mp3", Encoding: MP3, Channels: 1, SampleRate: 8000, DataBytes: -1}, 72 + 4,
		},
		{
			"MPEG-1 dual channel 32 kHz 320 kbit/s",
			append(frame(frameHeader4(mpeg1, 14, 2, 0, 2), 1440), frameHeader4(mpeg1, 14, 2, 0, 2)...),
			Info{Container: "mp3", Encoding: MP3, Channels: 2, SampleRate: 32000, DataBytes: -1}, 1440 + 4,
		},
		{"ID3v2.4 tag", append(id3Tag(100, 0), mp3File(t, 2)...), stereo44, 110 + 417 + 4},
		{"ID3v2.3 tag", append(id3v3, mp3File(t, 2)...), stereo44, 310 + 417 + 4},
		{"ID3v2.4 tag with footer", append(id3Tag(100, 0x10), mp3File(t, 2)...), stereo44, 120 + 417 + 4},
		{"ID3 tag then zero padding", append(append(id3Tag(0, 0), make([]byte, 50)...), mp3File(t, 2)...), stereo44, 60 + 417 + 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := &countingReader{r: bytes.NewReader(tt.file)}
			info, r, err := Probe(cr)
			if err != nil {
				t.Fatal(err)
			}
			if info != tt.want {
				t.Errorf("Info = %+v, want %+v", info, tt.want)
			}
			if cr.n != tt.read {
				t.Errorf("Probe read %d bytes, want %d", cr.n, tt.read)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, tt.file) {
				t.Errorf("ReadAll = %d bytes, %v; want the %d of the file", len(got), err, len(tt.file))
			}
			if info.ContentType() != "audio/mpeg" {
				t.Errorf("ContentType = %q", info.ContentType())
			}
		})
	}
}

func TestProbeMP3Rejected(t *testing.T) {
	good := frameHeader4(mpeg1, 9, 0, 0, 0)
	garbage := bytes.Repeat([]byte("garbage!"), 100)
	tests := []struct {
		name string
		file []byte
		err  error
	}{
		{"one header then garbage", append(append([]byte{}, good...), garbage...), ErrUnsupported},
		{"one frame then EOF", frame(good, 417), ErrUnsupported},
		{"one header then EOF", good, ErrUnsupported},
		{"second header one byte late", append(frame(good, 418), good...), ErrUnsupported},
		{"second header at another rate", append(frame(good, 417), frameHeader4(mpeg1, 9, 1, 0, 0)...), ErrUnsupported},
		{"second header another version", append(frame(good, 417), frameHeader4(mpeg2, 9, 0, 0, 0)...), ErrUnsupported},
		{"layer II", append(frame([]byte{0xFF, 0xFD, 0x90, 0x00}, 417), 0xFF, 0xFD, 0x90, 0x00), ErrUnsupported},
		{"layer I", append(frame([]byte{0xFF, 0xFF, 0x90, 0x00}, 417), 0xFF, 0xFF, 0x90, 0x00), ErrUnsupported},
		{"reserved version", append(frame(frameHeader4(1, 9, 0, 0, 0), 417), frameHeader4(1, 9, 0, 0, 0)...), ErrUnsupported},
		{"free bitrate", append(frame(frameHeader4(mpeg1, 0, 0, 0, 0), 417), frameHeader4(mpeg1, 0, 0, 0, 0)...), ErrUnsupported},
		{"bad bitrate", append(frame(frameHeader4(mpeg1, 15, 0, 0, 0), 417), frameHeader4(mpeg1, 15, 0, 0, 0)...), ErrUnsupported},
		{"reserved sample rate", append(frame(frameHeader4(mpeg1, 9, 3, 0, 0), 417), frameHeader4(mpeg1, 9, 3, 0, 0)...), ErrUnsupported},
		{"reserved emphasis", append(frame([]byte{0xFF, 0xFB, 0x90, 0x02}, 417), 0xFF, 0xFB, 0x90, 0x02), ErrUnsupported},
		{"ID3 then nothing", id3Tag(10, 0), ErrUnsupported},
		{"ID3 then text", append(id3Tag(10, 0), garbage...), ErrUnsupported},
		{"ID3 bad size byte", append([]byte("ID3\x04\x00\x00\x00\x00\x80\x00"), mp3File(t, 2)...), ErrUnsupported},
		{"ID3 bad version", append([]byte("ID3\x05\x00\x00\x00\x00\x00\x00"), mp3File(t, 2)...), ErrUnsupported},
		{"ID3 header cut", []byte("ID3\x04\x00"), ErrUnsupported},
		{"ID3 tag beyond window", append(id3Tag(ProbeWindow, 0), mp3File(t, 2)...), ErrUnsupported},
		{"ID3 tag cut short", id3Tag(1000, 0)[:500], ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := &countingReader{r: bytes.NewReader(tt.file)}
			_, r, err := Probe(cr)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Probe error = %v, want %v", err, tt.err)
			}
			if r != nil {
				t.Errorf("reader returned with error")
			}
			if cr.n > ProbeWindow {
				t.Errorf("Probe read %d bytes", cr.n)
			}
		})
	}
}
