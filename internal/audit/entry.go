package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Labels for personal data sealed inside entries, and the blind index
// namespace of patients (shared with the catalog).
const (
	labelPatient   = "audit/patient"
	labelEmergency = "audit/emergency-reason"
	labelNote      = "audit/note"
	indexPatient   = "patient"
)

// entryVersion is the "v" of the entries this package writes.
const entryVersion = 2

// MaxEntryBytes bounds one encoded entry: entry bundles of the tile API
// carry a 2-byte length (docs/audit-log.md).
const MaxEntryBytes = 1<<16 - 1

// entry is the stored form of an Event (docs/audit-log.md, "Entries"). Its
// JSON encoding, keys in this struct's order, is the leaf the tree commits
// to; the field order and omitempty set are part of the format.
type entry struct {
	V               int    `json:"v"`
	Index           int64  `json:"index"`
	Time            string `json:"time"`
	Action          string `json:"action"`
	Outcome         string `json:"outcome"`
	Reason          string `json:"reason,omitempty"`
	Flagged         bool   `json:"flagged,omitempty"`
	User            string `json:"user"`
	CareProvider    string `json:"care_provider,omitempty"`
	CareUnit        string `json:"care_unit,omitempty"`
	PatientIndex    []byte `json:"patient_index,omitempty"`
	PatientSealed   []byte `json:"patient_sealed,omitempty"`
	RecordingID     string `json:"recording_id,omitempty"`
	Purpose         string `json:"purpose,omitempty"`
	EmergencySealed []byte `json:"emergency_sealed,omitempty"`
	ClientAddr      string `json:"client_addr,omitempty"`
	CertFingerprint string `json:"cert_sha256,omitempty"`
	RequestID       string `json:"request_id,omitempty"`
	Detail          string `json:"detail,omitempty"`
	NoteSealed      []byte `json:"note_sealed,omitempty"`
}

// encode seals e's personal data with prot and returns the entry bytes for
// index, and the patient's blind index (nil if none).
func encode(prot Protector, e *Event, index int64) (raw, patientIndex []byte, err error) {
	en := &entry{
		V: entryVersion, Index: index, Time: e.Time.UTC().Format(time.RFC3339Nano),
		Action: e.Action, Outcome: e.Outcome, Reason: e.Reason, Flagged: e.Flagged,
		User: e.User, CareProvider: e.CareProvider, CareUnit: e.CareUnit,
		RecordingID: e.RecordingID, Purpose: e.Purpose,
		ClientAddr: e.ClientAddr, CertFingerprint: e.CertFingerprint, RequestID: e.RequestID, Detail: e.Detail,
	}
	for _, f := range []struct {
		label string
		plain string
		dst   *[]byte
	}{
		{labelPatient, e.Patient, &en.PatientSealed},
		{labelEmergency, e.EmergencyReason, &en.EmergencySealed},
		{labelNote, e.Note, &en.NoteSealed},
	} {
		if f.plain == "" {
			continue
		}
		if *f.dst, err = prot.SealData(f.label, []byte(f.plain)); err != nil {
			return nil, nil, fmt.Errorf("seal %s: %w", f.label, err)
		}
	}
	if e.Patient != "" {
		en.PatientIndex = prot.BlindIndex(indexPatient, e.Patient)
	}
	raw, err = json.Marshal(en)
	if err != nil {
		return nil, nil, err
	}
	if len(raw) > MaxEntryBytes {
		return nil, nil, fmt.Errorf("entry of %d bytes exceeds %d", len(raw), MaxEntryBytes)
	}
	return raw, en.PatientIndex, nil
}

// decode parses entry bytes and opens their sealed fields with prot.
func decode(prot Protector, raw []byte) (*Event, error) {
	var en entry
	if err := json.Unmarshal(raw, &en); err != nil {
		return nil, err
	}
	t, err := time.Parse(time.RFC3339Nano, en.Time)
	if err != nil {
		return nil, err
	}
	e := &Event{
		Index: en.Index, Time: t, Action: en.Action, Outcome: en.Outcome, Reason: en.Reason, Flagged: en.Flagged,
		User: en.User, CareProvider: en.CareProvider, CareUnit: en.CareUnit,
		RecordingID: en.RecordingID, Purpose: en.Purpose,
		ClientAddr: en.ClientAddr, CertFingerprint: en.CertFingerprint, RequestID: en.RequestID, Detail: en.Detail,
	}
	for _, f := range []struct {
		label  string
		sealed []byte
		dst    *string
	}{
		{labelPatient, en.PatientSealed, &e.Patient},
		{labelEmergency, en.EmergencySealed, &e.EmergencyReason},
		{labelNote, en.NoteSealed, &e.Note},
	} {
		if f.sealed == nil {
			continue
		}
		p, err := prot.OpenData(f.label, f.sealed)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", f.label, err)
		}
		*f.dst = string(p)
	}
	return e, nil
}

// entryIndex returns the "index" of entry bytes written by encode without
// parsing the whole object: they start `{"v":2,"index":N,`.
func entryIndex(raw []byte) (int64, error) {
	const prefix = `{"v":2,"index":`
	if len(raw) < len(prefix) || string(raw[:len(prefix)]) != prefix {
		return 0, errors.New("entry does not start with the version 2 prefix and its index")
	}
	rest := raw[len(prefix):]
	end := 0
	for end < len(rest) && end < 20 && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	if end == 0 || end >= len(rest) || rest[end] != ',' || (end > 1 && rest[0] == '0') {
		return 0, errors.New("entry index is not a decimal number")
	}
	return strconv.ParseInt(string(rest[:end]), 10, 64)
}
