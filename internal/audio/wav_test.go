package audio

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// unhex decodes hex with spaces and newlines for readability.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteWAVBytes(t *testing.T) {
	tests := []struct {
		name    string
		enc     Encoding
		rate    int
		samples [][]int16
		want    string
	}{
		{
			name: "pcm16 mono", enc: PCM16, rate: 8000,
			samples: [][]int16{{1, -2, 0x1234}},
			want: `52494646 2a000000 57415645
				666d7420 10000000 0100 0100 401f0000 803e0000 0200 1000
				64617461 06000000 0100 feff 3412`,
		},
		{
			name: "mulaw stereo", enc: MuLaw, rate: 8000,
			samples: [][]int16{{0}, {32767}},
			want: `52494646 34000000 57415645
				666d7420 12000000 0700 0200 401f0000 803e0000 0200 0800 0000
				66616374 04000000 01000000
				64617461 02000000 ff80`,
		},
		{
			name: "alaw odd length has a pad byte", enc: ALaw, rate: 16000,
			samples: [][]int16{{0, -1, 32767}},
			want: `52494646 36000000 57415645
				666d7420 12000000 0600 0100 803e0000 803e0000 0100 0800 0000
				66616374 04000000 03000000
				64617461 03000000 d555aa 00`,
		},
		{
			name: "pcm16 empty", enc: PCM16, rate: 48000,
			samples: [][]int16{{}, {}},
			want: `52494646 24000000 57415645
				666d7420 10000000 0100 0200 80bb0000 00ee0200 0400 1000
				64617461 00000000`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteWAV(&buf, tt.enc, tt.rate, tt.samples); err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tt.want); !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("WriteWAV =\n%x\nwant\n%x", buf.Bytes(), want)
			}
		})
	}
}

func TestWriteWAVErrors(t *testing.T) {
	one := [][]int16{{0}}
	tests := []struct {
		name    string
		enc     Encoding
		rate    int
		samples [][]int16
	}{
		{"mp3 encoding", MP3, 8000, one},
		{"unknown encoding", "opus", 8000, one},
		{"no channels", PCM16, 8000, nil},
		{"nine channels", PCM16, 8000, make([][]int16, 9)},
		{"rate too low", PCM16, 3999, one},
		{"rate too high", PCM16, 192001, one},
		{"unequal channels", PCM16, 8000, [][]int16{{1, 2}, {1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteWAV(&buf, tt.enc, tt.rate, tt.samples)
			if err == nil {
				t.Fatal("WriteWAV succeeded")
			}
			if !strings.HasPrefix(err.Error(), "audio: write wav: ") {
				t.Errorf("error %q lacks context", err)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes before failing", buf.Len())
			}
		})
	}

	werr := errors.New("disk full")
	err := WriteWAV(failWriter{werr}, PCM16, 8000, one)
	if !errors.Is(err, werr) {
		t.Errorf("write error = %v, want wrapping %v", err, werr)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

// TestWriteWAVLong covers a data chunk larger than WriteWAV's buffer and
// checks the samples by decoding them.
func TestWriteWAVLong(t *testing.T) {
	left := Tone(440, 8000, 50000, 12000)
	right := Tone(1000, 8000, 50000, -20000)
	for _, enc := range []Encoding{PCM16, MuLaw, ALaw} {
		var buf bytes.Buffer
		if err := WriteWAV(&buf, enc, 8000, [][]int16{left, right}); err != nil {
			t.Fatal(err)
		}
		info, r, err := Probe(&buf)
		if err != nil {
			t.Fatal(err)
		}
		all, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		data := all[info.DataOffset : info.DataOffset+info.DataBytes]
		for i := range left {
			for c, want := range []int16{left[i], right[i]} {
				var got int16
				switch enc {
				case PCM16:
					got = int16(binary.LittleEndian.Uint16(data[(2*i+c)*2:]))
				case MuLaw:
					got, want = DecodeMuLaw(data[2*i+c]), DecodeMuLaw(EncodeMuLaw(want))
				case ALaw:
					got, want = DecodeALaw(data[2*i+c]), DecodeALaw(EncodeALaw(want))
				}
				if got != want {
					t.Fatalf("%s: frame %d channel %d = %d, want %d", enc, i, c, got, want)
				}
			}
		}
	}
}

func TestTone(t *testing.T) {
	got := Tone(1000, 8000, 9, 10000)
	want := []int16{0, 7071, 10000, 7071, 0, -7071, -10000, -7071, 0}
	if !slices.Equal(got, want) {
		t.Errorf("Tone = %v, want %v", got, want)
	}
	// The most negative amplitude would overflow at the trough.
	got = Tone(2000, 8000, 4, -32768)
	want = []int16{0, -32768, 0, 32767}
	if !slices.Equal(got, want) {
		t.Errorf("Tone(-32768) = %v, want %v", got, want)
	}
	if got := Tone(440, 8000, 0, 1); len(got) != 0 {
		t.Errorf("Tone(n=0) = %v", got)
	}
}
