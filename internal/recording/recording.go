// Package recording is the metadata model of a recorded call and its
// validation. It knows nothing about storage or encryption: the archive
// turns a validated Metadata into a catalog row.
package recording

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"

	"callvault/internal/pnr"
)

// Direction of a call as seen from the health-advice service.
const (
	Inbound  = "inbound"
	Outbound = "outbound"
)

// Limits on metadata values. They bound what a client can make the archive
// store and keep error messages finite.
const (
	MaxCallIDLen        = 256
	MaxStaff            = 32
	MaxPrivacyNoticeLen = 64
	MaxCallDuration     = 24 * time.Hour
	// ClockSkew is how far in the future a call's end may lie, to tolerate
	// clocks on capture systems that run a little fast.
	ClockSkew = 5 * time.Minute
)

// Metadata is what a capture system tells the archive about a call, as sent
// in the upload API's "metadata" part (docs/api.md).
type Metadata struct {
	CallID        string    `json:"call_id"`
	CareProvider  string    `json:"care_provider"`
	CareUnit      string    `json:"care_unit"`
	Patient       string    `json:"patient,omitempty"`
	CallerNumber  string    `json:"caller_number,omitempty"`
	Staff         []string  `json:"staff"`
	StartedAt     time.Time `json:"started_at"`
	EndedAt       time.Time `json:"ended_at"`
	Direction     string    `json:"direction"`
	PrivacyNotice string    `json:"privacy_notice,omitempty"`
	// SourceSHA256 is set by a migration (docs/import.md): the SHA-256 of
	// the source file, 64 lowercase hex. The archive checks it against the
	// audio and stores a care provider's source file at most once.
	SourceSHA256 string `json:"source_sha256,omitempty"`
}

// Valid is Metadata that passed Validate: the patient is parsed and
// normalized, and every other field checked.
type Valid struct {
	Metadata
	PatientNumber pnr.Number // zero when the caller was not identified
}

// FieldError reports one invalid field. Its message never contains the
// field's value, so it is safe in logs and HTTP answers.
type FieldError struct {
	Field string
	Msg   string
	Err   error // the underlying cause, if any (e.g. pnr.ErrChecksum)
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Msg) }
func (e *FieldError) Unwrap() error { return e.Err }

var (
	hsaIDRe  = regexp.MustCompile(`^SE[0-9]{10}-[A-Za-z0-9]{1,31}$`)
	e164Re   = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	callIDRe = regexp.MustCompile(`^[\x21-\x7e]+$`)
	idRe     = regexp.MustCompile(`^[0-9a-f]{32}$`)
	sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ValidHSAID reports whether s has the form of an HSA-ID: country code SE,
// a ten-digit organisation number, '-', and a suffix of letters and digits.
func ValidHSAID(s string) bool { return hsaIDRe.MatchString(s) }

// NewID returns a fresh recording ID: 128 random bits as 32 lowercase hex
// characters. IDs carry no personal data and no time.
func NewID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("recording: new id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// ValidID reports whether s has the form of a recording ID.
func ValidID(s string) bool { return idRe.MatchString(s) }

// Validate checks every field of m as of now and returns the normalized
// form, or a *FieldError for the first invalid field (in document order).
func (m Metadata) Validate(now time.Time) (*Valid, error) {
	v := &Valid{Metadata: m}
	switch {
	case m.CallID == "":
		return nil, &FieldError{Field: "call_id", Msg: "required"}
	case len(m.CallID) > MaxCallIDLen || !callIDRe.MatchString(m.CallID):
		return nil, &FieldError{Field: "call_id", Msg: fmt.Sprintf("must be 1 to %d printable ASCII characters without spaces", MaxCallIDLen)}
	}
	if err := checkHSA("care_provider", m.CareProvider); err != nil {
		return nil, err
	}
	if err := checkHSA("care_unit", m.CareUnit); err != nil {
		return nil, err
	}
	if m.Patient != "" {
		n, err := pnr.Parse(m.Patient, now)
		if err != nil {
			return nil, &FieldError{Field: "patient", Msg: "not a valid personnummer or samordningsnummer: " + pnrReason(err), Err: err}
		}
		v.PatientNumber = n
		v.Patient = n.Digits()
	}
	if m.CallerNumber != "" && !e164Re.MatchString(m.CallerNumber) {
		return nil, &FieldError{Field: "caller_number", Msg: "must be an E.164 number such as +46…"}
	}
	if len(m.Staff) == 0 {
		return nil, &FieldError{Field: "staff", Msg: "at least one staff HSA-ID is required"}
	}
	if len(m.Staff) > MaxStaff {
		return nil, &FieldError{Field: "staff", Msg: fmt.Sprintf("at most %d entries", MaxStaff)}
	}
	for i, s := range m.Staff {
		if err := checkHSA(fmt.Sprintf("staff[%d]", i), s); err != nil {
			return nil, err
		}
	}
	switch {
	case m.StartedAt.IsZero():
		return nil, &FieldError{Field: "started_at", Msg: "required (RFC 3339)"}
	case m.EndedAt.IsZero():
		return nil, &FieldError{Field: "ended_at", Msg: "required (RFC 3339)"}
	case m.EndedAt.Before(m.StartedAt):
		return nil, &FieldError{Field: "ended_at", Msg: "is before started_at"}
	case m.EndedAt.Sub(m.StartedAt) > MaxCallDuration:
		return nil, &FieldError{Field: "ended_at", Msg: "call longer than 24 hours"}
	case m.EndedAt.After(now.Add(ClockSkew)):
		return nil, &FieldError{Field: "ended_at", Msg: "is in the future"}
	}
	v.StartedAt, v.EndedAt = m.StartedAt.UTC(), m.EndedAt.UTC()
	if m.Direction != Inbound && m.Direction != Outbound {
		return nil, &FieldError{Field: "direction", Msg: `must be "inbound" or "outbound"`}
	}
	if len(m.PrivacyNotice) > MaxPrivacyNoticeLen || (m.PrivacyNotice != "" && !callIDRe.MatchString(m.PrivacyNotice)) {
		return nil, &FieldError{Field: "privacy_notice", Msg: fmt.Sprintf("must be at most %d printable ASCII characters without spaces", MaxPrivacyNoticeLen)}
	}
	if m.SourceSHA256 != "" && !sha256Re.MatchString(m.SourceSHA256) {
		return nil, &FieldError{Field: "source_sha256", Msg: "must be 64 lowercase hex characters"}
	}
	return v, nil
}

func checkHSA(field, s string) error {
	if s == "" {
		return &FieldError{Field: field, Msg: "required"}
	}
	if !ValidHSAID(s) {
		return &FieldError{Field: field, Msg: "not an HSA-ID (SE + 10 digits + '-' + suffix)"}
	}
	return nil
}

func pnrReason(err error) string {
	switch {
	case errors.Is(err, pnr.ErrChecksum):
		return "check digit does not match"
	case errors.Is(err, pnr.ErrDate):
		return "no such date"
	default:
		return "wrong format"
	}
}
