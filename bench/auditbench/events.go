package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"callvault/internal/audit"
)

// The synthetic population. Every identity is obviously synthetic: the
// measured patients are Skatteverket's published test personnummer, the
// bulk patients are 12-digit numbers starting 99 (birth year 9900, which
// no personnummer has), and HSA-IDs use the test organisation 999999-0001.
//
// Event k is a pure function of k (and seed), so two runs with the same
// flags write the same events apart from times, nonces and keys.

// tracked is a measured patient: every stride-th event from offset on is
// about it, so its events are spread evenly over the whole log.
type tracked struct {
	class   string // "~10", "~100", "~1000"
	pnr     string // a Skatteverket test personnummer
	stride  int64
	offset  int64
	written int64 // events written about it (set after generation)
}

// population decides what event k is.
type population struct {
	n       int64 // planned log size
	bulk    int64 // number of bulk patients
	tracked []*tracked
	seed    uint64
}

// newPopulation plans a log of n events: three tracked patients with
// n/1e6, n/1e5 and n/1e4 events (10, 100 and 1000 at 10 million), and bulk
// patients with about 10 events each.
func newPopulation(n int64) *population {
	p := &population{n: n, bulk: max(1, n/10), seed: 0x5eed_ca11_7a01}
	for _, t := range []struct {
		class, pnr string
		count      int64
		offset     int64
	}{
		{"~10", "201701102384", 10, 345_678},
		{"~100", "198001019804", 100, 56_789},
		{"~1000", "191212121212", 1000, 1_234},
	} {
		stride := max(1, n/t.count)
		p.tracked = append(p.tracked, &tracked{class: t.class, pnr: t.pnr, stride: stride, offset: t.offset % stride})
	}
	return p
}

// splitmix64 is a small, good mixing function: event k's randomness.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// bulkPnr is bulk patient id's number: "99" and ten digits.
func bulkPnr(id int64) string { return fmt.Sprintf("99%010d", id) }

// trackedAt returns the tracked patient of event k, or nil.
func (p *population) trackedAt(k int64) *tracked {
	for _, t := range p.tracked {
		if k%t.stride == t.offset {
			return t
		}
	}
	return nil
}

// bulkOf returns the bulk patient of event k (meaningful only if k has a
// patient and is not tracked).
func (p *population) bulkOf(k int64) int64 {
	return int64(splitmix64(p.seed^uint64(k)^0xb01c) % uint64(p.bulk))
}

// recordingOf is one of the (at most 3) recordings of patient.
func recordingOf(patient string, j uint64) string {
	h := sha256.Sum256(fmt.Appendf(nil, "recording %s %d", patient, j))
	return hex.EncodeToString(h[:16])
}

// event returns event k. Shares: 4 % failed authentications (no user, no
// patient), 3 % ingest and 3 % ingest.stored by the capture service, 20 %
// searches, 20 % metadata reads, 48 % plays allowed and 2 % plays denied;
// 1 % of allowed reads are emergency access (flagged, with a sealed
// reason). A tracked patient's events are never authentications.
func (p *population) event(k int64) *audit.Event {
	r := splitmix64(p.seed ^ uint64(k))
	kind := r % 100
	patient := ""
	if t := p.trackedAt(k); t != nil {
		patient = t.pnr
		if kind < 4 {
			kind = 50 // a play
		}
	} else if kind >= 4 {
		patient = bulkPnr(p.bulkOf(k))
	}
	staff := (r >> 8) % 400
	unit := staff % 20
	e := &audit.Event{
		Outcome:      audit.Allowed,
		User:         fmt.Sprintf("SE9999990001-N%03X", staff),
		CareProvider: "SE9999990001-VG01",
		CareUnit:     fmt.Sprintf("SE9999990001-VE%02X", unit),
		Patient:      patient,
		ClientAddr:   fmt.Sprintf("10.0.%d.%d", unit, 10+staff%200),
		RequestID:    fmt.Sprintf("%016x", splitmix64(r)),
	}
	fp := sha256.Sum256([]byte(e.User))
	e.CertFingerprint = hex.EncodeToString(fp[:])
	rec := recordingOf(patient, (r>>20)%3)
	switch {
	case kind < 4:
		e.Action, e.Outcome, e.Reason = "authenticate", audit.Denied, "unknown-certificate"
		e.User, e.CareProvider, e.CareUnit = "", "", ""
	case kind < 7:
		e.Action, e.Reason, e.RecordingID = "ingest", "capture", rec
		e.User = "SE9999990001-S0A1"
	case kind < 10:
		e.Action, e.RecordingID, e.Detail = "ingest.stored", rec, "bytes=3648058 sites=2"
		e.User = "SE9999990001-S0A1"
	case kind < 30:
		e.Action, e.Reason, e.Purpose, e.Detail = "search", "own-unit", "care", "hits=2 emergency_hits=0"
	case kind < 50:
		e.Action, e.Reason, e.Purpose, e.RecordingID = "read-metadata", "own-unit", "care", rec
	case kind < 98:
		e.Action, e.Reason, e.Purpose, e.RecordingID, e.Detail = "play", "own-unit", "care", rec, "bytes=0-"
	default:
		e.Action, e.Outcome, e.Reason, e.Purpose, e.RecordingID = "play", audit.Denied, "other-unit", "care", rec
	}
	if e.Outcome == audit.Allowed && kind >= 10 && (r>>40)%100 == 0 {
		e.Flagged, e.Reason = true, "emergency"
		e.EmergencyReason = "Synthetic emergency reason written by auditbench."
		if e.Action == "search" {
			e.Detail = "hits=2 emergency_hits=1"
		}
	}
	return e
}
