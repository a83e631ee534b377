package main

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"callvault/internal/devpki"
)

// Synthetic personal data of the end-to-end test (never real people):
// Skatteverket-style test personnummer with valid check digits, and phone
// numbers from the range PTS reserves for fiction.
const (
	testPatient   = "201701102384" // uploaded by the test
	testPatient10 = "170110-2384"
	testCaller    = "+46701740699"
	demoPatient2  = "198001019804" // ingested by serve --dev as a demo
	samplePatient = "191212121212" // also in dev/sample-metadata.json, by design
)

// TestEndToEnd drives one `serve --dev` through the outside interfaces with
// real TLS, Go clients and curl, covering issue 2's "What must be shown".
func TestEndToEnd(t *testing.T) {
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	logPath := filepath.Join(root, "server.log")
	srv := startServer(t, dataDir, logPath, "--max-upload", fmt.Sprint(4<<20))

	// requestIDs collects every answered request to check against the audit log.
	type call struct{ id, what, outcome string }
	var calls []call
	note := func(what, outcome string, r response) {
		t.Helper()
		id := r.header.Get("X-Request-ID")
		if id == "" {
			t.Fatalf("%s: no X-Request-ID", what)
		}
		calls = append(calls, call{id, what, outcome})
	}

	scan := newLeakScan()
	scan.addNeedles(testPatient, testPatient10, testCaller, strings.TrimPrefix(testCaller, "+46"), demoPatient2, samplePatient)

	t.Run("handshake refused without a valid client certificate", func(t *testing.T) {
		// No certificate.
		if _, err := srv.client("").Get(srv.url("/v1/recordings")); err == nil {
			t.Fatal("request without a client certificate succeeded")
		}
		// A certificate from another CA.
		now := time.Now()
		other, err := devpki.NewCA("not the callvault CA", now)
		if err != nil {
			t.Fatal(err)
		}
		certPEM, keyPEM, _ := other.IssueClient("Mallory", hsaNurseA, now.Add(-time.Hour), now.Add(time.Hour))
		assertHandshakeRefused(t, srv, certPEM, keyPEM)
		// An expired certificate from the right CA.
		caCert, _ := os.ReadFile(srv.devFile("ca.pem"))
		caKey, _ := os.ReadFile(srv.devFile("ca-key.pem"))
		ca, err := devpki.LoadCA(caCert, caKey)
		if err != nil {
			t.Fatal(err)
		}
		certPEM, keyPEM, _ = ca.IssueClient("Nurse A (expired)", hsaNurseA, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
		assertHandshakeRefused(t, srv, certPEM, keyPEM)
		// curl, too, gets no HTTP answer without a certificate.
		out, err := exec.Command("curl", "-sS", "--cacert", srv.devFile("ca.pem"), "-o", "/dev/null", "-w", "%{http_code}", srv.url("/v1/recordings")).CombinedOutput()
		if err == nil || strings.HasPrefix(string(out), "200") {
			t.Fatalf("curl without a certificate: err=%v out=%s", err, out)
		}
		// A certificate from the right CA without an HSA-ID passes TLS but is refused (403) and audited.
		certPEM, keyPEM, _ = ca.IssueClient("No HSA-ID", "", now.Add(-time.Hour), now.Add(time.Hour))
		cert, _ := tls.X509KeyPair(certPEM, keyPEM)
		resp, err := clientWith(&tls.Config{RootCAs: srv.caPool(), Certificates: []tls.Certificate{cert}}).Get(srv.url("/v1/recordings"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Fatalf("certificate without HSA-ID: %d, want 403", resp.StatusCode)
		}
		calls = append(calls, call{resp.Header.Get("X-Request-ID"), "no-hsa-id", "denied"})
	})

	wavA := noiseWAV(t, 1, 10) // unit A's recording, 10 s stereo PCM16
	scan.addAudio("wavA", wavA)
	var idA string

	t.Run("capture uploads with curl and cannot read", func(t *testing.T) {
		mdPath := filepath.Join(root, "meta.json")
		wavPath := filepath.Join(root, "upload.wav")
		os.WriteFile(mdPath, mustJSON(t, meta(testPatient10, testCaller, unitA)), 0o600)
		os.WriteFile(wavPath, wavA, 0o600)
		out, err := exec.Command("curl", "-sS", "--cacert", srv.devFile("ca.pem"),
			"--cert", srv.devFile("capture.pem"), "--key", srv.devFile("capture-key.pem"),
			"-F", "metadata=<"+mdPath+";type=application/json", "-F", "audio=@"+wavPath+";type=audio/wav",
			"-w", "\n%{http_code}", srv.url("/v1/recordings")).Output()
		os.Remove(wavPath) // the test's own plaintext copy, outside the data dir anyway
		if err != nil {
			t.Fatalf("curl upload: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if lines[len(lines)-1] != "201" {
			t.Fatalf("upload: %s", out)
		}
		body := strings.Join(lines[:len(lines)-1], "\n")
		idA = strings.Split(strings.Split(body, `"id": "`)[1], `"`)[0]
		if len(idA) != 32 {
			t.Fatalf("id %q", idA)
		}
		for _, path := range []string{"/v1/recordings?patient=" + testPatient, "/v1/recordings/" + idA, "/v1/recordings/" + idA + "/audio"} {
			r := srv.do("capture", "GET", path, nil, "X-Purpose", "care")
			if r.status != 403 {
				t.Errorf("capture GET %s: %s, want 403", path, r)
			}
			note("capture read", "denied", r)
		}
	})

	t.Run("admin and auditor cannot play or read", func(t *testing.T) {
		for _, who := range []string{"admin", "auditor"} {
			for _, path := range []string{"/v1/recordings/" + idA + "/audio", "/v1/recordings/" + idA, "/v1/recordings?patient=" + testPatient} {
				r := srv.do(who, "GET", path, nil, "X-Purpose", "care")
				if r.status != 403 || !strings.Contains(string(r.body), "role-not-permitted") {
					t.Errorf("%s GET %s: %s, want 403 role-not-permitted", who, path, r)
				}
				note(who+" read", "denied", r)
			}
		}
	})

	t.Run("nurse of unit A finds, reads and plays, with Range", func(t *testing.T) {
		r := srv.do("nurse", "GET", "/v1/recordings?patient="+url.QueryEscape(testPatient10), nil, "X-Purpose", "care")
		if r.status != 200 {
			t.Fatalf("search: %s", r)
		}
		note("search", "allowed", r)
		recs := r.json(t)["recordings"].([]any)
		if len(recs) != 1 || recs[0].(map[string]any)["id"] != idA {
			t.Fatalf("search hits %v, want exactly %s", recs, idA)
		}
		r = srv.do("nurse", "GET", "/v1/recordings/"+idA, nil, "X-Purpose", "care")
		if r.status != 200 {
			t.Fatalf("metadata: %s", r)
		}
		note("metadata", "allowed", r)
		m := r.json(t)
		if m["patient"] != testPatient || m["caller_number"] != testCaller || m["care_unit"] != unitA || m["audio_bytes"] != float64(len(wavA)) {
			t.Fatalf("metadata %v", m)
		}
		// Without a purpose: 400 naming the field.
		r = srv.do("nurse", "GET", "/v1/recordings/"+idA+"/audio", nil)
		if r.status != 400 || r.json(t)["field"] != "purpose" {
			t.Fatalf("play without purpose: %s", r)
		}
		note("play no purpose", "denied", r)

		r = srv.do("nurse", "GET", "/v1/recordings/"+idA+"/audio", nil, "X-Purpose", "care")
		if r.status != 200 || r.header.Get("Content-Type") != "audio/wav" || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("play: %d %v", r.status, r.header)
		}
		note("play", "allowed", r)
		if !bytes.Equal(r.body, wavA) {
			t.Fatalf("played %d bytes, not the %d uploaded", len(r.body), len(wavA))
		}
		if got, want := pcmSamples(r.body[44:]), pcmSamples(wavA[44:]); len(got) != 160000 || !equalInt16(got, want) {
			t.Fatalf("PCM samples differ from the uploaded ones")
		}
		// Range: minute-30 style seek into the middle, across a 64 KiB chunk boundary.
		lo, hi := 65000, 140000
		r = srv.do("nurse", "GET", "/v1/recordings/"+idA+"/audio", nil, "X-Purpose", "care", "Range", fmt.Sprintf("bytes=%d-%d", lo, hi))
		if r.status != 206 || !bytes.Equal(r.body, wavA[lo:hi+1]) {
			t.Fatalf("range: %d, %d bytes", r.status, len(r.body))
		}
		if cr := r.header.Get("Content-Range"); cr != fmt.Sprintf("bytes %d-%d/%d", lo, hi, len(wavA)) {
			t.Fatalf("Content-Range %q", cr)
		}
		note("play range", "allowed", r)
		// The same with curl.
		out, err := exec.Command("curl", "-sS", "--cacert", srv.devFile("ca.pem"), "--cert", srv.devFile("nurse.pem"), "--key", srv.devFile("nurse-key.pem"),
			"-H", "X-Purpose: care", "-r", "100-199", srv.url("/v1/recordings/"+idA+"/audio")).Output()
		if err != nil || !bytes.Equal(out, wavA[100:200]) {
			t.Fatalf("curl range: %v, %d bytes", err, len(out))
		}
	})

	t.Run("nurse of unit B needs emergency access, which is flagged", func(t *testing.T) {
		r := srv.do("nurse-b", "GET", "/v1/recordings/"+idA+"/audio", nil, "X-Purpose", "care")
		if r.status != 403 || !strings.Contains(string(r.body), "other-care-unit-needs-emergency-access") {
			t.Fatalf("without reason: %s", r)
		}
		note("nurse-b no reason", "denied", r)
		// Unit B's search does not show unit A's call without emergency access…
		r = srv.do("nurse-b", "GET", "/v1/recordings?patient="+testPatient, nil, "X-Purpose", "care")
		if r.status != 200 || len(r.json(t)["recordings"].([]any)) != 0 {
			t.Fatalf("nurse-b search: %s", r)
		}
		note("nurse-b search", "allowed", r)
		reason := url.PathEscape("Patienten medvetslös, akut bedömning")
		r = srv.do("nurse-b", "GET", "/v1/recordings/"+idA+"/audio", nil, "X-Purpose", "care", "X-Emergency-Reason", reason)
		if r.status != 200 || !bytes.Equal(r.body, wavA) {
			t.Fatalf("with reason: %d", r.status)
		}
		note("nurse-b emergency", "allowed", r)
		evs := auditEvents(t, dataDir)
		var found bool
		for _, e := range evs {
			if e["RequestID"] == r.header.Get("X-Request-ID") {
				found = true
				if e["Flagged"] != true || e["Reason"] != "emergency-access" || e["EmergencyReason"] != "Patienten medvetslös, akut bedömning" ||
					e["Patient"] != testPatient || e["User"] != hsaNurseB || e["RecordingID"] != idA || e["Action"] != "play" {
					t.Fatalf("emergency audit event %v", e)
				}
			}
		}
		if !found {
			t.Fatal("no audit event for the emergency access")
		}
	})

	t.Run("another care provider cannot tell existing from missing", func(t *testing.T) {
		for _, suffix := range []string{"", "/audio"} {
			a := srv.do("nurse-other", "GET", "/v1/recordings/"+idA+suffix, nil, "X-Purpose", "care", "X-Emergency-Reason", "test")
			b := srv.do("nurse-other", "GET", "/v1/recordings/0123456789abcdef0123456789abcdef"+suffix, nil, "X-Purpose", "care", "X-Emergency-Reason", "test")
			if a.status != 404 || b.status != 404 || !bytes.Equal(a.body, b.body) || a.header.Get("Content-Type") != b.header.Get("Content-Type") {
				t.Fatalf("existing: %s; missing: %s", a, b)
			}
			note("other existing", "denied", a)
			note("other missing", "denied", b)
		}
		r := srv.do("nurse-other", "GET", "/v1/recordings?patient="+testPatient, nil, "X-Purpose", "care")
		if r.status != 200 || len(r.json(t)["recordings"].([]any)) != 0 {
			t.Fatalf("other provider search: %s", r)
		}
		note("other search", "allowed", r)
	})

	t.Run("bad input gets a clear 4xx and stores nothing", func(t *testing.T) {
		before := statusJSON(t, dataDir)["recordings"]
		filesBefore := len(siteFiles(t, dataDir))
		good := func() map[string]any { return meta(testPatient, testCaller, unitA) }
		wav := noiseWAV(t, 2, 1)
		scan.addAudio("bad-input wav", wav)
		cases := []struct {
			name   string
			md     map[string]any
			audio  []byte
			status int
			field  string
		}{
			{"invalid personnummer", with(good(), "patient", "201701102385"), wav, 400, "patient"},
			{"missing call_id", without(good(), "call_id"), wav, 400, "call_id"},
			{"missing staff", without(good(), "staff"), wav, 400, "staff"},
			{"bad time", with(good(), "started_at", "yesterday"), wav, 400, "started_at"},
			{"unknown field", with(good(), "ssn", "x"), wav, 400, "ssn"},
			{"unknown care unit", with(good(), "care_unit", "SE9999990001-NOPE"), wav, 400, "care_unit"},
			{"other provider", with(good(), "care_provider", "SE9999990002-VG02"), wav, 403, ""},
			{"non-audio bytes", good(), []byte("%PDF-1.7 this is not audio at all, just a document................"), 415, "audio"},
			{"truncated WAV", good(), wav[:len(wav)-1000], 400, "audio"},
		}
		for _, c := range cases {
			r := srv.upload("capture", mustJSON(t, c.md), c.audio)
			if r.status != c.status || (c.field != "" && r.json(t)["field"] != c.field) {
				t.Errorf("%s: %s, want %d field %q", c.name, r, c.status, c.field)
			}
			note(c.name, "", r)
			for _, n := range []string{testPatient, "201701102385", testCaller} {
				if strings.Contains(string(r.body), n) {
					t.Errorf("%s: error echoes personal data: %s", c.name, r.body)
				}
			}
		}
		// Oversized body: limit is 4 MiB for this server.
		big := noiseWAV(t, 3, 140) // 4.48 MB
		r := srv.upload("capture", mustJSON(t, good()), big)
		if r.status != 413 {
			t.Errorf("oversized: %s, want 413", r)
		}
		// Not multipart.
		r = srv.do("capture", "POST", "/v1/recordings", bytes.NewReader(wav), "Content-Type", "audio/wav")
		if r.status != 415 {
			t.Errorf("not multipart: %s", r)
		}
		// IDs with ../ — encoded so the path is not cleaned before routing.
		for _, p := range []string{"/v1/recordings/..%2F..%2Fetc%2Fpasswd", "/v1/recordings/..%2Fsite-a/audio", "/v1/recordings/ABC"} {
			r := srv.do("nurse", "GET", p, nil, "X-Purpose", "care")
			if r.status != 400 || r.json(t)["field"] != "id" {
				t.Errorf("GET %s: %s, want 400 field id", p, r)
			}
		}
		out, _ := exec.Command("curl", "-sS", "--path-as-is", "--cacert", srv.devFile("ca.pem"), "--cert", srv.devFile("nurse.pem"), "--key", srv.devFile("nurse-key.pem"),
			"-H", "X-Purpose: care", "-o", "/dev/null", "-w", "%{http_code}", srv.url("/v1/recordings/../../etc/passwd")).Output()
		if !strings.HasPrefix(string(out), "4") && !strings.HasPrefix(string(out), "3") {
			t.Errorf("curl ../ path: %s", out)
		}
		if after := statusJSON(t, dataDir)["recordings"]; after != before {
			t.Errorf("recordings %v → %v after bad input", before, after)
		}
		if n := len(siteFiles(t, dataDir)); n != filesBefore {
			t.Errorf("site files %d → %d after bad input", filesBefore, n)
		}
	})

	t.Run("a patient block set with the CLI is audited and enforced", func(t *testing.T) {
		cli := func(args ...string) {
			t.Helper()
			out, err := exec.Command(binPath, append([]string{"directory", "--data", dataDir}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("directory %v: %v %s", args, err, out)
			}
		}
		cli("block", "--patient", testPatient10, "--care-unit", unitA)
		r := srv.do("nurse", "GET", "/v1/recordings/"+idA+"/audio", nil, "X-Purpose", "care")
		if r.status != 403 || !strings.Contains(string(r.body), "patient-block-needs-emergency-access") {
			t.Fatalf("blocked patient: %s", r)
		}
		note("blocked", "denied", r)
		r = srv.do("nurse", "GET", "/v1/recordings/"+idA, nil, "X-Purpose", "care", "X-Emergency-Reason", "consent given by phone")
		if r.status != 200 {
			t.Fatalf("blocked patient with emergency access: %s", r)
		}
		note("blocked emergency", "allowed", r)
		cli("unblock", "--patient", testPatient, "--care-unit", unitA)
		r = srv.do("nurse", "GET", "/v1/recordings/"+idA, nil, "X-Purpose", "care")
		if r.status != 200 {
			t.Fatalf("after unblock: %s", r)
		}
		note("unblocked", "allowed", r)
		var blocks []string
		for _, e := range auditEvents(t, dataDir) {
			if a, _ := e["Action"].(string); strings.HasPrefix(a, "directory.") {
				if e["Patient"] != testPatient || e["Outcome"] != "allowed" || e["CareUnit"] != "" || !strings.Contains(e["Detail"].(string), unitA) {
					t.Errorf("directory audit event %v", e)
				}
				blocks = append(blocks, a)
			}
		}
		if strings.Join(blocks, ",") != "directory.block,directory.unblock" {
			t.Fatalf("directory audit events %v", blocks)
		}
	})

	t.Run("ops listener: health and metrics, no personal data", func(t *testing.T) {
		get := func(path string) (int, string) {
			resp, err := http.Get("http://" + srv.opsAddr + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		if code, body := get("/healthz"); code != 200 || body != "ok\n" {
			t.Fatalf("healthz: %d %q", code, body)
		}
		code, body := get("/metrics")
		if code != 200 || !strings.Contains(body, `callvault_decisions_total{action="play",outcome="allowed"}`) ||
			!strings.Contains(body, "callvault_replication_pending 0") || !strings.Contains(body, `callvault_ingest_total{result="stored"}`) {
			t.Fatalf("metrics: %d\n%s", code, body)
		}
		for _, secret := range []string{testPatient, testCaller, idA} {
			if strings.Contains(body, secret) {
				t.Errorf("metrics expose personal data or a recording ID")
			}
		}
		// The API port does not speak plain HTTP.
		if resp, err := http.Get("http://" + srv.addr + "/v1/recordings"); err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Fatalf("plain HTTP on the API port: %d", resp.StatusCode)
			}
		}
	})

	t.Run("every answered request is in the audit log", func(t *testing.T) {
		evs := auditEvents(t, dataDir)
		byReq := map[string][]map[string]any{}
		for _, e := range evs {
			if id, _ := e["RequestID"].(string); id != "" {
				byReq[id] = append(byReq[id], e)
			}
		}
		for _, c := range calls {
			es := byReq[c.id]
			if len(es) == 0 {
				t.Errorf("%s (request %s): no audit event", c.what, c.id)
				continue
			}
			if c.outcome != "" && es[0]["Outcome"] != c.outcome {
				t.Errorf("%s: audit outcome %v, want %s", c.what, es[0]["Outcome"], c.outcome)
			}
		}
		if len(calls) < 25 {
			t.Fatalf("only %d calls checked", len(calls))
		}
		out, err := exec.Command(binPath, "audit", "--data", dataDir, "verify").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "audit log ok: ") {
			t.Fatalf("audit verify: %v %s", err, out)
		}
	})

	t.Run("no plaintext audio or personal data anywhere in the data directory", func(t *testing.T) {
		srv.stop() // flush everything (WAL checkpoints) before looking
		skip := func(path, needle string) bool {
			// The dev sample document is meant to hold a test personnummer for the upload example.
			return needle == samplePatient && path == filepath.Join(dataDir, "dev", "sample-metadata.json")
		}
		finds, files := scan.find(t, dataDir, []string{logPath}, skip)
		for _, f := range finds {
			t.Error(f)
		}
		if files < 20 {
			t.Fatalf("scanned only %d files", files)
		}
	})
}

func assertHandshakeRefused(t *testing.T, srv *server, certPEM, keyPEM []byte) {
	t.Helper()
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", srv.addr, &tls.Config{RootCAs: srv.caPool(), Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	if err == nil {
		// In TLS 1.3 the client may finish before the server rejects its
		// certificate; the rejection arrives on the first read.
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Write([]byte("GET /v1/recordings HTTP/1.1\r\nHost: x\r\n\r\n"))
		if err == nil {
			_, err = conn.Read(make([]byte, 1))
		}
		conn.Close()
	}
	var alert tls.AlertError
	if err == nil || !(errors.As(err, &alert) || strings.Contains(err.Error(), "bad certificate") || strings.Contains(err.Error(), "certificate")) {
		t.Fatalf("handshake not refused: %v", err)
	}
}

func with(m map[string]any, k string, v any) map[string]any { m[k] = v; return m }
func without(m map[string]any, k string) map[string]any     { delete(m, k); return m }

func pcmSamples(b []byte) []int16 {
	s := make([]int16, len(b)/2)
	for i := range s {
		s[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return s
}

func equalInt16(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
