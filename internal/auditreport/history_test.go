package auditreport_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"testing"
	"time"

	"callvault/internal/audit"
	"callvault/internal/auditreport"
	"callvault/internal/pnr"
)

// history is an audit log held in a slice: test data, in log order. It
// hands fn a copy of each event so that a report cannot change the log.
type history []audit.Event

var _ auditreport.Source = history(nil)

func (h history) Range(ctx context.Context, from, to time.Time, fn func(*audit.Event) error) error {
	for i := range h {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := h[i]
		if e.Time.Before(from) || !e.Time.Before(to) {
			continue
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return nil
}

func (h history) ForPatient(ctx context.Context, patient string, fn func(*audit.Event) error) error {
	for i := range h {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := h[i]
		if e.Patient != patient {
			continue
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return nil
}

// The cast of the scripted history. Patients are Skatteverket test
// personnummer; the 21 of nurse C are synthetic (born 1900-01-01, serials
// 970–990, check digit by Luhn, validated by pnr in TestSyntheticPatients).
const (
	provider = "SE9999990001-VG01"
	unitA    = "SE9999990001-VE0A"
	unitB    = "SE9999990001-VE0B"
	nurseA   = "SE9999990001-N0A1"
	nurseB   = "SE9999990001-N0B1"
	nurseC   = "SE9999990001-N0C1"
	auditor  = "SE9999990001-R0A1"
	capture  = "SE9999990001-S0A1"
	admin    = "SE9999990001-A0A1"

	p1 = "191212121212"
	p2 = "198001019804"
	p3 = "201701102384"
	p4 = "197010632391" // protected identity; a samordningsnummer

	r1 = "11111111111111111111111111111111"
	r2 = "22222222222222222222222222222222"
	r3 = "33333333333333333333333333333333"
	r4 = "44444444444444444444444444444444"

	addrA       = "10.0.0.11"
	addrB       = "10.0.0.12"
	addrC       = "10.0.0.13"
	addrUnknown = "192.0.2.7"

	emergencyReason = "Medvetslös, anhörig ringer"
	markNote        = "Kontrollerat med enhetschef. <script>alert(1)</script>"
)

// fingerprint is the SHA-256 of the unknown client's certificate.
var fingerprint = func() string {
	s := sha256.Sum256([]byte("unknown client certificate"))
	return hex.EncodeToString(s[:])
}()

// at is a time on a day of March 2025, Swedish time (CET, UTC+1).
func at(day, hh, mm, ss int) time.Time {
	return time.Date(2025, time.March, day, hh, mm, ss, 0, time.FixedZone("CET", 3600))
}

// synthetic returns the k-th synthetic patient: 19000101 98k + Luhn digit.
func synthetic(k int) string {
	body := fmt.Sprintf("000101%03d", 970+k)
	sum := 0
	for i := range len(body) {
		d := int(body[i] - '0')
		if i%2 == 0 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return "19" + body + strconv.Itoa((10-sum%10)%10)
}

// findingID recomputes a finding's ID by the rule of docs/audit-reports.md.
func findingID(rule, key string, idx ...int64) string {
	s := rule + "\x00" + key + "\x00"
	for i, n := range idx {
		if i > 0 {
			s += ","
		}
		s += strconv.FormatInt(n, 10)
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:16]
}

func span(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// The scripted history; the comments give each event's index.
//
//	0–1    Mon 10 Mar 03:12 capture ingests R1 for P1
//	2–5    Mon 08:00–08:30 nurse A: search P1, read R1, play R1 twice
//	6–7    Mon 09:15–09:16 nurse B (unit B): search P1 and read R1 by emergency access
//	8–9    Mon 09:20, 09:40 nurse B denied: play R2 (P2), play R1 (P1)
//	10     Mon 11:00 admin blocks P1 for unit B
//	11–31  Tue 11 Mar 10:00–10:50 nurse C searches 21 patients (odd ones have a hit)
//	32–36  Wed 12 Mar 14:00–14:10 five authenticate denials, unknown certificate
//	37–38  Wed 15:00–15:01 nurse A: search and play P4 (protected identity)
//	39     Fri 14 Mar 13:00 nurse A exports R1 (complaint), from an IPv4-mapped address
//	40     Sat 15 Mar 23:10 nurse A plays R3 (P3)
//	41     Mon 17 Mar 09:00 auditor marks finding of event 6: followed-up
//	42     Mon 09:05 nurse B tries to mark event 7's finding: denied
//	43     Mon 09:10 auditor, malformed mark
func scripted() history {
	var h history
	add := func(e audit.Event) {
		e.Index = int64(len(h))
		e.Time = e.Time.UTC()
		h = append(h, e)
	}
	nA := func(e audit.Event) audit.Event {
		e.User, e.CareProvider, e.CareUnit, e.ClientAddr = nurseA, provider, unitA, addrA
		e.Outcome = audit.Allowed
		return e
	}
	nB := func(e audit.Event) audit.Event {
		e.User, e.CareProvider, e.CareUnit, e.ClientAddr = nurseB, provider, unitB, addrB
		return e
	}

	add(audit.Event{Time: at(10, 3, 12, 0), Action: "ingest", Outcome: audit.Allowed, User: capture, CareProvider: provider, CareUnit: unitA, RecordingID: r1, Patient: p1})
	add(audit.Event{Time: at(10, 3, 12, 5), Action: "ingest.stored", Outcome: audit.Allowed, User: capture, CareProvider: provider, CareUnit: unitA, RecordingID: r1, Patient: p1, Detail: "bytes=1000 sites=2"})
	add(nA(audit.Event{Time: at(10, 8, 0, 0), Action: "search", Patient: p1, Purpose: "care", Detail: "hits=2 emergency_hits=0"}))
	add(nA(audit.Event{Time: at(10, 8, 1, 0), Action: "read-metadata", Patient: p1, RecordingID: r1, Purpose: "care"}))
	add(nA(audit.Event{Time: at(10, 8, 2, 0), Action: "play", Patient: p1, RecordingID: r1, Purpose: "care", Detail: "bytes=0-"}))
	add(nA(audit.Event{Time: at(10, 8, 30, 0), Action: "play", Patient: p1, RecordingID: r1, Purpose: "care", Detail: "bytes=0-"}))
	add(nB(audit.Event{Time: at(10, 9, 15, 0), Action: "search", Outcome: audit.Allowed, Flagged: true, Patient: p1, Purpose: "care", EmergencyReason: emergencyReason, Detail: "hits=1 emergency_hits=1"}))
	add(nB(audit.Event{Time: at(10, 9, 16, 0), Action: "read-metadata", Outcome: audit.Allowed, Flagged: true, Patient: p1, RecordingID: r1, Purpose: "care", EmergencyReason: emergencyReason}))
	add(nB(audit.Event{Time: at(10, 9, 20, 0), Action: "play", Outcome: audit.Denied, Reason: "other-care-unit-needs-emergency-access", Patient: p2, RecordingID: r2, Purpose: "care"}))
	add(nB(audit.Event{Time: at(10, 9, 40, 0), Action: "play", Outcome: audit.Denied, Reason: "other-care-unit-needs-emergency-access", Patient: p1, RecordingID: r1, Purpose: "care"}))
	add(audit.Event{Time: at(10, 11, 0, 0), Action: "directory.block", Outcome: audit.Allowed, Reason: "admin", User: admin, CareProvider: provider, Patient: p1, Detail: "unit=" + unitB})
	for k := range 21 {
		add(audit.Event{Time: at(11, 10, 0, 0).Add(time.Duration(k) * 150 * time.Second), Action: "search", Outcome: audit.Allowed,
			User: nurseC, CareProvider: provider, CareUnit: unitA, ClientAddr: addrC, Patient: synthetic(k), Purpose: "care",
			Detail: fmt.Sprintf("hits=%d emergency_hits=0", k%2)})
	}
	for _, m := range []int{0, 2, 4, 6, 10} {
		add(audit.Event{Time: at(12, 14, m, 0), Action: "authenticate", Outcome: audit.Denied, Reason: "unknown-user", ClientAddr: addrUnknown, Detail: "cert_sha256=" + fingerprint})
	}
	add(nA(audit.Event{Time: at(12, 15, 0, 0), Action: "search", Patient: p4, Purpose: "care", Detail: "hits=1 emergency_hits=0"}))
	add(nA(audit.Event{Time: at(12, 15, 1, 0), Action: "play", Patient: p4, RecordingID: r4, Purpose: "care", Detail: "bytes=0-"}))
	ex := nA(audit.Event{Time: at(14, 13, 0, 0), Action: "export", Patient: p1, RecordingID: r1, Purpose: "complaint"})
	ex.ClientAddr = "::ffff:" + addrA
	add(ex)
	add(nA(audit.Event{Time: at(15, 23, 10, 0), Action: "play", Patient: p3, RecordingID: r3, Purpose: "care", Detail: "bytes=0-"}))

	mark := func(id, outcome string) string {
		d, err := auditreport.ReviewMarkDetail(id, outcome)
		if err != nil {
			panic(err)
		}
		return d
	}
	add(audit.Event{Time: at(17, 9, 0, 0), Action: auditreport.ActionReviewMark, Outcome: audit.Allowed, User: auditor, CareProvider: provider,
		Detail: mark(findingID(auditreport.RuleEmergency, nurseB, 6), auditreport.MarkFollowedUp), Note: markNote})
	add(nB(audit.Event{Time: at(17, 9, 5, 0), Action: auditreport.ActionReviewMark, Outcome: audit.Denied, Reason: "role-not-permitted",
		Detail: mark(findingID(auditreport.RuleEmergency, nurseB, 7), auditreport.MarkNoAction), Note: "inget att se"}))
	add(audit.Event{Time: at(17, 9, 10, 0), Action: auditreport.ActionReviewMark, Outcome: audit.Allowed, User: auditor, CareProvider: provider,
		Detail: "finding=zz outcome=maybe", Note: "malformed"})
	return h
}

// otherPatients lists every patient of the history but p1.
func otherPatients() []string {
	out := []string{p2, p3, p4}
	for k := range 21 {
		out = append(out, synthetic(k))
	}
	return out
}

func TestSyntheticPatients(t *testing.T) {
	now := time.Date(2026, time.June, 15, 12, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	for _, p := range append(otherPatients(), p1) {
		n, err := pnr.Parse(p, now)
		if err != nil || n.Digits() != p {
			t.Errorf("test patient %d-digit value is not a valid personnummer: %v", len(p), err)
		}
		if seen[p] {
			t.Errorf("duplicate test patient")
		}
		seen[p] = true
	}
}
