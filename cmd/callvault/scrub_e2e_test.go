package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// flipByte inverts one byte of file path at offset off.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

type scrubReport struct {
	Recordings int `json:"recordings"`
	Copies     int `json:"copies_checked"`
	Repaired   int `json:"repaired"`
	Lost       int `json:"lost"`
	Orphans    int `json:"orphans_removed"`
	Findings   []struct {
		RecordingID string `json:"recording_id"`
		Site        string `json:"site"`
		Problem     string `json:"problem"`
		Action      string `json:"action"`
	} `json:"findings"`
}

func runScrub(t *testing.T, dataDir string, wantErr bool) scrubReport {
	t.Helper()
	cmd := exec.Command(binPath, "scrub", "--data", dataDir, "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if (err != nil) != wantErr {
		t.Fatalf("scrub: err %v (want error: %v)\n%s\n%s", err, wantErr, out, stderr.Bytes())
	}
	var rep scrubReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("scrub report: %v\n%s", err, out)
	}
	return rep
}

func findings(rep scrubReport) []string {
	var out []string
	for _, f := range rep.Findings {
		out = append(out, f.RecordingID+" "+f.Site+" "+f.Problem+" "+strings.SplitN(f.Action, ":", 2)[0])
	}
	sort.Strings(out)
	return out
}

func TestScrubRepairsAndReports(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, filepath.Join(t.TempDir(), "serve.log"))
	var ids []string
	audio := map[string][]byte{}
	for i := range 4 {
		wav := noiseWAV(t, uint64(300+i), 3)
		r := srv.upload("capture", mustJSON(t, meta("201701102384", "", unitA)), wav)
		if r.status != 201 {
			t.Fatalf("upload: %v", r)
		}
		id := r.json(t)["id"].(string)
		ids = append(ids, id)
		audio[id] = wav
	}
	corruptA, missingB, lost, fine := ids[0], ids[1], ids[2], ids[3]
	total := int(statusJSON(t, dataDir)["recordings"].(float64)) // with the dev demo recordings
	goodB, _ := os.ReadFile(blobPath(dataDir, "b", corruptA))
	flipByte(t, blobPath(dataDir, "a", corruptA), 70000) // inside chunk 1
	if err := os.Remove(blobPath(dataDir, "b", missingB)); err != nil {
		t.Fatal(err)
	}
	flipByte(t, blobPath(dataDir, "a", lost), 100)
	flipByte(t, blobPath(dataDir, "b", lost), 200)
	// Two blobs no catalog row knows: one from a crash two days ago, one
	// from an ingest that may still be committing its row.
	orphan := func(age time.Duration) string {
		id := make([]byte, 16)
		rand.Read(id)
		name := hex.EncodeToString(id)
		plantBlob(t, dataDir, "a", name, bytes.Repeat([]byte{1}, 500), age)
		return name
	}
	oldOrphan, newOrphan := orphan(48*time.Hour), orphan(time.Minute)

	rep := runScrub(t, dataDir, true) // exits non-zero: a recording is lost
	want := []string{
		corruptA + " a digest repaired",
		missingB + " b missing repaired",
		lost + " a digest lost",
		lost + " b digest lost",
		oldOrphan + " a orphan removed",
	}
	sort.Strings(want)
	if got := findings(rep); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rep.Recordings != total || rep.Copies != 2*total || rep.Repaired != 2 || rep.Lost != 1 || rep.Orphans != 1 {
		t.Fatalf("report %+v", rep)
	}
	// Repaired copies are byte-identical to the good ones.
	if a, _ := os.ReadFile(blobPath(dataDir, "a", corruptA)); !bytes.Equal(a, goodB) {
		t.Fatal("site a's copy was not restored byte for byte")
	}
	a, _ := os.ReadFile(blobPath(dataDir, "a", missingB))
	if b, err := os.ReadFile(blobPath(dataDir, "b", missingB)); err != nil || !bytes.Equal(a, b) {
		t.Fatalf("site b's copy was not restored: %v", err)
	}
	if blobVisible(t, dataDir, "a", oldOrphan) {
		t.Fatal("old orphan still there")
	}
	if !blobVisible(t, dataDir, "a", newOrphan) {
		t.Fatal("a recent blob without a row was removed")
	}

	// Playback: repaired recordings play exactly; the lost one is refused,
	// not served with damage.
	for _, id := range []string{corruptA, missingB, fine} {
		r := srv.do("nurse", "GET", "/v1/recordings/"+id+"/audio", nil, "X-Purpose", "care")
		if r.status != 200 || !bytes.Equal(r.body, audio[id]) {
			t.Fatalf("play %s after scrub: %d, %d bytes", id, r.status, len(r.body))
		}
	}
	r := srv.do("nurse", "GET", "/v1/recordings/"+lost+"/audio", nil, "X-Purpose", "care")
	wantStatus(t, "play lost", r, 500, "recording damaged")

	// A second pass finds only what it could not fix.
	rep = runScrub(t, dataDir, true)
	if got := findings(rep); len(got) != 2 || rep.Repaired != 0 || rep.Orphans != 0 {
		t.Fatalf("second pass: %v %+v", got, rep)
	}
	var sawScrub bool
	for _, e := range auditEvents(t, dataDir) {
		if e["Action"] == "scrub" && strings.Contains(e["Detail"].(string), "repaired=2 lost=1 orphans=1") {
			sawScrub = true
		}
	}
	if !sawScrub {
		t.Fatal("the scrub summary is not in the audit log")
	}
}

// serve scrubs on a schedule and reports in its metrics.
func TestScheduledScrub(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, filepath.Join(t.TempDir(), "serve.log"), "--scrub-interval", "300ms")
	r := srv.upload("capture", mustJSON(t, meta("201701102384", "", unitA)), noiseWAV(t, 400, 1))
	if r.status != 201 {
		t.Fatalf("upload: %v", r)
	}
	id := r.json(t)["id"].(string)
	if err := os.Remove(blobPath(dataDir, "b", id)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, metrics := srv.opsGet("/metrics")
		if _, err := os.Stat(blobPath(dataDir, "b", id)); err == nil &&
			strings.Contains(metrics, `callvault_scrub_findings_total{result="repaired"} 1`) &&
			strings.Contains(metrics, "callvault_recordings_lost 0") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scheduled scrub did not restore the copy:\n%s", metrics)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
