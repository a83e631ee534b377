package seal

import (
	"crypto/rand"
	"errors"
	"fmt"
)

// SealField encrypts plaintext, a field of personal data stored in the
// catalog, under a subkey of k for label (for example "patient.pnr"), which
// must not be empty. The result is 28 bytes longer than plaintext, and opens
// only with the same key and label.
func (k *FileKey) SealField(label string, plaintext []byte) ([]byte, error) {
	var nonce [fieldNonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("seal: seal field: %w", err)
	}
	return k.sealField(label, plaintext, nonce)
}

// sealField is SealField with the nonce given, for deterministic test vectors.
func (k *FileKey) sealField(label string, plaintext []byte, nonce [fieldNonceSize]byte) ([]byte, error) {
	if label == "" {
		return nil, errors.New("seal: seal field: empty label")
	}
	aead, err := k.deriveAEAD(nil, fieldInfo+label)
	if err != nil {
		return nil, fmt.Errorf("seal: seal field: %w", err)
	}
	out := make([]byte, fieldNonceSize, fieldNonceSize+len(plaintext)+tagSize)
	copy(out, nonce[:])
	return aead.Seal(out, nonce[:], plaintext, []byte(label)), nil
}

// OpenField decrypts a field sealed by SealField with the same key and label.
// Its error wraps ErrFormat if sealed is too short to be a sealed field, and
// ErrAuth if it was not sealed under this key and label or was altered.
func (k *FileKey) OpenField(label string, sealed []byte) ([]byte, error) {
	if label == "" {
		return nil, errors.New("seal: open field: empty label")
	}
	if len(sealed) < fieldNonceSize+tagSize {
		return nil, fmt.Errorf("seal: open field: too short: %w", ErrFormat)
	}
	aead, err := k.deriveAEAD(nil, fieldInfo+label)
	if err != nil {
		return nil, fmt.Errorf("seal: open field: %w", err)
	}
	pt, err := aead.Open(nil, sealed[:fieldNonceSize], sealed[fieldNonceSize:], []byte(label))
	if err != nil {
		return nil, fmt.Errorf("seal: open field: %w", ErrAuth)
	}
	return pt, nil
}
