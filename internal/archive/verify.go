package archive

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"callvault/internal/access"
	"callvault/internal/audit"
	"callvault/internal/catalog"
	"callvault/internal/recording"
	"callvault/internal/seal"
	"callvault/internal/site"
)

// PurposeVerification is the purpose recorded with a verification: a
// migration proving that its source files are in the archive.
const PurposeVerification = "migration-verification"

// Results of comparing one site's copy with a digest.
const (
	CopyMatches     = "match"       // the decrypted copy has the digest
	CopyDiffers     = "mismatch"    // it decrypts, to other audio
	CopyMissing     = "missing"     // the site does not hold it (yet)
	CopyDamaged     = "damaged"     // it fails authentication or is not a sealed blob
	CopyUnavailable = "unavailable" // the site could not be read
)

// Verification is the answer to Verify: per site, how its copy compares.
type Verification struct {
	ID    string            `json:"id"`
	Sites map[string]string `json:"sites"` // site name → CopyMatches, …
}

// Verified reports whether every site's copy matches: the recording is
// committed, intact and the same audio on both sites.
func (v *Verification) Verified() bool {
	if len(v.Sites) == 0 {
		return false
	}
	for _, r := range v.Sites {
		if r != CopyMatches {
			return false
		}
	}
	return true
}

// Verify decides whether the caller may verify recording id (a capture
// system of its care provider), audits that with the purpose
// PurposeVerification, and then decrypts the copy on every site and
// compares the SHA-256 of its audio with sha256Hex. The caller learns only
// match or mismatch per site, never audio or metadata. A malformed ID or
// digest is an *InvalidError; an unknown or deleted recording, or another
// provider's, is ErrNotFound. The outcome is audited too (verify.done).
func (s *Service) Verify(ctx context.Context, c Caller, id, sha256Hex string) (*Verification, error) {
	ev := &audit.Event{Action: string(access.ActionVerify), RecordingID: id, Purpose: PurposeVerification}
	want, err := hex.DecodeString(sha256Hex)
	switch {
	case !recording.ValidID(id):
		ev.RecordingID, ev.Reason = "", "invalid-id"
		return nil, s.deny(ctx, c, ev, &InvalidError{Field: "id", Msg: "a recording ID is 32 lowercase hex characters"})
	case err != nil || len(want) != sha256.Size || sha256Hex != strings.ToLower(sha256Hex):
		ev.Reason = "invalid-digest"
		return nil, s.deny(ctx, c, ev, &InvalidError{Field: "sha256", Msg: "must be 64 lowercase hex characters"})
	}
	rec, err := s.cat.Get(ctx, id)
	if errors.Is(err, catalog.ErrNotFound) {
		ev.Reason = "not-found"
		return nil, s.deny(ctx, c, ev, ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	d := access.Decide(access.Request{Action: access.ActionVerify, Principal: c.Principal,
		Facts: access.Facts{CareProvider: rec.CareProvider, CareUnit: rec.CareUnit}})
	ev.Reason = d.Reason
	if !d.Allowed {
		if d.Conceal {
			return nil, s.deny(ctx, c, ev, ErrNotFound)
		}
		return nil, s.deny(ctx, c, ev, nil)
	}
	ev.Outcome = audit.Allowed
	if err := s.record(ctx, c, ev); err != nil {
		return nil, err
	}
	fk, err := s.fileKey(rec)
	if err != nil {
		return nil, err
	}
	v := &Verification{ID: id, Sites: make(map[string]string)}
	var detail []string
	for _, st := range s.sites.Sites() {
		r := s.compareCopy(ctx, st, rec, fk, want)
		v.Sites[st.Name()] = r
		detail = append(detail, st.Name()+"="+r)
	}
	if err := s.record(ctx, c, &audit.Event{Action: "verify.done", Outcome: audit.Allowed, RecordingID: id,
		Purpose: PurposeVerification, Detail: strings.Join(detail, " ")}); err != nil {
		return nil, err
	}
	return v, nil
}

// compareCopy decrypts rec's copy on st and compares its digest with want.
func (s *Service) compareCopy(ctx context.Context, st site.Store, rec *catalog.Recording, fk *seal.FileKey, want []byte) string {
	blob, err := st.Open(ctx, rec.ID)
	if errors.Is(err, site.ErrNotExist) {
		return CopyMissing
	} else if err != nil {
		s.log.WarnContext(ctx, "verify: site unreadable", "site", st.Name(), "recording", rec.ID, "err", err)
		return CopyUnavailable
	}
	defer blob.Close()
	r, err := seal.NewReader(blob, blob.Size(), fk, rec.ID)
	if err != nil {
		return CopyDamaged
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, r.Size())); err != nil {
		if errors.Is(err, seal.ErrAuth) || errors.Is(err, seal.ErrFormat) {
			return CopyDamaged
		}
		s.log.WarnContext(ctx, "verify: site read failed", "site", st.Name(), "recording", rec.ID, "err", err)
		return CopyUnavailable
	}
	if subtle.ConstantTimeCompare(h.Sum(nil), want) != 1 {
		return CopyDiffers
	}
	return CopyMatches
}
