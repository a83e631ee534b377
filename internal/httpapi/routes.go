package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"callvault/internal/archive"
	"callvault/internal/recording"
)

var errBadRequestBody = errors.New("httpapi: malformed request body")

// wireMetadata is the upload's metadata part as sent. Times are strings so
// that a parse error can name its field without echoing the value.
type wireMetadata struct {
	CallID        string   `json:"call_id"`
	CareProvider  string   `json:"care_provider"`
	CareUnit      string   `json:"care_unit"`
	Patient       string   `json:"patient"`
	CallerNumber  string   `json:"caller_number"`
	Staff         []string `json:"staff"`
	StartedAt     string   `json:"started_at"`
	EndedAt       string   `json:"ended_at"`
	Direction     string   `json:"direction"`
	PrivacyNotice string   `json:"privacy_notice"`
	SourceSHA256  string   `json:"source_sha256"`
}

func parseMetadata(r io.Reader) (recording.Metadata, error) {
	var wm wireMetadata
	data, err := io.ReadAll(io.LimitReader(r, maxMetadata+1))
	if err != nil {
		return recording.Metadata{}, fmt.Errorf("%w: %w", errBadRequestBody, err)
	}
	if len(data) > maxMetadata {
		return recording.Metadata{}, &archive.InvalidError{Field: "metadata", Msg: fmt.Sprintf("metadata part is larger than %d bytes", maxMetadata)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&wm); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// te.Field is a path of known field names, or "" when the
			// document itself is not an object.
			return recording.Metadata{}, &archive.InvalidError{Field: safeFieldName(te.Field), Msg: "wrong JSON type"}
		}
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return recording.Metadata{}, &archive.InvalidError{Field: safeFieldName(strings.Trim(name, `"`)), Msg: "unknown field"}
		}
		return recording.Metadata{}, &archive.InvalidError{Field: "metadata", Msg: "not a valid JSON object"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return recording.Metadata{}, &archive.InvalidError{Field: "metadata", Msg: "data after the JSON object"}
	}
	m := recording.Metadata{CallID: wm.CallID, CareProvider: wm.CareProvider, CareUnit: wm.CareUnit,
		Patient: wm.Patient, CallerNumber: wm.CallerNumber, Staff: wm.Staff, Direction: wm.Direction, PrivacyNotice: wm.PrivacyNotice,
		SourceSHA256: wm.SourceSHA256}
	for _, t := range []struct {
		field string
		s     string
		dst   *time.Time
	}{{"started_at", wm.StartedAt, &m.StartedAt}, {"ended_at", wm.EndedAt, &m.EndedAt}} {
		if t.s == "" {
			continue // Validate says "required"
		}
		v, err := time.Parse(time.RFC3339Nano, t.s)
		if err != nil {
			return recording.Metadata{}, &archive.InvalidError{Field: t.field, Msg: "not an RFC 3339 time"}
		}
		*t.dst = v
	}
	return m, nil
}

// safeFieldName returns name if it looks like a field name of ours (lower
// case letters, '_' and '.', at most 64 bytes), else "metadata". The name
// of an unknown field comes from the client and is echoed in the answer and
// the audit log: a client that put a personnummer in a key must not have it
// written there.
func safeFieldName(name string) string {
	if name == "" || len(name) > 64 {
		return "metadata"
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && r != '_' && r != '.' {
			return "metadata"
		}
	}
	return name
}

// upload: POST /v1/recordings, multipart/form-data with the part
// "metadata" (JSON) first and then the part "audio".
func (s *server) upload(w http.ResponseWriter, r *http.Request, c archive.Caller) {
	w = &drainOnError{ResponseWriter: w, body: r.Body}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		s.reject(w, r, c, "ingest", "content-type", http.StatusUnsupportedMediaType, "send multipart/form-data with the parts metadata and audio")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.maxUpload)
	mr, err := r.MultipartReader()
	if err != nil {
		s.reject(w, r, c, "ingest", "body", http.StatusBadRequest, "not a valid multipart body")
		return
	}
	part, err := mr.NextPart()
	if err != nil {
		s.rejectErr(w, r, c, "ingest", partError(err, "metadata"))
		return
	}
	if part.FormName() != "metadata" {
		s.reject(w, r, c, "ingest", "metadata", http.StatusBadRequest, "the first part must be metadata (JSON), then audio")
		return
	}
	meta, err := parseMetadata(part)
	if err != nil {
		s.rejectErr(w, r, c, "ingest", err)
		return
	}
	part, err = mr.NextPart()
	if err != nil {
		s.rejectErr(w, r, c, "ingest", partError(err, "audio"))
		return
	}
	if part.FormName() != "audio" {
		s.reject(w, r, c, "ingest", "audio", http.StatusBadRequest, "the second part must be audio")
		return
	}
	id, err := s.arc.Ingest(r.Context(), c, meta, part)
	var dup *archive.DuplicateError
	if errors.As(err, &dup) {
		// A migrated source file stored already: nothing new was stored.
		// Read the rest of the body so the connection stays usable.
		io.CopyN(io.Discard, r.Body, maxDrain)
		w.Header().Set("Location", "/v1/recordings/"+dup.ID)
		writeJSON(w, http.StatusOK, map[string]any{"id": dup.ID, "duplicate": true})
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/recordings/"+id)
	writeJSON(w, http.StatusCreated, map[string]string{"id": id})
}

func partError(err error, want string) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return err
	}
	if errors.Is(err, io.EOF) {
		return &archive.InvalidError{Field: want, Msg: "part " + want + " is missing"}
	}
	return fmt.Errorf("%w: %w", errBadRequestBody, err)
}

// accessOf reads the stated purpose and emergency reason from the headers.
// The reason may be percent-encoded (for text outside ASCII).
func accessOf(r *http.Request) archive.Access {
	a := archive.Access{Purpose: r.Header.Get("X-Purpose"), EmergencyReason: strings.TrimSpace(r.Header.Get("X-Emergency-Reason"))}
	if strings.Contains(a.EmergencyReason, "%") {
		if v, err := url.PathUnescape(a.EmergencyReason); err == nil {
			a.EmergencyReason = v
		}
	}
	return a
}

// search: GET /v1/recordings?patient=PNR[&from=RFC3339&to=RFC3339]
func (s *server) search(w http.ResponseWriter, r *http.Request, c archive.Caller) {
	q := r.URL.Query()
	var query archive.Query
	query.Patient = q.Get("patient")
	if query.Patient == "" {
		s.reject(w, r, c, "search", "patient", http.StatusBadRequest, "the query parameter patient is required")
		return
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"from", &query.From}, {"to", &query.To}} {
		if v := q.Get(t.name); v != "" {
			tv, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				s.reject(w, r, c, "search", t.name, http.StatusBadRequest, "not an RFC 3339 time")
				return
			}
			*t.dst = tv
		}
	}
	res, err := s.arc.Search(r.Context(), c, accessOf(r), query)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"recordings": res.Hits, "need_emergency_access": res.NeedEmergency})
}

// metadata: GET /v1/recordings/{id}
func (s *server) metadata(w http.ResponseWriter, r *http.Request, c archive.Caller) {
	d, err := s.arc.Get(r.Context(), c, accessOf(r), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// audio: GET /v1/recordings/{id}/audio, with Range support (206).
func (s *server) audio(w http.ResponseWriter, r *http.Request, c archive.Caller) {
	detail := "range=full"
	if rg := r.Header.Get("Range"); rg != "" {
		detail = "range=" + rg
		if len(detail) > 200 {
			detail = detail[:200]
		}
	}
	a, err := s.arc.OpenAudio(r.Context(), c, accessOf(r), r.PathValue("id"), detail)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer a.Close()
	w.Header().Set("Content-Type", a.ContentType)
	// ServeContent answers Range requests with 206 and reads only the
	// requested span, so only the chunks it covers are decrypted.
	http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(a, 0, a.Size()))
}

// reject records a refusal of malformed input in the audit log, then answers
// status with msg. If the refusal cannot be recorded the answer is 503.
func (s *server) reject(w http.ResponseWriter, r *http.Request, c archive.Caller, action, field string, status int, msg string) {
	if err := s.arc.RejectInput(r.Context(), c, action, field); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSONError(w, status, msg, field)
}

// rejectErr is reject for an error that writeError maps to its answer.
func (s *server) rejectErr(w http.ResponseWriter, r *http.Request, c archive.Caller, action string, err error) {
	field := "body"
	var inv *archive.InvalidError
	if errors.As(err, &inv) {
		field = inv.Field
	}
	if aerr := s.arc.RejectInput(r.Context(), c, action, field); aerr != nil {
		s.writeError(w, r, aerr)
		return
	}
	s.writeError(w, r, err)
}

// maxDrain bounds how much of a refused upload's body is read and
// discarded before the answer.
const maxDrain = 16 << 20

// drainOnError reads and discards (up to maxDrain bytes of) the request
// body before an error answer is written. Without it, a refusal sent while
// the client is still sending makes the server close the connection under
// the client's writes, and the client sees "connection reset" instead of
// the answer that says what was wrong.
type drainOnError struct {
	http.ResponseWriter
	body    io.Reader
	drained bool
}

func (d *drainOnError) WriteHeader(code int) {
	if code >= 400 && !d.drained {
		d.drained = true
		io.CopyN(io.Discard, d.body, maxDrain)
	}
	d.ResponseWriter.WriteHeader(code)
}
