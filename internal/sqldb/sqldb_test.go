package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"callvault/internal/sqldb/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// forEachEngine runs f as a parallel subtest per engine, with the DSN of
// a new, empty database.
func forEachEngine(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		f(t, filepath.Join(t.TempDir(), "test.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		f(t, pgtest.New(t))
	})
}

func open(t *testing.T, dsn, store string) *DB {
	t.Helper()
	db, err := Open(context.Background(), dsn, store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// exec runs one statement per engine; q holds the SQLite and the
// PostgreSQL text, or one text for both.
func exec(t *testing.T, db *DB, q ...string) {
	t.Helper()
	s := q[0]
	if db.Engine() == Postgres && len(q) > 1 {
		s = q[1]
	}
	if _, err := db.SQL().ExecContext(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

func TestOpenEngine(t *testing.T) {
	for _, c := range []struct {
		dsn  string
		isPG bool
	}{
		{"/var/lib/callvault/catalog.db", false},
		{"catalog.db", false},
		{"file:catalog.db", false},
		{"postgres://u:p@db.example/callvault", true},
		{"postgresql://u@db.example/callvault?sslmode=verify-full", true},
		{"POSTGRES://u@db.example/x", true},
	} {
		if got := IsPostgresDSN(c.dsn); got != c.isPG {
			t.Errorf("IsPostgresDSN(%q) = %v, want %v", c.dsn, got, c.isPG)
		}
	}
	forEachEngine(t, func(t *testing.T, dsn string) {
		db := open(t, dsn, "test")
		want := SQLite
		if strings.HasPrefix(dsn, "postgres://") {
			want = Postgres
		}
		if db.Engine() != want || db.Store() != "test" {
			t.Fatalf("Engine, Store = %v, %q; want %v, test", db.Engine(), db.Store(), want)
		}
		var one int
		if err := db.QueryRowContext(context.Background(), `SELECT 1`).Scan(&one); err != nil || one != 1 {
			t.Fatalf("SELECT 1 = %d, %v", one, err)
		}
	})
}

// A wrong password is refused, and neither it nor anything like a
// password shows in the error.
func TestOpenWrongPasswordIsRedacted(t *testing.T) {
	good := pgtest.New(t)
	u, err := url.Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	realPW, _ := u.User.Password()
	const wrong = "Wr0ng-Secret-7f3a"
	u.User = url.UserPassword(u.User.Username(), wrong)
	_, err = Open(context.Background(), u.String(), "test")
	if err == nil {
		t.Fatal("Open with a wrong password succeeded")
	}
	msg := err.Error()
	t.Logf("error: %s", msg)
	for _, secret := range []string{wrong, realPW} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q contains a password", msg)
		}
	}
	if !strings.HasPrefix(msg, "sqldb: open test at postgres://") || !strings.Contains(msg, ":xxxxx@") {
		t.Errorf("error %q does not name the redacted DSN", msg)
	}

	// A password in the query is redacted too.
	q := "postgres://u@127.0.0.1:1/db?password=" + wrong + "&sslmode=disable"
	if r := RedactDSN(q); strings.Contains(r, wrong) {
		t.Errorf("RedactDSN(%q) = %q", q, r)
	}
	_, err = Open(context.Background(), q, "test")
	if err == nil || strings.Contains(err.Error(), wrong) {
		t.Errorf("Open(password in query) error = %v", err)
	}
	// A password in the message for any other reason is replaced.
	e := redactError(fmt.Errorf("x %s y: %w", wrong, sql.ErrConnDone), wrong)
	if strings.Contains(e.Error(), wrong) || !errors.Is(e, sql.ErrConnDone) {
		t.Errorf("redactError = %v", e)
	}
}

// Placeholders work through every method, on both engines.
func TestPlaceholdersEverywhere(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db := open(t, dsn, "test")
		exec(t, db, `CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`,
			`CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT NOT NULL)`)
		if _, err := db.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES (?, ?), ('lit?', ?)`, "a", 1, 2); err != nil {
			t.Fatal(err)
		}
		st, err := db.PrepareContext(ctx, `INSERT INTO kv (k, v) VALUES (?, ?)`)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.ExecContext(ctx, "b", int64(time.Now().UnixNano())); err != nil { // needs 64 bits
			t.Fatal(err)
		}
		st.Close()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `UPDATE kv SET v = v + ? WHERE k = ?`, 10, "a"); err != nil {
			t.Fatal(err)
		}
		ts, err := tx.PrepareContext(ctx, `SELECT v FROM kv WHERE k = ?`)
		if err != nil {
			t.Fatal(err)
		}
		var v int64
		if err := ts.QueryRowContext(ctx, "a").Scan(&v); err != nil || v != 11 {
			t.Fatalf("v of a = %d, %v; want 11", v, err)
		}
		ts.Close()
		if err := tx.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = 'lit?'`).Scan(&v); err != nil || v != 2 {
			t.Fatalf("v of lit? = %d, %v; want 2", v, err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT k FROM kv WHERE v > ? ORDER BY k`, 1)
		if err != nil {
			t.Fatal(err)
		}
		var ks []string
		for rows.Next() {
			var k string
			rows.Scan(&k)
			ks = append(ks, k)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(ks, ","); got != "a,b,lit?" {
			t.Fatalf("keys = %s", got)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		// RETURNING is the portable LastInsertId.
		exec(t, db, `CREATE TABLE seq (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT)`,
			`CREATE TABLE seq (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, x TEXT)`)
		for want := int64(1); want <= 2; want++ {
			var id int64
			if err := db.QueryRowContext(ctx, `INSERT INTO seq (x) VALUES (?) RETURNING id`, "x").Scan(&id); err != nil || id != want {
				t.Fatalf("RETURNING id = %d, %v; want %d", id, err, want)
			}
		}
		// A parameter of no inferable type needs a CAST on PostgreSQL.
		var n int64
		if err := db.QueryRowContext(ctx, `SELECT CAST(? AS BIGINT) + 1`, 41).Scan(&n); err != nil || n != 42 {
			t.Fatalf("CAST(?) + 1 = %d, %v", n, err)
		}
	})
}

// Go bools are stored as 0/1 in integer columns on both engines and read
// back into bool; on PostgreSQL, without the conversion, pgx refuses them.
func TestBoolArguments(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db := open(t, dsn, "test")
		exec(t, db, `CREATE TABLE f (id INTEGER PRIMARY KEY, flag INTEGER)`,
			`CREATE TABLE f (id BIGINT PRIMARY KEY, flag BIGINT)`)
		tr, fa := true, false
		for i, v := range []any{true, false, &tr, &fa, (*bool)(nil), sql.NullBool{Bool: true, Valid: true}, sql.NullBool{}} {
			if _, err := db.ExecContext(ctx, `INSERT INTO f (id, flag) VALUES (?, ?)`, i, v); err != nil {
				t.Fatalf("insert %T %v: %v", v, v, err)
			}
		}
		want := []sql.NullInt64{{Int64: 1, Valid: true}, {Int64: 0, Valid: true}, {Int64: 1, Valid: true}, {Int64: 0, Valid: true}, {}, {Int64: 1, Valid: true}, {}}
		for i, w := range want {
			var got sql.NullInt64
			if err := db.QueryRowContext(ctx, `SELECT flag FROM f WHERE id = ?`, i).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != w {
				t.Errorf("row %d: flag = %+v, want %+v", i, got, w)
			}
		}
		var on, off bool
		if err := db.QueryRowContext(ctx, `SELECT flag FROM f WHERE id = 0`).Scan(&on); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, `SELECT flag FROM f WHERE id = 1`).Scan(&off); err != nil {
			t.Fatal(err)
		}
		if !on || off {
			t.Errorf("scanned flags = %v, %v; want true, false", on, off)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM f WHERE flag <> 0`).Scan(&n); err != nil || n != 3 {
			t.Errorf("COUNT(flag <> 0) = %d, %v; want 3", n, err)
		}
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM f WHERE flag = ?`, false).Scan(&n); err != nil || n != 2 {
			t.Errorf("COUNT(flag = false) = %d, %v; want 2", n, err)
		}
		if db.Engine() == Postgres {
			_, err := db.SQL().ExecContext(ctx, `UPDATE f SET flag = $1`, true)
			if err == nil {
				t.Error("pgx stored a bool in a BIGINT column; the conversion is no longer needed")
			}
		}
	})
}

// NULL and the empty byte string are different values on both engines.
func TestBytesNullVersusEmpty(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db := open(t, dsn, "test")
		exec(t, db, `CREATE TABLE b (id INTEGER PRIMARY KEY, v BLOB)`, `CREATE TABLE b (id BIGINT PRIMARY KEY, v BYTEA)`)
		vals := [][]byte{nil, {}, {0, 0xff, 0}}
		for i, v := range vals {
			if _, err := db.ExecContext(ctx, `INSERT INTO b (id, v) VALUES (?, ?)`, i, v); err != nil {
				t.Fatal(err)
			}
		}
		var nulls, empties int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM b WHERE v IS NULL`).Scan(&nulls); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM b WHERE length(v) = 0`).Scan(&empties); err != nil {
			t.Fatal(err)
		}
		if nulls != 1 || empties != 1 {
			t.Errorf("NULL rows %d, empty rows %d; want 1, 1", nulls, empties)
		}
		// sql.Null[[]byte] tells NULL from empty on both engines.
		for i, want := range vals {
			var got sql.Null[[]byte]
			if err := db.QueryRowContext(ctx, `SELECT v FROM b WHERE id = ?`, i).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got.Valid != (want != nil) || string(got.V) != string(want) {
				t.Errorf("row %d: read %#v, wrote %#v", i, got, want)
			}
		}
		// A plain []byte does not: modernc reads the empty BLOB as nil, pgx
		// as []byte{}. The package doc says so; this keeps it true.
		var plain []byte
		if err := db.QueryRowContext(ctx, `SELECT v FROM b WHERE id = 1`).Scan(&plain); err != nil {
			t.Fatal(err)
		}
		if len(plain) != 0 || (plain == nil) != (db.Engine() == SQLite) {
			t.Errorf("empty value scanned into []byte = %#v on %v", plain, db.Engine())
		}
		// A BLOB is found by equality with a []byte argument.
		var id int
		if err := db.QueryRowContext(ctx, `SELECT id FROM b WHERE v = ?`, []byte{0, 0xff, 0}).Scan(&id); err != nil || id != 2 {
			t.Errorf("lookup by bytes = %d, %v", id, err)
		}
	})
}

// Duplicate keys are IsUniqueViolation on both engines, dangling
// references IsForeignKeyViolation; neither is the other, and the error
// text does not quote the value.
func TestConstraintErrors(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db := open(t, dsn, "test")
		exec(t, db, `CREATE TABLE p (k TEXT PRIMARY KEY, u TEXT UNIQUE)`)
		exec(t, db, `CREATE TABLE c (p TEXT NOT NULL REFERENCES p(k))`)
		const secret = "199001012385"
		if _, err := db.ExecContext(ctx, `INSERT INTO p (k, u) VALUES (?, ?)`, secret, "u1"); err != nil {
			t.Fatal(err)
		}
		_, pk := db.ExecContext(ctx, `INSERT INTO p (k, u) VALUES (?, ?)`, secret, "u2")
		_, uq := db.ExecContext(ctx, `INSERT INTO p (k, u) VALUES (?, ?)`, "other", "u1")
		_, fk := db.ExecContext(ctx, `INSERT INTO c (p) VALUES (?)`, "197001010000")
		for name, err := range map[string]error{"primary key": pk, "unique": uq} {
			if !IsUniqueViolation(err) || IsForeignKeyViolation(err) || IsBusy(err) {
				t.Errorf("%s: %v: IsUniqueViolation %v, IsForeignKeyViolation %v", name, err, IsUniqueViolation(err), IsForeignKeyViolation(err))
			}
		}
		if !IsForeignKeyViolation(fk) || IsUniqueViolation(fk) {
			t.Errorf("foreign key: %v: IsForeignKeyViolation %v, IsUniqueViolation %v", fk, IsForeignKeyViolation(fk), IsUniqueViolation(fk))
		}
		for _, err := range []error{pk, uq, fk} {
			if err != nil && (strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "197001010000")) {
				t.Errorf("error %q quotes a value", err)
			}
		}
		for _, err := range []error{nil, errors.New("UNIQUE constraint failed"), sql.ErrNoRows} {
			if IsUniqueViolation(err) || IsForeignKeyViolation(err) || IsBusy(err) {
				t.Errorf("%v classified as a database error", err)
			}
		}
		// The ports' portable INSERT OR IGNORE.
		if _, err := db.ExecContext(ctx, `INSERT INTO p (k, u) VALUES (?, ?) ON CONFLICT DO NOTHING`, secret, "u3"); err != nil {
			t.Errorf("ON CONFLICT DO NOTHING: %v", err)
		}
	})
}

// Write transactions are serialized per store: concurrent read-then-write
// transactions from two handles never lose an update. The second
// PostgreSQL handle gets an in-process lock of its own, as a second
// process would have, so only the advisory lock keeps them apart.
func TestWriteTransactionsAreSerialized(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		a, b := open(t, dsn, "test"), open(t, dsn, "test")
		if b.Engine() == Postgres {
			b.lock = &storeLock{ch: make(chan struct{}, 1)}
		}
		exec(t, a, `CREATE TABLE counter (n INTEGER NOT NULL)`, `CREATE TABLE counter (n BIGINT NOT NULL)`)
		exec(t, a, `INSERT INTO counter (n) VALUES (0)`)
		const workers, rounds = 6, 15
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			db := a
			if w%2 == 1 {
				db = b
			}
			wg.Go(func() {
				for range rounds {
					if err := increment(ctx, db); err != nil {
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
		var n int
		if err := a.QueryRowContext(ctx, `SELECT n FROM counter`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != workers*rounds {
			t.Fatalf("counter = %d after %d increments: updates were lost", n, workers*rounds)
		}
	})
}

func increment(ctx context.Context, db *DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT n FROM counter`).Scan(&n); err != nil {
		return err
	}
	time.Sleep(time.Millisecond) // widen the window a lost update needs
	if _, err := tx.ExecContext(ctx, `UPDATE counter SET n = ?`, n+1); err != nil {
		return err
	}
	return tx.Commit()
}

// Only default or READ COMMITTED isolation is allowed for a write
// transaction; a read-only one may choose, and takes no writer lock.
func TestBeginTxIsolation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db := open(t, dsn, "test")
		for _, l := range []sql.IsolationLevel{sql.LevelSerializable, sql.LevelRepeatableRead, sql.LevelReadUncommitted, sql.LevelSnapshot} {
			if tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: l}); err == nil {
				tx.Rollback()
				t.Errorf("write transaction at %v began", l)
			}
		}
		for _, l := range []sql.IsolationLevel{sql.LevelDefault, sql.LevelReadCommitted} {
			tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: l})
			if err != nil {
				t.Fatalf("write transaction at %v: %v", l, err)
			}
			tx.Rollback()
		}
		w, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Rollback()
		// A reader starts while the writer holds the lock.
		iso := sql.LevelDefault
		if db.Engine() == Postgres {
			iso = sql.LevelRepeatableRead
		}
		r, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: iso})
		if err != nil {
			t.Fatalf("read-only transaction beside a writer: %v", err)
		}
		var one int
		if err := r.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
			t.Fatal(err)
		}
		r.Rollback()
	})
}

// A writer that waits longer than lock_timeout fails with IsBusy: on the
// in-process lock (another writer of this process), on the advisory lock
// (another process), and on SQLite's write lock.
func TestLockTimeoutIsBusy(t *testing.T) {
	ctx := context.Background()
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		base := pgtest.New(t)
		def := open(t, base, "test")
		var lt string
		if err := def.QueryRowContext(ctx, `SHOW lock_timeout`).Scan(&lt); err != nil || lt != "10s" {
			t.Fatalf("default lock_timeout = %q, %v; want 10s", lt, err)
		}
		db := open(t, base+"&lock_timeout=300ms", "test")
		if err := db.QueryRowContext(ctx, `SHOW lock_timeout`).Scan(&lt); err != nil || lt != "300ms" {
			t.Fatalf("lock_timeout = %q, %v; want 300ms", lt, err)
		}
		if db.lockTimeout != 300*time.Millisecond {
			t.Fatalf("in-process lock timeout = %v", db.lockTimeout)
		}

		// Another writer of this process: the in-process lock times out.
		held, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = db.BeginTx(ctx, nil)
		if !IsBusy(err) || !errors.Is(err, ErrBusy) {
			t.Fatalf("BeginTx beside a writer: %v; want ErrBusy", err)
		}
		if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
			t.Errorf("gave up after %v, want about 300ms", d)
		}
		held.Rollback()

		// Another process (a raw transaction holding the advisory lock):
		// PostgreSQL's lock_timeout, SQLSTATE 55P03.
		other, err := db.SQL().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Rollback()
		if _, err := other.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, db.lockKey); err != nil {
			t.Fatal(err)
		}
		_, err = db.BeginTx(ctx, nil)
		if !IsBusy(err) || pgCode(err) != "55P03" {
			t.Fatalf("BeginTx beside another process's writer: %v; want SQLSTATE 55P03", err)
		}
		// The in-process lock was released on that failure.
		other.Rollback()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatalf("BeginTx after the other writer ended: %v", err)
		}
		tx.Rollback()

		if _, err := Open(ctx, base+"&lock_timeout=soon", "test"); err == nil {
			t.Error("Open with lock_timeout=soon succeeded")
		}
	})
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		db := open(t, filepath.Join(t.TempDir(), "test.db"), "test")
		held, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer held.Rollback()
		// busy_timeout is 10 s in sqlitedb.Open; a connection with none
		// shows the error at once.
		c, err := db.SQL().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.ExecContext(ctx, `PRAGMA busy_timeout = 0`); err != nil {
			t.Fatal(err)
		}
		_, err = c.ExecContext(ctx, `BEGIN IMMEDIATE`)
		if !IsBusy(err) {
			t.Fatalf("BEGIN IMMEDIATE beside a writer: %v; want IsBusy", err)
		}
	})
}

// parsePGDuration reads what PostgreSQL accepts for lock_timeout.
func TestParsePGDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"10s": 10 * time.Second, "300ms": 300 * time.Millisecond, "1500": 1500 * time.Millisecond,
		"1min": time.Minute, "0": 0, "2 s": 2 * time.Second, "0.5s": 500 * time.Millisecond,
	} {
		if got, err := parsePGDuration(in); err != nil || got != want {
			t.Errorf("parsePGDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "10 parsecs", "-1s"} {
		if _, err := parsePGDuration(in); err == nil {
			t.Errorf("parsePGDuration(%q) succeeded", in)
		}
	}
}

// A writer whose context ends releases the in-process lock even if it
// never calls Rollback.
func TestCancelledWriterReleasesLock(t *testing.T) {
	db := open(t, pgtest.New(t)+"&lock_timeout=2s", "test")
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := db.BeginTx(ctx, nil); err != nil {
		t.Fatal(err)
	}
	cancel() // and no Rollback
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatalf("BeginTx after the first writer's context ended: %v", err)
	}
	tx.Rollback()
}

// Snapshot copies a SQLite database and is refused on PostgreSQL;
// Checkpoint works on SQLite and does nothing on PostgreSQL.
func TestSnapshotAndCheckpoint(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db := open(t, dsn, "test")
		exec(t, db, `CREATE TABLE x (v TEXT)`)
		if _, err := db.ExecContext(ctx, `INSERT INTO x (v) VALUES (?)`, "kept"); err != nil {
			t.Fatal(err)
		}
		if err := db.Checkpoint(ctx); err != nil {
			t.Fatalf("Checkpoint: %v", err)
		}
		path := filepath.Join(t.TempDir(), "snap.db")
		err := db.Snapshot(ctx, path)
		if db.Engine() == Postgres {
			if !errors.Is(err, ErrSnapshotUnsupported) || !strings.Contains(err.Error(), "pg_basebackup") {
				t.Fatalf("Snapshot on PostgreSQL: %v; want ErrSnapshotUnsupported", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		snap := open(t, path, "test")
		var v string
		if err := snap.QueryRowContext(ctx, `SELECT v FROM x`).Scan(&v); err != nil || v != "kept" {
			t.Fatalf("snapshot row = %q, %v", v, err)
		}
	})
}
