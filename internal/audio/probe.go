package audio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
)

// ProbeWindow is the most Probe reads from a stream: a WAV file's data
// chunk header, or an MP3 file's ID3v2 tag and first two frame headers,
// must lie within the first ProbeWindow bytes.
const ProbeWindow = 64 << 10

// Probe identifies and validates the WAV or MP3 header at the start of r.
// It returns the header's Info and a reader that yields every byte of the
// original stream, header included, unchanged; the caller reads the
// recording from that reader, not from r.
//
// Probe reads only as far as the header requires (for WAV, exactly up to the
// first sample; for MP3, up to the end of the second frame header) and never
// more than ProbeWindow bytes. It buffers those bytes, never the audio
// after them.
//
// For WAV, the returned reader returns an error wrapping ErrTruncated
// instead of io.EOF if r ends before the declared data chunk is complete;
// bytes after the data chunk are passed through. For MP3 it ends with io.EOF
// wherever r ends.
//
// Probe returns an error wrapping ErrUnsupported, ErrMalformed or
// ErrTruncated when the header is rejected, or wrapping r's error if reading
// fails; the reader is then nil and r has been partly consumed.
//
// Accepted WAV: a RIFF/WAVE file whose "fmt " chunk precedes its "data"
// chunk (other chunks are skipped, respecting the pad byte), encoded as
// PCM16, G.711 A-law or G.711 μ-law (format tags 1, 6, 7, or
// WAVE_FORMAT_EXTENSIBLE with one of those sub-formats), with 1–8 channels,
// 4000–192000 samples per second, a block align of channels × bytes per
// sample, and a known data length (not 0xFFFFFFFF) that is a whole number of
// blocks. The RIFF size and the byte rate are not checked: writers get them
// wrong and nothing here depends on them.
//
// Accepted MP3: an optional ID3v2 tag (its declared size skipped, then any
// zero padding), then an MPEG-1, -2 or -2.5 layer III frame header with a
// valid bitrate (not free format) and sample rate, and a second such header
// with the same version and sample rate exactly where the first frame ends.
func Probe(r io.Reader) (Info, io.Reader, error) {
	p := &prober{r: r}
	info, err := p.probe()
	if err != nil {
		return Info{}, nil, err
	}
	rest := io.MultiReader(bytes.NewReader(p.buf), r)
	if info.Container == "wav" {
		return info, &wavReader{r: rest, end: info.DataOffset + info.DataBytes}, nil
	}
	return info, rest, nil
}

// errWindow is returned by need when the header would extend past
// ProbeWindow.
var errWindow = fmt.Errorf("%w: header does not fit in the first %d KiB", ErrUnsupported, ProbeWindow>>10)

// prober buffers the first bytes of a stream while its header is parsed.
type prober struct {
	r   io.Reader
	buf []byte // every byte read from r so far, in order
}

// need makes sure the first n bytes of the stream are in p.buf, reading
// exactly the missing ones. It returns errWindow if n exceeds ProbeWindow,
// short if the stream ends first, or the read error.
func (p *prober) need(n int64, short error) error {
	if n > ProbeWindow {
		return errWindow
	}
	have := len(p.buf)
	if int64(have) >= n {
		return nil
	}
	p.buf = slices.Grow(p.buf, int(n)-have)[:n]
	m, err := io.ReadFull(p.r, p.buf[have:])
	p.buf = p.buf[:have+m]
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return short
	default:
		return fmt.Errorf("audio: probe: read: %w", err)
	}
}

// probe dispatches on the first bytes of the stream.
func (p *prober) probe() (Info, error) {
	if err := p.need(4, fmt.Errorf("%w: too short to identify", ErrUnsupported)); err != nil {
		return Info{}, err
	}
	b := p.buf
	switch {
	case string(b[:4]) == "RIFF":
		return p.wav()
	case string(b[:3]) == "ID3" || b[0] == 0xFF && b[1]&0xE0 == 0xE0:
		return p.mp3()
	}
	return Info{}, fmt.Errorf("%w: neither WAV nor MP3", ErrUnsupported)
}

// wavReader replays a probed WAV stream and turns an io.EOF before the end
// of the declared data chunk into ErrTruncated.
type wavReader struct {
	r   io.Reader
	n   int64 // bytes returned so far
	end int64 // offset just past the data chunk
}

func (w *wavReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	w.n += int64(n)
	if err == io.EOF && w.n < w.end {
		err = fmt.Errorf("%w: wav data chunk incomplete", ErrTruncated)
	}
	return n, err
}
