package main

import (
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKillDuringUpload kills the server with SIGKILL while an upload is
// half-way through and shows that nothing half-done is left looking done:
// no recording becomes visible, no plaintext is on disk at any point, and
// the server starts again cleanly.
func TestKillDuringUpload(t *testing.T) {
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	logPath := filepath.Join(root, "server.log")
	srv := startServer(t, dataDir, logPath)
	recordingsBefore := statusJSON(t, dataDir)["recordings"]

	wav := noiseWAV(t, 7, 60) // 1.9 MB
	if e2eStack == "scaleout" {
		// Past the S3 part size (8 MiB) in its first half, so that parts
		// are in the stores when the server dies.
		wav = noiseWAV(t, 7, 600) // 19 MB
	}
	scan := newLeakScan()
	scan.addAudio("interrupted upload", wav)
	scan.addNeedles(testPatient, testCaller)

	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	req, _ := http.NewRequest("POST", srv.url("/v1/recordings"), pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	done := make(chan error, 1)
	go func() {
		resp, err := srv.client("capture").Do(req)
		if err == nil {
			resp.Body.Close()
			err = &unexpectedAnswer{resp.StatusCode}
		}
		done <- err
	}()
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="metadata"`)
	p, _ := mw.CreatePart(h)
	p.Write(mustJSON(t, meta(testPatient, testCaller, unitA)))
	h = textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="audio"; filename="a.wav"`)
	p, _ = mw.CreatePart(h)
	if _, err := p.Write(wav[:len(wav)/2]); err != nil {
		t.Fatal(err)
	}

	// Wait until the server is writing the (encrypted) blob to both sites.
	deadline := time.Now().Add(30 * time.Second)
	for {
		tmp := incompleteUploads(t, dataDir)
		if tmp == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload never reached the sites; files: %v", siteFiles(t, dataDir))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Mid-upload, the sites hold ciphertext only.
	finds, _ := scan.find(t, dataDir, nil, nil)
	for _, f := range finds {
		t.Errorf("mid-upload: %s", f)
	}

	srv.kill()
	pw.CloseWithError(io.ErrClosedPipe)
	if err := <-done; err == nil {
		t.Fatal("the interrupted upload got an answer")
	} else if ua, ok := err.(*unexpectedAnswer); ok {
		t.Fatalf("the interrupted upload got HTTP %d", ua.status)
	}
	for i, dir := range storageDirs(dataDir) {
		extra := []string{logPath}
		if i > 0 {
			extra = nil
		}
		finds, _ = scan.find(t, dir, extra, nil)
		for _, f := range finds {
			t.Errorf("after SIGKILL: %s", f)
		}
	}

	// Restart: clean start, nothing new visible, leftover temp files gone.
	srv2 := startServer(t, dataDir, logPath)
	if got := statusJSON(t, dataDir)["recordings"]; got != recordingsBefore {
		t.Fatalf("recordings %v after the crash, want %v", got, recordingsBefore)
	}
	r := srv2.do("nurse", "GET", "/v1/recordings?patient="+testPatient, nil, "X-Purpose", "care")
	if r.status != 200 || len(r.json(t)["recordings"].([]any)) != 0 {
		t.Fatalf("search after crash: %s", r)
	}
	// Directory sites: serve removed the temp files at start. S3 sites:
	// the parts of the killed multipart upload stay (ciphertext, checked
	// above) until serve aborts uploads older than a day at a start (or
	// the bucket's lifecycle rule does); they are not a blob.
	if n := incompleteUploads(t, dataDir); n != 0 && e2eStack != "scaleout" {
		t.Errorf("%d leftover temp files after restart", n)
	}
	// The restarted server works: a new upload succeeds and plays back.
	small := noiseWAV(t, 8, 2)
	r = srv2.upload("capture", mustJSON(t, meta(testPatient, testCaller, unitA)), small)
	if r.status != 201 {
		t.Fatalf("upload after restart: %s", r)
	}
	id := r.json(t)["id"].(string)
	r = srv2.do("nurse", "GET", "/v1/recordings/"+id+"/audio", nil, "X-Purpose", "care")
	if r.status != 200 || string(r.body) != string(small) {
		t.Fatalf("playback after restart: %d", r.status)
	}
	out, err := exec.Command(binPath, "audit", "--data", dataDir, "verify").CombinedOutput()
	if err != nil {
		t.Fatalf("audit verify after crash: %v %s", err, out)
	}
}

type unexpectedAnswer struct{ status int }

func (u *unexpectedAnswer) Error() string { return "unexpected answer" }

// incompleteUploads counts uploads in progress on both sites: temp files of
// directory sites, or multipart uploads in the S3 stores.
func incompleteUploads(t *testing.T, dataDir string) int {
	t.Helper()
	n := 0
	for _, site := range []string{"a", "b"} {
		if srv, bucket := s3Site(t, dataDir, site); srv != nil {
			for u := range s3Client(t, srv).ListIncompleteUploads(context.Background(), bucket, "", true) {
				if u.Err != nil {
					t.Fatal(u.Err)
				}
				n++
			}
			continue
		}
		filepath.WalkDir(siteBlobDir(t, dataDir, site), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), ".tmp-") {
				n++
			}
			return nil
		})
	}
	return n
}
