// Package sitetest is the conformance suite for site.Store drivers. A driver
// plugs in with one test function:
//
//	func TestConformance(t *testing.T) {
//		sitetest.Run(t, func(t *testing.T) site.Store { return newEmptyStore(t) })
//	}
//
// Every test in the suite is required: none may be skipped for a driver.
package sitetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"maps"
	"sync"
	"testing"
	"time"

	"callvault/internal/site"
)

// Run runs the Store contract against stores made by newStore, which must
// return a new, empty, writable store each time it is called (cleaning up
// with t.Cleanup). The subtests run in parallel, each on its own store.
func Run(t *testing.T, newStore func(t *testing.T) site.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, site.Store)
	}{
		{"Identity", testIdentity},
		{"Check", testCheck},
		{"RoundTrip", testRoundTrip},
		{"Empty", testEmpty},
		{"Large", testLarge},
		{"NotVisibleBeforeCommit", testNotVisibleBeforeCommit},
		{"Abort", testAbort},
		{"AbortAfterFailedWrite", testAbortAfterFailedWrite},
		{"AbortAfterCommit", testAbortAfterCommit},
		{"CommitTwice", testCommitTwice},
		{"WriteOnce", testWriteOnce},
		{"CommitRace", testCommitRace},
		{"Missing", testMissing},
		{"Delete", testDelete},
		{"InvalidNames", testInvalidNames},
		{"CanceledContext", testCanceledContext},
		{"CanceledDuringUpload", testCanceledDuringUpload},
		{"ReadAt", testReadAt},
		{"ConcurrentReadAt", testConcurrentReadAt},
		{"Many", testMany},
		{"List", testList},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// RandomName returns a fresh valid blob name.
func RandomName() string { return hex.EncodeToString(random(16)) }

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// Put writes data to s under name in chunks of at most chunk bytes and
// commits, failing the test on any error. A chunk of 0 or less writes data
// in one call.
func Put(t *testing.T, s site.Store, name string, data []byte, chunk int) {
	t.Helper()
	if chunk <= 0 {
		chunk = max(len(data), 1)
	}
	up, err := s.Create(t.Context(), name)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	defer up.Abort()
	for len(data) > 0 {
		n := min(chunk, len(data))
		if m, err := up.Write(data[:n]); err != nil || m != n {
			t.Fatalf("Write(%d bytes) = %d, %v", n, m, err)
		}
		data = data[n:]
	}
	if err := up.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// Get reads the whole blob name from s, failing the test on any error.
func Get(t *testing.T, s site.Store, name string) []byte {
	t.Helper()
	b, err := s.Open(t.Context(), name)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer b.Close()
	data := make([]byte, b.Size())
	if n, err := b.ReadAt(data, 0); n != len(data) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt(all) = %d, %v; want %d", n, err, len(data))
	}
	return data
}

// assertNotExist fails unless Open and Stat both report ErrNotExist.
func assertNotExist(t *testing.T, s site.Store, name string) {
	t.Helper()
	if b, err := s.Open(t.Context(), name); !errors.Is(err, site.ErrNotExist) {
		if err == nil {
			b.Close()
		}
		t.Errorf("Open: err = %v, want ErrNotExist", err)
	}
	if _, err := s.Stat(t.Context(), name); !errors.Is(err, site.ErrNotExist) {
		t.Errorf("Stat: err = %v, want ErrNotExist", err)
	}
}

// assertHolds fails unless s holds exactly data under name.
func assertHolds(t *testing.T, s site.Store, name string, data []byte) {
	t.Helper()
	size, err := s.Stat(t.Context(), name)
	if err != nil || size != int64(len(data)) {
		t.Fatalf("Stat = %d, %v; want %d, nil", size, err, len(data))
	}
	if got := Get(t, s, name); !bytes.Equal(got, data) {
		t.Fatalf("content differs: got %d bytes, want %d", len(got), len(data))
	}
}

func testIdentity(t *testing.T, s site.Store) {
	if s.Name() == "" {
		t.Error("Name is empty")
	}
	j := s.Jurisdiction()
	if len(j) != 2 || j[0] < 'A' || j[0] > 'Z' || j[1] < 'A' || j[1] > 'Z' {
		t.Errorf("Jurisdiction = %q, want two upper-case letters", j)
	}
}

func testCheck(t *testing.T, s site.Store) {
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

func testRoundTrip(t *testing.T, s site.Store) {
	name, data := RandomName(), random(10_000)
	up, err := s.Create(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range [][]byte{data[:1], data[1:1], data[1:4096], data[4096:]} {
		if n, err := up.Write(chunk); n != len(chunk) || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", len(chunk), n, err)
		}
	}
	if err := up.Commit(); err != nil {
		t.Fatal(err)
	}
	assertHolds(t, s, name, data)
}

func testEmpty(t *testing.T, s site.Store) {
	name := RandomName()
	Put(t, s, name, nil, 1)
	assertHolds(t, s, name, []byte{})
}

func testLarge(t *testing.T, s site.Store) {
	name, data := RandomName(), random(3<<20+17)
	Put(t, s, name, data, 1<<20)
	assertHolds(t, s, name, data)
}

func testNotVisibleBeforeCommit(t *testing.T, s site.Store) {
	name, data := RandomName(), random(100)
	up, err := s.Create(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Abort()
	assertNotExist(t, s, name)
	if _, err := up.Write(data); err != nil {
		t.Fatal(err)
	}
	assertNotExist(t, s, name)
	if err := up.Commit(); err != nil {
		t.Fatal(err)
	}
	assertHolds(t, s, name, data)
}

func testAbort(t *testing.T, s site.Store) {
	name := RandomName()
	up, err := s.Create(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(random(100)); err != nil {
		t.Fatal(err)
	}
	if err := up.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if err := up.Abort(); err != nil {
		t.Fatalf("second Abort: %v", err)
	}
	if _, err := up.Write([]byte("x")); err == nil {
		t.Error("Write after Abort succeeded")
	}
	if err := up.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	assertNotExist(t, s, name)
	// The name is still free.
	data := random(10)
	Put(t, s, name, data, 10)
	assertHolds(t, s, name, data)
}

func testAbortAfterFailedWrite(t *testing.T, s site.Store) {
	// A write made to fail the only portable way: through the context.
	ctx, cancel := context.WithCancel(t.Context())
	name := RandomName()
	up, err := s.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(random(10)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := up.Write(random(10)); err == nil {
		t.Fatal("Write after cancel succeeded")
	}
	if err := up.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	assertNotExist(t, s, name)
}

func testAbortAfterCommit(t *testing.T, s site.Store) {
	name, data := RandomName(), random(100)
	up, err := s.Create(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := up.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := up.Abort(); err != nil {
		t.Fatalf("Abort after Commit: %v", err)
	}
	assertHolds(t, s, name, data)
}

func testCommitTwice(t *testing.T, s site.Store) {
	name, data := RandomName(), random(100)
	up, err := s.Create(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := up.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := up.Commit(); err == nil {
		t.Error("second Commit succeeded")
	}
	if _, err := up.Write([]byte("x")); err == nil {
		t.Error("Write after Commit succeeded")
	}
	assertHolds(t, s, name, data)
}

func testWriteOnce(t *testing.T, s site.Store) {
	name, data := RandomName(), random(100)
	Put(t, s, name, data, 100)
	if up, err := s.Create(t.Context(), name); !errors.Is(err, site.ErrExists) {
		if err == nil {
			up.Abort()
		}
		t.Fatalf("Create of a committed name: err = %v, want ErrExists", err)
	}
	assertHolds(t, s, name, data)
}

func testCommitRace(t *testing.T, s site.Store) {
	name, first, second := RandomName(), random(100), random(200)
	up1, err := s.Create(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer up1.Abort()
	up2, err := s.Create(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer up2.Abort()
	if _, err := up1.Write(first); err != nil {
		t.Fatal(err)
	}
	if _, err := up2.Write(second); err != nil {
		t.Fatal(err)
	}
	if err := up1.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := up2.Commit(); !errors.Is(err, site.ErrExists) {
		t.Fatalf("second Commit: err = %v, want ErrExists", err)
	}
	if err := up2.Abort(); err != nil {
		t.Fatalf("Abort after failed Commit: %v", err)
	}
	assertHolds(t, s, name, first)
}

func testMissing(t *testing.T, s site.Store) {
	name := RandomName()
	assertNotExist(t, s, name)
	if err := s.Delete(t.Context(), name); !errors.Is(err, site.ErrNotExist) {
		t.Errorf("Delete: err = %v, want ErrNotExist", err)
	}
}

func testDelete(t *testing.T, s site.Store) {
	keep, gone := RandomName(), RandomName()
	keepData := random(50)
	Put(t, s, keep, keepData, 50)
	Put(t, s, gone, random(60), 60)
	if err := s.Delete(t.Context(), gone); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	assertNotExist(t, s, gone)
	if err := s.Delete(t.Context(), gone); !errors.Is(err, site.ErrNotExist) {
		t.Errorf("second Delete: err = %v, want ErrNotExist", err)
	}
	assertHolds(t, s, keep, keepData)
}

// InvalidNames are names every method must refuse with ErrInvalidName.
var InvalidNames = []string{
	"",
	"../x",
	"0123456789abcdef0123456789abcde",   // 31
	"0123456789abcdef0123456789abcdef0", // 33
	"0123456789ABCDEF0123456789ABCDEF",
	"0123456789abcdef/123456789abcdef",
	"../3456789abcdef0123456789abcdef",
	"0123456789abcdef0123456789abcde\x00",
	"0123456789abcdef0123456789abcdeg",
	" 123456789abcdef0123456789abcdef",
	"0123456789abcdef0123456789abcd\u00e9", // 32 bytes, not ASCII
}

func testInvalidNames(t *testing.T, s site.Store) {
	ctx := t.Context()
	for _, name := range InvalidNames {
		if up, err := s.Create(ctx, name); !errors.Is(err, site.ErrInvalidName) {
			if err == nil {
				up.Abort()
			}
			t.Errorf("Create(%q): err = %v, want ErrInvalidName", name, err)
		}
		if b, err := s.Open(ctx, name); !errors.Is(err, site.ErrInvalidName) {
			if err == nil {
				b.Close()
			}
			t.Errorf("Open(%q): err = %v, want ErrInvalidName", name, err)
		}
		if _, err := s.Stat(ctx, name); !errors.Is(err, site.ErrInvalidName) {
			t.Errorf("Stat(%q): err = %v, want ErrInvalidName", name, err)
		}
		if err := s.Delete(ctx, name); !errors.Is(err, site.ErrInvalidName) {
			t.Errorf("Delete(%q): err = %v, want ErrInvalidName", name, err)
		}
	}
}

func testCanceledContext(t *testing.T, s site.Store) {
	name, data := RandomName(), random(10)
	Put(t, s, name, data, 10)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if up, err := s.Create(ctx, RandomName()); !errors.Is(err, context.Canceled) {
		if err == nil {
			up.Abort()
		}
		t.Errorf("Create: err = %v, want context.Canceled", err)
	}
	if b, err := s.Open(ctx, name); !errors.Is(err, context.Canceled) {
		if err == nil {
			b.Close()
		}
		t.Errorf("Open: err = %v, want context.Canceled", err)
	}
	if _, err := s.Stat(ctx, name); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat: err = %v, want context.Canceled", err)
	}
	if err := s.Delete(ctx, name); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete: err = %v, want context.Canceled", err)
	}
	if err := s.Check(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Check: err = %v, want context.Canceled", err)
	}
	assertHolds(t, s, name, data)
}

func testCanceledDuringUpload(t *testing.T, s site.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	name := RandomName()
	up, err := s.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Abort()
	if _, err := up.Write(random(100)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := up.Commit(); err == nil {
		t.Fatal("Commit after cancel succeeded")
	}
	if err := up.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	assertNotExist(t, s, name)
}

func testReadAt(t *testing.T, s site.Store) {
	name, data := RandomName(), random(1000)
	Put(t, s, name, data, 333)
	b, err := s.Open(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Size() != 1000 {
		t.Fatalf("Size = %d, want 1000", b.Size())
	}
	// io.ReaderAt: a short read returns io.EOF (at the end) and a full read
	// ending exactly at the end may return nil or io.EOF.
	const (
		wantNil = iota
		wantEOF
		wantEither
	)
	for _, tc := range []struct {
		off, len int64
		want     int
		err      int
	}{
		{0, 10, 10, wantNil},
		{500, 100, 100, wantNil},
		{990, 10, 10, wantEither},
		{995, 10, 5, wantEOF},
		{1000, 1, 0, wantEOF},
		{2000, 1, 0, wantEOF},
	} {
		p := make([]byte, tc.len)
		n, err := b.ReadAt(p, tc.off)
		if n != tc.want {
			t.Errorf("ReadAt(%d bytes at %d) n = %d, want %d", tc.len, tc.off, n, tc.want)
		}
		if ok := err == nil && tc.err != wantEOF || err == io.EOF && tc.err != wantNil; !ok {
			t.Errorf("ReadAt(%d bytes at %d) err = %v", tc.len, tc.off, err)
		}
		if n > 0 && !bytes.Equal(p[:n], data[tc.off:tc.off+int64(n)]) {
			t.Errorf("ReadAt(%d bytes at %d) returned wrong bytes", tc.len, tc.off)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := b.ReadAt(make([]byte, 1), 0); err == nil {
		t.Error("ReadAt after Close succeeded")
	}
}

func testConcurrentReadAt(t *testing.T, s site.Store) {
	name, data := RandomName(), random(64<<10)
	Put(t, s, name, data, len(data))
	b, err := s.Open(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			off := int64(i) * 4096
			p := make([]byte, 4096)
			if n, err := b.ReadAt(p, off); n != len(p) || (err != nil && err != io.EOF) {
				t.Errorf("ReadAt at %d = %d, %v", off, n, err)
				return
			}
			if !bytes.Equal(p, data[off:off+4096]) {
				t.Errorf("ReadAt at %d returned wrong bytes", off)
			}
		})
	}
	wg.Wait()
}

func testMany(t *testing.T, s site.Store) {
	blobs := make(map[string][]byte)
	for i := range 40 {
		name, data := RandomName(), random(i)
		Put(t, s, name, data, 7)
		blobs[name] = data
	}
	for name, data := range blobs {
		assertHolds(t, s, name, data)
	}
}

func testList(t *testing.T, s site.Store) {
	ctx := context.Background()
	want := map[string]int64{}
	for i := range 12 {
		name := RandomName()
		Put(t, s, name, random(i*100), 64)
		want[name] = int64(i * 100)
	}
	// Neither an upload in progress nor a deleted blob is listed.
	up, err := s.Create(ctx, RandomName())
	if err != nil {
		t.Fatal(err)
	}
	defer up.Abort()
	up.Write([]byte("in progress"))
	gone := RandomName()
	Put(t, s, gone, []byte("x"), 1)
	if err := s.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	before := time.Now().Add(-time.Hour)
	if err := s.List(ctx, func(b site.BlobInfo) error {
		if _, dup := got[b.Name]; dup {
			t.Errorf("%s listed twice", b.Name)
		}
		got[b.Name] = b.Size
		if b.ModTime.Before(before) || b.ModTime.After(time.Now().Add(time.Minute)) {
			t.Errorf("%s: ModTime %v is not about now", b.Name, b.ModTime)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	stop := errors.New("stop")
	n := 0
	if err := s.List(ctx, func(site.BlobInfo) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("List with fn failing: %v after %d calls, want stop after 1", err, n)
	}
}
