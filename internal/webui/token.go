package webui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// errBadToken: a cookie or audio link that does not open under the key (or
// under its kind), or whose contents are malformed.
var errBadToken = errors.New("webui: token does not open")

// sealer seals small JSON values into URL-safe tokens with XChaCha20-
// Poly1305 under a key that every replica derives from the keyring, so a
// session cookie or an audio link made by one replica opens on another and
// its contents (a recording ID, an emergency reason) are not readable in
// the browser. The kind is the additional data: a token of one kind never
// opens as another.
type sealer struct {
	key []byte
}

func newSealer(key []byte) (*sealer, error) {
	if len(key) != chacha20poly1305.KeySize {
		return nil, fmt.Errorf("webui: session key must be %d bytes, got %d", chacha20poly1305.KeySize, len(key))
	}
	return &sealer{key: append([]byte(nil), key...)}, nil
}

func (s *sealer) seal(kind string, v any) (string, error) {
	aead, err := chacha20poly1305.NewX(s.key)
	if err != nil {
		return "", err
	}
	pt, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(pt)+aead.Overhead())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, pt, []byte(kind))), nil
}

// maxToken bounds a token's length before any work is done on it.
const maxToken = 4096

func (s *sealer) open(kind, token string, v any) error {
	if len(token) > maxToken {
		return errBadToken
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return errBadToken
	}
	aead, err := chacha20poly1305.NewX(s.key)
	if err != nil {
		return err
	}
	if len(b) < aead.NonceSize()+aead.Overhead() {
		return errBadToken
	}
	pt, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], []byte(kind))
	if err != nil {
		return errBadToken
	}
	if err := json.Unmarshal(pt, v); err != nil {
		return errBadToken
	}
	return nil
}

// mac returns a keyed digest of label and value, base64url: the CSRF token
// of a session is mac("csrf", session ID).
func (s *sealer) mac(label, value string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
