//go:build cgo

package hsm

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"unicode/utf8"
)

// Sizes of the stanza body (docs/hsm.md): IV || encrypted file key || tag.
const (
	ivSize      = 12
	fileKeySize = 16 // age file keys are 16 bytes
	tagSize     = 16
	bodySize    = ivSize + fileKeySize + tagSize
	maxLabelLen = 64
)

// checkLabel rejects key labels that cannot be used: empty, too long or
// not UTF-8 (PKCS#11 labels are UTF-8).
func checkLabel(label string) error {
	if label == "" || len(label) > maxLabelLen || !utf8.ValidString(label) {
		return fmt.Errorf("hsm: key label must be 1 to %d bytes of UTF-8", maxLabelLen)
	}
	return nil
}

// keyID is the stanza's only argument: base64 (standard alphabet, no
// padding) of the first 16 bytes of SHA-256(label). It lets Unwrap skip
// stanzas for other keys without a round trip to the token, and reveals
// nothing secret.
func keyID(label string) string {
	h := sha256.Sum256([]byte(label))
	return base64.RawStdEncoding.EncodeToString(h[:16])
}

// additionalData binds a wrapped file key to the stanza type and the key
// label: StanzaType || 0x00 || label.
func additionalData(label string) []byte {
	return append([]byte(StanzaType+"\x00"), label...)
}
