// Package sqlitedb opens the embedded SQLite databases of callvault with the
// settings every one of them needs, and applies versioned schema migrations.
//
// Every database is opened in WAL mode with synchronous=FULL, so a committed
// transaction has been fsynced before Commit returns: callers that promise
// durability (the audit log, the catalog's two-site commit) rely on that.
package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver; no cgo needed on a fresh machine
)

// Open opens (creating if needed) the SQLite database at path with WAL
// journaling, synchronous=FULL, foreign keys on, secure_delete (freed
// pages are zeroed), a busy timeout, and
// transactions that take the write lock at BEGIN (so two writers never
// deadlock upgrading a read lock).
func Open(ctx context.Context, path string) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)",
		"synchronous(FULL)",
		"foreign_keys(1)",
		"busy_timeout(10000)",
		// Deleted rows are overwritten, not just unlinked: crypto-shredding
		// a recording deletes its wrapped key (docs/lifecycle.md).
		"secure_delete(1)",
	} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	// The path is escaped: a name with "?" or "#" must not be read as
	// URI parameters.
	// The file is the owner's alone: created 0600 before SQLite opens it
	// (its -wal and -shm files take the same mode), tightened if older.
	// An existing file is never opened here: closing any descriptor of a
	// database file drops every POSIX lock this process holds on it, and
	// another connection of this process may hold some.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sqlitedb: open: %w", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, st.Mode().Perm()&0o700); err != nil {
			return nil, fmt.Errorf("sqlitedb: open: %w", err)
		}
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlitedb: open: %w", err)
	}
	db.SetConnMaxIdleTime(time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlitedb: open: %w", err)
	}
	return db, nil
}

// Migrate brings the schema named name up to date. migrations[i] is the SQL
// of version i+1; versions already applied (recorded in the table
// schema_migrations under name) are skipped, and each new version is applied
// in its own transaction together with its record, so a crash leaves the
// schema at a whole version. Migrations are append-only: never edit one that
// has shipped, add a new one.
func Migrate(ctx context.Context, db *sql.DB, name string, migrations []string) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT NOT NULL, version INTEGER NOT NULL, applied_at TEXT NOT NULL,
		PRIMARY KEY (name, version))`); err != nil {
		return fmt.Errorf("sqlitedb: migrate %s: %w", name, err)
	}
	var have int
	if err := db.QueryRowContext(ctx,
		`SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE name = ?`, name).Scan(&have); err != nil {
		return fmt.Errorf("sqlitedb: migrate %s: %w", name, err)
	}
	if have > len(migrations) {
		return fmt.Errorf("sqlitedb: migrate %s: database is at version %d, this binary knows only %d", name, have, len(migrations))
	}
	for v := have + 1; v <= len(migrations); v++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("sqlitedb: migrate %s to %d: %w", name, v, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlitedb: migrate %s to %d: %w", name, v, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, version, applied_at) VALUES (?, ?, ?)`,
			name, v, time.Now().UTC().Format(time.RFC3339)); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlitedb: migrate %s to %d: %w", name, v, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqlitedb: migrate %s to %d: %w", name, v, err)
		}
	}
	return nil
}

// Snapshot writes a consistent copy of the open database db to path (which
// must not exist) with VACUUM INTO: one read transaction, so concurrent
// writers neither block nor tear it.
func Snapshot(ctx context.Context, db *sql.DB, path string) error {
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return fmt.Errorf("sqlitedb: snapshot: %w", err)
	}
	return nil
}
