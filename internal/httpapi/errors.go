package httpapi

import (
	"errors"
	"net/http"
	"time"

	"callvault/internal/archive"
	"callvault/internal/audio"
)

// writeError maps an archive error to its HTTP answer. This is the one
// place where errors become status codes. Messages name fields, never
// values, so no personal data is echoed.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var inv *archive.InvalidError
	var denied *archive.DeniedError
	var tooBig *http.MaxBytesError
	var gone *archive.GoneError
	var conflict *archive.ConflictError
	switch {
	case errors.As(err, &gone):
		writeJSON(w, http.StatusGone, map[string]any{"error": "recording deleted", "decision": gone.DecisionID, "kind": gone.Kind,
			"deleted_at": gone.DeletedAt.Format(time.RFC3339)})
	case errors.Is(err, archive.ErrLost):
		writeJSONError(w, http.StatusInternalServerError, "recording damaged: no stored copy passes its integrity check; operations has been alerted", "")
	case errors.As(err, &conflict):
		writeJSON(w, http.StatusConflict, map[string]string{"error": conflict.Msg, "reason": conflict.Reason})
	case errors.As(err, &tooBig):
		writeJSONError(w, http.StatusRequestEntityTooLarge, "request body is larger than the limit", "")
	case errors.As(err, &inv):
		writeJSONError(w, http.StatusBadRequest, inv.Msg, inv.Field)
	case errors.Is(err, audio.ErrUnsupported):
		writeJSONError(w, http.StatusUnsupportedMediaType, "audio must be WAV (PCM 16-bit, G.711 μ-law or A-law) or MP3", "audio")
	case errors.Is(err, audio.ErrTruncated):
		writeJSONError(w, http.StatusBadRequest, "audio is truncated: the data is shorter than its header declares", "audio")
	case errors.Is(err, audio.ErrMalformed):
		writeJSONError(w, http.StatusBadRequest, "audio header is malformed", "audio")
	case errors.As(err, &denied):
		writeJSONError(w, http.StatusForbidden, "access denied: "+denied.Reason, "")
	case errors.Is(err, archive.ErrNotFound):
		writeJSONError(w, http.StatusNotFound, "no such recording", "")
	case errors.Is(err, archive.ErrNoLogData):
		writeJSONError(w, http.StatusNotFound, "no such checkpoint or tile", "")
	case errors.Is(err, archive.ErrBusy):
		w.Header().Set("Retry-After", "2")
		writeJSONError(w, http.StatusServiceUnavailable, "the call is being stored; retry in a moment", "")
	case errors.Is(err, archive.ErrAuditUnavailable):
		writeJSONError(w, http.StatusServiceUnavailable, "the audit log cannot be written; request refused", "")
	case errors.Is(err, errBadRequestBody):
		writeJSONError(w, http.StatusBadRequest, "the request body ended early or is not valid multipart", "")
	default:
		s.log.ErrorContext(r.Context(), "request failed", "request", w.Header().Get("X-Request-ID"), "err", err)
		writeJSONError(w, http.StatusInternalServerError, "internal error; see the server log for request "+w.Header().Get("X-Request-ID"), "")
	}
}
