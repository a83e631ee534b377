// Package audio identifies and validates uploaded call audio while it streams
// past, and synthesizes deterministic test audio.
//
// Probe reads only the header of a WAV or MP3 upload (at most the first
// ProbeWindow bytes) and hands back a reader that replays the whole stream
// unchanged, so the audio can flow straight into encryption without ever
// being held in memory or written to disk in plaintext. WriteWAV, Tone and
// the G.711 codecs build test recordings without files or randomness.
package audio

import "errors"

// Encoding names how the samples of a recording are encoded.
type Encoding string

// The encodings callvault accepts.
const (
	PCM16 Encoding = "pcm16" // linear PCM, 16-bit signed little-endian
	MuLaw Encoding = "mulaw" // ITU-T G.711 μ-law, 8 bits per sample
	ALaw  Encoding = "alaw"  // ITU-T G.711 A-law, 8 bits per sample
	MP3   Encoding = "mp3"   // MPEG audio layer III
)

// Info describes a probed recording.
type Info struct {
	Container  string   // "wav" or "mp3"
	Encoding   Encoding // PCM16, MuLaw or ALaw for WAV; MP3 for MP3
	Channels   int      // 1..8 for WAV; 1 or 2 for MP3
	SampleRate int      // samples per second per channel
	DataOffset int64    // WAV: byte offset of the first sample in the file; MP3: 0
	DataBytes  int64    // WAV: declared length of the data chunk; MP3: -1 (unknown until EOF)
}

// ContentType returns the media type of the container: "audio/wav",
// "audio/mpeg", or "application/octet-stream" for an Info of neither.
func (i Info) ContentType() string {
	switch i.Container {
	case "wav":
		return "audio/wav"
	case "mp3":
		return "audio/mpeg"
	default:
		return "application/octet-stream"
	}
}

// Errors returned by Probe and by the reader it returns, wrapped with a
// detail; test with errors.Is. Error texts quote at most header fields
// (a codec number, a chunk size, a sample rate), never audio or tag content.
var (
	// ErrUnsupported means the stream is neither WAV nor MP3, is a WAV
	// whose codec is not PCM16, G.711 μ-law or G.711 A-law, or keeps its
	// header beyond ProbeWindow. An HTTP API answers 415.
	ErrUnsupported = errors.New("audio: unsupported format")
	// ErrMalformed means the stream is a WAV or MP3 whose header is
	// inconsistent or out of range. An HTTP API answers 400.
	ErrMalformed = errors.New("audio: malformed header")
	// ErrTruncated means the stream ended before its header, or before the
	// WAV data chunk it declared, was complete. An HTTP API answers 400.
	ErrTruncated = errors.New("audio: stream ended early")
)
