// Package synthcall writes the synthetic calls that the benchmark drivers
// under bench/ upload: distinct 2-channel G.711 μ-law WAV files at 8 kHz,
// each channel a tone plus seeded noise. Nothing in them is personal data,
// and the same (n, seconds) always gives the same bytes.
package synthcall

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"callvault/internal/audio"
)

// File is one synthetic call on disk.
type File struct {
	Name string // call-NNN.wav: an index, never personal data
	Path string
	Size int64
}

// SampleRate is the telephony rate of the synthetic calls.
const SampleRate = 8000

// Write writes n distinct 2-channel G.711 μ-law WAV files of seconds each
// into dir (created with mode 0700): channel 0 a tone of 300+7i Hz,
// channel 1 one of 500+11i Hz, each with seeded noise, so that no two
// files — and no two 4 KiB windows — are alike. 228 s make 3,648,000
// bytes of samples and a 3,648,058-byte file.
func Write(dir string, n, seconds int) ([]File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	files := make([]File, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				files[i], errs[i] = writeCall(dir, i, seconds)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

func writeCall(dir string, i, seconds int) (File, error) {
	frames := SampleRate * seconds
	r := rand.New(rand.NewPCG(uint64(i), 0x63616c6c7661756c))
	ch := [][]int16{
		toneWithNoise(300+7*float64(i), frames, r),
		toneWithNoise(500+11*float64(i), frames, r),
	}
	cf := File{Name: fmt.Sprintf("call-%03d.wav", i)}
	cf.Path = filepath.Join(dir, cf.Name)
	f, err := os.OpenFile(cf.Path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return cf, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = audio.WriteWAV(w, audio.MuLaw, SampleRate, ch)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return cf, fmt.Errorf("writing %s: %w", cf.Name, err)
	}
	fi, err := os.Stat(cf.Path)
	if err != nil {
		return cf, err
	}
	cf.Size = fi.Size()
	return cf, nil
}

// toneWithNoise returns n samples of a freq Hz sine of amplitude 6000 plus
// uniform noise of ±1500. The sine is a rotation recurrence (one complex
// multiplication per sample), much cheaper than math.Sin per sample; its
// drift over a few million samples is far below one quantization step.
func toneWithNoise(freq float64, n int, r *rand.Rand) []int16 {
	s := make([]int16, n)
	step := 2 * math.Pi * freq / SampleRate
	c, sn := math.Cos(step), math.Sin(step)
	x, y := 1.0, 0.0
	for i := range s {
		s[i] = int16(6000*y + float64(r.IntN(3001)-1500))
		x, y = x*c-y*sn, x*sn+y*c
	}
	return s
}
