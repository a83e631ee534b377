package seal

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
)

// wrappedPayloadSize is the size of an age v1 payload carrying a file key: a
// 16-byte nonce, then one chunk of 32 bytes and its 16-byte tag.
const wrappedPayloadSize = 16 + fileKeySize + 16

// Wrap encrypts key to recipient r as a binary age v1 file, the form the
// catalog stores. In production r is the archive epoch's hybrid post-quantum
// recipient (*age.HybridRecipient).
func Wrap(key *FileKey, r age.Recipient) ([]byte, error) {
	if err := key.check(); err != nil {
		return nil, fmt.Errorf("seal: wrap: %w", err)
	}
	if r == nil {
		return nil, errors.New("seal: wrap: nil recipient")
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		return nil, fmt.Errorf("seal: wrap: %w", err)
	}
	if _, err := w.Write(key.k[:]); err != nil {
		return nil, fmt.Errorf("seal: wrap: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("seal: wrap: %w", err)
	}
	return buf.Bytes(), nil
}

// Unwrap decrypts a file key wrapped by Wrap with the first of ids that
// matches. Its error wraps ErrFormat if wrapped is not a binary age file
// carrying exactly 32 bytes, *age.NoIdentityMatchError (and
// age.ErrIncorrectIdentity) if no identity matches, and ErrAuth if the age
// header MAC or payload fails authentication.
func Unwrap(wrapped []byte, ids ...age.Identity) (*FileKey, error) {
	if len(ids) == 0 {
		return nil, errors.New("seal: unwrap: no identities")
	}
	hdr, err := age.ExtractHeader(bytes.NewReader(wrapped))
	if err != nil {
		return nil, fmt.Errorf("seal: unwrap: %w: %v", ErrFormat, err)
	}
	if len(wrapped) != len(hdr)+wrappedPayloadSize {
		return nil, fmt.Errorf("seal: unwrap: wrong size for a wrapped file key: %w", ErrFormat)
	}
	pr, err := age.Decrypt(bytes.NewReader(wrapped), ids...)
	if _, ok := errors.AsType[*age.NoIdentityMatchError](err); ok {
		return nil, fmt.Errorf("seal: unwrap: %w", err)
	} else if err != nil {
		return nil, fmt.Errorf("seal: unwrap: %w: %v", ErrAuth, err)
	}
	key := new(FileKey)
	n, err := io.ReadFull(pr, key.k[:])
	if err != nil || n != fileKeySize {
		return nil, fmt.Errorf("seal: unwrap: %w: %v", ErrAuth, err)
	}
	if _, err := pr.Read(make([]byte, 1)); err != io.EOF {
		return nil, fmt.Errorf("seal: unwrap: %w: trailing data", ErrFormat)
	}
	return key, nil
}
