package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"callvault/internal/keys"
	"callvault/internal/sqlitedb"
)

func openTest(t *testing.T) (*Chain, string) {
	t.Helper()
	kr, err := keys.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.db")
	c, err := OpenChain(context.Background(), path, kr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

func ev(i int) *Event {
	return &Event{Action: "play", Outcome: Allowed, Reason: "own-care-unit", User: "SE9999990001-N0A1",
		CareProvider: "SE9999990001-VG01", CareUnit: "SE9999990001-VE0A", Patient: "201701102384",
		RecordingID: "0123456789abcdef0123456789abcdef", Purpose: "care", EmergencyReason: "medvetslös",
		RequestID: "r" + string(rune('a'+i%26)), Detail: "range=full", Time: time.Date(2026, 11, 24, 10, 0, i, 0, time.UTC)}
}

func TestAppendReadVerify(t *testing.T) {
	c, path := openTest(t)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		e := ev(i)
		if err := c.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
		if e.Index != int64(i) {
			t.Fatalf("index %d, want %d", e.Index, i)
		}
	}
	var got []*Event
	if err := c.Read(ctx, 1, func(e *Event) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("%d events", len(got))
	}
	want := ev(3)
	want.Index = 3
	if *got[3] != *want {
		t.Fatalf("event 4 = %+v\nwant %+v", got[3], want)
	}
	if n, err := c.Verify(ctx); err != nil || n != 5 {
		t.Fatalf("Verify: %d %v", n, err)
	}
	c.Close()
	for _, f := range []string{path, path + "-wal"} {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte("201701102384")) || bytes.Contains(b, []byte("medvetsl")) {
			t.Fatalf("%s holds personal data in plaintext", filepath.Base(f))
		}
	}
}

func TestConcurrentAppendsGroupCommit(t *testing.T) {
	c, _ := openTest(t)
	ctx := context.Background()
	const n = 200
	var wg sync.WaitGroup
	seqs := make([]int64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := ev(i)
			errs[i] = c.Append(ctx, e)
			seqs[i] = e.Index + 1
		}()
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seqs[i] < 1 || seqs[i] > n || seen[seqs[i]] {
			t.Fatalf("bad or duplicate seq %d", seqs[i])
		}
		seen[seqs[i]] = true
	}
	if got, err := c.Verify(ctx); err != nil || got != n {
		t.Fatalf("Verify: %d %v", got, err)
	}
}

// tamper opens the database behind the chain's back, as an intruder with
// file access would, and runs stmt.
func tamper(t *testing.T, path, stmt string, args ...any) {
	t.Helper()
	db, err := sqlitedb.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(stmt, args...); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	cases := []struct {
		name    string
		do      func(t *testing.T, path string)
		wantSeq string
	}{
		{"modified entry", func(t *testing.T, path string) {
			tamper(t, path, `UPDATE audit_chain SET entry = replace(entry, '"play"', '"ingest"') WHERE seq = 4`)
		}, "entry 4"},
		{"deleted entry", func(t *testing.T, path string) {
			tamper(t, path, `DELETE FROM audit_chain WHERE seq = 3`)
		}, "entry 3"},
		{"reordered entries", func(t *testing.T, path string) {
			tamper(t, path, `UPDATE audit_chain SET seq = -1 WHERE seq = 5`)
			tamper(t, path, `UPDATE audit_chain SET seq = 5 WHERE seq = 6`)
			tamper(t, path, `UPDATE audit_chain SET seq = 6 WHERE seq = -1`)
		}, "entry 5"},
		{"rehashed modified entry", func(t *testing.T, path string) {
			// Changing an entry and recomputing its own hash still breaks the next link.
			db, _ := sqlitedb.Open(context.Background(), path)
			var prev, raw []byte
			db.QueryRow(`SELECT hash FROM audit_chain WHERE seq = 1`).Scan(&prev)
			db.QueryRow(`SELECT entry FROM audit_chain WHERE seq = 2`).Scan(&raw)
			raw = bytes.Replace(raw, []byte(`"allowed"`), []byte(`"denied"`), 1)
			db.Exec(`UPDATE audit_chain SET entry = ?, hash = ? WHERE seq = 2`, raw, chainHash(prev, raw))
			db.Close()
		}, "entry 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, path := openTest(t)
			for i := range 8 {
				if err := c.Append(context.Background(), ev(i)); err != nil {
					t.Fatal(err)
				}
			}
			tc.do(t, path)
			_, err := c.Verify(context.Background())
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.wantSeq+":") {
				t.Fatalf("Verify = %v, want ErrCorrupt naming %s", err, tc.wantSeq)
			}
		})
	}
}

func TestAppendFailsClosed(t *testing.T) {
	c, _ := openTest(t)
	if err := c.Append(context.Background(), ev(0)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := c.Append(context.Background(), ev(1)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("append after close: %v, want ErrUnavailable", err)
	}
}
