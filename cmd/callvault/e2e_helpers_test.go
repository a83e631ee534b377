package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"callvault/internal/audio"
	"callvault/internal/config"
	"callvault/internal/hsm/softhsmtest"
	"callvault/internal/site/s3site/s3test"
	"callvault/internal/sqldb/pgtest"
)

// binPath is the callvault binary built once by TestMain.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "callvault-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "callvault")
	out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building callvault: %v\n%s", err, out)
		os.Exit(1)
	}
	switch e2eStack = os.Getenv("CALLVAULT_E2E_STACK"); e2eStack {
	case "", "embedded":
		e2eStack = "embedded"
	case "scaleout":
		if _, err := s3test.Binary(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	default:
		fmt.Fprintf(os.Stderr, "CALLVAULT_E2E_STACK=%q: want embedded or scaleout\n", e2eStack)
		os.Exit(2)
	}
	code := pgtest.Run(m)
	softhsmtest.Cleanup()
	os.RemoveAll(dir)
	os.Exit(code)
}

// e2eStack is the stack the end-to-end tests run serve on, from
// CALLVAULT_E2E_STACK: "embedded" (SQLite, directory sites, key file; the
// default) or "scaleout" (sites a and b in two S3 servers with Object Lock
// per data directory, the keyring's KEK in a SoftHSM2 token, catalog,
// directory and audit log in PostgreSQL). The test command runs both.
var e2eStack string

// s3Stores are the two S3 servers (sites a and b, as two data centres) of
// each scaleout data directory; a test may stop one without touching
// another test's.
var s3Stores = struct {
	sync.Mutex
	byDir map[string]*[2]*s3test.Server
}{byDir: map[string]*[2]*s3test.Server{}}

// s3Of returns dataDir's S3 servers, or nil outside the scaleout stack.
func s3Of(dataDir string) *[2]*s3test.Server {
	s3Stores.Lock()
	defer s3Stores.Unlock()
	return s3Stores.byDir[dataDir]
}

// useStack makes dataDir run on the e2e stack: for scaleout, it starts two
// S3 servers for it and records a bucket on each as the dev backends
// (serve --dev creates them), once per data directory.
func useStack(t *testing.T, dataDir string) {
	t.Helper()
	if e2eStack != "scaleout" || s3Of(dataDir) != nil {
		return
	}
	var pair [2]*s3test.Server
	for i := range pair {
		pair[i] = s3test.Start(t)
	}
	cfg, err := config.Dev(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	module, token, pin := softhsmtest.New(t)
	if err := cfg.SetDevBackends(config.DevBackends{
		SiteA: pair[0].URL(s3test.BucketName("site-a")),
		SiteB: pair[1].URL(s3test.BucketName("site-b")),
		// The keyring's KEK in a fresh SoftHSM2 token; serve and the CLI
		// see it through SOFTHSM2_CONF, which New set for this process.
		PKCS11Module: module, PKCS11Token: token, PKCS11PIN: pin,
		// Catalog, directory and audit log in a fresh PostgreSQL database.
		Database: pgtest.New(t),
	}); err != nil {
		t.Fatal(err)
	}
	s3Stores.Lock()
	s3Stores.byDir[dataDir] = &pair
	s3Stores.Unlock()
}

// server is a running `callvault serve --dev` child process.
type server struct {
	t        *testing.T
	dataDir  string
	addr     string
	opsAddr  string
	cmd      *exec.Cmd
	logPath  string // the server's stderr (operational logs), outside dataDir
	waitErr  chan error
	welcome  []string // stdout lines before "listening on"
	sipAddr  string   // SIPREC UDP and TCP address
	sipsAddr string   // SIPREC TLS address
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServer starts serve --dev on free loopback ports with dataDir and
// waits until it listens.
func startServer(t *testing.T, dataDir, logPath string, extra ...string) *server {
	t.Helper()
	useStack(t, dataDir)
	s := &server{t: t, dataDir: dataDir, logPath: logPath, waitErr: make(chan error, 1)}
	// Port 0: the kernel picks free ports at bind time (a port picked
	// beforehand can be taken by a parallel test); startProcess reads the
	// real addresses from the "listening on" line.
	args := append([]string{"serve", "--dev", "--data", dataDir, "--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0",
		"--sip-listen", "127.0.0.1:0", "--sip-listen-tls", "127.0.0.1:0"}, extra...)
	s.cmd = exec.Command(binPath, args...)
	startProcess(t, s)
	return s
}

// startProcess starts s.cmd with its stderr appended to s.logPath, waits
// until it prints "listening on", and stops it when the test ends.
func startProcess(t *testing.T, s *server) {
	t.Helper()
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = logf
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		listening := false
		for sc.Scan() {
			if listening {
				continue
			}
			if strings.HasPrefix(sc.Text(), "listening on ") {
				var api, ops string
				if _, err := fmt.Sscanf(sc.Text(), "listening on https://%s (ops http://%s", &api, &ops); err == nil {
					s.addr, s.opsAddr = api, strings.TrimSuffix(ops, ")")
				}
				listening = true
				close(ready)
				continue
			}
			if rest, ok := strings.CutPrefix(sc.Text(), "siprec on sip:"); ok {
				s.sipAddr, _, _ = strings.Cut(rest, " ")
				if _, tlsPart, ok := strings.Cut(rest, "sips:"); ok {
					s.sipsAddr, _, _ = strings.Cut(tlsPart, " ")
				}
				continue
			}
			s.welcome = append(s.welcome, sc.Text())
		}
	}()
	go func() { s.waitErr <- s.cmd.Wait(); logf.Close() }()
	select {
	case <-ready:
	case err := <-s.waitErr:
		log, _ := os.ReadFile(s.logPath)
		t.Fatalf("server exited before listening: %v\n%s", err, log)
	case <-time.After(60 * time.Second):
		t.Fatal("server did not start in 60s")
	}
	t.Cleanup(func() { s.stop() })
}

// stop ends the server gracefully (SIGTERM) if it still runs.
func (s *server) stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.waitErr:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.waitErr
	}
}

// kill ends the server with SIGKILL, as a crash would.
func (s *server) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.waitErr
}

func (s *server) devFile(name string) string { return filepath.Join(s.dataDir, "dev", name) }

func (s *server) url(path string) string { return "https://" + s.addr + path }

func (s *server) caPool() *x509.CertPool {
	pem, err := os.ReadFile(s.devFile("ca.pem"))
	if err != nil {
		s.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return pool
}

// client returns an HTTP client that presents the dev identity who
// ("nurse", "capture", …), or no certificate for who == "".
func (s *server) client(who string) *http.Client {
	cfg := &tls.Config{RootCAs: s.caPool(), MinVersion: tls.VersionTLS13}
	if who != "" {
		cert, err := tls.LoadX509KeyPair(s.devFile(who+".pem"), s.devFile(who+"-key.pem"))
		if err != nil {
			s.t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return clientWith(cfg)
}

func clientWith(cfg *tls.Config) *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

// response is what a request returned.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, r.body)
	}
	return m
}

// do sends a request as who with the given headers (pairs of name, value).
func (s *server) do(who, method, path string, body io.Reader, hdr ...string) response {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url(path), body)
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.client(who).Do(req)
	if err != nil {
		s.t.Fatalf("%s %s as %s: %v", method, path, who, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// multipartBody builds an upload body: metadata JSON then audio.
func multipartBody(t *testing.T, metadata, audioBytes []byte) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="metadata"`)
	h.Set("Content-Type", "application/json")
	p, _ := mw.CreatePart(h)
	p.Write(metadata)
	h = textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="audio"; filename="call.wav"`)
	h.Set("Content-Type", "audio/wav")
	p, _ = mw.CreatePart(h)
	p.Write(audioBytes)
	mw.Close()
	return mw.FormDataContentType(), buf.Bytes()
}

func (s *server) upload(who string, metadata, audioBytes []byte) response {
	s.t.Helper()
	ct, body := multipartBody(s.t, metadata, audioBytes)
	return s.do(who, "POST", "/v1/recordings", bytes.NewReader(body), "Content-Type", ct)
}

// Dev-setup identities and organisations, as created by serve --dev.
const (
	hsaNurseA   = "SE9999990001-N0A1"
	hsaNurseB   = "SE9999990001-N0B1"
	hsaCapture  = "SE9999990001-CAP1"
	unitA       = "SE9999990001-VE0A"
	unitB       = "SE9999990001-VE0B"
	providerOne = "SE9999990001-VG01"
)

// meta returns upload metadata as a map so tests can drop or break fields.
func meta(patient, caller, unit string) map[string]any {
	start := time.Now().Add(-30 * time.Minute).UTC().Truncate(time.Second)
	return map[string]any{
		"call_id": fmt.Sprintf("e2e-%d", rand.Int64()), "care_provider": providerOne, "care_unit": unit,
		"patient": patient, "caller_number": caller, "staff": []string{hsaNurseA},
		"started_at": start.Format(time.RFC3339), "ended_at": start.Add(4 * time.Minute).Format(time.RFC3339),
		"direction": "inbound", "privacy_notice": "ivr-2026-01",
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// noiseWAV returns a 2-channel PCM16 WAV of seeded pseudo-random samples:
// every 4 KiB window of its data is unique, so a scan can find any copy.
func noiseWAV(t *testing.T, seed uint64, seconds int) []byte {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	n := 8000 * seconds
	ch := [][]int16{make([]int16, n), make([]int16, n)}
	for c := range ch {
		for i := range ch[c] {
			ch[c][i] = int16(r.Uint32())
		}
	}
	var buf bytes.Buffer
	if err := audio.WriteWAV(&buf, audio.PCM16, 8000, ch); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// auditEvents returns the decrypted audit log via `callvault audit events`.
func auditEvents(t *testing.T, dataDir string) []map[string]any {
	t.Helper()
	out, err := exec.Command(binPath, "audit", "--data", dataDir, "events").Output()
	if err != nil {
		t.Fatalf("audit events: %v", err)
	}
	var evs []map[string]any
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var e map[string]any
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	return evs
}

// statusJSON returns `callvault status --json`.
func statusJSON(t *testing.T, dataDir string) map[string]any {
	t.Helper()
	out, err := exec.Command(binPath, "status", "--data", dataDir, "--json").Output()
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// siteFiles lists every file below the two sites (committed blobs and temp files).
func siteFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	var out []string
	for _, site := range []string{"a", "b"} {
		filepath.WalkDir(siteBlobDir(t, dataDir, site), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}
