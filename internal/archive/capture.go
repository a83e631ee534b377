package archive

import (
	"context"
	"errors"
	"fmt"
	"io"

	"callvault/internal/access"
	"callvault/internal/audit"
	"callvault/internal/catalog"
	"callvault/internal/pnr"
	"callvault/internal/recording"
)

// Capture describes the recording of a live capture session for
// IngestCapture (docs/siprec.md).
type Capture struct {
	// ID is the recording ID BeginCapture reserved for the session.
	ID string
	// Incomplete marks a recording finalized from what was saved before
	// the capture failed (e.g. the recorder was killed mid-call).
	Incomplete bool
	// Stats is the capture's account of the media as JSON; no personal data.
	Stats string
}

// Audit actions of live capture (docs/siprec.md).
const (
	ActionCaptureStart = "capture.start"
	ActionCaptureEnd   = "capture.end"
	ActionCapturePause = "capture.pause"
	ActionLink         = "recording.link"
)

// BeginCapture decides whether c may record a call for careUnit of
// careProvider; if so it reserves a recording ID, records the session as
// active in the catalog and audits capture.start, so that from this moment
// on the session is either stored or visibly lost. detail describes the
// session for the log (transport, streams) and must hold no personal data.
// A refusal is audited and returned as a *DeniedError (or *InvalidError
// for an unknown care unit).
func (s *Service) BeginCapture(ctx context.Context, c Caller, careProvider, careUnit, detail string) (string, error) {
	ev := &audit.Event{Action: ActionCaptureStart, Detail: detail}
	known, err := s.dir.UnitKnown(ctx, careProvider, careUnit)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrStorage, err)
	}
	d := access.Decide(access.Request{Action: access.ActionIngest, Principal: c.Principal,
		Facts: access.Facts{CareProvider: careProvider, CareUnit: careUnit, UnitKnown: known}})
	ev.Reason = d.Reason
	if !d.Allowed {
		if d.Reason == access.ReasonUnknownUnit {
			return "", s.deny(ctx, c, ev, &InvalidError{Field: "care_unit", Msg: "care unit is not registered for this care provider"})
		}
		return "", s.deny(ctx, c, ev, nil)
	}
	id, err := recording.NewID()
	if err != nil {
		return "", err
	}
	ev.RecordingID, ev.Outcome = id, audit.Allowed
	if err := s.cat.BeginCapture(ctx, &catalog.CaptureSession{RecordingID: id, CareProvider: careProvider,
		CareUnit: careUnit, StartedAt: s.now().UTC()}); err != nil {
		return "", fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if err := s.record(ctx, c, ev); err != nil {
		_ = s.cat.EndCapture(context.WithoutCancel(ctx), id, catalog.CaptureCancelled, "audit unavailable", s.now())
		return "", err
	}
	s.metrics.capture("accepted")
	return id, nil
}

// EndCapture records that the capture session id ended in state
// (catalog.CaptureCancelled or catalog.CaptureFailed; IngestCapture records
// the stored states itself) and audits capture.end. A failed session, one
// that stored nothing, is logged as an alert and counted; the log review
// makes it a finding. reason must hold no personal data.
func (s *Service) EndCapture(ctx context.Context, c Caller, id, state, reason string) error {
	if err := s.cat.EndCapture(ctx, id, state, reason, s.now().UTC()); err != nil {
		if errors.Is(err, catalog.ErrCaptureState) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	s.metrics.capture(state)
	if state == catalog.CaptureFailed {
		s.log.ErrorContext(ctx, "ALERT: capture session ended without a stored recording", "recording", id, "reason", reason)
	}
	return s.record(ctx, c, &audit.Event{Action: ActionCaptureEnd, Outcome: audit.Allowed, RecordingID: id,
		Reason: state, Detail: reason})
}

// AuditCapture records an event of a running capture session (pause or
// resume) under its recording ID. detail must hold no personal data.
func (s *Service) AuditCapture(ctx context.Context, c Caller, action, id, detail string) error {
	return s.record(ctx, c, &audit.Event{Action: action, Outcome: audit.Allowed, RecordingID: id, Detail: detail})
}

// IngestCapture stores the recording of capture session cp.ID, as Ingest
// does (the same validation, decision, audit and storage on both sites),
// and ends the session: stored or incomplete on success, failed (an alert)
// if it cannot be stored. A storage or audit failure (ErrStorage,
// ErrAuditUnavailable) leaves the session active for the caller to retry.
func (s *Service) IngestCapture(ctx context.Context, c Caller, meta recording.Metadata, audioSrc io.Reader, cp Capture) (string, error) {
	if !recording.ValidID(cp.ID) {
		return "", errors.New("archive: ingest capture: malformed recording ID")
	}
	id, err := s.ingest(ctx, c, cp.ID, meta, audioSrc, &cp)
	// The session's end is recorded even if the caller gave up waiting.
	ctx = context.WithoutCancel(ctx)
	if err != nil {
		if errors.Is(err, ErrStorage) || errors.Is(err, ErrAuditUnavailable) {
			// Transient: the session stays active, the caller retries.
			return "", err
		}
		reason := abortReason(err)
		var ie *InvalidError
		if errors.As(err, &ie) {
			reason = "invalid-" + ie.Field
		}
		if eerr := s.EndCapture(ctx, c, cp.ID, catalog.CaptureFailed, reason); eerr != nil {
			s.log.ErrorContext(ctx, "capture end not recorded", "recording", cp.ID, "err", eerr)
		}
		return "", err
	}
	state := catalog.CaptureStored
	if cp.Incomplete {
		state = catalog.CaptureIncomplete
	}
	if err := s.EndCapture(ctx, c, id, state, ""); err != nil {
		s.log.ErrorContext(ctx, "capture stored but its end not recorded", "recording", id, "err", err)
	}
	return id, nil
}

// CaptureActive lists the capture sessions still recording, oldest first
// (no personal data), for status pages.
func (s *Service) CaptureActive(ctx context.Context, limit int) ([]*catalog.CaptureSession, error) {
	cs, err := s.cat.CaptureSessions(ctx, catalog.CaptureActive, limit)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	return cs, nil
}

// LinkTarget names the recording a patient link is for: a recording ID, or
// the telephony call ID of a recorded call.
type LinkTarget struct {
	RecordingID string
	CallID      string
}

// Link is the answer to a patient link.
type Link struct {
	RecordingID string `json:"recording_id"`
	// State is "stored" when the stored recording was changed, "recording"
	// when the call is still being recorded (the patient is stored with it).
	State string `json:"state"`
	// Replaced is true when the recording had another patient before; the
	// previous one stays in the link history.
	Replaced bool `json:"replaced"`
}

// ParseLinkPatient checks a personnummer or samordningsnummer given to a
// link and returns it as 12 digits; an invalid one is an *InvalidError
// that does not repeat it.
func (s *Service) ParseLinkPatient(patient string) (string, error) {
	n, err := pnr.Parse(patient, s.now())
	if err != nil {
		return "", &InvalidError{Field: "patient", Msg: "not a valid personnummer or samordningsnummer", Err: err}
	}
	return n.Digits(), nil
}

// AuthorizeLink decides and audits a patient link by c to recording id of
// careProvider/careUnit: only a capture or integration principal of the
// same care provider may link (capture systems add, they never read). The
// audit entry names the patient, so "who was told this call was the
// patient's" is answerable.
func (s *Service) AuthorizeLink(ctx context.Context, c Caller, careProvider, careUnit, id, patient, detail string) error {
	ev := &audit.Event{Action: ActionLink, RecordingID: id, Patient: patient, Detail: detail}
	d := access.Decide(access.Request{Action: access.ActionIngest, Principal: c.Principal,
		Facts: access.Facts{CareProvider: careProvider, CareUnit: careUnit, UnitKnown: true}})
	ev.Reason = d.Reason
	if !d.Allowed {
		return s.deny(ctx, c, ev, nil)
	}
	ev.Outcome = audit.Allowed
	return s.record(ctx, c, ev)
}

// LinkStored links patient (12 digits, from ParseLinkPatient) to a stored
// recording: by ID, or by call ID within c's care provider (several
// recordings of one call ID are a *ConflictError asking for the recording
// ID). The patient is sealed under the recording's file key, the previous
// one kept in the link history, and the recovery record rewritten. An
// unknown recording is ErrNotFound (audited as a denial only when the ID
// exists under another care provider, which answers the same).
func (s *Service) LinkStored(ctx context.Context, c Caller, t LinkTarget, patient string) (*Link, error) {
	if c.Principal == nil {
		return nil, &DeniedError{Reason: access.ReasonRole}
	}
	id := t.RecordingID
	if id == "" {
		ids, err := s.cat.ByCallID(ctx, c.Principal.CareProvider, t.CallID)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStorage, err)
		}
		switch len(ids) {
		case 0:
			return nil, ErrNotFound
		case 1:
			id = ids[0]
		default:
			return nil, &ConflictError{Reason: "ambiguous-call-id", Msg: fmt.Sprintf("%d recordings have this call ID; link by recording_id", len(ids))}
		}
	}
	rec, err := s.cat.Get(ctx, id)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if rec.CareProvider != c.Principal.CareProvider {
		// Answered like an unknown recording; the attempt is on record.
		_ = s.deny(ctx, c, &audit.Event{Action: ActionLink, RecordingID: id, Reason: access.ReasonTenant}, nil)
		return nil, ErrNotFound
	}
	detail := "target=stored"
	if rec.PatientIndex != nil {
		detail += " replaces=yes"
	}
	if err := s.AuthorizeLink(ctx, c, rec.CareProvider, rec.CareUnit, id, patient, detail); err != nil {
		return nil, err
	}
	fk, err := s.fileKey(rec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	sealed, err := fk.SealField(fieldPatient, []byte(patient))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	index := s.keys.BlindIndex(indexPatient, patient)
	l, err := s.cat.LinkPatient(ctx, id, index, sealed, c.Principal.HSAID, s.now())
	if err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	rec.PatientIndex, rec.PatientSealed = index, sealed
	if err := s.writeRecovery(context.WithoutCancel(ctx), rec, fk); err != nil {
		// The catalog holds the link; the scrubber rewrites stale recovery
		// records, so this is logged, not failed.
		s.log.WarnContext(ctx, "recovery record not rewritten after link", "recording", id, "err", err)
	}
	return &Link{RecordingID: id, State: "stored", Replaced: l.PreviousIndex != nil}, nil
}

// RefuseCapture audits a capture session refused before any policy
// decision: an unknown source address, or a client certificate that does
// not chain to the configured CAs or names no capture principal (reason),
// with the certificate's fingerprint in the detail when there is one.
func (s *Service) RefuseCapture(ctx context.Context, c Caller, reason, fingerprint string) error {
	ev := &audit.Event{Action: ActionCaptureStart, Outcome: audit.Denied, Reason: reason, CertFingerprint: fingerprint}
	if fingerprint != "" {
		ev.Detail = "certificate=" + fingerprint
	}
	return s.record(ctx, c, ev)
}

// Known reports whether recording id is stored (live) or was deleted.
func (s *Service) Known(ctx context.Context, id string) (live, deleted bool, err error) {
	live, deleted, err = s.cat.Known(ctx, id)
	if err != nil {
		return false, false, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	return live, deleted, nil
}
