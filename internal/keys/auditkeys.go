package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// The audit log's checkpoint signing keys (docs/audit-log.md): Ed25519
// keys in the signed-note form of golang.org/x/mod/sumdb/note, all named
// after the log's origin. Every checkpoint is signed by every key in the
// list, so a rotation adds a key first and retires the old one later.

// auditOriginPrefix starts every log origin.
const auditOriginPrefix = "callvault.audit/"

// ErrLastAuditKey is returned when retiring the only audit signing key.
var ErrLastAuditKey = errors.New("keys: the last audit signing key cannot be retired; rotate first")

// EnsureAuditKeys gives a keyring made before the audit log had signed
// checkpoints an origin and one signing key. It reports whether it changed
// the keyring (which the caller must then save).
func (k *Keyring) EnsureAuditKeys() (bool, error) {
	if k.auditOrigin != "" && len(k.auditSigners) > 0 {
		return false, nil
	}
	if k.auditOrigin == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return false, fmt.Errorf("keys: audit origin: %w", err)
		}
		k.auditOrigin = auditOriginPrefix + hex.EncodeToString(b[:])
	}
	if len(k.auditSigners) == 0 {
		if _, err := k.RotateAuditKey(); err != nil {
			return false, err
		}
	}
	return true, nil
}

// AuditOrigin is the audit log's origin, the first line of its checkpoints.
func (k *Keyring) AuditOrigin() string { return k.auditOrigin }

// RotateAuditKey adds a new signing key and returns its verifier key. From
// then on checkpoints carry its signature beside the older keys'.
func (k *Keyring) RotateAuditKey() (string, error) {
	if k.auditOrigin == "" {
		return "", errors.New("keys: rotate audit key: the keyring has no audit origin")
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, k.auditOrigin)
	if err != nil {
		return "", fmt.Errorf("keys: rotate audit key: %w", err)
	}
	k.auditSigners = append(k.auditSigners, skey)
	return vkey, nil
}

// RetireAuditKey destroys the signing key whose ID (8 hex digits, as in
// the verifier key) is keyID. Its verifier key stays in the keyring, so the
// checkpoints it signed still verify. It refuses to retire the last key.
func (k *Keyring) RetireAuditKey(keyID string) error {
	for i, s := range k.auditSigners {
		signer, err := note.NewSigner(s)
		if err != nil {
			return fmt.Errorf("keys: audit key %d: %w", i, err)
		}
		if fmt.Sprintf("%08x", signer.KeyHash()) != strings.ToLower(keyID) {
			continue
		}
		if len(k.auditSigners) == 1 {
			return ErrLastAuditKey
		}
		vkey, err := verifierKeyOf(s)
		if err != nil {
			return fmt.Errorf("keys: audit key %d: %w", i, err)
		}
		k.auditRetired = append(k.auditRetired, vkey)
		k.auditSigners = append(k.auditSigners[:i:i], k.auditSigners[i+1:]...)
		return nil
	}
	return fmt.Errorf("keys: no audit signing key with ID %q", keyID)
}

// AuditRetiredKeys returns the verifier keys of retired signing keys,
// oldest first: checkpoints signed before their retirement verify with them.
func (k *Keyring) AuditRetiredKeys() []string { return append([]string(nil), k.auditRetired...) }

// AuditSigners returns a signer for each audit signing key, oldest first.
func (k *Keyring) AuditSigners() ([]note.Signer, error) {
	out := make([]note.Signer, 0, len(k.auditSigners))
	for i, s := range k.auditSigners {
		signer, err := note.NewSigner(s)
		if err != nil {
			return nil, fmt.Errorf("keys: audit key %d: %w", i, err)
		}
		out = append(out, signer)
	}
	return out, nil
}

// AuditVerifierKeys returns the verifier key of each current audit signing
// key, oldest first: the public half, for witnesses and outside verifiers.
func (k *Keyring) AuditVerifierKeys() ([]string, error) {
	out := make([]string, 0, len(k.auditSigners))
	for i, s := range k.auditSigners {
		vkey, err := verifierKeyOf(s)
		if err != nil {
			return nil, fmt.Errorf("keys: audit key %d: %w", i, err)
		}
		out = append(out, vkey)
	}
	return out, nil
}

// verifierKeyOf derives "name+hash+base64(0x01||pub)" from a signer key
// "PRIVATE+KEY+name+hash+base64(0x01||seed)".
func verifierKeyOf(skey string) (string, error) {
	signer, err := note.NewSigner(skey)
	if err != nil {
		return "", err
	}
	rest, ok := strings.CutPrefix(skey, "PRIVATE+KEY+")
	if !ok {
		return "", errors.New("not a signer key")
	}
	// name and hash hold no '+'; the base64 key may.
	parts := strings.SplitN(rest, "+", 3)
	if len(parts) != 3 {
		return "", errors.New("not a signer key")
	}
	pub, err := ed25519PublicFromSignerKey(parts[2])
	if err != nil {
		return "", err
	}
	return note.NewEd25519VerifierKey(signer.Name(), pub)
}

// ed25519PublicFromSignerKey returns the public key of the key part of a
// signer key, base64(0x01 || 32-byte seed).
func ed25519PublicFromSignerKey(b64 string) (ed25519.PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, errors.New("malformed Ed25519 signer key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	clear(raw)
	return pub, nil
}
