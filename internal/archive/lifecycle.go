package archive

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"callvault/internal/access"
	"callvault/internal/audit"
	"callvault/internal/catalog"
	"callvault/internal/recording"
)

// MinRetentionYears is the shortest retention of a recording (PDL 3 kap. 17 §).
const MinRetentionYears = 10

// Retention configures how long recordings are kept and what happens after.
type Retention struct {
	// Years after the call's end that a recording is kept. If 0, 10; New
	// refuses fewer than MinRetentionYears.
	Years int
	// Dispose: after retention ends, delete (through the deletion path,
	// audited) rather than keep. The default is to keep.
	Dispose bool
}

// maxDecisionRecordings bounds one deletion decision.
const maxDecisionRecordings = 1000

// GoneError answers a read of a deleted recording.
type GoneError struct {
	DecisionID int64
	Kind       string
	DeletedAt  time.Time
}

func (e *GoneError) Error() string {
	return fmt.Sprintf("archive: recording deleted under decision %d (%s)", e.DecisionID, e.Kind)
}

// ConflictError is a lifecycle step refused because of the recording's or
// decision's state: a legal hold, an earlier deletion, a decision not
// awaiting that step.
type ConflictError struct {
	Reason      string // "legal-hold", "already-deleted", "decision-state"
	RecordingID string // the recording concerned, if any
	Msg         string
}

func (e *ConflictError) Error() string { return "archive: " + e.Msg }

// ReasonSelfApproval is the denial of a deletion approved by its registrar.
const ReasonSelfApproval = "self-approval"

// DeletionRequest is a records officer's registration of an IVO decision.
type DeletionRequest struct {
	CaseNumber     string   // IVO's case number (diarienummer)
	DecidedOn      string   // YYYY-MM-DD
	DocumentSHA256 string   // 64 hex: the SHA-256 of the decision document
	Recordings     []string // recording IDs
}

// checkReference validates a reference or case number (docs/lifecycle.md):
// at most 64 characters of letters, digits, space and ".-/:_", no run of
// more than six digits. The error never holds the value.
func checkReference(field, s string) error {
	if strings.TrimSpace(s) == "" {
		return &InvalidError{Field: field, Msg: "is required"}
	}
	if len(s) > 64 {
		return &InvalidError{Field: field, Msg: "is longer than 64 characters"}
	}
	run := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			run++
			if run > 6 {
				return &InvalidError{Field: field, Msg: "has a run of more than six digits (it must not hold a personnummer or phone number)"}
			}
			continue
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', strings.ContainsRune(" .-/:_ÅÄÖåäö", r):
		default:
			return &InvalidError{Field: field, Msg: "may hold only letters, digits, space and . - / : _"}
		}
		run = 0
	}
	return nil
}

// conflict maps the catalog's lifecycle errors to *ConflictError and
// ErrNotFound; other errors are storage errors.
func conflict(err error) error {
	var id string
	var re *catalog.RecordingError
	if errors.As(err, &re) {
		id = re.ID
	}
	switch {
	case errors.Is(err, catalog.ErrHeld):
		return &ConflictError{Reason: "legal-hold", RecordingID: id, Msg: "recording " + id + " is under legal hold"}
	case errors.Is(err, catalog.ErrDeleted):
		return &ConflictError{Reason: "already-deleted", RecordingID: id, Msg: "recording " + id + " is already deleted"}
	case errors.Is(err, catalog.ErrDecisionState):
		return &ConflictError{Reason: "decision-state", RecordingID: id, Msg: "decision is not awaiting approval, or the recording is in another open decision"}
	case errors.Is(err, catalog.ErrNotFound), errors.Is(err, catalog.ErrOtherProvider), errors.Is(err, catalog.ErrNoDecision):
		return ErrNotFound
	case errors.Is(err, catalog.ErrSelfApproval):
		return &DeniedError{Reason: ReasonSelfApproval}
	}
	return fmt.Errorf("%w: %w", ErrStorage, err)
}

// lifecycleTarget loads the care provider of recording id (live or
// deleted) and decides whether the caller may act on it as a records
// officer. ev is filled with the decision; a denial is recorded.
func (s *Service) lifecycleTarget(ctx context.Context, c Caller, ev *audit.Event, id string) (deleted bool, err error) {
	if !recording.ValidID(id) {
		ev.RecordingID, ev.Reason = "", "invalid-id"
		return false, s.deny(ctx, c, ev, &InvalidError{Field: "id", Msg: "a recording ID is 32 lowercase hex characters"})
	}
	var provider string
	rec, err := s.cat.Get(ctx, id)
	switch {
	case err == nil:
		provider = rec.CareProvider
	case errors.Is(err, catalog.ErrNotFound):
		t, terr := s.cat.Tombstone(ctx, id)
		if errors.Is(terr, catalog.ErrNotFound) {
			ev.Reason = "not-found"
			return false, s.deny(ctx, c, ev, ErrNotFound)
		} else if terr != nil {
			return false, fmt.Errorf("%w: %w", ErrStorage, terr)
		}
		provider, deleted = t.CareProvider, true
	default:
		return false, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	return deleted, s.decideLifecycle(ctx, c, ev, provider)
}

// decideLifecycle asks the policy whether the caller may act as a records
// officer on provider's data; a denial is recorded (another provider's
// data answers ErrNotFound).
func (s *Service) decideLifecycle(ctx context.Context, c Caller, ev *audit.Event, provider string) error {
	d := access.Decide(access.Request{Action: access.ActionLifecycle, Principal: c.Principal, Facts: access.Facts{CareProvider: provider}})
	ev.Reason = d.Reason
	if d.Allowed {
		return nil
	}
	if d.Conceal {
		return s.deny(ctx, c, ev, ErrNotFound)
	}
	return s.deny(ctx, c, ev, nil)
}

// SetHold puts a legal hold with reference on recording id. Records
// officers only; a deleted recording is a *ConflictError.
func (s *Service) SetHold(ctx context.Context, c Caller, id, reference string) (*catalog.Hold, error) {
	ev := &audit.Event{Action: "hold.set", RecordingID: id}
	if err := checkReference("reference", reference); err != nil {
		ev.Reason, ev.Detail = "invalid-input", "field=reference"
		return nil, s.deny(ctx, c, ev, err)
	}
	ev.Detail = "reference=" + reference
	deleted, err := s.lifecycleTarget(ctx, c, ev, id)
	if err != nil {
		return nil, err
	}
	if deleted {
		ev.Reason = "already-deleted"
		return nil, s.deny(ctx, c, ev, &ConflictError{Reason: "already-deleted", RecordingID: id, Msg: "recording " + id + " is already deleted"})
	}
	ev.Outcome = audit.Allowed
	if err := s.record(ctx, c, ev); err != nil {
		return nil, err
	}
	h, err := s.cat.SetHold(ctx, id, reference, c.Principal.HSAID, s.now())
	if err != nil {
		return nil, conflict(err)
	}
	s.log.InfoContext(ctx, "legal hold set", "recording", id, "hold", h.ID)
	return h, nil
}

// ReleaseHold releases hold holdID of recording id. Records officers only.
func (s *Service) ReleaseHold(ctx context.Context, c Caller, id string, holdID int64) (*catalog.Hold, error) {
	ev := &audit.Event{Action: "hold.release", RecordingID: id, Detail: "hold=" + strconv.FormatInt(holdID, 10)}
	if _, err := s.lifecycleTarget(ctx, c, ev, id); err != nil {
		return nil, err
	}
	ev.Outcome = audit.Allowed
	if err := s.record(ctx, c, ev); err != nil {
		return nil, err
	}
	h, err := s.cat.ReleaseHold(ctx, id, holdID, c.Principal.HSAID, s.now())
	switch {
	case errors.Is(err, catalog.ErrNoHold):
		return nil, ErrNotFound
	case errors.Is(err, catalog.ErrHoldReleased):
		return nil, &ConflictError{Reason: "released", RecordingID: id, Msg: "the hold is already released"}
	case err != nil:
		return nil, conflict(err)
	}
	return h, nil
}

// Holds lists recording id's legal holds, active and released. Records
// officers only.
func (s *Service) Holds(ctx context.Context, c Caller, id string) ([]*catalog.Hold, error) {
	ev := &audit.Event{Action: "hold.list", RecordingID: id}
	if _, err := s.lifecycleTarget(ctx, c, ev, id); err != nil {
		return nil, err
	}
	ev.Outcome = audit.Allowed
	if err := s.record(ctx, c, ev); err != nil {
		return nil, err
	}
	h, err := s.cat.Holds(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	return h, nil
}

// checkDeletionRequest validates r's fields (not the recordings' state).
func (s *Service) checkDeletionRequest(r *DeletionRequest) error {
	if err := checkReference("case_number", r.CaseNumber); err != nil {
		return err
	}
	day, err := time.Parse(time.DateOnly, r.DecidedOn)
	if err != nil {
		return &InvalidError{Field: "decided_on", Msg: "is not a date YYYY-MM-DD"}
	}
	if day.After(s.now()) {
		return &InvalidError{Field: "decided_on", Msg: "is in the future"}
	}
	if b, err := hex.DecodeString(r.DocumentSHA256); err != nil || len(b) != 32 || strings.ToLower(r.DocumentSHA256) != r.DocumentSHA256 {
		return &InvalidError{Field: "document_sha256", Msg: "is not 64 lowercase hex characters (the SHA-256 of the decision document)"}
	}
	if len(r.Recordings) == 0 || len(r.Recordings) > maxDecisionRecordings {
		return &InvalidError{Field: "recordings", Msg: fmt.Sprintf("must list 1 to %d recording IDs", maxDecisionRecordings)}
	}
	seen := map[string]bool{}
	for _, id := range r.Recordings {
		if !recording.ValidID(id) {
			return &InvalidError{Field: "recordings", Msg: "a recording ID is 32 lowercase hex characters"}
		}
		if seen[id] {
			return &InvalidError{Field: "recordings", Msg: "recording " + id + " is listed twice"}
		}
		seen[id] = true
	}
	return nil
}

// RegisterDeletion registers an IVO deletion decision for a second
// officer to approve. Nothing is deleted yet. Each recording must be the
// caller's care provider's, not deleted and not held.
func (s *Service) RegisterDeletion(ctx context.Context, c Caller, r DeletionRequest) (*catalog.Decision, error) {
	if err := s.checkDeletionRequest(&r); err != nil {
		var inv *InvalidError
		errors.As(err, &inv)
		return nil, s.deny(ctx, c, &audit.Event{Action: "deletion.register", Reason: "invalid-input", Detail: "field=" + inv.Field}, err)
	}
	detail := "case=" + r.CaseNumber
	for _, id := range r.Recordings {
		ev := &audit.Event{Action: "deletion.register", RecordingID: id, Detail: detail}
		deleted, err := s.lifecycleTarget(ctx, c, ev, id)
		if err != nil {
			return nil, err
		}
		if deleted {
			ev.Reason = "already-deleted"
			return nil, s.deny(ctx, c, ev, &ConflictError{Reason: "already-deleted", RecordingID: id, Msg: "recording " + id + " is already deleted"})
		}
	}
	d := &catalog.Decision{Kind: catalog.KindIVO, CareProvider: c.Principal.CareProvider, CaseNumber: r.CaseNumber,
		DecidedOn: r.DecidedOn, RegisteredBy: c.Principal.HSAID, RegisteredAt: s.now().UTC(), Recordings: r.Recordings}
	d.DocumentSHA256, _ = hex.DecodeString(r.DocumentSHA256)
	if err := s.cat.CheckDeletable(ctx, d.CareProvider, d.Recordings); err != nil {
		return nil, s.refuseDeletion(ctx, c, "deletion.register", detail, err)
	}
	for _, id := range r.Recordings {
		if err := s.record(ctx, c, &audit.Event{Action: "deletion.register", Outcome: audit.Allowed, Reason: access.ReasonRecordsOfficer,
			RecordingID: id, Detail: detail}); err != nil {
			return nil, err
		}
	}
	if err := s.cat.RegisterDeletion(ctx, d); err != nil {
		return nil, s.refuseDeletion(ctx, c, "deletion.register", detail, err)
	}
	s.log.InfoContext(ctx, "deletion decision registered", "decision", d.ID, "recordings", len(d.Recordings))
	return d, nil
}

// refuseDeletion records a lifecycle refusal that the catalog's state
// caused and returns the caller's error.
func (s *Service) refuseDeletion(ctx context.Context, c Caller, action, detail string, err error) error {
	out := conflict(err)
	var ce *ConflictError
	var de *DeniedError
	ev := &audit.Event{Action: action, Detail: detail}
	switch {
	case errors.As(out, &ce):
		ev.Reason, ev.RecordingID = ce.Reason, ce.RecordingID
	case errors.As(out, &de):
		ev.Reason = de.Reason
	case errors.Is(out, ErrNotFound):
		ev.Reason = "not-found"
	default:
		return out
	}
	return s.deny(ctx, c, ev, out)
}

// Decision returns deletion decision id to a records officer of its care
// provider.
func (s *Service) Decision(ctx context.Context, c Caller, id int64) (*catalog.Decision, error) {
	ev := &audit.Event{Action: "deletion.read", Detail: "decision=" + strconv.FormatInt(id, 10)}
	d, err := s.decisionFor(ctx, c, ev, id)
	if err != nil {
		return nil, err
	}
	ev.Outcome = audit.Allowed
	if err := s.record(ctx, c, ev); err != nil {
		return nil, err
	}
	return d, nil
}

// decisionFor loads decision id and decides whether the caller may act on
// it; a denial is recorded.
func (s *Service) decisionFor(ctx context.Context, c Caller, ev *audit.Event, id int64) (*catalog.Decision, error) {
	d, err := s.cat.Decision(ctx, id)
	if errors.Is(err, catalog.ErrNoDecision) {
		ev.Reason = "not-found"
		return nil, s.deny(ctx, c, ev, ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if err := s.decideLifecycle(ctx, c, ev, d.CareProvider); err != nil {
		return nil, err
	}
	return d, nil
}

// ApproveDeletion approves decision id as a second records officer and
// executes it: each recording is crypto-shredded (its wrapped file key
// destroyed with its catalog row), tombstoned, and its blobs removed from
// both sites (a site that is down keeps the removal queued).
func (s *Service) ApproveDeletion(ctx context.Context, c Caller, id int64) (*catalog.Decision, error) {
	detail := "decision=" + strconv.FormatInt(id, 10)
	ev := &audit.Event{Action: "deletion.approve", Detail: detail}
	d, err := s.decisionFor(ctx, c, ev, id)
	if err != nil {
		return nil, err
	}
	if d.RegisteredBy == c.Principal.HSAID {
		ev.Reason = ReasonSelfApproval
		return nil, s.deny(ctx, c, ev, nil)
	}
	if d.State != catalog.StateRegistered {
		ev.Reason = "decision-state"
		return nil, s.deny(ctx, c, ev, &ConflictError{Reason: "decision-state", Msg: "decision is " + d.State + ", not awaiting approval"})
	}
	if err := s.cat.CheckDeletable(ctx, d.CareProvider, d.Recordings); err != nil {
		return nil, s.refuseDeletion(ctx, c, "deletion.approve", detail, err)
	}
	for _, r := range d.Recordings {
		if err := s.record(ctx, c, &audit.Event{Action: "deletion.approve", Outcome: audit.Allowed, Reason: access.ReasonRecordsOfficer,
			RecordingID: r, Detail: detail + " case=" + d.CaseNumber}); err != nil {
			return nil, err
		}
	}
	if d, err = s.cat.ApproveDeletion(ctx, id, c.Principal.HSAID, s.now()); err != nil {
		return nil, s.refuseDeletion(ctx, c, "deletion.approve", detail, err)
	}
	if err := s.execute(ctx, c, d); err != nil {
		return nil, err
	}
	return s.cat.Decision(ctx, id)
}

// execute deletes every recording of approved decision d that is not yet
// deleted: audit first, then the catalog transaction, then the blobs.
func (s *Service) execute(ctx context.Context, c Caller, d *catalog.Decision) error {
	var names []string
	for _, st := range s.sites.Sites() {
		names = append(names, st.Name())
	}
	detail := fmt.Sprintf("decision=%d kind=%s case=%s", d.ID, d.Kind, d.CaseNumber)
	for _, id := range d.Recordings {
		if _, err := s.cat.Tombstone(ctx, id); err == nil {
			continue // done before an interruption
		}
		if err := s.record(ctx, c, &audit.Event{Action: "delete", Outcome: audit.Allowed, Reason: d.Kind, RecordingID: id, Detail: detail}); err != nil {
			return err
		}
		if err := s.cat.Shred(ctx, d, id, s.recoveryNames(id), names, s.now()); err != nil {
			return fmt.Errorf("%w: %w", ErrStorage, err)
		}
		s.metrics.deleted()
		s.log.InfoContext(ctx, "recording deleted (key destroyed)", "recording", id, "decision", d.ID, "kind", d.Kind)
	}
	if _, err := s.cat.FinishDecision(ctx, d.ID); err != nil {
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if err := s.cat.Checkpoint(ctx); err != nil {
		s.log.WarnContext(ctx, "catalog checkpoint after deletion deferred", "err", err)
	}
	s.removeBlobs(ctx)
	return nil
}

// removeBlobs works through the queue of blob removals once.
func (s *Service) removeBlobs(ctx context.Context) (remaining int) {
	pend, err := s.cat.PendingDeletions(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "reading the removal queue failed", "err", err)
		return -1
	}
	for _, p := range pend {
		if ctx.Err() != nil {
			return len(pend)
		}
		if err := s.sites.DeleteAt(ctx, p.Site, p.RecordingID); err != nil {
			s.log.WarnContext(ctx, "blob removal failed; will retry", "recording", p.RecordingID, "site", p.Site, "err", err)
			_ = s.cat.NoteDeletionFailure(ctx, p.RecordingID, p.Site, err.Error())
			remaining++
			continue
		}
		if err := s.cat.ResolveDeletion(ctx, p.RecordingID, p.Site); err != nil {
			s.log.ErrorContext(ctx, "resolving a blob removal failed", "recording", p.RecordingID, "err", err)
			remaining++
		}
	}
	return remaining
}

// resumeDeletions finishes decisions approved before an interruption.
func (s *Service) resumeDeletions(ctx context.Context) error {
	ds, err := s.cat.Approved(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	for _, d := range ds {
		if err := s.execute(ctx, Caller{}, d); err != nil {
			return err
		}
	}
	return nil
}

// Dispose deletes, through the deletion path, the recordings whose
// retention has ended when the policy is "dispose" (one decision of kind
// disposal per care provider and pass); with "keep" it does nothing. It
// returns how many recordings it deleted.
func (s *Service) Dispose(ctx context.Context) (int, error) {
	if !s.retention.Dispose {
		return 0, nil
	}
	exp, err := s.cat.ExpiredRecordings(ctx, s.now(), maxDecisionRecordings)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	byProvider := map[string][]string{}
	var order []string
	for _, e := range exp {
		if byProvider[e.CareProvider] == nil {
			order = append(order, e.CareProvider)
		}
		byProvider[e.CareProvider] = append(byProvider[e.CareProvider], e.ID)
	}
	n := 0
	for _, prov := range order {
		now := s.now().UTC()
		d := &catalog.Decision{Kind: catalog.KindDisposal, CareProvider: prov, CaseNumber: "retention-ended",
			DecidedOn: now.Format(time.DateOnly), RegisteredBy: catalog.SystemActor, RegisteredAt: now, Recordings: byProvider[prov]}
		for _, id := range d.Recordings {
			if err := s.record(ctx, Caller{}, &audit.Event{Action: "disposal.register", Outcome: audit.Allowed, Reason: "retention-ended",
				RecordingID: id, Detail: fmt.Sprintf("retention_years=%d", s.retention.Years)}); err != nil {
				return n, err
			}
		}
		if err := s.cat.RegisterDeletion(ctx, d); err != nil {
			return n, fmt.Errorf("%w: %w", ErrStorage, err)
		}
		if d, err = s.cat.ApproveDeletion(ctx, d.ID, catalog.SystemActor, s.now()); err != nil {
			return n, fmt.Errorf("%w: %w", ErrStorage, err)
		}
		if err := s.execute(ctx, Caller{}, d); err != nil {
			return n, err
		}
		n += len(d.Recordings)
	}
	return n, nil
}

// gone answers a read of deleted recording id for a caller who could
// otherwise have asked: a clinician of its care provider. Others learn
// nothing (ErrNotFound).
func (s *Service) gone(ctx context.Context, c Caller, ev *audit.Event, id string) error {
	t, err := s.cat.Tombstone(ctx, id)
	if errors.Is(err, catalog.ErrNotFound) {
		ev.Reason = "not-found"
		return s.deny(ctx, c, ev, ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if c.Principal == nil || c.Principal.CareProvider != t.CareProvider || !c.Principal.Has(access.RoleClinician) {
		ev.Reason = "not-found"
		return s.deny(ctx, c, ev, ErrNotFound)
	}
	ev.Reason = "deleted"
	return s.deny(ctx, c, ev, &GoneError{DecisionID: t.DecisionID, Kind: t.Kind, DeletedAt: t.DeletedAt})
}

// RunDisposal calls Dispose every interval until ctx ends (only useful when
// the policy is "dispose").
func (s *Service) RunDisposal(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.Dispose(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "disposal pass failed", "err", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "recordings disposed after retention", "recordings", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
