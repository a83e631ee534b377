package s3site

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sys/unix"

	"callvault/internal/site"
	"callvault/internal/site/s3site/s3test"
	"callvault/internal/site/sitetest"
)

// newStore returns a store on a fresh bucket of srv, with Object Lock if
// lock is set.
func newStore(t *testing.T, srv *s3test.Server, lock bool, partSize int64) *Store {
	t.Helper()
	cfg, err := ParseURL(srv.URL(s3test.BucketName("cv")))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Name, cfg.Jurisdiction, cfg.PartSize = "a", "SE", partSize
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if created, err := s.EnsureBucket(t.Context(), lock); err != nil || !created {
		t.Fatalf("EnsureBucket = %v, %v", created, err)
	}
	if created, err := s.EnsureBucket(t.Context(), lock); err != nil || created {
		t.Fatalf("second EnsureBucket = %v, %v; want false, nil", created, err)
	}
	return s
}

// The site contract, on a bucket with Object Lock (and so versioning) and
// on a plain one.
func TestConformance(t *testing.T) {
	srv := s3test.Start(t)
	t.Run("ObjectLock", func(t *testing.T) {
		sitetest.Run(t, func(t *testing.T) site.Store { return newStore(t, srv, true, 0) })
	})
	t.Run("Plain", func(t *testing.T) {
		sitetest.Run(t, func(t *testing.T) site.Store { return newStore(t, srv, false, 0) })
	})
	// Multipart: parts of 5 MiB, so the suite's 3 MiB blob is one PUT and
	// the test below crosses part boundaries.
	t.Run("SmallParts", func(t *testing.T) {
		sitetest.Run(t, func(t *testing.T) site.Store { return newStore(t, srv, true, minPartSize) })
	})
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestMultipart(t *testing.T) {
	srv := s3test.Start(t)
	s := newStore(t, srv, true, minPartSize)
	ctx := t.Context()
	name, data := sitetest.RandomName(), random(2*minPartSize+12345)

	// Two uploads of one name, both multipart: the second Commit loses.
	up1, err := s.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	up2, err := s.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer up2.Abort()
	for _, chunk := range [][]byte{data[:100], data[100 : minPartSize+7], data[minPartSize+7:]} {
		if _, err := up1.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if _, err := up2.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if up1.(*upload).uploadID == "" || len(up1.(*upload).parts) != 2 {
		t.Fatalf("after %d bytes in 5 MiB parts: upload %q with %d parts sent, want a multipart upload with 2",
			len(data), up1.(*upload).uploadID, len(up1.(*upload).parts))
	}
	if err := up1.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := up2.Commit(); !errors.Is(err, site.ErrExists) {
		t.Fatalf("second Commit: %v, want ErrExists", err)
	}
	if got := sitetest.Get(t, s, name); !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, want the %d written", len(got), len(data))
	}
	// An aborted multipart upload leaves no parts behind.
	up3, err := s.Create(ctx, sitetest.RandomName())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up3.Write(random(minPartSize + 1)); err != nil {
		t.Fatal(err)
	}
	if err := up3.Abort(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for u := range s.client.ListIncompleteUploads(ctx, s.cfg.Bucket, "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		n++
	}
	if n != 0 {
		t.Fatalf("%d multipart uploads left behind, want 0", n)
	}
}

// put writes a blob, locked until until if it is not zero.
func put(t *testing.T, s *Store, name string, data []byte, until time.Time) {
	t.Helper()
	up, err := s.Create(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Abort()
	site.LockUntil(up, until)
	if _, err := up.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := up.Commit(); err != nil {
		t.Fatal(err)
	}
}

// versions lists the versions of key (delete markers included).
func versions(t *testing.T, s *Store, key string) []minio.ObjectInfo {
	t.Helper()
	var out []minio.ObjectInfo
	for v := range s.client.ListObjects(t.Context(), s.cfg.Bucket, minio.ListObjectsOptions{Prefix: key, WithVersions: true}) {
		if v.Err != nil {
			t.Fatal(v.Err)
		}
		if v.Key == key {
			out = append(out, v)
		}
	}
	return out
}

func getVersion(t *testing.T, s *Store, key, version string) []byte {
	t.Helper()
	rc, _, _, err := s.core.GetObject(t.Context(), s.cfg.Bucket, key, minio.GetObjectOptions{VersionID: version})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A locked blob can be neither deleted nor changed directly in the store,
// by the same credentials callvault uses.
func TestObjectLockHolds(t *testing.T) {
	srv := s3test.Start(t)
	s := newStore(t, srv, true, 0)
	ctx := t.Context()
	name, data := sitetest.RandomName(), random(1000)
	until := time.Now().Add(10 * 365 * 24 * time.Hour).UTC().Truncate(time.Second)
	put(t, s, name, data, until)

	got, err := s.Retention(ctx, name)
	if err != nil || !got.Equal(until) {
		t.Fatalf("Retention = %v, %v; want %v", got, err, until)
	}
	vs := versions(t, s, name)
	if len(vs) != 1 {
		t.Fatalf("%d versions, want 1", len(vs))
	}
	locked := vs[0].VersionID

	// Deleting the version itself is refused.
	err = s.client.RemoveObject(ctx, s.cfg.Bucket, name, minio.RemoveObjectOptions{VersionID: locked})
	if code := minio.ToErrorResponse(err).Code; code != "AccessDenied" {
		t.Fatalf("versioned DELETE of a locked blob: %v (code %q), want AccessDenied", err, code)
	}
	// So is shortening its lock, even in the same mode.
	err = s.client.PutObjectRetention(ctx, s.cfg.Bucket, name, minio.PutObjectRetentionOptions{
		VersionID: locked, Mode: ptr(minio.Compliance), RetainUntilDate: ptr(time.Now().Add(time.Minute))})
	if err == nil {
		t.Fatal("shortening a COMPLIANCE lock succeeded")
	}
	// An overwrite only adds a version: the locked bytes stay.
	if _, err := s.client.PutObject(ctx, s.cfg.Bucket, name, strings.NewReader("overwritten"), 11,
		minio.PutObjectOptions{SendContentMd5: true}); err != nil {
		t.Fatal(err)
	}
	if got := getVersion(t, s, name, locked); !bytes.Equal(got, data) {
		t.Fatal("the locked version changed after an overwrite")
	}
	if err := s.client.RemoveObject(ctx, s.cfg.Bucket, name, minio.RemoveObjectOptions{VersionID: locked}); err == nil {
		t.Fatal("versioned DELETE after an overwrite succeeded")
	}

	// callvault's Delete (an IVO decision) hides the blob with a delete
	// marker; the locked version stays on the store until its date.
	if err := s.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, name); !errors.Is(err, site.ErrNotExist) {
		t.Fatalf("Stat after Delete: %v, want ErrNotExist", err)
	}
	if got := getVersion(t, s, name, locked); !bytes.Equal(got, data) {
		t.Fatal("the locked version is gone after Delete")
	}
	// The name can be written again (scrub repairing a bad copy).
	again := random(10)
	put(t, s, name, again, until)
	if got := sitetest.Get(t, s, name); !bytes.Equal(got, again) {
		t.Fatal("rewritten blob reads back wrong")
	}
}

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func ptr[T any](v T) *T { return &v }

// A blob without a lock (a recovery record, which holds a wrapped file key)
// is deleted with every version, even in a versioned bucket: nothing of it
// survives an IVO deletion.
func TestDeleteUnlockedRemovesEveryVersion(t *testing.T) {
	srv := s3test.Start(t)
	s := newStore(t, srv, true, 0)
	name := sitetest.RandomName()
	put(t, s, name, random(300), time.Time{})
	if got, err := s.Retention(t.Context(), name); err != nil || !got.IsZero() {
		t.Fatalf("Retention of an unlocked blob = %v, %v", got, err)
	}
	if err := s.Delete(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	if vs := versions(t, s, name); len(vs) != 0 {
		t.Fatalf("%d versions left (%+v), want none", len(vs), vs)
	}
	// And the name is free again.
	put(t, s, name, []byte("x"), time.Time{})
}

// Repair copies a blob to the other site with the source's lock.
func TestRepairKeepsTheLock(t *testing.T) {
	srv := s3test.Start(t)
	a, b := newStore(t, srv, true, 0), newStore(t, srv, true, 0)
	b.cfg.Name = "b"
	r, err := site.NewReplicator(a, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	name, data := sitetest.RandomName(), random(5000)
	until := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	put(t, a, name, data, until)
	sum := sha256Sum(data)
	if err := r.Repair(t.Context(), name, "b", sum); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Retention(t.Context(), name); err != nil || !got.Equal(until) {
		t.Fatalf("repaired copy's retention = %v, %v; want %v", got, err, until)
	}
	if got := sitetest.Get(t, b, name); !bytes.Equal(got, data) {
		t.Fatal("repaired copy differs")
	}
}

func TestCheckWORM(t *testing.T) {
	srv := s3test.Start(t)
	ctx := t.Context()

	t.Run("Enforced", func(t *testing.T) {
		s := newStore(t, srv, true, 0)
		if err := s.CheckWORM(ctx); err != nil {
			t.Fatalf("CheckWORM on a locked bucket: %v", err)
		}
		// The canary stays, locked, and is not a blob.
		n := 0
		for v := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: canaryPrefix, Recursive: true}) {
			if v.Err != nil {
				t.Fatal(v.Err)
			}
			n++
		}
		if n != 1 {
			t.Fatalf("%d canaries, want 1", n)
		}
		s.List(ctx, func(b site.BlobInfo) error {
			t.Errorf("List shows %q", b.Name)
			return nil
		})
	})

	t.Run("NoObjectLock", func(t *testing.T) {
		s := newStore(t, srv, false, 0)
		if err := s.CheckWORM(ctx); !errors.Is(err, ErrNotWORM) {
			t.Fatalf("CheckWORM on a bucket without Object Lock: %v, want ErrNotWORM", err)
		}
		if ok, err := s.LockEnabled(ctx); err != nil || ok {
			t.Fatalf("LockEnabled = %v, %v; want false", ok, err)
		}
	})

	// The store accepts the lock and loses it before the delete (as stores
	// have been seen to do in replication): here its lock metadata is
	// removed from the gateway's files behind its back. The delete then
	// succeeds, and the canary must say so.
	t.Run("LockLost", func(t *testing.T) {
		s := newStore(t, srv, true, 0)
		if ok, err := s.LockEnabled(ctx); err != nil || !ok {
			t.Fatalf("LockEnabled = %v, %v; want true", ok, err)
		}
		stripped := 0
		s.afterCanaryPut = func(key, version string) {
			p := filepath.Join(srv.Root(), s.cfg.Bucket, filepath.FromSlash(key))
			if err := unix.Removexattr(p, "user.object-retention"); err != nil {
				t.Errorf("strip the lock of %s: %v", p, err)
				return
			}
			stripped++
		}
		err := s.CheckWORM(ctx)
		if !errors.Is(err, ErrNotWORM) || !strings.Contains(err.Error(), "locked version was deleted") {
			t.Fatalf("CheckWORM with the lock lost: %v, want ErrNotWORM (deleted)", err)
		}
		if stripped != 1 {
			t.Fatalf("stripped %d locks, want 1", stripped)
		}
	})

	t.Run("StoreDown", func(t *testing.T) {
		down := s3test.Start(t)
		s := newStore(t, down, true, 0)
		down.Stop()
		err := s.CheckWORM(ctx)
		if err == nil || errors.Is(err, ErrNotWORM) {
			t.Fatalf("CheckWORM with the store down: %v, want an error that is not ErrNotWORM", err)
		}
	})
}

// A store that goes away fails fast and clearly, and works again when it
// is back.
func TestStoreDownAndBack(t *testing.T) {
	srv := s3test.Start(t)
	s := newStore(t, srv, true, 0)
	name, data := sitetest.RandomName(), random(100)
	put(t, s, name, data, time.Time{})
	srv.Stop()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Check(ctx); err == nil {
		t.Fatal("Check succeeded with the store down")
	}
	if _, err := s.Stat(ctx, name); err == nil || errors.Is(err, site.ErrNotExist) {
		t.Fatalf("Stat with the store down: %v, want an error that is not ErrNotExist", err)
	}
	if _, err := s.Create(ctx, sitetest.RandomName()); err == nil {
		t.Fatal("Create succeeded with the store down")
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("three calls to a store that is down took %v", d)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("Check after the store came back: %v", err)
	}
	if got := sitetest.Get(t, s, name); !bytes.Equal(got, data) {
		t.Fatal("blob differs after restart")
	}
}

func TestParseURL(t *testing.T) {
	c, err := ParseURL("s3://AKIDEXAMPLE:wJalrXUtnFEMI%2FK7MDENG@s3.dc1.example.se:9000/callvault-a")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Endpoint: "s3.dc1.example.se:9000", Secure: true, Bucket: "callvault-a", AccessKey: "AKIDEXAMPLE", SecretKey: "wJalrXUtnFEMI/K7MDENG"}
	if c != want {
		t.Fatalf("ParseURL = %+v, want %+v", c, want)
	}
	if got := c.String(); got != "s3://s3.dc1.example.se:9000/callvault-a" {
		t.Fatalf("String = %q", got)
	}
	if c, err := ParseURL("s3+http://k:s@127.0.0.1:7070/b"); err != nil || c.Secure {
		t.Fatalf("s3+http on loopback: %+v, %v", c, err)
	}
	for _, bad := range []string{
		"s3+http://k:TOPSECRET@10.1.2.3:7070/b", // plain HTTP off loopback
		"s3://k@host:1/b",                       // no secret
		"s3://:TOPSECRET@host:1/b",              // no key
		"s3://k:TOPSECRET@host:1/",              // no bucket
		"s3://k:TOPSECRET@host:1/b/c",           // a path, not a bucket
		"s3://k:TOPSECRET@host:1/b?region=x",    // query
		"http://k:TOPSECRET@host:1/b",           // scheme
		"s3://k:TOPSECRET@/b",                   // no host
		"s3://k:TOPSECRET@host:1/b\x7f",         // unparsable
	} {
		_, err := ParseURL(bad)
		if err == nil {
			t.Errorf("ParseURL(%q) succeeded", bad)
			continue
		}
		if strings.Contains(err.Error(), "TOPSECRET") {
			t.Errorf("ParseURL(%q) error shows the secret: %v", bad, err)
		}
	}
	if !IsURL("s3://x") || !IsURL("s3+http://x") || IsURL("/var/lib/callvault/site-a") {
		t.Error("IsURL")
	}
}

// Nothing a site logs or returns names its credentials.
func TestErrorsHoldNoSecret(t *testing.T) {
	srv := s3test.Start(t)
	s := newStore(t, srv, true, 0)
	cfg := s.cfg
	cfg.SecretKey = "WRONG-SECRET-abcdef"
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = w.Check(t.Context())
	if err == nil {
		t.Fatal("Check with a wrong secret succeeded")
	}
	for _, secret := range []string{cfg.SecretKey, srv.SecretKey} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error shows a secret: %v", err)
		}
	}
	if !strings.Contains(err.Error(), "SignatureDoesNotMatch") && !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("error does not say why: %v", err)
	}
}

// Check writes and removes a probe: nothing stays behind in a versioned
// bucket; a bucket that locks new objects by default fails Check, because
// recovery records must stay deletable.
func TestCheck(t *testing.T) {
	srv := s3test.Start(t)
	ctx := t.Context()
	s := newStore(t, srv, true, 0)
	for range 3 {
		if err := s.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for v := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
		t.Errorf("Check left %q (version %q, delete marker %v, err %v)", v.Key, v.VersionID, v.IsDeleteMarker, v.Err)
	}

	d := newStore(t, srv, true, 0)
	days := uint(1)
	if err := d.client.SetObjectLockConfig(ctx, d.cfg.Bucket, ptr(minio.Compliance), &days, ptr(minio.Days)); err != nil {
		t.Fatal(err)
	}
	err := d.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "the bucket has a default retention") {
		t.Fatalf("Check on a bucket with a default retention: %v", err)
	}
}

// Parts of an upload a crash left behind are aborted by CleanTemp once
// they are old enough; a recent upload (another replica's) is left alone.
func TestCleanTemp(t *testing.T) {
	srv := s3test.Start(t)
	s := newStore(t, srv, true, minPartSize)
	ctx := t.Context()
	up, err := s.Create(ctx, sitetest.RandomName())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(random(minPartSize + 1)); err != nil { // one part sent
		t.Fatal(err)
	}
	// The process "dies": no Commit, no Abort.
	count := func() int {
		n := 0
		for u := range s.client.ListIncompleteUploads(ctx, s.cfg.Bucket, "", true) {
			if u.Err != nil {
				t.Fatal(u.Err)
			}
			n++
		}
		return n
	}
	if got := count(); got != 1 {
		t.Fatalf("%d incomplete uploads, want 1", got)
	}
	if n, err := s.CleanTemp(ctx, time.Hour); err != nil || n != 0 || count() != 1 {
		t.Fatalf("CleanTemp(1h) of a recent upload: %d, %v; %d left", n, err, count())
	}
	if n, err := s.CleanTemp(ctx, 0); err != nil || n != 1 || count() != 0 {
		t.Fatalf("CleanTemp(0): %d, %v; %d left", n, err, count())
	}
}
