package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"callvault/internal/audio"
)

// browserDir holds the Playwright test and its npm packages (installed by
// scripts/test.sh: npm ci).
const browserDir = "testdata/browser"

// browserResult is what webui.test.mjs prints.
type browserResult struct {
	Failures    []string            `json:"failures"`
	Pages       []string            `json:"pages"`
	Axe         map[string][]string `json:"axe"`
	URLs        []string            `json:"urls"`
	CSP         []string            `json:"csp"`
	Seek        *struct{ T, D float64 }
	Channels    string `json:"channels"`
	Emergency   bool   `json:"emergency"`
	ExtractRows int    `json:"extractRows"`
	Finding     string `json:"finding"`
	IncidentCSV int    `json:"incidentCSV"`
	Decision    int64  `json:"decision"`
	AdminPNR    int    `json:"adminPNR"`
	AdminIDs    int    `json:"adminIDs"`
	AdminPhones int    `json:"adminPhones"`
}

// toneWAV returns a stereo PCM recording: 440 Hz on the caller's channel,
// 660 Hz on the nurse's.
func toneWAV(t *testing.T, seconds int) []byte {
	t.Helper()
	n := 8000 * seconds
	var buf bytes.Buffer
	if err := audio.WriteWAV(&buf, audio.PCM16, 8000, [][]int16{audio.Tone(440, 8000, n, 8000), audio.Tone(660, 8000, n, 8000)}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// runBrowser runs webui.test.mjs against srv and returns its result.
func runBrowser(t *testing.T, srv *server, env ...string) *browserResult {
	t.Helper()
	for _, need := range []string{"/usr/bin/chromium", filepath.Join(browserDir, "node_modules", "playwright-core"), filepath.Join(browserDir, "node_modules", "axe-core")} {
		if _, err := os.Stat(need); err != nil {
			t.Fatalf("%s is missing: run scripts/test.sh, which installs chromium and the npm packages (%v)", need, err)
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is missing: run scripts/test.sh, which installs it (%v)", err)
	}
	cmd := exec.Command("node", "webui.test.mjs")
	cmd.Dir = browserDir
	cmd.Env = append(os.Environ(), append([]string{"CV_URL=https://" + srv.addr, "CV_DEV=" + filepath.Join(srv.dataDir, "dev")}, env...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan struct{})
	timer := time.AfterFunc(4*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	out, err := cmd.Output()
	close(done)
	if err != nil {
		t.Fatalf("browser test: %v\nstdout: %s\nstderr: %s", err, out, stderr.String())
	}
	var res browserResult
	if err := json.Unmarshal(bytes.TrimSpace(out), &res); err != nil {
		t.Fatalf("browser test output: %v\n%s\nstderr: %s", err, out, stderr.String())
	}
	return &res
}

// TestWebUIBrowser drives the staff pages in Debian's chromium through
// Playwright, logged in with the dev client certificates: a nurse finds a
// patient, states a purpose, plays and seeks; nurse-b goes through
// emergency access; the auditor opens the extract and marks a finding
// reviewed; a records officer cannot approve their own decision (a second
// can); the admin sees no patient data. axe-core checks every page. With
// CALLVAULT_SCREENSHOTS=DIR it leaves a screenshot of every page there
// (scripts/screenshots.sh).
func TestWebUIBrowser(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, filepath.Join(t.TempDir(), "server.log"))
	const patient, patientB = "201701102384", "191212121212"

	md := meta(patient, "+46701740641", unitA)
	start := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Second)
	md["started_at"], md["ended_at"] = start.Format(time.RFC3339), start.Add(20*time.Minute).Format(time.RFC3339)
	r := srv.upload("capture", mustJSON(t, md), toneWAV(t, 1200))
	wantStatus(t, "upload of the 20-minute call", r, 201, `"id"`)
	callID := r.json(t)["id"].(string)
	deleteID := srv.uploadOK("198001019804", 71, nil)
	holdID := srv.uploadOK("198001019804", 72, nil)

	shots := os.Getenv("CALLVAULT_SCREENSHOTS")
	if shots != "" && !filepath.IsAbs(shots) {
		// Relative to the repository, not this package; absolute for node,
		// which runs in testdata/browser.
		var err error
		if shots, err = filepath.Abs(filepath.Join("..", "..", shots)); err != nil {
			t.Fatal(err)
		}
	}
	res := runBrowser(t, srv, "CV_PATIENT="+patient, "CV_PATIENT_B="+patientB, "CV_DELETE_ID="+deleteID, "CV_HOLD_ID="+holdID, "CV_SHOTS="+shots)
	for _, f := range res.Failures {
		t.Error("browser: " + f)
	}
	for page, v := range res.Axe {
		if len(v) > 0 {
			t.Logf("axe, %s (minor and moderate findings are listed, not failed): %v", page, v)
		}
	}
	if len(res.Pages) != 17 {
		t.Errorf("browser checked %d pages (%v), want 17", len(res.Pages), res.Pages)
	}
	if len(res.CSP) > 0 {
		t.Errorf("Content-Security-Policy violations in the browser: %v", res.CSP)
	}
	if res.Seek == nil || res.Seek.T < 911 || res.Seek.D < 1199 || res.Seek.D > 1201 {
		t.Errorf("seek: %+v, want playing past 15:11 of 20:00", res.Seek)
	}
	if res.Channels != "0,1" {
		t.Errorf("channel gains after switching the caller off: %q, want 0,1", res.Channels)
	}
	if !res.Emergency || res.ExtractRows == 0 || res.Finding == "" || res.IncidentCSV < 2 || res.Decision == 0 {
		t.Errorf("flows incomplete: %+v", res)
	}
	if res.AdminPNR != 0 || res.AdminIDs != 0 || res.AdminPhones != 0 {
		t.Errorf("admin page shows %d personnummer, %d recording IDs, %d phone numbers; want none", res.AdminPNR, res.AdminIDs, res.AdminPhones)
	}
	// No personal data in any URL the browser asked for (search is POST).
	for _, u := range res.URLs {
		for _, p := range []string{patient, patientB, patient[2:], patientB[2:], patient[:8] + "-", patientB[:8] + "-"} {
			if strings.Contains(u, p) {
				t.Errorf("a personnummer is in the URL %s", u)
			}
		}
	}

	// The audit log tells the same story.
	evs := auditEvents(t, dataDir)
	count := func(match func(map[string]any) bool) int {
		n := 0
		for _, e := range evs {
			if match(e) {
				n++
			}
		}
		return n
	}
	seekStart := regexp.MustCompile(`^range=bytes=(\d+)-`)
	plays, seeks := 0, 0
	for _, e := range evs {
		if e["Action"] == "play" && e["RecordingID"] == callID && e["User"] == hsaNurseA && e["Outcome"] == "allowed" {
			plays++
			if e["Purpose"] != "care" {
				t.Errorf("play audited with purpose %v, want care", e["Purpose"])
			}
			if m := seekStart.FindStringSubmatch(e["Detail"].(string)); m != nil {
				if off, _ := strconv.Atoi(m[1]); off > 8000*4*800 { // beyond 13:20: the seek, not read-ahead
					seeks++
				}
			}
		}
	}
	if plays < 2 || seeks == 0 {
		for _, e := range evs {
			if e["Action"] == "play" {
				t.Logf("play %v %v", e["User"], e["Detail"])
			}
		}
		t.Errorf("nurse's plays of the call: %d audited, %d of them Range requests past 13:20; want ≥2 and ≥1", plays, seeks)
	}
	if n := count(func(e map[string]any) bool {
		return e["Action"] == "play" && e["User"] == hsaNurseB && e["Flagged"] == true && e["EmergencyReason"] != ""
	}); n == 0 {
		t.Error("nurse-b's emergency play is not audited as flagged with its reason")
	}
	if n := count(func(e map[string]any) bool {
		return e["Action"] == "deletion.approve" && e["User"] == "SE9999990001-REC1" && e["Outcome"] == "denied" && e["Reason"] == "self-approval"
	}); n != 1 {
		t.Errorf("self-approval denials audited: %d, want 1", n)
	}
	if n := count(func(e map[string]any) bool { return e["Action"] == "delete" && e["RecordingID"] == deleteID }); n != 1 {
		t.Errorf("deletions of the decided recording: %d, want 1", n)
	}
	if n := count(func(e map[string]any) bool {
		return e["Action"] == "admin.view" && e["User"] == "SE9999990001-ADM1" && e["Outcome"] == "allowed"
	}); n != 1 {
		t.Errorf("admin views audited: %d, want 1", n)
	}
	if n := count(func(e map[string]any) bool {
		return e["Action"] == "audit.review-mark" && e["User"] == "SE9999990001-AUD1" && e["Outcome"] == "allowed"
	}); n != 1 {
		t.Errorf("review marks audited: %d, want 1", n)
	}
	r = srv.do("nurse", "GET", "/v1/recordings/"+deleteID, nil, "X-Purpose", "care")
	wantStatus(t, "the deleted recording", r, 410, "recording deleted")
}
