package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"callvault/internal/config"
	"callvault/internal/site/s3site"
)

// opsGet fetches path from the server's plain ops listener.
func (s *server) opsGet(path string) (int, string) {
	s.t.Helper()
	resp, err := http.Get("http://" + s.opsAddr + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// takeDown replaces a site directory with a regular file, as an unmounted
// or failed data centre looks to the server, and returns where the real
// directory was moved. bringBack undoes it.
func takeDown(t *testing.T, siteDir string) string {
	t.Helper()
	away := siteDir + ".away"
	if err := os.Rename(siteDir, away); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(siteDir, []byte("site is down\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return away
}

func bringBack(t *testing.T, siteDir, away string) {
	t.Helper()
	if err := os.Remove(siteDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(away, siteDir); err != nil {
		t.Fatal(err)
	}
}

func blobPath(dataDir, site, id string) string {
	if pair := s3Of(dataDir); pair != nil {
		// versitygw keeps an object as a file named by its key in a
		// directory per bucket: the store's own disk.
		cfg, err := config.Dev(dataDir)
		if err != nil {
			panic(err)
		}
		i := map[string]int{"a": 0, "b": 1}[site]
		c, err := s3site.ParseURL(cfg.Sites[i].URL)
		if err != nil {
			panic(err)
		}
		return filepath.Join(pair[i].Root(), c.Bucket, id)
	}
	return filepath.Join(dataDir, "site-"+site, id[:2], id+".blob")
}

// One data centre goes down while the server runs: uploads are still
// acknowledged, with a pending copy that healthz, /metrics and
// `callvault status` all report; when the site returns the repair loop
// copies the blob, byte for byte, and everything reads healthy again.
func TestOneSiteOutage(t *testing.T) {
	dataDir := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "serve.log")
	srv := startServer(t, dataDir, logPath, "--repair-interval", "200ms")
	back := siteDown(t, dataDir, "b")
	wav := noiseWAV(t, 71, 2)
	r := srv.upload("capture", mustJSON(t, meta(testPatient, testCaller, unitA)), wav)
	if r.status != http.StatusCreated {
		t.Fatalf("upload with site b down: %s", r)
	}
	id := r.json(t)["id"].(string)

	if code, body := srv.opsGet("/healthz"); code != http.StatusServiceUnavailable || body != "degraded: site b unavailable\n" {
		t.Fatalf("healthz with site b down: %d %q", code, body)
	}
	if _, body := srv.opsGet("/metrics"); !strings.Contains(body, "\ncallvault_replication_pending 1\n") {
		t.Fatalf("metrics do not show one pending copy:\n%s", body)
	}
	st := statusJSON(t, dataDir)
	sites, _ := st["sites"].([]any)
	if st["replication_pending"] != float64(1) || len(sites) != 2 ||
		sites[0].(map[string]any)["ok"] != true || sites[1].(map[string]any)["ok"] != false {
		t.Fatalf("status --json with site b down: %v", st)
	}
	out, err := exec.Command(binPath, "status", "--data", dataDir).Output()
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, want := range []string{"replication backlog:  1\n", "site b   (SE):        UNAVAILABLE: site b: check: ", "ALERT: recordings are held by one site only"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	// The one copy that exists can be played.
	if r := srv.do("nurse", "GET", "/v1/recordings/"+id+"/audio", nil, "X-Purpose", "care"); r.status != http.StatusOK || !bytes.Equal(r.body, wav) {
		t.Fatalf("playback from site a alone: %d, %d bytes", r.status, len(r.body))
	}

	back()
	deadline := time.Now().Add(20 * time.Second)
	for statusJSON(t, dataDir)["replication_pending"] != float64(0) {
		if time.Now().After(deadline) {
			t.Fatalf("repair did not drain the backlog in 20s: %v", statusJSON(t, dataDir))
		}
		time.Sleep(100 * time.Millisecond)
	}
	a, err := os.ReadFile(blobPath(dataDir, "a", id))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(blobPath(dataDir, "b", id))
	if err != nil {
		t.Fatalf("site b after repair: %v", err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("the repaired copy on site b differs from site a's")
	}
	if code, body := srv.opsGet("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("healthz after repair: %d %q", code, body)
	}
	if _, body := srv.opsGet("/metrics"); !strings.Contains(body, "\ncallvault_replication_pending 0\n") {
		t.Fatal("metrics still show a backlog after repair")
	}
	// The site must be read for real: play from b alone.
	siteDown(t, dataDir, "a")
	r = srv.do("nurse", "GET", "/v1/recordings/"+id+"/audio", nil, "X-Purpose", "care")
	if r.status != http.StatusOK || !bytes.Equal(r.body, wav) {
		t.Fatalf("playback from the repaired site b alone: %d, %d bytes", r.status, len(r.body))
	}
}

// A restart while one data centre is down starts degraded rather than not
// at all; with both down serve refuses to start and says why.
func TestStartWithSitesDown(t *testing.T) {
	dataDir := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "serve.log")
	srv := startServer(t, dataDir, logPath)
	srv.stop()

	backB := siteDown(t, dataDir, "b")
	srv = startServer(t, dataDir, logPath)
	if code, body := srv.opsGet("/healthz"); code != http.StatusServiceUnavailable || body != "degraded: site b unavailable\n" {
		t.Fatalf("healthz after a degraded start: %d %q", code, body)
	}
	r := srv.upload("capture", mustJSON(t, meta(testPatient, testCaller, unitA)), noiseWAV(t, 72, 1))
	if r.status != http.StatusCreated {
		t.Fatalf("upload after a degraded start: %s", r)
	}
	srv.stop()
	log, _ := os.ReadFile(logPath)
	if !bytes.Contains(log, []byte(`"msg":"site unavailable at start; serving degraded","site":"b"`)) {
		t.Errorf("no log line for the degraded start:\n%s", log)
	}

	backA := siteDown(t, dataDir, "a")
	cmd := exec.Command(binPath, "serve", "--dev", "--data", dataDir, "--listen", freeAddr(t), "--ops-listen", freeAddr(t))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil {
		t.Fatal("serve started with both sites down")
	}
	if !strings.Contains(stderr.String(), "callvault: serve: no site is available") {
		t.Fatalf("serve with both sites down said:\n%s", stderr.String())
	}
	backA()
	backB()
}

// serve without --dev runs from a config file and refuses to start without
// what production needs; a complete config serves the same API.
func TestServeWithConfig(t *testing.T) {
	dataDir := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "serve.log")
	srv := startServer(t, dataDir, logPath) // makes the dev PKI, keyring and KEK
	srv.stop()

	complete := func() map[string]any { return prodConfig(t, dataDir) }
	writeCfg := func(m map[string]any) string {
		path := filepath.Join(t.TempDir(), "callvault.json")
		if err := os.WriteFile(path, mustJSON(t, m), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	refused := func(name string, args []string, want string) {
		t.Helper()
		cmd := exec.Command(binPath, append([]string{"serve"}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s: serve exited 0", name)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("%s: serve started (stdout %q)", name, stdout.String())
			return
		}
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("%s: stderr %q does not say %q", name, stderr.String(), want)
		}
		if stdout.Len() != 0 {
			t.Errorf("%s: printed %q", name, stdout.String())
		}
	}

	refused("no config", nil, "serve needs --config FILE (or --dev for the development setup)")
	refused("missing file", []string{"--config", filepath.Join(t.TempDir(), "none.json")}, "no such file or directory")
	noTLS := complete()
	delete(noTLS, "tls")
	refused("no TLS", []string{"--config", writeCfg(noTLS)}, "tls.cert and tls.key are required")
	noCA := complete()
	delete(noCA["tls"].(map[string]any), "client_ca")
	refused("no client CA", []string{"--config", writeCfg(noCA)}, "tls.client_ca is required")
	noKEK := complete()
	delete(noKEK, "kek_file")
	delete(noKEK, "pkcs11")
	refused("no key unlock", []string{"--config", writeCfg(noKEK)}, "exactly one of kek_file, passphrase_file and pkcs11 is required")
	us := complete()
	us["sites"].([]any)[1].(map[string]any)["jurisdiction"] = "US"
	refused("a site in the US", []string{"--config", writeCfg(us)}, `site "b" has jurisdiction "US", outside the allowed [SE]`)
	wrongKEK := complete()
	otherKEK := filepath.Join(t.TempDir(), "kek.txt")
	other, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(otherKEK, []byte(other.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	delete(wrongKEK, "pkcs11")
	wrongKEK["kek_file"] = otherKEK
	refused("a KEK that is not the keyring's", []string{"--config", writeCfg(wrongKEK)}, "keyring")
	refused("--dev with --config", []string{"--dev", "--config", writeCfg(complete())}, "--dev and --config exclude each other")

	// A complete config serves: a nurse reads a demo recording's list.
	cfg := complete()
	path := writeCfg(cfg)
	prod := &server{t: t, dataDir: dataDir, addr: cfg["listen"].(string), opsAddr: cfg["ops_listen"].(string),
		logPath: logPath, waitErr: make(chan error, 1)}
	prod.cmd = exec.Command(binPath, "serve", "--config", path)
	startProcess(t, prod)
	if r := prod.do("nurse", "GET", "/v1/recordings?patient=191212121212", nil, "X-Purpose", "care"); r.status != http.StatusOK {
		t.Fatalf("search on a config-started server: %s", r)
	} else {
		var list struct {
			Recordings []json.RawMessage `json:"recordings"`
		}
		if err := json.Unmarshal(r.body, &list); err != nil || len(list.Recordings) == 0 {
			t.Fatalf("search on a config-started server found nothing: %s", r.body)
		}
	}
	if code, _ := prod.opsGet("/healthz"); code != http.StatusOK {
		t.Fatalf("healthz on a config-started server: %d", code)
	}
}
