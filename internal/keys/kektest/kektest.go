// Package kektest is the conformance suite for what protects the keyring
// at rest: a key-encryption key (KEK) given as an age recipient to encrypt
// to and identities to unlock with — a key file, a passphrase, an HSM
// token's key (docs/hsm.md). Every implementation runs it:
//
//	func TestKEKConformance(t *testing.T) {
//		kektest.Run(t, func(t *testing.T) kektest.KEK { return newKEK(t) })
//	}
//
// Every test is required; none may be skipped for an implementation.
package kektest

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"callvault/internal/keys"
)

// KEK is one key-encryption key under test.
type KEK struct {
	// Recipient encrypts a keyring to the KEK.
	Recipient age.Recipient
	// Identities unlock what Recipient encrypted.
	Identities []age.Identity
}

// Run runs the suite. newKEK must return a new KEK each call, independent
// of every other one it returned (another key file, another passphrase,
// another key on a token).
func Run(t *testing.T, newKEK func(t *testing.T) KEK) {
	tests := []struct {
		name string
		fn   func(*testing.T, func(*testing.T) KEK)
	}{
		{"RoundTrip", testRoundTrip},
		{"OtherKEKIsLocked", testOtherKEK},
		{"TamperedFileFails", testTampered},
		{"RotateSaveLoad", testRotateSaveLoad},
		{"FreshEncryptionEachTime", testFresh},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newKEK) })
	}
}

func generate(t *testing.T) *keys.Keyring {
	t.Helper()
	kr, err := keys.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// same reports whether a and b hold the same keys: epochs, recipients,
// blind index, data key and audit signer.
func same(t *testing.T, a, b *keys.Keyring) bool {
	t.Helper()
	ea, eb := a.Epochs(), b.Epochs()
	if len(ea) != len(eb) {
		return false
	}
	for i := range ea {
		if ea[i].ID != eb[i].ID || ea[i].Recipient.String() != eb[i].Recipient.String() {
			return false
		}
	}
	if !bytes.Equal(a.BlindIndex("patient", "191212121212"), b.BlindIndex("patient", "191212121212")) {
		return false
	}
	sealed, err := a.SealData("kektest", []byte("synthetic"))
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := b.OpenData("kektest", sealed); err != nil || string(plain) != "synthetic" {
		return false
	}
	va, err := a.AuditVerifierKeys()
	if err != nil {
		t.Fatal(err)
	}
	vb, err := b.AuditVerifierKeys()
	if err != nil {
		t.Fatal(err)
	}
	return len(va) == len(vb) && len(va) > 0 && va[len(va)-1] == vb[len(vb)-1]
}

func marshal(t *testing.T, kr *keys.Keyring, k KEK) []byte {
	t.Helper()
	data, err := kr.Marshal(k.Recipient)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	return data
}

func testRoundTrip(t *testing.T, newKEK func(*testing.T) KEK) {
	k := newKEK(t)
	kr := generate(t)
	data := marshal(t, kr, k)
	if !bytes.HasPrefix(data, []byte("age-encryption.org/v1\n")) {
		t.Fatal("the keyring file is not an age file")
	}
	plain, err := kr.MarshalPlaintext()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, plain[:40]) {
		t.Fatal("the keyring file holds its contents in the clear")
	}
	got, err := keys.Unmarshal(data, k.Identities...)
	if err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if !same(t, kr, got) {
		t.Fatal("the unlocked keyring differs from the one saved")
	}
}

func testOtherKEK(t *testing.T, newKEK func(*testing.T) KEK) {
	k, other := newKEK(t), newKEK(t)
	data := marshal(t, generate(t), k)
	if _, err := keys.Unmarshal(data, other.Identities...); !errors.Is(err, keys.ErrLocked) {
		t.Fatalf("Unmarshal with another KEK: %v, want ErrLocked", err)
	}
}

func testTampered(t *testing.T, newKEK func(*testing.T) KEK) {
	k := newKEK(t)
	data := marshal(t, generate(t), k)
	// One byte of the header's stanza (after the version line), and one
	// of the payload.
	for _, at := range []int{len("age-encryption.org/v1\n") + 12, len(data) - 20} {
		bad := bytes.Clone(data)
		bad[at] ^= 0x01
		if _, err := keys.Unmarshal(bad, k.Identities...); err == nil {
			t.Errorf("a keyring changed at byte %d of %d unlocked", at, len(data))
		}
	}
}

func testRotateSaveLoad(t *testing.T, newKEK func(*testing.T) KEK) {
	k := newKEK(t)
	kr := generate(t)
	if _, err := kr.Rotate(time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.RotateAuditKey(); err != nil {
		t.Fatal(err)
	}
	got, err := keys.Unmarshal(marshal(t, kr, k), k.Identities...)
	if err != nil {
		t.Fatal(err)
	}
	if !same(t, kr, got) || got.Current().ID != 2 {
		t.Fatalf("after rotation: current epoch %d, same %v", got.Current().ID, same(t, kr, got))
	}
	// An epoch destroyed and saved stays destroyed.
	if err := got.DestroyEpoch(1); err != nil {
		t.Fatal(err)
	}
	again, err := keys.Unmarshal(marshal(t, got, k), k.Identities...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Identity(1); !errors.Is(err, keys.ErrNoEpoch) {
		t.Fatalf("destroyed epoch after save and load: %v", err)
	}
}

func testFresh(t *testing.T, newKEK func(*testing.T) KEK) {
	k := newKEK(t)
	kr := generate(t)
	a, b := marshal(t, kr, k), marshal(t, kr, k)
	if bytes.Equal(a, b) {
		t.Fatal("two encryptions of one keyring are identical: the file key or the wrap is not fresh")
	}
}

func testConcurrent(t *testing.T, newKEK func(*testing.T) KEK) {
	k := newKEK(t)
	kr := generate(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				data, err := kr.Marshal(k.Recipient)
				if err != nil {
					t.Errorf("Marshal: %v", err)
					return
				}
				got, err := keys.Unmarshal(data, k.Identities...)
				if err != nil || !same(t, kr, got) {
					t.Errorf("concurrent round trip: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}
