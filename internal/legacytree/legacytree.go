// Package legacytree generates a synthetic legacy recording store for
// tests and benchmarks of the importer: WAV and MP3 files named after
// (fictional) callers' phone numbers, a manifest CSV, and known numbers of
// corrupt files, duplicates, unlisted files and bad manifest rows. All
// audio is generated; all personal data is synthetic (Skatteverket's test
// personnummer, PTS's numbers reserved for fiction).
package legacytree

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"callvault/internal/audio"
)

// Spec says what to generate. Files counts the audio files on disk; of
// them Corrupt are broken, Duplicates copy a good file under another name,
// BadPatient have a manifest row with a wrong check digit, Unlisted have
// no manifest row. MissingRows name files that do not exist, TwiceRows
// repeat a good file's path.
type Spec struct {
	Dir                                              string
	Files, Corrupt, Duplicates, BadPatient, Unlisted int
	MissingRows, TwiceRows                           int
	WAVBytes, MP3Bytes                               int // approximate size of each file's audio; 0: about 8 kB
	MP3Share                                         int // percent of files that are MP3
	Seed                                             uint64
	CareProvider, CareUnit, Staff                    string
	Now                                              time.Time
}

// Tree is what Generate made.
type Tree struct {
	Manifest string // path of manifest.csv (beside Dir, not inside)
	Phones   []string
	// Expected outcomes of a complete import.
	Imported, Duplicates, Rejected, Unlisted, Rows int
	// Good lists the relative paths of files that import (not duplicates).
	Good []string
	// Bytes is the total size of the audio files on disk.
	Bytes int64
}

// Patients are Skatteverket's published test personnummer.
var Patients = []string{"201701102384", "191212121212", "198001019804", "197010632391"}

// Phones returns PTS's numbers reserved for fiction, 070-1740610..699
// (605..609 are left to the dev setup's sample metadata, so a scan for
// these numbers finds only what an import put somewhere).
func Phones() []string {
	var out []string
	for n := 610; n <= 699; n++ {
		out = append(out, fmt.Sprintf("070174%04d", n))
	}
	return out
}

// Generate writes the tree and the manifest.
func Generate(s Spec) (*Tree, error) {
	if s.WAVBytes == 0 {
		s.WAVBytes = 8000
	}
	if s.MP3Bytes == 0 {
		s.MP3Bytes = 8000
	}
	if s.Now.IsZero() {
		s.Now = time.Now()
	}
	good := s.Files - s.Corrupt - s.Duplicates - s.BadPatient - s.Unlisted
	if good < 1 || (s.Duplicates > 0 && good < 1) || s.TwiceRows > good {
		return nil, fmt.Errorf("legacytree: spec leaves %d good files", good)
	}
	rng := rand.New(rand.NewPCG(s.Seed, s.Seed^0x5eed))
	phones := Phones()
	t := &Tree{Manifest: filepath.Clean(s.Dir) + "-manifest.csv", Phones: phones}
	var mf bytes.Buffer
	w := csv.NewWriter(&mf)
	w.Write([]string{"file", "call_id", "started_at", "ended_at", "patient", "caller_number", "staff", "care_provider", "care_unit"})
	base := s.Now.AddDate(-6, 0, 0)
	span := s.Now.Add(-48*time.Hour).Sub(base) / time.Duration(max(s.Files, 1))

	type made struct {
		rel  string
		data []byte
		row  []string
	}
	var goods []made
	write := func(i int, kind string, data []byte, ext string, listed bool, patient string) (made, error) {
		phone := phones[rng.IntN(len(phones))]
		start := base.Add(time.Duration(i) * span).UTC().Truncate(time.Second)
		rel := fmt.Sprintf("%04d/%02d/%s_%s_%05d.%s", start.Year(), start.Month(), phone, start.Format("20060102-150405"), i, ext)
		p := filepath.Join(s.Dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return made{}, err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return made{}, err
		}
		t.Bytes += int64(len(data))
		end := start.Add(4 * time.Minute)
		row := []string{rel, fmt.Sprintf("legacy-%s-%05d", kind, i), start.Format(time.RFC3339), end.Format(time.RFC3339),
			patient, "+46" + phone[1:], s.Staff, s.CareProvider, s.CareUnit}
		if listed {
			w.Write(row)
		}
		return made{rel: rel, data: data, row: row}, nil
	}
	i := 0
	next := func() int { i++; return i }
	for range good {
		n := next()
		data, ext := s.audio(rng, n)
		m, err := write(n, "ok", data, ext, true, Patients[rng.IntN(len(Patients))])
		if err != nil {
			return nil, err
		}
		goods = append(goods, m)
		t.Good = append(t.Good, m.rel)
	}
	for range s.Duplicates {
		src := goods[rng.IntN(len(goods))]
		n := next()
		ext := filepath.Ext(src.rel)[1:]
		if _, err := write(n, "dup", src.data, ext, true, Patients[rng.IntN(len(Patients))]); err != nil {
			return nil, err
		}
	}
	for k := range s.Corrupt {
		n := next()
		data, ext := s.audio(rng, n)
		switch k % 3 {
		case 0: // cut short
			data = data[:len(data)*2/3]
		case 1: // a header of zeros
			copy(data, make([]byte, 64))
		case 2: // not audio at all
			data = []byte(strings.Repeat("this is not a recording\n", 40))
		}
		if _, err := write(n, "bad", data, ext, true, Patients[0]); err != nil {
			return nil, err
		}
	}
	for range s.BadPatient {
		n := next()
		data, ext := s.audio(rng, n)
		if _, err := write(n, "pnr", data, ext, true, "201701102385"); err != nil { // check digit off by one
			return nil, err
		}
	}
	for range s.Unlisted {
		n := next()
		data, ext := s.audio(rng, n)
		if _, err := write(n, "unl", data, ext, false, ""); err != nil {
			return nil, err
		}
	}
	for k := range s.MissingRows {
		row := append([]string(nil), goods[0].row...)
		row[0] = fmt.Sprintf("missing/%s_%05d.wav", phones[k%len(phones)], k)
		row[1] = fmt.Sprintf("legacy-missing-%05d", k)
		w.Write(row)
	}
	for k := range s.TwiceRows {
		row := append([]string(nil), goods[k].row...)
		row[1] += "-again"
		w.Write(row)
	}
	w.Flush()
	if err := os.WriteFile(t.Manifest, mf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	t.Imported = good
	t.Duplicates = s.Duplicates
	t.Rejected = s.Corrupt + s.BadPatient + s.MissingRows + s.TwiceRows
	t.Unlisted = s.Unlisted
	t.Rows = good + s.Duplicates + s.Corrupt + s.BadPatient + s.MissingRows + s.TwiceRows
	return t, nil
}

// audio makes file n: a μ-law WAV of noise or a silent MP3 tagged with n,
// each unique.
func (s Spec) audio(rng *rand.Rand, n int) ([]byte, string) {
	var b bytes.Buffer
	if rng.IntN(100) < s.MP3Share {
		d := time.Duration(s.MP3Bytes) * time.Second / 16000 // 128 kbit/s
		audio.WriteSilentMP3(&b, d, s.Seed<<32^uint64(n))
		return b.Bytes(), "mp3"
	}
	samples := make([]int16, s.WAVBytes)
	for i := range samples {
		samples[i] = int16(rng.Uint32())
	}
	audio.WriteWAV(&b, audio.MuLaw, 8000, [][]int16{samples})
	return b.Bytes(), "wav"
}
