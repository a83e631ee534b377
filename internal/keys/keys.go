// Package keys holds callvault's key material and says how it is unlocked.
//
// A Keyring holds, for each archive key epoch, an age ML-KEM-768+X25519
// hybrid identity (recordings' file keys are wrapped to its public
// recipient); the key of the keyed blind indexes that let the catalog and
// the audit log look up a patient without storing the personnummer; and the
// data key that encrypts personal data inside audit entries.
//
// At rest the keyring is one file, an age file encrypted to a key-encryption
// key (KEK): a hybrid age identity kept in a separate file, or a passphrase
// (scrypt). Capture hosts never see the keyring: they get the public file
// written by WritePublic, which holds recipients only.
package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"

	"callvault/internal/atomicfile"
)

// ErrLocked is returned when the keyring cannot be unlocked with the
// identities given (wrong KEK file or passphrase).
var ErrLocked = errors.New("keys: keyring cannot be unlocked with the given key-encryption key")

// ErrNoEpoch is returned by Identity for an epoch the keyring does not hold
// (never created, or destroyed after rotation).
var ErrNoEpoch = errors.New("keys: no such key epoch")

// Epoch is one generation of the archive key.
type Epoch struct {
	ID        int
	Created   time.Time
	Recipient *age.HybridRecipient
	identity  *age.HybridIdentity
}

// Keyring is unlocked key material. It never prints its secrets: String
// and the fmt verbs show only epoch numbers.
type Keyring struct {
	epochs   []Epoch // ascending by ID; the last is current
	indexKey [32]byte
	dataKey  [32]byte

	auditOrigin  string   // the audit log's origin (docs/audit-log.md)
	auditSigners []string // note signer keys, oldest first
	auditRetired []string // verifier keys of retired signers, oldest first
}

// Generate returns a new keyring with one archive key epoch (ID 1) and fresh
// random index and data keys.
func Generate(now time.Time) (*Keyring, error) {
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		return nil, fmt.Errorf("keys: generate archive key: %w", err)
	}
	k := &Keyring{epochs: []Epoch{{ID: 1, Created: now.UTC(), Recipient: id.Recipient(), identity: id}}}
	if _, err := rand.Read(k.indexKey[:]); err != nil {
		return nil, fmt.Errorf("keys: generate index key: %w", err)
	}
	if _, err := rand.Read(k.dataKey[:]); err != nil {
		return nil, fmt.Errorf("keys: generate data key: %w", err)
	}
	if _, err := k.EnsureAuditKeys(); err != nil {
		return nil, err
	}
	return k, nil
}

// Current returns the epoch new recordings are wrapped to.
func (k *Keyring) Current() Epoch { return k.epochs[len(k.epochs)-1] }

// Identity returns the private identity of epoch id, for unwrapping file keys.
func (k *Keyring) Identity(id int) (age.Identity, error) {
	for _, e := range k.epochs {
		if e.ID == id {
			return e.identity, nil
		}
	}
	return nil, fmt.Errorf("%w: %d", ErrNoEpoch, id)
}

// BlindIndex returns the keyed blind index of value in the namespace kind
// (e.g. "patient", "caller"): HMAC-SHA256 under the index key of
// kind || 0x00 || value. Equal inputs give equal indexes; without the key
// the index reveals nothing about value.
func (k *Keyring) BlindIndex(kind, value string) []byte {
	m := hmac.New(sha256.New, k.indexKey[:])
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return m.Sum(nil)
}

// SealData encrypts personal data stored outside recordings (audit entries)
// with AES-256-GCM under a subkey of the data key derived for label; the
// label is also the additional data, so a value cannot be moved to another
// field. Output: 12-byte random nonce || ciphertext || tag.
func (k *Keyring) SealData(label string, plaintext []byte) ([]byte, error) {
	aead, err := k.dataAEAD(label)
	if err != nil {
		return nil, err
	}
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("keys: seal data: %w", err)
	}
	return aead.Seal(out, out, plaintext, []byte(label)), nil
}

// OpenData decrypts what SealData returned for the same label.
func (k *Keyring) OpenData(label string, sealed []byte) ([]byte, error) {
	aead, err := k.dataAEAD(label)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("keys: open data: too short")
	}
	p, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(label))
	if err != nil {
		return nil, fmt.Errorf("keys: open data: %w", err)
	}
	return p, nil
}

func (k *Keyring) dataAEAD(label string) (cipher.AEAD, error) {
	sub, err := hkdf.Key(sha256.New, k.dataKey[:], nil, "callvault/keys/v1 data "+label, 32)
	if err != nil {
		return nil, fmt.Errorf("keys: derive data key: %w", err)
	}
	b, err := aes.NewCipher(sub)
	if err != nil {
		return nil, fmt.Errorf("keys: data cipher: %w", err)
	}
	return cipher.NewGCM(b)
}

// String describes the keyring without any secret.
func (k *Keyring) String() string {
	ids := make([]string, len(k.epochs))
	for i, e := range k.epochs {
		ids[i] = fmt.Sprint(e.ID)
	}
	return "keys.Keyring(epochs " + strings.Join(ids, ",") + fmt.Sprintf(", %d audit keys, secrets redacted)", len(k.auditSigners))
}

// GoString is String, so %#v does not reveal secrets either.
func (k *Keyring) GoString() string { return k.String() }

// fileFormat is the JSON inside the encrypted keyring file (docs/keys.md).
type fileFormat struct {
	Version  int         `json:"version"`
	Epochs   []fileEpoch `json:"epochs"`
	IndexKey []byte      `json:"index_key"`
	DataKey  []byte      `json:"data_key"`
	// Audit log signing (added after version 1 shipped; absent in older
	// keyrings, which EnsureAuditKeys completes).
	AuditOrigin  string   `json:"audit_origin,omitempty"`
	AuditSigners []string `json:"audit_signers,omitempty"`
	AuditRetired []string `json:"audit_retired,omitempty"`
}

type fileEpoch struct {
	ID       int       `json:"id"`
	Created  time.Time `json:"created"`
	Identity string    `json:"identity"`
}

// Marshal encrypts the keyring to kek and returns the file's bytes.
func (k *Keyring) Marshal(kek age.Recipient) ([]byte, error) {
	plain, err := k.MarshalPlaintext()
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, kek)
	if err != nil {
		return nil, fmt.Errorf("keys: encrypt keyring: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return nil, fmt.Errorf("keys: encrypt keyring: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("keys: encrypt keyring: %w", err)
	}
	return buf.Bytes(), nil
}

// MarshalPlaintext returns the keyring's secret contents unencrypted (the
// JSON inside the keyring file), for key escrow. The caller must protect
// and clear it.
func (k *Keyring) MarshalPlaintext() ([]byte, error) {
	f := fileFormat{Version: 1, IndexKey: k.indexKey[:], DataKey: k.dataKey[:],
		AuditOrigin: k.auditOrigin, AuditSigners: k.auditSigners, AuditRetired: k.auditRetired}
	for _, e := range k.epochs {
		f.Epochs = append(f.Epochs, fileEpoch{ID: e.ID, Created: e.Created, Identity: e.identity.String()})
	}
	plain, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("keys: marshal: %w", err)
	}
	return plain, nil
}

// Unmarshal decrypts a keyring file with the KEK identities.
func Unmarshal(data []byte, kek ...age.Identity) (*Keyring, error) {
	r, err := age.Decrypt(bytes.NewReader(data), kek...)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("keys: decrypt keyring: %w", err)
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("keys: decrypt keyring: %w", err)
	}
	defer clear(plain)
	return UnmarshalPlaintext(plain)
}

// UnmarshalPlaintext parses what MarshalPlaintext returned.
func UnmarshalPlaintext(plain []byte) (*Keyring, error) {
	var f fileFormat
	if err := json.Unmarshal(plain, &f); err != nil {
		return nil, fmt.Errorf("keys: keyring contents: %w", err)
	}
	if f.Version != 1 || len(f.Epochs) == 0 || len(f.IndexKey) != 32 || len(f.DataKey) != 32 {
		return nil, errors.New("keys: keyring contents: unsupported version or missing keys")
	}
	k := &Keyring{auditOrigin: f.AuditOrigin, auditSigners: f.AuditSigners, auditRetired: f.AuditRetired}
	for i, s := range k.auditSigners {
		if _, err := verifierKeyOf(s); err != nil {
			return nil, fmt.Errorf("keys: keyring audit key %d: %w", i, err)
		}
	}
	copy(k.indexKey[:], f.IndexKey)
	copy(k.dataKey[:], f.DataKey)
	for i, fe := range f.Epochs {
		if i > 0 && fe.ID <= f.Epochs[i-1].ID {
			return nil, errors.New("keys: keyring contents: epochs out of order")
		}
		id, err := age.ParseHybridIdentity(fe.Identity)
		if err != nil {
			return nil, fmt.Errorf("keys: keyring epoch %d: %w", fe.ID, err)
		}
		k.epochs = append(k.epochs, Epoch{ID: fe.ID, Created: fe.Created, Recipient: id.Recipient(), identity: id})
	}
	return k, nil
}

// PublicFile is the text of the public key file for capture hosts: one
// line per epoch, "epoch <ID> <recipient>", current epoch last.
func (k *Keyring) PublicFile() []byte {
	var b strings.Builder
	b.WriteString("# callvault archive public keys: capture hosts wrap file keys to the last line\n")
	for _, e := range k.epochs {
		fmt.Fprintf(&b, "epoch %d %s\n", e.ID, e.Recipient)
	}
	return []byte(b.String())
}

// NewKEK generates a key-encryption key: a hybrid age identity to keep in a
// file apart from the keyring (or on removable media, or in an HSM later).
func NewKEK() (*age.HybridIdentity, error) {
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		return nil, fmt.Errorf("keys: generate kek: %w", err)
	}
	return id, nil
}

// LoadKEKFile reads age identities from a KEK file.
func LoadKEKFile(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keys: kek file: %w", err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("keys: kek file %s: %w", filepath.Base(path), err)
	}
	return ids, nil
}

// Passphrase returns the identity and recipient for a passphrase-protected
// keyring (age scrypt).
func Passphrase(p string) (age.Identity, age.Recipient, error) {
	if len(p) < 12 {
		return nil, nil, errors.New("keys: passphrase must be at least 12 characters")
	}
	r, err := age.NewScryptRecipient(p)
	if err != nil {
		return nil, nil, fmt.Errorf("keys: passphrase: %w", err)
	}
	id, err := age.NewScryptIdentity(p)
	if err != nil {
		return nil, nil, fmt.Errorf("keys: passphrase: %w", err)
	}
	return id, r, nil
}

// WriteFileAtomic writes data to path with mode 0600 through a temporary
// file in the same directory, fsync and rename, so a crash leaves either
// the old file or the new one. Used for key material and its public file.
func WriteFileAtomic(path string, data []byte) error {
	if err := atomicfile.Write(path, data); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	return nil
}
