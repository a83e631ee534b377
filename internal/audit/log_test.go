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
	"callvault/internal/sqldb"
	"callvault/internal/sqldb/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The storage tests of the log run on each engine: forEachEngine gives a
// test the DSN of a new, empty database of SQLite and of PostgreSQL, as
// parallel subtests. None may be skipped.

const testPatient = "201701102384" // Skatteverket test personnummer

// forEachEngine runs f as a parallel subtest per engine with the DSN (a
// SQLite path or a postgres:// URL) of a new, empty database.
func forEachEngine(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Helper()
	pgtest.ForEachEngine(t, "catalog.db", f)
}

// newTestLog opens a log with a new keyring on the database at dsn.
func newTestLog(t *testing.T, dsn string) (*Log, *keys.Keyring) {
	t.Helper()
	kr, err := keys.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return openTestLog(t, dsn, kr), kr
}

func openTestLog(t *testing.T, dsn string, kr *keys.Keyring) *Log {
	t.Helper()
	l, err := Open(t.Context(), dsn, kr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// openDB opens a second handle on the log's database, as an intruder with
// access to the database (or a test looking inside) would.
func openDB(t *testing.T, dsn string) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(t.Context(), dsn, "audit-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
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

// appendMany appends ev(from) … ev(from+n-1) from 8 goroutines, so that
// they are group-committed in batches; their order in the log is not
// theirs.
func appendMany(t *testing.T, l *Log, from, n int) {
	t.Helper()
	errs := make(chan error, n)
	next := make(chan int, n)
	for i := from; i < from+n; i++ {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range next {
				if err := l.Append(t.Context(), ev(i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// secrets are the personal data of ev, which must be stored only sealed.
var secrets = []string{testPatient, "medvetsl", "granskad"}

// Events read back equal those appended; ForPatient finds them by blind
// index and Range by time; no column of the stored rows (and, on SQLite,
// no byte of the database files) holds the patient or free text in
// plaintext.
func TestAppendReadRoundTrip(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		l, _ := newTestLog(t, dsn)
		ctx := t.Context()
		appendN(t, l, 0, 5)
		var got []*Event
		if err := l.Read(ctx, 0, func(e *Event) error { got = append(got, e); return nil }); err != nil {
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
		if err := l.ForPatient(ctx, testPatient, func(*Event) error { byPatient++; return nil }); err != nil {
			t.Fatal(err)
		}
		if err := l.Range(ctx, ev(1).Time, ev(3).Time, func(*Event) error { inRange++; return nil }); err != nil {
			t.Fatal(err)
		}
		if byPatient != 5 || inRange != 2 {
			t.Fatalf("ForPatient %d (want 5), Range %d (want 2)", byPatient, inRange)
		}
		var other int
		if err := l.ForPatient(ctx, "191212121212", func(*Event) error { other++; return nil }); err != nil || other != 0 {
			t.Fatalf("ForPatient of another patient: %d, %v", other, err)
		}
		if _, err := l.Cut(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l.Append(ctx, &Event{Action: "search", Outcome: Denied, User: ""}); err != nil {
			t.Fatal(err) // no patient: patient_index is NULL
		}
		l.Close()

		db := openDB(t, dsn)
		rows, err := db.QueryContext(ctx, `SELECT action, outcome, "user", patient_index, recording_id, entry, hashes FROM audit_log ORDER BY idx`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n, nullPatients := 0, 0
		for rows.Next() {
			var action, outcome, user, recording string
			var pidx sql.Null[[]byte]
			var entry, hashes []byte
			if err := rows.Scan(&action, &outcome, &user, &pidx, &recording, &entry, &hashes); err != nil {
				t.Fatal(err)
			}
			if !pidx.Valid {
				nullPatients++
			}
			row := strings.Join([]string{action, outcome, user, string(pidx.V), recording, string(entry), string(hashes)}, "|")
			for _, secret := range secrets {
				if strings.Contains(row, secret) {
					t.Fatalf("row %d holds %q in plaintext", n, secret)
				}
			}
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if n != 6 || nullPatients != 1 {
			t.Fatalf("%d rows, %d without a patient index; want 6, 1", n, nullPatients)
		}
		if sqldb.IsPostgresDSN(dsn) {
			return
		}
		db.Close()
		for _, f := range []string{dsn, dsn + "-wal"} {
			b, _ := os.ReadFile(f)
			for _, secret := range secrets {
				if bytes.Contains(b, []byte(secret)) {
					t.Fatalf("%s holds %q in plaintext", filepath.Base(f), secret)
				}
			}
		}
	})
}

// Concurrent appends get distinct indexes 0..n-1 and the tree verifies.
func TestConcurrentAppends(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		l, _ := newTestLog(t, dsn)
		const n = 300
		var wg sync.WaitGroup
		idx := make([]int64, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				e := ev(i)
				errs[i] = l.Append(t.Context(), e)
				idx[i] = e.Index
			})
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
	})
}

// An outside RFC 6962 implementation (transparency-dev/merkle) accepts the
// log's inclusion and consistency proofs against its checkpoint roots.
func TestProofsVerifyWithOutsideLibrary(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		l, _ := newTestLog(t, dsn)
		ctx := t.Context()
		appendN(t, l, 0, 37)
		small, err := l.Cut(ctx)
		if err != nil {
			t.Fatal(err)
		}
		appendMany(t, l, 37, 300)
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
		if _, err := l.Entry(ctx, big.Size); err == nil {
			t.Fatal("Entry past the end succeeded")
		}
		cp, err := l.ConsistencyProof(ctx, small.Size, big.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(small.Size), uint64(big.Size), hashes(cp), small.Root[:], big.Root[:]); err != nil {
			t.Fatalf("consistency: %v", err)
		}
	})
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
	forEachEngine(t, func(t *testing.T, dsn string) {
		l, kr := newTestLog(t, dsn)
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
		l2 := openTestLog(t, dsn, kr)
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
		l3 := openTestLog(t, dsn, kr)
		appendN(t, l3, 5, 1)
		third, err := l3.Cut(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Count(third.Note, []byte("\n— ")) != 1 {
			t.Fatalf("after retirement:\n%s", third.Note)
		}
		if again, err := l3.Cut(ctx); err != nil || !bytes.Equal(again.Note, third.Note) {
			t.Fatalf("Cut without new entries = %v, %v; want the latest checkpoint", again, err)
		}
		if res, err := l3.Verify(ctx); err != nil || res.Checkpoints != 3 {
			t.Fatalf("Verify after retirement (the first checkpoint is signed by the retired key only): %+v %v", res, err)
		}
	})
}

// tamper runs statements on a second handle on the log's database, as an
// intruder with access to the database would.
func tamper(t *testing.T, dsn string, stmts ...string) {
	t.Helper()
	db := openDB(t, dsn)
	for _, s := range stmts {
		if _, err := db.ExecContext(t.Context(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// tamperEntry replaces the stored bytes of entry i with edit's result.
func tamperEntry(t *testing.T, dsn string, i int64, edit func([]byte) []byte) {
	t.Helper()
	db := openDB(t, dsn)
	var raw []byte
	if err := db.QueryRowContext(t.Context(), `SELECT entry FROM audit_log WHERE idx = ?`, i).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), `UPDATE audit_log SET entry = ? WHERE idx = ?`, edit(raw), i); err != nil {
		t.Fatal(err)
	}
}

func denyOutcome(raw []byte) []byte {
	return bytes.Replace(raw, []byte(`"outcome":"allowed"`), []byte(`"outcome":"denied"`), 1)
}

// rewriteFrom replaces entry i's bytes and recomputes every stored hash from
// there on, as an intruder who knows the format (but not the signing key)
// would, so only the checkpoints can tell.
func rewriteFrom(t *testing.T, dsn string, i int64) {
	t.Helper()
	ctx := t.Context()
	db := openDB(t, dsn)
	rows, err := db.QueryContext(ctx, `SELECT idx, entry FROM audit_log ORDER BY idx`)
	if err != nil {
		t.Fatal(err)
	}
	var entries [][]byte
	for rows.Next() {
		var n int64
		var raw []byte
		if err := rows.Scan(&n, &raw); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, raw)
	}
	rows.Close()
	entries[i] = denyOutcome(entries[i])
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
		if _, err := db.ExecContext(ctx, `UPDATE audit_log SET entry = ?, hashes = ? WHERE idx = ?`, raw, packed, int64(n)); err != nil {
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
		do   func(t *testing.T, l *Log, dsn string)
		// given is a checkpoint (e.g. a witness's copy) passed to Verify.
		given     func(witness *Checkpoint) []byte
		wantIndex int64
		wantMsg   string
	}{
		{name: "entry modified", wantIndex: 5, wantMsg: "entry modified",
			do: func(t *testing.T, l *Log, dsn string) { tamperEntry(t, dsn, 5, denyOutcome) }},
		{name: "entry deleted", wantIndex: 7, wantMsg: "entry missing",
			do: func(t *testing.T, l *Log, dsn string) { tamper(t, dsn, `DELETE FROM audit_log WHERE idx = 7`) }},
		{name: "entries reordered", wantIndex: 3, wantMsg: "says it is index 4",
			do: func(t *testing.T, l *Log, dsn string) {
				tamper(t, dsn,
					`UPDATE audit_log SET idx = -1 WHERE idx = 3`,
					`UPDATE audit_log SET idx = 3 WHERE idx = 4`,
					`UPDATE audit_log SET idx = 4 WHERE idx = -1`)
			}},
		{name: "entries truncated", wantIndex: 8, wantMsg: "the log ends at 8 entries, but a stored checkpoint has size 10",
			do: func(t *testing.T, l *Log, dsn string) { tamper(t, dsn, `DELETE FROM audit_log WHERE idx >= 8`) }},
		{name: "entries and checkpoints truncated, caught by a witness's checkpoint", wantIndex: 8,
			wantMsg: "the log ends at 8 entries, but a given checkpoint has size 10",
			do: func(t *testing.T, l *Log, dsn string) {
				tamper(t, dsn, `DELETE FROM audit_log WHERE idx >= 8`, `DELETE FROM audit_checkpoints WHERE size > 8`)
			},
			given: func(w *Checkpoint) []byte { return w.Note }},
		{name: "entry rewritten with recomputed hashes", wantIndex: 4, wantMsg: "stored checkpoint of size 10: root hash differs",
			do: func(t *testing.T, l *Log, dsn string) { rewriteFrom(t, dsn, 6) }},
		{name: "checkpoint swapped for one signed by another key", wantIndex: 4, wantMsg: "stored checkpoint of size 10: checkpoint signature",
			do: func(t *testing.T, l *Log, dsn string) {
				signers, _ := other.AuditSigners()
				forged, err := note.Sign(&note.Note{Text: checkpointText(l.origin, 10, tlog.Hash{1})}, signers...)
				if err != nil {
					t.Fatal(err)
				}
				db := openDB(t, dsn)
				if _, err := db.ExecContext(t.Context(), `UPDATE audit_checkpoints SET note = ? WHERE size = 10`, forged); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "checkpoint swapped for another size's", wantIndex: 4, wantMsg: "stored checkpoint of size 10 says size 4",
			do: func(t *testing.T, l *Log, dsn string) {
				tamper(t, dsn, `UPDATE audit_checkpoints SET note = (SELECT note FROM audit_checkpoints WHERE size = 4) WHERE size = 10`)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, dsn string) {
				l, _ := newTestLog(t, dsn)
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
				tc.do(t, l, dsn)
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
		})
	}
}

// Without a witness's copy, cutting the log's tail together with its
// checkpoints is not visible: that is why checkpoints go to witnesses.
func TestTruncationWithCheckpointsNeedsAWitness(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		l, _ := newTestLog(t, dsn)
		appendN(t, l, 0, 10)
		if _, err := l.Cut(t.Context()); err != nil {
			t.Fatal(err)
		}
		tamper(t, dsn, `DELETE FROM audit_log WHERE idx >= 8`, `DELETE FROM audit_checkpoints`)
		if res, err := l.Verify(t.Context()); err != nil || res.Entries != 8 {
			t.Fatalf("Verify = %+v, %v", res, err)
		}
	})
}

func TestAppendFailsClosed(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		l, _ := newTestLog(t, dsn)
		l.Close()
		err := l.Append(context.Background(), ev(0))
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Append after Close = %v", err)
		}
	})
}
