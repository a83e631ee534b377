package seal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
)

var update = flag.Bool("update", false, "regenerate testdata/vectors")

const vectorDir = "testdata/vectors"

// A vector is one file of testdata/vectors, as docs/format.md describes:
// "name: value" header lines, an empty line, then the body.
type vector struct {
	name    string
	headers [][2]string
	body    []byte
}

func (v vector) encode() []byte {
	var b bytes.Buffer
	for _, h := range v.headers {
		fmt.Fprintf(&b, "%s: %s\n", h[0], h[1])
	}
	b.WriteString("\n")
	b.Write(v.body)
	return b.Bytes()
}

func parseVector(t *testing.T, data []byte) (map[string]string, []byte) {
	t.Helper()
	headers := map[string]string{}
	for {
		line, rest, ok := bytes.Cut(data, []byte("\n"))
		if !ok {
			t.Fatal("no empty line after the headers")
		}
		data = rest
		if len(line) == 0 {
			return headers, data
		}
		name, value, ok := strings.Cut(string(line), ": ")
		if !ok {
			t.Fatalf("bad header line %q", line)
		}
		headers[name] = value
	}
}

// generateVectors returns the deterministic vectors: every blob and field
// vector. The wrap vector is random and made by wrapVector.
func generateVectors(t *testing.T) []vector {
	key := testKey()
	keyHex := hex.EncodeToString(key.k[:])
	var salt [16]byte
	for i := range salt {
		salt[i] = 0xa0 + byte(i)
	}
	blob := func(size int) []byte { return sealBytes(t, key, testID, pattern(size), salt) }
	short, one, two := blob(100), blob(ChunkSize), blob(ChunkSize+1)
	mutate := func(b []byte, f func([]byte)) []byte { b = bytes.Clone(b); f(b); return b }

	var vs []vector
	add := func(name, expect, id string, body []byte, comment string, extra ...[2]string) {
		h := [][2]string{{"kind", "blob"}, {"expect", expect}, {"file key", keyHex}, {"recording id", id}, {"salt", hex.EncodeToString(salt[:])}}
		h = append(h, extra...)
		vs = append(vs, vector{name, append(h, [2]string{"comment", comment}), body})
	}
	ok := func(name string, size int, body []byte, comment string) {
		sum := sha256.Sum256(pattern(size))
		add(name, "ok", testID, body, comment, [2]string{"plaintext size", fmt.Sprint(size)}, [2]string{"plaintext sha256", hex.EncodeToString(sum[:])})
	}
	ok("blob_ok_empty", 0, blob(0), "empty plaintext: one empty final chunk")
	ok("blob_ok_short", 100, short, "one final chunk of 100 bytes")
	ok("blob_ok_one_chunk", ChunkSize, one, "exactly 65536 bytes: one full final chunk, no empty chunk after it")
	ok("blob_ok_two_chunks", ChunkSize+1, two, "a full non-final chunk and a final chunk of 1 byte")
	add("blob_format_bad_magic", "format", testID, mutate(short, func(b []byte) { b[0] = 'c' }), "blob_ok_short with magic cVSEAL1")
	add("blob_format_header_only", "format", testID, short[:56], "blob_ok_short cut after the header: smaller than any blob")
	add("blob_format_final_below_tag", "format", testID, two[:len(two)-2], "blob_ok_two_chunks cut 2 bytes short: final chunk of 15 bytes")
	add("blob_format_empty_chunk_appended", "format", testID, append(bytes.Clone(one), make([]byte, 16)...), "blob_ok_one_chunk and 16 zero bytes: an empty final chunk after a full one")
	add("blob_format_id_uppercase", "format", testID, mutate(short, func(b []byte) { copy(b[24:], strings.ToUpper(testID)) }), "blob_ok_short with the header's recording ID in uppercase")
	add("blob_auth_open_id_mismatch", "auth open", otherID, short, "blob_ok_short opened for another recording")
	add("blob_auth_open_salt_flipped", "auth open", testID, mutate(short, func(b []byte) { b[8] ^= 1 }), "blob_ok_short with the lowest bit of the salt's first byte flipped")
	add("blob_auth_open_final_dropped", "auth open", testID, two[:56+testChunk], "blob_ok_two_chunks without its final chunk: chunk 0 was not sealed as final")
	add("blob_auth_open_extended", "auth open", testID, append(bytes.Clone(short), 0), "blob_ok_short and one zero byte: the final chunk grows by a byte")
	add("blob_auth_read_chunk_flipped", "auth read", testID, mutate(two, func(b []byte) { b[56+100] ^= 1 }), "blob_ok_two_chunks with a bit of non-final chunk 0 flipped: opens, fails on reading chunk 0")
	wrongKey := bytes.Repeat([]byte{0x55}, 32)
	vs = append(vs, vector{"blob_auth_open_wrong_key", [][2]string{{"kind", "blob"}, {"expect", "auth open"}, {"file key", hex.EncodeToString(wrongKey)}, {"recording id", testID}, {"salt", hex.EncodeToString(salt[:])}, {"comment", "blob_ok_short opened with file key 55 55 … 55"}}, short})

	var nonce [12]byte
	for i := range nonce {
		nonce[i] = 0xc0 + byte(i)
	}
	pnr := []byte("191212121212")
	field, err := key.sealField("patient.pnr", pnr, nonce)
	if err != nil {
		t.Fatal(err)
	}
	addField := func(name, expect, label string, body []byte, comment string) {
		vs = append(vs, vector{name, [][2]string{{"kind", "field"}, {"expect", expect}, {"file key", keyHex}, {"label", label}, {"plaintext", hex.EncodeToString(pnr)}, {"comment", comment}}, body})
	}
	addField("field_ok", "ok", "patient.pnr", field, "the test personnummer 191212121212 sealed with nonce c0 c1 … cb")
	addField("field_auth_wrong_label", "auth", "caller.number", field, "field_ok opened under another label")
	addField("field_format_short", "format", "patient.pnr", field[:27], "field_ok cut to 27 bytes, shorter than nonce and tag")
	return vs
}

func wrapVector(t *testing.T) vector {
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	key := testKey()
	wrapped, err := Wrap(key, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	return vector{"wrap_ok_hybrid", [][2]string{{"kind", "wrap"}, {"expect", "ok"}, {"file key", hex.EncodeToString(key.k[:])}, {"identity", id.String()}, {"comment", "file key 00 01 … 1f wrapped to the identity's age1pq1 recipient"}}, wrapped}
}

func TestVectors(t *testing.T) {
	gen := generateVectors(t)
	if *update {
		old, _ := filepath.Glob(filepath.Join(vectorDir, "*"))
		for _, f := range old {
			os.Remove(f)
		}
		for _, v := range append(gen, wrapVector(t)) {
			if err := os.WriteFile(filepath.Join(vectorDir, v.name), v.encode(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(vectorDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	want := []string{"wrap_ok_hybrid"}
	for _, v := range gen {
		want = append(want, v.name)
		// The implementation still produces the committed bytes.
		if data, err := os.ReadFile(filepath.Join(vectorDir, v.name)); err != nil || !bytes.Equal(data, v.encode()) {
			t.Errorf("%s: committed vector differs from what the code generates (%v)", v.name, err)
		}
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("vector files %v, want %v", names, want)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			checkVector(t, data)
		})
	}
}

// checkVector runs one vector through the public API and checks its outcome.
func checkVector(t *testing.T, data []byte) {
	h, body := parseVector(t, data)
	keyBytes, err := hex.DecodeString(h["file key"])
	if err != nil || len(keyBytes) != 32 {
		t.Fatalf("bad file key %q", h["file key"])
	}
	key := &FileKey{k: [32]byte(keyBytes)}
	switch h["kind"] {
	case "blob":
		if got := outcome(t, body, key, h["recording id"]); got != h["expect"] {
			t.Fatalf("outcome %q, want %q", got, h["expect"])
		}
		if h["expect"] != "ok" {
			return
		}
		r := open(t, body, key, h["recording id"])
		p := make([]byte, r.Size())
		r.ReadAt(p, 0)
		sum := sha256.Sum256(p)
		if fmt.Sprint(r.Size()) != h["plaintext size"] || hex.EncodeToString(sum[:]) != h["plaintext sha256"] {
			t.Fatalf("plaintext of %d bytes, sha256 %x", r.Size(), sum)
		}
	case "field":
		pt, err := key.OpenField(h["label"], body)
		switch h["expect"] {
		case "ok":
			if err != nil || hex.EncodeToString(pt) != h["plaintext"] {
				t.Fatalf("OpenField = %x, %v", pt, err)
			}
		case "format", "auth":
			if want := map[string]error{"format": ErrFormat, "auth": ErrAuth}[h["expect"]]; !errors.Is(err, want) {
				t.Fatalf("OpenField: %v, want %v", err, want)
			}
		default:
			t.Fatalf("unknown expect %q", h["expect"])
		}
	case "wrap":
		id, err := age.ParseHybridIdentity(h["identity"])
		if err != nil {
			t.Fatal(err)
		}
		got, err := Unwrap(body, id)
		if h["expect"] != "ok" || err != nil || got.k != key.k {
			t.Fatalf("Unwrap: %v", err)
		}
	default:
		t.Fatalf("unknown kind %q", h["kind"])
	}
}
