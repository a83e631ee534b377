package audio

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestDurationWAV(t *testing.T) {
	var b bytes.Buffer
	if err := WriteWAV(&b, MuLaw, 8000, [][]int16{Tone(440, 8000, 12000, 8000), Tone(300, 8000, 12000, 8000)}); err != nil {
		t.Fatal(err)
	}
	info, d, err := Duration(bytes.NewReader(b.Bytes()))
	if err != nil || info.Container != "wav" || d != 1500*time.Millisecond {
		t.Fatalf("got %v %v %v, want wav 1.5s", info, d, err)
	}
	if _, _, err := Duration(bytes.NewReader(b.Bytes()[:b.Len()-10])); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated WAV: %v", err)
	}
}

func TestDurationMP3(t *testing.T) {
	var b bytes.Buffer
	if err := WriteSilentMP3(&b, 2*time.Second, 7); err != nil {
		t.Fatal(err)
	}
	// 77 frames of 1152 samples at 44.1 kHz.
	if b.Len() != 77*417 {
		t.Fatalf("%d bytes, want %d", b.Len(), 77*417)
	}
	info, d, err := Duration(bytes.NewReader(b.Bytes()))
	if want := time.Duration(77 * 1152 * int64(time.Second) / 44100); err != nil || info.Container != "mp3" || d != want {
		t.Fatalf("got %v %v %v, want mp3 %v", info, d, err, want)
	}
	// An ID3v1 tag at the end is fine; a frame cut short or junk between
	// frames is not.
	withTag := append(bytes.Clone(b.Bytes()), append([]byte("TAG"), make([]byte, 125)...)...)
	if _, d2, err := Duration(bytes.NewReader(withTag)); err != nil || d2 != d {
		t.Fatalf("with ID3v1: %v %v", d2, err)
	}
	if _, _, err := Duration(bytes.NewReader(b.Bytes()[:b.Len()-100])); !errors.Is(err, ErrTruncated) {
		t.Fatalf("cut frame: %v", err)
	}
	junk := bytes.Clone(b.Bytes())
	copy(junk[417*10:], "JUNK")
	if _, _, err := Duration(bytes.NewReader(junk)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("junk between frames: %v", err)
	}
	var other bytes.Buffer
	WriteSilentMP3(&other, 2*time.Second, 8)
	if bytes.Equal(other.Bytes(), b.Bytes()) {
		t.Fatal("different tags gave the same bytes")
	}
}

func FuzzDuration(f *testing.F) {
	var b bytes.Buffer
	WriteSilentMP3(&b, 100*time.Millisecond, 1)
	f.Add(b.Bytes())
	b.Reset()
	WriteWAV(&b, PCM16, 8000, [][]int16{Tone(440, 8000, 100, 8000)})
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		info, d, err := Duration(bytes.NewReader(data))
		if err == nil && (d < 0 || info.Container == "") {
			t.Fatalf("accepted with %v %v", info, d)
		}
	})
}
