package auditreport_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"callvault/internal/audit"
	"callvault/internal/auditreport"
)

// reviewRules are the default rules with P4 as the one protected patient.
func reviewRules() auditreport.Rules {
	r := auditreport.DefaultRules()
	r.Protected = func(p string) bool { return p == p4 }
	return r
}

// finding is the part of a finding a test compares exactly.
type finding struct {
	ID, Rule, User, Addr, Unit string
	First, Last                string
	Events                     string
	Count, Patients            int
	SV, EN                     string
}

func findingsOf(r *auditreport.ReviewReport) []finding {
	var out []finding
	for _, f := range r.Findings {
		out = append(out, finding{f.ID, f.Rule, f.User, f.ClientAddr, f.CareUnit,
			f.First.Format("2006-01-02 15:04:05 MST"), f.Last.Format("2006-01-02 15:04:05 MST"),
			fmt.Sprint(f.Events), f.EventCount, f.Patients, f.DescriptionSV, f.DescriptionEN})
	}
	return out
}

func TestReview(t *testing.T) {
	h := scripted()
	r, err := auditreport.Review(context.Background(), h, at(10, 0, 0, 0), at(17, 0, 0, 0), reviewRules())
	if err != nil {
		t.Fatal(err)
	}
	want := []finding{
		{findingID("emergency-access", nurseB, 6), "emergency-access", nurseB, "", unitB,
			"2025-03-10 09:15:00 CET", "2025-03-10 09:15:00 CET", "[6]", 1, 1,
			"Nödåtkomst vid sökning.", "Emergency access: search."},
		{findingID("emergency-access", nurseB, 7), "emergency-access", nurseB, "", unitB,
			"2025-03-10 09:16:00 CET", "2025-03-10 09:16:00 CET", "[7]", 1, 1,
			"Nödåtkomst vid läsning av samtalsuppgifter.", "Emergency access: read of call details."},
		{findingID("many-patients", nurseC, span(11, 31)...), "many-patients", nurseC, "", unitA,
			"2025-03-11 10:00:00 CET", "2025-03-11 10:50:00 CET", fmt.Sprint(span(11, 31)), 21, 21,
			"Åtkomst till 21 olika patienter på 50 minuter (gräns: fler än 20 inom 60 minuter).",
			"Access to 21 distinct patients in 50 min (limit: more than 20 within 60 min)."},
		{findingID("repeated-denials", "addr:"+addrUnknown, 32, 33, 34, 35, 36), "repeated-denials", "", addrUnknown, "",
			"2025-03-12 14:00:00 CET", "2025-03-12 14:10:00 CET", "[32 33 34 35 36]", 5, 0,
			"5 nekade försök på 10 minuter (gräns: 5 inom 60 minuter).", "5 denied attempts in 10 min (limit: 5 within 60 min)."},
		{findingID("protected-identity", nurseA, 37, 38), "protected-identity", nurseA, "", unitA,
			"2025-03-12 15:00:00 CET", "2025-03-12 15:01:00 CET", "[37 38]", 2, 1,
			"Åtkomst till en patient med skyddade personuppgifter: 2 händelser.", "Access to a patient with protected identity: 2 events."},
		{findingID("export", nurseA, 39), "export", nurseA, "", unitA,
			"2025-03-14 13:00:00 CET", "2025-03-14 13:00:00 CET", "[39]", 1, 1,
			"En inspelning exporterades.", "A recording was exported."},
		{findingID("outside-hours", nurseA, 40), "outside-hours", nurseA, "", unitA,
			"2025-03-15 23:10:00 CET", "2025-03-15 23:10:00 CET", "[40]", 1, 1,
			"Åtkomst utanför ordinarie tider (07:00–19:00 mån–fre): 1 händelse.", "Access outside usual hours (07:00–19:00 Mon–Fri): 1 event."},
	}
	if got := findingsOf(r); !slices.Equal(got, want) {
		t.Errorf("findings:\n got %+v\nwant %+v", got, want)
	}
	if r.Examined != 41 {
		t.Errorf("examined %d events, want 41", r.Examined)
	}

	// IDs differ between findings and are the same in a second run and in
	// a wider review (no group is cut).
	ids := map[string]bool{}
	for _, f := range r.Findings {
		if ids[f.ID] {
			t.Errorf("ID %s appears twice", f.ID)
		}
		ids[f.ID] = true
	}
	again, err := auditreport.Review(context.Background(), h, at(10, 0, 0, 0), at(17, 0, 0, 0), reviewRules())
	if err != nil {
		t.Fatal(err)
	}
	wider, err := auditreport.Review(context.Background(), h, at(1, 0, 0, 0), at(31, 0, 0, 0), reviewRules())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(findingsOf(again), want) || !slices.Equal(findingsOf(wider), want) {
		t.Errorf("findings differ between runs:\n%+v\n%+v", findingsOf(again), findingsOf(wider))
	}

	// Only the auditor's allowed, well-formed mark counts, although it
	// was made after the reviewed range.
	wantMark := auditreport.Mark{Index: 41, Reviewer: auditor, Outcome: auditreport.MarkFollowedUp, Note: markNote}
	for i, f := range r.Findings {
		switch {
		case i == 0:
			if len(f.Marks) != 1 {
				t.Fatalf("finding 0 has %d marks, want 1", len(f.Marks))
			}
			m := *f.LastMark()
			if !m.Time.Equal(at(17, 9, 0, 0)) {
				t.Errorf("mark time %v", m.Time)
			}
			m.Time = time.Time{}
			if m != wantMark || !f.Reviewed() {
				t.Errorf("mark = %+v, want %+v", m, wantMark)
			}
		case f.Reviewed() || f.LastMark() != nil:
			t.Errorf("finding %d (%s) is marked: %+v", i, f.Rule, f.Marks)
		}
	}

	// Marks up to MarksUntil only.
	rules := reviewRules()
	rules.MarksUntil = at(17, 8, 0, 0)
	early, err := auditreport.Review(context.Background(), h, at(10, 0, 0, 0), at(17, 0, 0, 0), rules)
	if err != nil {
		t.Fatal(err)
	}
	if early.Findings[0].Reviewed() {
		t.Errorf("a mark after MarksUntil was found")
	}

	// No description holds personal data.
	personal := append(otherPatients(), p1, nurseA, nurseB, nurseC, auditor, addrUnknown, emergencyReason, "Kontrollerat")
	for _, f := range r.Findings {
		for _, p := range personal {
			if strings.Contains(f.DescriptionSV+f.DescriptionEN, p) {
				t.Errorf("finding %s: description contains personal data", f.ID)
			}
		}
	}
}

func TestReviewSelfMarkAndHistory(t *testing.T) {
	h := scripted()[:41]
	id := findingID("export", nurseA, 39)
	add := func(user, outcome, note string, hour int) {
		d, err := auditreport.ReviewMarkDetail(id, outcome)
		if err != nil {
			t.Fatal(err)
		}
		h = append(h, audit.Event{Index: int64(len(h)), Time: at(17, hour, 0, 0), Action: auditreport.ActionReviewMark,
			Outcome: audit.Allowed, User: user, Detail: d, Note: note})
	}
	add(nurseA, auditreport.MarkNoAction, "min egen export", 8)
	add(auditor, auditreport.MarkReported, "anmäld", 10)
	r, err := auditreport.Review(context.Background(), h, at(10, 0, 0, 0), at(17, 0, 0, 0), reviewRules())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(r.Findings, func(f auditreport.Finding) bool { return f.ID == id })
	if i < 0 {
		t.Fatal("export finding missing")
	}
	ms := r.Findings[i].Marks
	if len(ms) != 2 || !ms[0].SelfReview || ms[0].Outcome != auditreport.MarkNoAction ||
		ms[1].SelfReview || ms[1].Reviewer != auditor || ms[1].Outcome != auditreport.MarkReported || r.Findings[i].LastMark().Note != "anmäld" {
		t.Errorf("marks = %+v", ms)
	}
}

// TestReviewWindows runs the window rules over small histories.
func TestReviewWindows(t *testing.T) {
	base := at(11, 10, 0, 0) // Tuesday
	access := func(user, patient string, d time.Duration) audit.Event {
		return audit.Event{Time: base.Add(d), Action: "search", Outcome: audit.Allowed, User: user, CareUnit: unitA, Patient: patient, Detail: "hits=0"}
	}
	denial := func(user, addr string, d time.Duration) audit.Event {
		return audit.Event{Time: base.Add(d), Action: "play", Outcome: audit.Denied, User: user, ClientAddr: addr}
	}
	patients := func(user string, n int, step time.Duration) []audit.Event {
		var out []audit.Event
		for k := range n {
			out = append(out, access(user, synthetic(k), time.Duration(k)*step))
		}
		return out
	}
	denials := func(user, addr string, n int, start, step time.Duration) []audit.Event {
		var out []audit.Event
		for k := range n {
			out = append(out, denial(user, addr, start+time.Duration(k)*step))
		}
		return out
	}
	type want struct {
		rule   string
		key    string
		events []int64
	}
	tests := []struct {
		name   string
		events []audit.Event
		want   []want
	}{
		{"20 patients: none", patients(nurseC, 20, time.Minute), nil},
		{"21 patients in 20 min", patients(nurseC, 21, time.Minute), []want{{"many-patients", nurseC, span(0, 20)}}},
		{"21 patients over exactly 60 min: none", patients(nurseC, 21, 3*time.Minute), nil},
		{"21 patients over 59 min 40 s", patients(nurseC, 21, 179*time.Second), []want{{"many-patients", nurseC, span(0, 20)}}},
		{"one patient 30 times: none", func() []audit.Event {
			var out []audit.Event
			for k := range 30 {
				out = append(out, access(nurseC, p1, time.Duration(k)*time.Minute))
			}
			return out
		}(), nil},
		{"21 patients, 2 users: none", append(patients(nurseC, 11, time.Minute), patients(nurseA, 10, time.Minute)...), nil},
		{"25 patients in 24 min: one finding", patients(nurseC, 25, time.Minute), []want{{"many-patients", nurseC, span(0, 24)}}},
		{"4 denials: none", denials(nurseB, addrB, 4, 0, time.Minute), nil},
		{"5 denials in 4 min", denials(nurseB, addrB, 5, 0, time.Minute), []want{{"repeated-denials", nurseB, span(0, 4)}}},
		{"5 denials over exactly 60 min: none", denials(nurseB, addrB, 5, 0, 15*time.Minute), nil},
		{"two bursts, two hours apart", append(denials(nurseB, addrB, 5, 0, time.Minute), denials(nurseB, addrB, 6, 2*time.Hour, time.Minute)...),
			[]want{{"repeated-denials", nurseB, span(0, 4)}, {"repeated-denials", nurseB, span(5, 10)}}},
		{"windows sharing an event merge", denials(nurseB, addrB, 9, 0, 14*time.Minute),
			[]want{{"repeated-denials", nurseB, span(0, 8)}}},
		{"without a user, by address", append(denials("", addrUnknown, 3, 0, time.Minute), denials("", "192.0.2.8", 2, 0, time.Minute)...), nil},
		{"without a user, one address", denials("", addrUnknown, 5, 0, time.Minute), []want{{"repeated-denials", "addr:" + addrUnknown, span(0, 4)}}},
		{"one user, many addresses", func() []audit.Event {
			var out []audit.Event
			for k := range 5 {
				out = append(out, denial(nurseB, fmt.Sprintf("10.0.1.%d", k), time.Duration(k)*time.Minute))
			}
			return out
		}(), []want{{"repeated-denials", nurseB, span(0, 4)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h history
			for i, e := range tc.events {
				e.Index = int64(i)
				h = append(h, e)
			}
			r, err := auditreport.Review(context.Background(), h, at(1, 0, 0, 0), at(31, 0, 0, 0), auditreport.DefaultRules())
			if err != nil {
				t.Fatal(err)
			}
			var got []want
			for _, f := range r.Findings {
				key := f.User
				if key == "" {
					key = "addr:" + f.ClientAddr
				}
				got = append(got, want{f.Rule, key, f.Events})
				if f.ID != findingID(f.Rule, key, f.Events...) {
					t.Errorf("ID %s does not follow the spec", f.ID)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("findings:\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestReviewOutsideHours(t *testing.T) {
	play := func(user string, tm time.Time) audit.Event {
		return audit.Event{Time: tm, Action: "play", Outcome: audit.Allowed, User: user, CareUnit: unitA, Patient: p1, RecordingID: r1}
	}
	// 10 March 2025 is a Monday; 30 March is the switch to summer time.
	tests := []struct {
		name   string
		events []audit.Event
		want   string // the event indexes of each outside-hours finding
		hours  *auditreport.Hours
	}{
		{"Mon 07:00 and 18:59:59 are inside", []audit.Event{play(nurseA, at(10, 7, 0, 0)), play(nurseA, at(10, 18, 59, 59))}, "[]", nil},
		{"Mon 06:59 and 19:00 are outside, in two periods", []audit.Event{play(nurseA, at(10, 6, 59, 0)), play(nurseA, at(10, 19, 0, 0))}, "[[0] [1]]", nil},
		{"Fri evening to Mon morning is one period", []audit.Event{play(nurseA, at(14, 20, 0, 0)), play(nurseA, at(15, 23, 10, 0)),
			play(nurseA, at(17, 6, 30, 0)), play(nurseA, at(17, 7, 30, 0))}, "[[0 1 2]]", nil},
		{"two users, one period", []audit.Event{play(nurseA, at(15, 12, 0, 0)), play(nurseB, at(15, 12, 0, 0))}, "[[0] [1]]", nil},
		{"Mon 19:30 and Tue 19:30 are two periods", []audit.Event{play(nurseA, at(10, 19, 30, 0)), play(nurseA, at(11, 19, 30, 0))}, "[[0] [1]]", nil},
		{"denied and non-read events do not count", []audit.Event{
			{Time: at(15, 12, 0, 0), Action: "play", Outcome: audit.Denied, User: nurseA, Patient: p1},
			{Time: at(15, 12, 0, 0), Action: "ingest", Outcome: audit.Allowed, User: capture, Patient: p1},
			{Time: at(15, 12, 0, 0), Action: "directory.block", Outcome: audit.Allowed, User: admin, Patient: p1}}, "[]", nil},
		{"summer time: 07:30 CEST inside", []audit.Event{play(nurseA, time.Date(2025, time.March, 31, 5, 30, 0, 0, time.UTC))}, "[]", nil},
		{"summer time: 06:30 CEST outside", []audit.Event{play(nurseA, time.Date(2025, time.March, 31, 4, 30, 0, 0, time.UTC))}, "[[0]]", nil},
		{"Saturday as a usual day", []audit.Event{play(nurseA, at(15, 12, 0, 0)), play(nurseA, at(16, 12, 0, 0))}, "[[1]]",
			&auditreport.Hours{Start: 8 * time.Hour, End: 20 * time.Hour, Days: []time.Weekday{time.Saturday}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h history
			for i, e := range tc.events {
				e.Index = int64(i)
				h = append(h, e)
			}
			rules := auditreport.DefaultRules()
			if tc.hours != nil {
				rules.UsualHours = tc.hours
			}
			r, err := auditreport.Review(context.Background(), h, at(1, 0, 0, 0), time.Date(2025, time.April, 30, 0, 0, 0, 0, time.UTC), rules)
			if err != nil {
				t.Fatal(err)
			}
			got := [][]int64{}
			for _, f := range r.Findings {
				if f.Rule == auditreport.RuleOutsideHours {
					got = append(got, f.Events)
				}
			}
			if fmt.Sprint(got) != tc.want {
				t.Errorf("outside-hours findings %v, want %s", got, tc.want)
			}
		})
	}
}

func TestReviewRulesOff(t *testing.T) {
	r, err := auditreport.Review(context.Background(), scripted(), at(10, 0, 0, 0), at(17, 0, 0, 0), auditreport.Rules{})
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, f := range r.Findings {
		rules = append(rules, f.Rule)
	}
	if want := []string{"emergency-access", "emergency-access", "export"}; !slices.Equal(rules, want) {
		t.Errorf("with zero Rules: %v, want %v", rules, want)
	}
	if len(r.Rules) != 3 {
		t.Errorf("rules described: %q", r.Rules)
	}
}

func TestReviewInvalid(t *testing.T) {
	hours := func(h auditreport.Hours) auditreport.Rules {
		r := auditreport.DefaultRules()
		r.UsualHours = &h
		return r
	}
	ok := auditreport.DefaultRules()
	neg := auditreport.DefaultRules()
	neg.MaxPatients = -1
	for _, tc := range []struct {
		name     string
		from, to time.Time
		rules    auditreport.Rules
	}{
		{"empty range", at(10, 0, 0, 0), at(10, 0, 0, 0), ok},
		{"inverted range", at(11, 0, 0, 0), at(10, 0, 0, 0), ok},
		{"zero from", time.Time{}, at(10, 0, 0, 0), ok},
		{"negative threshold", at(10, 0, 0, 0), at(11, 0, 0, 0), neg},
		{"start after end", at(10, 0, 0, 0), at(11, 0, 0, 0), hours(auditreport.Hours{Start: 19 * time.Hour, End: 7 * time.Hour, Days: []time.Weekday{time.Monday}})},
		{"past midnight", at(10, 0, 0, 0), at(11, 0, 0, 0), hours(auditreport.Hours{Start: 7 * time.Hour, End: 25 * time.Hour, Days: []time.Weekday{time.Monday}})},
		{"no days", at(10, 0, 0, 0), at(11, 0, 0, 0), hours(auditreport.Hours{Start: 7 * time.Hour, End: 19 * time.Hour})},
		{"bad day", at(10, 0, 0, 0), at(11, 0, 0, 0), hours(auditreport.Hours{Start: 7 * time.Hour, End: 19 * time.Hour, Days: []time.Weekday{7}})},
		{"seconds", at(10, 0, 0, 0), at(11, 0, 0, 0), hours(auditreport.Hours{Start: 7*time.Hour + time.Second, End: 19 * time.Hour, Days: []time.Weekday{time.Monday}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := auditreport.Review(context.Background(), scripted(), tc.from, tc.to, tc.rules); !errors.Is(err, auditreport.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestReviewMarkDetail(t *testing.T) {
	const id = "0123456789abcdef"
	for _, tc := range []struct {
		id, outcome string
		want        string // "" if invalid
	}{
		{id, "no-action", "finding=0123456789abcdef outcome=no-action"},
		{id, "followed-up", "finding=0123456789abcdef outcome=followed-up"},
		{id, "reported", "finding=0123456789abcdef outcome=reported"},
		{id, "done", ""},
		{id, "", ""},
		{"0123456789ABCDEF", "reported", ""},
		{"0123456789abcde", "reported", ""},
		{"0123456789abcdef0", "reported", ""},
		{"0123456789abcdeg", "reported", ""},
		{"0123456789abcde ", "reported", ""},
	} {
		got, err := auditreport.ReviewMarkDetail(tc.id, tc.outcome)
		if tc.want == "" {
			if !errors.Is(err, auditreport.ErrInvalid) {
				t.Errorf("ReviewMarkDetail(%q, %q) = %q, %v; want ErrInvalid", tc.id, tc.outcome, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ReviewMarkDetail(%q, %q) = %q, %v; want %q", tc.id, tc.outcome, got, err, tc.want)
		}
		gotID, gotOutcome, err := auditreport.ParseReviewMarkDetail(got)
		if err != nil || gotID != tc.id || gotOutcome != tc.outcome {
			t.Errorf("ParseReviewMarkDetail(%q) = %q, %q, %v", got, gotID, gotOutcome, err)
		}
	}
	for _, bad := range []string{
		"", "finding=0123456789abcdef", "outcome=reported finding=0123456789abcdef",
		"finding=0123456789abcdef  outcome=reported", "finding=0123456789abcdef outcome=reported ",
		" finding=0123456789abcdef outcome=reported", "finding=0123456789abcdef outcome=reported x=1",
		"finding=0123456789abcdef outcome=Reported", "finding=0123456789ABCDEF outcome=reported",
	} {
		if _, _, err := auditreport.ParseReviewMarkDetail(bad); !errors.Is(err, auditreport.ErrInvalid) {
			t.Errorf("ParseReviewMarkDetail(%q): err = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestReviewWriters(t *testing.T) {
	r, err := auditreport.Review(context.Background(), scripted(), at(10, 0, 0, 0), at(17, 0, 0, 0), reviewRules())
	if err != nil {
		t.Fatal(err)
	}

	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back auditreport.ReviewReport
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Findings) != 7 || back.Findings[0].Marks[0].Note != markNote || back.Findings[2].EventCount != 21 {
		t.Errorf("json round trip: %+v", back.Findings)
	}

	var c bytes.Buffer
	if err := r.WriteCSV(&c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.String(), "\r\n") {
		t.Errorf("csv lines do not end in CRLF")
	}
	recs, err := csv.NewReader(&c).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+7 {
		t.Fatalf("%d csv records, want a header and 7", len(recs))
	}
	wantFirst := []string{findingID("emergency-access", nurseB, 6), "emergency-access", nurseB, "", unitB, "2025-03-10 09:15:00", "2025-03-10 09:15:00",
		"1", "1", "6", "Nödåtkomst vid sökning.", "Emergency access: search.", "1", "2025-03-17 09:00:00", auditor, "followed-up", markNote, "false"}
	if !slices.Equal(recs[1], wantFirst) {
		t.Errorf("csv row 1:\n got %q\nwant %q", recs[1], wantFirst)
	}
	if got := recs[4][3]; got != addrUnknown {
		t.Errorf("denials row: client address %q", got)
	}

	var txt bytes.Buffer
	if err := r.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Period: 2025-03-10 00:00:00 – 2025-03-17 00:00:00 (Europe/Stockholm)",
		"Fynd / Findings: 7, markerade / marked: 1",
		`followed-up "Kontrollerat med enhetschef. <script>alert(1)</script>"`,
		"klientadress / client address 192.0.2.7",
		"ej granskad / not reviewed",
	} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("text lacks %q", want)
		}
	}
}

// TestReviewTextControlCharacters: a note cannot drive the terminal.
func TestReviewTextControlCharacters(t *testing.T) {
	h := history{{Index: 0, Time: at(14, 13, 0, 0), Action: "export", Outcome: audit.Allowed, User: nurseA, Patient: p1, RecordingID: r1}}
	d, err := auditreport.ReviewMarkDetail(findingID("export", nurseA, 0), auditreport.MarkNoAction)
	if err != nil {
		t.Fatal(err)
	}
	h = append(h, audit.Event{Index: 1, Time: at(14, 14, 0, 0), Action: auditreport.ActionReviewMark, Outcome: audit.Allowed,
		User: "SE9999990001-\x1b[2J", Detail: d, Note: "ok\x1b]0;pwned\x07\nrad två"})
	r, err := auditreport.Review(context.Background(), h, at(14, 0, 0, 0), at(15, 0, 0, 0), auditreport.DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	var txt bytes.Buffer
	if err := r.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(txt.String(), "\x1b\x07") || !strings.Contains(txt.String(), `"ok\x1b]0;pwned\a\nrad två"`) {
		t.Errorf("text:\n%s", txt.String())
	}
}

// TestReviewMarksUntilInsideRange: MarksUntil also bounds marks inside
// the reviewed range; Protected is asked once per patient.
func TestReviewMarksUntilInsideRange(t *testing.T) {
	h := scripted()[:41]
	d, err := auditreport.ReviewMarkDetail(findingID("export", nurseA, 39), auditreport.MarkNoAction)
	if err != nil {
		t.Fatal(err)
	}
	h = append(h, audit.Event{Index: 41, Time: at(14, 14, 0, 0), Action: auditreport.ActionReviewMark, Outcome: audit.Allowed, User: auditor, Detail: d})
	asked := map[string]int{}
	rules := reviewRules()
	rules.Protected = func(p string) bool { asked[p]++; return p == p4 }
	for _, tc := range []struct {
		until  time.Time
		marked bool
	}{{time.Time{}, true}, {at(14, 14, 0, 1), true}, {at(14, 14, 0, 0), false}, {at(14, 12, 0, 0), false}} {
		rules.MarksUntil = tc.until
		r, err := auditreport.Review(context.Background(), h, at(10, 0, 0, 0), at(17, 0, 0, 0), rules)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(r.Findings, func(f auditreport.Finding) bool { return f.Rule == auditreport.RuleExport })
		if got := r.Findings[i].Reviewed(); got != tc.marked {
			t.Errorf("MarksUntil %v: marked = %v, want %v", tc.until, got, tc.marked)
		}
	}
	for _, n := range asked {
		if n != 4 {
			t.Errorf("Protected asked %d times for one patient in 4 reviews", n)
		}
	}
	if len(asked) != 24 {
		t.Errorf("Protected asked for %d patients, want 24", len(asked))
	}
}

func TestReviewCaptureLost(t *testing.T) {
	const src = "SE9999990001-CAP1"
	h := history{
		{Index: 0, Time: at(15, 12, 0, 0), Action: "capture.start", Outcome: audit.Allowed, User: src, CareUnit: "SE9999990001-VE0A"},
		{Index: 1, Time: at(15, 12, 5, 0), Action: "capture.end", Outcome: audit.Allowed, User: src, Reason: "stored"},
		{Index: 2, Time: at(15, 12, 6, 0), Action: "capture.end", Outcome: audit.Allowed, User: src, Reason: "cancelled"},
		{Index: 3, Time: at(15, 12, 7, 0), Action: "capture.end", Outcome: audit.Allowed, User: src, Reason: "failed", CareUnit: "SE9999990001-VE0A"},
		{Index: 4, Time: at(15, 12, 8, 0), Action: "capture.end", Outcome: audit.Allowed, User: src, Reason: "incomplete"},
	}
	r, err := auditreport.Review(context.Background(), h, at(1, 0, 0, 0), at(30, 0, 0, 0), auditreport.Rules{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 1 {
		t.Fatalf("findings %+v, want exactly the failed capture", r.Findings)
	}
	f := r.Findings[0]
	if f.Rule != auditreport.RuleCaptureLost || !slices.Equal(f.Events, []int64{3}) || f.User != src || f.CareUnit != "SE9999990001-VE0A" {
		t.Errorf("finding %+v", f)
	}
}
