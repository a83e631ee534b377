// Package escrow puts the archive's secret key material in escrow under
// dual control: Split turns the secret into N share files for N custodians
// so that any K of them (K ≥ 2) rebuild it with Recover, and no single
// custodian — nor any K−1 of them — can.
//
// The secret itself is not split. A fresh random scalar of ristretto255 is
// shared with Shamir's scheme and Feldman commitments (so that every share
// is verified before use), the secret is sealed with AES-256-GCM under a key
// derived from that scalar, and every share file carries the sealed
// envelope, so K share files alone are enough to recover. The format is
// specified in docs/escrow.md.
//
// Share files hold secret share values. Nothing in this package puts a share
// value in an error message, in the String form of a Share or in a log/slog
// record of one. MarshalText, and therefore encoding/json, does write it.
package escrow

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Limits of the format (docs/escrow.md, "Constants").
const (
	// MinThreshold is the smallest K: one custodian alone never recovers.
	MinThreshold = 2
	// MaxShares is the largest N.
	MaxShares = 32
	// MaxSecretSize is the largest secret Split accepts, in bytes.
	MaxSecretSize = 512 << 10
	// MaxShareFileSize is the largest share file ParseShare accepts, in bytes.
	MaxShareFileSize = 1 << 20
)

// Errors. Every error returned by this package that concerns a share wraps
// exactly one of these (test with errors.Is).
var (
	// ErrFormat: a share file or share is malformed (syntax, ranges,
	// lengths, counts).
	ErrFormat = errors.New("escrow: malformed share")
	// ErrInvalidShare: a share is well-formed but fails Feldman
	// verification against its commitments, or its escrow ID is not the
	// hash of its commitments.
	ErrInvalidShare = errors.New("escrow: share does not verify against its commitments")
	// ErrMixed: the shares given to Recover belong to different escrows or
	// disagree about the envelope or parameters.
	ErrMixed = errors.New("escrow: shares belong to different escrows")
	// ErrDuplicate: two shares given to Recover have the same index.
	ErrDuplicate = errors.New("escrow: the same share was given twice")
	// ErrNotEnough: fewer shares than the threshold. Recover returns it as
	// a *NotEnoughError when the threshold is known.
	ErrNotEnough = errors.New("escrow: not enough shares")
	// ErrAuth: the envelope does not authenticate under the recovered key.
	ErrAuth = errors.New("escrow: envelope authentication failed")
)

// NotEnoughError reports that Recover was given Have shares of an escrow
// that needs Need. errors.Is(err, ErrNotEnough) holds for it.
type NotEnoughError struct {
	Have, Need int
}

func (e *NotEnoughError) Error() string {
	return fmt.Sprintf("escrow: not enough shares: have %d, need %d", e.Have, e.Need)
}

// Is makes errors.Is(err, ErrNotEnough) true.
func (e *NotEnoughError) Is(target error) bool { return target == ErrNotEnough }

// Share is one custodian's share of an escrow. A *Share returned by Split
// or ParseShare is valid: it verifies against its commitments. The exported
// fields describe it; changing them does not change the share, and a share
// whose fields were changed is refused by MarshalText and Recover.
type Share struct {
	EscrowID  string    // 32 lowercase hex characters naming the escrow set
	Threshold int       // K: shares needed to recover
	Total     int       // N: shares made (a label; not authenticated)
	Index     int       // this share's index, 1 … Total
	Created   time.Time // when the escrow was made, UTC, whole seconds (a label; not authenticated)

	value       []byte   // canonical scalar encoding of the share value, 32 bytes
	commitments [][]byte // Threshold element encodings, 32 bytes each
	envelope    []byte   // nonce || AES-256-GCM ciphertext || tag
}

// String describes the share without its secret value, so that a Share in
// a log line or an error leaks nothing.
func (s *Share) String() string {
	if s == nil {
		return "escrow share <nil>"
	}
	return fmt.Sprintf("escrow %s share %d of %d (threshold %d)", s.EscrowID, s.Index, s.Total, s.Threshold)
}

// GoString is String, so that %#v does not print the share value either.
func (s *Share) GoString() string { return s.String() }

// LogValue is String, so that log/slog, which would otherwise prefer
// MarshalText, does not log the share value.
func (s *Share) LogValue() slog.Value { return slog.StringValue(s.String()) }

// FileName is the suggested file name of the share,
// "escrow-<first 8 hex of the escrow ID>-share-<i>-of-<n>.txt". It never
// contains a path separator, even for a share whose fields were changed.
func (s *Share) FileName() string {
	prefix := "invalid"
	if len(s.EscrowID) >= 8 && isLowerHex(s.EscrowID[:8]) {
		prefix = s.EscrowID[:8]
	}
	return fmt.Sprintf("escrow-%s-share-%d-of-%d.txt", prefix, s.Index, s.Total)
}

// Split puts secret in escrow for n custodians with threshold k: it returns
// n valid shares, with indices 1 … n, any k of which recover secret with
// Recover and fewer of which do not. now is recorded, in UTC to the second,
// as the creation time. Split refuses k < 2, k > n, n > 32, an empty
// secret, a secret larger than MaxSecretSize and a zero now. Every call
// uses fresh randomness: two calls never produce related shares.
func Split(secret []byte, n, k int, now time.Time) ([]*Share, error) {
	if err := checkSplitArgs(secret, n, k, now); err != nil {
		return nil, err
	}
	d, err := deal(n, k)
	if err != nil {
		return nil, err
	}
	envelope, err := seal(d.key, d.id, secret)
	clear(d.key)
	if err != nil {
		return nil, err
	}
	created := now.UTC().Truncate(time.Second)
	shares := make([]*Share, n)
	for i := range shares {
		shares[i] = &Share{
			EscrowID:    d.escrowID(),
			Threshold:   k,
			Total:       n,
			Index:       i + 1,
			Created:     created,
			value:       d.values[i],
			commitments: cloneAll(d.commitments),
			envelope:    clone(envelope),
		}
	}
	return shares, nil
}

func checkSplitArgs(secret []byte, n, k int, now time.Time) error {
	switch {
	case k < MinThreshold:
		return fmt.Errorf("escrow: threshold %d is below %d: one custodian could recover alone", k, MinThreshold)
	case k > n:
		return fmt.Errorf("escrow: threshold %d is above the number of shares %d", k, n)
	case n > MaxShares:
		return fmt.Errorf("escrow: %d shares is more than %d", n, MaxShares)
	case len(secret) == 0:
		return errors.New("escrow: the secret is empty")
	case len(secret) > MaxSecretSize:
		return fmt.Errorf("escrow: the secret is %d bytes, more than %d", len(secret), MaxSecretSize)
	case now.IsZero():
		return errors.New("escrow: the creation time is not set")
	case now.UTC().Year() > 9999:
		return errors.New("escrow: the creation time is after year 9999")
	}
	return nil
}

// Recover rebuilds the secret from shares of one escrow. It checks, in this
// order, and returns the first failure: at least one share (ErrNotEnough);
// each share well-formed (ErrFormat); all of the same escrow, with the same
// threshold, total, commitments and envelope (ErrMixed); no index twice
// (ErrDuplicate); at least Threshold shares (*NotEnoughError); every share,
// not only those used, verified against the commitments (ErrInvalidShare).
// It then interpolates the escrow scalar from Threshold shares, derives the
// key and opens the envelope (ErrAuth if it does not authenticate). On
// success it returns the secret exactly as given to Split, in a new slice.
// The creation times of the shares are ignored.
func Recover(shares []*Share) ([]byte, error) {
	if len(shares) == 0 {
		return nil, fmt.Errorf("escrow: no shares given: %w", ErrNotEnough)
	}
	for i, s := range shares {
		if err := s.checkStructure(); err != nil {
			return nil, fmt.Errorf("%w (share %d of those given)", err, i+1)
		}
	}
	if err := checkSameEscrow(shares); err != nil {
		return nil, err
	}
	if err := checkDistinct(shares); err != nil {
		return nil, err
	}
	first := shares[0]
	if len(shares) < first.Threshold {
		return nil, &NotEnoughError{Have: len(shares), Need: first.Threshold}
	}
	for _, s := range shares {
		if err := s.verify(); err != nil {
			return nil, err
		}
	}
	return open(shares[:first.Threshold])
}

// checkSameEscrow refuses shares that disagree about anything but their
// index, value and creation time.
func checkSameEscrow(shares []*Share) error {
	first := shares[0]
	for _, s := range shares[1:] {
		if s.EscrowID != first.EscrowID ||
			s.Threshold != first.Threshold ||
			s.Total != first.Total ||
			!equalAll(s.commitments, first.commitments) ||
			!equal(s.envelope, first.envelope) {
			return fmt.Errorf("%w: share %d differs from share %d", ErrMixed, s.Index, first.Index)
		}
	}
	return nil
}

// checkDistinct refuses two shares with the same index; circl's
// interpolation must never see them.
func checkDistinct(shares []*Share) error {
	seen := make(map[int]bool, len(shares))
	for _, s := range shares {
		if seen[s.Index] {
			return fmt.Errorf("%w: share %d", ErrDuplicate, s.Index)
		}
		seen[s.Index] = true
	}
	return nil
}

// checkStructure checks ranges, lengths and counts, not the cryptography
// (see verify). Its errors wrap ErrFormat.
func (s *Share) checkStructure() error {
	switch {
	case s == nil:
		return fmt.Errorf("%w: nil share", ErrFormat)
	case len(s.EscrowID) != 2*idSize || !isLowerHex(s.EscrowID):
		return fmt.Errorf("%w: escrow ID is not %d lowercase hex characters", ErrFormat, 2*idSize)
	case s.Threshold < MinThreshold || s.Threshold > MaxShares:
		return fmt.Errorf("%w: threshold not in %d…%d", ErrFormat, MinThreshold, MaxShares)
	case s.Total < s.Threshold || s.Total > MaxShares:
		return fmt.Errorf("%w: number of shares not in threshold…%d", ErrFormat, MaxShares)
	case s.Index < 1 || s.Index > s.Total:
		return fmt.Errorf("%w: share index not in 1…number of shares", ErrFormat)
	case len(s.value) != scalarSize:
		return fmt.Errorf("%w: share value is not %d bytes", ErrFormat, scalarSize)
	case len(s.commitments) != s.Threshold:
		return fmt.Errorf("%w: %d commitments for threshold %d", ErrFormat, len(s.commitments), s.Threshold)
	case len(s.envelope) < minEnvelope || len(s.envelope) > maxEnvelope:
		return fmt.Errorf("%w: envelope is not %d…%d bytes", ErrFormat, minEnvelope, maxEnvelope)
	case s.Created.UTC().Year() > 9999 || s.Created.UTC().Year() < 0:
		return fmt.Errorf("%w: creation time not in years 0000…9999", ErrFormat)
	}
	for _, c := range s.commitments {
		if len(c) != elementSize {
			return fmt.Errorf("%w: a commitment is not %d bytes", ErrFormat, elementSize)
		}
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func cloneAll(bs [][]byte) [][]byte {
	out := make([][]byte, len(bs))
	for i, b := range bs {
		out[i] = clone(b)
	}
	return out
}

func equal(a, b []byte) bool { return string(a) == string(b) }

func equalAll(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
