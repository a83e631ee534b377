// Package httpapi serves callvault's JSON and audio API (docs/api.md) over
// mutual TLS 1.3. Every route needs a client certificate that the TLS layer
// has verified against the configured CAs, whose HSA-ID the directory
// knows; every route then calls the archive, which decides and audits.
package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"callvault/internal/access"
	"callvault/internal/archive"
)

// TLSConfig returns the server TLS configuration: TLS 1.3 only, and a
// client certificate required and verified against clientCAs on every
// connection. There is no way to make it optional.
func TLSConfig(cert tls.Certificate, clientCAs *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
	}
}

// Authenticator turns a verified client certificate into a principal.
// *access.Directory implements it.
type Authenticator interface {
	Principal(ctx context.Context, cert *x509.Certificate) (*access.Principal, error)
}

// DefaultMaxUpload is the upload body limit if Config.MaxUploadBytes is unset:
// 2 GiB, more than a 24-hour stereo G.711 call (1.4 GB).
const DefaultMaxUpload = 2 << 30

// maxMetadata bounds the upload's metadata part.
const maxMetadata = 64 << 10

// Config configures the API handler.
type Config struct {
	Archive *archive.Service
	Auth    Authenticator
	// MaxUploadBytes bounds an upload's whole body. If unset, DefaultMaxUpload.
	MaxUploadBytes int64
	// Logger receives operational lines. If unset, logs are discarded.
	Logger *slog.Logger
	// Live links patients to calls still being recorded; nil without a
	// SIPREC server.
	Live LiveLinker
}

type server struct {
	arc       *archive.Service
	auth      Authenticator
	maxUpload int64
	log       *slog.Logger
	live      LiveLinker
}

// NewHandler returns the API handler. Serve it only on a listener with
// TLSConfig; a request without a verified client certificate gets 403.
func NewHandler(cfg Config) http.Handler {
	s := &server{arc: cfg.Archive, auth: cfg.Auth, maxUpload: cfg.MaxUploadBytes, log: cfg.Logger, live: cfg.Live}
	if s.maxUpload <= 0 {
		s.maxUpload = DefaultMaxUpload
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/recordings", s.withCaller(s.upload))
	mux.HandleFunc("GET /v1/recordings", s.withCaller(s.search))
	mux.HandleFunc("POST /v1/recordings/link", s.withCaller(s.link))
	mux.HandleFunc("GET /v1/recordings/{id}", s.withCaller(s.metadata))
	mux.HandleFunc("GET /v1/recordings/{id}/audio", s.withCaller(s.audio))
	mux.HandleFunc("POST /v1/recordings/{id}/verify", s.withCaller(s.verify))
	mux.HandleFunc("POST /v1/recordings/{id}/holds", s.withCaller(s.setHold))
	mux.HandleFunc("GET /v1/recordings/{id}/holds", s.withCaller(s.holds))
	mux.HandleFunc("DELETE /v1/recordings/{id}/holds/{hold}", s.withCaller(s.releaseHold))
	mux.HandleFunc("POST /v1/deletions", s.withCaller(s.registerDeletion))
	mux.HandleFunc("GET /v1/deletions/{id}", s.withCaller(s.deletion))
	mux.HandleFunc("POST /v1/deletions/{id}/approve", s.withCaller(s.approveDeletion))
	mux.HandleFunc("GET /v1/audit/log/checkpoint", s.withCaller(s.logCheckpoint))
	mux.HandleFunc("GET /v1/audit/log/keys", s.withCaller(s.logKeys))
	mux.HandleFunc("GET /v1/audit/log/tile/{path...}", s.withCaller(s.logTile))
	mux.HandleFunc("GET /v1/audit/extract", s.withCaller(s.extract))
	mux.HandleFunc("GET /v1/audit/review", s.withCaller(s.review))
	mux.HandleFunc("POST /v1/audit/review/marks", s.withCaller(s.mark))
	mux.HandleFunc("GET /v1/audit/incident", s.withCaller(s.incident))
	mux.HandleFunc("/", s.withCaller(func(w http.ResponseWriter, r *http.Request, c archive.Caller) {
		s.reject(w, r, c, "route", "path", http.StatusNotFound, "no such route")
	}))
	return mux
}

type handler func(http.ResponseWriter, *http.Request, archive.Caller)

// withCaller authenticates the request and passes the caller on. A request
// with a certificate the directory does not know is refused and audited.
func (s *server) withCaller(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		reqID := newRequestID()
		w.Header().Set("X-Request-ID", reqID)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		c := archive.Caller{RequestID: reqID, ClientAddr: clientAddr(r)}
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.PeerCertificates) == 0 {
			writeJSONError(w, http.StatusForbidden, "a verified client certificate is required", "")
			return
		}
		cert := r.TLS.PeerCertificates[0]
		p, err := s.auth.Principal(r.Context(), cert)
		if err != nil {
			reason := "unknown-user"
			if errors.Is(err, access.ErrNoIdentity) {
				reason = "no-hsa-id"
			} else if !errors.Is(err, access.ErrUnknownUser) {
				s.log.ErrorContext(r.Context(), "directory lookup failed", "request", reqID, "err", err)
				writeJSONError(w, http.StatusServiceUnavailable, "directory unavailable", "")
				return
			}
			if aerr := s.arc.RefuseIdentity(r.Context(), c, access.Fingerprint(cert), reason); aerr != nil {
				s.writeError(w, r, aerr)
				return
			}
			writeJSONError(w, http.StatusForbidden, "certificate is not registered for callvault", "")
			return
		}
		c.Principal = p
		h(w, r, c)
	}
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, msg, field string) {
	writeJSON(w, status, apiError{Error: msg, Field: field})
}
