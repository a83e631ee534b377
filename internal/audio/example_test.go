package audio_test

import (
	"bytes"
	"fmt"
	"io"

	"callvault/internal/audio"
)

func ExampleProbe() {
	// One second of a 440 Hz tone as 8 kHz μ-law, as a telephony
	// recorder would upload it.
	var upload bytes.Buffer
	tone := audio.Tone(440, 8000, 8000, 8000)
	if err := audio.WriteWAV(&upload, audio.MuLaw, 8000, [][]int16{tone}); err != nil {
		fmt.Println(err)
		return
	}

	info, r, err := audio.Probe(&upload)
	if err != nil {
		fmt.Println(err) // errors.Is(err, audio.ErrUnsupported) → 415, others → 400
		return
	}
	fmt.Println(info.ContentType(), info.Encoding, info.Channels, info.SampleRate, info.DataOffset, info.DataBytes)

	// Stream r onward (into encryption); here, just count it.
	n, err := io.Copy(io.Discard, r)
	fmt.Println(n, err)
	// Output:
	// audio/wav mulaw 1 8000 58 8000
	// 8058 <nil>
}
