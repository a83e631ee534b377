//go:build cgo

package hsm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"filippo.io/age"
	"github.com/miekg/pkcs11"
)

// KEK is a key-encryption key held by a PKCS#11 token. It wraps and
// unwraps age file keys inside the token with CKM_AES_GCM; the key itself
// never leaves the token. It is safe for concurrent use and valid until
// its Token is closed.
type KEK struct {
	tok    *Token              // immutable
	label  string              // CKA_LABEL of the key, immutable
	id     string              // keyID(label), immutable
	handle pkcs11.ObjectHandle // immutable
}

var (
	_ age.Recipient           = (*KEK)(nil)
	_ age.RecipientWithLabels = (*KEK)(nil)
	_ age.Identity            = (*KEK)(nil)
)

// Wrap implements [age.Recipient]: it encrypts the 16-byte file key in the
// token and returns one stanza of type StanzaType (docs/hsm.md).
//
// Use it through [age.Encrypt], which calls WrapWithLabels instead, so the
// KEK cannot be mixed with other recipients.
func (k *KEK) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	if len(fileKey) != fileKeySize {
		return nil, fmt.Errorf("hsm: wrap: file key is %d bytes, want %d", len(fileKey), fileKeySize)
	}
	iv := make([]byte, ivSize)
	if _, err := rand.Read(iv); err != nil {
		return nil, fmt.Errorf("hsm: wrap: %w", err)
	}
	var body []byte
	err := k.tok.do(context.Background(), func(s pkcs11.SessionHandle) error {
		var err error
		body, err = gcmSeal(k.tok.ctx, s, k.handle, iv, additionalData(k.label), fileKey)
		return err
	})
	if errors.Is(err, ErrClosed) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("hsm: wrap file key with key %q: %w", k.label, err)
	}
	return []*age.Stanza{{Type: StanzaType, Args: []string{k.id}, Body: body}}, nil
}

// WrapWithLabels implements [age.RecipientWithLabels] with a fresh random
// label, so [age.Encrypt] refuses to mix a KEK with any other recipient
// (another KEK included), as it does for passphrases.
//
// The KEK is a symmetric key: a file whose only stanza it can unwrap must
// have been made by someone holding the token. The keyring relies on that
// (nobody without the token can plant a keyring of their own keys). A
// second recipient would learn the file key and could make a different
// file with the same stanza, so the KEK must be the only recipient.
func (k *KEK) WrapWithLabels(fileKey []byte) ([]*age.Stanza, []string, error) {
	s, err := k.Wrap(fileKey)
	if err != nil {
		return nil, nil, err
	}
	random := make([]byte, 16)
	if _, err := rand.Read(random); err != nil {
		return nil, nil, fmt.Errorf("hsm: wrap: %w", err)
	}
	return s, []string{hex.EncodeToString(random)}, nil
}

// Unwrap implements [age.Identity]. It returns an error wrapping
// [age.ErrIncorrectIdentity] when no stanza is for this key: none has type
// StanzaType, the stanza names another key label, or the token's key does
// not authenticate it (a key with the same label on another token, or a
// damaged stanza; the two cannot be told apart). Any other error is fatal:
// a malformed stanza, a StanzaType stanza that is not the only one in the
// header, or a token failure.
func (k *KEK) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	for _, s := range stanzas {
		if s.Type == StanzaType && len(stanzas) != 1 {
			return nil, errors.New("hsm: a " + StanzaType + " stanza must be the only one in the header")
		}
	}
	for _, s := range stanzas {
		if s.Type != StanzaType {
			continue
		}
		if len(s.Args) != 1 || len(s.Body) != bodySize {
			return nil, errors.New("hsm: invalid " + StanzaType + " stanza")
		}
		if s.Args[0] != k.id {
			return nil, fmt.Errorf("%w: the stanza is for another key label", age.ErrIncorrectIdentity)
		}
		return k.unwrap(s.Body)
	}
	return nil, age.ErrIncorrectIdentity
}

func (k *KEK) unwrap(body []byte) ([]byte, error) {
	var fileKey []byte
	err := k.tok.do(context.Background(), func(s pkcs11.SessionHandle) error {
		var err error
		fileKey, err = gcmOpen(k.tok.ctx, s, k.handle, additionalData(k.label), body)
		return err
	})
	if errors.Is(err, errNotAuthentic) {
		return nil, fmt.Errorf("%w: key %q on token %q did not authenticate the stanza", age.ErrIncorrectIdentity, k.label, k.tok.label)
	}
	if errors.Is(err, ErrClosed) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("hsm: unwrap file key with key %q: %w", k.label, err)
	}
	if len(fileKey) != fileKeySize {
		clear(fileKey)
		return nil, errors.New("hsm: invalid " + StanzaType + " stanza: wrong file key size")
	}
	return fileKey, nil
}

// errNotAuthentic is returned by gcmOpen when the token rejects the
// ciphertext: a wrong key, or a damaged IV, ciphertext, tag or AAD.
var errNotAuthentic = errors.New("hsm: ciphertext not authentic")

// gcmSeal encrypts plaintext with AES-GCM (128-bit tag) under key h in the
// token and returns IV || ciphertext || tag.
func gcmSeal(c *pkcs11.Ctx, s pkcs11.SessionHandle, h pkcs11.ObjectHandle, iv, aad, plaintext []byte) ([]byte, error) {
	p := pkcs11.NewGCMParams(iv, aad, tagSize*8)
	defer p.Free() // only after Encrypt: the module may write the IV back
	if err := c.EncryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, p)}, h); err != nil {
		return nil, fmt.Errorf("AES-GCM encrypt init: %w", err)
	}
	ct, err := c.Encrypt(s, plaintext)
	if err != nil {
		return nil, fmt.Errorf("AES-GCM encrypt: %w", err)
	}
	// Some modules ignore the caller's IV and generate their own, which
	// they write back into the parameters. Store the IV that was used.
	used := p.IV()
	if len(used) != ivSize || len(ct) != len(plaintext)+tagSize {
		return nil, errors.New("AES-GCM encrypt: the module returned an unexpected IV or ciphertext size")
	}
	return append(used, ct...), nil
}

// gcmOpen decrypts what gcmSeal returned. It returns errNotAuthentic if
// the token rejects the ciphertext.
func gcmOpen(c *pkcs11.Ctx, s pkcs11.SessionHandle, h pkcs11.ObjectHandle, aad, sealed []byte) ([]byte, error) {
	if len(sealed) < ivSize+tagSize {
		return nil, errNotAuthentic
	}
	p := pkcs11.NewGCMParams(sealed[:ivSize], aad, tagSize*8)
	defer p.Free()
	if err := c.DecryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, p)}, h); err != nil {
		return nil, fmt.Errorf("AES-GCM decrypt init: %w", err)
	}
	pt, err := c.Decrypt(s, sealed[ivSize:])
	switch {
	case err == nil:
		return pt, nil
	// PKCS#11 says a bad tag is CKR_ENCRYPTED_DATA_INVALID; SoftHSM2 2.6
	// returns CKR_GENERAL_ERROR. Session, login and device errors stay
	// fatal, so a broken token is not reported as a wrong key.
	case isCKR(err, pkcs11.CKR_ENCRYPTED_DATA_INVALID), isCKR(err, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE),
		isCKR(err, pkcs11.CKR_GENERAL_ERROR), isCKR(err, pkcs11.CKR_FUNCTION_FAILED):
		return nil, errNotAuthentic
	}
	return nil, fmt.Errorf("AES-GCM decrypt: %w", err)
}
