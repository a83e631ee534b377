package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"

	"callvault/internal/audio"
)

// cmdTone writes a synthetic two-channel G.711 μ-law WAV (caller 440 Hz,
// nurse 660 Hz) to standard output, for trying out uploads.
func cmdTone(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tone", flag.ContinueOnError)
	fs.SetOutput(stderr)
	secs := fs.Int("seconds", 10, "length in seconds (1..3600)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secs < 1 || *secs > 3600 {
		return fmt.Errorf("tone: --seconds must be 1..3600")
	}
	n := 8000 * *secs
	w := bufio.NewWriter(stdout)
	if err := audio.WriteWAV(w, audio.MuLaw, 8000, [][]int16{audio.Tone(440, 8000, n, 8000), audio.Tone(660, 8000, n, 8000)}); err != nil {
		return err
	}
	return w.Flush()
}
