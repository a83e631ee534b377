package audio

import "math"

// Tone returns n samples of a sine wave of freqHz at sampleRate samples per
// second with peak amplitude amplitude, starting at phase 0. The result is
// deterministic. sampleRate must be positive and n not negative.
func Tone(freqHz float64, sampleRate int, n int, amplitude int16) []int16 {
	s := make([]int16, n)
	step := 2 * math.Pi * freqHz / float64(sampleRate)
	for i := range s {
		v := math.Round(float64(amplitude) * math.Sin(step*float64(i)))
		// −32768 × −1 does not fit in an int16.
		s[i] = int16(max(math.MinInt16, min(math.MaxInt16, v)))
	}
	return s
}
