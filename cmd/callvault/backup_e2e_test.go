package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A backup taken while serving restores catalog, audit log and directory
// after both databases are lost: recordings, holds, tombstones and the
// verifiable log history all come back.
func TestBackupAndRestore(t *testing.T) {
	dataDir := t.TempDir()
	backupDir := filepath.Join(t.TempDir(), "elsewhere")
	srv := startServer(t, dataDir, filepath.Join(t.TempDir(), "serve.log"))
	kept := srv.uploadOK("201701102384", 801, nil)
	deleted := srv.uploadOK("201701102384", 802, nil)
	wantStatus(t, "hold", srv.post("records", "/v1/recordings/"+kept+"/holds", map[string]string{"reference": "JUR 2026/9"}), 201, "")
	sum := sha256.Sum256([]byte("decision"))
	r := srv.post("records", "/v1/deletions", map[string]any{"case_number": "3.5.1-2/2026", "decided_on": "2026-11-01",
		"document_sha256": hex.EncodeToString(sum[:]), "recordings": []string{deleted}})
	wantStatus(t, "approve", srv.post("records-2", fmt.Sprintf("/v1/deletions/%d/approve", int64(r.json(t)["id"].(float64))), nil), 200, "executed")

	if onPostgres(t, dataDir) {
		// The database's own tools back PostgreSQL up; callvault says so
		// and writes nothing.
		out := cli(t, false, "backup", "--data", dataDir, "--out", backupDir)
		if !strings.Contains(out, "back that database up with its own tools (pg_basebackup") {
			t.Fatalf("backup on PostgreSQL: %s", out)
		}
		if _, err := os.Stat(backupDir); !os.IsNotExist(err) {
			t.Fatalf("backup on PostgreSQL left %s: %v", backupDir, err)
		}
		return
	}
	out := cli(t, true, "backup", "--data", dataDir, "--out", backupDir) // while serving
	file := strings.SplitN(out, "\n", 2)[0]
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("SQLite format 3")) || !bytes.HasPrefix(b, []byte("age-encryption.org/v1\n")) {
		t.Fatal("the backup file is not an age file, or holds a database in the clear")
	}
	metaBefore := srv.do("nurse", "GET", "/v1/recordings/"+kept, nil, "X-Purpose", "care")
	srv.stop()

	for _, f := range []string{"catalog.db", "catalog.db-wal", "catalog.db-shm", "directory.db", "directory.db-wal", "directory.db-shm"} {
		os.Remove(filepath.Join(dataDir, f))
	}
	cli(t, false, "restore", "--data", dataDir, "--from", filepath.Join(backupDir, "nothing.tar.age"))
	out = cli(t, true, "restore", "--data", dataDir, "--from", file)
	if !strings.Contains(out, "restored [catalog.db directory.db]") {
		t.Fatalf("restore: %s", out)
	}
	cli(t, false, "restore", "--data", dataDir, "--from", file) // nothing lost now: refused
	cli(t, true, "audit", "--data", dataDir, "verify")

	srv = startServer(t, dataDir, filepath.Join(t.TempDir(), "serve2.log"))
	if r := srv.do("nurse", "GET", "/v1/recordings/"+kept, nil, "X-Purpose", "care"); r.status != 200 || !bytes.Equal(r.body, metaBefore.body) {
		t.Fatalf("metadata after restore: %v", r)
	}
	wantStatus(t, "deleted after restore", srv.do("nurse", "GET", "/v1/recordings/"+deleted+"/audio", nil, "X-Purpose", "care"), 410, "recording deleted")
	wantStatus(t, "hold after restore", srv.do("records", "GET", "/v1/recordings/"+kept+"/holds", nil), 200, "JUR 2026/9")
	var sawBackup bool
	for _, e := range auditEvents(t, dataDir) {
		if e["Action"] == "backup" {
			sawBackup = true
		}
	}
	if !sawBackup {
		t.Fatal("the backup itself is not in the restored audit log")
	}
}
