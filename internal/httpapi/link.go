package httpapi

import (
	"context"
	"net/http"

	"callvault/internal/archive"
	"callvault/internal/recording"
)

// LiveLinker links a patient to a call still being recorded (the SIPREC
// server): ok is false when no call with callID is being recorded for c.
type LiveLinker interface {
	LinkActive(ctx context.Context, c archive.Caller, callID, patient string) (link *archive.Link, ok bool, err error)
}

// link: POST /v1/recordings/link {"call_id"|"recording_id": "…", "patient": "…"}
//
// A capture or integration system tells which patient a recorded call was
// with, usually while the call is still going on; a later link is a
// correction and keeps the history (docs/api.md).
func (s *server) link(w http.ResponseWriter, r *http.Request, c archive.Caller) {
	var body struct {
		CallID      string `json:"call_id"`
		RecordingID string `json:"recording_id"`
		Patient     string `json:"patient"`
	}
	const usage = `{"call_id": "…" or "recording_id": "…", "patient": "…"}`
	if !s.decodeBody(w, r, c, "recording.link", usage, &body) {
		return
	}
	switch {
	case (body.CallID == "") == (body.RecordingID == ""):
		s.reject(w, r, c, "recording.link", "call_id", http.StatusBadRequest, "give exactly one of call_id and recording_id")
		return
	case body.RecordingID != "" && !recording.ValidID(body.RecordingID):
		s.reject(w, r, c, "recording.link", "recording_id", http.StatusBadRequest, "a recording ID is 32 lowercase hex characters")
		return
	case len(body.CallID) > recording.MaxCallIDLen:
		s.reject(w, r, c, "recording.link", "call_id", http.StatusBadRequest, "call_id is too long")
		return
	}
	patient, err := s.arc.ParseLinkPatient(body.Patient)
	if err != nil {
		s.rejectErr(w, r, c, "recording.link", err)
		return
	}
	if body.CallID != "" && s.live != nil {
		l, ok, err := s.live.LinkActive(r.Context(), c, body.CallID, patient)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if ok {
			writeJSON(w, http.StatusOK, l)
			return
		}
	}
	l, err := s.arc.LinkStored(r.Context(), c, archive.LinkTarget{RecordingID: body.RecordingID, CallID: body.CallID}, patient)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}
