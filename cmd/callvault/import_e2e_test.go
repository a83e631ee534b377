package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"callvault/internal/legacytree"
	"callvault/internal/sqlitedb"
)

// importArgs are the flags that point `callvault import` at srv with the
// dev capture certificate.
func importArgs(srv *server, from, work string) []string {
	return []string{"--from", from, "--work", work, "--server", "https://" + srv.addr,
		"--cert", srv.devFile("capture.pem"), "--key", srv.devFile("capture-key.pem"), "--ca", srv.devFile("ca.pem")}
}

// journalDone counts the journal's finished files (readable while an
// import writes it: WAL).
func journalDone(t *testing.T, work string) int {
	t.Helper()
	db, err := sqlitedb.Open(context.Background(), filepath.Join(work, "journal.db"))
	if err != nil {
		return 0
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM files`).Scan(&n); err != nil {
		return 0
	}
	return n
}

var summaryRe = regexp.MustCompile(`rows (\d+): imported (\d+), duplicate (\d+), deleted (\d+), rejected (\d+); unlisted files (\d+); failed now (\d+)`)

// The acceptance test: a generated legacy tree of 5,000 short
// files (WAV and MP3, corrupt ones, duplicates, files without a manifest
// row, rows naming missing files or a file twice, phone numbers in the
// file names) imports into a running server with exact counts, through a
// kill -9 of the importer midway and a re-run; verification proves every
// file on both sites, the source is removed only where verified, the signed
// report checks, and no phone number from a file name is anywhere in the
// data directory or the logs.
func TestImportLegacyTree(t *testing.T) {
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	logPath := filepath.Join(root, "server.log")
	srv := startServer(t, dataDir, logPath)
	before := int(statusJSON(t, dataDir)["recordings"].(float64))

	src := filepath.Join(root, "legacy")
	tree, err := legacytree.Generate(legacytree.Spec{Dir: src, Files: 5000, Corrupt: 150, Duplicates: 200, BadPatient: 50,
		Unlisted: 100, MissingRows: 20, TwiceRows: 10, MP3Share: 40, Seed: 2019,
		CareProvider: providerOne, CareUnit: unitA, Staff: hsaNurseA})
	if err != nil {
		t.Fatal(err)
	}
	if tree.Imported != 4500 || tree.Rejected != 230 || tree.Rows != 4930 {
		t.Fatalf("generator: %+v", tree)
	}
	work := filepath.Join(root, "work")
	args := append([]string{"import", "--manifest", tree.Manifest, "--jobs", "8"}, importArgs(srv, src, work)...)
	importLog := filepath.Join(root, "import.log")
	logf, err := os.Create(importLog)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()

	// First run: killed with SIGKILL once a third of the files are done.
	first := exec.Command(binPath, args...)
	first.Stdout, first.Stderr = logf, logf
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for journalDone(t, work) < 1500 {
		if time.Now().After(deadline) {
			first.Process.Kill()
			t.Fatalf("the first run did not reach 1500 files in 3 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	killedAt := journalDone(t, work)
	if killedAt >= tree.Rows {
		t.Fatalf("the import finished (%d) before the kill; the test shows nothing", killedAt)
	}
	stored := int(statusJSON(t, dataDir)["recordings"].(float64)) - before
	t.Logf("killed with %d journal entries, %d recordings stored", killedAt, stored)

	// Second run: picks up where the first stopped.
	second := exec.Command(binPath, args...)
	var out bytes.Buffer
	second.Stdout, second.Stderr = &out, logf
	if err := second.Run(); err != nil {
		t.Fatalf("re-run: %v\n%s", err, out.String())
	}
	m := summaryRe.FindStringSubmatch(out.String())
	want := fmt.Sprintf("rows %d: imported %d, duplicate %d, deleted 0, rejected %d; unlisted files %d; failed now 0",
		tree.Rows, tree.Imported, tree.Duplicates, tree.Rejected, tree.Unlisted)
	if m == nil || m[0] != want {
		t.Fatalf("summary:\n%s\nwant %s", out.String(), want)
	}
	// Exactly one recording per distinct good file: none twice, none missing.
	if got := int(statusJSON(t, dataDir)["recordings"].(float64)) - before; got != tree.Imported {
		t.Fatalf("the archive holds %d new recordings, want %d", got, tree.Imported)
	}

	// The reject report: one line per rejected or unlisted file, with reasons.
	rejects, err := os.ReadFile(filepath.Join(work, "rejects.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(rejects)).ReadAll()
	if err != nil || len(recs) != 1+tree.Rejected+tree.Unlisted {
		t.Fatalf("rejects.csv: %d lines (%v), want %d", len(recs), err, 1+tree.Rejected+tree.Unlisted)
	}
	reasons := map[string]int{}
	for _, r := range recs[1:] {
		reasons[r[2]]++
	}
	wantReasons := map[string]int{
		"no manifest row": 100, "file missing": 20, "file listed twice": 10,
		"patient: not a valid personnummer or samordningsnummer: check digit does not match": 50,
	}
	corrupt := 0
	for r, n := range reasons {
		switch {
		case strings.HasPrefix(r, "audio: "):
			corrupt += n
		case strings.HasPrefix(r, "file listed twice"):
			wantReasons["file listed twice"] -= n
		default:
			wantReasons[r] -= n
		}
	}
	for r, n := range wantReasons {
		if n != 0 {
			t.Errorf("reject reason %q: off by %d (%v)", r, -n, reasons)
		}
	}
	if corrupt != 150 {
		t.Errorf("%d audio rejects, want 150 (%v)", corrupt, reasons)
	}

	// A third run changes nothing.
	third := exec.Command(binPath, args...)
	out.Reset()
	third.Stdout, third.Stderr = &out, logf
	if err := third.Run(); err != nil || !strings.Contains(out.String(), want) {
		t.Fatalf("third run: %v\n%s", err, out.String())
	}
	if got := int(statusJSON(t, dataDir)["recordings"].(float64)) - before; got != tree.Imported {
		t.Fatalf("after a third run %d new recordings", got)
	}

	// One good file is damaged on site B: its verification fails and its
	// source stays; every other file is verified and removed.
	ids := journalIDs(t, work)
	victim := ids[tree.Good[7]]
	flipByte(t, blobPath(dataDir, "b", victim), 200)
	verify := exec.Command(binPath, append([]string{"import", "verify", "--remove-source"}, importArgs(srv, src, work)...)...)
	out.Reset()
	verify.Stdout, verify.Stderr = &out, logf
	err = verify.Run()
	d := dupsOf(ids, victim)
	wantVerify := fmt.Sprintf("verified %d files (%d recordings) on both sites, %d failed, %d source files removed",
		tree.Imported+tree.Duplicates-1-d, tree.Imported-1, 1+d, tree.Imported+tree.Duplicates-1-d)
	if err == nil || !strings.Contains(out.String(), wantVerify) {
		t.Fatalf("verify with one damaged copy: %v\n%s\nwant %s", err, out.String(), wantVerify)
	}
	if _, err := os.Stat(filepath.Join(src, tree.Good[7])); err != nil {
		t.Fatalf("the unverified source file was removed: %v", err)
	}
	left := sourceFiles(t, src)
	// Left: the corrupt, bad-patient and unlisted files, and the files of the damaged recording.
	if want := 150 + 50 + 100 + 1 + d; len(left) != want {
		t.Fatalf("%d source files left, want %d", len(left), want)
	}

	// The signed report checks; a changed byte does not.
	report := filepath.Join(work, "migration-report.json")
	chk := cli(t, true, "import", "check-report", "--ca", srv.devFile("ca.pem"), report)
	if !strings.Contains(chk, "report signed by SE9999990001-CAP1") {
		t.Fatalf("check-report: %s", chk)
	}
	var rep map[string]any
	b, _ := os.ReadFile(report)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	files := rep["files"].(map[string]any)
	if files["imported"].(float64) != 4500 || files["duplicate"].(float64) != 200 || files["rejected"].(float64) != 230 ||
		files["unlisted"].(float64) != 100 || files["seen"].(float64) != 5030 {
		t.Fatalf("report files: %v", files)
	}
	os.WriteFile(report, bytes.Replace(b, []byte(`"imported": 4500`), []byte(`"imported": 4501`), 1), 0o644)
	if out := cli(t, false, "import", "check-report", "--ca", srv.devFile("ca.pem"), report); !strings.Contains(out, "does not verify") {
		t.Fatalf("a changed report: %s", out)
	}

	// Every verification is in the audit log.
	verifies := 0
	for _, e := range auditEvents(t, dataDir) {
		if e["Action"] == "verify.done" {
			verifies++
		}
	}
	if verifies != tree.Imported+tree.Duplicates {
		t.Errorf("%d verify.done events, want %d", verifies, tree.Imported+tree.Duplicates)
	}

	// No phone number of a file name, in any form, in the data directory or
	// in the server's or the importer's logs.
	srv.stop()
	var forms [][]byte
	for _, p := range tree.Phones {
		forms = append(forms, []byte(p), []byte("+46"+p[1:]), []byte("46"+p[1:]), []byte(p[1:]))
	}
	scan := []string{logPath, importLog}
	filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			scan = append(scan, p)
		}
		return nil
	})
	for _, p := range scan {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range forms {
			if bytes.Contains(b, f) {
				t.Errorf("%s holds phone number %s", p, f)
			}
		}
	}
}

// journalIDs maps each imported or linked source path to its recording.
func journalIDs(t *testing.T, work string) map[string]string {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(work, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT path, recording_id FROM files WHERE outcome IN ('imported', 'duplicate')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var p, id string
		rows.Scan(&p, &id)
		out[p] = id
	}
	return out
}

// dupsOf counts the linked duplicates of recording id.
func dupsOf(ids map[string]string, id string) int {
	n := -1
	for _, v := range ids {
		if v == id {
			n++
		}
	}
	return n
}

func sourceFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// Locally against the data directory, the same code path: a store whose
// metadata is only in the file names (a mapping with a file pattern, no
// manifest), then a JSON Lines manifest; the archive's own checks answer
// as over HTTP (a source the archive holds already is linked, not stored).
func TestImportLocalWithMapping(t *testing.T) {
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	srv := startServer(t, dataDir, filepath.Join(root, "server.log"))
	srv.stop() // creates the dev setup; the import runs without a server
	before := int(statusJSON(t, dataDir)["recordings"].(float64))

	src := filepath.Join(root, "legacy")
	tree, err := legacytree.Generate(legacytree.Spec{Dir: src, Files: 40, Corrupt: 3, Duplicates: 2, MP3Share: 50, Seed: 7,
		CareProvider: providerOne, CareUnit: unitA, Staff: hsaNurseA})
	if err != nil {
		t.Fatal(err)
	}
	mapping := filepath.Join(root, "mapping.json")
	os.WriteFile(mapping, []byte(`{
  "file_pattern": "^(?P<caller_number>0[0-9]+)_(?P<started_at>[0-9]{8}-[0-9]{6})_[0-9]+\\.(wav|mp3)$",
  "time_layout": "20060102-150405",
  "time_zone": "UTC",
  "duration_from_audio": true,
  "defaults": {"care_provider": "`+providerOne+`", "care_unit": "`+unitA+`", "staff": "`+hsaNurseA+`"}
}`), 0o644)
	work := filepath.Join(root, "work")
	out := cli(t, true, "import", "--data", dataDir, "--from", src, "--mapping", mapping, "--work", work, "--verify")
	// 40 files: 35 good, 2 duplicates, 3 corrupt; no manifest, so none unlisted.
	if !strings.Contains(out, "rows 40: imported 35, duplicate 2, deleted 0, rejected 3; unlisted files 0; failed now 0") ||
		!strings.Contains(out, "verified 37 files (35 recordings) on both sites, 0 failed, 0 source files removed") {
		t.Fatalf("local import:\n%s", out)
	}
	if got := int(statusJSON(t, dataDir)["recordings"].(float64)) - before; got != 35 {
		t.Fatalf("%d recordings stored, want 35", got)
	}
	// The call ID, without a manifest, comes from the file's digest, not its name.
	for _, e := range auditEvents(t, dataDir) {
		if d, _ := e["Detail"].(string); strings.Contains(d, "070174") {
			t.Fatalf("a phone number in the audit detail: %v", e)
		}
	}

	// The same files through a JSON Lines manifest in a fresh work
	// directory: the archive recognises every source it holds and links it.
	jl := filepath.Join(root, "manifest.jsonl")
	var b strings.Builder
	for i, rel := range tree.Good {
		fmt.Fprintf(&b, `{"file": %q, "call_id": "jl-%d", "started_at": "2021-03-04T10:00:00Z", "ended_at": "2021-03-04T10:05:00Z", "staff": [%q], "care_provider": %q, "care_unit": %q}`+"\n",
			rel, i, hsaNurseA, providerOne, unitA)
	}
	b.WriteString(`{"file": "x.wav", "patient": 201701102384}` + "\n") // a number, not a string
	os.WriteFile(jl, []byte(b.String()), 0o644)
	out = cli(t, true, "import", "--data", dataDir, "--from", src, "--manifest", jl, "--work", filepath.Join(root, "work2"))
	if !strings.Contains(out, "rows 36: imported 35, duplicate 0, deleted 0, rejected 1; unlisted files 5;") {
		t.Fatalf("JSON Lines import:\n%s", out)
	}
	if got := int(statusJSON(t, dataDir)["recordings"].(float64)) - before; got != 35 {
		t.Fatalf("after the second import %d recordings, want still 35", got)
	}
	rej, _ := os.ReadFile(filepath.Join(root, "work2", "rejects.csv"))
	if !strings.Contains(string(rej), "36,x.wav,manifest row: patient: not a string") {
		t.Fatalf("rejects:\n%s", rej)
	}
}

// The two API additions the importer relies on: source_sha256 on upload
// (checked, stored once, "deleted" after an IVO deletion) and the verify
// route (capture role only, match or mismatch per site, audited).
func TestSourceDigestAndVerifyAPI(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, filepath.Join(t.TempDir(), "serve.log"))
	wav := noiseWAV(t, 4242, 1)
	sum := sha256.Sum256(wav)
	digest := hex.EncodeToString(sum[:])
	withSource := func(d string) []byte {
		m := meta(testPatient, "", unitA)
		delete(m, "caller_number")
		m["source_sha256"] = d
		return mustJSON(t, m)
	}
	count := func() int { return int(statusJSON(t, dataDir)["recordings"].(float64)) }
	n0 := count()

	wantStatus(t, "digest of other audio", srv.upload("capture", withSource(strings.Repeat("0", 64)), wav), 400, `"field": "source_sha256"`)
	wantStatus(t, "malformed digest", srv.upload("capture", withSource("ABC"), wav), 400, `"field": "source_sha256"`)
	if count() != n0 {
		t.Fatal("a refused upload stored something")
	}
	r := srv.upload("capture", withSource(digest), wav)
	wantStatus(t, "first upload", r, 201, `"id"`)
	id := r.json(t)["id"].(string)
	r = srv.upload("capture", withSource(digest), wav)
	wantStatus(t, "same source again", r, 200, `"duplicate": true`)
	if r.json(t)["id"] != id || r.header.Get("Location") != "/v1/recordings/"+id || count() != n0+1 {
		t.Fatalf("second upload: %s (Location %q), %d recordings", r, r.header.Get("Location"), count()-n0)
	}

	verify := func(who, rid, d string) response {
		return srv.post(who, "/v1/recordings/"+rid+"/verify", map[string]string{"sha256": d})
	}
	sites := func(what string, r response, a, b string) {
		t.Helper()
		wantStatus(t, what, r, 200, "")
		if s := r.json(t)["sites"].(map[string]any); len(s) != 2 || s["a"] != a || s["b"] != b {
			t.Fatalf("%s: %s, want a=%s b=%s", what, r, a, b)
		}
	}
	sites("verify", verify("capture", id, digest), "match", "match")
	sites("verify other digest", verify("capture", id, strings.Repeat("1", 64)), "mismatch", "mismatch")
	wantStatus(t, "nurse verifies", verify("nurse", id, digest), 403, "role-not-permitted")
	wantStatus(t, "records officer verifies", verify("records", id, digest), 403, "role-not-permitted")
	wantStatus(t, "unknown recording", verify("capture", strings.Repeat("ab", 16), digest), 404, "no such recording")
	wantStatus(t, "bad digest", verify("capture", id, "xyz"), 400, `"field": "sha256"`)
	os.Remove(blobPath(dataDir, "b", id))
	sites("one copy gone", verify("capture", id, digest), "match", "missing")

	// After an IVO deletion the same source is refused, not stored again.
	doc := sha256.Sum256([]byte("IVO beslut (synthetic)"))
	r = srv.post("records", "/v1/deletions", map[string]any{"case_number": "3.5.1-0815/2026", "decided_on": "2026-11-02",
		"document_sha256": hex.EncodeToString(doc[:]), "recordings": []string{id}})
	wantStatus(t, "register", r, 201, "registered")
	wantStatus(t, "approve", srv.post("records-2", fmt.Sprintf("/v1/deletions/%d/approve", int64(r.json(t)["id"].(float64))), nil), 200, "")
	wantStatus(t, "deleted source again", srv.upload("capture", withSource(digest), wav), 409, `"reason": "source-deleted"`)
	if count() != n0 {
		t.Fatalf("%d recordings after deletion and a re-upload, want %d", count(), n0)
	}
	wantStatus(t, "verify deleted", verify("capture", id, digest), 404, "no such recording")

	var verifies, dups int
	for _, e := range auditEvents(t, dataDir) {
		switch {
		case e["Action"] == "verify" && e["Purpose"] == "migration-verification":
			verifies++
		case e["Action"] == "ingest.aborted" && (e["Reason"] == "duplicate-source" || e["Reason"] == "source-deleted"):
			dups++
		}
	}
	if verifies != 8 || dups != 2 {
		t.Fatalf("audit: %d verify events (want 8: allowed and denied), %d duplicate/deleted-source events (want 2)", verifies, dups)
	}
}
