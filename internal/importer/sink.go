package importer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"callvault/internal/archive"
	"callvault/internal/audio"
	"callvault/internal/recording"
)

// Archive is where the importer sends recordings: a server over mutual TLS
// (Remote) or the archive in this process (Local). Both make the same
// checks and audit the same events.
type Archive interface {
	// Ingest stores the audio with meta. A source file the archive holds
	// already is Stored{Existing: true}; one whose recording was deleted by
	// a decision is Stored{Deleted: true}. Bad input is a *RejectError,
	// a refusal of the importer's identity ErrDenied; anything else is
	// worth retrying.
	Ingest(ctx context.Context, meta recording.Metadata, audio io.Reader) (Stored, error)
	// Verify asks the archive to compare every site's copy of recording id
	// with the digest; the answer is per site ("match", …).
	Verify(ctx context.Context, id, sha256Hex string) (map[string]string, error)
	// String names the archive for the report ("https://…", "local").
	String() string
}

// Stored is the archive's answer to an ingest.
type Stored struct {
	ID       string // the new recording, or the one that holds the source already
	Existing bool   // nothing new was stored: the source was there
	Deleted  bool   // nothing stored: the source's recording was deleted by a decision
}

// RejectError is the archive refusing one file; Reason names the problem
// without quoting values.
type RejectError struct{ Reason string }

func (e *RejectError) Error() string { return "rejected: " + e.Reason }

// ErrDenied is the archive refusing the importer itself (not a capture
// system, another care provider): no file can succeed, the run stops.
var ErrDenied = errors.New("importer: the archive denies this identity")

// Remote is an archive server reached over mutual TLS 1.3.
type Remote struct {
	base   string
	client *http.Client
}

// NewRemote returns the server at base (https://host:port), authenticating
// with cert and trusting the server certificates roots verify.
func NewRemote(base string, cert tls.Certificate, roots *x509.CertPool) *Remote {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, RootCAs: roots},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return &Remote{base: strings.TrimRight(base, "/"), client: &http.Client{Transport: tr}}
}

func (r *Remote) String() string { return r.base }

// Ingest streams a multipart upload: the metadata, then the audio.
func (r *Remote) Ingest(ctx context.Context, meta recording.Metadata, src io.Reader) (Stored, error) {
	mj, err := json.Marshal(meta)
	if err != nil {
		return Stored{}, err
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", `form-data; name="metadata"`)
			h.Set("Content-Type", "application/json")
			part, err := mw.CreatePart(h)
			if err != nil {
				return err
			}
			if _, err := part.Write(mj); err != nil {
				return err
			}
			h = textproto.MIMEHeader{}
			h.Set("Content-Disposition", `form-data; name="audio"; filename="audio"`)
			h.Set("Content-Type", "application/octet-stream")
			if part, err = mw.CreatePart(h); err != nil {
				return err
			}
			if _, err := io.Copy(part, src); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/v1/recordings", pr)
	if err != nil {
		pr.Close()
		return Stored{}, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := r.client.Do(req)
	if err != nil {
		pr.Close()
		return Stored{}, fmt.Errorf("importer: upload: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		ID        string `json:"id"`
		Duplicate bool   `json:"duplicate"`
		Error     string `json:"error"`
		Field     string `json:"field"`
		Reason    string `json:"reason"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil {
		return Stored{}, fmt.Errorf("importer: upload: answer %d: %w", resp.StatusCode, err)
	}
	switch {
	case resp.StatusCode == http.StatusCreated && recording.ValidID(body.ID):
		return Stored{ID: body.ID}, nil
	case resp.StatusCode == http.StatusOK && body.Duplicate && recording.ValidID(body.ID):
		return Stored{ID: body.ID, Existing: true}, nil
	case resp.StatusCode == http.StatusConflict && body.Reason == "source-deleted":
		return Stored{Deleted: true}, nil
	case resp.StatusCode == http.StatusForbidden:
		return Stored{}, fmt.Errorf("%w: %s", ErrDenied, body.Error)
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnsupportedMediaType ||
		resp.StatusCode == http.StatusRequestEntityTooLarge || resp.StatusCode == http.StatusConflict:
		reason := body.Error
		if body.Field != "" {
			reason = body.Field + ": " + reason
		}
		return Stored{}, &RejectError{Reason: "archive: " + reason}
	}
	return Stored{}, fmt.Errorf("importer: upload: answer %d: %s", resp.StatusCode, body.Error)
}

// Verify posts the digest to /v1/recordings/{id}/verify.
func (r *Remote) Verify(ctx context.Context, id, sha256Hex string) (map[string]string, error) {
	b, _ := json.Marshal(map[string]string{"sha256": sha256Hex})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/v1/recordings/"+id+"/verify", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("importer: verify: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		Sites map[string]string `json:"sites"`
		Error string            `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil {
		return nil, fmt.Errorf("importer: verify: answer %d: %w", resp.StatusCode, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return body.Sites, nil
	case http.StatusForbidden:
		return nil, fmt.Errorf("%w: %s", ErrDenied, body.Error)
	case http.StatusNotFound:
		return map[string]string{}, nil
	}
	return nil, fmt.Errorf("importer: verify: answer %d: %s", resp.StatusCode, body.Error)
}

// Local is the archive in this process, called as caller (whose principal
// the directory gave the importer's certificate).
type Local struct {
	Service *archive.Service
	Caller  archive.Caller
}

func (l *Local) String() string { return "local" }

// Ingest calls archive.Service.Ingest and sorts its errors as Remote does.
func (l *Local) Ingest(ctx context.Context, meta recording.Metadata, src io.Reader) (Stored, error) {
	id, err := l.Service.Ingest(ctx, l.Caller, meta, src)
	var dup *archive.DuplicateError
	var conflict *archive.ConflictError
	var inv *archive.InvalidError
	var denied *archive.DeniedError
	switch {
	case err == nil:
		return Stored{ID: id}, nil
	case errors.As(err, &dup):
		return Stored{ID: dup.ID, Existing: true}, nil
	case errors.As(err, &conflict) && conflict.Reason == "source-deleted":
		return Stored{Deleted: true}, nil
	case errors.As(err, &denied):
		return Stored{}, fmt.Errorf("%w: %s", ErrDenied, denied.Reason)
	case errors.As(err, &inv):
		return Stored{}, &RejectError{Reason: "archive: " + inv.Field + ": " + inv.Msg}
	case errors.Is(err, audio.ErrUnsupported), errors.Is(err, audio.ErrMalformed), errors.Is(err, audio.ErrTruncated):
		return Stored{}, &RejectError{Reason: "archive: audio: " + audioReason(err)}
	}
	return Stored{}, err
}

// Verify calls archive.Service.Verify.
func (l *Local) Verify(ctx context.Context, id, sha256Hex string) (map[string]string, error) {
	v, err := l.Service.Verify(ctx, l.Caller, id, sha256Hex)
	var denied *archive.DeniedError
	switch {
	case errors.Is(err, archive.ErrNotFound):
		return map[string]string{}, nil
	case errors.As(err, &denied):
		return nil, fmt.Errorf("%w: %s", ErrDenied, denied.Reason)
	case err != nil:
		return nil, err
	}
	return v.Sites, nil
}

// audioReason names an audio error's kind, as the upload API does.
func audioReason(err error) string {
	switch {
	case errors.Is(err, audio.ErrUnsupported):
		return "not WAV (PCM 16-bit, G.711) or MP3"
	case errors.Is(err, audio.ErrTruncated):
		return "truncated"
	}
	return "malformed"
}
