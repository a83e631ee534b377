package escrow

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func mustMarshal(t testing.TB, s *Share) []byte {
	t.Helper()
	b, err := s.MarshalText()
	if err != nil {
		t.Fatalf("MarshalText: %v", err)
	}
	return b
}

func mustParse(t testing.TB, b []byte) *Share {
	t.Helper()
	s, err := ParseShare(b)
	if err != nil {
		t.Fatalf("ParseShare: %v", err)
	}
	return s
}

// sameShare reports whether a and b are the same share, field by field.
func sameShare(a, b *Share) bool {
	return a.EscrowID == b.EscrowID && a.Threshold == b.Threshold && a.Total == b.Total &&
		a.Index == b.Index && a.Created.Equal(b.Created) &&
		bytes.Equal(a.value, b.value) && equalAll(a.commitments, b.commitments) &&
		bytes.Equal(a.envelope, b.envelope)
}

// setLine replaces the value of the line with the given key.
func setLine(t *testing.T, file []byte, key, value string) []byte {
	t.Helper()
	lines := strings.Split(string(file), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, key+": ") {
			lines[i] = key + ": " + value
			return []byte(strings.Join(lines, "\n"))
		}
	}
	t.Fatalf("no line %q", key)
	return nil
}

func lineValue(t *testing.T, file []byte, key string) string {
	t.Helper()
	for _, l := range strings.Split(string(file), "\n") {
		if v, ok := strings.CutPrefix(l, key+": "); ok {
			return v
		}
	}
	t.Fatalf("no line %q", key)
	return ""
}

func TestMarshalParseRoundTrip(t *testing.T) {
	shares := mustSplit(t, randomBytes(t, 2048), 5, 3)
	for _, s := range shares {
		text := mustMarshal(t, s)
		p := mustParse(t, text)
		if !sameShare(s, p) {
			t.Fatalf("share %d: parsed share differs", s.Index)
		}
		if again := mustMarshal(t, p); !bytes.Equal(again, text) {
			t.Fatalf("share %d: re-encoding differs:\n%s\n%s", s.Index, text, again)
		}
	}
}

func TestMarshalTextLayout(t *testing.T) {
	s := mustSplit(t, []byte("keyring"), 5, 3)[1]
	re := regexp.MustCompile(`\Acallvault escrow share v1\n` +
		`escrow: [0-9a-f]{32}\n` +
		`threshold: 3\n` +
		`shares: 5\n` +
		`share: 2\n` +
		`value: [0-9a-f]{64}\n` +
		`commitments: [0-9a-f]{64},[0-9a-f]{64},[0-9a-f]{64}\n` +
		`envelope: [A-Za-z0-9+/]+=*\n` +
		`created: 2026-11-24T10:00:00Z\n\z`)
	if text := mustMarshal(t, s); !re.Match(text) {
		t.Errorf("share file does not have the documented layout:\n%s", text)
	}
}

func TestParsedSharesRecover(t *testing.T) {
	secret := randomBytes(t, 500)
	shares := mustSplit(t, secret, 4, 2)
	parsed := []*Share{mustParse(t, mustMarshal(t, shares[3])), mustParse(t, mustMarshal(t, shares[1]))}
	got, err := Recover(parsed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Recover = %v", err)
	}
}

func TestParseAlteredValueIsInvalid(t *testing.T) {
	s := mustSplit(t, []byte("keyring"), 5, 3)[1]
	bad := alteredValue(t, s)
	// bad.encode writes the file without the checks MarshalText makes.
	_, err := ParseShare(bad.encode())
	if !errors.Is(err, ErrInvalidShare) {
		t.Fatalf("err = %v, want ErrInvalidShare", err)
	}
	assertNoValues(t, err, s, bad)
}

func TestAlteredEnvelope(t *testing.T) {
	secret := []byte("the unlocked keyring")
	shares := mustSplit(t, secret, 5, 3)
	files := make([][]byte, len(shares))
	for i, s := range shares {
		files[i] = mustMarshal(t, s)
	}
	env, err := base64.StdEncoding.DecodeString(lineValue(t, files[0], "envelope"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pos := range []int{0, nonceSize, len(env) - 1} { // nonce, ciphertext, tag
		damaged := bytes.Clone(env)
		damaged[pos] ^= 0x01
		value := base64.StdEncoding.EncodeToString(damaged)

		all := make([]*Share, 3)
		for i := range all {
			all[i] = mustParse(t, setLine(t, files[i], "envelope", value)) // parses: only recovery can tell
		}
		if _, err := Recover(all); !errors.Is(err, ErrAuth) {
			t.Errorf("byte %d altered in every share: err = %v, want ErrAuth", pos, err)
		}

		one := []*Share{shares[0], mustParse(t, setLine(t, files[1], "envelope", value)), shares[2]}
		if _, err := Recover(one); !errors.Is(err, ErrMixed) {
			t.Errorf("byte %d altered in one share: err = %v, want ErrMixed", pos, err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	s := mustSplit(t, []byte("keyring"), 5, 3)[1]
	good := mustMarshal(t, s)
	goodEnv := lineValue(t, good, "envelope")
	comms := strings.Split(lineValue(t, good, "commitments"), ",")
	created := lineValue(t, good, "created")

	// 31 bytes encode to base64 ending in "==": the character before the
	// padding carries 4 padding bits, which must be zero.
	env31 := base64.StdEncoding.EncodeToString(make([]byte, 31))
	nonzeroPadding := env31[:len(env31)-3] + "B=="

	for _, c := range []struct {
		name string
		file []byte
		want error
	}{
		{"empty", nil, ErrFormat},
		{"too large", append(bytes.Clone(good), make([]byte, MaxShareFileSize)...), ErrFormat},
		{"no final newline", good[:len(good)-1], ErrFormat},
		{"extra newline", append(bytes.Clone(good), '\n'), ErrFormat},
		{"trailing text", append(bytes.Clone(good), "x\n"...), ErrFormat},
		{"CRLF", bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n")), ErrFormat},
		{"other version", bytes.Replace(good, []byte("share v1"), []byte("share v2"), 1), ErrFormat},
		{"header with space", bytes.Replace(good, []byte("share v1"), []byte("share v1 "), 1), ErrFormat},
		{"missing line", bytes.Replace(good, []byte("shares: 5\n"), nil, 1), ErrFormat},
		{"repeated line", bytes.Replace(good, []byte("shares: 5\n"), []byte("shares: 5\nshares: 5\n"), 1), ErrFormat},
		{"lines swapped", bytes.Replace(good, []byte("threshold: 3\nshares: 5\n"), []byte("shares: 5\nthreshold: 3\n"), 1), ErrFormat},
		{"unknown key", bytes.Replace(good, []byte("shares: 5\n"), []byte("total: 5\n"), 1), ErrFormat},
		{"no space after colon", bytes.Replace(good, []byte("shares: 5"), []byte("shares:5"), 1), ErrFormat},
		{"two spaces", bytes.Replace(good, []byte("shares: 5"), []byte("shares:  5"), 1), ErrFormat},
		{"upper-case key", bytes.Replace(good, []byte("shares: 5"), []byte("Shares: 5"), 1), ErrFormat},
		{"upper-case escrow ID", setLine(t, good, "escrow", strings.ToUpper(s.EscrowID)), ErrFormat},
		{"short escrow ID", setLine(t, good, "escrow", s.EscrowID[:30]), ErrFormat},
		{"other escrow ID", setLine(t, good, "escrow", strings.Repeat("0", 32)), ErrInvalidShare},
		{"threshold 1", setLine(t, good, "threshold", "1"), ErrFormat},
		{"threshold 03", setLine(t, good, "threshold", "03"), ErrFormat},
		{"threshold +3", setLine(t, good, "threshold", "+3"), ErrFormat},
		{"threshold 33", setLine(t, good, "threshold", "33"), ErrFormat},
		{"threshold huge", setLine(t, good, "threshold", "99999999999999999999999"), ErrFormat},
		{"threshold 2 with 3 commitments", setLine(t, good, "threshold", "2"), ErrFormat},
		{"shares below threshold", setLine(t, good, "shares", "2"), ErrFormat},
		{"shares 0", setLine(t, good, "shares", "0"), ErrFormat},
		{"share 0", setLine(t, good, "share", "0"), ErrFormat},
		{"share above shares", setLine(t, good, "share", "6"), ErrFormat},
		{"share -1", setLine(t, good, "share", "-1"), ErrFormat},
		{"other share index", setLine(t, good, "share", "3"), ErrInvalidShare},
		{"value short", setLine(t, good, "value", lineValue(t, good, "value")[:62]), ErrFormat},
		{"value upper-case", setLine(t, good, "value", strings.ToUpper(lineValue(t, good, "value"))), ErrFormat},
		{"value not reduced", setLine(t, good, "value", strings.Repeat("f", 64)), ErrFormat},
		{"value is the group order", setLine(t, good, "value", "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010"), ErrFormat},
		{"two commitments", setLine(t, good, "commitments", strings.Join(comms[:2], ",")), ErrFormat},
		{"four commitments", setLine(t, good, "commitments", strings.Join(append(comms, comms[0]), ",")), ErrFormat},
		{"33 commitments", setLine(t, good, "commitments", strings.Repeat(comms[0]+",", 32)+comms[0]), ErrFormat},
		{"commitment not a point", setLine(t, good, "commitments", comms[0]+","+comms[1]+","+strings.Repeat("f", 64)), ErrFormat},
		{"commitments with space", setLine(t, good, "commitments", comms[0]+", "+comms[1]+","+comms[2]), ErrFormat},
		{"commitments trailing comma", setLine(t, good, "commitments", strings.Join(comms, ",")+","), ErrFormat},
		{"commitments swapped", setLine(t, good, "commitments", comms[1]+","+comms[0]+","+comms[2]), ErrInvalidShare},
		{"envelope with CR", setLine(t, good, "envelope", goodEnv[:8]+"\r"+goodEnv[8:]), ErrFormat},
		{"envelope unpadded", setLine(t, good, "envelope", strings.TrimRight(env31, "=")), ErrFormat},
		{"envelope URL alphabet", setLine(t, good, "envelope", strings.NewReplacer("+", "-", "/", "_").Replace(goodEnv)+"-_"), ErrFormat},
		{"envelope padding bits", setLine(t, good, "envelope", nonzeroPadding), ErrFormat},
		{"envelope too short", setLine(t, good, "envelope", base64.StdEncoding.EncodeToString(make([]byte, 28))), ErrFormat},
		{"envelope empty", setLine(t, good, "envelope", ""), ErrFormat},
		{"created with offset", setLine(t, good, "created", "2026-11-24T11:00:00+01:00"), ErrFormat},
		{"created with fraction", setLine(t, good, "created", "2026-11-24T10:00:00.5Z"), ErrFormat},
		{"created lower-case", setLine(t, good, "created", strings.ToLower(created)), ErrFormat},
		{"created date only", setLine(t, good, "created", "2026-11-24"), ErrFormat},
		{"created invalid day", setLine(t, good, "created", "2026-02-30T10:00:00Z"), ErrFormat},
		{"non-ASCII", bytes.Replace(good, []byte("share v1"), []byte("share v\u00b9"), 1), ErrFormat},
	} {
		got, err := ParseShare(c.file)
		if !errors.Is(err, c.want) || got != nil {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), "escrow: ") {
			t.Errorf("%s: error %q lacks the escrow: prefix", c.name, err)
		}
		if hexRun.MatchString(err.Error()) {
			t.Errorf("%s: error %q echoes hex", c.name, err)
		}
	}

	// The 31-byte envelope itself is acceptable: the envelope's contents are
	// only checked by recovery.
	if _, err := ParseShare(setLine(t, good, "envelope", env31)); err != nil {
		t.Errorf("31-byte envelope: %v", err)
	}
}

func TestMarshalRefusesChangedShare(t *testing.T) {
	s := mustSplit(t, []byte("keyring"), 5, 3)[1]
	for name, c := range map[string]struct {
		change func(*Share)
		want   error
	}{
		"index":     {func(s *Share) { s.Index = 3 }, ErrInvalidShare},
		"index 0":   {func(s *Share) { s.Index = 0 }, ErrFormat},
		"threshold": {func(s *Share) { s.Threshold = 2 }, ErrFormat},
		"total":     {func(s *Share) { s.Total = 33 }, ErrFormat},
		"escrow ID": {func(s *Share) { s.EscrowID = strings.Repeat("a", 32) }, ErrInvalidShare},
		"bad ID":    {func(s *Share) { s.EscrowID = "x" }, ErrFormat},
	} {
		changed := *s
		c.change(&changed)
		if _, err := changed.MarshalText(); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
	}
	var zero Share
	if _, err := zero.MarshalText(); !errors.Is(err, ErrFormat) {
		t.Errorf("zero share: err = %v, want ErrFormat", err)
	}
}

// TestVector recovers the fixed 2-of-3 escrow of docs/escrow.md.
func TestVector(t *testing.T) {
	dir := filepath.Join("testdata", "vector")
	secret, err := os.ReadFile(filepath.Join(dir, "secret.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if string(secret) != "callvault escrow test vector v1\n" {
		t.Fatalf("secret.txt = %q", secret)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "escrow-*-share-*-of-3.txt"))
	if err != nil || len(paths) != 3 {
		t.Fatalf("vector share files: %v, %v", paths, err)
	}
	shares := make([]*Share, len(paths))
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		shares[i] = mustParse(t, b)
		if !bytes.Equal(mustMarshal(t, shares[i]), b) {
			t.Errorf("%s: re-encoding differs", p)
		}
		if shares[i].FileName() != filepath.Base(p) {
			t.Errorf("%s: FileName() = %q", p, shares[i].FileName())
		}
	}
	for _, set := range subsets(3, 2) {
		got, err := Recover(pick(shares, set...))
		if err != nil || !bytes.Equal(got, secret) {
			t.Errorf("shares %v: %q, %v", set, got, err)
		}
	}
}

// hexRun matches 16 or more hex digits in a row: no error message has one,
// since errors echo no input.
var hexRun = regexp.MustCompile(`[0-9a-fA-F]{16,}`)

func FuzzParseShare(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join("testdata", "vector", "escrow-*.txt"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("vector share files: %v, %v", paths, err)
	}
	good, err := os.ReadFile(paths[0])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add(good[:len(good)/2])
	f.Add(good[:len(good)-1])
	f.Add(bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n")))
	f.Add(bytes.Replace(good, []byte("threshold: 2"), []byte("threshold: 3"), 1))
	f.Add(bytes.Replace(good, []byte("share: 1"), []byte("share: 2"), 1))
	f.Add(bytes.Replace(good, []byte("shares: 3"), []byte("shares: 32"), 1))
	f.Add(bytes.Replace(good, []byte("value: 4"), []byte("value: 5"), 1))
	f.Add(bytes.Replace(good, []byte("commitments: 1"), []byte("commitments: 2"), 1))
	f.Add(bytes.Replace(good, []byte("envelope: 2"), []byte("envelope: 3"), 1))
	f.Add(bytes.Replace(good, []byte("Z\n"), []byte(".1Z\n"), 1))
	f.Add(bytes.ToUpper(good))

	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseShare(b)
		if err != nil {
			if s != nil {
				t.Fatal("ParseShare returned a share and an error")
			}
			if hexRun.MatchString(err.Error()) {
				t.Fatalf("error %q echoes hex", err)
			}
			return
		}
		out, err := s.MarshalText()
		if err != nil {
			t.Fatalf("MarshalText of a parsed share: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs:\n%q\n%q", b, out)
		}
		again, err := ParseShare(out)
		if err != nil || !sameShare(s, again) {
			t.Fatalf("re-parse: %v", err)
		}
	})
}
