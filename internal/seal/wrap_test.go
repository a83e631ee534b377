package seal

import (
	"bytes"
	"errors"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"
)

func TestWrapUnwrap(t *testing.T) {
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := NewFileKey()
	wrapped, err := Wrap(key, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(wrapped, []byte("age-encryption.org/v1\n-> mlkem768x25519 ")) {
		t.Fatalf("not a binary age file to a hybrid recipient: %q", wrapped[:40])
	}
	hdr, _ := age.ExtractHeader(bytes.NewReader(wrapped))
	if len(wrapped) != len(hdr)+64 {
		t.Fatalf("wrapped key is %d bytes, header %d", len(wrapped), len(hdr))
	}
	got, err := Unwrap(wrapped, id)
	if err != nil || got.k != key.k {
		t.Fatalf("Unwrap = %v", err)
	}
	again, _ := Wrap(key, id.Recipient())
	if bytes.Equal(again, wrapped) {
		t.Error("two wraps are equal")
	}

	// A retired epoch: no identity matches, which is neither ErrAuth nor ErrFormat.
	wrong, _ := age.GenerateHybridIdentity()
	x, _ := age.GenerateX25519Identity()
	_, err = Unwrap(wrapped, wrong, x)
	if _, ok := errors.AsType[*age.NoIdentityMatchError](err); !ok || !errors.Is(err, age.ErrIncorrectIdentity) || errors.Is(err, ErrAuth) || errors.Is(err, ErrFormat) {
		t.Errorf("wrong identity: %v", err)
	}
	if got, err := Unwrap(wrapped, wrong, id); err != nil || got.k != key.k {
		t.Errorf("second identity matches: %v", err)
	}

	tampered := bytes.Clone(wrapped)
	tampered[len(tampered)-1] ^= 1 // payload tag
	if _, err := Unwrap(tampered, id); !errors.Is(err, ErrAuth) {
		t.Errorf("tampered payload: %v", err)
	}
	tampered = bytes.Clone(wrapped)
	i := bytes.LastIndex(hdr, []byte("--- ")) + 4
	for !('a' <= hdr[i] && hdr[i] <= 'z' || 'A' <= hdr[i] && hdr[i] <= 'Z') {
		i++
	}
	tampered[i] ^= 0x20 // a base64 letter of the header MAC changes case
	if _, err := Unwrap(tampered, id); !errors.Is(err, ErrAuth) {
		t.Errorf("tampered header MAC: %v", err)
	}

	var armored bytes.Buffer
	a := armor.NewWriter(&armored)
	a.Write(wrapped)
	a.Close()
	var long bytes.Buffer
	w, _ := age.Encrypt(&long, id.Recipient())
	w.Write(make([]byte, 33))
	w.Close()
	for name, b := range map[string][]byte{
		"empty":        nil,
		"garbage":      []byte("not an age file at all"),
		"truncated":    wrapped[:len(wrapped)-1],
		"extended":     append(bytes.Clone(wrapped), 0),
		"armored":      armored.Bytes(),
		"33-byte body": long.Bytes(),
	} {
		if _, err := Unwrap(b, id); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Unwrap(wrapped); err == nil {
		t.Error("no identities accepted")
	}
	if _, err := Wrap(key, nil); err == nil {
		t.Error("nil recipient accepted")
	}
}

func testRecipient(t *testing.T) age.Recipient {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id.Recipient()
}
