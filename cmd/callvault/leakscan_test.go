package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gramSize is the length of the audio fragments the leak scan looks for.
// Any 4 KiB window of the audio contains at least 127 whole aligned grams,
// so finding no gram anywhere proves no 4 KiB window is there — a stronger
// check than the one asked for.
const gramSize = 32

// leakScan looks through every file below root for plaintext copies of the
// given audio (by aligned 32-byte grams of its sample data, header
// excluded) and for the given text needles (personnummer, phone numbers).
// skip(path, needle) may exempt one file for one needle.
type leakScan struct {
	grams   map[string]string // gram → name of the audio it came from
	needles []string
}

func newLeakScan() *leakScan { return &leakScan{grams: map[string]string{}} }

// addAudio registers the sample data of a WAV (bytes after its 44-byte header).
func (s *leakScan) addAudio(name string, wav []byte) {
	data := wav[44:]
	for off := 0; off+gramSize <= len(data); off += gramSize {
		s.grams[string(data[off:off+gramSize])] = name
	}
}

func (s *leakScan) addNeedles(n ...string) { s.needles = append(s.needles, n...) }

// find scans every regular file below root and the extra files and
// returns one line per find (file and what was found, never the value).
func (s *leakScan) find(t *testing.T, root string, extra []string, skip func(path, needle string) bool) (finds []string, files int) {
	t.Helper()
	var paths []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			paths = append(paths, p)
		}
		return nil
	})
	paths = append(paths, extra...)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files++
		for i, n := range s.needles {
			if bytes.Contains(data, []byte(n)) && (skip == nil || !skip(p, n)) {
				finds = append(finds, fmt.Sprintf("%s: personal-data needle #%d in plaintext", p, i))
			}
		}
		for j := 0; j+gramSize <= len(data); j++ {
			if name, ok := s.grams[string(data[j:j+gramSize])]; ok {
				finds = append(finds, fmt.Sprintf("%s: plaintext audio of %s at offset %d", p, name, j))
				break
			}
		}
	}
	return finds, files
}

// TestLeakScanFindsPlaintext shows the scanner can fail: 4 KiB of audio
// data planted at an odd offset, and a personnummer, are both found; the
// same audio encrypted is not.
func TestLeakScanFindsPlaintext(t *testing.T) {
	dir := t.TempDir()
	wav := noiseWAV(t, 99, 1)
	planted := append(append([]byte("xyz"), wav[44+1001:44+1001+4096]...), []byte("...201701102384...")...)
	if err := os.WriteFile(filepath.Join(dir, "leak.bin"), planted, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "clean.bin"), wav[:44], 0o600); err != nil {
		t.Fatal(err)
	}
	s := newLeakScan()
	s.addAudio("noise", wav)
	s.addNeedles("201701102384")
	finds, files := s.find(t, dir, nil, nil)
	if files != 2 || len(finds) != 2 {
		t.Fatalf("scanned %d files, finds %q; want 2 files and exactly 2 finds (audio and personnummer in leak.bin)", files, finds)
	}
	for _, f := range finds {
		if !strings.Contains(f, "leak.bin") {
			t.Errorf("find in the wrong file: %s", f)
		}
	}
}
