package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// wavFile returns a WAV file of a 440 Hz tone on every channel (a different
// amplitude per channel), frames samples long.
func wavFile(t testing.TB, enc Encoding, channels, rate, frames int) []byte {
	t.Helper()
	samples := make([][]int16, channels)
	for c := range samples {
		samples[c] = Tone(440, rate, frames, int16(3000*(c+1)))
	}
	var buf bytes.Buffer
	if err := WriteWAV(&buf, enc, rate, samples); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// chunk returns a RIFF chunk with the given declared size and body, plus a
// pad byte if the body has odd length.
func chunk(id string, size uint32, body []byte) []byte {
	b := append([]byte(id), binary.LittleEndian.AppendUint32(nil, size)...)
	b = append(b, body...)
	if len(body)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

// fullChunk returns a chunk whose declared size is its body's length.
func fullChunk(id string, body []byte) []byte { return chunk(id, uint32(len(body)), body) }

// riff returns a RIFF/WAVE file of the given chunks.
func riff(chunks ...[]byte) []byte {
	body := []byte("WAVE")
	for _, c := range chunks {
		body = append(body, c...)
	}
	return fullChunk("RIFF", body)
}

// fmtBody returns a 16-byte fmt chunk body.
func fmtBody(tag, channels uint16, rate uint32, align, bits uint16) []byte {
	b := binary.LittleEndian.AppendUint16(nil, tag)
	b = binary.LittleEndian.AppendUint16(b, channels)
	b = binary.LittleEndian.AppendUint32(b, rate)
	b = binary.LittleEndian.AppendUint32(b, rate*uint32(align))
	b = binary.LittleEndian.AppendUint16(b, align)
	return binary.LittleEndian.AppendUint16(b, bits)
}

// extensible returns a 40-byte WAVE_FORMAT_EXTENSIBLE fmt chunk body with
// sub-format tag sub.
func extensible(sub, channels uint16, rate uint32, bits, valid uint16) []byte {
	b := fmtBody(tagExtensible, channels, rate, channels*bits/8, bits)
	b = binary.LittleEndian.AppendUint16(b, 22)
	b = binary.LittleEndian.AppendUint16(b, valid)
	b = binary.LittleEndian.AppendUint32(b, 0x4) // front center
	b = binary.LittleEndian.AppendUint16(b, sub)
	return append(b, guidSuffix...)
}

func TestProbeWAVRoundTrip(t *testing.T) {
	for _, enc := range []Encoding{PCM16, MuLaw, ALaw} {
		for _, channels := range []int{1, 2, 3, 8} {
			for _, rate := range []int{8000, 44100} {
				t.Run(fmt.Sprintf("%s/%dch/%d", enc, channels, rate), func(t *testing.T) {
					file := wavFile(t, enc, channels, rate, 1001)
					cr := &countingReader{r: bytes.NewReader(file)}
					info, r, err := Probe(cr)
					if err != nil {
						t.Fatal(err)
					}
					offset := int64(58)
					if enc == PCM16 {
						offset = 44
					}
					want := Info{
						Container: "wav", Encoding: enc, Channels: channels, SampleRate: rate,
						DataOffset: offset, DataBytes: int64(1001 * channels * bitsPerSample(enc) / 8),
					}
					if info != want {
						t.Errorf("Info = %+v, want %+v", info, want)
					}
					if cr.n != offset {
						t.Errorf("Probe read %d bytes, want exactly the %d of the header", cr.n, offset)
					}
					got, err := io.ReadAll(r)
					if err != nil {
						t.Fatalf("ReadAll: %v", err)
					}
					if !bytes.Equal(got, file) {
						t.Errorf("reader yields %d bytes that differ from the %d written", len(got), len(file))
					}
					if info.ContentType() != "audio/wav" {
						t.Errorf("ContentType = %q", info.ContentType())
					}
				})
			}
		}
	}
}

func TestProbeWAVTruncated(t *testing.T) {
	file := wavFile(t, PCM16, 2, 8000, 1000)
	for _, cut := range []int{44, 45, 1000, len(file) - 1} {
		info, r, err := Probe(bytes.NewReader(file[:cut]))
		if err != nil {
			t.Fatalf("cut at %d: Probe: %v", cut, err)
		}
		if info.DataBytes != 4000 {
			t.Fatalf("DataBytes = %d", info.DataBytes)
		}
		got, err := io.ReadAll(r)
		if !errors.Is(err, ErrTruncated) {
			t.Errorf("cut at %d: ReadAll error = %v, want ErrTruncated", cut, err)
		}
		if !bytes.Equal(got, file[:cut]) {
			t.Errorf("cut at %d: got %d bytes, want all %d before the cut", cut, len(got), cut)
		}
		// The error persists: the stream is still short.
		if _, err := r.Read(make([]byte, 1)); !errors.Is(err, ErrTruncated) {
			t.Errorf("cut at %d: second Read error = %v", cut, err)
		}
	}
	// Inside the header, Probe itself reports it.
	for _, cut := range []int{12, 20, 43} {
		if _, _, err := Probe(bytes.NewReader(file[:cut])); !errors.Is(err, ErrTruncated) {
			t.Errorf("cut at %d: Probe error = %v, want ErrTruncated", cut, err)
		}
	}
	// Bytes after the data chunk are passed through.
	long := append(append([]byte{}, file...), fullChunk("LIST", []byte("INFOjunk"))...)
	_, r, err := Probe(bytes.NewReader(long))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, long) {
		t.Errorf("trailing chunk: %d bytes, %v", len(got), err)
	}
	// A missing pad byte after odd-length data is not truncation.
	odd := wavFile(t, MuLaw, 1, 8000, 3)
	_, r, err = Probe(bytes.NewReader(odd[:len(odd)-1]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); err != nil {
		t.Errorf("missing pad byte: %v", err)
	}
}

func TestProbeWAVHeaders(t *testing.T) {
	pcmFmt := fullChunk("fmt ", fmtBody(tagPCM, 1, 8000, 2, 16))
	samples := fullChunk("data", make([]byte, 8))
	tests := []struct {
		name string
		file []byte
		want Info  // when err is nil
		err  error // sentinel
	}{
		{
			name: "LIST with odd size and fact before data",
			file: riff(pcmFmt, fullChunk("LIST", []byte("INFOISFT\x05\x00\x00\x00test\x00")), fullChunk("fact", []byte{4, 0, 0, 0}), samples),
			want: Info{Container: "wav", Encoding: PCM16, Channels: 1, SampleRate: 8000, DataOffset: 12 + 24 + 26 + 12 + 8, DataBytes: 8},
		},
		{
			name: "chunks before fmt",
			file: riff(fullChunk("JUNK", make([]byte, 28)), fullChunk("bext", make([]byte, 3)), pcmFmt, samples),
			want: Info{Container: "wav", Encoding: PCM16, Channels: 1, SampleRate: 8000, DataOffset: 12 + 36 + 12 + 24 + 8, DataBytes: 8},
		},
		{
			name: "fmt with cbSize",
			file: riff(fullChunk("fmt ", append(fmtBody(tagMuLaw, 2, 8000, 2, 8), 0, 0)), samples),
			want: Info{Container: "wav", Encoding: MuLaw, Channels: 2, SampleRate: 8000, DataOffset: 12 + 26 + 8, DataBytes: 8},
		},
		{
			name: "extensible pcm16",
			file: riff(fullChunk("fmt ", extensible(tagPCM, 2, 48000, 16, 16)), samples),
			want: Info{Container: "wav", Encoding: PCM16, Channels: 2, SampleRate: 48000, DataOffset: 12 + 48 + 8, DataBytes: 8},
		},
		{
			name: "extensible mulaw",
			file: riff(fullChunk("fmt ", extensible(tagMuLaw, 1, 8000, 8, 8)), samples),
			want: Info{Container: "wav", Encoding: MuLaw, Channels: 1, SampleRate: 8000, DataOffset: 12 + 48 + 8, DataBytes: 8},
		},
		{
			name: "extensible alaw",
			file: riff(fullChunk("fmt ", extensible(tagALaw, 1, 8000, 8, 8)), samples),
			want: Info{Container: "wav", Encoding: ALaw, Channels: 1, SampleRate: 8000, DataOffset: 12 + 48 + 8, DataBytes: 8},
		},
		{
			name: "empty data",
			file: riff(pcmFmt, fullChunk("data", nil)),
			want: Info{Container: "wav", Encoding: PCM16, Channels: 1, SampleRate: 8000, DataOffset: 44, DataBytes: 0},
		},
		{
			name: "extremes of the ranges",
			file: riff(fullChunk("fmt ", fmtBody(tagALaw, 8, 4000, 8, 8)), samples),
			want: Info{Container: "wav", Encoding: ALaw, Channels: 8, SampleRate: 4000, DataOffset: 44, DataBytes: 8},
		},
		{
			name: "192 kHz",
			file: riff(fullChunk("fmt ", fmtBody(tagPCM, 1, 192000, 2, 16)), samples),
			want: Info{Container: "wav", Encoding: PCM16, Channels: 1, SampleRate: 192000, DataOffset: 44, DataBytes: 8},
		},

		// Codecs callvault does not take.
		{name: "float", file: riff(fullChunk("fmt ", fmtBody(3, 1, 8000, 4, 32)), samples), err: ErrUnsupported},
		{name: "ima adpcm", file: riff(fullChunk("fmt ", fmtBody(0x11, 1, 8000, 256, 4)), samples), err: ErrUnsupported},
		{name: "mp3 in wav", file: riff(fullChunk("fmt ", fmtBody(0x55, 1, 8000, 1, 0)), samples), err: ErrUnsupported},
		{name: "pcm 24 bits", file: riff(fullChunk("fmt ", fmtBody(tagPCM, 1, 8000, 3, 24)), samples), err: ErrUnsupported},
		{name: "pcm 8 bits", file: riff(fullChunk("fmt ", fmtBody(tagPCM, 1, 8000, 1, 8)), samples), err: ErrUnsupported},
		{name: "extensible float", file: riff(fullChunk("fmt ", extensible(3, 1, 8000, 32, 32)), samples), err: ErrUnsupported},
		{
			name: "extensible unknown guid",
			file: riff(fullChunk("fmt ", append(extensible(tagPCM, 1, 8000, 16, 16)[:39], 0x72)), samples),
			err:  ErrUnsupported,
		},
		{name: "RIFF but not WAVE", file: fullChunk("RIFF", []byte("AVI LIST\x00\x00\x00\x00")), err: ErrUnsupported},
		{name: "RIFX big-endian", file: append([]byte("RIFX"), riff(pcmFmt, samples)[4:]...), err: ErrUnsupported},
		{name: "RF64", file: append([]byte("RF64"), riff(pcmFmt, samples)[4:]...), err: ErrUnsupported},
		{name: "data beyond the probe window", file: riff(pcmFmt, fullChunk("LIST", make([]byte, ProbeWindow)), samples), err: ErrUnsupported},
		{name: "huge skipped chunk", file: riff(pcmFmt, chunk("LIST", 0xFFFFFFF0, nil)), err: ErrUnsupported},

		// Inconsistent headers.
		{name: "pcm 12 bits", file: riff(fullChunk("fmt ", fmtBody(tagPCM, 1, 8000, 2, 12)), samples), err: ErrMalformed},
		{name: "bits 0", file: riff(fullChunk("fmt ", fmtBody(tagPCM, 1, 8000, 2, 0)), samples), err: ErrMalformed},
		{name: "mulaw 16 bits", file: riff(fullChunk("fmt ", fmtBody(tagMuLaw, 1, 8000, 2, 16)), samples), err: ErrMalformed},
		{name: "channels 0", file: riff(fullChunk("fmt ", fmtBody(tagPCM, 0, 8000, 0, 16)), samples), err: ErrMalformed},
		{name: "channels 9", file: riff(fullChunk("fmt ", fmtBody(tagALaw, 9, 8000, 9, 8)), samples), err: ErrMalformed},
		{name: "rate 3999", file: riff(fullChunk("fmt ", fmtBody(tagPCM, 1, 3999, 2, 16)), samples), err: ErrMalformed},
		{name: "rate 192001", file: riff(fullChunk("fmt ", fmtBody(tagPCM, 1, 192001, 2, 16)), samples), err: ErrMalformed},
		{name: "rate 0", file: riff(fullChunk("fmt ", fmtBody(tagPCM, 1, 0, 2, 16)), samples), err: ErrMalformed},
		{name: "block align", file: riff(fullChunk("fmt ", fmtBody(tagPCM, 2, 8000, 2, 16)), samples), err: ErrMalformed},
		{name: "unknown data length", file: riff(pcmFmt, chunk("data", 0xFFFFFFFF, make([]byte, 8))), err: ErrMalformed},
		{name: "data not whole blocks", file: riff(fullChunk("fmt ", fmtBody(tagPCM, 2, 8000, 4, 16)), fullChunk("data", make([]byte, 6))), err: ErrMalformed},
		{name: "data before fmt", file: riff(samples, pcmFmt), err: ErrMalformed},
		{name: "no fmt", file: riff(samples), err: ErrMalformed},
		{name: "two fmt", file: riff(pcmFmt, pcmFmt, samples), err: ErrMalformed},
		{name: "fmt too short", file: riff(fullChunk("fmt ", fmtBody(tagPCM, 1, 8000, 2, 16)[:14]), samples), err: ErrMalformed},
		{name: "fmt too long", file: riff(chunk("fmt ", 0x7FFFFFFF, fmtBody(tagPCM, 1, 8000, 2, 16)), samples), err: ErrMalformed},
		{name: "extensible too short", file: riff(fullChunk("fmt ", extensible(tagPCM, 1, 8000, 16, 16)[:30]), samples), err: ErrMalformed},
		{name: "extensible cbSize", file: riff(fullChunk("fmt ", append(fmtBody(tagExtensible, 1, 8000, 2, 16), make([]byte, 24)...)), samples), err: ErrMalformed},
		{name: "valid bits above bits", file: riff(fullChunk("fmt ", extensible(tagPCM, 1, 8000, 16, 24)), samples), err: ErrMalformed},
		{name: "binary chunk id", file: riff(pcmFmt, fullChunk("\x00\x01\x02\x03", nil), samples), err: ErrMalformed},

		// Ends inside the header.
		{name: "no chunks", file: riff(), err: ErrTruncated},
		{name: "only fmt", file: riff(pcmFmt), err: ErrTruncated},
		{name: "fmt cut short", file: riff(pcmFmt[:20]), err: ErrTruncated},
		{name: "skipped chunk cut short", file: riff(pcmFmt, chunk("LIST", 100, []byte("INFO"))), err: ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := &countingReader{r: bytes.NewReader(tt.file)}
			info, r, err := Probe(cr)
			if cr.n > ProbeWindow {
				t.Errorf("Probe read %d bytes", cr.n)
			}
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Probe error = %v, want %v", err, tt.err)
				}
				if r != nil {
					t.Errorf("Probe returned a reader with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if info != tt.want {
				t.Errorf("Info = %+v, want %+v", info, tt.want)
			}
			if cr.n != info.DataOffset {
				t.Errorf("Probe read %d bytes, want %d", cr.n, info.DataOffset)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, tt.file) {
				t.Errorf("ReadAll = %d bytes, %v; want the %d of the file", len(got), err, len(tt.file))
			}
		})
	}
}

func TestProbeNotAudio(t *testing.T) {
	random := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	syncRandom := append([]byte{0xFF, 0xFB}, random[:1000]...)
	tests := []struct {
		name    string
		file    []byte
		maxRead int64 // the most Probe may read to reject it
	}{
		{"empty", nil, 0},
		{"one byte", []byte{0xFF}, 1},
		{"text", []byte("Hej! Det här är inte ljud, bara text.\n"), 4},
		{"png", unhex(t, "89504e470d0a1a0a 0000000d 49484452 00000001 00000001 0806000000 1f15c489"), 4},
		{"pdf", []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"), 4},
		{"ogg", []byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00"), 4},
		{"flac", []byte("fLaC\x00\x00\x00\x22"), 4},
		{"random", random, 4},
		{"sync then random", syncRandom, 1445}, // at most one MPEG-1 frame
		{"RIFF", []byte("RIFF"), 4},
		{"RIFF short", []byte("RIFF\x24\x00\x00\x00WAV"), 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := &countingReader{r: bytes.NewReader(tt.file)}
			_, r, err := Probe(cr)
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Probe error = %v, want ErrUnsupported", err)
			}
			if r != nil {
				t.Errorf("reader returned with error")
			}
			if cr.n > tt.maxRead {
				t.Errorf("Probe read %d bytes to reject it, want at most %d", cr.n, tt.maxRead)
			}
		})
	}
}

func TestProbeReadError(t *testing.T) {
	file := wavFile(t, PCM16, 1, 8000, 10)
	boom := errors.New("connection reset")
	for _, cut := range []int{0, 2, 30} {
		r := io.MultiReader(bytes.NewReader(file[:cut]), iotest.ErrReader(boom))
		_, _, err := Probe(r)
		if !errors.Is(err, boom) {
			t.Errorf("cut at %d: Probe error = %v, want %v", cut, err, boom)
		}
		if errors.Is(err, ErrTruncated) || errors.Is(err, ErrUnsupported) || errors.Is(err, ErrMalformed) {
			t.Errorf("cut at %d: read error %v classified as a format error", cut, err)
		}
	}
	// After the header, the error reaches the caller unchanged.
	_, r, err := Probe(io.MultiReader(bytes.NewReader(file[:50]), iotest.ErrReader(boom)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, boom) {
		t.Errorf("ReadAll error = %v, want %v", err, boom)
	}
}

// TestProbeOneByteReads checks that a stream arriving in tiny pieces probes
// the same as one arriving at once.
func TestProbeOneByteReads(t *testing.T) {
	for _, file := range [][]byte{wavFile(t, ALaw, 2, 8000, 100), mp3File(t, 3), []byte("not audio at all")} {
		info1, r1, err1 := Probe(bytes.NewReader(file))
		info2, r2, err2 := Probe(iotest.OneByteReader(bytes.NewReader(file)))
		if info1 != info2 || (err1 == nil) != (err2 == nil) {
			t.Fatalf("whole: %+v %v; one byte at a time: %+v %v", info1, err1, info2, err2)
		}
		if err1 != nil {
			continue
		}
		b1, _ := io.ReadAll(r1)
		b2, _ := io.ReadAll(r2)
		if !bytes.Equal(b1, file) || !bytes.Equal(b2, file) {
			t.Errorf("replayed bytes differ")
		}
	}
}

func TestContentType(t *testing.T) {
	for _, c := range []struct {
		info Info
		want string
	}{
		{Info{Container: "wav"}, "audio/wav"},
		{Info{Container: "mp3"}, "audio/mpeg"},
		{Info{}, "application/octet-stream"},
	} {
		if got := c.info.ContentType(); got != c.want {
			t.Errorf("ContentType(%q) = %q, want %q", c.info.Container, got, c.want)
		}
	}
}

func FuzzProbe(f *testing.F) {
	for _, enc := range []Encoding{PCM16, MuLaw, ALaw} {
		f.Add(wavFile(f, enc, 2, 8000, 5))
	}
	f.Add(riff(fullChunk("fmt ", extensible(tagPCM, 1, 8000, 16, 16)), fullChunk("LIST", []byte("abc")), fullChunk("data", make([]byte, 4))))
	f.Add(wavFile(f, PCM16, 1, 8000, 10)[:30])
	f.Add(mp3File(f, 2))
	f.Add(append(id3Tag(20, 0), mp3File(f, 2)...))
	f.Add([]byte{0xFF, 0xFB, 0x90, 0x00, 1, 2, 3})
	f.Add([]byte("ID3\x04\x00\x10\x00\x00\x00\x00"))
	f.Add([]byte("plain text"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cr := &countingReader{r: bytes.NewReader(data)}
		info, r, err := Probe(cr)
		if cr.n > ProbeWindow {
			t.Fatalf("Probe read %d bytes, more than the window", cr.n)
		}
		if err != nil {
			if !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("Probe error %v is none of the sentinels", err)
			}
			if r != nil || info != (Info{}) {
				t.Fatalf("Probe returned a reader or Info with an error")
			}
			return
		}
		switch info.Container {
		case "wav":
			if cr.n != info.DataOffset {
				t.Fatalf("Probe read %d bytes, header ends at %d", cr.n, info.DataOffset)
			}
			if info.Channels < 1 || info.Channels > 8 || info.SampleRate < 4000 || info.SampleRate > 192000 ||
				info.DataBytes < 0 || info.DataBytes%int64(info.Channels*bitsPerSample(info.Encoding)/8) != 0 {
				t.Fatalf("accepted an out-of-range header: %+v", info)
			}
		case "mp3":
			if info.Encoding != MP3 || info.DataBytes != -1 || info.Channels < 1 || info.Channels > 2 {
				t.Fatalf("bad mp3 Info %+v", info)
			}
		default:
			t.Fatalf("Container %q", info.Container)
		}
		got, err := io.ReadAll(r)
		if !bytes.Equal(got, data) {
			t.Fatalf("reader yields %d bytes differing from the %d of the input", len(got), len(data))
		}
		short := info.Container == "wav" && int64(len(data)) < info.DataOffset+info.DataBytes
		if short != errors.Is(err, ErrTruncated) || !short && err != nil {
			t.Fatalf("ReadAll error = %v, input %d bytes, data ends at %d", err, len(data), info.DataOffset+info.DataBytes)
		}
	})
}
