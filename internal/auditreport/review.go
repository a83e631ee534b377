package auditreport

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"time"

	"callvault/internal/audit"
)

// ReviewReport is the result of a log follow-up over [From, To).
type ReviewReport struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// MarksUntil is Rules.MarksUntil; zero when marks were looked up to the
	// end of the log.
	MarksUntil time.Time `json:"marks_until,omitzero"`
	// Rules describes, in English, each rule that ran with its thresholds.
	Rules []string `json:"rules"`
	// Examined is the number of events with a time in [From, To).
	Examined int       `json:"events_examined"`
	Findings []Finding `json:"findings"`
}

// Finding is one thing a reviewer must look at. Its description holds no
// personal data; User, ClientAddr and CareUnit say whom it concerns.
type Finding struct {
	// ID is stable: the same events give the same ID in every run
	// (docs/audit-reports.md, "Finding ID").
	ID   string `json:"id"`
	Rule string `json:"rule"`
	// User is the HSA-ID of the user whose events these are; "" for a
	// repeated-denials finding of a client without a user.
	User string `json:"user,omitempty"`
	// ClientAddr is set for a repeated-denials finding without a user.
	ClientAddr string `json:"client_addr,omitempty"`
	// CareUnit is the user's care unit at the first event.
	CareUnit string `json:"care_unit,omitempty"`
	// First and Last are the times of the first and last event, Swedish time.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// Events are the log indexes of the events, ascending.
	Events     []int64 `json:"events"`
	EventCount int     `json:"event_count"`
	// Patients is the number of distinct patients in the events.
	Patients      int    `json:"patients"`
	DescriptionSV string `json:"description_sv"`
	DescriptionEN string `json:"description_en"`
	// Marks are the review marks of this finding in log order; the last is
	// its current state. Empty if it has not been reviewed.
	Marks []Mark `json:"marks,omitempty"`
}

// Reviewed reports whether f has been marked.
func (f *Finding) Reviewed() bool { return len(f.Marks) > 0 }

// LastMark returns f's current mark, or nil if it has none.
func (f *Finding) LastMark() *Mark {
	if len(f.Marks) == 0 {
		return nil
	}
	return &f.Marks[len(f.Marks)-1]
}

// Mark is a reviewer's mark on a finding, read from an audit.review-mark event.
type Mark struct {
	Index    int64     `json:"log_index"`
	Time     time.Time `json:"time"`
	Reviewer string    `json:"reviewer"`
	Outcome  string    `json:"outcome"` // MarkNoAction, MarkFollowedUp or MarkReported
	Note     string    `json:"note,omitempty"`
	// SelfReview is set when the reviewer is the finding's own user.
	SelfReview bool `json:"self_review,omitempty"`
}

// endOfLog bounds "to the end of the log": later than any event.
func endOfLog() time.Time { return time.Date(9999, time.December, 31, 0, 0, 0, 0, time.UTC) }

// Review runs the rules over the events with a time in [from, to) and
// returns the findings with the review marks found in [from,
// rules.MarksUntil). An empty range or invalid rules wrap ErrInvalid.
func Review(ctx context.Context, src Source, from, to time.Time, rules Rules) (*ReviewReport, error) {
	if err := checkRange(from, to); err != nil {
		return nil, err
	}
	r, err := rules.check()
	if err != nil {
		return nil, err
	}
	loc, err := stockholm()
	if err != nil {
		return nil, err
	}
	until := r.MarksUntil
	if until.IsZero() {
		until = endOfLog()
	}
	// Only the events a rule or a mark needs are kept, without the
	// emergency reason, which no rule reads: a long range of a busy log
	// is mostly ingests.
	var events, marks []*audit.Event
	examined := 0
	err = src.Range(ctx, from, to, func(e *audit.Event) error {
		examined++
		if e.Action == ActionReviewMark && e.Time.Before(until) {
			c := *e
			marks = append(marks, &c)
		}
		if !relevant(e) {
			return nil
		}
		c := *e // the Source may reuse e
		c.EmergencyReason, c.Note = "", ""
		events = append(events, &c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("auditreport: review: reading the log: %w", err)
	}
	if until.After(to) {
		err = src.Range(ctx, to, until, func(e *audit.Event) error {
			if e.Action == ActionReviewMark {
				c := *e
				marks = append(marks, &c)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("auditreport: review: reading review marks: %w", err)
		}
	}

	rv := &reviewer{rules: r, loc: loc}
	rv.perEvent(events)
	rv.protected(events)
	rv.manyPatients(events)
	rv.outsideHours(events)
	rv.denials(events)
	slices.SortFunc(rv.findings, func(a, b Finding) int {
		return cmp.Or(a.First.Compare(b.First), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Events[0], b.Events[0]))
	})

	byID := make(map[string]int, len(rv.findings))
	for i, f := range rv.findings {
		byID[f.ID] = i
	}
	for _, e := range marks {
		if e.Outcome != audit.Allowed {
			continue
		}
		id, outcome, err := ParseReviewMarkDetail(e.Detail)
		if err != nil {
			continue
		}
		i, ok := byID[id]
		if !ok {
			continue
		}
		f := &rv.findings[i]
		f.Marks = append(f.Marks, Mark{Index: e.Index, Time: e.Time.In(loc), Reviewer: e.User, Outcome: outcome,
			Note: e.Note, SelfReview: f.User != "" && e.User == f.User})
	}

	rep := &ReviewReport{From: from.In(loc), To: to.In(loc), Rules: r.describe(), Examined: examined, Findings: rv.findings}
	if !r.MarksUntil.IsZero() {
		rep.MarksUntil = r.MarksUntil.In(loc)
	}
	if rep.Findings == nil {
		rep.Findings = []Finding{}
	}
	return rep, nil
}

// relevant reports whether a rule may use e: a denial, an access, or an
// allowed flagged event.
func relevant(e *audit.Event) bool {
	return e.Outcome == audit.Denied || isAccess(e) || (e.Outcome == audit.Allowed && (e.Flagged || e.Action == ActionExport)) ||
		captureLost(e)
}

// captureLost reports whether e ends a capture session that stored
// nothing.
func captureLost(e *audit.Event) bool {
	return e.Action == ActionCaptureEnd && e.Reason == CaptureFailed
}

// reviewer collects the findings of one review.
type reviewer struct {
	rules    Rules
	loc      *time.Location
	findings []Finding
}

// add makes a finding of evs (in log order) under rule for key (the user,
// or "addr:" and a client address).
func (rv *reviewer) add(rule, key string, evs []*audit.Event, sv, en string) {
	f := Finding{Rule: rule, User: evs[0].User, CareUnit: evs[0].CareUnit, DescriptionSV: sv, DescriptionEN: en,
		First: evs[0].Time, Last: evs[0].Time, EventCount: len(evs)}
	if f.User == "" {
		f.ClientAddr = evs[0].ClientAddr
	}
	patients := map[string]bool{}
	for _, e := range evs {
		f.Events = append(f.Events, e.Index)
		if e.Time.Before(f.First) {
			f.First = e.Time
		}
		if e.Time.After(f.Last) {
			f.Last = e.Time
		}
		if e.Patient != "" {
			patients[e.Patient] = true
		}
	}
	slices.Sort(f.Events)
	f.First, f.Last = f.First.In(rv.loc), f.Last.In(rv.loc)
	f.Patients = len(patients)
	f.ID = findingID(rule, key, f.Events)
	rv.findings = append(rv.findings, f)
}

// findingID is the first 16 hex digits of SHA-256(rule 0x00 key 0x00
// "i1,i2,…") over the ascending log indexes (docs/audit-reports.md).
func findingID(rule, key string, indexes []int64) string {
	h := sha256.New()
	h.Write([]byte(rule))
	h.Write([]byte{0})
	h.Write([]byte(key))
	h.Write([]byte{0})
	var b []byte
	for i, n := range indexes {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, n, 10)
	}
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// perEvent runs the rules with one finding per event: emergency access
// and export.
func (rv *reviewer) perEvent(events []*audit.Event) {
	for _, e := range events {
		if e.Outcome != audit.Allowed {
			continue
		}
		if e.Flagged {
			rv.add(RuleEmergency, e.User, []*audit.Event{e},
				fmt.Sprintf("Nödåtkomst vid %s.", actionNounSV(e.Action)),
				fmt.Sprintf("Emergency access: %s.", actionNounEN(e.Action)))
		}
		if e.Action == ActionExport {
			rv.add(RuleExport, e.User, []*audit.Event{e}, "En inspelning exporterades.", "A recording was exported.")
		}
		if captureLost(e) {
			rv.add(RuleCaptureLost, e.User, []*audit.Event{e}, "Ett inspelat samtal sparades inte.",
				"A recorded call ended without a stored recording.")
		}
	}
}

// protected finds accesses to patients with protected identity, one
// finding per user, patient and Swedish calendar day.
func (rv *reviewer) protected(events []*audit.Event) {
	if rv.rules.Protected == nil {
		return
	}
	groups, order := map[string][]*audit.Event{}, []string(nil)
	protected := map[string]bool{} // Protected may be a directory look-up: once per patient
	for _, e := range events {
		if !isAccess(e) {
			continue
		}
		p, ok := protected[e.Patient]
		if !ok {
			p = rv.rules.Protected(e.Patient)
			protected[e.Patient] = p
		}
		if !p {
			continue
		}
		k := e.User + "\x00" + e.Patient + "\x00" + e.Time.In(rv.loc).Format(time.DateOnly)
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], e)
	}
	for _, k := range order {
		g := groups[k]
		rv.add(RuleProtected, g[0].User, g,
			fmt.Sprintf("Åtkomst till en patient med skyddade personuppgifter: %s.", countSV(len(g), "händelse", "händelser")),
			fmt.Sprintf("Access to a patient with protected identity: %s.", countEN(len(g), "event")))
	}
}

// outsideHours finds accesses outside usual hours, one finding per user
// and off-hours period.
func (rv *reviewer) outsideHours(events []*audit.Event) {
	h := rv.rules.UsualHours
	if h == nil {
		return
	}
	groups, order := map[string][]*audit.Event{}, []string(nil)
	for _, e := range events {
		if !isAccess(e) {
			continue
		}
		t := e.Time.In(rv.loc)
		if h.inside(t) {
			continue
		}
		k := e.User + "\x00" + h.nextStart(t).Format(time.RFC3339)
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], e)
	}
	for _, k := range order {
		g := groups[k]
		rv.add(RuleOutsideHours, g[0].User, g,
			fmt.Sprintf("Åtkomst utanför ordinarie tider (%s %s): %s.", h.clock(), h.days(true), countSV(len(g), "händelse", "händelser")),
			fmt.Sprintf("Access outside usual hours (%s %s): %s.", h.clock(), h.days(false), countEN(len(g), "event")))
	}
}

// manyPatients finds users with accesses to more than MaxPatients distinct
// patients within PatientWindow.
func (rv *reviewer) manyPatients(events []*audit.Event) {
	n := rv.rules.MaxPatients
	if n <= 0 {
		return
	}
	byUser, order := map[string][]*audit.Event{}, []string(nil)
	for _, e := range events {
		if !isAccess(e) || e.User == "" {
			continue
		}
		if byUser[e.User] == nil {
			order = append(order, e.User)
		}
		byUser[e.User] = append(byUser[e.User], e)
	}
	w := rv.rules.PatientWindow
	for _, u := range order {
		evs := byTime(byUser[u])
		count := map[string]int{}
		for _, c := range clusters(evs, w,
			func(e *audit.Event) { count[e.Patient]++ },
			func(e *audit.Event) {
				if count[e.Patient]--; count[e.Patient] == 0 {
					delete(count, e.Patient)
				}
			},
			func(int) bool { return len(count) > n }) {
			g := evs[c[0] : c[1]+1]
			distinct := map[string]bool{}
			for _, e := range g {
				distinct[e.Patient] = true
			}
			span := g[len(g)-1].Time.Sub(g[0].Time)
			rv.add(RuleManyPatients, u, g,
				fmt.Sprintf("Åtkomst till %d olika patienter på %s (gräns: fler än %d inom %s).", len(distinct), minutesSV(span), n, minutesSV(w)),
				fmt.Sprintf("Access to %d distinct patients in %s (limit: more than %d within %s).", len(distinct), minutes(span), n, minutes(w)))
		}
	}
}

// denials finds at least MinDenials denials by one user, or one client
// address when there is no user, within DenialWindow.
func (rv *reviewer) denials(events []*audit.Event) {
	k := rv.rules.MinDenials
	if k <= 0 {
		return
	}
	byKey, order := map[string][]*audit.Event{}, []string(nil)
	for _, e := range events {
		if e.Outcome != audit.Denied {
			continue
		}
		key := e.User
		if key == "" {
			key = "addr:" + e.ClientAddr
		}
		if byKey[key] == nil {
			order = append(order, key)
		}
		byKey[key] = append(byKey[key], e)
	}
	w := rv.rules.DenialWindow
	for _, key := range order {
		evs := byTime(byKey[key])
		for _, c := range clusters(evs, w, func(*audit.Event) {}, func(*audit.Event) {},
			func(size int) bool { return size >= k }) {
			g := evs[c[0] : c[1]+1]
			span := g[len(g)-1].Time.Sub(g[0].Time)
			rv.add(RuleDenials, key, g,
				fmt.Sprintf("%d nekade försök på %s (gräns: %d inom %s).", len(g), minutesSV(span), k, minutesSV(w)),
				fmt.Sprintf("%d denied attempts in %s (limit: %d within %s).", len(g), minutes(span), k, minutes(w)))
		}
	}
}

// byTime returns evs sorted by time, then log index.
func byTime(evs []*audit.Event) []*audit.Event {
	return slices.SortedStableFunc(slices.Values(evs), func(a, b *audit.Event) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Index, b.Index))
	})
}

// clusters slides a window over evs (sorted by time): the window ending at
// event j holds the events less than w before it. add and remove keep the
// caller's state for the window's contents; ok(size) says whether the
// window meets the rule. Every event of a window that meets it belongs to
// a cluster, and windows that share an event belong to the same one. The
// clusters are returned as inclusive index ranges into evs.
func clusters(evs []*audit.Event, w time.Duration, add, remove func(*audit.Event), ok func(size int) bool) [][2]int {
	var out [][2]int
	i := 0
	for j, e := range evs {
		add(e)
		for e.Time.Sub(evs[i].Time) >= w {
			remove(evs[i])
			i++
		}
		if !ok(j - i + 1) {
			continue
		}
		if n := len(out); n > 0 && i <= out[n-1][1] {
			out[n-1][1] = j
		} else {
			out = append(out, [2]int{i, j})
		}
	}
	return out
}

// actionNounSV names an action in Swedish for a reviewer.
func actionNounSV(a string) string {
	switch a {
	case ActionSearch:
		return "sökning"
	case ActionReadMetadata:
		return "läsning av samtalsuppgifter"
	case ActionPlay:
		return "uppspelning"
	case ActionExport:
		return "export"
	}
	return "åtgärden " + strconv.Quote(a)
}

// actionNounEN names an action in English for a reviewer.
func actionNounEN(a string) string {
	switch a {
	case ActionSearch:
		return "search"
	case ActionReadMetadata:
		return "read of call details"
	case ActionPlay:
		return "playback"
	case ActionExport:
		return "export"
	}
	return "action " + strconv.Quote(a)
}

// minutes formats d as whole minutes in English, e.g. "60 min".
func minutes(d time.Duration) string { return fmt.Sprintf("%d min", int(d/time.Minute)) }

// minutesSV formats d as whole minutes in Swedish, e.g. "60 minuter".
func minutesSV(d time.Duration) string {
	if m := int(d / time.Minute); m != 1 {
		return fmt.Sprintf("%d minuter", m)
	}
	return "1 minut"
}

func countSV(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func countEN(n int, one string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %ss", n, one)
}
