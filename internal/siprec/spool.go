package siprec

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"

	"callvault/internal/atomicfile"
	"callvault/internal/audio"
	"callvault/internal/keys"
	"callvault/internal/recording"
	"callvault/internal/rtpmix"
	"callvault/internal/seal"
)

// A spool holds one call while it is recorded (docs/siprec.md): the
// timeline's 16-bit PCM sealed by seal.Writer under a fresh file key that
// is wrapped to the archive key, so nothing readable is ever on disk. The
// writer pushes each 64 KiB chunk (about two seconds of stereo audio) to
// the file and the file is synced every SyncInterval, so a crash loses at
// most a few seconds. Files, in the spool directory:
//
//	ID.spool  "callvault-spool/v1\n", one JSON line (spoolHeader), the sealed blob
//	ID.meta   the call's metadata (spoolMeta) sealed under the file key
const (
	spoolMagic    = "callvault-spool/v1\n"
	spoolSuffix   = ".spool"
	metaSuffix    = ".meta"
	metaLabel     = "siprec/spool-metadata"
	maxHeaderLine = 16 << 10
	channels      = 2
)

// spoolHeader is the clear header of a spool file: no personal data.
type spoolHeader struct {
	RecordingID  string    `json:"recording_id"`
	KeyEpoch     int       `json:"key_epoch"`
	WrappedKey   []byte    `json:"wrapped_key"`
	StartedAt    time.Time `json:"started_at"`
	Source       string    `json:"source"` // HSA-ID of the capture principal
	CareProvider string    `json:"care_provider"`
	CareUnit     string    `json:"care_unit"`
	SampleRate   int       `json:"sample_rate"`
	Channels     int       `json:"channels"`
}

// spoolMeta is what the recording's metadata needs beyond the header; it
// may hold personal data (caller number, patient) and is stored sealed.
type spoolMeta struct {
	CallID       string          `json:"call_id"`
	CallerNumber string          `json:"caller_number,omitempty"`
	Patient      string          `json:"patient,omitempty"`
	Staff        []string        `json:"staff"`
	Direction    string          `json:"direction"`
	Stats        json.RawMessage `json:"stats,omitempty"`
}

// spool is an open spool being written. Not safe for concurrent use.
type spool struct {
	dir    string
	id     string
	fk     *seal.FileKey
	f      *os.File
	w      *seal.Writer
	header spoolHeader
	frames int64
}

func spoolPath(dir, id string) string { return filepath.Join(dir, id+spoolSuffix) }
func metaPath(dir, id string) string  { return filepath.Join(dir, id+metaSuffix) }

// createSpool starts the spool of recording id, its key wrapped to epoch.
func createSpool(dir string, h spoolHeader, epoch keys.Epoch) (*spool, error) {
	fk, err := seal.NewFileKey()
	if err != nil {
		return nil, err
	}
	if h.WrappedKey, err = seal.Wrap(fk, epoch.Recipient); err != nil {
		return nil, fmt.Errorf("siprec: spool: wrap: %w", err)
	}
	h.KeyEpoch, h.SampleRate, h.Channels = epoch.ID, rtpmix.SampleRate, channels
	line, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(spoolPath(dir, h.RecordingID), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("siprec: spool: %w", err)
	}
	sp := &spool{dir: dir, id: h.RecordingID, fk: fk, f: f, header: h}
	if _, err := f.WriteString(spoolMagic + string(line) + "\n"); err != nil {
		sp.discard()
		return nil, fmt.Errorf("siprec: spool: %w", err)
	}
	if sp.w, err = seal.NewWriter(f, fk, h.RecordingID); err != nil {
		sp.discard()
		return nil, fmt.Errorf("siprec: spool: %w", err)
	}
	if err := f.Sync(); err != nil {
		sp.discard()
		return nil, fmt.Errorf("siprec: spool: %w", err)
	}
	return sp, nil
}

// write appends interleaved stereo PCM frames.
func (sp *spool) write(pcm []byte) error {
	if len(pcm) == 0 {
		return nil
	}
	if _, err := sp.w.Write(pcm); err != nil {
		return fmt.Errorf("siprec: spool: %w", err)
	}
	sp.frames += int64(len(pcm) / (2 * channels))
	return nil
}

// sync makes what the writer has passed on durable.
func (sp *spool) sync() error { return sp.f.Sync() }

// saveMeta seals m under the spool's key and replaces the meta file.
func (sp *spool) saveMeta(m *spoolMeta) error {
	plain, err := json.Marshal(m)
	if err != nil {
		return err
	}
	sealed, err := sp.fk.SealField(metaLabel, plain)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(metaPath(sp.dir, sp.id), sealed); err != nil {
		return fmt.Errorf("siprec: spool metadata: %w", err)
	}
	return nil
}

// finish seals the final chunk and closes the file.
func (sp *spool) finish() error {
	err := sp.w.Close()
	if err == nil {
		err = sp.f.Sync()
	}
	if cerr := sp.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("siprec: spool: %w", err)
	}
	return nil
}

// discard closes and removes the spool (a cancelled session).
func (sp *spool) discard() {
	sp.f.Close()
	removeSpool(sp.dir, sp.id)
}

func removeSpool(dir, id string) {
	os.Remove(spoolPath(dir, id))
	os.Remove(metaPath(dir, id))
}

// openedSpool is a spool file read back for finalizing.
type openedSpool struct {
	header spoolHeader
	fk     *seal.FileKey
	meta   *spoolMeta // nil if the meta file is missing or unreadable
	path   string
}

var errSpoolFormat = errors.New("siprec: not a spool file")

// readSpoolHeader reads the clear header of the spool at path and returns
// it with the offset where the sealed blob begins.
func readSpoolHeader(path string) (spoolHeader, int64, error) {
	var h spoolHeader
	f, err := os.Open(path)
	if err != nil {
		return h, 0, err
	}
	defer f.Close()
	br := bufio.NewReader(io.LimitReader(f, int64(len(spoolMagic)+maxHeaderLine)))
	magic := make([]byte, len(spoolMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != spoolMagic {
		return h, 0, errSpoolFormat
	}
	line, err := br.ReadBytes('\n')
	if err != nil {
		return h, 0, errSpoolFormat
	}
	if err := json.Unmarshal(line, &h); err != nil || !recording.ValidID(h.RecordingID) ||
		h.SampleRate != rtpmix.SampleRate || h.Channels != channels {
		return h, 0, errSpoolFormat
	}
	if filepath.Base(path) != h.RecordingID+spoolSuffix {
		return h, 0, errSpoolFormat
	}
	return h, int64(len(spoolMagic) + len(line)), nil
}

// openSpool reads a spool's header and unwraps its key with identity.
func openSpool(path string, identity func(epoch int) (age.Identity, error)) (*openedSpool, int64, error) {
	h, off, err := readSpoolHeader(path)
	if err != nil {
		return nil, 0, err
	}
	id, err := identity(h.KeyEpoch)
	if err != nil {
		return nil, 0, fmt.Errorf("siprec: spool %s: %w", h.RecordingID, err)
	}
	fk, err := seal.Unwrap(h.WrappedKey, id)
	if err != nil {
		return nil, 0, fmt.Errorf("siprec: spool %s: unwrap: %w", h.RecordingID, err)
	}
	o := &openedSpool{header: h, fk: fk, path: path}
	if b, err := os.ReadFile(metaPath(filepath.Dir(path), h.RecordingID)); err == nil {
		if plain, err := fk.OpenField(metaLabel, b); err == nil {
			var m spoolMeta
			if json.Unmarshal(plain, &m) == nil {
				o.meta = &m
			}
		}
	}
	return o, off, nil
}

// pcm streams the spool's PCM (everything that survived, for an
// unfinished spool) to w; it returns the frames written and whether the
// spool was finished.
func (o *openedSpool) pcm(w io.Writer, off int64) (int64, bool, error) {
	f, err := os.Open(o.path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return 0, false, err
	}
	// Whole frames only: a torn write never splits a frame into the output.
	fw := &frameWriter{w: w}
	_, finished, err := seal.ReadUnfinished(fw, bufio.NewReaderSize(f, 256<<10), o.fk, o.header.RecordingID)
	return fw.frames, finished, err
}

// frameWriter passes on whole stereo PCM frames and counts them.
type frameWriter struct {
	w      io.Writer
	rest   []byte
	frames int64
}

func (fw *frameWriter) Write(p []byte) (int, error) {
	const frame = 2 * channels
	buf := append(fw.rest, p...)
	n := len(buf) / frame * frame
	if n > 0 {
		if _, err := fw.w.Write(buf[:n]); err != nil {
			return 0, err
		}
		fw.frames += int64(n / frame)
	}
	fw.rest = append(fw.rest[:0], buf[n:]...)
	return len(p), nil
}

// minFrames is the shortest recording stored: a session that ended at
// once still leaves 20 ms of silence, so that it is a valid WAV and
// visibly stored rather than lost.
const minFrames = rtpmix.SampleRate / 50

// wavEncoding picks the stored format from the codecs the legs carried:
// G.711 as received when every leg used one law (the PCM came from it, so
// re-encoding is lossless), 16-bit PCM otherwise.
func wavEncoding(codecs []string) audio.Encoding {
	mu, a := false, false
	for _, c := range codecs {
		switch c {
		case "PCMU":
			mu = true
		case "PCMA":
			a = true
		}
	}
	switch {
	case mu && !a:
		return audio.MuLaw
	case a && !mu:
		return audio.ALaw
	}
	return audio.PCM16
}

// wavStream writes the spool's audio, frames frames long (counted by pcm
// before), as a WAV file of encoding enc to w, decrypting in memory only;
// a recording shorter than minFrames is padded with silence.
func (o *openedSpool) wavStream(w io.Writer, off int64, enc audio.Encoding, frames int64) error {
	total := max(frames, minFrames)
	hdr, err := audio.WAVHeader(enc, rtpmix.SampleRate, channels, total)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.Write(hdr); err != nil {
		return err
	}
	cw := &convertWriter{w: bw, enc: enc}
	got, _, err := o.pcm(&limitFrames{w: cw, left: frames}, off)
	if err != nil {
		return err
	}
	if got < frames {
		return fmt.Errorf("siprec: spool %s shrank while read", o.header.RecordingID)
	}
	if pad := total - frames; pad > 0 {
		if _, err := cw.Write(make([]byte, pad*2*channels)); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// limitFrames passes on at most left frames of whole-frame writes.
type limitFrames struct {
	w    io.Writer
	left int64
}

func (l *limitFrames) Write(p []byte) (int, error) {
	n := min(int64(len(p)/(2*channels)), l.left)
	if n > 0 {
		if _, err := l.w.Write(p[:n*2*channels]); err != nil {
			return 0, err
		}
		l.left -= n
	}
	return len(p), nil
}

// convertWriter re-encodes 16-bit PCM (whole samples per Write) to enc.
type convertWriter struct {
	w   io.Writer
	enc audio.Encoding
	buf []byte
}

func (c *convertWriter) Write(p []byte) (int, error) {
	if c.enc == audio.PCM16 {
		return c.w.Write(p)
	}
	c.buf = c.buf[:0]
	for i := 0; i+1 < len(p); i += 2 {
		s := int16(uint16(p[i]) | uint16(p[i+1])<<8)
		if c.enc == audio.MuLaw {
			c.buf = append(c.buf, audio.EncodeMuLaw(s))
		} else {
			c.buf = append(c.buf, audio.EncodeALaw(s))
		}
	}
	if _, err := c.w.Write(c.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// listSpools returns the recording IDs of the spool files in dir.
func listSpools(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name(), spoolSuffix); ok && recording.ValidID(id) && e.Type().IsRegular() {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// codecsOf reads the codec list out of stored stats JSON.
func codecsOf(stats json.RawMessage) []string {
	var s captureStats
	if json.Unmarshal(stats, &s) != nil {
		return nil
	}
	var out []string
	for _, st := range s.Streams {
		out = append(out, st.Codecs...)
	}
	return out
}
