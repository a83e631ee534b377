package siprec

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"testing"
	"time"

	"callvault/internal/audio"
	"callvault/internal/keys"
)

// spoolPCM is n stereo frames of distinct, μ-law-exact samples.
func spoolPCM(n int) ([]byte, []int16) {
	var b []byte
	var s []int16
	for i := 0; i < n; i++ {
		for c := 0; c < channels; c++ {
			v := audio.DecodeMuLaw(byte(i*7 + c*3))
			s = append(s, v)
			b = binary.LittleEndian.AppendUint16(b, uint16(v))
		}
	}
	return b, s
}

func TestSpoolRoundTrip(t *testing.T) {
	kr, err := keys.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const id = "00112233445566778899aabbccddeeff"
	sp, err := createSpool(dir, spoolHeader{RecordingID: id, StartedAt: time.Now().UTC(), Source: "SE9999990001-CAP1",
		CareProvider: "SE9999990001-VG01", CareUnit: "SE9999990001-VE0A"}, kr.Current())
	if err != nil {
		t.Fatal(err)
	}
	pcm, want := spoolPCM(40000) // 5 s: 160000 bytes, two full chunks and a part
	if err := sp.write(pcm); err != nil {
		t.Fatal(err)
	}
	stats, _ := json.Marshal(captureStats{Streams: []streamStats{{Channels: []int{0}}}})
	if err := sp.saveMeta(&spoolMeta{CallID: "c1", CallerNumber: "+46701740605", Staff: []string{"SE9999990001-N0A1"}, Direction: "inbound", Stats: stats}); err != nil {
		t.Fatal(err)
	}
	if err := sp.sync(); err != nil {
		t.Fatal(err)
	}

	// Unfinished (as after a kill): the two sealed chunks are readable, the
	// part still in the writer is not on disk.
	raw, _ := os.ReadFile(spoolPath(dir, id))
	metaRaw, _ := os.ReadFile(metaPath(dir, id))
	for _, needle := range [][]byte{pcm[1000:1064], []byte("+46701740605")} {
		if bytes.Contains(raw, needle) || bytes.Contains(metaRaw, needle) {
			t.Fatal("plaintext in the spool files")
		}
	}
	o, off, err := openSpool(spoolPath(dir, id), kr.Identity)
	if err != nil {
		t.Fatal(err)
	}
	if o.meta == nil || o.meta.CallerNumber != "+46701740605" {
		t.Fatalf("meta %+v", o.meta)
	}
	var got bytes.Buffer
	frames, finished, err := o.pcm(&got, off)
	if err != nil || finished || frames != 2*65536/4 || !bytes.Equal(got.Bytes(), pcm[:2*65536]) {
		t.Fatalf("unfinished spool: %d frames finished=%v err=%v", frames, finished, err)
	}

	// Finished: everything, and as a μ-law WAV that decodes to the same samples.
	if err := sp.finish(); err != nil {
		t.Fatal(err)
	}
	frames, finished, err = o.pcm(&bytes.Buffer{}, off)
	if err != nil || !finished || frames != 40000 {
		t.Fatalf("finished spool: %d frames finished=%v err=%v", frames, finished, err)
	}
	var wav bytes.Buffer
	if err := o.wavStream(&wav, off, audio.MuLaw, frames); err != nil {
		t.Fatal(err)
	}
	info, r, err := audio.Probe(bytes.NewReader(wav.Bytes()))
	if err != nil || info.Encoding != audio.MuLaw || info.Channels != 2 {
		t.Fatalf("probe %+v %v", info, err)
	}
	var all bytes.Buffer
	all.ReadFrom(r) // the whole file: header, then the samples
	data := all.Bytes()[all.Len()-len(want):]
	if all.Len() != 58+len(want) {
		t.Fatalf("WAV of %d bytes, want a 58-byte header and %d samples", all.Len(), len(want))
	}
	for i, b := range data {
		if audio.DecodeMuLaw(b) != want[i] {
			t.Fatalf("sample %d differs", i)
		}
	}
	if enc := wavEncoding(codecsOf(stats)); enc != audio.PCM16 {
		t.Errorf("no codecs → %v, want PCM16", enc)
	}
	for _, tc := range []struct {
		codecs []string
		want   audio.Encoding
	}{{[]string{"PCMU"}, audio.MuLaw}, {[]string{"PCMA", "PCMA"}, audio.ALaw}, {[]string{"PCMU", "PCMA"}, audio.PCM16}} {
		if got := wavEncoding(tc.codecs); got != tc.want {
			t.Errorf("%v → %v, want %v", tc.codecs, got, tc.want)
		}
	}

	// A file that is not a spool, or under another name, is refused.
	os.WriteFile(spoolPath(dir, "ffffffffffffffffffffffffffffffff"), raw, 0o600)
	if _, _, err := readSpoolHeader(spoolPath(dir, "ffffffffffffffffffffffffffffffff")); err != errSpoolFormat {
		t.Errorf("renamed spool: %v", err)
	}
	os.WriteFile(spoolPath(dir, "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"), []byte("junk"), 0o600)
	if _, _, err := readSpoolHeader(spoolPath(dir, "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee")); err != errSpoolFormat {
		t.Errorf("junk: %v", err)
	}
}
