package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// The catalog file is lost: recover-catalog rebuilds every recording's
// metadata from the recovery records on the sites; a deleted recording
// stays deleted.
func TestRecoverCatalog(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, filepath.Join(t.TempDir(), "serve.log"))
	var ids []string
	audio := map[string][]byte{}
	for i := range 5 {
		md := meta("201701102384", "+46701740605", []string{unitA, unitB}[i%2])
		wav := noiseWAV(t, uint64(700+i), 1)
		r := srv.upload("capture", mustJSON(t, md), wav)
		if r.status != 201 {
			t.Fatalf("upload: %v", r)
		}
		id := r.json(t)["id"].(string)
		ids = append(ids, id)
		audio[id] = wav
	}
	// One is deleted on an IVO decision before the loss.
	sum := sha256.Sum256([]byte("decision"))
	r := srv.post("records", "/v1/deletions", map[string]any{"case_number": "3.5.1-1/2026", "decided_on": "2026-11-01",
		"document_sha256": hex.EncodeToString(sum[:]), "recordings": []string{ids[4]}})
	wantStatus(t, "register", r, 201, "registered")
	wantStatus(t, "approve", srv.post("records-2", fmt.Sprintf("/v1/deletions/%d/approve", int64(r.json(t)["id"].(float64))), nil), 200, "executed")
	live := ids[:4]
	before := map[string][]byte{}
	for _, id := range live {
		r := srv.do("nurse-b", "GET", "/v1/recordings/"+id, nil, "X-Purpose", "care", "X-Emergency-Reason", "test")
		if r.status != 200 {
			t.Fatalf("metadata: %v", r)
		}
		before[id] = r.body
	}
	total := int(statusJSON(t, dataDir)["recordings"].(float64))
	srv.stop()

	loseCatalog(t, dataDir)
	out := cli(t, true, "recover-catalog", "--data", dataDir)
	if !strings.Contains(out, fmt.Sprintf("restored %d recordings", total)) {
		t.Fatalf("recover-catalog (want %d): %s", total, out)
	}
	cli(t, false, "recover-catalog", "--data", dataDir) // the catalog exists now

	srv = startServer(t, dataDir, filepath.Join(t.TempDir(), "serve2.log"))
	for _, id := range live {
		r := srv.do("nurse-b", "GET", "/v1/recordings/"+id, nil, "X-Purpose", "care", "X-Emergency-Reason", "test")
		if r.status != 200 || !bytes.Equal(r.body, before[id]) {
			t.Fatalf("metadata of %s after recovery:\n%s\nwant\n%s", id, r.body, before[id])
		}
		if r := srv.do("nurse", "GET", "/v1/recordings/"+id+"/audio", nil, "X-Purpose", "care"); r.status != 200 || !bytes.Equal(r.body, audio[id]) {
			t.Fatalf("audio of %s after recovery: %d", id, r.status)
		}
	}
	wantStatus(t, "deleted stays deleted", srv.do("nurse", "GET", "/v1/recordings/"+ids[4], nil, "X-Purpose", "care"), 404, "no such recording")
	r = srv.do("nurse", "GET", "/v1/recordings?patient=201701102384", nil, "X-Purpose", "care")
	if r.status != 200 || strings.Count(string(r.body), `"id"`) != len(live) {
		t.Fatalf("search after recovery: %v", r)
	}
	if rep := runScrub(t, dataDir, false); len(rep.Findings) != 0 {
		t.Fatalf("scrub after recovery: %+v", rep.Findings)
	}
}
