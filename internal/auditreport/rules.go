package auditreport

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The rules of the log follow-up (docs/audit-reports.md). A finding's Rule
// is one of these.
const (
	RuleEmergency    = "emergency-access"
	RuleProtected    = "protected-identity"
	RuleManyPatients = "many-patients"
	RuleOutsideHours = "outside-hours"
	RuleDenials      = "repeated-denials"
	RuleExport       = "export"
	// RuleCaptureLost: a live capture session ended without a stored
	// recording (docs/siprec.md) — a call that should be in the archive
	// is not.
	RuleCaptureLost = "capture-lost"
)

// DefaultWindow is the window of the many-patients and repeated-denials
// rules when Rules leaves it zero.
const DefaultWindow = 60 * time.Minute

// Hours are the usual working hours, in Swedish time.
type Hours struct {
	// Start and End are wall-clock times of day as offsets from midnight
	// (7*time.Hour is 07:00); usual hours are [Start, End) on each of Days.
	// 0 <= Start < End <= 24h, in whole minutes.
	Start, End time.Duration
	// Days are the weekdays with usual hours; every other day is outside
	// them all day. At least one.
	Days []time.Weekday
}

// Rules are the thresholds of a log follow-up. The emergency-access and
// export rules have no threshold and always run.
type Rules struct {
	// Protected reports whether a patient (12 digits) has protected
	// identity; it is called at most once per patient and review. If nil,
	// the protected-identity rule is off.
	Protected func(patient string) bool
	// MaxPatients: a user with accesses to more than MaxPatients distinct
	// patients within PatientWindow is a finding. If 0, the rule is off.
	MaxPatients int
	// PatientWindow is the many-patients window. If 0, DefaultWindow.
	PatientWindow time.Duration
	// UsualHours: an access outside them is a finding. If nil, the
	// outside-hours rule is off.
	UsualHours *Hours
	// MinDenials: at least MinDenials denials by one user (or, without a
	// user, from one client address) within DenialWindow are a finding.
	// If 0, the rule is off.
	MinDenials int
	// DenialWindow is the repeated-denials window. If 0, DefaultWindow.
	DenialWindow time.Duration
	// MarksUntil ends the time range [from, MarksUntil) in which review
	// marks are looked up, so that marks made after the reviewed range are
	// found. If zero, marks are looked up to the end of the log.
	MarksUntil time.Time
}

// DefaultRules returns the default thresholds: more than 20 patients in
// 60 minutes, usual hours 07:00–19:00 Monday to Friday, 5 denials in 60
// minutes. Protected is nil: set it to run the protected-identity rule.
func DefaultRules() Rules {
	return Rules{
		MaxPatients:   20,
		PatientWindow: DefaultWindow,
		UsualHours: &Hours{Start: 7 * time.Hour, End: 19 * time.Hour,
			Days: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}},
		MinDenials:   5,
		DenialWindow: DefaultWindow,
	}
}

// check validates r and returns it with the unset windows filled in.
func (r Rules) check() (Rules, error) {
	if r.MaxPatients < 0 || r.MinDenials < 0 || r.PatientWindow < 0 || r.DenialWindow < 0 {
		return r, fmt.Errorf("%w: rules: thresholds and windows must not be negative", ErrInvalid)
	}
	if r.PatientWindow == 0 {
		r.PatientWindow = DefaultWindow
	}
	if r.DenialWindow == 0 {
		r.DenialWindow = DefaultWindow
	}
	if h := r.UsualHours; h != nil {
		if h.Start < 0 || h.End > 24*time.Hour || h.Start >= h.End || h.Start%time.Minute != 0 || h.End%time.Minute != 0 {
			return r, fmt.Errorf("%w: rules: usual hours need 0 <= Start < End <= 24h in whole minutes", ErrInvalid)
		}
		if len(h.Days) == 0 {
			return r, fmt.Errorf("%w: rules: usual hours need at least one day", ErrInvalid)
		}
		for _, d := range h.Days {
			if d < time.Sunday || d > time.Saturday {
				return r, fmt.Errorf("%w: rules: usual hours name a day that is not a weekday", ErrInvalid)
			}
		}
	}
	return r, nil
}

// describe lists the rules that run, with their thresholds, in English.
func (r Rules) describe() []string {
	out := []string{RuleEmergency + ": every allowed, flagged event"}
	if r.Protected != nil {
		out = append(out, RuleProtected+": every access to a patient with protected identity")
	}
	if r.MaxPatients > 0 {
		out = append(out, fmt.Sprintf("%s: more than %d distinct patients by one user within %s", RuleManyPatients, r.MaxPatients, minutes(r.PatientWindow)))
	}
	if h := r.UsualHours; h != nil {
		out = append(out, fmt.Sprintf("%s: access outside %s %s", RuleOutsideHours, h.clock(), h.days(false)))
	}
	if r.MinDenials > 0 {
		out = append(out, fmt.Sprintf("%s: at least %d denials by one user or address within %s", RuleDenials, r.MinDenials, minutes(r.DenialWindow)))
	}
	return append(out, RuleExport+": every allowed export", RuleCaptureLost+": every capture session that ended without a stored recording")
}

// inside reports whether local time t is within usual hours.
func (h *Hours) inside(t time.Time) bool {
	if !slices.Contains(h.Days, t.Weekday()) {
		return false
	}
	tod := time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second
	return tod >= h.Start && tod < h.End
}

// nextStart returns the first start of usual hours after local time t: the
// end of the off-hours period t is in.
func (h *Hours) nextStart(t time.Time) time.Time {
	y, m, d := t.Date()
	sh, sm := int(h.Start/time.Hour), int(h.Start%time.Hour/time.Minute)
	for i := 0; ; i++ { // ends within 8 days: Days is not empty
		c := time.Date(y, m, d+i, sh, sm, 0, 0, t.Location())
		if c.After(t) && slices.Contains(h.Days, c.Weekday()) {
			return c
		}
	}
}

// clock formats the hours as "07:00–19:00".
func (h *Hours) clock() string {
	f := func(d time.Duration) string {
		return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return f(h.Start) + "–" + f(h.End)
}

// days formats the days Monday first, a run of three or more as a range:
// "mån–fre" in Swedish, "Mon–Fri" in English.
func (h *Hours) days(sv bool) string {
	names := []string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
	if sv {
		names = []string{"mån", "tis", "ons", "tor", "fre", "lör", "sön"}
	}
	var on [7]bool // Monday first
	for _, d := range h.Days {
		on[(int(d)+6)%7] = true
	}
	var parts []string
	for i := 0; i < 7; {
		if !on[i] {
			i++
			continue
		}
		j := i
		for j+1 < 7 && on[j+1] {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, names[i]+"–"+names[j])
		case j > i:
			parts = append(parts, names[i], names[j])
		default:
			parts = append(parts, names[i])
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}
