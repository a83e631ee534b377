package siprec

import (
	"context"

	"callvault/internal/archive"
)

// LinkActive links patient (12 digits) to the call being recorded whose
// recorded call ID is callID, for c of the same care provider: the patient
// is kept with the session (sealed in its spool) and stored with the
// recording. ok is false when no such call is being recorded.
func (s *Server) LinkActive(ctx context.Context, c archive.Caller, callID, patient string) (*archive.Link, bool, error) {
	if c.Principal == nil {
		return nil, false, nil
	}
	s.mu.Lock()
	var found *session
	for _, m := range []map[string]*session{s.sessions, s.ending} {
		for _, ss := range m {
			ss.mu.Lock()
			match := ss.meta.CallID == callID
			ss.mu.Unlock()
			if match && ss.caller.Principal.CareProvider == c.Principal.CareProvider {
				found = ss
			}
		}
	}
	s.mu.Unlock()
	if found == nil {
		return nil, false, nil
	}
	found.mu.Lock()
	ended := found.ended
	replaced := found.meta.Patient != "" && found.meta.Patient != patient
	found.mu.Unlock()
	if ended {
		// Between BYE and stored: neither the session nor the catalog can
		// take the patient now; the caller retries in a moment.
		return nil, true, archive.ErrBusy
	}
	detail := "target=recording"
	if replaced {
		detail += " replaces=yes"
	}
	if err := s.arc.AuthorizeLink(ctx, c, found.caller.Principal.CareProvider, found.source.CareUnit, found.id, patient, detail); err != nil {
		return nil, true, err
	}
	found.mu.Lock()
	defer found.mu.Unlock()
	if found.ended {
		// Ended while the decision was audited: the audited link is
		// repeated by the caller's retry against the stored recording.
		return nil, true, archive.ErrBusy
	}
	found.meta.Patient = patient
	found.saveMeta(&found.meta)
	return &archive.Link{RecordingID: found.id, State: "recording", Replaced: replaced}, true, nil
}
