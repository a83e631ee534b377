package httpapi

import (
	"net/http"
	"strings"

	"callvault/internal/archive"
)

// The audit log's read API for verifiers (docs/audit-log.md, "Read API"):
// the C2SP tlog-tiles layout under /v1/audit/log/.

func (s *server) logCheckpoint(w http.ResponseWriter, r *http.Request, c archive.Caller) {
	b, err := s.arc.LogCheckpoint(r.Context(), c)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeText(w, "text/plain; charset=utf-8", b)
}

func (s *server) logKeys(w http.ResponseWriter, r *http.Request, c archive.Caller) {
	k, err := s.arc.LogKeys(r.Context(), c)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeText(w, "text/plain; charset=utf-8", []byte(strings.Join(k, "\n")+"\n"))
}

func (s *server) logTile(w http.ResponseWriter, r *http.Request, c archive.Caller) {
	b, err := s.arc.LogTile(r.Context(), c, r.PathValue("path"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeText(w, "application/octet-stream", b)
}

func writeText(w http.ResponseWriter, contentType string, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}
