package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"callvault/internal/archive"
	"callvault/internal/auditreport"
)

// The audit reports for auditors (docs/api.md, "Audit reports"). Each is
// audited by the archive before it is made.

// report is what the three reports share: writers by format.
type report interface {
	WriteJSON(io.Writer) error
	WriteCSV(io.Writer) error
}

// format picks the answer's format from ?format= among allowed (the first
// is the default) and reports false, having answered 400, if it is not one.
func (s *server) format(w http.ResponseWriter, r *http.Request, c archive.Caller, action string, allowed ...string) (string, bool) {
	f := r.URL.Query().Get("format")
	if f == "" {
		return allowed[0], true
	}
	for _, a := range allowed {
		if f == a {
			return f, true
		}
	}
	s.reject(w, r, c, action, "format", http.StatusBadRequest, "format must be one of "+strings.Join(allowed, ", "))
	return "", false
}

// timeParams parses the named RFC 3339 query parameters; missing ones stay
// zero. It answers 400 and reports false on a bad one.
func (s *server) timeParams(w http.ResponseWriter, r *http.Request, c archive.Caller, action string, names ...string) ([]time.Time, bool) {
	out := make([]time.Time, len(names))
	for i, n := range names {
		v := r.URL.Query().Get(n)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			s.reject(w, r, c, action, n, http.StatusBadRequest, "not an RFC 3339 time")
			return nil, false
		}
		out[i] = t
	}
	return out, true
}

func writeReport(w http.ResponseWriter, rep report, format, name string, html func(io.Writer) error, text func(io.Writer) error) {
	switch format {
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		rep.WriteCSV(w)
	case "html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		html(w)
	case "text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		text(w)
	default:
		w.Header().Set("Content-Type", "application/json")
		rep.WriteJSON(w)
	}
}

// extract: GET /v1/audit/extract?patient=PNR[&from=T&to=T][&format=json|csv|html]
func (s *server) extract(w http.ResponseWriter, r *http.Request, c archive.Caller) {
	format, ok := s.format(w, r, c, "audit.extract", "json", "csv", "html")
	if !ok {
		return
	}
	ts, ok := s.timeParams(w, r, c, "audit.extract", "from", "to")
	if !ok {
		return
	}
	x, err := s.arc.AuditExtract(r.Context(), c, r.URL.Query().Get("patient"), ts[0], ts[1])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeReport(w, x, format, "patientloggutdrag", x.WriteHTML, nil)
}

// review: GET /v1/audit/review?from=T&to=T[&format=json|csv|text]
func (s *server) review(w http.ResponseWriter, r *http.Request, c archive.Caller) {
	format, ok := s.format(w, r, c, "audit.review", "json", "csv", "text")
	if !ok {
		return
	}
	ts, ok := s.timeParams(w, r, c, "audit.review", "from", "to")
	if !ok {
		return
	}
	rep, err := s.arc.AuditReview(r.Context(), c, ts[0], ts[1])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeReport(w, rep, format, "logguppfoljning", nil, rep.WriteText)
}

// markRequest is the body of POST /v1/audit/review/marks.
type markRequest struct {
	Finding string `json:"finding"`
	Outcome string `json:"outcome"`
	Note    string `json:"note"`
}

// mark: POST /v1/audit/review/marks {"finding","outcome","note"}
func (s *server) mark(w http.ResponseWriter, r *http.Request, c archive.Caller) {
	var m markRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		s.reject(w, r, c, auditreport.ActionReviewMark, "body", http.StatusBadRequest, `send {"finding": "…", "outcome": "no-action|followed-up|reported", "note": "…"}`)
		return
	}
	idx, err := s.arc.AuditMark(r.Context(), c, m.Finding, m.Outcome, m.Note)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"finding": m.Finding, "outcome": m.Outcome, "log_index": idx})
}

// incident: GET /v1/audit/incident?from=T&to=T[&user=HSA-ID][&client_cert=SHA256][&address=CIDR][&format=csv|json|text]
func (s *server) incident(w http.ResponseWriter, r *http.Request, c archive.Caller) {
	format, ok := s.format(w, r, c, "audit.incident", "csv", "json", "text")
	if !ok {
		return
	}
	ts, ok := s.timeParams(w, r, c, "audit.incident", "from", "to")
	if !ok {
		return
	}
	q := r.URL.Query()
	actor := auditreport.Actor{User: q.Get("user"), CertFingerprint: q.Get("client_cert")}
	if a := q.Get("address"); a != "" {
		p, err := auditreport.ParseAddress(a)
		if err != nil {
			s.reject(w, r, c, "audit.incident", "address", http.StatusBadRequest, "address must be an IP address or a CIDR prefix")
			return
		}
		actor.Address = p
	}
	rep, err := s.arc.AuditIncident(r.Context(), c, ts[0], ts[1], actor)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeReport(w, rep, format, "incident", nil, rep.WriteText)
}
