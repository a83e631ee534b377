package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"callvault/internal/audit"
	_ "callvault/internal/sqlitedb" // the SQLite driver, for locking the database
)

// httpTiles is a tlog.TileReader that fetches C2SP tlog-tiles from the
// server as who, as an outside verifier would.
type httpTiles struct {
	s   *server
	who string
}

func (h httpTiles) Height() int { return 8 }
func (h httpTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		r := h.s.do(h.who, "GET", "/v1/audit/log/tile/"+strconv.Itoa(t.L)+"/"+audit.TilePath(t.N, t.W), nil)
		if r.status != http.StatusOK {
			return nil, fmt.Errorf("tile %d/%d.p/%d: %s", t.L, t.N, t.W, r)
		}
		out[i] = r.body
	}
	return out, nil
}
func (httpTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// The audit log's read API, used as an outside verifier uses it: the
// checkpoint verifies with the published keys; proofs built from the
// served tiles verify with an outside RFC 6962 library, for inclusion and
// for consistency with a witness's earlier checkpoint; only auditors and
// witnesses may read it, and their reads are logged.
func TestAuditLogReadAPI(t *testing.T) {
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	srv := startServer(t, dataDir, filepath.Join(root, "server.log"), "--checkpoint-entries", "8", "--checkpoint-interval", "500ms")
	witnessDir := filepath.Join(dataDir, "dev", "witness")

	waitCheckpoint := func(atLeast int64) []byte {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			b, err := os.ReadFile(filepath.Join(witnessDir, "checkpoint"))
			if err == nil {
				lines := strings.SplitN(string(b), "\n", 3)
				if n, _ := strconv.ParseInt(lines[1], 10, 64); n >= atLeast {
					return b
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint of size >= %d in the witness outbox after 20s", atLeast)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	first := waitCheckpoint(1) // the demo recordings' ingests
	for i := range 3 {
		r := srv.upload("capture", mustJSON(t, meta(testPatient, testCaller, unitA)), noiseWAV(t, uint64(80+i), 1))
		if r.status != http.StatusCreated {
			t.Fatalf("upload: %s", r)
		}
		id := r.json(t)["id"].(string)
		if r := srv.do("nurse", "GET", "/v1/recordings/"+id+"/audio", nil, "X-Purpose", "care", "Range", "bytes=0-99"); r.status != http.StatusPartialContent {
			t.Fatalf("play: %s", r)
		}
	}

	// Who may read the log.
	for _, who := range []string{"nurse", "nurse-b", "capture", "admin"} {
		if r := srv.do(who, "GET", "/v1/audit/log/checkpoint", nil); r.status != http.StatusForbidden {
			t.Errorf("%s reads the checkpoint: %s", who, r)
		}
		if r := srv.do(who, "GET", "/v1/audit/log/tile/0/000.p/1", nil); r.status != http.StatusForbidden {
			t.Errorf("%s reads a tile: %s", who, r)
		}
	}
	if r := srv.do("witness", "GET", "/v1/audit/log/checkpoint", nil); r.status != http.StatusOK {
		t.Fatalf("witness reads the checkpoint: %s", r)
	}
	if r := srv.do("witness", "GET", "/v1/recordings?patient="+testPatient, nil, "X-Purpose", "care"); r.status != http.StatusForbidden {
		t.Errorf("witness searches recordings: %s", r)
	}

	// The published verifier keys: served, and in DATA/keys/audit-log.vkey.
	keysResp := srv.do("auditor", "GET", "/v1/audit/log/keys", nil)
	vkeyFile, err := os.ReadFile(filepath.Join(dataDir, "keys", "audit-log.vkey"))
	if err != nil || keysResp.status != http.StatusOK || !bytes.Equal(keysResp.body, vkeyFile) {
		t.Fatalf("keys: %s, file %q (%v)", keysResp, vkeyFile, err)
	}
	var vs []note.Verifier
	for _, vk := range strings.Fields(string(vkeyFile)) {
		v, err := note.NewVerifier(vk)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	origin := vs[0].Name()

	latestText := waitCheckpoint(int64(8)) // the uploads and plays crossed 8 entries
	cpResp := srv.do("auditor", "GET", "/v1/audit/log/checkpoint", nil)
	if cpResp.status != http.StatusOK || cpResp.header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("checkpoint: %s", cpResp)
	}
	big, err := audit.ParseCheckpoint(cpResp.body, origin, note.VerifierList(vs...))
	if err != nil {
		t.Fatalf("served checkpoint does not verify with the published keys: %v\n%s", err, cpResp.body)
	}
	small, err := audit.ParseCheckpoint(first, origin, note.VerifierList(vs...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.ParseCheckpoint(latestText, origin, note.VerifierList(vs...)); err != nil {
		t.Fatal(err)
	}
	if small.Size >= big.Size {
		t.Fatalf("checkpoint sizes %d, %d", small.Size, big.Size)
	}

	tiles := httpTiles{s: srv, who: "auditor"}
	hr := tlog.TileHashReader(tlog.Tree{N: big.Size, Hash: big.Root}, tiles)
	sawPlay := false
	for i := int64(0); i < big.Size; i++ {
		p, err := tlog.ProveRecord(big.Size, i, hr)
		if err != nil {
			t.Fatalf("proof of %d from served tiles: %v", i, err)
		}
		w := min(big.Size, (i/256+1)*256) - i/256*256
		r := srv.do("witness", "GET", "/v1/audit/log/tile/entries/"+audit.TilePath(i/256, int(w)), nil)
		if r.status != http.StatusOK {
			t.Fatalf("entry bundle: %s", r)
		}
		entry := nthEntry(t, r.body, int(i%256))
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), uint64(big.Size), rfc6962.DefaultHasher.HashLeaf(entry), hashesOf(p), big.Root[:]); err != nil {
			t.Fatalf("inclusion of entry %d: %v", i, err)
		}
		if bytes.Contains(entry, []byte(`"action":"play"`)) {
			sawPlay = true
		}
		for _, secret := range []string{testPatient, "170110", testCaller} {
			if bytes.Contains(entry, []byte(secret)) {
				t.Fatalf("entry %d shows personal data to verifiers", i)
			}
		}
	}
	if !sawPlay {
		t.Fatal("no play entry among the proven entries")
	}
	tp, err := tlog.ProveTree(big.Size, small.Size, hr)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(small.Size), uint64(big.Size), hashesOf(tp), small.Root[:], big.Root[:]); err != nil {
		t.Fatalf("the witness's first checkpoint is not consistent with the latest: %v", err)
	}
	if r := srv.do("auditor", "GET", "/v1/audit/log/tile/0/x001/x002/x003/x004/x005/x006/x007/008", nil); r.status != http.StatusBadRequest {
		t.Errorf("malformed tile path: %s", r)
	}
	if r := srv.do("auditor", "GET", "/v1/audit/log/tile/entries/x999/000", nil); r.status != http.StatusNotFound {
		t.Errorf("tile past the end: %s", r)
	}

	// `audit prove` agrees with the outside library too.
	out, err := exec.Command(binPath, "audit", "--data", dataDir, "prove", "--index", "3").Output()
	if err != nil {
		t.Fatalf("audit prove: %v", err)
	}
	var pj struct {
		Index, Size           int64
		Entry, LeafHash, Root string `json:",omitempty"`
		Proof                 []string
	}
	if err := json.Unmarshal(out, &pj); err != nil {
		t.Fatal(err)
	}
	entry, _ := base64.StdEncoding.DecodeString(pj.Entry)
	rootHash, _ := base64.StdEncoding.DecodeString(pj.Root)
	var ph [][]byte
	for _, h := range pj.Proof {
		b, _ := base64.StdEncoding.DecodeString(h)
		ph = append(ph, b)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(pj.Index), uint64(pj.Size), rfc6962.DefaultHasher.HashLeaf(entry), ph, rootHash); err != nil {
		t.Fatalf("audit prove output: %v\n%s", err, out)
	}

	// The log verifies, also against the witness's copy, and the
	// auditors' and witnesses' reads are in it, allowed and denied.
	srv.stop()
	out, err = exec.Command(binPath, "audit", "--data", dataDir, "verify", "--since-checkpoint", filepath.Join(witnessDir, "checkpoint")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "and the given checkpoint") {
		t.Fatalf("audit verify: %v %s", err, out)
	}
	var reads []string
	for _, e := range auditEvents(t, dataDir) {
		if e["Action"] == "audit.read-log" && e["User"] != "" {
			reads = append(reads, fmt.Sprintf("%v/%v", e["User"], e["Outcome"]))
		}
	}
	for _, want := range []string{"SE9999990001-AUD1/allowed", "SE9999990001-WIT1/allowed", "SE9999990001-N0A1/denied", "SE9999990001-ADM1/denied"} {
		if !slices.Contains(reads, want) {
			t.Errorf("no audit.read-log event %s among %v", want, reads)
		}
	}
}

func nthEntry(t *testing.T, b []byte, k int) []byte {
	t.Helper()
	for j := 0; ; j++ {
		if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b)) {
			t.Fatalf("entry bundle ends before entry %d", k)
		}
		n := int(binary.BigEndian.Uint16(b))
		if j == k {
			return b[2 : 2+n]
		}
		b = b[2+n:]
	}
}

func hashesOf[T ~[]tlog.Hash](p T) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// When the audit log cannot be written (here: another process holds the
// database's write lock), a content request fails closed: 503 and no audio,
// once the database's busy timeout (10 s) has passed. (Metadata reads and
// searches take the same path, archive.record; internal/archive tests them
// with a log that fails at once.)
func TestAuditUnavailableFailsClosed(t *testing.T) {
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	srv := startServer(t, dataDir, filepath.Join(root, "server.log"))
	r := srv.upload("capture", mustJSON(t, meta(testPatient, testCaller, unitA)), noiseWAV(t, 90, 1))
	if r.status != http.StatusCreated {
		t.Fatalf("upload: %s", r)
	}
	id := r.json(t)["id"].(string)

	release := lockAuditLog(t, dataDir)
	for _, c := range []struct{ what, path string }{
		{"play", "/v1/recordings/" + id + "/audio"},
	} {
		r := srv.do("nurse", "GET", c.path, nil, "X-Purpose", "care")
		if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "the audit log cannot be written") {
			t.Errorf("%s with the log locked: %s", c.what, r)
		}
		if bytes.Contains(r.body, []byte("RIFF")) || bytes.Contains(r.body, []byte(id[:8])) {
			t.Errorf("%s with the log locked served content", c.what)
		}
	}
	release()
	if r := srv.do("nurse", "GET", "/v1/recordings/"+id+"/audio", nil, "X-Purpose", "care"); r.status != http.StatusOK {
		t.Fatalf("play after the lock is gone: %s", r)
	}
}

// Rotating the checkpoint key with the CLI: after a restart checkpoints
// carry both signatures; after the old key is retired only the new one,
// and `audit verify` still accepts every stored checkpoint. Both changes
// are in the log.
func TestAuditKeyRotationCLI(t *testing.T) {
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	logPath := filepath.Join(root, "server.log")
	srv := startServer(t, dataDir, logPath, "--checkpoint-interval", "200ms")
	cli := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(binPath, append([]string{"audit", "--data", dataDir}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("audit %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	sigs := func() int {
		t.Helper()
		r := srv.do("auditor", "GET", "/v1/audit/log/checkpoint", nil)
		switch r.status {
		case http.StatusOK:
			return strings.Count(string(r.body), "\n— ")
		case http.StatusNotFound:
			// A fresh server has not signed its first checkpoint yet.
			return 0
		}
		t.Fatalf("checkpoint: %s", r)
		return 0
	}
	waitSigs := func(want int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for sigs() != want {
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint with %d signatures in 20s", want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitSigs(1)
	oldID := strings.Fields(strings.Split(cli("key", "list"), "\n")[1])[1]
	srv.stop()
	cli("key", "rotate")
	list := cli("key", "list")
	if strings.Count(list, "\nkey ") != 2 {
		t.Fatalf("after rotate:\n%s", list)
	}
	srv = startServer(t, dataDir, logPath, "--checkpoint-interval", "200ms")
	waitSigs(2)
	srv.stop()
	cli("key", "retire", "--key", oldID)
	list = cli("key", "list")
	if strings.Count(list, "\nkey ") != 1 || !strings.Contains(list, "\nretired "+oldID+" ") {
		t.Fatalf("after retire:\n%s", list)
	}
	srv = startServer(t, dataDir, logPath, "--checkpoint-interval", "200ms")
	waitSigs(1)
	srv.stop()
	if out := cli("verify"); !strings.HasPrefix(out, "audit log ok: ") {
		t.Fatalf("verify after the rollover: %s", out)
	}
	var changes []string
	for _, e := range auditEvents(t, dataDir) {
		if a, _ := e["Action"].(string); strings.HasPrefix(a, "keys.") {
			changes = append(changes, a+" "+e["Detail"].(string))
		}
	}
	if want := []string{"keys.audit-rotate rotate", "keys.audit-retire retire key=" + oldID}; !slices.Equal(changes, want) {
		t.Fatalf("key changes in the log %v, want %v", changes, want)
	}
}
