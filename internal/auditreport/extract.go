package auditreport

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"time"

	"callvault/internal/audit"
	"callvault/internal/pnr"
)

// ExtractOptions are the care provider's choices for a patient log extract.
type ExtractOptions struct {
	// Names returns the display name of an HSA-ID (care provider, care unit
	// or staff member), "" if unknown. If nil, only HSA-IDs are shown.
	Names func(hsaID string) string
	// ShowStaff shows which staff member made each access (HSA-ID and
	// name). Whether staff are named is the care provider's choice; if
	// false, no staff identity appears anywhere in the extract.
	ShowStaff bool
	// From and To limit the extract to accesses with a time in [From, To).
	// If From is zero the extract starts at the beginning of the log; if
	// To is zero it runs to the end.
	From, To time.Time
	// Now is when the extract is made: it is shown on the extract, and the
	// patient's birth date must not be after it. If zero, time.Now().
	Now time.Time
}

// PatientExtract is a patient log extract: every access to one patient's
// data, in log order, and the number of denied attempts.
type PatientExtract struct {
	// Personnummer is the patient's number as YYYYMMDD-XXXX. It is the only
	// personnummer in the extract.
	Personnummer string    `json:"personnummer"`
	GeneratedAt  time.Time `json:"generated_at"`
	// From and To are ExtractOptions.From and To; zero when open.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	// StaffShown is ExtractOptions.ShowStaff. If false, Staff and
	// StaffName are empty in every entry.
	StaffShown bool           `json:"staff_shown"`
	Entries    []ExtractEntry `json:"entries"`
	// Denied counts the denied attempts to access the patient's data (the
	// read actions only). They showed nothing, so no details are given.
	Denied int `json:"denied_attempts"`
}

// ExtractEntry is one access in a patient log extract.
type ExtractEntry struct {
	Index            int64     `json:"log_index"`
	Time             time.Time `json:"time"` // Europe/Stockholm
	CareProvider     string    `json:"care_provider"`
	CareProviderName string    `json:"care_provider_name,omitempty"`
	CareUnit         string    `json:"care_unit"`
	CareUnitName     string    `json:"care_unit_name,omitempty"`
	Staff            string    `json:"staff,omitempty"` // HSA-ID; only if StaffShown
	StaffName        string    `json:"staff_name,omitempty"`
	Action           string    `json:"action"`      // the audit action code
	ActionText       string    `json:"action_text"` // plain Swedish
	Purpose          string    `json:"purpose"`
	PurposeText      string    `json:"purpose_text"` // Swedish
	RecordingID      string    `json:"recording_id,omitempty"`
	// Emergency is set for emergency access (nödåtkomst); EmergencyText
	// then explains it plainly. The staff's written reason is not shown.
	Emergency     bool   `json:"emergency_access"`
	EmergencyText string `json:"emergency_access_text,omitempty"`
}

// emergencyText explains emergency access in a row of the extract;
// emergencyLong is the fuller explanation of the HTML page.
const (
	emergencyText = "Nödåtkomst: uppgifterna öppnades i ett särskilt steg, med en skriftlig motivering, och granskas i efterhand."
	emergencyLong = "Nödåtkomst betyder att uppgifterna inte var öppna för den vårdenheten, till exempel för att de hör till en annan vårdenhet eller för att du har spärrat dem. " +
		"Personalen öppnade dem ändå i ett särskilt steg och skrev en motivering. Det är bara tillåtet när uppgifterna behövs för din vård, till exempel i en nödsituation. " +
		"Varje nödåtkomst granskas i efterhand av vårdgivaren."
)

// Extract makes the patient log extract (PDL 8 kap. 5 §) for patient, a
// personnummer or samordningsnummer in 12-digit form: every allowed search,
// metadata read, play and export of the patient's data, and the count of
// denied attempts. A malformed patient wraps ErrInvalid; the error never
// contains the number.
func Extract(ctx context.Context, src Source, patient string, opts ExtractOptions) (*PatientExtract, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	n, err := pnr.Parse(patient, now)
	if err != nil {
		return nil, fmt.Errorf("%w: patient: %w", ErrInvalid, err)
	}
	if n.Digits() != patient {
		return nil, fmt.Errorf("%w: patient: give the twelve-digit form YYYYMMDDNNNC", ErrInvalid)
	}
	if !opts.From.IsZero() && !opts.To.IsZero() && !opts.From.Before(opts.To) {
		return nil, fmt.Errorf("%w: extract range: From must be before To", ErrInvalid)
	}
	loc, err := stockholm()
	if err != nil {
		return nil, err
	}
	names := nameCache(opts.Names)
	x := &PatientExtract{
		Personnummer: formatPnr(patient),
		GeneratedAt:  now.In(loc),
		StaffShown:   opts.ShowStaff,
		Entries:      []ExtractEntry{},
	}
	if !opts.From.IsZero() {
		x.From = opts.From.In(loc)
	}
	if !opts.To.IsZero() {
		x.To = opts.To.In(loc)
	}
	err = src.ForPatient(ctx, patient, func(e *audit.Event) error {
		if e.Patient != patient {
			return nil
		}
		if (!opts.From.IsZero() && e.Time.Before(opts.From)) || (!opts.To.IsZero() && !e.Time.Before(opts.To)) {
			return nil
		}
		if e.Outcome == audit.Denied && isReadAction(e.Action) {
			x.Denied++
			return nil
		}
		if !isAccess(e) {
			return nil
		}
		en := ExtractEntry{
			Index:            e.Index,
			Time:             e.Time.In(loc),
			CareProvider:     e.CareProvider,
			CareProviderName: names(e.CareProvider),
			CareUnit:         e.CareUnit,
			CareUnitName:     names(e.CareUnit),
			Action:           e.Action,
			ActionText:       actionText(e.Action),
			Purpose:          e.Purpose,
			PurposeText:      purposeText(e.Purpose),
			RecordingID:      e.RecordingID,
			Emergency:        e.Flagged,
		}
		if opts.ShowStaff {
			en.Staff, en.StaffName = e.User, names(e.User)
		}
		if e.Flagged {
			en.EmergencyText = emergencyText
		}
		x.Entries = append(x.Entries, en)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("auditreport: extract: reading the log: %w", err)
	}
	return x, nil
}

// nameCache wraps a name lookup so that each HSA-ID is looked up once per
// report. A nil lookup knows no names.
func nameCache(lookup func(string) string) func(string) string {
	if lookup == nil {
		return func(string) string { return "" }
	}
	seen := map[string]string{}
	return func(id string) string {
		if id == "" {
			return ""
		}
		if n, ok := seen[id]; ok {
			return n
		}
		n := lookup(id)
		seen[id] = n
		return n
	}
}

// WriteJSON writes the extract as one indented JSON object.
func (x *PatientExtract) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(x); err != nil {
		return fmt.Errorf("auditreport: writing extract json: %w", err)
	}
	return nil
}

// WriteCSV writes one row per access under a header row (RFC 4180, UTF-8,
// Swedish time). The staff columns are empty unless StaffShown. The count
// of denied attempts is not in the CSV.
func (x *PatientExtract) WriteCSV(w io.Writer) error {
	cw := newCSV(w)
	_ = cw.Write([]string{"loggpost", "tidpunkt", "vårdgivare", "vårdgivare_namn", "vårdenhet", "vårdenhet_namn",
		"personal", "personal_namn", "åtgärd", "ändamål", "nödåtkomst", "inspelning"})
	for _, en := range x.Entries {
		emergency := "nej"
		if en.Emergency {
			emergency = "ja"
		}
		_ = cw.Write([]string{fmt.Sprint(en.Index), csvTimeOf(en.Time), en.CareProvider, cellText(en.CareProviderName),
			en.CareUnit, cellText(en.CareUnitName), en.Staff, cellText(en.StaffName), en.ActionText, en.PurposeText,
			emergency, en.RecordingID})
	}
	return flushCSV(cw, "extract")
}

//go:embed extract.html
var extractHTML string

// htmlExtract is what extract.html sees.
type htmlExtract struct {
	*PatientExtract
	Emergency bool // some entry is an emergency access
	Long      string
}

// WriteHTML writes the extract as a self-contained Swedish HTML page for
// the patient: an explanation of the extract and of the patient's rights,
// the table of accesses and the count of denied attempts. It has no
// scripts and no external resources, and prints on A4. Every value is
// escaped by html/template.
func (x *PatientExtract) WriteHTML(w io.Writer) error {
	t, err := template.New("extract").Funcs(template.FuncMap{
		"when": func(t time.Time) string { return t.Format("2006-01-02 15:04") },
		"who":  func(name, id string) struct{ Name, ID string } { return struct{ Name, ID string }{name, id} },
		"day": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.Format("2006-01-02")
		},
	}).Parse(extractHTML)
	if err != nil {
		return fmt.Errorf("auditreport: extract template: %w", err)
	}
	v := htmlExtract{PatientExtract: x, Long: emergencyLong}
	for _, en := range x.Entries {
		v.Emergency = v.Emergency || en.Emergency
	}
	if err := t.Execute(w, v); err != nil {
		return fmt.Errorf("auditreport: writing extract html: %w", err)
	}
	return nil
}
