package webui

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func testSealer(t testing.TB) *sealer {
	s, err := newSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenRoundTripAndRefusals(t *testing.T) {
	s := testSealer(t)
	in := grant{SID: "abc", FP: "fp", ID: strings.Repeat("a", 32), Purpose: "care", Reason: "akut bröstsmärta", Exp: 42}
	tok, err := s.seal("audio", in)
	if err != nil {
		t.Fatal(err)
	}
	var out grant
	if err := s.open("audio", tok, &out); err != nil || out != in {
		t.Fatalf("open: %+v, %v; want %+v", out, err, in)
	}
	if strings.Contains(tok, "care") || strings.Contains(tok, "akut") {
		t.Error("the token shows its contents")
	}
	// Another kind, one changed character, a truncation, another key, an
	// oversized token: none opens.
	other, _ := newSealer(bytes.Repeat([]byte{8}, 32))
	flip := []byte(tok)
	flip[len(flip)/2] ^= 1
	for name, try := range map[string]func() error{
		"kind":      func() error { return s.open("session", tok, &out) },
		"flipped":   func() error { return s.open("audio", string(flip), &out) },
		"truncated": func() error { return s.open("audio", tok[:20], &out) },
		"empty":     func() error { return s.open("audio", "", &out) },
		"other key": func() error { return other.open("audio", tok, &out) },
		"too long":  func() error { return s.open("audio", strings.Repeat("A", maxToken+1), &out) },
	} {
		if err := try(); err != errBadToken {
			t.Errorf("%s: %v, want errBadToken", name, err)
		}
	}
	if _, err := newSealer(make([]byte, 16)); err == nil {
		t.Error("a 16-byte key was accepted")
	}
	// Two seals of the same value differ (random nonce).
	tok2, _ := s.seal("audio", in)
	if tok2 == tok {
		t.Error("sealing is deterministic")
	}
	a1, a2, b := s.mac("csrf", "a"), s.mac("csrf", "a"), s.mac("csrf", "b")
	if a1 == b || a1 != a2 {
		t.Error("mac is not a function of its input")
	}
}

func TestStyleHashAndDuration(t *testing.T) {
	// The CSP hash of "a{}" (openssl dgst -sha256 -binary | base64).
	if got := styleHash([]byte("<html><style>a{}</style>")); got != "sha256-X1RutGBrXCt9KkSaXMK7tHftWiRscFHOhxsS8tv8hBk=" {
		t.Errorf("styleHash: %s", got)
	}
	if got := styleHash([]byte("<html>")); got != "none" {
		t.Errorf("styleHash without style: %s", got)
	}
	for d, want := range map[time.Duration]string{0: "00:00", 20 * time.Second: "00:20", 20 * time.Minute: "20:00",
		time.Hour + 2*time.Minute + 3*time.Second: "1:02:03", 1499 * time.Millisecond: "00:01"} {
		if got := duration(d); got != want {
			t.Errorf("duration(%v) = %s, want %s", d, got, want)
		}
	}
}

// FuzzOpen: tokens come from browsers (cookies, audio links, form fields);
// whatever they hold, open fails cleanly or yields a value, and a token
// that opens stops opening when any one bit of it changes.
func FuzzOpen(f *testing.F) {
	s := testSealer(f)
	tok, _ := s.seal("session", session{ID: "x", FP: "y", Issued: 1, Last: 2})
	f.Add(tok)
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, in string) {
		var v session
		if s.open("session", in, &v) != nil {
			return
		}
		raw, err := base64.RawURLEncoding.DecodeString(in)
		if err != nil {
			t.Fatalf("a token that is not base64url opened: %q", in)
		}
		for i := range raw {
			raw[i] ^= 0x10
			if s.open("session", base64.RawURLEncoding.EncodeToString(raw), &v) == nil {
				t.Fatalf("a token with byte %d changed opened", i)
			}
			raw[i] ^= 0x10
		}
	})
}
