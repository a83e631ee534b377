package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"callvault/internal/sqlitedb"
)

// Engine is the database engine behind a DB.
type Engine int

// The engines.
const (
	SQLite   Engine = iota + 1 // an embedded SQLite file (the default)
	Postgres                   // a PostgreSQL server
)

func (e Engine) String() string {
	switch e {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return fmt.Sprintf("Engine(%d)", int(e))
}

// defaultLockTimeout is how long a writer waits for a lock before its
// statement fails with an error that IsBusy reports, like SQLite's
// busy_timeout(10000) in sqlitedb.Open.
const defaultLockTimeout = 10 * time.Second

// DB is a database of one store on either engine. It is safe for
// concurrent use; the methods take ? placeholders (see the package doc).
type DB struct {
	sql    *sql.DB     // immutable
	engine Engine      // immutable
	store  string      // immutable
	binds  rebindCache // PostgreSQL only

	// PostgreSQL only, immutable after Open:
	lock        *storeLock    // in-process writer lock of the store
	lockKey     int64         // pg_advisory_xact_lock key of the store
	lockTimeout time.Duration // limit of the in-process wait; 0: none
}

// IsPostgresDSN reports whether dsn names a PostgreSQL database (a URL
// with scheme postgres or postgresql) rather than a SQLite file.
func IsPostgresDSN(dsn string) bool {
	l := strings.ToLower(dsn)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// Open opens the database of store (a short lower-case name: "directory",
// "catalog", "audit"; it names the writer lock) at dsn and pings it.
//
// A dsn starting postgres:// or postgresql:// is a PostgreSQL connection
// URL (pgx syntax; sslmode, lock_timeout and other run-time parameters in
// its query; use sslmode=verify-full for a server on another host). The
// database must be in encoding UTF8. Anything else is the path of a
// SQLite file, opened (and created) by sqlitedb.Open: WAL,
// synchronous=FULL, foreign keys, a 10 s busy timeout and BEGIN IMMEDIATE.
//
// Errors name the store and the DSN with its password redacted.
func Open(ctx context.Context, dsn, store string) (*DB, error) {
	if store == "" {
		return nil, errors.New("sqldb: open: no store name")
	}
	if !IsPostgresDSN(dsn) {
		db, err := sqlitedb.Open(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("sqldb: open %s: %w", store, err)
		}
		return &DB{sql: db, engine: SQLite, store: store}, nil
	}
	db, err := openPostgres(ctx, dsn, store)
	if err != nil {
		return nil, redactError(fmt.Errorf("sqldb: open %s at %s: %w", store, RedactDSN(dsn), err), dsnPassword(dsn))
	}
	return db, nil
}

func openPostgres(ctx context.Context, dsn, store string) (*DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	lt := defaultLockTimeout
	if v, ok := cfg.RuntimeParams["lock_timeout"]; ok {
		if lt, err = parsePGDuration(v); err != nil {
			return nil, err
		}
	} else {
		cfg.RuntimeParams["lock_timeout"] = "10s"
	}
	db := stdlib.OpenDB(*cfg)
	db.SetConnMaxIdleTime(time.Minute)
	// The first query is the ping. TEXT columns hold Swedish names; a
	// database in another encoding would mangle or refuse them.
	var enc string
	if err := db.QueryRowContext(ctx, `SELECT current_setting('server_encoding')`).Scan(&enc); err != nil {
		db.Close()
		return nil, err
	}
	if enc != "UTF8" {
		db.Close()
		return nil, fmt.Errorf("database encoding is %s, want UTF8 (CREATE DATABASE … ENCODING 'UTF8')", enc)
	}
	return &DB{
		sql:         db,
		engine:      Postgres,
		store:       store,
		lock:        lockFor(fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database), store),
		lockKey:     advisoryKey("store " + store),
		lockTimeout: lt,
	}, nil
}

// advisoryKey derives a pg_advisory_xact_lock key from name.
func advisoryKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("callvault/sqldb " + name))
	return int64(h.Sum64())
}

// Engine returns the engine of db.
func (db *DB) Engine() Engine { return db.engine }

// Store returns the store name db was opened with.
func (db *DB) Store() string { return db.store }

// SQL returns the underlying *sql.DB, for the rare engine-specific call
// and for pool settings. Queries on it are not rebound, and writes on it
// bypass the writer lock of BeginTx.
func (db *DB) SQL() *sql.DB { return db.sql }

// Close closes the database. db is invalid afterwards.
func (db *DB) Close() error { return db.sql.Close() }

// Rebind returns query in the placeholder syntax of db's engine: unchanged
// for SQLite, with $1..$n for PostgreSQL. Results are cached.
func (db *DB) Rebind(query string) string {
	if db.engine != Postgres {
		return query
	}
	return db.binds.get(query)
}

// ExecContext executes query without returning rows. On PostgreSQL it is
// not serialized with write transactions; see the package doc.
func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return db.sql.ExecContext(ctx, db.Rebind(query), convertArgs(args)...)
}

// QueryContext executes a query that returns rows.
func (db *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.sql.QueryContext(ctx, db.Rebind(query), convertArgs(args)...)
}

// QueryRowContext executes a query that returns at most one row.
func (db *DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return db.sql.QueryRowContext(ctx, db.Rebind(query), convertArgs(args)...)
}

// PrepareContext prepares query for repeated use outside a transaction.
func (db *DB) PrepareContext(ctx context.Context, query string) (*Stmt, error) {
	s, err := db.sql.PrepareContext(ctx, db.Rebind(query))
	if err != nil {
		return nil, err
	}
	return &Stmt{s: s}, nil
}

// BeginTx starts a transaction. Unless opts says ReadOnly it is a write
// transaction: it waits (at most the lock timeout) until no other write
// transaction of the store runs — on SQLite through BEGIN IMMEDIATE, on
// PostgreSQL through the store's in-process and advisory locks — so reads
// inside it see every committed write and nothing changes under it. A
// write transaction MUST use the default isolation level or
// LevelReadCommitted. A read-only transaction takes no lock.
//
// The transaction MUST end with Commit or Rollback; the writer lock is
// also released when ctx is done (database/sql then rolls back).
func (db *DB) BeginTx(ctx context.Context, opts *sql.TxOptions) (*Tx, error) {
	readOnly := opts != nil && opts.ReadOnly
	if !readOnly && opts != nil && opts.Isolation != sql.LevelDefault && opts.Isolation != sql.LevelReadCommitted {
		return nil, fmt.Errorf("sqldb: %s: a write transaction runs at the default isolation level, not %v", db.store, opts.Isolation)
	}
	if db.engine != Postgres || readOnly {
		tx, err := db.sql.BeginTx(ctx, opts)
		if err != nil {
			return nil, err
		}
		return &Tx{tx: tx, db: db}, nil
	}

	release, err := db.lock.acquire(ctx, db.lockTimeout)
	if err != nil {
		return nil, fmt.Errorf("sqldb: %s: wait for the writer lock: %w", db.store, err)
	}
	// Explicit READ COMMITTED: a server whose default is REPEATABLE READ
	// or SERIALIZABLE would otherwise fail writers with serialization
	// errors instead of letting them wait on the lock.
	tx, err := db.sql.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		release()
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, db.lockKey); err != nil {
		tx.Rollback()
		release()
		return nil, fmt.Errorf("sqldb: %s: take the writer lock: %w", db.store, err)
	}
	t := &Tx{tx: tx, db: db, release: release}
	t.stop = context.AfterFunc(ctx, t.unlock)
	return t, nil
}

// Snapshot writes a consistent copy of a SQLite database to path (which
// must not exist) with VACUUM INTO. On PostgreSQL it returns an error
// wrapping ErrSnapshotUnsupported.
func (db *DB) Snapshot(ctx context.Context, path string) error {
	if db.engine == Postgres {
		return fmt.Errorf("sqldb: snapshot %s: %w", db.store, ErrSnapshotUnsupported)
	}
	return sqlitedb.Snapshot(ctx, db.sql, path)
}

// Checkpoint copies SQLite's write-ahead log into the database file and
// truncates it (PRAGMA wal_checkpoint(TRUNCATE)), so that old page images
// holding deleted rows do not linger in the -wal file; if readers keep it
// from finishing it returns an error for which IsBusy is true, and a later
// call finishes the job.
//
// On PostgreSQL it does nothing and returns nil. There is no counterpart:
// PostgreSQL has no secure_delete; a deleted row stays in its heap page
// until VACUUM and later writes reuse the space, and in the write-ahead
// log and its archives until they are recycled. VACUUM would only mark the
// space reusable, not overwrite it, so running it here would claim more
// than it does. Deployments on PostgreSQL rely on the database's own
// encryption at rest and on WAL archive retention instead.
func (db *DB) Checkpoint(ctx context.Context) error {
	if db.engine == Postgres {
		return nil
	}
	var busy, logged, done int
	if err := db.sql.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logged, &done); err != nil {
		return fmt.Errorf("sqldb: checkpoint %s: %w", db.store, err)
	}
	if busy != 0 {
		return fmt.Errorf("sqldb: checkpoint %s: readers hold the log: %w", db.store, ErrBusy)
	}
	return nil
}

// Tx is a transaction of a DB. Its methods take ? placeholders. It is
// invalid after Commit or Rollback.
type Tx struct {
	tx      *sql.Tx
	db      *DB
	release func()      // frees the in-process writer lock; nil without one
	stop    func() bool // stops the context watcher; nil without one
	once    sync.Once   // guards release
}

func (t *Tx) unlock() {
	if t.release != nil {
		t.once.Do(t.release)
	}
}

func (t *Tx) done() {
	if t.stop != nil {
		t.stop()
	}
	t.unlock()
}

// Commit commits the transaction and releases the writer lock.
func (t *Tx) Commit() error {
	defer t.done()
	return t.tx.Commit()
}

// Rollback aborts the transaction and releases the writer lock. After
// Commit it returns sql.ErrTxDone, so "defer tx.Rollback()" is safe.
func (t *Tx) Rollback() error {
	defer t.done()
	return t.tx.Rollback()
}

// ExecContext executes query within the transaction.
func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.db.Rebind(query), convertArgs(args)...)
}

// QueryContext executes a query that returns rows within the transaction.
func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.db.Rebind(query), convertArgs(args)...)
}

// QueryRowContext executes a query that returns at most one row within
// the transaction.
func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.db.Rebind(query), convertArgs(args)...)
}

// PrepareContext prepares query for repeated use within the transaction.
func (t *Tx) PrepareContext(ctx context.Context, query string) (*Stmt, error) {
	s, err := t.tx.PrepareContext(ctx, t.db.Rebind(query))
	if err != nil {
		return nil, err
	}
	return &Stmt{s: s}, nil
}

// SQL returns the underlying *sql.Tx; queries on it are not rebound.
func (t *Tx) SQL() *sql.Tx { return t.tx }

// Stmt is a prepared statement of a DB or Tx; its query was rebound when
// it was prepared.
type Stmt struct {
	s *sql.Stmt
}

// ExecContext executes the statement with args.
func (s *Stmt) ExecContext(ctx context.Context, args ...any) (sql.Result, error) {
	return s.s.ExecContext(ctx, convertArgs(args)...)
}

// QueryContext executes the statement, which returns rows.
func (s *Stmt) QueryContext(ctx context.Context, args ...any) (*sql.Rows, error) {
	return s.s.QueryContext(ctx, convertArgs(args)...)
}

// QueryRowContext executes the statement, which returns at most one row.
func (s *Stmt) QueryRowContext(ctx context.Context, args ...any) *sql.Row {
	return s.s.QueryRowContext(ctx, convertArgs(args)...)
}

// Close closes the statement.
func (s *Stmt) Close() error { return s.s.Close() }

// convertArgs returns args with every bool as int64 0 or 1: flags live in
// integer columns on both engines, and pgx refuses to encode a bool into
// one. args is not modified.
func convertArgs(args []any) []any {
	var out []any
	for i, a := range args {
		var v any
		switch b := a.(type) {
		case bool:
			v = boolInt(b)
		case *bool:
			if b == nil {
				v = nil
			} else {
				v = boolInt(*b)
			}
		case sql.NullBool:
			v = sql.NullInt64{Int64: boolInt(b.Bool), Valid: b.Valid}
		default:
			continue
		}
		if out == nil {
			out = append([]any(nil), args...)
		}
		out[i] = v
	}
	if out == nil {
		return args
	}
	return out
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// RedactDSN returns dsn fit for an error message or log: a PostgreSQL URL
// with its password replaced by "xxxxx" (a password parameter in the query
// too), a SQLite path unchanged.
func RedactDSN(dsn string) string {
	if !IsPostgresDSN(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// dsnPassword returns the password in a PostgreSQL URL, "" if none.
func dsnPassword(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return ""
	}
	if p, ok := u.User.Password(); ok {
		return p
	}
	return u.Query().Get("password")
}

// redactError returns err, or — should its text contain password — an
// error with the same chain whose text has it replaced.
func redactError(err error, password string) error {
	if password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), password, "xxxxx"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
