package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"callvault/internal/archive"
	"callvault/internal/site/s3site/s3test"
)

// s3Client is a plain S3 client of srv with its root credentials: what an
// operator (or an intruder with the keys) could do to the store directly.
func s3Client(t *testing.T, srv *s3test.Server) *minio.Client {
	t.Helper()
	c, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Serve on two S3 sites in two S3 servers (serve --dev --site-a/--site-b):
// the buckets are made with Object Lock, the canary verifies both at start
// (metric and doctor), the audio is locked until its retention date and
// cannot be deleted or replaced in the store itself, the recovery record
// is not locked; one S3 server killed mid-run degrades ingest to one site
// and the backlog drains when it returns.
func TestS3Sites(t *testing.T) {
	ctx := t.Context()
	storeA, storeB := s3test.Start(t), s3test.Start(t)
	bucketA, bucketB := s3test.BucketName("dc1"), s3test.BucketName("dc2")
	dataDir := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "serve.log")
	srv := startServer(t, dataDir, logPath, "--repair-interval", "200ms",
		"--site-a", storeA.URL(bucketA), "--site-b", storeB.URL(bucketB))

	if _, body := srv.opsGet("/metrics"); !strings.Contains(body, "\ncallvault_site_worm{site=\"a\"} 1\n") ||
		!strings.Contains(body, "\ncallvault_site_worm{site=\"b\"} 1\n") {
		t.Fatalf("metrics do not show both sites verified as WORM:\n%s", grepLines(body, "worm"))
	}
	out, err := exec.Command(binPath, "doctor", "--data", dataDir, "--ops-listen", srv.opsAddr).CombinedOutput()
	for _, want := range []string{
		"sites.worm         site a: serve's canary found Object Lock enforced",
		"sites.worm         site b: serve's canary found Object Lock enforced",
		"sites.tls          site a is S3 over plain HTTP on loopback",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("doctor output lacks %q (err %v):\n%s", want, err, out)
		}
	}
	if strings.Contains(string(out), storeA.SecretKey) || strings.Contains(string(out), storeB.SecretKey) {
		t.Fatal("doctor prints an S3 secret key")
	}

	// One recording; its audio is locked on both stores until its
	// retention date, exactly.
	md := meta(testPatient, testCaller, unitA)
	wav := noiseWAV(t, 5, 2)
	r := srv.upload("capture", mustJSON(t, md), wav)
	if r.status != http.StatusCreated {
		t.Fatalf("upload: %s", r)
	}
	id := r.json(t)["id"].(string)
	ended, _ := time.Parse(time.RFC3339, md["ended_at"].(string))
	wantUntil := ended.UTC().AddDate(10, 0, 0)
	for _, s := range []struct {
		srv    *s3test.Server
		bucket string
	}{{storeA, bucketA}, {storeB, bucketB}} {
		c := s3Client(t, s.srv)
		info, err := c.StatObject(ctx, s.bucket, id, minio.StatObjectOptions{})
		if err != nil {
			t.Fatalf("the audio blob on %s: %v", s.bucket, err)
		}
		if mode := info.Metadata.Get("X-Amz-Object-Lock-Mode"); mode != "COMPLIANCE" {
			t.Fatalf("lock mode %q, want COMPLIANCE", mode)
		}
		if until := info.Metadata.Get("X-Amz-Object-Lock-Retain-Until-Date"); until != wantUntil.Format(time.RFC3339) {
			t.Fatalf("locked until %s, want %s (call end + 10 years)", until, wantUntil.Format(time.RFC3339))
		}
		// Directly in the store, with its root credentials: the locked
		// version can be neither deleted nor shortened.
		err = c.RemoveObject(ctx, s.bucket, id, minio.RemoveObjectOptions{VersionID: info.VersionID})
		if code := minio.ToErrorResponse(err).Code; code != "AccessDenied" {
			t.Fatalf("deleting the locked audio in the store: %v, want AccessDenied", err)
		}
		yesterday := time.Now().Add(-24 * time.Hour)
		if err := c.PutObjectRetention(ctx, s.bucket, id, minio.PutObjectRetentionOptions{VersionID: info.VersionID,
			Mode: ptrTo(minio.Compliance), RetainUntilDate: &yesterday}); err == nil {
			t.Fatal("shortening the lock in the store succeeded")
		}
		// The recovery record (it holds the wrapped file key) is not
		// locked, so an IVO deletion can destroy it.
		rec := archive.RecoveryName(id, 1)
		ri, err := c.StatObject(ctx, s.bucket, rec, minio.StatObjectOptions{})
		if err != nil || ri.Metadata.Get("X-Amz-Object-Lock-Mode") != "" {
			t.Fatalf("recovery record of %s in %s: lock %q, %v; want an unlocked object", id, s.bucket, ri.Metadata.Get("X-Amz-Object-Lock-Mode"), err)
		}
	}
	if r := srv.do("nurse", "GET", "/v1/recordings/"+id+"/audio", nil, "X-Purpose", "care"); r.status != http.StatusOK || !bytes.Equal(r.body, wav) {
		t.Fatalf("playback from S3: %d, %d bytes", r.status, len(r.body))
	}
	// Ranged playback is a ranged read of the object.
	if r := srv.do("nurse", "GET", "/v1/recordings/"+id+"/audio", nil, "X-Purpose", "care", "Range", "bytes=1000-1099"); r.status != http.StatusPartialContent || !bytes.Equal(r.body, wav[1000:1100]) {
		t.Fatalf("ranged playback from S3: %d, %d bytes", r.status, len(r.body))
	}

	// Data centre 2's S3 server dies mid-run.
	storeB.Stop()
	var ids []string
	wavs := map[string][]byte{}
	for i := range 5 {
		w := noiseWAV(t, uint64(100+i), 1)
		r := srv.upload("capture", mustJSON(t, meta(testPatient, testCaller, unitA)), w)
		if r.status != http.StatusCreated {
			t.Fatalf("upload %d with site b down: %s", i, r)
		}
		id := r.json(t)["id"].(string)
		ids = append(ids, id)
		wavs[id] = w
	}
	if code, body := srv.opsGet("/healthz"); code != http.StatusServiceUnavailable || body != "degraded: site b unavailable\n" {
		t.Fatalf("healthz with site b's store down: %d %q", code, body)
	}
	if st := statusJSON(t, dataDir); st["replication_pending"] != float64(5) {
		t.Fatalf("backlog with site b's store down: %v, want 5", st["replication_pending"])
	}
	for _, id := range ids {
		if r := srv.do("nurse", "GET", "/v1/recordings/"+id+"/audio", nil, "X-Purpose", "care"); r.status != http.StatusOK || !bytes.Equal(r.body, wavs[id]) {
			t.Fatalf("playback from site a alone: %d", r.status)
		}
	}

	if err := storeB.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the backlog to drain", func() bool {
		return statusJSON(t, dataDir)["replication_pending"] == float64(0)
	})
	cb := s3Client(t, storeB)
	ca := s3Client(t, storeA)
	for _, id := range ids {
		a := readObject(t, ca, bucketA, id)
		b := readObject(t, cb, bucketB, id)
		if !bytes.Equal(a, b) {
			t.Fatalf("repaired copy of %s on site b differs", id)
		}
		info, err := cb.StatObject(ctx, bucketB, id, minio.StatObjectOptions{})
		if err != nil || info.Metadata.Get("X-Amz-Object-Lock-Mode") != "COMPLIANCE" {
			t.Fatalf("repaired copy of %s: lock %q, %v; want COMPLIANCE like the original", id, info.Metadata.Get("X-Amz-Object-Lock-Mode"), err)
		}
	}
	if code, body := srv.opsGet("/healthz"); code != http.StatusOK {
		t.Fatalf("healthz after the store returned: %d %q", code, body)
	}
}

// A bucket without Object Lock — or a store that does not enforce it — is
// found out at start: an ALERT in the log, the metric at 0, doctor FAILs,
// and serve keeps running (the copies are still two).
func TestS3SiteNotWORM(t *testing.T) {
	ctx := t.Context()
	storeA, storeB := s3test.Start(t), s3test.Start(t)
	bucketA, bucketB := s3test.BucketName("dc1"), s3test.BucketName("dc2")
	// Site b's bucket exists already, made without Object Lock.
	if err := s3Client(t, storeB).MakeBucket(ctx, bucketB, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "serve.log")
	srv := startServer(t, dataDir, logPath, "--site-a", storeA.URL(bucketA), "--site-b", storeB.URL(bucketB))

	_, body := srv.opsGet("/metrics")
	if !strings.Contains(body, "\ncallvault_site_worm{site=\"a\"} 1\n") || !strings.Contains(body, "\ncallvault_site_worm{site=\"b\"} 0\n") {
		t.Fatalf("metrics: want site a verified and site b not:\n%s", grepLines(body, "worm"))
	}
	logBytes, _ := os.ReadFile(logPath)
	log := string(logBytes)
	if !strings.Contains(log, "ALERT: site does not enforce Object Lock; it is not WORM storage") || !strings.Contains(log, `"site":"b"`) {
		t.Fatalf("no ALERT for site b in the log:\n%s", grepLines(log, "WORM"))
	}
	out, err := exec.Command(binPath, "doctor", "--data", dataDir, "--ops-listen", srv.opsAddr).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "FAIL  sites.worm         site b: not verified as WORM") {
		t.Fatalf("doctor with site b not WORM: err %v\n%s", err, out)
	}
	if r := srv.upload("capture", mustJSON(t, meta(testPatient, testCaller, unitA)), noiseWAV(t, 9, 1)); r.status != http.StatusCreated {
		t.Fatalf("upload: %s", r)
	}
}

func readObject(t *testing.T, c *minio.Client, bucket, key string) []byte {
	t.Helper()
	o, err := c.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("read %s/%s: %v", bucket, key, err)
	}
	return b
}

func ptrTo[T any](v T) *T { return &v }

// grepLines returns the lines of s that contain sub, for failure messages.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
