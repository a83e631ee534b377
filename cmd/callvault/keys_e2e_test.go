package main

import (
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func cli(t *testing.T, wantOK bool, args ...string) string {
	t.Helper()
	out, err := exec.Command(binPath, args...).CombinedOutput()
	if (err == nil) != wantOK {
		t.Fatalf("callvault %s: err %v (want ok: %v)\n%s", strings.Join(args, " "), err, wantOK, out)
	}
	return string(out)
}

type blobState struct {
	sum   [32]byte
	mtime time.Time
}

// blobStates records every blob file's digest and mtime on both sites.
func blobStates(t *testing.T, dataDir string) map[string]blobState {
	t.Helper()
	out := map[string]blobState{}
	for _, p := range siteFiles(t, dataDir) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(p)
		out[p] = blobState{sha256.Sum256(b), fi.ModTime()}
	}
	return out
}

// Rotate and rewrap under a running server: playback never fails, new
// recordings use the new epoch, no blob changes, and the old epoch's key
// can be destroyed once nothing uses it.
func TestKeyRotationWhileServing(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, filepath.Join(t.TempDir(), "serve.log"))
	audio := map[string][]byte{}
	var ids []string
	for i := range 12 {
		wav := noiseWAV(t, uint64(500+i), 1)
		r := srv.upload("capture", mustJSON(t, meta("201701102384", "", unitA)), wav)
		if r.status != 201 {
			t.Fatalf("upload: %v", r)
		}
		id := r.json(t)["id"].(string)
		ids = append(ids, id)
		audio[id] = wav
	}
	before := blobStates(t, dataDir)

	// Nurses keep listening throughout.
	stop := make(chan struct{})
	var plays, failures atomic.Int64
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := ids[i%len(ids)]
				r := srv.do("nurse", "GET", "/v1/recordings/"+id+"/audio", nil, "X-Purpose", "care")
				plays.Add(1)
				if r.status != 200 || !bytes.Equal(r.body, audio[id]) {
					failures.Add(1)
				}
			}
		}()
	}

	cli(t, false, "keys", "--data", dataDir, "destroy-epoch", "--epoch", "1") // current and in use
	out := cli(t, true, "keys", "--data", dataDir, "rotate")
	if !strings.Contains(out, "epoch 2 created") {
		t.Fatalf("rotate: %s", out)
	}
	out = cli(t, false, "keys", "--data", dataDir, "destroy-epoch", "--epoch", "1")
	if !strings.Contains(out, "still wrapped to epoch 1") {
		t.Fatalf("destroy before rewrap: %s", out)
	}
	// An interrupted rewrap (stopped after 5 rows) resumes where it stopped.
	out = cli(t, true, "keys", "--data", dataDir, "rewrap", "--batch", "2", "--limit", "5")
	if !strings.Contains(out, "rewrapped 5 of") {
		t.Fatalf("partial rewrap: %s", out)
	}
	out = cli(t, true, "keys", "--data", dataDir, "rewrap", "--batch", "4")
	if !strings.Contains(out, "epoch 1  ") || !strings.Contains(out, "recordings 0\n") {
		t.Fatalf("rewrap: %s", out)
	}
	// A recording made now is wrapped to epoch 2.
	time.Sleep(1100 * time.Millisecond) // serve rereads the keyring at most once a second
	r := srv.upload("capture", mustJSON(t, meta("201701102384", "", unitA)), noiseWAV(t, 599, 1))
	if r.status != 201 {
		t.Fatalf("upload after rotate: %v", r)
	}
	newID := r.json(t)["id"].(string)
	if e := catalogRow(t, dataDir, newID).KeyEpoch; e != 2 {
		t.Fatalf("new recording wrapped to epoch %d, want 2", e)
	}
	out = cli(t, true, "keys", "--data", dataDir, "destroy-epoch", "--epoch", "1")
	if !strings.Contains(out, "epoch 1 destroyed") {
		t.Fatalf("destroy: %s", out)
	}
	time.Sleep(1100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if plays.Load() < 10 || failures.Load() != 0 {
		t.Fatalf("playback during rotation: %d plays, %d failures", plays.Load(), failures.Load())
	}
	for _, id := range ids {
		if r := srv.do("nurse", "GET", "/v1/recordings/"+id+"/audio", nil, "X-Purpose", "care"); r.status != 200 || !bytes.Equal(r.body, audio[id]) {
			t.Fatalf("play %s after destroying epoch 1: %d", id, r.status)
		}
	}
	after := blobStates(t, dataDir)
	checked := 0
	for p, st := range before {
		if !isAudioBlob(p, ids) {
			continue // a recovery record: rewritten for the new epoch by design
		}
		checked++
		if after[p] != st {
			t.Errorf("blob %s changed (bytes or mtime)", p)
		}
	}
	if checked != 2*len(ids) {
		t.Fatalf("checked %d audio blobs, want %d", checked, 2*len(ids))
	}
	out = cli(t, true, "keys", "--data", dataDir, "list")
	if strings.Contains(out, "epoch 1") || !strings.Contains(out, "epoch 2") {
		t.Fatalf("list after destroy: %s", out)
	}
}

// Escrow: any 3 of 5 shares rebuild the keyring; 2 do not.
func TestKeyEscrow(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, filepath.Join(t.TempDir(), "serve.log"))
	srv.stop()
	shareDir := filepath.Join(t.TempDir(), "shares")
	cli(t, false, "keys", "--data", dataDir, "escrow", "--shares", "5", "--threshold", "1", "--out", shareDir)
	out := cli(t, true, "keys", "--data", dataDir, "escrow", "--shares", "5", "--threshold", "3", "--out", shareDir)
	files, _ := filepath.Glob(filepath.Join(shareDir, "*.txt"))
	if len(files) != 5 || !strings.Contains(out, "any 3 recover") {
		t.Fatalf("escrow: %d files\n%s", len(files), out)
	}
	recovered := filepath.Join(t.TempDir(), "keyring.age")
	out = cli(t, false, "keys", "--data", dataDir, "recover", "--out", recovered, files[0], files[3])
	if !strings.Contains(out, "not enough shares: have 2, need 3") {
		t.Fatalf("two shares: %s", out)
	}
	if _, err := os.Stat(recovered); !os.IsNotExist(err) {
		t.Fatal("two shares wrote a keyring")
	}
	out = cli(t, true, "keys", "--data", dataDir, "recover", "--out", recovered, files[1], files[4], files[2])
	if !strings.Contains(out, "recovered from 3 shares") {
		t.Fatalf("recover: %s", out)
	}
	// The recovered keyring replaces a lost one and the archive serves again.
	orig := filepath.Join(dataDir, "keys", "keyring.age")
	if err := os.Rename(recovered, orig); err != nil {
		t.Fatal(err)
	}
	srv = startServer(t, dataDir, filepath.Join(t.TempDir(), "serve2.log"))
	r := srv.do("nurse", "GET", "/v1/recordings?patient=191212121212", nil, "X-Purpose", "care")
	if r.status != 200 || !strings.Contains(string(r.body), `"id"`) {
		t.Fatalf("search with the recovered keyring: %v", r)
	}
	cli(t, true, "audit", "--data", dataDir, "verify")
}

// isAudioBlob reports whether site file p is the blob of one of ids.
func isAudioBlob(p string, ids []string) bool {
	for _, id := range ids {
		if b := filepath.Base(p); b == id+".blob" || b == id { // a directory site; an S3 object
			return true
		}
	}
	return false
}
