package audit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"callvault/internal/keys"
)

const testPatient = "201701102384" // Skatteverket test personnummer

func newTestLog(t *testing.T) (*Log, *keys.Keyring, string) {
	t.Helper()
	kr, err := keys.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "catalog.db")
	l, err := Open(t.Context(), path, kr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, kr, path
}

func ev(i int) *Event {
	return &Event{
		Time: time.Date(2026, 11, 24, 10, 0, i, 0, time.UTC), Action: "play", Outcome: Allowed, Reason: "own-unit",
		User: "SE9999990001-N0A1", CareProvider: "SE9999990001-VG01", CareUnit: "SE9999990001-VE0A",
		Patient: testPatient, RecordingID: fmt.Sprintf("%032x", i), Purpose: "care",
		EmergencyReason: "medvetslös patient", ClientAddr: "127.0.0.1", CertFingerprint: strings.Repeat("ab", 32),
		RequestID: fmt.Sprintf("r%d", i), Detail: "bytes=0-99", Note: "granskad",
	}
}

func appendN(t *testing.T, l *Log, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := l.Append(t.Context(), ev(i)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAppendReadRoundTrip(t *testing.T) {
	l, _, path := newTestLog(t)
	appendN(t, l, 0, 5)
	var got []*Event
	if err := l.Read(t.Context(), 0, func(e *Event) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("%d events", len(got))
	}
	want := ev(3)
	want.Index = 3
	if *got[3] != *want {
		t.Fatalf("event 3 =\n%+v\nwant\n%+v", got[3], want)
	}
	var byPatient, inRange int
	l.ForPatient(t.Context(), testPatient, func(*Event) error { byPatient++; return nil })
	l.Range(t.Context(), ev(1).Time, ev(3).Time, func(*Event) error { inRange++; return nil })
	if byPatient != 5 || inRange != 2 {
		t.Fatalf("ForPatient %d (want 5), Range %d (want 2)", byPatient, inRange)
	}
	l.Close()
	for _, f := range []string{path, path + "-wal"} {
		b, _ := os.ReadFile(f)
		for _, secret := range []string{testPatient, "medvetsl", "granskad"} {
			if bytes.Contains(b, []byte(secret)) {
				t.Fatalf("%s holds %q in plaintext", filepath.Base(f), secret)
			}
		}
	}
}

// Concurrent appends get distinct indexes 0..n-1 and the tree verifies.
func TestConcurrentAppends(t *testing.T) {
	l, _, _ := newTestLog(t)
	const n = 300
	var wg sync.WaitGroup
	idx := make([]int64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := ev(i)
			errs[i] = l.Append(t.Context(), e)
			idx[i] = e.Index
		}()
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if idx[i] < 0 || idx[i] >= n || seen[idx[i]] {
			t.Fatalf("bad or duplicate index %d", idx[i])
		}
		seen[idx[i]] = true
	}
	if _, err := l.Cut(t.Context()); err != nil {
		t.Fatal(err)
	}
	if res, err := l.Verify(t.Context()); err != nil || res.Entries != n || res.Checkpoints != 1 {
		t.Fatalf("Verify: %+v %v", res, err)
	}
}

// An outside RFC 6962 implementation (transparency-dev/merkle) accepts the
// log's inclusion and consistency proofs against its checkpoint roots.
func TestProofsVerifyWithOutsideLibrary(t *testing.T) {
	l, _, _ := newTestLog(t)
	ctx := t.Context()
	appendN(t, l, 0, 37)
	small, err := l.Cut(ctx)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 37, 300)
	big, err := l.Cut(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if small.Size != 37 || big.Size != 337 {
		t.Fatalf("checkpoint sizes %d, %d", small.Size, big.Size)
	}
	for _, i := range []int64{0, 1, 36, 200, 336} {
		entry, err := l.Entry(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		p, err := l.InclusionProof(ctx, i, big.Size)
		if err != nil {
			t.Fatal(err)
		}
		leaf := rfc6962.DefaultHasher.HashLeaf(entry)
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), uint64(big.Size), leaf, hashes(p), big.Root[:]); err != nil {
			t.Fatalf("inclusion of %d: %v", i, err)
		}
		// A proof for another entry's bytes fails.
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), uint64(big.Size), rfc6962.DefaultHasher.HashLeaf(append(entry, ' ')), hashes(p), big.Root[:]); err == nil {
			t.Fatal("inclusion proof accepted changed entry bytes")
		}
	}
	cp, err := l.ConsistencyProof(ctx, small.Size, big.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(small.Size), uint64(big.Size), hashes(cp), small.Root[:], big.Root[:]); err != nil {
		t.Fatalf("consistency: %v", err)
	}
}

func hashes[T ~[]tlog.Hash](p T) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// After a rotation checkpoints carry both keys' signatures, and each key
// alone verifies them; after retirement old checkpoints still verify.
func TestCheckpointKeyRotation(t *testing.T) {
	l, kr, path := newTestLog(t)
	ctx := t.Context()
	appendN(t, l, 0, 3)
	first, err := l.Cut(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldKeys, _ := kr.AuditVerifierKeys()
	newKey, err := kr.RotateAuditKey()
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	l2, err := Open(ctx, path, kr)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	appendN(t, l2, 3, 2)
	second, err := l2.Cut(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, vk := range []string{oldKeys[0], newKey} {
		v, err := note.NewVerifier(vk)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseCheckpoint(second.Note, kr.AuditOrigin(), note.VerifierList(v)); err != nil {
			t.Fatalf("rollover checkpoint with %s alone: %v", vk, err)
		}
	}
	if n, err := note.Open(second.Note, note.VerifierList()); err == nil || n != nil {
		t.Fatal("opened with no verifier")
	}
	if bytes.Count(second.Note, []byte("\n— ")) != 2 || bytes.Count(first.Note, []byte("\n— ")) != 1 {
		t.Fatalf("signature lines: first\n%s\nsecond\n%s", first.Note, second.Note)
	}
	if err := kr.RetireAuditKey(strings.Split(oldKeys[0], "+")[1]); err != nil {
		t.Fatal(err)
	}
	l2.Close()
	l3, err := Open(ctx, path, kr)
	if err != nil {
		t.Fatal(err)
	}
	defer l3.Close()
	appendN(t, l3, 5, 1)
	third, err := l3.Cut(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(third.Note, []byte("\n— ")) != 1 {
		t.Fatalf("after retirement:\n%s", third.Note)
	}
	if res, err := l3.Verify(ctx); err != nil || res.Checkpoints != 3 {
		t.Fatalf("Verify after retirement (the first checkpoint is signed by the retired key only): %+v %v", res, err)
	}
}

// tamper opens a second handle on the log's database, as an intruder with
// file access would.
func tamper(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// rewriteFrom replaces entry i's bytes and recomputes every stored hash from
// there on, as an intruder who knows the format (but not the signing key)
// would, so only the checkpoints can tell.
func rewriteFrom(t *testing.T, path string, i int64) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT idx, entry FROM audit_log ORDER BY idx`)
	if err != nil {
		t.Fatal(err)
	}
	var entries [][]byte
	for rows.Next() {
		var n int64
		var raw []byte
		rows.Scan(&n, &raw)
		entries = append(entries, raw)
	}
	rows.Close()
	entries[i] = bytes.Replace(entries[i], []byte(`"outcome":"allowed"`), []byte(`"outcome":"denied"`), 1)
	mem := map[int64]tlog.Hash{}
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for k, x := range idx {
			out[k] = mem[x]
		}
		return out, nil
	})
	for n, raw := range entries {
		hs, err := tlog.StoredHashes(int64(n), raw, reader)
		if err != nil {
			t.Fatal(err)
		}
		var packed []byte
		for k, h := range hs {
			mem[tlog.StoredHashIndex(0, int64(n))+int64(k)] = h
			packed = append(packed, h[:]...)
		}
		if _, err := db.Exec(`UPDATE audit_log SET entry = ?, hashes = ? WHERE idx = ?`, raw, packed, n); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	other, err := keys.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		do   func(t *testing.T, l *Log, path string)
		// given is a checkpoint (e.g. a witness's copy) passed to Verify.
		given     func(witness *Checkpoint) []byte
		wantIndex int64
		wantMsg   string
	}{
		{name: "entry modified", wantIndex: 5, wantMsg: "entry modified",
			do: func(t *testing.T, l *Log, path string) {
				tamper(t, path, `UPDATE audit_log SET entry = replace(entry, '"outcome":"allowed"', '"outcome":"denied"') WHERE idx = 5`)
			}},
		{name: "entry deleted", wantIndex: 7, wantMsg: "entry missing",
			do: func(t *testing.T, l *Log, path string) { tamper(t, path, `DELETE FROM audit_log WHERE idx = 7`) }},
		{name: "entries reordered", wantIndex: 3, wantMsg: "says it is index 4",
			do: func(t *testing.T, l *Log, path string) {
				tamper(t, path,
					`UPDATE audit_log SET idx = -1 WHERE idx = 3`,
					`UPDATE audit_log SET idx = 3 WHERE idx = 4`,
					`UPDATE audit_log SET idx = 4 WHERE idx = -1`)
			}},
		{name: "entries truncated", wantIndex: 8, wantMsg: "the log ends at 8 entries, but a stored checkpoint has size 10",
			do: func(t *testing.T, l *Log, path string) { tamper(t, path, `DELETE FROM audit_log WHERE idx >= 8`) }},
		{name: "entries and checkpoints truncated, caught by a witness's checkpoint", wantIndex: 8,
			wantMsg: "the log ends at 8 entries, but a given checkpoint has size 10",
			do: func(t *testing.T, l *Log, path string) {
				tamper(t, path, `DELETE FROM audit_log WHERE idx >= 8`, `DELETE FROM audit_checkpoints WHERE size > 8`)
			},
			given: func(w *Checkpoint) []byte { return w.Note }},
		{name: "entry rewritten with recomputed hashes", wantIndex: 4, wantMsg: "stored checkpoint of size 10: root hash differs",
			do: func(t *testing.T, l *Log, path string) { rewriteFrom(t, path, 6) }},
		{name: "checkpoint swapped for one signed by another key", wantIndex: 4, wantMsg: "stored checkpoint of size 10: checkpoint signature",
			do: func(t *testing.T, l *Log, path string) {
				signers, _ := other.AuditSigners()
				forged, err := note.Sign(&note.Note{Text: checkpointText(l.origin, 10, tlog.Hash{1})}, signers...)
				if err != nil {
					t.Fatal(err)
				}
				db, _ := sql.Open("sqlite", path)
				defer db.Close()
				if _, err := db.Exec(`UPDATE audit_checkpoints SET note = ? WHERE size = 10`, forged); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "checkpoint swapped for another size's", wantIndex: 4, wantMsg: "stored checkpoint of size 10 says size 4",
			do: func(t *testing.T, l *Log, path string) {
				tamper(t, path, `UPDATE audit_checkpoints SET note = (SELECT note FROM audit_checkpoints WHERE size = 4) WHERE size = 10`)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _, path := newTestLog(t)
			ctx := t.Context()
			appendN(t, l, 0, 4)
			if _, err := l.Cut(ctx); err != nil {
				t.Fatal(err)
			}
			appendN(t, l, 4, 6)
			witness, err := l.Cut(ctx)
			if err != nil {
				t.Fatal(err)
			}
			appendN(t, l, 10, 2)
			if _, err := l.Verify(ctx); err != nil {
				t.Fatalf("before tampering: %v", err)
			}
			tc.do(t, l, path)
			var extra [][]byte
			if tc.given != nil {
				extra = append(extra, tc.given(witness))
			}
			_, err = l.Verify(ctx, extra...)
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Verify = %v, want a *CorruptError", err)
			}
			if ce.Index != tc.wantIndex || !strings.Contains(ce.Msg, tc.wantMsg) {
				t.Fatalf("Verify = %v; want index %d and %q", err, tc.wantIndex, tc.wantMsg)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("at index %d:", tc.wantIndex)) {
				t.Fatalf("error text %q does not name index %d", err, tc.wantIndex)
			}
		})
	}
}

// Without a witness's copy, cutting the log's tail together with its
// checkpoints is not visible: that is why checkpoints go to witnesses.
func TestTruncationWithCheckpointsNeedsAWitness(t *testing.T) {
	l, _, path := newTestLog(t)
	appendN(t, l, 0, 10)
	if _, err := l.Cut(t.Context()); err != nil {
		t.Fatal(err)
	}
	tamper(t, path, `DELETE FROM audit_log WHERE idx >= 8`, `DELETE FROM audit_checkpoints`)
	if res, err := l.Verify(t.Context()); err != nil || res.Entries != 8 {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
}

func TestAppendFailsClosed(t *testing.T) {
	l, _, _ := newTestLog(t)
	l.Close()
	err := l.Append(context.Background(), ev(0))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append after Close = %v", err)
	}
}
