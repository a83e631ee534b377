package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"callvault/internal/access"
	"callvault/internal/audit"
	"callvault/internal/catalog"
	"callvault/internal/pnr"
	"callvault/internal/recording"
	"callvault/internal/seal"
	"callvault/internal/site"
)

// Query selects a patient's recordings, optionally by call start time in [From, To).
type Query struct {
	Patient  string
	From, To time.Time
}

// Summary is one hit of a search: what a clinician needs to pick a call,
// nothing more.
type Summary struct {
	ID        string    `json:"id"`
	CallID    string    `json:"call_id"`
	CareUnit  string    `json:"care_unit"`
	Staff     []string  `json:"staff"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	Direction string    `json:"direction"`
	// Emergency is true when the hit is visible only through emergency access.
	Emergency bool `json:"emergency_access,omitempty"`
}

// Details is a recording's full metadata.
type Details struct {
	Summary
	CareProvider  string `json:"care_provider"`
	Patient       string `json:"patient,omitempty"`
	CallerNumber  string `json:"caller_number,omitempty"`
	PrivacyNotice string `json:"privacy_notice,omitempty"`
	ContentType   string `json:"content_type"`
	AudioBytes    int64  `json:"audio_bytes"`
	// Incomplete: the capture failed mid-call and this is what was saved.
	Incomplete bool `json:"incomplete,omitempty"`
	// CaptureStats is a live capture's account of the media (per stream:
	// packets, loss, jitter, gaps); absent for uploads.
	CaptureStats json.RawMessage `json:"capture_stats,omitempty"`
}

// PatientIndex returns the blind index under which the catalog, the audit
// log and the directory's blocks find a patient.
func PatientIndex(k Keyring, n pnr.Number) []byte { return k.BlindIndex(indexPatient, n.Digits()) }

func summaryOf(r *catalog.Recording) Summary {
	return Summary{ID: r.ID, CallID: r.CallID, CareUnit: r.CareUnit, Staff: r.Staff,
		StartedAt: r.StartedAt.UTC(), EndedAt: r.EndedAt.UTC(), Direction: r.Direction}
}

func (s *Service) purpose(a Access) (access.Purpose, error) {
	p, err := access.ParsePurpose(a.Purpose)
	if err != nil {
		return "", &InvalidError{Field: "purpose", Msg: "state a purpose: care, complaint, adverse-event, patient-request or supervision", Err: err}
	}
	if len(a.EmergencyReason) > access.MaxEmergencyReason {
		return "", &InvalidError{Field: "emergency_reason", Msg: fmt.Sprintf("at most %d bytes", access.MaxEmergencyReason)}
	}
	return p, nil
}

// SearchResult is what a search finds.
type SearchResult struct {
	Hits []Summary
	// NeedEmergency counts the recordings, not in Hits, that the caller
	// would see by emergency access (another care unit's, or past a block
	// against their unit). Only their number is told, so that a clinician
	// knows that emergency access would find more; without an emergency
	// reason nothing else about them is shown.
	NeedEmergency int
}

// Search lists the recordings of one patient that the caller may see in
// their care provider. Hits from other care units appear only with an
// emergency reason (and are then flagged); without one, only their number
// is returned. The search itself is audited with the patient and the
// numbers before the result is returned.
func (s *Service) Search(ctx context.Context, c Caller, a Access, q Query) (*SearchResult, error) {
	ev := &audit.Event{Action: string(access.ActionSearch), Purpose: a.Purpose, EmergencyReason: a.EmergencyReason}
	purpose, err := s.purpose(a)
	if err != nil {
		ev.Reason = access.ReasonPurpose
		return nil, s.deny(ctx, c, ev, err)
	}
	n, err := pnr.Parse(q.Patient, s.now())
	if err != nil {
		ev.Reason = "invalid-patient"
		return nil, s.deny(ctx, c, ev, &InvalidError{Field: "patient", Msg: "not a valid personnummer or samordningsnummer", Err: err})
	}
	ev.Patient = n.Digits()
	d := access.Decide(access.Request{Action: access.ActionSearch, Principal: c.Principal, Purpose: purpose, EmergencyReason: a.EmergencyReason})
	ev.Reason = d.Reason
	if !d.Allowed {
		return nil, s.deny(ctx, c, ev, nil)
	}
	idx := PatientIndex(s.keys, n)
	recs, err := s.cat.ByPatient(ctx, c.Principal.CareProvider, idx, q.From, q.To)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	blocked, err := s.dir.Blocked(ctx, idx, c.Principal.CareUnit)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	out := []Summary{}
	emergencyHits, needEmergency := 0, 0
	for _, r := range recs {
		rd := access.Decide(access.Request{Action: access.ActionReadMetadata, Principal: c.Principal, Purpose: purpose,
			EmergencyReason: a.EmergencyReason, Facts: access.Facts{CareProvider: r.CareProvider, CareUnit: r.CareUnit, Staff: r.Staff, BlockedForUnit: blocked}})
		if !rd.Allowed {
			if rd.Reason == access.ReasonOtherUnit || rd.Reason == access.ReasonBlocked {
				needEmergency++
			}
			continue
		}
		sum := summaryOf(r)
		if rd.Emergency {
			sum.Emergency = true
			emergencyHits++
		}
		out = append(out, sum)
	}
	ev.Outcome = audit.Allowed
	ev.Flagged = emergencyHits > 0
	ev.Detail = fmt.Sprintf("hits=%d emergency_hits=%d need_emergency=%d", len(out), emergencyHits, needEmergency)
	if err := s.record(ctx, c, ev); err != nil {
		return nil, err
	}
	return &SearchResult{Hits: out, NeedEmergency: needEmergency}, nil
}

// authorizeRecording loads recording id, decides action for the caller and
// records the decision. On success it returns the row and its file key.
func (s *Service) authorizeRecording(ctx context.Context, c Caller, a Access, action access.Action, id, detail string) (*catalog.Recording, *seal.FileKey, error) {
	ev := &audit.Event{Action: string(action), RecordingID: id, Purpose: a.Purpose, EmergencyReason: a.EmergencyReason, Detail: detail}
	if !recording.ValidID(id) {
		ev.RecordingID, ev.Reason = "", "invalid-id"
		return nil, nil, s.deny(ctx, c, ev, &InvalidError{Field: "id", Msg: "a recording ID is 32 lowercase hex characters"})
	}
	purpose, err := s.purpose(a)
	if err != nil {
		ev.Reason = access.ReasonPurpose
		return nil, nil, s.deny(ctx, c, ev, err)
	}
	rec, err := s.cat.Get(ctx, id)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, nil, s.gone(ctx, c, ev, id)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	fk, err := s.fileKey(rec)
	if err != nil {
		return nil, nil, err
	}
	if rec.PatientSealed != nil {
		p, err := fk.OpenField(fieldPatient, rec.PatientSealed)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: recording %s: patient field: %w", ErrStorage, id, err)
		}
		ev.Patient = string(p)
	}
	blocked, err := s.dir.Blocked(ctx, rec.PatientIndex, c.Principal.CareUnit)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	d := access.Decide(access.Request{Action: action, Principal: c.Principal, Purpose: purpose, EmergencyReason: a.EmergencyReason,
		Facts: access.Facts{CareProvider: rec.CareProvider, CareUnit: rec.CareUnit, Staff: rec.Staff, BlockedForUnit: blocked}})
	ev.Reason, ev.Flagged = d.Reason, d.Emergency
	if !d.Allowed {
		if d.Conceal {
			return nil, nil, s.deny(ctx, c, ev, ErrNotFound)
		}
		return nil, nil, s.deny(ctx, c, ev, nil)
	}
	ev.Outcome = audit.Allowed
	if err := s.record(ctx, c, ev); err != nil {
		return nil, nil, err
	}
	return rec, fk, nil
}

func (s *Service) fileKey(rec *catalog.Recording) (*seal.FileKey, error) {
	id, err := s.keys.Identity(rec.KeyEpoch)
	if err != nil {
		return nil, fmt.Errorf("%w: recording %s: %w", ErrStorage, rec.ID, err)
	}
	fk, err := seal.Unwrap(rec.WrappedKey, id)
	if err != nil {
		return nil, fmt.Errorf("%w: recording %s: unwrap: %w", ErrStorage, rec.ID, err)
	}
	return fk, nil
}

// Get returns a recording's metadata, the patient and caller number
// decrypted, after the decision is audited.
func (s *Service) Get(ctx context.Context, c Caller, a Access, id string) (*Details, error) {
	rec, fk, err := s.authorizeRecording(ctx, c, a, access.ActionReadMetadata, id, "")
	if err != nil {
		return nil, err
	}
	d := &Details{Summary: summaryOf(rec), CareProvider: rec.CareProvider, PrivacyNotice: rec.PrivacyNotice,
		ContentType: rec.ContentType, AudioBytes: rec.AudioBytes, Incomplete: rec.Incomplete}
	if rec.CaptureStats != "" {
		d.CaptureStats = json.RawMessage(rec.CaptureStats)
	}
	d.Emergency = c.Principal.CareUnit != rec.CareUnit && a.EmergencyReason != ""
	if rec.PatientSealed != nil {
		p, err := fk.OpenField(fieldPatient, rec.PatientSealed)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStorage, err)
		}
		d.Patient = string(p)
	}
	if rec.CallerSealed != nil {
		p, err := fk.OpenField(fieldCaller, rec.CallerSealed)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStorage, err)
		}
		d.CallerNumber = string(p)
	}
	return d, nil
}

// Audio is an open, authorized recording: seekable plaintext that is
// decrypted chunk by chunk as it is read. Close it when done.
type Audio struct {
	ID          string
	ContentType string
	*seal.Reader
	blob site.Blob
}

// Close releases the blob.
func (a *Audio) Close() error { return a.blob.Close() }

// OpenAudio authorizes playback of recording id, audits it (detail says
// which bytes were asked for, e.g. an HTTP Range), and returns the
// decrypting reader over the blob of the first healthy site.
func (s *Service) OpenAudio(ctx context.Context, c Caller, a Access, id, detail string) (*Audio, error) {
	rec, fk, err := s.authorizeRecording(ctx, c, a, access.ActionPlay, id, detail)
	if err != nil {
		return nil, err
	}
	if lost, err := s.cat.Lost(ctx, id); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	} else if lost {
		return nil, fmt.Errorf("recording %s: %w", id, ErrLost)
	}
	blob, err := s.sites.Open(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%w: recording %s: %w", ErrStorage, id, err)
	}
	r, err := seal.NewReader(blob, blob.Size(), fk, id)
	if err != nil {
		blob.Close()
		return nil, fmt.Errorf("%w: recording %s: %w", ErrStorage, id, err)
	}
	return &Audio{ID: id, ContentType: rec.ContentType, Reader: r, blob: blob}, nil
}
