package catalog

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"callvault/internal/sqldb"
	"callvault/internal/sqldb/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The catalog's suite: every test that touches a database runs on a fresh
// catalog of each engine, as parallel subtests "sqlite" and "postgres".
// None may be skipped.

const (
	provA = "SE2321000016-0001"
	provB = "SE2321000016-0002"
	unitA = "SE2321000016-1001"
)

// forEachDSN runs f as a parallel subtest per engine with a new, empty
// database: the path of a SQLite file that does not exist yet, or the URL
// of an empty PostgreSQL database.
func forEachDSN(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Helper()
	pgtest.ForEachEngine(t, "catalog.db", f)
}

// forEachEngine runs f as a parallel subtest per engine on a new catalog.
func forEachEngine(t *testing.T, f func(t *testing.T, db *DB)) {
	t.Helper()
	forEachDSN(t, func(t *testing.T, dsn string) { f(t, openTest(t, dsn)) })
}

// openTest opens the catalog at dsn, closed when t ends.
func openTest(t *testing.T, dsn string) *DB {
	t.Helper()
	db, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func isPostgres(db *DB) bool { return db.db.Engine() == sqldb.Postgres }

func id(n int) string { return fmt.Sprintf("%032x", n) }

// full returns a recording with every field set, times carrying
// nanoseconds, and Staff out of sorted order.
func full(n int) *Recording {
	start := time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)
	return &Recording{
		ID:            id(n),
		CallID:        fmt.Sprintf("call-%d@pbx.example", n),
		CareProvider:  provA,
		CareUnit:      unitA,
		Staff:         []string{"SE2321000016-N00Z", "SE2321000016-N00A", "SE2321000016-N00M"},
		StartedAt:     start,
		EndedAt:       start.Add(7*time.Minute + 3*time.Nanosecond),
		Direction:     "inbound",
		PrivacyNotice: "played-v3",
		PatientIndex:  []byte{0x01, 0x02, byte(n)},
		PatientSealed: []byte{0xaa, 0x00, 0xbb},
		CallerIndex:   []byte{0x03, 0x04},
		CallerSealed:  []byte{0xcc, 0x00},
		Format:        "wav",
		ContentType:   "audio/wav",
		AudioBytes:    1 << 33,
		BlobBytes:     1<<33 + 4096,
		BlobSHA256:    bytes.Repeat([]byte{0x5a}, 32),
		KeyEpoch:      7,
		WrappedKey:    []byte("age-encryption.org/v1\n-> X25519 ..."),
		CreatedAt:     start.Add(8 * time.Minute),
	}
}

func mustInsert(t *testing.T, db *DB, rec *Recording, sites ...string) {
	t.Helper()
	if err := db.Insert(context.Background(), rec, sites); err != nil {
		t.Fatalf("insert %s: %v", rec.ID, err)
	}
}

func count(t *testing.T, db *DB) (recs, pending int) {
	t.Helper()
	ctx := context.Background()
	recs, err := db.Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pending, err = db.PendingCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return recs, pending
}

func TestInsertGetRoundTrip(t *testing.T) {
	forEachEngine(t, testInsertGetRoundTrip)
}

func testInsertGetRoundTrip(t *testing.T, db *DB) {
	ctx := context.Background()
	withAll := full(1)
	withAll.RetentionUntil = withAll.EndedAt.AddDate(10, 0, 0)
	withAll.SourceIndex = []byte{0x00, 0xff, 's'}
	withAll.Incomplete = true
	withAll.CaptureStats = `{"streams":[{"ssrc":1,"lost":0}],"note":"Vårdguiden"}`
	// No patient and no caller identified: nil stays nil; an empty
	// non-nil slice stays empty and non-nil; no staff reads back nil.
	anonymous := full(2)
	anonymous.PatientIndex, anonymous.PatientSealed = nil, nil
	anonymous.CallerIndex, anonymous.CallerSealed = []byte{}, nil
	anonymous.Staff = nil
	anonymous.Direction, anonymous.Format, anonymous.ContentType = "outbound", "mp3", "audio/mpeg"
	anonymous.AudioBytes, anonymous.BlobBytes, anonymous.KeyEpoch = 0, 0, 0

	for _, rec := range []*Recording{withAll, anonymous} {
		want := *rec
		want.Staff = append([]string(nil), rec.Staff...)
		mustInsert(t, db, rec)
		got, err := db.Get(ctx, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, &want) {
			t.Errorf("Get(%s)\n got %#v\nwant %#v", rec.ID, got, &want)
		}
	}

	got, err := db.Get(ctx, anonymous.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PatientIndex != nil || got.PatientSealed != nil || got.CallerSealed != nil || got.Staff != nil {
		t.Errorf("nil fields read back non-nil: %#v", got)
	}
	if got.CallerIndex == nil || len(got.CallerIndex) != 0 {
		t.Errorf("empty CallerIndex read back as %#v, want []byte{}", got.CallerIndex)
	}
	// What is stored, not only what is read back: NULL and a zero-length
	// value, told apart by SQL on both engines.
	var patientNull, callerEmpty int
	if err := db.db.QueryRowContext(ctx, `SELECT CASE WHEN patient_index IS NULL THEN 1 ELSE 0 END,
		CASE WHEN caller_index IS NOT NULL AND length(caller_index) = 0 THEN 1 ELSE 0 END FROM recordings WHERE id = ?`,
		anonymous.ID).Scan(&patientNull, &callerEmpty); err != nil {
		t.Fatal(err)
	}
	if patientNull != 1 || callerEmpty != 1 {
		t.Errorf("stored: patient_index NULL %d, caller_index empty %d; want 1, 1", patientNull, callerEmpty)
	}
	if n, p := count(t, db); n != 2 || p != 0 {
		t.Errorf("Count, PendingCount = %d, %d; want 2, 0", n, p)
	}
}

func TestTimesReadBackInUTC(t *testing.T) { forEachEngine(t, testTimesReadBackInUTC) }

func testTimesReadBackInUTC(t *testing.T, db *DB) {
	ctx := context.Background()
	rec := full(1)
	stockholm := time.FixedZone("CET", 3600)
	rec.StartedAt = time.Date(2025, 12, 31, 23, 59, 59, 999999999, stockholm)
	rec.EndedAt = time.Date(1970, 1, 1, 0, 0, 0, 1, stockholm) // before the epoch in UTC
	rec.CreatedAt = time.Now()                                 // carries a monotonic reading
	mustInsert(t, db, rec)
	got, err := db.Get(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want time.Time
	}{{"StartedAt", got.StartedAt, rec.StartedAt}, {"EndedAt", got.EndedAt, rec.EndedAt}, {"CreatedAt", got.CreatedAt, rec.CreatedAt}} {
		if !c.got.Equal(c.want) || c.got.Location() != time.UTC || c.got != c.want.Round(0).UTC() {
			t.Errorf("%s = %v, want %v in UTC", c.name, c.got, c.want.UTC())
		}
	}
}

func TestInsertExists(t *testing.T) { forEachEngine(t, testInsertExists) }

func testInsertExists(t *testing.T, db *DB) {
	ctx := context.Background()
	first := full(1)
	mustInsert(t, db, first, "site-b")
	want, err := db.Get(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}

	second := full(1)
	second.CallID, second.Staff = "other", []string{"SE2321000016-X001"}
	err = db.Insert(ctx, second, []string{"site-a", "site-b"})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second Insert of %s: %v, want ErrExists", first.ID, err)
	}
	got, err := db.Get(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after ErrExists the row changed:\n got %#v\nwant %#v", got, want)
	}
	pend, err := db.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pend) != 1 || pend[0].RecordingID != first.ID || pend[0].Site != "site-b" {
		t.Errorf("pending after ErrExists = %+v, want only %s/site-b", pend, first.ID)
	}
}

func TestInsertRefusesAndStoresNothing(t *testing.T) {
	forEachEngine(t, testInsertRefusesAndStoresNothing)
}

func testInsertRefusesAndStoresNothing(t *testing.T, db *DB) {
	ctx := context.Background()
	cases := map[string]func(r *Recording) []string{
		"uppercase ID":         func(r *Recording) []string { r.ID = strings.ToUpper(r.ID); return nil },
		"short ID":             func(r *Recording) []string { r.ID = r.ID[1:]; return nil },
		"zero CreatedAt":       func(r *Recording) []string { r.CreatedAt = time.Time{}; return nil },
		"StartedAt after 2262": func(r *Recording) []string { r.StartedAt = time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC); return nil },
		"nil BlobSHA256":       func(r *Recording) []string { r.BlobSHA256 = nil; return nil },
		"nil WrappedKey":       func(r *Recording) []string { r.WrappedKey = nil; return []string{"site-b"} },
		"site named twice":     func(r *Recording) []string { return []string{"site-b", "site-b"} },
		"site twice, no staff": func(r *Recording) []string { r.Staff = nil; return []string{"site-a", "site-a"} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			rec := full(0xabcdef)
			sites := mutate(rec)
			err := db.Insert(ctx, rec, sites)
			if err == nil || errors.Is(err, ErrExists) {
				t.Fatalf("Insert = %v, want a refusal", err)
			}
			if n, p := count(t, db); n != 0 || p != 0 {
				t.Errorf("after refusal Count, PendingCount = %d, %d; want 0, 0", n, p)
			}
			var staff int
			if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM recording_staff`).Scan(&staff); err != nil {
				t.Fatal(err)
			}
			if staff != 0 {
				t.Errorf("after refusal %d staff rows remain", staff)
			}
		})
	}
	if err := db.Insert(ctx, nil, nil); err == nil {
		t.Error("Insert(nil) succeeded")
	}
}

func TestGetNotFound(t *testing.T) { forEachEngine(t, testGetNotFound) }

func testGetNotFound(t *testing.T, db *DB) {
	mustInsert(t, db, full(1))
	mustInsert(t, db, full(0xabc))
	for _, missing := range []string{id(2), "", "not an id", "\xff\xfe", "a\x00b", strings.ToUpper(id(0xabc))} {
		if r, err := db.Get(context.Background(), missing); !errors.Is(err, ErrNotFound) || r != nil {
			t.Errorf("Get(%q) = %v, %v; want nil, ErrNotFound", missing, r, err)
		}
	}
}

func TestByPatient(t *testing.T) { forEachEngine(t, testByPatient) }

func testByPatient(t *testing.T, db *DB) {
	ctx := context.Background()
	idxA, idxB := []byte("index-of-patient-A.............."), []byte("index-of-patient-B..............")
	at := func(h int) time.Time { return time.Date(2025, 6, 1, h, 0, 0, 0, time.UTC) }
	recs := []struct {
		n     int
		prov  string
		index []byte
		hour  int
	}{
		{0x30, provA, idxA, 10},
		{0x10, provA, idxA, 9},
		{0x20, provA, idxA, 10}, // same start as 0x30: ordered by ID
		{0x40, provA, idxA, 12},
		{0x50, provA, idxB, 10}, // other patient
		{0x60, provA, nil, 10},  // no patient
		{0x70, provB, idxA, 10}, // same index, other care provider
	}
	stored := map[string]*Recording{}
	for _, r := range recs {
		rec := full(r.n)
		rec.CareProvider, rec.PatientIndex, rec.StartedAt = r.prov, r.index, at(r.hour)
		rec.EndedAt, rec.CreatedAt = rec.StartedAt.Add(time.Minute), rec.StartedAt.Add(2*time.Minute)
		rec.Staff = []string{fmt.Sprintf("SE2321000016-S%03d", r.n), "SE2321000016-S000"}
		mustInsert(t, db, rec)
		stored[rec.ID] = rec
	}

	for _, c := range []struct {
		name     string
		prov     string
		index    []byte
		from, to time.Time
		want     []string
	}{
		{"unbounded", provA, idxA, time.Time{}, time.Time{}, []string{id(0x10), id(0x20), id(0x30), id(0x40)}},
		{"from inclusive", provA, idxA, at(10), time.Time{}, []string{id(0x20), id(0x30), id(0x40)}},
		{"to exclusive", provA, idxA, time.Time{}, at(12), []string{id(0x10), id(0x20), id(0x30)}},
		{"window", provA, idxA, at(10), at(11), []string{id(0x20), id(0x30)}},
		{"window one ns wide", provA, idxA, at(12), at(12).Add(time.Nanosecond), []string{id(0x40)}},
		{"empty window", provA, idxA, at(11), at(12), nil},
		{"window in another zone", provA, idxA, at(10).In(time.FixedZone("CEST", 7200)), time.Time{}, []string{id(0x20), id(0x30), id(0x40)}},
		{"other patient", provA, idxB, time.Time{}, time.Time{}, []string{id(0x50)}},
		{"other provider", provB, idxA, time.Time{}, time.Time{}, []string{id(0x70)}},
		{"unknown provider", "SE2321000016-9999", idxA, time.Time{}, time.Time{}, nil},
		{"unknown index", provA, []byte("nobody"), time.Time{}, time.Time{}, nil},
		{"prefix of an index", provA, idxA[:10], time.Time{}, time.Time{}, nil},
		{"nil index", provA, nil, time.Time{}, time.Time{}, nil},
		{"empty index", provA, []byte{}, time.Time{}, time.Time{}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := db.ByPatient(ctx, c.prov, c.index, c.from, c.to)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range got {
				ids = append(ids, r.ID)
				if !reflect.DeepEqual(r, stored[r.ID]) {
					t.Errorf("ByPatient row %s\n got %#v\nwant %#v", r.ID, r, stored[r.ID])
				}
			}
			if !reflect.DeepEqual(ids, c.want) {
				t.Errorf("IDs = %v, want %v", ids, c.want)
			}
		})
	}
}

// TestByPatientUsesIndex checks every shape of the ByPatient statement is
// answered through the (care_provider, patient_index, started_at) index and
// never by scanning a table. The plans are each engine's own: SQLite's
// EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN.
func TestByPatientUsesIndex(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		if isPostgres(db) {
			testByPatientPlanPostgres(t, db)
		} else {
			testByPatientPlanSQLite(t, db)
		}
	})
}

// byPatientShapes are the bounds (from, to) ByPatient may bind.
var byPatientShapes = [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}}

func testByPatientPlanSQLite(t *testing.T, db *DB) {
	ctx := context.Background()
	for i := range 50 {
		rec := full(i)
		rec.PatientIndex = []byte{byte(i % 5)}
		mustInsert(t, db, rec)
	}
	if _, err := db.db.ExecContext(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	for _, bounds := range byPatientShapes {
		args := []any{provA, []byte{3}}
		for _, b := range bounds {
			if b {
				args = append(args, int64(1))
			}
		}
		rows, err := db.db.QueryContext(ctx, `EXPLAIN QUERY PLAN `+selectRecordings+` `+byPatientWhere(bounds[0], bounds[1]), args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		joined := strings.Join(plan, "\n")
		if !strings.Contains(joined, "SEARCH r USING INDEX recordings_patient (care_provider=? AND patient_index=?") {
			t.Errorf("bounds %v: plan does not search recordings_patient:\n%s", bounds, joined)
		}
		if strings.Contains(joined, "SCAN") {
			t.Errorf("bounds %v: plan scans a table:\n%s", bounds, joined)
		}
	}
}

// The PostgreSQL planner picks by cost, so the plan is checked at a
// realistic size rather than with enable_seqscan = off (which would only
// show that the index can be used): 100,000 recordings of 25,000 patients
// (a quarter at another care provider, a tenth without patient), two staff
// rows each, statistics gathered. The rows go in by one INSERT … SELECT
// from generate_series, engine-specific SQL that only this test runs.
const (
	planRows     = 100_000
	planPatients = 25_000
)

func testByPatientPlanPostgres(t *testing.T, db *DB) {
	ctx := context.Background()
	start := time.Date(2016, 1, 1, 8, 0, 0, 0, time.UTC).UnixNano()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO recordings (id, call_id, care_provider, care_unit, started_at, ended_at, direction, privacy_notice,
			patient_index, format, content_type, audio_bytes, blob_bytes, blob_sha256, key_epoch, wrapped_key, created_at)
			SELECT lpad(to_hex(g), 32, '0'), 'call-' || g, CASE WHEN g % 4 = 0 THEN CAST(? AS TEXT) ELSE CAST(? AS TEXT) END, CAST(? AS TEXT),
				CAST(? AS BIGINT) + g * 60000000000, CAST(? AS BIGINT) + g * 60000000000 + 300000000000, 'inbound', '',
				CASE WHEN g % 10 = 0 THEN NULL ELSE decode(lpad(to_hex(g % CAST(? AS BIGINT)), 8, '0'), 'hex') END,
				'wav', 'audio/wav', 1, 1, sha256(int8send(g)), 1, sha256(int8send(-g)), CAST(? AS BIGINT) + g * 60000000000
			FROM generate_series(1, CAST(? AS BIGINT)) AS g`,
			[]any{provB, provA, unitA, start, start, int64(planPatients), start, int64(planRows)}},
		{`INSERT INTO recording_staff (recording_id, position, staff)
			SELECT id, p, 'SE2321000016-N' || p FROM recordings CROSS JOIN generate_series(0, 1) AS p`, nil},
		{`ANALYZE`, nil},
	} {
		if _, err := db.db.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	patient := []byte{0, 0, 0, 3} // recordings 3, 25003, 50003, 75003: all at provider A
	if recs, err := db.ByPatient(ctx, provA, patient, time.Time{}, time.Time{}); err != nil || len(recs) != 4 || len(recs[0].Staff) != 2 {
		t.Fatalf("ByPatient on the loaded catalog = %d recordings, %v; want 4 with 2 staff each", len(recs), err)
	}
	// A search window over the middle half of the recordings: the time
	// index alone would read half the table. (For a window of minutes the
	// planner rightly prefers recordings_time.)
	span := int64(planRows) * int64(time.Minute)
	for _, bounds := range byPatientShapes {
		args := []any{provA, patient}
		if bounds[0] {
			args = append(args, start+span/4)
		}
		if bounds[1] {
			args = append(args, start+span*3/4)
		}
		rows, err := db.db.QueryContext(ctx, `EXPLAIN `+selectRecordings+` `+byPatientWhere(bounds[0], bounds[1]), args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		joined := strings.Join(plan, "\n")
		if !strings.Contains(joined, "Index Scan using recordings_patient on recordings r") &&
			!strings.Contains(joined, "Bitmap Index Scan on recordings_patient") {
			t.Errorf("bounds %v: plan does not use recordings_patient:\n%s", bounds, joined)
		}
		if strings.Contains(joined, "Seq Scan") {
			t.Errorf("bounds %v: plan scans a table:\n%s", bounds, joined)
		}
	}
}

func TestPending(t *testing.T) { forEachEngine(t, testPending) }

func testPending(t *testing.T, db *DB) {
	ctx := context.Background()
	before := time.Now().UTC()
	mustInsert(t, db, full(1), "site-b")
	time.Sleep(time.Millisecond) // distinct Since even on a coarse clock
	mustInsert(t, db, full(2), "site-b", "site-a")
	mustInsert(t, db, full(3))
	after := time.Now().UTC()

	type entry struct {
		id, site string
		attempts int
		lastErr  string
	}
	check := func(want []entry) {
		t.Helper()
		pend, err := db.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []entry
		for _, p := range pend {
			got = append(got, entry{p.RecordingID, p.Site, p.Attempts, p.LastError})
			if p.Since.Before(before) || p.Since.After(after) || p.Since.Location() != time.UTC {
				t.Errorf("%s/%s Since = %v, want UTC within [%v, %v]", p.RecordingID, p.Site, p.Since, before, after)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Pending = %+v\nwant %+v", got, want)
		}
		if n, err := db.PendingCount(ctx); err != nil || n != len(want) {
			t.Errorf("PendingCount = %d, %v; want %d", n, err, len(want))
		}
	}
	check([]entry{{id(1), "site-b", 0, ""}, {id(2), "site-a", 0, ""}, {id(2), "site-b", 0, ""}})

	if err := db.NotePendingFailure(ctx, id(2), "site-b", "site-b: put: connection refused"); err != nil {
		t.Fatal(err)
	}
	if err := db.NotePendingFailure(ctx, id(2), "site-b", "site-b: put: no space left on device"); err != nil {
		t.Fatal(err)
	}
	check([]entry{{id(1), "site-b", 0, ""}, {id(2), "site-a", 0, ""}, {id(2), "site-b", 2, "site-b: put: no space left on device"}})

	// A long reason is cut to 500 bytes at a character boundary.
	long := strings.Repeat("å", 300) // 600 bytes
	if err := db.NotePendingFailure(ctx, id(1), "site-b", long); err != nil {
		t.Fatal(err)
	}
	check([]entry{{id(1), "site-b", 1, strings.Repeat("å", 250)}, {id(2), "site-a", 0, ""}, {id(2), "site-b", 2, "site-b: put: no space left on device"}})

	if err := db.ResolvePending(ctx, id(1), "site-b"); err != nil {
		t.Fatal(err)
	}
	// Resolving again, and noting a failure of a resolved entry, change nothing.
	if err := db.ResolvePending(ctx, id(1), "site-b"); err != nil {
		t.Fatal(err)
	}
	if err := db.NotePendingFailure(ctx, id(1), "site-b", "late"); err != nil {
		t.Fatal(err)
	}
	check([]entry{{id(2), "site-a", 0, ""}, {id(2), "site-b", 2, "site-b: put: no space left on device"}})
}

func TestTruncate(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc"},
		{"aå", 2, "a"},
		{"aåb", 3, "aå"},
		{"€€", 4, "€"},
		{"€", 2, ""},
	} {
		got := truncate(c.in, c.n)
		if got != c.want || !utf8.ValidString(got) {
			t.Errorf("truncate(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestReopenKeepsDataAndSchemaVersion(t *testing.T) {
	forEachDSN(t, testReopenKeepsDataAndSchemaVersion)
}

func testReopenKeepsDataAndSchemaVersion(t *testing.T, path string) {
	ctx := context.Background()
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	mustInsert(t, db, full(1), "site-b")
	want, err := db.Get(ctx, id(1))
	if err != nil {
		t.Fatal(err)
	}
	versions := func(db *DB) []string {
		t.Helper()
		rows, err := db.db.QueryContext(ctx, `SELECT name, version, applied_at FROM schema_migrations ORDER BY name, version`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var name, at string
			var v int
			if err := rows.Scan(&name, &v, &at); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s/%d/%s", name, v, at))
		}
		return out
	}
	v1 := versions(db)
	if len(v1) != len(migrations) || !strings.HasPrefix(v1[0], "catalog/1/") {
		t.Fatalf("schema_migrations = %v, want catalog versions 1..%d", v1, len(migrations))
	}
	// Mark the recorded versions: a migration run again would add or
	// rewrite a row.
	if _, err := db.db.ExecContext(ctx, `UPDATE schema_migrations SET applied_at = 'marker' WHERE name = 'catalog'`); err != nil {
		t.Fatal(err)
	}
	v1 = versions(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v2 := versions(db); !reflect.DeepEqual(v2, v1) {
		t.Errorf("schema_migrations after reopen = %v, want %v", v2, v1)
	}
	got, err := db.Get(ctx, id(1))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after reopen\n got %#v\nwant %#v", got, want)
	}
	if n, p := count(t, db); n != 1 || p != 1 {
		t.Errorf("after reopen Count, PendingCount = %d, %d; want 1, 1", n, p)
	}
	// Insert promises a durable commit. SQLite: synchronous=FULL on the
	// connection. PostgreSQL: a commit waits for its WAL flush unless
	// synchronous_commit is off or fsync is (the server's settings, which
	// nothing of ours — DSN, session — may turn off).
	if isPostgres(db) {
		var commit, fsync string
		if err := db.db.QueryRowContext(ctx, `SELECT current_setting('synchronous_commit'), current_setting('fsync')`).Scan(&commit, &fsync); err != nil {
			t.Fatal(err)
		}
		if commit != "on" || fsync != "on" {
			t.Errorf("synchronous_commit = %s, fsync = %s; want on, on", commit, fsync)
		}
		return
	}
	var sync int
	if err := db.db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if sync != 2 {
		t.Errorf("PRAGMA synchronous = %d, want 2 (FULL)", sync)
	}
}

func TestConcurrentInserts(t *testing.T) { forEachEngine(t, testConcurrentInserts) }

func testConcurrentInserts(t *testing.T, db *DB) {
	ctx := context.Background()
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				errs <- db.Insert(ctx, full(w*each+i), []string{"site-b"})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, p := count(t, db); n != writers*each || p != writers*each {
		t.Errorf("Count, PendingCount = %d, %d; want %d, %d", n, p, writers*each, writers*each)
	}
}

// TestFileHoldsNoPlaintext stores what the archive stores for identified
// callers (a blind index and a sealed value per personal datum) and checks
// that no column of any catalog table, and on SQLite no file of the
// database, holds the personal data in any usual spelling, while they do
// hold what they were given (so the scan can see). The files of a
// PostgreSQL database belong to its server, outside the test's reach, so
// that engine is checked through SQL alone.
func TestFileHoldsNoPlaintext(t *testing.T) { forEachDSN(t, testFileHoldsNoPlaintext) }

func testFileHoldsNoPlaintext(t *testing.T, dsn string) {
	db := openTest(t, dsn)
	indexKey, fileKey := make([]byte, 32), make([]byte, 32)
	rand.Read(indexKey)
	rand.Read(fileKey)
	block, err := aes.NewCipher(fileKey)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	blindIndex := func(kind, v string) []byte {
		m := hmac.New(sha256.New, indexKey)
		m.Write([]byte(kind + "\x00" + v))
		return m.Sum(nil)
	}
	seal := func(v string) []byte {
		nonce := make([]byte, aead.NonceSize())
		rand.Read(nonce)
		return aead.Seal(nonce, nonce, []byte(v), nil)
	}
	const pnr, phone = "201701102384", "+46701234567"
	for i := range 20 {
		rec := full(i)
		rec.CallID = fmt.Sprintf("callid-marker-%02d", i)
		rec.PatientIndex, rec.PatientSealed = blindIndex("patient", pnr), seal(pnr)
		rec.CallerIndex, rec.CallerSealed = blindIndex("caller", phone), seal(phone)
		mustInsert(t, db, rec, "site-b")
	}
	check := func(when string, all []byte) {
		t.Helper()
		for _, secret := range []string{pnr, "170110-2384", "1701102384", "20170110-2384", phone, "0701234567", "070-123 45 67", "46701234567"} {
			if bytes.Contains(all, []byte(secret)) {
				t.Errorf("%s: database files contain %q", when, secret)
			}
		}
		if !bytes.Contains(all, []byte("callid-marker-07")) || !bytes.Contains(all, blindIndex("patient", pnr)) {
			t.Errorf("%s: scan does not see stored values; the check above proves nothing", when)
		}
	}
	check("tables", dumpTables(t, db))
	if isPostgres(db) {
		return
	}
	// Scan with the WAL still present, then again after close folds it in.
	dir := filepath.Dir(dsn) // the test's own directory
	scan := func() []byte {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var all []byte
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		return all
	}
	check("open", scan())
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	check("closed", scan())
}

// catalogTables are the tables of the catalog's schema.
var catalogTables = []string{"capture_sessions", "deletion_decisions", "deletion_items", "legal_holds", "lost_recordings",
	"patient_links", "pending_deletion", "pending_replication", "recording_staff", "recordings", "tombstones"}

// dumpTables returns every value of every catalog table, as the driver
// hands it over (text and bytes as they are, numbers in decimal).
func dumpTables(t *testing.T, db *DB) []byte {
	t.Helper()
	var out []byte
	for _, table := range catalogTables {
		rows, err := db.db.QueryContext(context.Background(), `SELECT * FROM `+table)
		if err != nil {
			t.Fatal(err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				switch v := v.(type) {
				case []byte:
					out = append(out, v...)
				case string:
					out = append(out, v...)
				default:
					out = fmt.Append(out, v)
				}
				out = append(out, 0)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return out
}
