// Package hsm keeps callvault's key-encryption key (KEK) in a PKCS#11 token
// (a hardware security module; SoftHSM2 in tests).
//
// The KEK is an AES-256 secret key generated on the token as sensitive and
// non-extractable: its value never leaves the token. A [KEK] is both an
// [age.Recipient] and an [age.Identity], so it encrypts and decrypts the
// keyring file of package keys (which holds the archive private keys and the
// audit signing keys) the same way a KEK file or a passphrase does. The
// stanza it writes into the age header is specified in docs/hsm.md.
//
// The PKCS#11 code needs cgo. A binary built with CGO_ENABLED=0 still
// compiles this package, but [Open] then returns [ErrUnavailable].
package hsm

import "errors"

// StanzaType is the type of the age recipient stanza a [KEK] writes
// (docs/hsm.md). A different mechanism or layout gets a new type.
const StanzaType = "callvault-pkcs11"

// The errors a caller must tell apart. Every other error is wrapped with
// context and means the token or the module could not do what was asked.
// No error returned by this package contains a PIN or key material.
var (
	// ErrUnavailable is returned by Open in a binary built without cgo.
	ErrUnavailable = errors.New("hsm: this binary was built without cgo; PKCS#11 is unavailable")

	// ErrTokenNotFound is returned by Open when no slot holds an
	// initialized token with the given label.
	ErrTokenNotFound = errors.New("hsm: no PKCS#11 token with that label")

	// ErrPINIncorrect is returned by Open when the token rejects the user
	// PIN. Tokens lock the PIN after a few failures: do not retry blindly.
	ErrPINIncorrect = errors.New("hsm: the token rejected the user PIN")

	// ErrPINLocked is returned by Open when the token's user PIN is locked
	// (too many wrong PINs); the security officer must reset it.
	ErrPINLocked = errors.New("hsm: the token's user PIN is locked")

	// ErrKEKNotFound is returned by Token.KEK when the token holds no
	// secret key with the label (create it with Token.EnsureKEK).
	ErrKEKNotFound = errors.New("hsm: no key-encryption key with that label")

	// ErrClosed is returned by the methods of a closed Token and of the
	// KEKs it returned.
	ErrClosed = errors.New("hsm: token is closed")
)
