package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"callvault/internal/catalog"
)

// fsImmutableFL is FS_IMMUTABLE_FL of <linux/fs.h> (x/sys/unix does not
// name it; its value is STATX_ATTR_IMMUTABLE's, 0x10).
const fsImmutableFL = 0x10

// makeUnwritable stops every write below the site directory dir while
// reads keep working, and returns a function that undoes it. Not root: the
// directories lose their write permission. Root ignores permissions, so
// the directories are marked immutable (FS_IMMUTABLE_FL, as chattr +i),
// which holds for root too; that needs a filesystem with the flag (ext4,
// xfs, btrfs) and fails the test, saying so, on one without.
func makeUnwritable(t *testing.T, dir string) func() {
	t.Helper()
	dirs := []string{dir}
	subs, _ := filepath.Glob(filepath.Join(dir, "??"))
	dirs = append(dirs, subs...)
	set := func(on bool) error {
		for _, d := range dirs {
			if os.Geteuid() != 0 {
				mode := os.FileMode(0o700)
				if on {
					mode = 0o500
				}
				if err := os.Chmod(d, mode); err != nil {
					return err
				}
				continue
			}
			f, err := os.Open(d)
			if err != nil {
				return err
			}
			flags, err := unix.IoctlGetInt(int(f.Fd()), unix.FS_IOC_GETFLAGS)
			if err == nil {
				if on {
					flags |= fsImmutableFL
				} else {
					flags &^= fsImmutableFL
				}
				err = unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, flags)
			}
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: set immutable flag (this test needs a filesystem that supports it when run as root): %w", d, err)
			}
		}
		return nil
	}
	if err := set(true); err != nil {
		t.Fatal(err)
	}
	// Check that it took: root must not be able to write.
	if err := os.WriteFile(filepath.Join(dir, "probe"), nil, 0o600); err == nil {
		os.Remove(filepath.Join(dir, "probe"))
		t.Fatal("the site directory is still writable")
	}
	undone := false
	undo := func() {
		if !undone {
			undone = true
			if err := set(false); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(undo)
	return undo
}

// Site B's directory is made unwritable (it still exists and reads) while
// 100 recordings arrive: every upload is acknowledged with a durable
// pending copy, the backlog shows in status, and once B is writable again
// the repair loop drains it without an operator; every copy then matches
// the catalog's digest.
func TestSiteUnwritableDuringUploads(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, filepath.Join(t.TempDir(), "serve.log"), "--repair-interval", "300ms")
	restore := makeUnwritable(t, siteBlobDir(t, dataDir, "b"))

	const n = 100
	ids := make([]string, 0, n)
	for i := range n {
		r := srv.upload("capture", mustJSON(t, meta("201701102384", "", unitA)), noiseWAV(t, uint64(1000+i), 1))
		if r.status != http.StatusCreated {
			t.Fatalf("upload %d with site b unwritable: %v", i, r)
		}
		ids = append(ids, r.json(t)["id"].(string))
	}
	st := statusJSON(t, dataDir)
	if st["replication_pending"] != float64(n) {
		t.Fatalf("backlog with site b unwritable: %v, want %d", st["replication_pending"], n)
	}
	if code, body := srv.opsGet("/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "site b") {
		t.Fatalf("healthz: %d %q", code, body)
	}

	restore()
	deadline := time.Now().Add(60 * time.Second)
	for statusJSON(t, dataDir)["replication_pending"] != float64(0) {
		if time.Now().After(deadline) {
			t.Fatalf("backlog not drained in 60s: %v", statusJSON(t, dataDir))
		}
		time.Sleep(200 * time.Millisecond)
	}
	cat, err := catalog.Open(context.Background(), catalogPath(t, dataDir))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	for _, id := range ids {
		rec, err := cat.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"a", "b"} {
			b, err := os.ReadFile(blobPath(dataDir, s, id))
			if err != nil {
				t.Fatalf("site %s: %v", s, err)
			}
			if sum := sha256.Sum256(b); !bytes.Equal(sum[:], rec.BlobSHA256) {
				t.Fatalf("site %s copy of %s does not match the catalog digest", s, id)
			}
		}
	}
	if rep := runScrub(t, dataDir, false); len(rep.Findings) != 0 || rep.Copies != 2*rep.Recordings {
		t.Fatalf("scrub after the drain: %+v", rep)
	}
}
