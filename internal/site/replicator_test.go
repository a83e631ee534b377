package site_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"callvault/internal/site"
	"callvault/internal/site/sitetest"
)

// pair is a Replicator over two fresh FS sites, with its log output.
type pair struct {
	r    *site.Replicator
	a, b *site.FS
	log  *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// records returns the JSON log records written so far.
func (s *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var recs []map[string]any
	for line := range strings.Lines(s.buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

func newPair(t *testing.T) *pair {
	t.Helper()
	p := &pair{a: newFS(t, "a", "SE"), b: newFS(t, "b", "SE"), log: &syncBuffer{}}
	var err error
	p.r, err = site.NewReplicator(p.a, p.b, slog.New(slog.NewJSONHandler(p.log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { checkLogs(t, p.log) })
	return p
}

// checkLogs fails if a log record carries an attribute other than the time,
// level, message, site names, recording ID and error.
func checkLogs(t *testing.T, log *syncBuffer) {
	allowed := []string{"time", "level", "msg", "site", "from", "recording", "err"}
	for _, rec := range log.records(t) {
		for k := range rec {
			if !slices.Contains(allowed, k) {
				t.Errorf("log record has attribute %q: %v", k, rec)
			}
		}
		if id, ok := rec["recording"].(string); !ok || site.ValidName(id) != nil {
			t.Errorf("log record without a valid recording ID: %v", rec)
		}
		for _, k := range []string{"site", "from"} {
			if v, ok := rec[k]; ok && v != "a" && v != "b" {
				t.Errorf("log record %s = %v, want a site name", k, v)
			}
		}
	}
}

// wantLogs fails unless the log holds exactly the given (level, msg, site,
// recording) records, in order.
func wantLogs(t *testing.T, log *syncBuffer, want ...[4]string) {
	t.Helper()
	var got [][4]string
	for _, rec := range log.records(t) {
		s, _ := rec["site"].(string)
		id, _ := rec["recording"].(string)
		got = append(got, [4]string{rec["level"].(string), rec["msg"].(string), s, id})
	}
	if !slices.Equal(got, want) {
		t.Fatalf("log records = %q, want %q", got, want)
	}
}

func blobPath(f *site.FS, name string) string {
	return filepath.Join(f.Dir(), name[:2], name+".blob")
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// upload writes data through the replicator in 1000-byte chunks and commits.
func upload(t *testing.T, r *site.Replicator, name string, data []byte) (held, missing []string, err error) {
	t.Helper()
	m, err := r.Create(t.Context(), name)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	defer m.Abort()
	for chunk := range slices.Chunk(data, 1000) {
		if n, err := m.Write(chunk); n != len(chunk) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	return m.Commit()
}

func assertFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, %v; want %d bytes", path, len(got), err, len(want))
	}
}

func assertAbsent(t *testing.T, f *site.FS, name string) {
	t.Helper()
	if _, err := f.Stat(t.Context(), name); !errors.Is(err, site.ErrNotExist) {
		t.Fatalf("site %s: Stat = %v, want ErrNotExist", f.Name(), err)
	}
	if got, _ := filepath.Glob(filepath.Join(f.Dir(), name[:2], ".tmp-*")); len(got) != 0 {
		t.Fatalf("site %s: temp files left: %q", f.Name(), got)
	}
}

func TestNewReplicator(t *testing.T) {
	t.Parallel()
	a, b := newFS(t, "a", "SE"), newFS(t, "b", "SE")
	a2 := newFS(t, "a", "SE")
	if _, err := site.NewReplicator(a, a2, nil); err == nil || err.Error() != `site: new replicator: both sites are named "a"` {
		t.Errorf("same names: %v", err)
	}
	if _, err := site.NewReplicator(a, nil, nil); err == nil || err.Error() != "site: new replicator: nil store" {
		t.Errorf("nil store: %v", err)
	}
	r, err := site.NewReplicator(a, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Sites(); len(got) != 2 || got[0] != site.Store(a) || got[1] != site.Store(b) {
		t.Errorf("Sites = %v", got)
	}
}

func TestReplicatorBothSites(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	name, data := sitetest.RandomName(), randomBytes(10_500)
	held, missing, err := upload(t, p.r, name, data)
	if err != nil || !slices.Equal(held, []string{"a", "b"}) || missing != nil {
		t.Fatalf("Commit = %q, %q, %v; want [a b], [], nil", held, missing, err)
	}
	assertFile(t, blobPath(p.a, name), data)
	assertFile(t, blobPath(p.b, name), data)
	wantLogs(t, p.log)
}

func TestReplicatorOneSiteFails(t *testing.T) {
	t.Parallel()
	// Tests run as root, where a read-only mode does not stop writes: the
	// failures are real, a file where site b needs a directory.
	for _, tc := range []struct {
		name string
		// before runs before Create, during between Write and Commit, fix
		// after Commit.
		before, during, fix func(t *testing.T, b *site.FS, name string)
	}{
		{
			name: "fan-out is a file at create",
			before: func(t *testing.T, b *site.FS, name string) {
				breakDir(t, filepath.Join(b.Dir(), name[:2]))
			},
			fix: func(t *testing.T, b *site.FS, name string) {
				restoreDir(t, filepath.Join(b.Dir(), name[:2]))
			},
		},
		{
			name: "dir is a file at create",
			before: func(t *testing.T, b *site.FS, name string) {
				breakDir(t, b.Dir())
			},
			fix: func(t *testing.T, b *site.FS, name string) {
				restoreDir(t, b.Dir())
				if err := os.Mkdir(filepath.Join(b.Dir(), name[:2]), 0o700); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "fan-out replaced before commit",
			during: func(t *testing.T, b *site.FS, name string) {
				breakDir(t, filepath.Join(b.Dir(), name[:2]))
			},
			fix: func(t *testing.T, b *site.FS, name string) {
				restoreDir(t, filepath.Join(b.Dir(), name[:2]))
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPair(t)
			name, data := sitetest.RandomName(), randomBytes(5000)
			msg := "site: blob committed without site"
			if tc.before != nil {
				tc.before(t, p.b, name)
				msg = "site: upload continues without site"
			}
			m, err := p.r.Create(t.Context(), name)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Abort()
			if n, err := m.Write(data); n != len(data) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			if tc.during != nil {
				tc.during(t, p.b, name)
			}
			held, missing, err := m.Commit()
			if err != nil || !slices.Equal(held, []string{"a"}) || !slices.Equal(missing, []string{"b"}) {
				t.Fatalf("Commit = %q, %q, %v; want [a], [b], nil", held, missing, err)
			}
			assertFile(t, blobPath(p.a, name), data)
			wantLogs(t, p.log, [4]string{"WARN", msg, "b", name})

			// Fix site b and repair it from a.
			tc.fix(t, p.b, name)
			sum := sha256.Sum256(data)
			if err := p.r.Repair(t.Context(), name, "b", sum[:]); err != nil {
				t.Fatalf("Repair: %v", err)
			}
			assertFile(t, blobPath(p.b, name), data)
		})
	}
}

func TestRepair(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	ctx := t.Context()
	name, data := sitetest.RandomName(), randomBytes(700_000)
	sum := sha256.Sum256(data)
	if _, _, err := upload(t, p.r, name, data); err != nil {
		t.Fatal(err)
	}
	if err := p.b.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}

	// A wrong digest leaves nothing on b.
	wrong := sha256.Sum256([]byte("something else"))
	if err := p.r.Repair(ctx, name, "b", wrong[:]); !errors.Is(err, site.ErrDigestMismatch) {
		t.Fatalf("Repair with a wrong digest = %v, want ErrDigestMismatch", err)
	}
	assertAbsent(t, p.b, name)

	if err := p.r.Repair(ctx, name, "b", sum[:]); err != nil {
		t.Fatalf("Repair: %v", err)
	}
	assertFile(t, blobPath(p.b, name), data)
	before, err := os.Stat(blobPath(p.b, name))
	if err != nil {
		t.Fatal(err)
	}

	// A second repair is a no-op: the same file stays.
	if err := p.r.Repair(ctx, name, "b", sum[:]); err != nil {
		t.Fatalf("second Repair: %v", err)
	}
	after, err := os.Stat(blobPath(p.b, name))
	if err != nil || !os.SameFile(before, after) {
		t.Fatalf("second Repair replaced the file (%v)", err)
	}

	// Repair works the other way round too.
	if err := p.a.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := p.r.Repair(ctx, name, "a", sum[:]); err != nil {
		t.Fatalf("Repair to a: %v", err)
	}
	assertFile(t, blobPath(p.a, name), data)
	wantLogs(t, p.log,
		[4]string{"INFO", "site: blob repaired", "b", name},
		[4]string{"INFO", "site: blob repaired", "a", name})
}

func TestRepairExistingMismatch(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	name, data, other := sitetest.RandomName(), []byte("good ciphertext"), []byte("other ciphertext")
	sitetest.Put(t, p.a, name, data, 100)
	sitetest.Put(t, p.b, name, other, 100)
	sum := sha256.Sum256(data)
	if err := p.r.Repair(t.Context(), name, "b", sum[:]); !errors.Is(err, site.ErrDigestMismatch) {
		t.Fatalf("Repair = %v, want ErrDigestMismatch", err)
	}
	assertFile(t, blobPath(p.b, name), other)
}

func TestRepairErrors(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	ctx := t.Context()
	name := sitetest.RandomName()
	sum := sha256.Sum256(nil)
	if err := p.r.Repair(ctx, name, "b", sum[:]); !errors.Is(err, site.ErrNotExist) {
		t.Errorf("Repair with no source = %v, want ErrNotExist", err)
	}
	if err := p.r.Repair(ctx, name, "c", sum[:]); err == nil || err.Error() != "site: repair "+name+`: no site named "c"` {
		t.Errorf("Repair to an unknown site = %v", err)
	}
	if err := p.r.Repair(ctx, name, "b", sum[:16]); err == nil || err.Error() != "site: repair "+name+": digest is 16 bytes, want 32" {
		t.Errorf("Repair with a short digest = %v", err)
	}
	if err := p.r.Repair(ctx, "../x", "b", sum[:]); !errors.Is(err, site.ErrInvalidName) {
		t.Errorf("Repair of an invalid name = %v, want ErrInvalidName", err)
	}
}

func TestReplicatorBothFail(t *testing.T) {
	t.Parallel()
	t.Run("at create", func(t *testing.T) {
		t.Parallel()
		p := newPair(t)
		name := sitetest.RandomName()
		breakDir(t, filepath.Join(p.a.Dir(), name[:2]))
		breakDir(t, filepath.Join(p.b.Dir(), name[:2]))
		if m, err := p.r.Create(t.Context(), name); err == nil {
			m.Abort()
			t.Fatal("Create succeeded with both sites broken")
		}
		wantLogs(t, p.log)
	})
	t.Run("at write", func(t *testing.T) {
		t.Parallel()
		p := newPair(t)
		ctx, cancel := context.WithCancel(t.Context())
		name := sitetest.RandomName()
		m, err := p.r.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Write([]byte("first")); err != nil {
			t.Fatal(err)
		}
		cancel()
		if n, err := m.Write([]byte("second")); n != 0 || !errors.Is(err, context.Canceled) {
			t.Fatalf("Write with no site left = %d, %v; want 0, context.Canceled", n, err)
		}
		if held, missing, err := m.Commit(); err == nil || held != nil || !slices.Equal(missing, []string{"a", "b"}) {
			t.Fatalf("Commit = %q, %q, %v; want nil, [a b], error", held, missing, err)
		}
		if err := m.Abort(); err != nil {
			t.Fatal(err)
		}
		assertAbsent(t, p.a, name)
		assertAbsent(t, p.b, name)
		wantLogs(t, p.log,
			[4]string{"WARN", "site: upload continues without site", "a", name},
			[4]string{"WARN", "site: upload continues without site", "b", name})
	})
	t.Run("at commit", func(t *testing.T) {
		t.Parallel()
		p := newPair(t)
		name := sitetest.RandomName()
		m, err := p.r.Create(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Write([]byte("ciphertext")); err != nil {
			t.Fatal(err)
		}
		// The temp files vanish from under both uploads.
		for _, f := range []*site.FS{p.a, p.b} {
			fan := filepath.Join(f.Dir(), name[:2])
			if err := os.Rename(fan, fan+".moved"); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(fan, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		held, missing, err := m.Commit()
		if err == nil || held != nil || !slices.Equal(missing, []string{"a", "b"}) {
			t.Fatalf("Commit = %q, %q, %v; want nil, [a b], error", held, missing, err)
		}
		if !strings.HasPrefix(err.Error(), "site: commit "+name+": no site committed: ") {
			t.Fatalf("Commit error = %q", err)
		}
		assertAbsent(t, p.a, name)
		assertAbsent(t, p.b, name)
		wantLogs(t, p.log)
	})
}

func TestReplicatorExists(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	name := sitetest.RandomName()
	sitetest.Put(t, p.b, name, []byte("earlier"), 100)
	if m, err := p.r.Create(t.Context(), name); !errors.Is(err, site.ErrExists) {
		if err == nil {
			m.Abort()
		}
		t.Fatalf("Create = %v, want ErrExists", err)
	}
	assertAbsent(t, p.a, name)
	assertFile(t, blobPath(p.b, name), []byte("earlier"))
}

func TestMultiUploadAbort(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	name := sitetest.RandomName()
	m, err := p.r.Create(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Write([]byte("ciphertext")); err != nil {
		t.Fatal(err)
	}
	if err := m.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := m.Abort(); err != nil {
		t.Fatalf("second Abort: %v", err)
	}
	if _, err := m.Write([]byte("x")); err == nil {
		t.Error("Write after Abort succeeded")
	}
	if _, _, err := m.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	assertAbsent(t, p.a, name)
	assertAbsent(t, p.b, name)

	// Abort after a successful Commit keeps the blob.
	data := []byte("kept")
	m, err = p.r.Create(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Write(data); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := m.Abort(); err != nil {
		t.Fatalf("Abort after Commit: %v", err)
	}
	assertFile(t, blobPath(p.a, name), data)
	assertFile(t, blobPath(p.b, name), data)
}

func TestReplicatorOpen(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	ctx := t.Context()
	name, data := sitetest.RandomName(), randomBytes(3000)
	if _, _, err := upload(t, p.r, name, data); err != nil {
		t.Fatal(err)
	}
	read := func() []byte {
		t.Helper()
		b, err := p.r.Open(ctx, name)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer b.Close()
		got := make([]byte, b.Size())
		if _, err := b.ReadAt(got, 0); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := read(); !bytes.Equal(got, data) {
		t.Fatal("Open returned wrong bytes")
	}
	wantLogs(t, p.log)

	// Falls back to b when a's copy is missing, and says so.
	if err := os.Remove(blobPath(p.a, name)); err != nil {
		t.Fatal(err)
	}
	if got := read(); !bytes.Equal(got, data) {
		t.Fatal("Open from b returned wrong bytes")
	}
	wantLogs(t, p.log, [4]string{"WARN", "site: blob read from other site", "a", name})

	// Missing on both: ErrNotExist.
	if err := os.Remove(blobPath(p.b, name)); err != nil {
		t.Fatal(err)
	}
	_, err := p.r.Open(ctx, name)
	if want := "site: open " + name + ": blob does not exist"; err == nil || err.Error() != want || !errors.Is(err, site.ErrNotExist) {
		t.Fatalf("Open = %v, want %q", err, want)
	}

	// Missing on b and a broken: not ErrNotExist, since a may hold it.
	breakDir(t, filepath.Join(p.a.Dir(), name[:2]))
	_, err = p.r.Open(ctx, name)
	if err == nil || errors.Is(err, site.ErrNotExist) {
		t.Fatalf("Open with a broken = %v, want an error other than ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), "site b: open "+name+": blob does not exist") {
		t.Fatalf("Open error %q does not report site b", err)
	}
}

func TestReplicatorDelete(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	ctx := t.Context()
	name := sitetest.RandomName()
	if _, _, err := upload(t, p.r, name, []byte("ciphertext")); err != nil {
		t.Fatal(err)
	}
	if err := p.r.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	assertAbsent(t, p.a, name)
	assertAbsent(t, p.b, name)
	if err := p.r.Delete(ctx, name); err != nil {
		t.Fatalf("Delete of an absent blob = %v, want nil", err)
	}

	// Only on a: deleted there, b's absence is fine.
	sitetest.Put(t, p.a, name, []byte("ciphertext"), 100)
	if err := p.r.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	assertAbsent(t, p.a, name)

	// A broken site is an error, and the other site is still deleted.
	sitetest.Put(t, p.b, name, []byte("ciphertext"), 100)
	breakDir(t, filepath.Join(p.a.Dir(), name[:2]))
	if err := p.r.Delete(ctx, name); err == nil || errors.Is(err, site.ErrNotExist) {
		t.Fatalf("Delete with a broken = %v", err)
	}
	assertAbsent(t, p.b, name)
}
