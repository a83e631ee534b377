package escrow

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/secretsharing"
)

// Sizes of the format (docs/escrow.md, "Constants").
const (
	scalarSize  = 32 // ristretto255 scalar encoding
	elementSize = 32 // ristretto255 element encoding
	idSize      = 16 // escrow ID, raw bytes
	keySize     = 32 // AES-256
	nonceSize   = 12
	tagSize     = 16
	minEnvelope = nonceSize + 1 + tagSize
	maxEnvelope = nonceSize + MaxSecretSize + tagSize
	keyInfo     = "callvault/escrow/v1 key"
)

// suite is the group of the escrow scalar.
func suite() group.Group { return group.Ristretto255 }

// dealing is one run of the dealer: the share values, the commitments, the
// escrow ID and the escrow key. It exists only inside Split.
type dealing struct {
	values      [][]byte
	commitments [][]byte
	id          []byte
	key         []byte
}

func (d *dealing) escrowID() string { return hex.EncodeToString(d.id) }

// deal draws a fresh escrow scalar, shares it k-of-n with Feldman
// commitments and derives the escrow key from it.
func deal(n, k int) (*dealing, error) {
	s := suite().RandomScalar(rand.Reader)
	ss := secretsharing.New(rand.Reader, uint(k-1), s)
	d := &dealing{values: make([][]byte, n)}
	var err error
	if d.commitments, err = encodeElements(ss.CommitSecret()); err != nil {
		return nil, err
	}
	d.id = commitmentID(d.commitments)
	id := suite().NewScalar()
	for i := range d.values {
		sh := ss.ShareWithID(id.SetUint64(uint64(i + 1)))
		if d.values[i], err = sh.Value.MarshalBinary(); err != nil {
			return nil, fmt.Errorf("escrow: encoding a share value: %w", err)
		}
	}
	if d.key, err = deriveKey(s); err != nil {
		return nil, err
	}
	return d, nil
}

func encodeElements(es []group.Element) ([][]byte, error) {
	out := make([][]byte, len(es))
	for i, e := range es {
		b, err := e.MarshalBinaryCompress()
		if err != nil {
			return nil, fmt.Errorf("escrow: encoding a commitment: %w", err)
		}
		out[i] = b
	}
	return out, nil
}

// commitmentID is SHA-256 over the encoded commitments, in order, cut to
// 16 bytes: the raw escrow ID.
func commitmentID(commitments [][]byte) []byte {
	h := sha256.New()
	for _, c := range commitments {
		h.Write(c)
	}
	return h.Sum(nil)[:idSize]
}

// deriveKey is HKDF-SHA256 of the escrow scalar's encoding.
func deriveKey(s group.Scalar) ([]byte, error) {
	ikm, err := s.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("escrow: encoding the escrow scalar: %w", err)
	}
	defer clear(ikm)
	key, err := hkdf.Key(sha256.New, ikm, nil, keyInfo, keySize)
	if err != nil {
		return nil, fmt.Errorf("escrow: deriving the key: %w", err)
	}
	return key, nil
}

// newAEAD is AES-256-GCM with a random 12-byte nonce prepended to the
// ciphertext: exactly the envelope layout.
func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("escrow: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("escrow: %w", err)
	}
	return aead, nil
}

// seal makes the envelope: nonce || AES-256-GCM(key, nonce, secret, id).
func seal(key, id, secret []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return aead.Seal(nil, nil, secret, id), nil
}

// open interpolates the escrow scalar from shares (exactly Threshold
// verified shares of one escrow, distinct indices), derives the key and
// opens the envelope.
func open(shares []*Share) ([]byte, error) {
	parts := make([]secretsharing.Share, len(shares))
	for i, s := range shares {
		p, err := s.decodePart()
		if err != nil {
			return nil, err
		}
		parts[i] = p
	}
	scalar, err := secretsharing.Recover(uint(len(shares)-1), parts)
	if err != nil {
		return nil, fmt.Errorf("escrow: interpolating: %w", err)
	}
	key, err := deriveKey(scalar)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	id := commitmentID(shares[0].commitments)
	secret, err := aead.Open(nil, nil, shares[0].envelope, id)
	if err != nil {
		return nil, ErrAuth
	}
	return secret, nil
}

// verify checks that the escrow ID is the hash of the commitments and that
// the share value passes Feldman verification. It assumes checkStructure
// passed.
func (s *Share) verify() error {
	if hex.EncodeToString(commitmentID(s.commitments)) != s.EscrowID {
		return fmt.Errorf("%w: share %d: the escrow ID is not the hash of the commitments", ErrInvalidShare, s.Index)
	}
	part, err := s.decodePart()
	if err != nil {
		return err
	}
	cs, err := decodeElements(s.commitments)
	if err != nil {
		return err
	}
	if !secretsharing.Verify(uint(s.Threshold-1), part, cs) {
		return fmt.Errorf("%w: share %d", ErrInvalidShare, s.Index)
	}
	return nil
}

// decodePart is the share as circl's (ID, Value) pair.
func (s *Share) decodePart() (secretsharing.Share, error) {
	v := suite().NewScalar()
	if err := v.UnmarshalBinary(s.value); err != nil {
		return secretsharing.Share{}, fmt.Errorf("%w: share %d: the value is not a canonical scalar", ErrFormat, s.Index)
	}
	id := suite().NewScalar().SetUint64(uint64(s.Index))
	return secretsharing.Share{ID: id, Value: v}, nil
}

func decodeElements(bs [][]byte) ([]group.Element, error) {
	out := make([]group.Element, len(bs))
	for i, b := range bs {
		e, err := decodeElement(b)
		if err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}

// decodeElement accepts only the canonical encoding of a ristretto255
// element.
func decodeElement(b []byte) (group.Element, error) {
	e := suite().NewElement()
	if err := e.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%w: a commitment is not a ristretto255 element", ErrFormat)
	}
	again, err := e.MarshalBinaryCompress()
	if err != nil || !equal(again, b) {
		return nil, fmt.Errorf("%w: a commitment is not canonically encoded", ErrFormat)
	}
	return e, nil
}

// decodeScalar accepts only the canonical encoding of a scalar.
func decodeScalar(b []byte) error {
	v := suite().NewScalar()
	if err := v.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("%w: the value is not a canonical scalar", ErrFormat)
	}
	again, err := v.MarshalBinary()
	if err != nil || !equal(again, b) {
		return fmt.Errorf("%w: the value is not a canonical scalar", ErrFormat)
	}
	return nil
}
