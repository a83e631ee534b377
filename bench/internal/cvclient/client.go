// Package cvclient is the client side of callvault's mutual-TLS API as the
// benchmark drivers under bench/ use it: the dev PKI's client identities,
// keep-alive HTTP clients, the multipart upload of one recording, upload
// metadata made from the dev setup's sample, a pool of concurrent clients,
// and callvault's audit-append histogram from its metrics.
//
// Every driver uploads through Upload, so that their figures measure the
// same request.
package cvclient

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
	"os"
	"path/filepath"
	"time"

	"callvault/bench/internal/synthcall"
)

// CAPool returns a pool holding the dev CA (ca.pem) of devDir, a callvault
// --dev data directory's dev/.
func CAPool(devDir string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(filepath.Join(devDir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("dev CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("dev CA: no certificate in ca.pem")
	}
	return pool, nil
}

// ClientTLS returns the TLS 1.3 configuration of a client presenting the
// dev identity who ("capture", "nurse").
func ClientTLS(devDir, who string) (*tls.Config, error) {
	pool, err := CAPool(devDir)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(devDir, who+".pem"), filepath.Join(devDir, who+"-key.pem"))
	if err != nil {
		return nil, fmt.Errorf("dev identity %s: %w", who, err)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}, nil
}

// NewClient returns a keep-alive HTTP/1.1 client with its own connection
// pool, as one user agent would have.
func NewClient(cfg *tls.Config) *http.Client {
	return &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{
		TLSClientConfig: cfg.Clone(), MaxIdleConnsPerHost: 1, DisableCompression: true,
		WriteBufferSize: 64 << 10, ReadBufferSize: 64 << 10,
	}}
}

// Upload POSTs one recording to url (…/v1/recordings) as
// multipart/form-data, metadata first, the audio streamed from its file,
// and returns the new recording's ID. callvault answers 201 only once both
// sites, the catalog row and the audit entries are durable.
func Upload(ctx context.Context, hc *http.Client, url string, metadata []byte, f synthcall.File) (string, error) {
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="metadata"`)
	h.Set("Content-Type", "application/json")
	p, err := mw.CreatePart(h)
	if err != nil {
		return "", err
	}
	p.Write(metadata)
	h = textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="audio"; filename="call.wav"`)
	h.Set("Content-Type", "audio/wav")
	if _, err := mw.CreatePart(h); err != nil {
		return "", err
	}
	headLen := head.Len()
	if err := mw.Close(); err != nil {
		return "", err
	}
	all := head.Bytes()
	file, err := os.Open(f.Path)
	if err != nil {
		return "", err
	}
	defer file.Close()
	body := io.MultiReader(bytes.NewReader(all[:headLen]), file, bytes.NewReader(all[headLen:]))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return "", err
	}
	req.ContentLength = int64(len(all)) + f.Size
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("%s: %s: %s", f.Name, resp.Status, bytes.TrimSpace(rb))
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(rb, &out); err != nil || out.ID == "" {
		return "", fmt.Errorf("%s: answer without an id: %s", f.Name, rb)
	}
	return out.ID, nil
}
