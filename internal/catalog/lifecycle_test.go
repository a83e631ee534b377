package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"callvault/internal/sqldb"
)

// The lifecycle end to end on one engine: holds (ids from RETURNING),
// a deletion decision registered, approved and executed by Shred
// (tombstone written by INSERT … SELECT with CASTs), the blob removals
// queued, and the decision finished.
func TestLifecycle(t *testing.T) { forEachEngine(t, testLifecycle) }

func testLifecycle(t *testing.T, db *DB) {
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 12, 0, 0, 123, time.UTC)
	r1, r2, r3 := full(1), full(2), full(3)
	r1.SourceIndex = []byte("source-of-r1")
	mustInsert(t, db, r1, "site-b")
	mustInsert(t, db, r2)
	mustInsert(t, db, r3)
	if _, err := db.LinkPatient(ctx, r1.ID, []byte{9}, []byte{0x99}, "SE2321000016-CAP1", at); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkLost(ctx, r1.ID, "both copies: digest", at); err != nil {
		t.Fatal(err)
	}

	// Holds: ids increase, a held recording cannot be registered.
	h1, err := db.SetHold(ctx, r1.ID, "ÄR-2026-17", "SE2321000016-JUR1", at)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := db.SetHold(ctx, r1.ID, "ÄR-2026-18", "SE2321000016-JUR1", at.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if h1.ID <= 0 || h2.ID <= h1.ID {
		t.Errorf("hold ids %d, %d; want positive, increasing", h1.ID, h2.ID)
	}
	if _, err := db.SetHold(ctx, id(99), "x", "y", at); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetHold of an unknown recording = %v, want ErrNotFound", err)
	}
	holds, err := db.Holds(ctx, r1.ID)
	if err != nil || len(holds) != 2 || holds[0].ID != h1.ID || holds[1].Reference != "ÄR-2026-18" || !holds[0].SetAt.Equal(at) || !holds[0].Active() {
		t.Fatalf("Holds = %+v, %v", holds, err)
	}
	d := &Decision{Kind: KindIVO, CareProvider: provA, CaseNumber: "IVO 3.5.1-1234/2026", DecidedOn: "2026-02-27",
		DocumentSHA256: bytes.Repeat([]byte{7}, 32), RegisteredBy: "SE2321000016-DPO1", RegisteredAt: at, Recordings: []string{r1.ID, r2.ID}}
	if err := db.RegisterDeletion(ctx, d); !errors.Is(err, ErrHeld) {
		t.Fatalf("RegisterDeletion of a held recording = %v, want ErrHeld", err)
	}
	for _, h := range []*Hold{h1, h2} {
		if r, err := db.ReleaseHold(ctx, r1.ID, h.ID, "SE2321000016-JUR1", at.Add(time.Minute)); err != nil || r.Active() || !r.ReleasedAt.Equal(at.Add(time.Minute)) {
			t.Fatalf("ReleaseHold(%d) = %+v, %v", h.ID, r, err)
		}
	}
	if _, err := db.ReleaseHold(ctx, r1.ID, h1.ID, "x", at); !errors.Is(err, ErrHoldReleased) {
		t.Errorf("second ReleaseHold = %v, want ErrHoldReleased", err)
	}
	if _, err := db.ReleaseHold(ctx, r1.ID, h2.ID+100, "x", at); !errors.Is(err, ErrNoHold) {
		t.Errorf("ReleaseHold of an unknown hold = %v, want ErrNoHold", err)
	}

	// Register (id from RETURNING), refuse overlap, refuse self-approval.
	if err := db.RegisterDeletion(ctx, d); err != nil {
		t.Fatal(err)
	}
	if d.ID <= 0 || d.State != StateRegistered {
		t.Fatalf("registered decision id %d state %s", d.ID, d.State)
	}
	other := &Decision{Kind: KindIVO, CareProvider: provA, CaseNumber: "x", DecidedOn: "2026-02-28", RegisteredBy: "SE2321000016-DPO1",
		RegisteredAt: at, Recordings: []string{r3.ID, r2.ID}}
	if err := db.RegisterDeletion(ctx, other); !errors.Is(err, ErrDecisionState) {
		t.Errorf("RegisterDeletion overlapping an open decision = %v, want ErrDecisionState", err)
	}
	for name, recs := range map[string][]string{"twice": {r3.ID, r3.ID}, "unknown": {id(99)}, "malformed": {"\xff"}} {
		o := *other
		o.Recordings = recs
		if err := db.RegisterDeletion(ctx, &o); err == nil {
			t.Errorf("RegisterDeletion with a recording %s succeeded", name)
		}
	}
	if err := db.CheckDeletable(ctx, provB, []string{r3.ID}); !errors.Is(err, ErrOtherProvider) {
		t.Errorf("CheckDeletable under another provider = %v, want ErrOtherProvider", err)
	}
	if _, err := db.ApproveDeletion(ctx, d.ID, d.RegisteredBy, at); !errors.Is(err, ErrSelfApproval) {
		t.Errorf("self-approval = %v, want ErrSelfApproval", err)
	}
	if _, err := db.ApproveDeletion(ctx, d.ID+100, "SE2321000016-DPO2", at); !errors.Is(err, ErrNoDecision) {
		t.Errorf("approval of an unknown decision = %v, want ErrNoDecision", err)
	}
	approved, err := db.ApproveDeletion(ctx, d.ID, "SE2321000016-DPO2", at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApproveDeletion(ctx, d.ID, "SE2321000016-DPO2", at); !errors.Is(err, ErrDecisionState) {
		t.Errorf("second approval = %v, want ErrDecisionState", err)
	}
	stored, err := db.Decision(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := *d
	want.ApprovedBy, want.ApprovedAt, want.State = "SE2321000016-DPO2", at.Add(time.Hour), StateApproved
	if !reflect.DeepEqual(stored, &want) || !reflect.DeepEqual(approved, &want) {
		t.Errorf("approved decision\n got %#v\n     %#v\nwant %#v", stored, approved, &want)
	}
	for name, f := range map[string]func() ([]*Decision, error){
		"Approved":  func() ([]*Decision, error) { return db.Approved(ctx) },
		"Decisions": func() ([]*Decision, error) { return db.Decisions(ctx, provA, StateApproved, 10) },
		"Decisions, no limit": func() ([]*Decision, error) {
			return db.Decisions(ctx, provA, StateApproved, -1)
		},
	} {
		if ds, err := f(); err != nil || len(ds) != 1 || ds[0].ID != d.ID {
			t.Errorf("%s = %+v, %v; want decision %d", name, ds, err, d.ID)
		}
	}

	// Shred: the tombstone, everything of the recording gone, removals
	// queued once per object and site.
	if err := db.Shred(ctx, approved, r3.ID, nil, []string{"site-a"}, at); err == nil {
		t.Error("Shred of a recording outside the decision succeeded")
	}
	shredAt := at.Add(2 * time.Hour)
	if err := db.Shred(ctx, approved, r1.ID, []string{r1.ID + ".recovery"}, []string{"site-a", "site-b"}, shredAt); err != nil {
		t.Fatal(err)
	}
	if err := db.Shred(ctx, approved, r1.ID, nil, []string{"site-a"}, shredAt); !errors.Is(err, ErrDeleted) {
		t.Errorf("second Shred = %v, want ErrDeleted", err)
	}
	ts, err := db.Tombstone(ctx, r1.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantTS := &Tombstone{RecordingID: r1.ID, CareProvider: provA, DecisionID: d.ID, Kind: KindIVO, CaseNumber: d.CaseNumber,
		RegisteredBy: d.RegisteredBy, ApprovedBy: "SE2321000016-DPO2", DeletedAt: shredAt}
	if !reflect.DeepEqual(ts, wantTS) {
		t.Errorf("Tombstone\n got %#v\nwant %#v", ts, wantTS)
	}
	var tsSource []byte
	if err := db.db.QueryRowContext(ctx, `SELECT source_index FROM tombstones WHERE recording_id = ?`, r1.ID).Scan(blob{&tsSource}); err != nil || !bytes.Equal(tsSource, r1.SourceIndex) {
		t.Errorf("tombstone source_index = %q, %v; want %q", tsSource, err, r1.SourceIndex)
	}
	var se *SourceExistsError
	if err := db.BySource(ctx, provA, r1.SourceIndex); !errors.As(err, &se) || !se.Deleted || se.ID != r1.ID {
		t.Errorf("BySource of the shredded recording's source = %v, want deleted %s", err, r1.ID)
	}
	if _, err := db.Get(ctx, r1.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a shredded recording = %v, want ErrNotFound", err)
	}
	if live, deleted, err := db.Known(ctx, r1.ID); err != nil || live || !deleted {
		t.Errorf("Known of a shredded recording = %v, %v, %v; want false, true", live, deleted, err)
	}
	for _, table := range []string{"recording_staff", "pending_replication", "patient_links", "lost_recordings"} {
		var n int
		if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE recording_id = ?`, r1.ID).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s rows of the shredded recording: %d, %v", table, n, err)
		}
	}
	var keys int
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM recordings WHERE wrapped_key = ?`, r1.WrappedKey).Scan(&keys); err != nil || keys != 2 {
		t.Errorf("rows with the test's wrapped key: %d, %v; want 2 (r2, r3)", keys, err)
	}
	pd, err := db.PendingDeletions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var queued []string
	for _, p := range pd {
		queued = append(queued, p.RecordingID+"@"+p.Site)
		if !p.Since.Equal(shredAt) {
			t.Errorf("removal %s@%s since %v, want %v", p.RecordingID, p.Site, p.Since, shredAt)
		}
	}
	if want := []string{r1.ID + "@site-a", r1.ID + "@site-b", r1.ID + ".recovery@site-a", r1.ID + ".recovery@site-b"}; !reflect.DeepEqual(queued, want) {
		t.Errorf("PendingDeletions = %v, want %v", queued, want)
	}
	if err := db.NoteDeletionFailure(ctx, r1.ID, "site-a", "site-a: delete: \xffbad\x00 bytes"); err != nil {
		t.Fatal(err)
	}
	if err := db.ResolveDeletion(ctx, r1.ID, "site-b"); err != nil {
		t.Fatal(err)
	}
	if pd, err := db.PendingDeletions(ctx); err != nil || len(pd) != 3 || pd[0].Attempts != 1 || pd[0].LastError != "site-a: delete: \uFFFDbad bytes" {
		t.Errorf("PendingDeletions after a failure and a removal = %+v, %v", pd, err)
	}

	if err := db.Checkpoint(ctx); err != nil {
		t.Errorf("Checkpoint = %v", err)
	}
	checkWALEmpty(t, db)

	// The decision is executed once its last recording is shredded.
	if done, err := db.FinishDecision(ctx, d.ID); err != nil || done {
		t.Errorf("FinishDecision with a recording left = %v, %v; want false", done, err)
	}
	if err := db.Shred(ctx, approved, r2.ID, nil, []string{"site-a"}, shredAt); err != nil {
		t.Fatal(err)
	}
	if done, err := db.FinishDecision(ctx, d.ID); err != nil || !done {
		t.Errorf("FinishDecision = %v, %v; want true", done, err)
	}
	if done, err := db.FinishDecision(ctx, d.ID); err != nil || done {
		t.Errorf("second FinishDecision = %v, %v; want false", done, err)
	}
	if got, err := db.Decision(ctx, d.ID); err != nil || got.State != StateExecuted {
		t.Errorf("decision after finishing: %+v, %v", got, err)
	}
	if ds, err := db.Approved(ctx); err != nil || len(ds) != 0 {
		t.Errorf("Approved after finishing = %+v, %v", ds, err)
	}
	// r3 can now be registered: the decision that covered r2 is executed.
	if err := db.RegisterDeletion(ctx, &Decision{Kind: KindDisposal, CareProvider: provA, CaseNumber: "-", DecidedOn: "2036-03-01",
		RegisteredBy: SystemActor, RegisteredAt: at, Recordings: []string{r3.ID}}); err != nil {
		t.Errorf("RegisterDeletion after the first decision executed: %v", err)
	}
}

// checkWALEmpty checks, on SQLite, that Checkpoint left the write-ahead
// log empty, so that it holds no page image of a shredded row. On
// PostgreSQL Checkpoint does nothing and there is no file to look at.
func checkWALEmpty(t *testing.T, db *DB) {
	t.Helper()
	if isPostgres(db) {
		return
	}
	var file string
	if err := db.db.QueryRowContext(context.Background(), `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(file + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != 0 {
		t.Errorf("write-ahead log holds %d bytes after Checkpoint", st.Size())
	}
}

func TestExpiredAndBackfill(t *testing.T) { forEachEngine(t, testExpiredAndBackfill) }

func testExpiredAndBackfill(t *testing.T, db *DB) {
	ctx := context.Background()
	now := time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)
	for n, until := range map[int]time.Time{
		1: now.Add(-3 * time.Hour), 2: now.Add(-2 * time.Hour), 3: now.Add(-time.Hour), 4: now, 5: now.Add(time.Nanosecond), 6: {},
	} {
		r := full(n)
		r.RetentionUntil = until
		mustInsert(t, db, r)
	}
	if _, err := db.SetHold(ctx, id(2), "ref", "SE2321000016-JUR1", now); err != nil {
		t.Fatal(err)
	}
	ids := func(limit int) []string {
		t.Helper()
		exp, err := db.ExpiredRecordings(ctx, now, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range exp {
			if e.CareProvider != provA {
				t.Errorf("expired %s of provider %s", e.ID, e.CareProvider)
			}
			out = append(out, e.ID)
		}
		return out
	}
	if got, want := ids(2), []string{id(1), id(3)}; !reflect.DeepEqual(got, want) {
		t.Errorf("ExpiredRecordings(limit 2) = %v, want %v", got, want)
	}
	if got, want := ids(-1), []string{id(1), id(3), id(4)}; !reflect.DeepEqual(got, want) {
		t.Errorf("ExpiredRecordings(no limit) = %v, want %v", got, want)
	}
	if got := ids(0); got != nil {
		t.Errorf("ExpiredRecordings(limit 0) = %v", got)
	}

	n, err := db.BackfillRetention(ctx, 10)
	if err != nil || n != 1 {
		t.Fatalf("BackfillRetention = %d, %v; want 1", n, err)
	}
	r6, err := db.Get(ctx, id(6))
	if err != nil {
		t.Fatal(err)
	}
	if want := full(6).EndedAt.AddDate(10, 0, 0); !r6.RetentionUntil.Equal(want) {
		t.Errorf("backfilled RetentionUntil = %v, want %v", r6.RetentionUntil, want)
	}
	if n, err := db.BackfillRetention(ctx, 10); err != nil || n != 0 {
		t.Errorf("second BackfillRetention = %d, %v; want 0", n, err)
	}
}

func TestSourceIndex(t *testing.T) { forEachEngine(t, testSourceIndex) }

func testSourceIndex(t *testing.T, db *DB) {
	ctx := context.Background()
	src := []byte{0x00, 0xff, 0x10}
	r1 := full(1)
	r1.SourceIndex = src
	mustInsert(t, db, r1)
	r2 := full(2)
	r2.SourceIndex = src
	var se *SourceExistsError
	if err := db.Insert(ctx, r2, nil); !errors.As(err, &se) || se.ID != r1.ID || se.Deleted {
		t.Fatalf("Insert of a stored source = %v, want SourceExistsError for %s", err, r1.ID)
	}
	if n, _ := count(t, db); n != 1 {
		t.Errorf("Count after the refused insert = %d, want 1", n)
	}
	r2.CareProvider = provB // another provider may hold the same file
	mustInsert(t, db, r2)
	if err := db.BySource(ctx, provA, src); !errors.As(err, &se) || se.ID != r1.ID {
		t.Errorf("BySource = %v, want SourceExistsError for %s", err, r1.ID)
	}
	if err := db.BySource(ctx, provA, []byte{1}); err != nil {
		t.Errorf("BySource of an unknown source = %v", err)
	}
	if err := db.BySource(ctx, provA, nil); err == nil {
		t.Error("BySource of an empty index succeeded")
	}
}

// Read-then-write transactions are serialized on both engines: of many
// concurrent registrations of one recording exactly one wins, the others
// see it; of many concurrent inserts of one source file exactly one is
// stored, the others get a SourceExistsError (not a raw unique
// violation, which is what PostgreSQL would give if the checks ran
// unserialized at READ COMMITTED). The race runs several rounds, on
// PostgreSQL with the pool warmed first, so that the transactions do
// overlap rather than queue for new connections (without the writer lock,
// PostgreSQL lets several registrations through in every round).
func TestReadThenWriteSerialized(t *testing.T) { forEachEngine(t, testReadThenWriteSerialized) }

func testReadThenWriteSerialized(t *testing.T, db *DB) {
	ctx := context.Background()
	const n, rounds = 8, 5
	if isPostgres(db) {
		pool := db.db.SQL()
		pool.SetMaxIdleConns(n)
		var warm sync.WaitGroup
		for range n {
			warm.Go(func() {
				// Each holds its connection a moment, so n are opened.
				if _, err := pool.ExecContext(ctx, `SELECT pg_sleep(0.05)`); err != nil {
					t.Error(err)
				}
			})
		}
		warm.Wait()
	}

	race := func(f func(i int) error) (won int, lost []error) {
		errs := make(chan error, n)
		start := make(chan struct{})
		for i := range n {
			go func() {
				<-start
				errs <- f(i)
			}()
		}
		close(start)
		for range n {
			if err := <-errs; err == nil {
				won++
			} else {
				lost = append(lost, err)
			}
		}
		return won, lost
	}
	for r := range rounds {
		mustInsert(t, db, full(r))
		won, lost := race(func(i int) error {
			return db.RegisterDeletion(ctx, &Decision{Kind: KindIVO, CareProvider: provA, CaseNumber: "c", DecidedOn: "2026-01-01",
				RegisteredBy: "SE2321000016-DPO1", RegisteredAt: time.Unix(int64(i), 0), Recordings: []string{id(r)}})
		})
		if won != 1 {
			t.Errorf("round %d: %d of %d concurrent registrations succeeded, want 1", r, won, n)
		}
		for _, err := range lost {
			if !errors.Is(err, ErrDecisionState) {
				t.Errorf("round %d: a losing registration: %v, want ErrDecisionState", r, err)
			}
		}

		won, lost = race(func(i int) error {
			rec := full(1000 + r*n + i)
			rec.SourceIndex = fmt.Appendf(nil, "source file %d", r)
			return db.Insert(ctx, rec, nil)
		})
		if won != 1 {
			t.Errorf("round %d: %d of %d concurrent inserts of one source succeeded, want 1", r, won, n)
		}
		for _, err := range lost {
			if se := (*SourceExistsError)(nil); !errors.As(err, &se) {
				t.Errorf("round %d: a losing insert: %v, want SourceExistsError", r, err)
			}
		}
	}
}

func TestSnapshot(t *testing.T) { forEachEngine(t, testSnapshot) }

func testSnapshot(t *testing.T, db *DB) {
	ctx := context.Background()
	mustInsert(t, db, full(1), "site-b")
	path := filepath.Join(t.TempDir(), "snapshot.db")
	err := db.Snapshot(ctx, path)
	if isPostgres(db) {
		if !errors.Is(err, sqldb.ErrSnapshotUnsupported) {
			t.Fatalf("Snapshot on PostgreSQL = %v, want ErrSnapshotUnsupported", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Snapshot on PostgreSQL left a file: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	snap := openTest(t, path)
	want, _ := db.Get(ctx, id(1))
	if got, err := snap.Get(ctx, id(1)); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Get in the snapshot = %+v, %v", got, err)
	}
	if n, p := count(t, snap); n != 1 || p != 1 {
		t.Errorf("snapshot Count, PendingCount = %d, %d; want 1, 1", n, p)
	}
}
