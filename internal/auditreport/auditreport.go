// Package auditreport computes the reports that are made from the audit
// log (docs/audit-reports.md):
//
//   - the patient log extract (patientloggutdrag, PDL 8 kap. 5 §, HSLF-FS
//     2016:40 4 kap. 10 §): Extract;
//   - the log follow-up (logguppföljning, HSLF-FS 2016:40 4 kap. 9 §):
//     Review, with review marks kept as audit events;
//   - the incident report for a suspected breach and a GDPR Art. 33
//     notification: Incident.
//
// Each report is a pure function of a Source and its options; the package
// keeps no state and writes nothing to the log. Reports hold personal data
// (personnummer, HSA-IDs, notes); error messages never do.
package auditreport

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Swedish time must work on a machine without zoneinfo

	"callvault/internal/audit"
)

// Source is the audit log as the reports read it. Events arrive decrypted
// (Patient, EmergencyReason, Note in plaintext) and in log order (Index ascending).
type Source interface {
	// Range calls fn for every event whose Time is in [from, to).
	Range(ctx context.Context, from, to time.Time, fn func(*audit.Event) error) error
	// ForPatient calls fn for every event whose Patient is patient (12 digits).
	ForPatient(ctx context.Context, patient string, fn func(*audit.Event) error) error
}

// ErrInvalid is wrapped by every error about the caller's input: a
// malformed patient, an empty time range, bad rules, a malformed review mark.
// Errors from the Source are returned wrapped as they are.
var ErrInvalid = errors.New("auditreport: invalid argument")

// The actions the reports know. The first three are the archive's;
// ActionExport is reserved for an export that does not exist yet.
const (
	ActionSearch       = "search"
	ActionReadMetadata = "read-metadata"
	ActionPlay         = "play"
	ActionExport       = "export"
	// ActionReviewMark is the action of a review mark (docs/audit-reports.md).
	ActionReviewMark = "audit.review-mark"
	// ActionCaptureEnd ends a live capture session; with Reason
	// CaptureFailed nothing was stored (docs/siprec.md).
	ActionCaptureEnd = "capture.end"
	CaptureFailed    = "failed"
)

// Zone is the time zone in which every report shows times.
const Zone = "Europe/Stockholm"

// stockholm loads Zone. The zone data is compiled in (time/tzdata), so this
// fails only if that data is broken.
func stockholm() (*time.Location, error) {
	loc, err := time.LoadLocation(Zone)
	if err != nil {
		return nil, fmt.Errorf("auditreport: loading time zone: %w", err)
	}
	return loc, nil
}

// isAccess reports whether e is an access to patient data: allowed, one of
// the read actions, with a patient.
func isAccess(e *audit.Event) bool {
	return e.Outcome == audit.Allowed && e.Patient != "" && isReadAction(e.Action)
}

func isReadAction(a string) bool {
	switch a {
	case ActionSearch, ActionReadMetadata, ActionPlay, ActionExport:
		return true
	}
	return false
}

// isRecordingRead reports whether e read a recording: allowed metadata
// read, play or export with a recording ID.
func isRecordingRead(e *audit.Event) bool {
	if e.Outcome != audit.Allowed || e.RecordingID == "" {
		return false
	}
	switch e.Action {
	case ActionReadMetadata, ActionPlay, ActionExport:
		return true
	}
	return false
}

// revealingSearch reports whether e is an allowed search that showed at
// least one hit. A search whose Detail has no readable hits=N counts as
// revealing: an incident report must rather name one patient too many.
func revealingSearch(e *audit.Event) bool {
	if e.Outcome != audit.Allowed || e.Action != ActionSearch || e.Patient == "" {
		return false
	}
	n, ok := detailInt(e.Detail, "hits")
	return !ok || n > 0
}

// detailInt finds key=N among the space-separated fields of detail.
func detailInt(detail, key string) (int, bool) {
	for f := range strings.FieldsSeq(detail) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k != key {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// formatPnr formats 12 digits as YYYYMMDD-XXXX; anything else is returned
// unchanged.
func formatPnr(digits string) string {
	if len(digits) != 12 {
		return digits
	}
	return digits[:8] + "-" + digits[8:]
}

// actionText describes an action in plain Swedish, as the extract shows it.
func actionText(a string) string {
	switch a {
	case ActionSearch:
		return "sökte efter dina samtal"
	case ActionReadMetadata:
		return "läste uppgifter om ett samtal"
	case ActionPlay:
		return "lyssnade på en inspelning"
	case ActionExport:
		return "exporterade en inspelning"
	}
	return a
}

// purposeText returns the Swedish text of a purpose (an access.Purpose
// code): "ej angivet" for none, the code itself for one it does not know.
func purposeText(p string) string {
	switch p {
	case "":
		return "ej angivet"
	case "care":
		return "vård och behandling"
	case "complaint":
		return "klagomålsutredning"
	case "adverse-event":
		return "avvikelseutredning"
	case "patient-request":
		return "patientens begäran"
	case "supervision":
		return "tillsyn (IVO eller IMY)"
	}
	return p
}

// newCSV returns an RFC 4180 writer (CRLF line ends).
func newCSV(w io.Writer) *csv.Writer {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	return cw
}

// flushCSV flushes cw and returns its error, wrapped with what was written.
func flushCSV(cw *csv.Writer, what string) error {
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("auditreport: writing %s csv: %w", what, err)
	}
	return nil
}

// cellText neutralizes a free-text CSV cell that a spreadsheet would run as
// a formula (OWASP "CSV injection") by prefixing a single quote.
func cellText(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// csvTime is the time format of every CSV cell, Swedish time.
const csvTime = "2006-01-02 15:04:05"

// csvTimeOf formats t for a CSV cell; "" for the zero time.
func csvTimeOf(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(csvTime)
}

// checkRange refuses an empty or inverted range.
func checkRange(from, to time.Time) error {
	if from.IsZero() || to.IsZero() || !from.Before(to) {
		return fmt.Errorf("%w: the time range must be non-empty, from before to", ErrInvalid)
	}
	return nil
}
