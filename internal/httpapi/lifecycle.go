package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"callvault/internal/archive"
)

// The records officers' routes (docs/lifecycle.md): legal holds and IVO
// deletion decisions.

const maxLifecycleBody = 128 << 10

// decodeBody decodes the JSON body into v, refusing unknown fields, trailing
// data and bodies over maxLifecycleBody; it answers 400 and reports false
// on a bad body.
func (s *server) decodeBody(w http.ResponseWriter, r *http.Request, c archive.Caller, action, usage string, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLifecycleBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		s.reject(w, r, c, action, "body", http.StatusBadRequest, "send "+usage)
		return false
	}
	return true
}

// setHold: POST /v1/recordings/{id}/holds {"reference": "…"}
func (s *server) setHold(w http.ResponseWriter, r *http.Request, c archive.Caller) {
	var body struct {
		Reference string `json:"reference"`
	}
	if !s.decodeBody(w, r, c, "hold.set", `{"reference": "…"}`, &body) {
		return
	}
	h, err := s.arc.SetHold(r.Context(), c, r.PathValue("id"), body.Reference)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, h)
}

// holds: GET /v1/recordings/{id}/holds
func (s *server) holds(w http.ResponseWriter, r *http.Request, c archive.Caller) {
	hs, err := s.arc.Holds(r.Context(), c, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"holds": hs})
}

// releaseHold: DELETE /v1/recordings/{id}/holds/{hold}
func (s *server) releaseHold(w http.ResponseWriter, r *http.Request, c archive.Caller) {
	hold, err := strconv.ParseInt(r.PathValue("hold"), 10, 64)
	if err != nil || hold <= 0 {
		s.reject(w, r, c, "hold.release", "hold", http.StatusBadRequest, "the hold is named by its number")
		return
	}
	h, err := s.arc.ReleaseHold(r.Context(), c, r.PathValue("id"), hold)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

// registerDeletion: POST /v1/deletions
func (s *server) registerDeletion(w http.ResponseWriter, r *http.Request, c archive.Caller) {
	var body struct {
		CaseNumber     string   `json:"case_number"`
		DecidedOn      string   `json:"decided_on"`
		DocumentSHA256 string   `json:"document_sha256"`
		Recordings     []string `json:"recordings"`
	}
	if !s.decodeBody(w, r, c, "deletion.register", `{"case_number": "…", "decided_on": "YYYY-MM-DD", "document_sha256": "…", "recordings": ["…"]}`, &body) {
		return
	}
	d, err := s.arc.RegisterDeletion(r.Context(), c, archive.DeletionRequest{CaseNumber: body.CaseNumber, DecidedOn: body.DecidedOn,
		DocumentSHA256: body.DocumentSHA256, Recordings: body.Recordings})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/deletions/"+strconv.FormatInt(d.ID, 10))
	writeJSON(w, http.StatusCreated, d)
}

// decisionID parses {id}; it answers 400 and reports false on a bad one.
func (s *server) decisionID(w http.ResponseWriter, r *http.Request, c archive.Caller, action string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.reject(w, r, c, action, "id", http.StatusBadRequest, "a deletion decision is named by its number")
		return 0, false
	}
	return id, true
}

// deletion: GET /v1/deletions/{id}
func (s *server) deletion(w http.ResponseWriter, r *http.Request, c archive.Caller) {
	id, ok := s.decisionID(w, r, c, "deletion.read")
	if !ok {
		return
	}
	d, err := s.arc.Decision(r.Context(), c, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// approveDeletion: POST /v1/deletions/{id}/approve
func (s *server) approveDeletion(w http.ResponseWriter, r *http.Request, c archive.Caller) {
	id, ok := s.decisionID(w, r, c, "deletion.approve")
	if !ok {
		return
	}
	d, err := s.arc.ApproveDeletion(r.Context(), c, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"decision": d, "deleted": d.Recordings})
}

// verify: POST /v1/recordings/{id}/verify {"sha256": "…"} — a capture
// system's migration proves a source file is in the archive (docs/import.md).
func (s *server) verify(w http.ResponseWriter, r *http.Request, c archive.Caller) {
	var body struct {
		SHA256 string `json:"sha256"`
	}
	if !s.decodeBody(w, r, c, "verify", `{"sha256": "<64 hex>"}`, &body) {
		return
	}
	v, err := s.arc.Verify(r.Context(), c, r.PathValue("id"), body.SHA256)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
