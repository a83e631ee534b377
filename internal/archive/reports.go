package archive

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"callvault/internal/access"
	"callvault/internal/audit"
	"callvault/internal/auditreport"
	"callvault/internal/pnr"
)

// Reports configures the audit reports (docs/audit-reports.md).
type Reports struct {
	// Rules are the log follow-up's thresholds; Protected is filled in
	// from the directory.
	Rules auditreport.Rules
	// ShowStaff: patient log extracts name the staff member, as the care
	// provider chooses; otherwise they name care units only.
	ShowStaff bool
}

// providerSource is the log as one care provider's auditor may see it:
// events by that provider's users, and events without a user
// (unauthenticated attempts, the system's own).
type providerSource struct {
	log      auditreport.Source
	provider string
}

func (p providerSource) keep(fn func(*audit.Event) error) func(*audit.Event) error {
	return func(e *audit.Event) error {
		if e.CareProvider != "" && e.CareProvider != p.provider {
			return nil
		}
		return fn(e)
	}
}

func (p providerSource) Range(ctx context.Context, from, to time.Time, fn func(*audit.Event) error) error {
	return p.log.Range(ctx, from, to, p.keep(fn))
}

func (p providerSource) ForPatient(ctx context.Context, patient string, fn func(*audit.Event) error) error {
	return p.log.ForPatient(ctx, patient, p.keep(fn))
}

// authorizeReport lets only auditors run a report, and audits the run
// (with the patient, for an extract) before anything is read.
func (s *Service) authorizeReport(ctx context.Context, c Caller, action, detail, patient string) (auditreport.Source, error) {
	e := &audit.Event{Action: action, Detail: detail, Patient: patient}
	if s.auditLog == nil {
		return nil, fmt.Errorf("%w: the audit log is not served", ErrNoLogData)
	}
	if !c.Principal.Has(access.RoleAuditor) {
		e.Reason = access.ReasonRole
		return nil, s.deny(ctx, c, e, nil)
	}
	e.Outcome, e.Reason = audit.Allowed, "auditor"
	if err := s.record(ctx, c, e); err != nil {
		return nil, err
	}
	if c.Principal.CareProvider == "" {
		// A local operator (the CLI, with the data directory and the
		// keyring in hand) sees every care provider's events.
		return s.auditLog, nil
	}
	return providerSource{log: s.auditLog, provider: c.Principal.CareProvider}, nil
}

func reportError(err error) error {
	if errors.Is(err, auditreport.ErrInvalid) {
		return &InvalidError{Field: "report", Msg: "invalid report request", Err: err}
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	return nil
}

func checkRange(from, to time.Time) error {
	if from.IsZero() || to.IsZero() || !from.Before(to) {
		return &InvalidError{Field: "from", Msg: "give from and to (RFC 3339), from before to"}
	}
	return nil
}

// AuditExtract makes the patient log extract (PDL 8 kap. 5 §) of the
// accesses to patient by the caller's care provider, optionally limited
// to [from, to). Only auditors may; the request is audited first.
func (s *Service) AuditExtract(ctx context.Context, c Caller, patient string, from, to time.Time) (*auditreport.PatientExtract, error) {
	n, err := pnr.Parse(patient, s.now())
	if err != nil {
		_ = s.RejectInput(ctx, c, "audit.extract", "patient")
		return nil, &InvalidError{Field: "patient", Msg: err.Error(), Err: err}
	}
	src, err := s.authorizeReport(ctx, c, "audit.extract", "", n.Digits())
	if err != nil {
		return nil, err
	}
	names, err := s.names(ctx)
	if err != nil {
		return nil, err
	}
	x, err := auditreport.Extract(ctx, src, n.Digits(), auditreport.ExtractOptions{
		Names: names, ShowStaff: s.reports.ShowStaff, From: from, To: to, Now: s.now(),
	})
	return x, reportError(err)
}

// AuditReview runs the log follow-up over [from, to) for the caller's care
// provider. Only auditors may; the run is audited first.
func (s *Service) AuditReview(ctx context.Context, c Caller, from, to time.Time) (*auditreport.ReviewReport, error) {
	if err := checkRange(from, to); err != nil {
		_ = s.RejectInput(ctx, c, "audit.review", "from")
		return nil, err
	}
	src, err := s.authorizeReport(ctx, c, "audit.review", rangeDetail(from, to), "")
	if err != nil {
		return nil, err
	}
	rules := s.reports.Rules
	var lookupErr error
	rules.Protected = func(patient string) bool {
		n, err := pnr.Parse(patient, s.now())
		if err != nil {
			return false
		}
		p, err := s.dir.Protected(ctx, PatientIndex(s.keys, n))
		if err != nil && lookupErr == nil {
			lookupErr = err
		}
		return p
	}
	r, err := auditreport.Review(ctx, src, from, to, rules)
	if err == nil && lookupErr != nil {
		err = lookupErr
	}
	return r, reportError(err)
}

// AuditMark marks a follow-up finding reviewed: outcome (no-action,
// followed-up, reported) and a note. The mark is itself the log event
// (action audit.review-mark, the note sealed), so it is part of the log it
// describes. Only auditors may. It returns the mark's log index.
func (s *Service) AuditMark(ctx context.Context, c Caller, finding, outcome, note string) (int64, error) {
	detail, err := auditreport.ReviewMarkDetail(finding, outcome)
	if err != nil {
		_ = s.RejectInput(ctx, c, auditreport.ActionReviewMark, "finding")
		return 0, &InvalidError{Field: "finding", Msg: "give a finding ID (16 hex digits) and an outcome: no-action, followed-up or reported", Err: err}
	}
	if len(note) > 4000 {
		_ = s.RejectInput(ctx, c, auditreport.ActionReviewMark, "note")
		return 0, &InvalidError{Field: "note", Msg: "at most 4000 bytes"}
	}
	e := &audit.Event{Action: auditreport.ActionReviewMark, Detail: detail, Note: note}
	if !c.Principal.Has(access.RoleAuditor) {
		e.Reason = access.ReasonRole
		return 0, s.deny(ctx, c, e, nil)
	}
	e.Outcome, e.Reason = audit.Allowed, "auditor"
	if err := s.record(ctx, c, e); err != nil {
		return 0, err
	}
	return e.Index, nil
}

// AuditIncident reports every recording read in [from, to) by actor (any
// of the caller's care provider's users if actor is zero) and the patients
// affected. Only auditors may; the run is audited first.
func (s *Service) AuditIncident(ctx context.Context, c Caller, from, to time.Time, actor auditreport.Actor) (*auditreport.IncidentReport, error) {
	if err := checkRange(from, to); err != nil {
		_ = s.RejectInput(ctx, c, "audit.incident", "from")
		return nil, err
	}
	detail := rangeDetail(from, to)
	if actor.User != "" {
		detail += " user=" + actor.User
	}
	if actor.CertFingerprint != "" {
		detail += " cert_sha256=" + actor.CertFingerprint
	}
	if actor.Address != (netip.Prefix{}) {
		detail += " address=" + actor.Address.String()
	}
	src, err := s.authorizeReport(ctx, c, "audit.incident", detail, "")
	if err != nil {
		return nil, err
	}
	r, err := auditreport.Incident(ctx, src, from, to, actor)
	return r, reportError(err)
}

func rangeDetail(from, to time.Time) string {
	return "from=" + from.UTC().Format(time.RFC3339) + " to=" + to.UTC().Format(time.RFC3339)
}

// names returns a lookup of display names for units and users, for the
// extract.
func (s *Service) names(ctx context.Context) (func(string) string, error) {
	units, err := s.dir.Units(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	entries, err := s.dir.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	m := map[string]string{}
	for _, u := range units {
		m[u.HSAID] = u.Name
	}
	for _, e := range entries {
		m[e.HSAID] = e.DisplayName
	}
	return func(id string) string { return m[id] }, nil
}
