package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"callvault/internal/sqldb/pgtest"
)

// PostgreSQL dies under a running serve: playback is refused, not served
// without its audit entry; uploads are refused, not half-stored; health
// says so. When the database returns, the same serve works again with no
// restart, and the audit log verifies.
func TestPostgresDown(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.NewDatabase(t)
	dataDir := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "serve.log")
	srv := startServer(t, dataDir, logPath, "--database", dsn)
	if !onPostgres(t, dataDir) {
		t.Fatal("serve --dev --database did not keep the database for later commands")
	}

	wav := noiseWAV(t, 31, 1)
	r := srv.upload("capture", mustJSON(t, meta(testPatient, testCaller, unitA)), wav)
	if r.status != http.StatusCreated {
		t.Fatalf("upload: %s", r)
	}
	id := r.json(t)["id"].(string)
	before := int(statusJSON(t, dataDir)["recordings"].(float64))

	pg.Stop()
	r = srv.do("nurse", "GET", "/v1/recordings/"+id+"/audio", nil, "X-Purpose", "care")
	if r.status != http.StatusServiceUnavailable && r.status != http.StatusInternalServerError {
		t.Fatalf("playback with PostgreSQL down: %d", r.status)
	}
	if bytes.Contains(r.body, []byte("RIFF")) || bytes.Contains(r.body, wav[100:200]) {
		t.Fatal("audio served with PostgreSQL down")
	}
	r = srv.upload("capture", mustJSON(t, meta(testPatient, testCaller, unitA)), noiseWAV(t, 32, 1))
	if r.status == http.StatusCreated {
		t.Fatalf("upload acknowledged with PostgreSQL down: %s", r)
	}
	if code, body := srv.opsGet("/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "catalog") {
		t.Fatalf("healthz with PostgreSQL down: %d %q", code, body)
	}

	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "serve to reach PostgreSQL again", func() bool {
		code, _ := srv.opsGet("/healthz")
		return code == http.StatusOK
	})
	// A pooled connection that saw the crash fails its next use once and
	// is dropped (refused, never served unaudited), so playback works
	// again after at most a few refusals.
	refusals := 0
	waitFor(t, 30*time.Second, "playback after PostgreSQL returned", func() bool {
		r := srv.do("nurse", "GET", "/v1/recordings/"+id+"/audio", nil, "X-Purpose", "care")
		if r.status == http.StatusOK {
			if !bytes.Equal(r.body, wav) {
				t.Fatal("playback after the outage: wrong bytes")
			}
			return true
		}
		if bytes.Contains(r.body, []byte("RIFF")) {
			t.Fatal("audio in a refused answer")
		}
		refusals++
		return false
	})
	if refusals > 10 {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("%d refused plays after PostgreSQL returned; serve log:\n%s", refusals, lastLines(string(log), 15))
	}
	r = srv.upload("capture", mustJSON(t, meta(testPatient, testCaller, unitA)), noiseWAV(t, 33, 1))
	if r.status != http.StatusCreated {
		t.Fatalf("upload after PostgreSQL returned: %s", r)
	}
	// The refused upload left nothing: one more recording than before.
	if got := int(statusJSON(t, dataDir)["recordings"].(float64)); got != before+1 {
		t.Fatalf("recordings after the outage: %d, want %d", got, before+1)
	}
	cli(t, true, "audit", "--data", dataDir, "verify")
	// Every playback that was served has its audit entry; the refused one
	// has none claiming success.
	allowed := 0
	for _, e := range auditEvents(t, dataDir) {
		if e["Action"] == "play" && e["Outcome"] == "allowed" {
			allowed++
		}
	}
	if allowed != 1 {
		t.Fatalf("%d allowed play events, want 1 (none while PostgreSQL was down)", allowed)
	}
}

// lastLines returns the last n lines of s, for failure messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
