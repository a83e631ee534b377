//go:build !cgo

package hsm

import (
	"context"

	"filippo.io/age"
)

// Token is a logged-in session with one PKCS#11 token. This binary was
// built without cgo, so there never is one: Open returns ErrUnavailable.
type Token struct{}

// Open returns ErrUnavailable: PKCS#11 needs cgo.
func Open(modulePath, tokenLabel, pin string) (*Token, error) { return nil, ErrUnavailable }

// Close returns nil; there is nothing to close without cgo.
func (t *Token) Close() error { return nil }

// EnsureKEK returns ErrUnavailable: PKCS#11 needs cgo.
func (t *Token) EnsureKEK(ctx context.Context, label string) (created bool, err error) {
	return false, ErrUnavailable
}

// KEK returns ErrUnavailable: PKCS#11 needs cgo.
func (t *Token) KEK(label string) (*KEK, error) { return nil, ErrUnavailable }

// KEK is a key-encryption key held by a PKCS#11 token. Without cgo every
// method returns ErrUnavailable.
type KEK struct{}

var (
	_ age.Recipient           = (*KEK)(nil)
	_ age.RecipientWithLabels = (*KEK)(nil)
	_ age.Identity            = (*KEK)(nil)
)

// Wrap returns ErrUnavailable: PKCS#11 needs cgo.
func (k *KEK) Wrap(fileKey []byte) ([]*age.Stanza, error) { return nil, ErrUnavailable }

// WrapWithLabels returns ErrUnavailable: PKCS#11 needs cgo.
func (k *KEK) WrapWithLabels(fileKey []byte) ([]*age.Stanza, []string, error) {
	return nil, nil, ErrUnavailable
}

// Unwrap returns ErrUnavailable: PKCS#11 needs cgo.
func (k *KEK) Unwrap(stanzas []*age.Stanza) ([]byte, error) { return nil, ErrUnavailable }
