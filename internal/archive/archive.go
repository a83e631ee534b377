// Package archive is callvault's core service: the only package that joins
// the catalog, the storage sites, the container (seal), the policy (access)
// and the audit log, and the only one that decrypts audio. Every entry point
// (HTTP API, web pages, SIPREC, importer, CLI) calls it.
//
// Every method follows one order: decide by policy, append the decision to
// the audit log and wait until it is durable, and only then act. If the
// audit log cannot be written the answer is ErrAuditUnavailable and nothing
// is read or stored.
package archive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"filippo.io/age"

	"callvault/internal/access"
	"callvault/internal/audit"
	"callvault/internal/catalog"
	"callvault/internal/keys"
	"callvault/internal/site"
)

// Errors a caller branches on. The HTTP API maps each to one status code.
var (
	// ErrDenied: the policy said no. Errors wrapping it are *DeniedError.
	ErrDenied = errors.New("archive: access denied")
	// ErrNotFound: no such recording — or one the caller must not learn
	// exists (another care provider's); the two are deliberately the same.
	ErrNotFound = errors.New("archive: no such recording")
	// ErrAuditUnavailable: the decision could not be made durable, so the
	// request was refused.
	ErrAuditUnavailable = errors.New("archive: audit log unavailable")
	// ErrStorage: the storage sites or the catalog failed.
	ErrStorage = errors.New("archive: storage unavailable")
	// ErrBusy: the recording is between two states (a recorded call that
	// ended and is being stored); the same request succeeds shortly.
	ErrBusy = errors.New("archive: the recording is being stored; retry shortly")
)

// DeniedError carries the policy's reason code for a denial.
type DeniedError struct{ Reason string }

func (e *DeniedError) Error() string { return "archive: access denied: " + e.Reason }

// Is makes errors.Is(err, ErrDenied) true.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// InvalidError reports bad input from the caller, naming the field. The
// message never contains the field's value.
type InvalidError struct {
	Field string
	Msg   string
	Err   error
}

func (e *InvalidError) Error() string { return fmt.Sprintf("archive: invalid %s: %s", e.Field, e.Msg) }
func (e *InvalidError) Unwrap() error { return e.Err }

// Catalog is what the archive needs of the metadata index.
type Catalog interface {
	Insert(ctx context.Context, rec *catalog.Recording, pendingSites []string) error
	Get(ctx context.Context, id string) (*catalog.Recording, error)
	ByPatient(ctx context.Context, careProvider string, patientIndex []byte, from, to time.Time) ([]*catalog.Recording, error)
	Count(ctx context.Context) (int, error)
	Pending(ctx context.Context) ([]catalog.Pending, error)
	PendingCount(ctx context.Context) (int, error)
	ResolvePending(ctx context.Context, recordingID, site string) error
	NotePendingFailure(ctx context.Context, recordingID, site, reason string) error
	BySource(ctx context.Context, careProvider string, index []byte) error

	SetHold(ctx context.Context, id, reference, by string, at time.Time) (*catalog.Hold, error)
	ReleaseHold(ctx context.Context, id string, holdID int64, by string, at time.Time) (*catalog.Hold, error)
	Holds(ctx context.Context, id string) ([]*catalog.Hold, error)
	CheckDeletable(ctx context.Context, careProvider string, ids []string) error
	RegisterDeletion(ctx context.Context, d *catalog.Decision) error
	Decision(ctx context.Context, id int64) (*catalog.Decision, error)
	ApproveDeletion(ctx context.Context, id int64, approver string, at time.Time) (*catalog.Decision, error)
	Approved(ctx context.Context) ([]*catalog.Decision, error)
	Decisions(ctx context.Context, careProvider, state string, limit int) ([]*catalog.Decision, error)
	Shred(ctx context.Context, d *catalog.Decision, id string, objects, sites []string, at time.Time) error
	FinishDecision(ctx context.Context, id int64) (bool, error)
	Checkpoint(ctx context.Context) error
	Tombstone(ctx context.Context, id string) (*catalog.Tombstone, error)
	PendingDeletions(ctx context.Context) ([]catalog.Pending, error)
	ResolveDeletion(ctx context.Context, id, site string) error
	NoteDeletionFailure(ctx context.Context, id, site, reason string) error
	ExpiredRecordings(ctx context.Context, now time.Time, limit int) ([]catalog.Expired, error)

	Blobs(ctx context.Context, after string, limit int) ([]catalog.BlobRef, error)
	Known(ctx context.Context, id string) (live, deleted bool, err error)
	MarkLost(ctx context.Context, id, detail string, at time.Time) error
	ClearLost(ctx context.Context, id string) error
	Lost(ctx context.Context, id string) (bool, error)
	LostCount(ctx context.Context) (int, error)

	Stale(ctx context.Context, current int, after string, limit int) ([]catalog.WrappedRef, error)
	UpdateWrapped(ctx context.Context, ws []catalog.Rewrapped) (int, error)
	EpochCounts(ctx context.Context) (map[int]int, error)

	BeginCapture(ctx context.Context, cs *catalog.CaptureSession) error
	EndCapture(ctx context.Context, id, state, detail string, at time.Time) error
	CaptureSessions(ctx context.Context, state string, limit int) ([]*catalog.CaptureSession, error)
	CaptureCounts(ctx context.Context) (map[string]int, error)
	ByCallID(ctx context.Context, careProvider, callID string) ([]string, error)
	LinkPatient(ctx context.Context, id string, index, sealed []byte, by string, at time.Time) (*catalog.PatientLink, error)
}

// Directory is what the archive needs of the directory.
type Directory interface {
	UnitKnown(ctx context.Context, careProvider, unit string) (bool, error)
	Blocked(ctx context.Context, patientIndex []byte, careUnit string) (bool, error)
	Protected(ctx context.Context, patientIndex []byte) (bool, error)
	Units(ctx context.Context) ([]access.Unit, error)
	List(ctx context.Context) ([]*access.Entry, error)
}

// Keyring is what the archive needs of the key material.
type Keyring interface {
	Current() keys.Epoch
	Identity(epoch int) (age.Identity, error)
	BlindIndex(kind, value string) []byte
}

var (
	_ Catalog   = (*catalog.DB)(nil)
	_ Directory = (*access.Directory)(nil)
	_ Keyring   = (*keys.Keyring)(nil)
	_ Keyring   = (*keys.Live)(nil)
)

// Config wires a Service. Every field but Logger, Metrics and Now is required.
type Config struct {
	Catalog   Catalog
	Sites     *site.Replicator
	Keys      Keyring
	Directory Directory
	Audit     audit.Appender
	// AuditLog, if set, is served to auditors and witnesses (LogCheckpoint,
	// LogTile, LogKeys) and read by the audit reports.
	AuditLog AuditLog
	// Reports configures the audit reports.
	Reports Reports
	// Retention configures how long recordings are kept (docs/lifecycle.md).
	Retention Retention
	// Logger receives operational lines (recording IDs only). If unset, logs are discarded.
	Logger *slog.Logger
	// Metrics, if set, is updated on every request.
	Metrics *Metrics
	// Now is the clock. If unset, time.Now.
	Now func() time.Time
}

// Service is the archive core. It is safe for concurrent use.
type Service struct {
	cat       Catalog
	sites     *site.Replicator
	keys      Keyring
	dir       Directory
	audit     audit.Appender
	auditLog  AuditLog
	reports   Reports
	retention Retention
	log       *slog.Logger
	metrics   *Metrics
	now       func() time.Time

	wormMu sync.Mutex
	worm   map[string]WORMState // last CheckWORM, by site; guarded by wormMu
}

// New returns a Service for cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Catalog == nil || cfg.Sites == nil || cfg.Keys == nil || cfg.Directory == nil || cfg.Audit == nil {
		return nil, errors.New("archive: config needs catalog, sites, keys, directory and audit")
	}
	if cfg.Retention.Years == 0 {
		cfg.Retention.Years = MinRetentionYears
	}
	if cfg.Retention.Years < MinRetentionYears {
		return nil, fmt.Errorf("archive: retention of %d years is below the %d years medical records are kept", cfg.Retention.Years, MinRetentionYears)
	}
	s := &Service{cat: cfg.Catalog, sites: cfg.Sites, keys: cfg.Keys, dir: cfg.Directory, audit: cfg.Audit, auditLog: cfg.AuditLog, reports: cfg.Reports,
		retention: cfg.Retention, log: cfg.Logger, metrics: cfg.Metrics, now: cfg.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Caller is who makes a request and from where, as the entry point saw it.
type Caller struct {
	Principal  *access.Principal
	ClientAddr string
	RequestID  string
}

// Access is what a reader states with a request: the purpose, and for
// emergency access (nödåtkomst) the written reason.
type Access struct {
	Purpose         string
	EmergencyReason string
}

// record appends e (filled with the caller's identity) and waits until it
// is durable. Every decision passes through here.
func (s *Service) record(ctx context.Context, c Caller, e *audit.Event) error {
	if c.Principal != nil {
		e.User, e.CareProvider, e.CareUnit = c.Principal.HSAID, c.Principal.CareProvider, c.Principal.CareUnit
		if e.CertFingerprint == "" {
			e.CertFingerprint = c.Principal.CertFingerprint
		}
	}
	e.ClientAddr, e.RequestID = c.ClientAddr, c.RequestID
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	start := time.Now()
	err := s.audit.Append(ctx, e)
	s.metrics.observeAudit(time.Since(start), err)
	s.metrics.decision(e.Action, e.Outcome)
	if err != nil {
		s.log.ErrorContext(ctx, "audit append failed; request refused", "action", e.Action, "recording", e.RecordingID, "request", c.RequestID, "err", err)
		return fmt.Errorf("%w: %w", ErrAuditUnavailable, err)
	}
	return nil
}

// deny records a denial and returns the error for the caller: err if
// given, else a *DeniedError with the reason.
func (s *Service) deny(ctx context.Context, c Caller, e *audit.Event, err error) error {
	e.Outcome = audit.Denied
	if aerr := s.record(ctx, c, e); aerr != nil {
		return aerr
	}
	if err == nil {
		err = &DeniedError{Reason: e.Reason}
	}
	return err
}

// RefuseIdentity records that a verified certificate was refused because
// the directory does not know it (reason "unknown-user") or it carries no
// HSA-ID ("no-hsa-id"). The detail holds the certificate's fingerprint so an
// incident report can follow it. It returns ErrAuditUnavailable if the
// refusal could not be recorded; the caller refuses either way.
func (s *Service) RefuseIdentity(ctx context.Context, c Caller, fingerprint, reason string) error {
	return s.record(ctx, c, &audit.Event{Action: "authenticate", Outcome: audit.Denied, Reason: reason, CertFingerprint: fingerprint})
}

// RejectInput records a request that an entry point refused before it could
// become an archive call (e.g. a body that is not multipart, a metadata part
// that is not JSON, a bad query parameter), so that every answered request
// is in the audit log. field names the bad input; it never holds its value.
// It returns ErrAuditUnavailable if the refusal could not be recorded.
func (s *Service) RejectInput(ctx context.Context, c Caller, action, field string) error {
	return s.record(ctx, c, &audit.Event{Action: action, Outcome: audit.Denied, Reason: "invalid-input", Detail: "field=" + field})
}

// AuditAdminChange records an administrative change (a directory entry, a
// block, a key or site change) before it is made; the caller makes the
// change only after a nil return. detail describes the change without
// personal data; patient, if the change concerns one (a block), is sealed
// in the entry like every patient identity. Only principals with the admin
// role may make such changes.
func (s *Service) AuditAdminChange(ctx context.Context, c Caller, action, detail, patient string) error {
	e := &audit.Event{Action: action, Detail: detail, Patient: patient}
	if !c.Principal.Has(access.RoleAdmin) {
		e.Reason = access.ReasonRole
		return s.deny(ctx, c, e, nil)
	}
	e.Outcome, e.Reason = audit.Allowed, "admin"
	return s.record(ctx, c, e)
}
