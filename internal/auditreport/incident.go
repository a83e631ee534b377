package auditreport

import (
	"bufio"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"callvault/internal/audit"
)

// The categories of personal data an incident report names (GDPR Art. 33(3)(a)).
const (
	CategoryAudio    = "health data: recorded calls with a nurse"
	CategoryMetadata = "health data: call metadata (time, care unit, staff, caller's number)"
)

// Actor selects whose events an incident report covers. An event must
// match every field that is set; the zero Actor matches every event.
type Actor struct {
	// User is an HSA-ID, matched exactly.
	User string `json:"user,omitempty"`
	// CertFingerprint is the hex SHA-256 of a client certificate (DER),
	// matched case-insensitively against Event.CertFingerprint and, for an
	// authenticate denial, against "cert_sha256=" in Event.Detail.
	CertFingerprint string `json:"cert_fingerprint,omitempty"`
	// Address is a prefix that must contain Event.ClientAddr (an
	// IPv4-mapped IPv6 address matches as IPv4).
	Address netip.Prefix `json:"address,omitzero"`
}

// check refuses a malformed fingerprint or an invalid prefix.
func (a Actor) check() error {
	if a.CertFingerprint != "" {
		if b, err := hex.DecodeString(a.CertFingerprint); err != nil || len(b) != 32 {
			return fmt.Errorf("%w: actor: a certificate fingerprint is 64 hex digits", ErrInvalid)
		}
	}
	if a.Address != (netip.Prefix{}) && !a.Address.IsValid() {
		return fmt.Errorf("%w: actor: invalid address prefix", ErrInvalid)
	}
	return nil
}

// matches reports whether e is the actor's.
func (a Actor) matches(e *audit.Event) bool {
	if a.User != "" && e.User != a.User {
		return false
	}
	if a.CertFingerprint != "" && !strings.EqualFold(eventFingerprint(e), a.CertFingerprint) {
		return false
	}
	if a.Address != (netip.Prefix{}) {
		ip, err := netip.ParseAddr(e.ClientAddr)
		if err != nil {
			return false
		}
		ip = ip.WithZone("")
		if !a.Address.Contains(ip) && !a.Address.Contains(ip.Unmap()) {
			return false
		}
	}
	return true
}

// eventFingerprint is e's certificate fingerprint: CertFingerprint, or for
// an authenticate denial that lacks it, the cert_sha256 of its Detail.
func eventFingerprint(e *audit.Event) string {
	if e.CertFingerprint != "" {
		return e.CertFingerprint
	}
	for f := range strings.FieldsSeq(e.Detail) {
		if v, ok := strings.CutPrefix(f, "cert_sha256="); ok {
			return v
		}
	}
	return ""
}

// IncidentReport says which recordings an actor read in a window, whose
// they are, and what a GDPR Art. 33 notification needs.
type IncidentReport struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Actor Actor     `json:"actor"`
	// DataSubjects is the number of distinct patients affected: those of
	// the recordings read and those revealed by a search.
	DataSubjects int `json:"data_subjects"`
	// Records is the number of distinct recordings read.
	Records int `json:"records"`
	// AccessEvents is the number of recording reads plus revealing searches.
	AccessEvents int `json:"access_events"`
	// RecordsWithoutPatient counts recordings read whose patient the log
	// does not name; they are in Records but not in DataSubjects.
	RecordsWithoutPatient int `json:"records_without_patient"`
	// FirstAccess and LastAccess bound the access events; zero if none.
	FirstAccess time.Time `json:"first_access,omitzero"`
	LastAccess  time.Time `json:"last_access,omitzero"`
	// Categories are CategoryAudio and/or CategoryMetadata.
	Categories []string          `json:"categories"`
	Recordings []RecordingAccess `json:"recordings"`
	Patients   []PatientAccess   `json:"patients"`
	// Actions counts every event of the actor in the window by action
	// and outcome, denials included.
	Actions []ActionCount `json:"actions"`
}

// RecordingAccess is one recording read by the actor.
type RecordingAccess struct {
	RecordingID   string    `json:"recording_id"`
	Patient       string    `json:"patient,omitempty"` // 12 digits; "" if the log does not name one
	Plays         int       `json:"plays"`
	MetadataReads int       `json:"metadata_reads"`
	Exports       int       `json:"exports"`
	First         time.Time `json:"first"`
	Last          time.Time `json:"last"`
	Users         []string  `json:"users"`  // distinct HSA-IDs, sorted
	Events        []int64   `json:"events"` // log indexes, ascending
}

// PatientAccess is one affected patient.
type PatientAccess struct {
	Patient string `json:"patient"` // 12 digits
	// RecordingsRead is the number of the patient's distinct recordings read.
	RecordingsRead int `json:"recordings_read"`
	// RevealedBySearch is the number of allowed searches for the patient
	// that showed at least one hit.
	RevealedBySearch int       `json:"revealed_by_search"`
	MetadataReads    int       `json:"metadata_reads"`
	Plays            int       `json:"plays"`
	Exports          int       `json:"exports"`
	First            time.Time `json:"first_access"`
	Last             time.Time `json:"last_access"`
}

// ActionCount counts an actor's events of one action.
type ActionCount struct {
	Action  string `json:"action"`
	Allowed int    `json:"allowed"`
	Denied  int    `json:"denied"`
}

// Incident reports what actor read in [from, to): every recording read
// (allowed metadata read, play or export), every patient affected by those
// or by a revealing search, and the counts of a GDPR Art. 33 notification.
// An empty range or a malformed actor wraps ErrInvalid.
func Incident(ctx context.Context, src Source, from, to time.Time, actor Actor) (*IncidentReport, error) {
	if err := checkRange(from, to); err != nil {
		return nil, err
	}
	if err := actor.check(); err != nil {
		return nil, err
	}
	loc, err := stockholm()
	if err != nil {
		return nil, err
	}
	recs := map[string]*RecordingAccess{}
	pats := map[string]*PatientAccess{}
	patRecs := map[string]map[string]bool{}
	actions := map[string]*ActionCount{}
	rep := &IncidentReport{From: from.In(loc), To: to.In(loc), Actor: actor}
	var audio, metadata bool

	touch := func(p string, t time.Time) *PatientAccess {
		pa := pats[p]
		if pa == nil {
			pa = &PatientAccess{Patient: p, First: t, Last: t}
			pats[p] = pa
		}
		pa.First, pa.Last = earlier(pa.First, t), later(pa.Last, t)
		return pa
	}
	err = src.Range(ctx, from, to, func(e *audit.Event) error {
		if !actor.matches(e) {
			return nil
		}
		ac := actions[e.Action]
		if ac == nil {
			ac = &ActionCount{Action: e.Action}
			actions[e.Action] = ac
		}
		switch e.Outcome {
		case audit.Allowed:
			ac.Allowed++
		case audit.Denied:
			ac.Denied++
		}
		t := e.Time.In(loc)
		switch {
		case isRecordingRead(e):
			rep.AccessEvents++
			r := recs[e.RecordingID]
			if r == nil {
				r = &RecordingAccess{RecordingID: e.RecordingID, First: t, Last: t}
				recs[e.RecordingID] = r
			}
			r.First, r.Last = earlier(r.First, t), later(r.Last, t)
			r.Events = append(r.Events, e.Index)
			if e.User != "" && !slices.Contains(r.Users, e.User) {
				r.Users = append(r.Users, e.User)
			}
			if r.Patient == "" {
				r.Patient = e.Patient
			}
			var pa *PatientAccess
			if e.Patient != "" {
				pa = touch(e.Patient, t)
				if patRecs[e.Patient] == nil {
					patRecs[e.Patient] = map[string]bool{}
				}
				patRecs[e.Patient][e.RecordingID] = true
			} else {
				pa = &PatientAccess{} // counted on the recording only
			}
			switch e.Action {
			case ActionPlay:
				r.Plays++
				pa.Plays++
				audio = true
			case ActionExport:
				r.Exports++
				pa.Exports++
				audio = true
			case ActionReadMetadata:
				r.MetadataReads++
				pa.MetadataReads++
				metadata = true
			}
		case revealingSearch(e):
			rep.AccessEvents++
			touch(e.Patient, t).RevealedBySearch++
			metadata = true
		default:
			return nil
		}
		if rep.FirstAccess.IsZero() {
			rep.FirstAccess, rep.LastAccess = t, t
		}
		rep.FirstAccess, rep.LastAccess = earlier(rep.FirstAccess, t), later(rep.LastAccess, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("auditreport: incident: reading the log: %w", err)
	}

	rep.Recordings = make([]RecordingAccess, 0, len(recs))
	for _, r := range recs {
		slices.Sort(r.Users)
		slices.Sort(r.Events)
		if r.Patient == "" {
			rep.RecordsWithoutPatient++
		}
		rep.Recordings = append(rep.Recordings, *r)
	}
	slices.SortFunc(rep.Recordings, func(a, b RecordingAccess) int {
		return cmp.Or(a.First.Compare(b.First), cmp.Compare(a.RecordingID, b.RecordingID))
	})
	rep.Patients = make([]PatientAccess, 0, len(pats))
	for p, pa := range pats {
		pa.RecordingsRead = len(patRecs[p])
		rep.Patients = append(rep.Patients, *pa)
	}
	slices.SortFunc(rep.Patients, func(a, b PatientAccess) int { return cmp.Compare(a.Patient, b.Patient) })
	rep.Actions = make([]ActionCount, 0, len(actions))
	for _, ac := range actions {
		rep.Actions = append(rep.Actions, *ac)
	}
	slices.SortFunc(rep.Actions, func(a, b ActionCount) int { return cmp.Compare(a.Action, b.Action) })
	rep.DataSubjects, rep.Records = len(rep.Patients), len(rep.Recordings)
	rep.Categories = []string{}
	if audio {
		rep.Categories = append(rep.Categories, CategoryAudio)
	}
	if metadata {
		rep.Categories = append(rep.Categories, CategoryMetadata)
	}
	return rep, nil
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// WriteJSON writes the report as one indented JSON object. It names the
// affected patients.
func (r *IncidentReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("auditreport: writing incident json: %w", err)
	}
	return nil
}

// WriteCSV writes one row per affected patient, for the personal
// notification letters, under a header row (RFC 4180, UTF-8, Swedish
// time): personnummer (YYYYMMDD-XXXX), recordings_read,
// revealed_by_search, first_access, last_access and actions, the non-zero
// counts as e.g. "search=1 read-metadata=1 play=2".
func (r *IncidentReport) WriteCSV(w io.Writer) error {
	cw := newCSV(w)
	_ = cw.Write([]string{"personnummer", "recordings_read", "revealed_by_search", "first_access", "last_access", "actions"})
	for _, p := range r.Patients {
		_ = cw.Write([]string{formatPnr(p.Patient), strconv.Itoa(p.RecordingsRead), strconv.Itoa(p.RevealedBySearch),
			csvTimeOf(p.First), csvTimeOf(p.Last), p.actions()})
	}
	return flushCSV(cw, "incident")
}

// actions formats p's non-zero counts per action.
func (p PatientAccess) actions() string {
	var parts []string
	for _, c := range []struct {
		action string
		n      int
	}{{ActionSearch, p.RevealedBySearch}, {ActionReadMetadata, p.MetadataReads}, {ActionPlay, p.Plays}, {ActionExport, p.Exports}} {
		if c.n > 0 {
			parts = append(parts, c.action+"="+strconv.Itoa(c.n))
		}
	}
	return strings.Join(parts, " ")
}

// WriteText writes a summary for the incident team: the window, the
// actor, the Art. 33 counts, the events per action and the recordings
// read. It names no patient.
func (r *IncidentReport) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "Incident report\n")
	fmt.Fprintf(bw, "Window: %s – %s (%s)\n", r.From.Format(csvTime), r.To.Format(csvTime), Zone)
	fmt.Fprintf(bw, "Actor: %s\n", r.Actor.describe())
	fmt.Fprintf(bw, "\nFor a GDPR Art. 33 notification:\n")
	fmt.Fprintf(bw, "  data subjects (distinct patients): %d\n", r.DataSubjects)
	fmt.Fprintf(bw, "  records (distinct recordings read): %d\n", r.Records)
	fmt.Fprintf(bw, "  access events: %d\n", r.AccessEvents)
	if r.RecordsWithoutPatient > 0 {
		fmt.Fprintf(bw, "  recordings read whose patient the log does not name: %d\n", r.RecordsWithoutPatient)
	}
	if !r.FirstAccess.IsZero() {
		fmt.Fprintf(bw, "  first access: %s, last access: %s\n", r.FirstAccess.Format(csvTime), r.LastAccess.Format(csvTime))
	}
	cats := "none"
	if len(r.Categories) > 0 {
		cats = strings.Join(r.Categories, "; ")
	}
	fmt.Fprintf(bw, "  categories: %s\n", cats)
	fmt.Fprintf(bw, "\nEvents by action (allowed, denied):\n")
	if len(r.Actions) == 0 {
		fmt.Fprintf(bw, "  none\n")
	}
	for _, a := range r.Actions {
		fmt.Fprintf(bw, "  %-20s %6d %6d\n", printable(a.Action), a.Allowed, a.Denied)
	}
	fmt.Fprintf(bw, "\nRecordings read:\n")
	if len(r.Recordings) == 0 {
		fmt.Fprintf(bw, "  none\n")
	}
	for _, rc := range r.Recordings {
		users := make([]string, len(rc.Users))
		for i, u := range rc.Users {
			users[i] = printable(u)
		}
		fmt.Fprintf(bw, "  %s  plays=%d metadata_reads=%d exports=%d  %s – %s  by %s\n", printable(rc.RecordingID),
			rc.Plays, rc.MetadataReads, rc.Exports, rc.First.Format(csvTime), rc.Last.Format(csvTime), strings.Join(users, ", "))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("auditreport: writing incident text: %w", err)
	}
	return nil
}

// describe says in English which events the actor selects.
func (a Actor) describe() string {
	var parts []string
	if a.User != "" {
		parts = append(parts, "user "+printable(a.User))
	}
	if a.CertFingerprint != "" {
		parts = append(parts, "certificate sha256 "+strings.ToLower(a.CertFingerprint))
	}
	if a.Address != (netip.Prefix{}) {
		parts = append(parts, "address in "+a.Address.String())
	}
	if len(parts) == 0 {
		return "anyone"
	}
	return strings.Join(parts, ", ")
}

// ParseAddress parses an actor's address as given by a reviewer: a CIDR
// prefix (masked), or a single address as a /32 or /128.
func ParseAddress(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
