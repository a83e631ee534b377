package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"callvault/internal/catalog"
	"callvault/internal/config"
	"callvault/internal/keys"
	"callvault/internal/seal"
)

// uploadOK uploads a noise recording for patient as capture and returns its ID.
func (s *server) uploadOK(patient string, seed uint64, md map[string]any) string {
	s.t.Helper()
	if md == nil {
		md = meta(patient, "+46701740605", unitA)
	}
	r := s.upload("capture", mustJSON(s.t, md), noiseWAV(s.t, seed, 1))
	if r.status != 201 {
		s.t.Fatalf("upload: %v", r)
	}
	return r.json(s.t)["id"].(string)
}

// post sends a JSON body as who.
func (s *server) post(who, path string, body any) response {
	s.t.Helper()
	var b []byte
	if body != nil {
		b = mustJSON(s.t, body)
	}
	return s.do(who, "POST", path, bytes.NewReader(b), "Content-Type", "application/json")
}

func wantStatus(t *testing.T, what string, r response, status int, bodyHas string) {
	t.Helper()
	if r.status != status || !strings.Contains(string(r.body), bodyHas) {
		t.Fatalf("%s: got %v, want %d with %q", what, r, status, bodyHas)
	}
}

// catalogRow reads recording id straight from the catalog database.
func catalogRow(t *testing.T, dataDir, id string) *catalog.Recording {
	t.Helper()
	db, err := catalog.Open(context.Background(), catalogPath(t, dataDir))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := db.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("catalog get %s: %v", id, err)
	}
	return r
}

// filesHolding lists the files below dir whose bytes contain needle.
func filesHolding(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLifecycleDeletion(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, filepath.Join(t.TempDir(), "serve.log"))
	const patient = "201701102384"
	r1 := srv.uploadOK(patient, 101, nil)
	r2 := srv.uploadOK(patient, 102, nil)
	r3 := srv.uploadOK(patient, 103, nil)
	play := func(who, id string) response {
		return srv.do(who, "GET", "/v1/recordings/"+id+"/audio", nil, "X-Purpose", "care")
	}
	sum := sha256.Sum256([]byte("IVO beslut (synthetic test document)"))
	doc := hex.EncodeToString(sum[:])
	decision := func(ids ...string) map[string]any {
		return map[string]any{"case_number": "3.5.1-04711/2026", "decided_on": "2026-11-02", "document_sha256": doc, "recordings": ids}
	}

	// Records officers manage the lifecycle but never listen.
	wantStatus(t, "records officer plays", play("records", r1), 403, "role-not-permitted")
	wantStatus(t, "records officer reads metadata", srv.do("records", "GET", "/v1/recordings/"+r1, nil, "X-Purpose", "care"), 403, "role-not-permitted")

	// Legal holds.
	wantStatus(t, "nurse sets hold", srv.post("nurse", "/v1/recordings/"+r2+"/holds", map[string]string{"reference": "JUR 2026/0042"}), 403, "role-not-permitted")
	r := srv.post("records", "/v1/recordings/"+r2+"/holds", map[string]string{"reference": "19121212-1212"})
	wantStatus(t, "hold reference holding a personnummer", r, 400, `"field": "reference"`)
	if bytes.Contains(r.body, []byte("1212")) {
		t.Fatalf("the refusal echoes the value: %s", r.body)
	}
	r = srv.post("records", "/v1/recordings/"+r2+"/holds", map[string]string{"reference": "JUR 2026/0042"})
	wantStatus(t, "set hold", r, 201, `"set_by": "SE9999990001-REC1"`)
	holdID := int64(r.json(t)["id"].(float64))
	wantStatus(t, "hold on unknown recording", srv.post("records", "/v1/recordings/"+strings.Repeat("ab", 16)+"/holds", map[string]string{"reference": "JUR 1"}), 404, "no such recording")

	// Registration: bad fields are named, never echoed; state is checked.
	bad := decision(r1)
	bad["case_number"] = "IVO 201701102384"
	wantStatus(t, "case number with a personnummer", srv.post("records", "/v1/deletions", bad), 400, `"field": "case_number"`)
	bad = decision(r1)
	bad["decided_on"] = time.Now().AddDate(0, 0, 3).Format(time.DateOnly)
	wantStatus(t, "decision date in the future", srv.post("records", "/v1/deletions", bad), 400, `"field": "decided_on"`)
	bad = decision(r1)
	bad["document_sha256"] = "abc"
	wantStatus(t, "bad document digest", srv.post("records", "/v1/deletions", bad), 400, `"field": "document_sha256"`)
	wantStatus(t, "unknown recording", srv.post("records", "/v1/deletions", decision(strings.Repeat("cd", 16))), 404, "no such recording")
	wantStatus(t, "nurse registers", srv.post("nurse", "/v1/deletions", decision(r1)), 403, "role-not-permitted")
	wantStatus(t, "register a held recording", srv.post("records", "/v1/deletions", decision(r1, r2)), 409, "legal hold")

	r = srv.post("records", "/v1/deletions", decision(r1))
	wantStatus(t, "register", r, 201, `"state": "registered"`)
	d1 := int64(r.json(t)["id"].(float64))
	approve := func(who string, id int64) response {
		return srv.post(who, fmt.Sprintf("/v1/deletions/%d/approve", id), nil)
	}
	wantStatus(t, "self-approval", approve("records", d1), 403, "self-approval")
	wantStatus(t, "nurse approves", approve("nurse", d1), 403, "role-not-permitted")
	wantStatus(t, "admin approves", approve("admin", d1), 403, "role-not-permitted")
	wantStatus(t, "other provider's nurse approves", approve("nurse-other", d1), 403, "role-not-permitted")
	wantStatus(t, "still registered", srv.do("records-2", "GET", fmt.Sprintf("/v1/deletions/%d", d1), nil), 200, `"state": "registered"`)
	if r := play("nurse", r1); r.status != 200 {
		t.Fatalf("refused approvals changed something: play %v", r.status)
	}

	// Keep what crypto-shredding must destroy: the blob as stored, and the
	// wrapped file key callvault held for it.
	blobA, err := os.ReadFile(blobPath(dataDir, "a", r1))
	if err != nil {
		t.Fatal(err)
	}
	wrapped := catalogRow(t, dataDir, r1).WrappedKey
	// Before: the key is in the catalog and in the recovery records on the
	// sites. (A PostgreSQL catalog's files are the database server's and
	// are not scanned; docs/deploy.md says what remains there.)
	var holding []string
	for _, dir := range storageDirs(dataDir) {
		holding = append(holding, filesHolding(t, dir, wrapped)...)
	}
	if len(holding) == 0 {
		t.Fatal("the scan does not find the wrapped key before deletion")
	}

	r = approve("records-2", d1)
	wantStatus(t, "approval by a second officer", r, 200, `"state": "executed"`)
	if !strings.Contains(string(r.body), r1) {
		t.Fatalf("approval does not name the deleted recording: %s", r.body)
	}

	// Gone for those who could have asked; unknown for everyone else.
	wantStatus(t, "play deleted", play("nurse", r1), 410, "recording deleted")
	wantStatus(t, "metadata of deleted", srv.do("nurse-b", "GET", "/v1/recordings/"+r1, nil, "X-Purpose", "care"), 410, fmt.Sprintf(`"decision": %d`, d1))
	wantStatus(t, "other provider reads deleted", play("nurse-other", r1), 404, "no such recording")
	for _, site := range []string{"a", "b"} {
		// On an S3 site with Object Lock the locked ciphertext stays
		// until its date, hidden by a delete marker and unreadable: its
		// key is gone (the scan below covers the stores' files too).
		if blobVisible(t, dataDir, site, r1) {
			t.Errorf("%s still serves the blob", site)
		}
	}
	if r := play("nurse", r3); r.status != 200 {
		t.Fatalf("another recording was affected: %v", r.status)
	}

	// A second deletion, a hold on a deleted recording: refused.
	wantStatus(t, "second deletion", srv.post("records-2", "/v1/deletions", decision(r1)), 409, "already deleted")
	wantStatus(t, "hold on deleted", srv.post("records", "/v1/recordings/"+r1+"/holds", map[string]string{"reference": "JUR 2"}), 409, "already deleted")
	wantStatus(t, "approve executed again", approve("records-2", d1), 409, "not awaiting approval")

	// A hold set between registration and approval stops the approval.
	r = srv.post("records-2", "/v1/deletions", decision(r3))
	wantStatus(t, "register r3", r, 201, "registered")
	d3 := int64(r.json(t)["id"].(float64))
	wantStatus(t, "hold r3", srv.post("records-2", "/v1/recordings/"+r3+"/holds", map[string]string{"reference": "JUR 2026/0043"}), 201, "")
	wantStatus(t, "approve held", approve("records", d3), 409, "legal hold")
	if r := play("nurse", r3); r.status != 200 {
		t.Fatalf("held recording not playable: %v", r.status)
	}

	// Released, the hold no longer blocks.
	wantStatus(t, "release", srv.do("records-2", "DELETE", fmt.Sprintf("/v1/recordings/%s/holds/%d", r2, holdID), nil), 200, `"released_by": "SE9999990001-REC2"`)
	wantStatus(t, "release twice", srv.do("records", "DELETE", fmt.Sprintf("/v1/recordings/%s/holds/%d", r2, holdID), nil), 409, "already released")
	r = srv.post("records-2", "/v1/deletions", decision(r2))
	wantStatus(t, "register r2", r, 201, "registered")
	wantStatus(t, "approve r2", approve("records", int64(r.json(t)["id"].(float64))), 200, "executed")
	wantStatus(t, "hold history kept", srv.do("records", "GET", "/v1/recordings/"+r2+"/holds", nil), 200, "JUR 2026/0042")

	// The tombstone holds the decision and the officers, and no personal data.
	db := catalogDB(t, dataDir)
	rows, err := db.QueryContext(context.Background(), `SELECT * FROM tombstones WHERE recording_id = ?`, r1)
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	if !rows.Next() {
		t.Fatal("no tombstone")
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	got := map[string]string{}
	for i, c := range cols {
		got[c] = fmt.Sprint(vals[i])
	}
	deletedAt := got["deleted_at"]
	delete(got, "deleted_at")
	want := map[string]string{"recording_id": r1, "care_provider": providerOne, "decision_id": fmt.Sprint(d1), "kind": "ivo",
		"case_number": "3.5.1-04711/2026", "registered_by": "SE9999990001-REC1", "approved_by": "SE9999990001-REC2",
		"source_index": "<nil>"} // set only for a migrated recording (a keyed hash of its source file)
	if fmt.Sprint(got) != fmt.Sprint(want) || deletedAt == "" {
		t.Fatalf("tombstone = %v (deleted_at %s), want exactly %v", got, deletedAt, want)
	}

	// Crypto-shredding: the wrapped key's bytes are nowhere under the data
	// directory (catalog file, its write-ahead log, sites, keys) nor, on
	// S3 sites, anywhere in the stores' files, older versions included...
	for _, dir := range storageDirs(dataDir) {
		if f := filesHolding(t, dir, wrapped); len(f) > 0 {
			t.Fatalf("the deleted recording's wrapped key is still stored in %v", f)
		}
	}
	// ...and no key callvault holds opens the kept ciphertext: every epoch
	// identity against every wrapped key left in the catalog.
	cfg, err := config.Dev(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := loadKeyring(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(context.Background(), cfg.CatalogPath())
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	left, err := cat.ByPatient(context.Background(), providerOne, kr.BlindIndex("patient", patient), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := allWrappedKeys(db.SQL())
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 || len(left) != 1 || left[0].ID != r3 {
		t.Fatalf("catalog after deletions: %d wrapped keys, patient's recordings %v", len(all), left)
	}
	tried := 0
	for _, w := range all {
		for epoch := 1; epoch <= kr.Current().ID; epoch++ {
			id, err := kr.Identity(epoch)
			if errors.Is(err, keys.ErrNoEpoch) {
				continue
			}
			fk, err := seal.Unwrap(w, id)
			if err != nil {
				continue
			}
			tried++
			if _, err := seal.NewReader(bytes.NewReader(blobA), int64(len(blobA)), fk, r1); !errors.Is(err, seal.ErrAuth) {
				t.Fatalf("a key callvault holds opens the deleted recording: %v", err)
			}
		}
	}
	if tried != len(all) {
		t.Fatalf("tried %d file keys, want %d", tried, len(all))
	}

	// Everything is on the record.
	var sawSelf, sawDelete, sawGone bool
	for _, e := range auditEvents(t, dataDir) {
		switch {
		case e["Action"] == "deletion.approve" && e["Outcome"] == "denied" && e["Reason"] == "self-approval":
			sawSelf = true
		case e["Action"] == "delete" && e["RecordingID"] == r1 && e["Reason"] == "ivo":
			sawDelete = true
		case e["Action"] == "play" && e["RecordingID"] == r1 && e["Reason"] == "deleted":
			sawGone = true
		}
	}
	if !sawSelf || !sawDelete || !sawGone {
		t.Fatalf("audit log: self-approval refusal %v, delete %v, read of deleted %v", sawSelf, sawDelete, sawGone)
	}
}

// allWrappedKeys returns every wrapped file key in the catalog.
func allWrappedKeys(db *sql.DB) ([][]byte, error) {
	rows, err := db.Query(`SELECT wrapped_key FROM recordings`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var w []byte
		if err := rows.Scan(&w); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

func TestDisposalAfterRetention(t *testing.T) {
	dataDir := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "serve.log")
	srv := startServer(t, dataDir, logPath)
	old := func(seed uint64) string {
		md := meta("191212121212", "", unitA)
		start := time.Date(2014, 3, 1, 9, 0, 0, 0, time.UTC)
		md["started_at"], md["ended_at"] = start.Format(time.RFC3339), start.Add(3*time.Minute).Format(time.RFC3339)
		return srv.uploadOK("", seed, md)
	}
	expired, held := old(201), old(202)
	recent := srv.uploadOK("191212121212", 203, nil)
	wantStatus(t, "hold", srv.post("records", "/v1/recordings/"+held+"/holds", map[string]string{"reference": "JUR 2026/7"}), 201, "")
	srv.stop()

	dispose := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(binPath, append([]string{"dispose", "--data", dataDir}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("dispose %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := dispose(); !strings.Contains(out, `policy is "keep"`) {
		t.Fatalf("default policy: %s", out)
	}
	if out := dispose("--disposal", "dispose"); !strings.Contains(out, "disposed 1 recordings") {
		t.Fatalf("dispose: %s", out)
	}
	if out := dispose("--disposal", "dispose"); !strings.Contains(out, "disposed 0 recordings") {
		t.Fatalf("second pass: %s", out)
	}
	cat, err := catalog.Open(context.Background(), catalogPath(t, dataDir))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	ts, err := cat.Tombstone(context.Background(), expired)
	if err != nil || ts.Kind != catalog.KindDisposal || ts.ApprovedBy != catalog.SystemActor {
		t.Fatalf("tombstone of the expired recording: %+v, %v", ts, err)
	}
	for _, id := range []string{held, recent} {
		if _, err := cat.Get(context.Background(), id); err != nil {
			t.Errorf("recording %s: %v", id, err)
		}
	}
	if got := catalogRow(t, dataDir, recent).RetentionUntil; got.Year() != time.Now().UTC().Year()+10 && got.Year() != time.Now().UTC().Year()+9 {
		t.Errorf("retention_until of a recent call = %v", got)
	}
	if blobVisible(t, dataDir, "b", expired) {
		t.Error("disposed blob still on site b")
	}
}
