package audit

import (
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"callvault/internal/keys"
	"callvault/internal/sqldb"
	"callvault/internal/sqldb/pgtest"
	"callvault/internal/sqlitedb"
)

// Tests of the storage itself: the SQLite files of earlier versions,
// durable commits, several writers on one database, and a PostgreSQL
// server killed under load.

// oldLogMigrations is the SQLite schema "audit" as it shipped before
// sqldb, applied here through sqlitedb.Migrate as the old binary did.
var oldLogMigrations = []string{
	`CREATE TABLE audit_log (
		idx INTEGER PRIMARY KEY,
		time INTEGER NOT NULL,
		action TEXT NOT NULL,
		outcome TEXT NOT NULL,
		user TEXT NOT NULL,
		patient_index BLOB,
		recording_id TEXT NOT NULL,
		entry BLOB NOT NULL,
		hashes BLOB NOT NULL
	);
	CREATE INDEX audit_log_time ON audit_log (time);
	CREATE INDEX audit_log_patient ON audit_log (patient_index, idx) WHERE patient_index IS NOT NULL;
	CREATE INDEX audit_log_user ON audit_log (user, time);
	CREATE INDEX audit_log_recording ON audit_log (recording_id, idx) WHERE recording_id != '';
	CREATE TABLE audit_checkpoints (
		size INTEGER PRIMARY KEY,
		time INTEGER NOT NULL,
		note BLOB NOT NULL
	);
	CREATE TABLE audit_outbox (
		name TEXT PRIMARY KEY,
		size INTEGER NOT NULL
	);`,
}

// oldAppend appends events as the code before sqldb did: one transaction,
// the next index read in it, the old INSERT text (user unquoted).
func oldAppend(t *testing.T, db *sql.DB, kr *keys.Keyring, events ...*Event) {
	t.Helper()
	ctx := t.Context()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	n, err := size(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	hr := &hashReader{q: tx, ctx: ctx, pending: map[int64]tlog.Hash{}}
	for i, e := range events {
		idx := n + int64(i)
		raw, pidx, err := encode(kr, e, idx)
		if err != nil {
			t.Fatal(err)
		}
		hs, err := tlog.StoredHashes(idx, raw, hr)
		if err != nil {
			t.Fatal(err)
		}
		var packed []byte
		for k, h := range hs {
			hr.pending[tlog.StoredHashIndex(0, idx)+int64(k)] = h
			packed = append(packed, h[:]...)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log
		(idx, time, action, outcome, user, patient_index, recording_id, entry, hashes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			idx, e.Time.UnixNano(), e.Action, e.Outcome, e.User, pidx, e.RecordingID, raw, packed); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// A catalog.db whose audit log was made by the code before sqldb — schema
// by sqlitedb.Migrate, entries, a checkpoint and an outbox row as it wrote
// them — opens with the new code, verifies, reads, and takes new entries
// and checkpoints; the SQLite migration text is unchanged.
func TestOpensOldSQLiteLog(t *testing.T) {
	for i, m := range logMigrations {
		if m.SQLite != oldLogMigrations[i] {
			t.Errorf("SQLite text of shipped version %d changed", i+1)
		}
	}
	ctx := t.Context()
	kr, err := keys.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "catalog.db")
	old, err := sqlitedb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitedb.Migrate(ctx, old, "audit", oldLogMigrations); err != nil {
		t.Fatal(err)
	}
	oldAppend(t, old, kr, ev(0), ev(1))
	oldAppend(t, old, kr, ev(2))
	root, err := tlog.TreeHash(3, &hashReader{q: old, ctx: ctx})
	if err != nil {
		t.Fatal(err)
	}
	signers, _ := kr.AuditSigners()
	msg, err := note.Sign(&note.Note{Text: checkpointText(kr.AuditOrigin(), 3, root)}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.ExecContext(ctx, `INSERT INTO audit_checkpoints (size, time, note) VALUES (?, ?, ?)
		ON CONFLICT (size) DO NOTHING`, 3, time.Now().UnixNano(), msg); err != nil {
		t.Fatal(err)
	}
	if _, err := old.ExecContext(ctx, `INSERT INTO audit_outbox (name, size) VALUES (?, ?)`, "dir:/witness", 3); err != nil {
		t.Fatal(err)
	}
	old.Close()

	l := openTestLog(t, path, kr)
	if res, err := l.Verify(ctx); err != nil || res.Entries != 3 || res.Checkpoints != 1 || res.Root != root {
		t.Fatalf("Verify of the old log = %+v, %v", res, err)
	}
	var got []*Event
	if err := l.Read(ctx, 0, func(e *Event) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	want := ev(2)
	want.Index = 2
	if len(got) != 3 || *got[2] != *want {
		t.Fatalf("Read of the old log: %d events, last %+v", len(got), got[len(got)-1])
	}
	for i := 3; i < 5; i++ {
		e := ev(i)
		if err := l.Append(ctx, e); err != nil || e.Index != int64(i) {
			t.Fatalf("Append to the old log: index %d, %v; want %d", e.Index, err, i)
		}
	}
	if c, err := l.Cut(ctx); err != nil || c.Size != 5 {
		t.Fatalf("Cut = %+v, %v", c, err)
	}
	if res, err := l.Verify(ctx); err != nil || res.Entries != 5 || res.Checkpoints != 2 {
		t.Fatalf("Verify after appending = %+v, %v", res, err)
	}
	var patients int
	if err := l.ForPatient(ctx, testPatient, func(*Event) error { patients++; return nil }); err != nil || patients != 5 {
		t.Fatalf("ForPatient = %d, %v; want 5", patients, err)
	}
	// The old code's queries read what the new code wrote; nothing was
	// migrated again.
	db := openDB(t, path)
	var user string
	var versions, pushed int64
	if err := db.QueryRowContext(ctx, `SELECT user FROM audit_log WHERE idx = 4`).Scan(&user); err != nil || user != ev(4).User {
		t.Errorf("user of the new entry by the old query = %q, %v", user, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE name = 'audit'`).Scan(&versions); err != nil || versions != 1 {
		t.Errorf("audit versions = %d, %v; want 1", versions, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT size FROM audit_outbox WHERE name = 'dir:/witness'`).Scan(&pushed); err != nil || pushed != 3 {
		t.Errorf("outbox row = %d, %v; want 3", pushed, err)
	}
}

// The append transaction commits durably: on SQLite in WAL mode with
// synchronous=FULL; on PostgreSQL with synchronous_commit on even when the
// connection has it off, and a stronger setting kept.
func TestAppendTransactionIsDurable(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		kr, err := keys.Generate(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		inAppend := func(l *Log, query string) string {
			t.Helper()
			tx, _, err := l.beginAppend(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			var v string
			if err := tx.QueryRowContext(ctx, query).Scan(&v); err != nil {
				t.Fatal(err)
			}
			return v
		}
		if !sqldb.IsPostgresDSN(dsn) {
			l := openTestLog(t, dsn, kr)
			if v := inAppend(l, `PRAGMA journal_mode`); v != "wal" {
				t.Errorf("journal_mode = %s, want wal", v)
			}
			if v := inAppend(l, `PRAGMA synchronous`); v != "2" {
				t.Errorf("synchronous = %s, want 2 (FULL)", v)
			}
			if err := l.Append(ctx, ev(0)); err != nil {
				t.Fatal(err)
			}
			return
		}
		for i, c := range []struct{ param, session, inAppend string }{
			{"", "on", "on"},
			{"&synchronous_commit=off", "off", "on"},
			{"&synchronous_commit=local", "local", "local"},
			{"&synchronous_commit=remote_apply", "remote_apply", "remote_apply"},
		} {
			l := openTestLog(t, dsn+c.param, kr)
			var session string
			if err := l.db.QueryRowContext(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&session); err != nil {
				t.Fatal(err)
			}
			if session != c.session {
				t.Fatalf("DSN%s: the session has synchronous_commit %s, want %s", c.param, session, c.session)
			}
			if v := inAppend(l, `SELECT current_setting('synchronous_commit')`); v != c.inAppend {
				t.Errorf("DSN%s: synchronous_commit in the append transaction = %s, want %s", c.param, v, c.inAppend)
			}
			e := ev(i)
			if err := l.Append(ctx, e); err != nil || e.Index != int64(i) {
				t.Fatalf("DSN%s: Append = index %d, %v", c.param, e.Index, err)
			}
		}
	})
}

// Two handles on one database — two serve replicas — appending at once
// never share or skip an index: 4 goroutines on each handle append 50
// entries each, and the log holds exactly those 400, at the indexes their
// appends returned, verifiable, under one checkpoint that both cut. On
// PostgreSQL the second handle names the server "localhost" rather than
// 127.0.0.1, so that it gets an in-process writer lock of its own (sqldb
// keys it by host, port and database) as another process would: only the
// advisory lock keeps the two apart.
func TestTwoHandlesAppendConcurrently(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		kr, err := keys.Generate(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		dsnB := dsn
		if sqldb.IsPostgresDSN(dsn) {
			dsnB = strings.Replace(dsn, "@127.0.0.1:", "@localhost:", 1)
			if dsnB == dsn {
				t.Fatalf("DSN %s has no host 127.0.0.1", sqldb.RedactDSN(dsn))
			}
		}
		handles := []*Log{openTestLog(t, dsn, kr), openTestLog(t, dsnB, kr)}
		const perHandle, each = 4, 50
		const total = 2 * perHandle * each
		type result struct {
			requestID string
			index     int64
			err       error
		}
		results := make([]result, total)
		var wg sync.WaitGroup
		for h, l := range handles {
			for g := range perHandle {
				wg.Go(func() {
					for i := range each {
						k := (h*perHandle+g)*each + i
						e := ev(k)
						e.RequestID = fmt.Sprintf("h%d-g%d-%d", h, g, i)
						err := l.Append(ctx, e)
						results[k] = result{e.RequestID, e.Index, err}
					}
				})
			}
		}
		wg.Wait()
		indexes := make([]int64, 0, total)
		byRequest := map[string]int64{}
		for _, r := range results {
			if r.err != nil {
				t.Fatalf("append %s: %v", r.requestID, r.err)
			}
			indexes = append(indexes, r.index)
			byRequest[r.requestID] = r.index
		}
		slices.Sort(indexes)
		for i, idx := range indexes {
			if idx != int64(i) {
				t.Fatalf("sorted indexes[%d] = %d: an index was skipped or taken twice", i, idx)
			}
		}
		for _, l := range handles {
			if n, err := l.Size(ctx); err != nil || n != total {
				t.Fatalf("Size = %d, %v; want %d", n, err, total)
			}
		}
		read := 0
		if err := handles[1].Read(ctx, 0, func(e *Event) error {
			if byRequest[e.RequestID] != e.Index {
				return fmt.Errorf("entry %d is %s, whose append returned index %d", e.Index, e.RequestID, byRequest[e.RequestID])
			}
			read++
			return nil
		}); err != nil || read != total {
			t.Fatalf("Read: %d entries, %v", read, err)
		}
		// Both cut the same size at once: one checkpoint is kept, and both
		// return it.
		cps := make([]*Checkpoint, 2)
		errs := make([]error, 2)
		for i, l := range handles {
			wg.Go(func() { cps[i], errs[i] = l.Cut(ctx) })
		}
		wg.Wait()
		for i := range handles {
			if errs[i] != nil || cps[i].Size != total || string(cps[i].Note) != string(cps[0].Note) {
				t.Fatalf("Cut on handle %d = %+v, %v", i, cps[i], errs[i])
			}
		}
		for _, l := range handles {
			res, err := l.Verify(ctx)
			if err != nil || res.Entries != total || res.Checkpoints != 1 || res.Root != cps[0].Root {
				t.Fatalf("Verify = %+v, %v", res, err)
			}
		}
	})
}

// A PostgreSQL server killed (SIGKILL, as by a crash or the OOM killer)
// while 4 goroutines append: every append that returned nil is in the log
// after the restart, at the index it returned, and the log verifies;
// every other append returned an ErrUnavailable without personal data in
// its text (its entry may or may not be there: the commit's answer was
// lost). Afterwards the same handle appends again. The second run's DSN
// turns synchronous_commit off for the session: the append transaction
// turns it on for itself, so nothing acknowledged is lost there either.
func TestPostgresKilledDuringAppends(t *testing.T) {
	srv := pgtest.Start(t)
	for _, c := range []struct{ name, param string }{
		{"default", ""},
		{"session synchronous_commit off", "&synchronous_commit=off"},
	} {
		t.Run(c.name, func(t *testing.T) {
			killDuringAppends(t, srv, srv.NewDatabase(t)+c.param)
		})
	}
}

func killDuringAppends(t *testing.T, srv *pgtest.Server, dsn string) {
	ctx := t.Context()
	l, _ := newTestLog(t, dsn)
	type result struct {
		requestID string
		index     int64
		err       error
	}
	var (
		mu       sync.Mutex
		results  []result
		acked    atomic.Int64
		failed   atomic.Int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		stopOnce sync.Once
	)
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	defer wg.Wait()
	defer halt() // first, should the test fail early
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				e := ev(g*100000 + i)
				e.RequestID = fmt.Sprintf("g%d-%d", g, i)
				err := l.Append(ctx, e)
				mu.Lock()
				results = append(results, result{e.RequestID, e.Index, err})
				mu.Unlock()
				if err == nil {
					acked.Add(1)
				} else {
					failed.Add(1)
					time.Sleep(5 * time.Millisecond) // the server is down: no busy loop
				}
			}
		})
	}
	waitFor(t, func() bool { return acked.Load() >= 200 })
	srv.Stop()
	// Appends go on against the dead server until each goroutine has
	// likely failed a few times.
	waitFor(t, func() bool { return failed.Load() >= 12 })
	halt()
	wg.Wait()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}

	present := map[string]int64{}
	if err := l.Read(ctx, 0, func(e *Event) error {
		if _, dup := present[e.RequestID]; dup {
			return fmt.Errorf("%s is in the log twice", e.RequestID)
		}
		present[e.RequestID] = e.Index
		return nil
	}); err != nil {
		t.Fatalf("Read after the restart: %v", err)
	}
	var ok, failedMissing, failedPresent int
	errTexts := map[string]bool{}
	for _, r := range results {
		idx, in := present[r.requestID]
		switch {
		case r.err == nil && !in:
			t.Errorf("append %s returned nil (index %d) but its entry is gone after the crash", r.requestID, r.index)
		case r.err == nil && idx != r.index:
			t.Errorf("append %s returned index %d but its entry is at %d", r.requestID, r.index, idx)
		case r.err == nil:
			ok++
		default:
			if !errors.Is(r.err, ErrUnavailable) {
				t.Errorf("append %s failed with %v, not ErrUnavailable", r.requestID, r.err)
			}
			for _, s := range secrets {
				if strings.Contains(r.err.Error(), s) {
					t.Errorf("error %q holds personal data", r.err)
				}
			}
			errTexts[r.err.Error()] = true
			if in {
				failedPresent++
			} else {
				failedMissing++
			}
		}
	}
	if failedMissing+failedPresent == 0 {
		t.Fatal("no append failed: the server was not killed during appends")
	}
	res, err := l.Verify(ctx)
	if err != nil || res.Entries != int64(len(present)) {
		t.Fatalf("Verify after the restart = %+v, %v; want %d entries", res, err, len(present))
	}
	// The same handle appends again, right away, and a checkpoint covers
	// everything.
	e := ev(999999)
	if err := l.Append(ctx, e); err != nil || e.Index != res.Entries {
		t.Fatalf("Append after the restart = index %d, %v; want %d", e.Index, err, res.Entries)
	}
	if c, err := l.Cut(ctx); err != nil || c.Size != res.Entries+1 {
		t.Fatalf("Cut after the restart = %+v, %v", c, err)
	}
	if res, err := l.Verify(ctx); err != nil || res.Checkpoints != 1 {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
	t.Logf("%d appends acknowledged and present, %d failed and absent, %d failed but committed (answer lost in the crash); log of %d entries verifies",
		ok, failedMissing, failedPresent, res.Entries)
	for _, s := range slices.Sorted(maps.Keys(errTexts)) {
		t.Logf("append error: %s", s)
	}
}

// An event with a plainly stored field that PostgreSQL's TEXT cannot hold
// (invalid UTF-8, a NUL byte) is refused alone, on both engines alike,
// with an error that does not quote the value; the appends running with
// it, which may share its group commit, go through.
func TestAppendRefusesUnstorableText(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		l, _ := newTestLog(t, dsn)
		ctx := t.Context()
		bad := []*Event{ev(0), ev(1), ev(2), ev(3)}
		bad[0].User = "SE9999990001-\xff"
		bad[1].RecordingID = "0123\x00abcd"
		bad[2].Action = "play\xc3"
		bad[3].Outcome = "allowed\x00"
		values := []string{bad[0].User, bad[1].RecordingID, bad[2].Action, bad[3].Outcome}
		const good = 40
		badErrs := make([]error, len(bad))
		goodErrs := make([]error, good)
		var wg sync.WaitGroup
		for i := range good {
			wg.Go(func() { goodErrs[i] = l.Append(ctx, ev(10+i)) })
			if i%10 == 0 {
				wg.Go(func() { badErrs[i/10] = l.Append(ctx, bad[i/10]) })
			}
		}
		wg.Wait()
		for i, err := range goodErrs {
			if err != nil {
				t.Errorf("good append %d: %v", i, err)
			}
		}
		for i, err := range badErrs {
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("append of bad event %d = %v, want ErrUnavailable", i, err)
			} else if strings.Contains(err.Error(), values[i]) {
				t.Errorf("error %q quotes the value", err)
			}
		}
		if res, err := l.Verify(ctx); err != nil || res.Entries != good {
			t.Fatalf("Verify = %+v, %v; want %d entries", res, err, good)
		}
	})
}
