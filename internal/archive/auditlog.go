package archive

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"callvault/internal/access"
	"callvault/internal/audit"
)

// ErrNoLogData: no such checkpoint or tile (yet).
var ErrNoLogData = errors.New("archive: no such audit log resource")

// AuditLog is the audit log as the archive serves it to verifiers: signed
// checkpoints, C2SP tlog-tiles and verifier keys (docs/audit-log.md).
type AuditLog interface {
	LatestCheckpoint(ctx context.Context) (*audit.Checkpoint, error)
	Tile(ctx context.Context, path string) ([]byte, error)
	VerifierKeys() ([]string, error)
	Range(ctx context.Context, from, to time.Time, fn func(*audit.Event) error) error
	ForPatient(ctx context.Context, patient string, fn func(*audit.Event) error) error
}

// authorizeLogRead lets only auditors and witnesses read the log's
// checkpoints and tiles, and audits the read either way. The tiles hold
// personal data only sealed, but who did what when is itself sensitive.
func (s *Service) authorizeLogRead(ctx context.Context, c Caller, what string) error {
	e := &audit.Event{Action: "audit.read-log", Detail: what}
	if s.auditLog == nil {
		return fmt.Errorf("%w: the audit log is not served", ErrNoLogData)
	}
	if !c.Principal.Has(access.RoleAuditor) && !c.Principal.Has(access.RoleWitness) {
		e.Reason = access.ReasonRole
		return s.deny(ctx, c, e, nil)
	}
	e.Outcome, e.Reason = audit.Allowed, "auditor-or-witness"
	return s.record(ctx, c, e)
}

// LogCheckpoint returns the latest signed checkpoint, after the read is
// audited.
func (s *Service) LogCheckpoint(ctx context.Context, c Caller) ([]byte, error) {
	if err := s.authorizeLogRead(ctx, c, "checkpoint"); err != nil {
		return nil, err
	}
	cp, err := s.auditLog.LatestCheckpoint(ctx)
	if errors.Is(err, audit.ErrNoCheckpoint) {
		return nil, ErrNoLogData
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	return cp.Note, nil
}

// LogTile returns the tile or entry bundle at path (after "tile/"), after
// the read is audited. A malformed path is an *InvalidError (field "path").
func (s *Service) LogTile(ctx context.Context, c Caller, path string) ([]byte, error) {
	if len(path) > 64 || strings.ContainsAny(path, "\x00\\") {
		path = "(malformed)"
	}
	if err := s.authorizeLogRead(ctx, c, "tile/"+path); err != nil {
		return nil, err
	}
	b, err := s.auditLog.Tile(ctx, path)
	switch {
	case errors.Is(err, audit.ErrTilePath):
		return nil, &InvalidError{Field: "path", Msg: "not a tlog-tiles path: tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]", Err: err}
	case errors.Is(err, audit.ErrNoTile):
		return nil, ErrNoLogData
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	return b, nil
}

// LogKeys returns the verifier keys of the log's checkpoints, after the
// read is audited.
func (s *Service) LogKeys(ctx context.Context, c Caller) ([]string, error) {
	if err := s.authorizeLogRead(ctx, c, "keys"); err != nil {
		return nil, err
	}
	k, err := s.auditLog.VerifierKeys()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	return k, nil
}
