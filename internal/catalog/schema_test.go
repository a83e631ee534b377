package catalog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"callvault/internal/sqldb/pgtest"
	"callvault/internal/sqlitedb"
)

// A catalog.db made by the code before sqldb — the old migration texts
// through sqlitedb.Migrate, rows as the old statements wrote them — opens
// with the new code, keeps its data, re-applies nothing, and takes new
// rows (AUTOINCREMENT ids carry on). The check is about SQLite files, so it
// has no PostgreSQL counterpart.
func TestOpensOldSQLiteFile(t *testing.T) {
	if len(migrations) < len(oldMigrations) {
		t.Fatalf("%d migrations, %d shipped", len(migrations), len(oldMigrations))
	}
	for i, old := range oldMigrations {
		if migrations[i].SQLite != old {
			t.Errorf("SQLite text of shipped version %d changed", i+1)
		}
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	old, err := sqlitedb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitedb.Migrate(ctx, old, "catalog", oldMigrations); err != nil {
		t.Fatal(err)
	}
	rec := full(1)
	rec.RetentionUntil = rec.EndedAt.AddDate(10, 0, 0)
	rec.SourceIndex, rec.Incomplete, rec.CaptureStats = []byte("src"), true, `{"streams":[]}`
	rec.CallerIndex = []byte{} // an empty BLOB, as the old code stored it
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		// The old Insert's statements, with the Go types it passed
		// (int KeyEpoch and staff position, bool Incomplete).
		{`INSERT INTO recordings (id, call_id, care_provider, care_unit, started_at, ended_at,
		direction, privacy_notice, patient_index, patient_sealed, caller_index, caller_sealed, format, content_type,
		audio_bytes, blob_bytes, blob_sha256, key_epoch, wrapped_key, created_at, retention_until, source_index,
		incomplete, capture_stats)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`, []any{rec.ID, rec.CallID, rec.CareProvider, rec.CareUnit, rec.StartedAt.UnixNano(), rec.EndedAt.UnixNano(),
			rec.Direction, rec.PrivacyNotice, rec.PatientIndex, rec.PatientSealed, rec.CallerIndex, rec.CallerSealed,
			rec.Format, rec.ContentType, rec.AudioBytes, rec.BlobBytes, rec.BlobSHA256, rec.KeyEpoch, rec.WrappedKey, rec.CreatedAt.UnixNano(),
			rec.RetentionUntil.UnixNano(), rec.SourceIndex, rec.Incomplete, rec.CaptureStats}},
		{`INSERT INTO recording_staff (recording_id, position, staff) VALUES (?, ?, ?)`, []any{rec.ID, 0, rec.Staff[0]}},
		{`INSERT INTO recording_staff (recording_id, position, staff) VALUES (?, ?, ?)`, []any{rec.ID, 1, rec.Staff[1]}},
		{`INSERT INTO recording_staff (recording_id, position, staff) VALUES (?, ?, ?)`, []any{rec.ID, 2, rec.Staff[2]}},
		{`INSERT INTO pending_replication (recording_id, site, since) VALUES (?, ?, ?)`, []any{rec.ID, "site-b", at}},
		{`INSERT INTO legal_holds (recording_id, reference, set_by, set_at) VALUES (?, ?, ?, ?)`, []any{rec.ID, "ref-1", "SE2321000016-JUR1", at}},
		{`INSERT INTO patient_links (recording_id, linked_at, linked_by, previous_index, previous_sealed) VALUES (?, ?, ?, ?, ?)`,
			[]any{rec.ID, at, "SE2321000016-CAP1", nil, nil}},
		{`INSERT INTO capture_sessions (recording_id, care_provider, care_unit, started_at, state) VALUES (?, ?, ?, ?, ?)`,
			[]any{id(2), provA, unitA, at, CaptureActive}},
	} {
		if _, err := old.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	db := openTest(t, path)
	got, err := db.Get(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rec) {
		t.Errorf("Get of the old row\n got %#v\nwant %#v", got, rec)
	}
	if p, err := db.Pending(ctx); err != nil || len(p) != 1 || p[0].Site != "site-b" {
		t.Errorf("Pending = %+v, %v", p, err)
	}
	if cs, err := db.CaptureSessions(ctx, CaptureActive, 10); err != nil || len(cs) != 1 || cs[0].RecordingID != id(2) {
		t.Errorf("CaptureSessions = %+v, %v", cs, err)
	}
	var versions int
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE name = 'catalog'`).Scan(&versions); err != nil || versions != len(migrations) {
		t.Errorf("catalog versions = %d, %v; want %d", versions, err, len(migrations))
	}
	// New rows after the old: ids carry on from the old ones.
	h, err := db.SetHold(ctx, rec.ID, "ref-2", "SE2321000016-JUR1", time.Unix(0, at))
	if err != nil || h.ID != 2 {
		t.Errorf("SetHold on the old file = %+v, %v; want id 2", h, err)
	}
	l, err := db.LinkPatient(ctx, rec.ID, []byte{1}, []byte{2}, "SE2321000016-CAP1", time.Unix(0, at))
	if err != nil || l.ID != 2 {
		t.Errorf("LinkPatient on the old file = %+v, %v; want id 2", l, err)
	}
	mustInsert(t, db, full(3), "site-a")
}

// Several processes opening one catalog at once migrate it once and all
// work.
func TestConcurrentOpen(t *testing.T) {
	forEachDSN(t, func(t *testing.T, dsn string) {
		const n = 4
		dbs := make([]*DB, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { dbs[i], errs[i] = Open(context.Background(), dsn) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("open %d: %v", i, err)
			}
			defer dbs[i].Close()
		}
		mustInsert(t, dbs[0], full(1))
		if n, err := dbs[n-1].Count(context.Background()); err != nil || n != 1 {
			t.Errorf("Count on another handle = %d, %v", n, err)
		}
		var versions int
		if err := dbs[1].db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM schema_migrations WHERE name = 'catalog'`).Scan(&versions); err != nil || versions != len(migrations) {
			t.Errorf("catalog versions = %d, %v; want %d", versions, err, len(migrations))
		}
	})
}

// The audit log shares the catalog's database under its own writer lock
// (sqldb store "audit"), so no catalog statement may touch its tables:
// none names one (audit tables are audit_*), and the catalog's schema
// creates its own tables only, on both engines.
func TestTouchesNoAuditTable(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src := strings.ToLower(string(b))
		if strings.Contains(src, "audit_") || strings.Contains(src, `"callvault/internal/audit"`) {
			t.Errorf("%s names an audit table or imports the audit package", f)
		}
	}
	forEachEngine(t, func(t *testing.T, db *DB) {
		query := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY name`
		if isPostgres(db) {
			query = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`
		}
		rows, err := db.db.QueryContext(context.Background(), query)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var tables []string
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, name)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		want := slices.Sorted(slices.Values(append([]string{"schema_migrations"}, catalogTables...)))
		if !reflect.DeepEqual(tables, want) {
			t.Errorf("tables = %v, want %v", tables, want)
		}
	})
}

// The PostgreSQL schema has the SQLite schema's indexes: the same names,
// on the same columns in the same order, as unique and as partial, and the
// same primary keys. (Their text differs only in types.)
func TestIndexesMirror(t *testing.T) {
	ctx := context.Background()
	lite := openTest(t, filepath.Join(t.TempDir(), "catalog.db"))
	pg := openTest(t, pgtest.New(t))

	sqliteIdx := map[string]string{}
	rows, err := lite.db.QueryContext(ctx, `SELECT t.name, l.name, l."unique", l.partial, l.origin,
		(SELECT group_concat(name, ',') FROM (SELECT c.name FROM pragma_index_info(l.name) c ORDER BY c.seqno))
		FROM sqlite_master t, pragma_index_list(t.name) l WHERE t.type = 'table' AND t.name != 'schema_migrations'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var table, name, origin, cols string
		var unique, partial bool
		if err := rows.Scan(&table, &name, &unique, &partial, &origin, &cols); err != nil {
			t.Fatal(err)
		}
		if origin == "pk" {
			name = table + "_pkey" // sqlite_autoindex_…, PostgreSQL's name
		}
		sqliteIdx[name] = describeIndex(table, cols, unique, partial)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	// INTEGER PRIMARY KEY AUTOINCREMENT is the rowid, no index.
	for _, table := range []string{"legal_holds", "deletion_decisions", "patient_links"} {
		sqliteIdx[table+"_pkey"] = describeIndex(table, "id", true, false)
	}

	pgIdx := map[string]string{}
	rows, err = pg.db.QueryContext(ctx, `SELECT t.relname, i.relname, ix.indisunique, ix.indpred IS NOT NULL,
		array_to_string(ARRAY(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, n)
			JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum ORDER BY k.n), ',')
		FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid
		JOIN pg_namespace ns ON ns.oid = t.relnamespace
		WHERE ns.nspname = current_schema() AND t.relname != 'schema_migrations'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var table, name, cols string
		var unique, partial bool
		if err := rows.Scan(&table, &name, &unique, &partial, &cols); err != nil {
			t.Fatal(err)
		}
		pgIdx[name] = describeIndex(table, cols, unique, partial)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()

	if !reflect.DeepEqual(pgIdx, sqliteIdx) {
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for k := range sqliteIdx {
				yield(k)
			}
			for k := range pgIdx {
				if _, ok := sqliteIdx[k]; !ok {
					yield(k)
				}
			}
		}) {
			if sqliteIdx[name] != pgIdx[name] {
				t.Errorf("index %s: SQLite %q, PostgreSQL %q", name, sqliteIdx[name], pgIdx[name])
			}
		}
	}
	if testing.Verbose() {
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for k := range pgIdx {
				yield(k)
			}
		}) {
			t.Logf("%-28s %s", name, pgIdx[name])
		}
	}
}

func describeIndex(table, cols string, unique, partial bool) string {
	d := table + " (" + cols + ")"
	if unique {
		d += " unique"
	}
	if partial {
		d += " partial"
	}
	return d
}

// Text that PostgreSQL cannot store (invalid UTF-8, NUL) is refused as
// data, cleaned as operational text, and matches nothing as a key — the
// same on both engines — and no error quotes it.
func TestTextFields(t *testing.T) { forEachEngine(t, testTextFields) }

func testTextFields(t *testing.T, db *DB) {
	ctx := context.Background()
	const bad = "Sk\xf6terska\x00" // Latin-1 ö and a NUL: neither engine may see them in an error
	refused := func(what, field string, err error) {
		t.Helper()
		switch {
		case err == nil:
			t.Errorf("%s with a bad %s succeeded", what, field)
		case !strings.Contains(err.Error(), field):
			t.Errorf("%s: error %q does not name %s", what, err, field)
		case strings.Contains(err.Error(), "Sk") || strings.Contains(err.Error(), "\xf6") || strings.Contains(err.Error(), "\x00"):
			t.Errorf("%s: error %q quotes the value", what, err)
		}
	}
	for field, mutate := range map[string]func(r *Recording) []string{
		"call_id":       func(r *Recording) []string { r.CallID = bad; return nil },
		"care_unit":     func(r *Recording) []string { r.CareUnit = bad; return nil },
		"capture_stats": func(r *Recording) []string { r.CaptureStats = bad; return nil },
		"staff[1]":      func(r *Recording) []string { r.Staff[1] = bad; return nil },
		"site":          func(r *Recording) []string { return []string{"site-a", bad} },
	} {
		r := full(1)
		refused("Insert", field, db.Insert(ctx, r, mutate(r)))
	}
	if n, p := count(t, db); n != 0 || p != 0 {
		t.Fatalf("after refusals Count, PendingCount = %d, %d", n, p)
	}
	refused("BeginCapture", "care_unit", db.BeginCapture(ctx, &CaptureSession{RecordingID: id(5), CareProvider: provA, CareUnit: bad, StartedAt: time.Now()}))

	mustInsert(t, db, full(1), "site-b")
	_, err := db.SetHold(ctx, id(1), bad, "SE2321000016-JUR1", time.Now())
	refused("SetHold", "reference", err)
	refused("RegisterDeletion", "case_number", db.RegisterDeletion(ctx, &Decision{Kind: KindIVO, CareProvider: provA, CaseNumber: bad,
		DecidedOn: "2026-01-01", RegisteredBy: "SE2321000016-DPO1", Recordings: []string{id(1)}}))
	_, err = db.LinkPatient(ctx, id(1), []byte{1}, []byte{2}, bad, time.Now())
	refused("LinkPatient", "linked_by", err)

	// Operational text is kept, cleaned.
	if err := db.NotePendingFailure(ctx, id(1), "site-b", "put: "+bad); err != nil {
		t.Fatal(err)
	}
	if p, err := db.Pending(ctx); err != nil || len(p) != 1 || p[0].LastError != "put: Sk\uFFFDterska" {
		t.Errorf("Pending after a failure with bad bytes = %+v, %v", p, err)
	}
	if err := db.BeginCapture(ctx, &CaptureSession{RecordingID: id(5), CareProvider: provA, CareUnit: unitA, StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := db.EndCapture(ctx, id(5), CaptureFailed, bad, time.Now()); err != nil {
		t.Fatal(err)
	}
	if cs, err := db.CaptureSessions(ctx, CaptureFailed, 1); err != nil || len(cs) != 1 || cs[0].Detail != "Sk\uFFFDterska" {
		t.Errorf("failed session = %+v, %v", cs, err)
	}

	// Keys no row can hold match nothing.
	if ids, err := db.ByCallID(ctx, provA, bad); err != nil || ids != nil {
		t.Errorf("ByCallID(bad) = %v, %v", ids, err)
	}
	if h, err := db.Holds(ctx, bad); err != nil || h != nil {
		t.Errorf("Holds(bad) = %v, %v", h, err)
	}
	if _, err := db.ReleaseHold(ctx, bad, 1, "x", time.Now()); !errors.Is(err, ErrNoHold) {
		t.Errorf("ReleaseHold(bad) = %v, want ErrNoHold", err)
	}
	if _, err := db.Tombstone(ctx, bad); !errors.Is(err, ErrNotFound) {
		t.Errorf("Tombstone(bad) = %v, want ErrNotFound", err)
	}
	if l, err := db.PatientLinks(ctx, bad); err != nil || l != nil {
		t.Errorf("PatientLinks(bad) = %v, %v", l, err)
	}
	if _, err := db.LinkPatient(ctx, bad, nil, nil, "x", time.Now()); !errors.Is(err, ErrNotFound) {
		t.Errorf("LinkPatient(bad) = %v, want ErrNotFound", err)
	}
	if err := db.EndCapture(ctx, bad, CaptureFailed, "", time.Now()); !errors.Is(err, ErrCaptureState) {
		t.Errorf("EndCapture(bad) = %v, want ErrCaptureState", err)
	}
	if err := db.CheckDeletable(ctx, provA, []string{bad}); !errors.Is(err, ErrNotFound) {
		t.Errorf("CheckDeletable(bad) = %v, want ErrNotFound", err)
	}
}
