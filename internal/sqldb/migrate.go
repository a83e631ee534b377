package sqldb

import (
	"context"
	"fmt"
	"time"
)

// Migration is one version of a schema: its SQL for each engine. The SQL
// may hold several statements; it takes no parameters and is run as
// written (no Rebind).
type Migration struct {
	SQLite   string
	Postgres string
}

// Portable returns the Migration whose SQL is the same on both engines.
func Portable(sql string) Migration { return Migration{SQLite: sql, Postgres: sql} }

// migrationTable is the record of applied versions, the same table that
// sqlitedb.Migrate keeps, so data directories made before sqldb carry on.
var migrationTable = map[Engine]string{
	SQLite: `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT NOT NULL, version INTEGER NOT NULL, applied_at TEXT NOT NULL,
		PRIMARY KEY (name, version))`,
	Postgres: `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT NOT NULL, version BIGINT NOT NULL, applied_at TEXT NOT NULL,
		PRIMARY KEY (name, version))`,
}

// migrateLockKey is the advisory lock that every Migrate on a PostgreSQL
// database holds while it reads the version and applies the next one.
var migrateLockKey = advisoryKey("migrate")

// Migrate brings the schema named name up to date. migrations[i] is
// version i+1; versions already applied (recorded in the table
// schema_migrations under name) are skipped, and each new version is
// applied in its own write transaction together with its record, so a
// crash leaves the schema at a whole version. A database at a version
// newer than len(migrations) is refused. Migrations are append-only: never
// edit one that has shipped, add a new one.
//
// Concurrent Migrate calls — from several processes too — apply each
// version once: every version's transaction takes the write lock (and on
// PostgreSQL one advisory lock shared by all schemas, since creating
// schema_migrations itself would race) and reads the current version under
// it.
func Migrate(ctx context.Context, db *DB, name string, migrations []Migration) error {
	for i, m := range migrations {
		if m.sql(db.engine) == "" {
			return fmt.Errorf("sqldb: migrate %s: version %d has no %s variant", name, i+1, db.engine)
		}
	}
	for {
		done, err := migrateOne(ctx, db, name, migrations)
		if err != nil || done {
			return err
		}
	}
}

func (m Migration) sql(e Engine) string {
	if e == Postgres {
		return m.Postgres
	}
	return m.SQLite
}

// migrateOne applies the next version, if any; done reports that the
// schema is up to date.
func migrateOne(ctx context.Context, db *DB, name string, migrations []Migration) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("sqldb: migrate %s: %w", name, err)
	}
	defer tx.Rollback()
	if db.engine == Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, migrateLockKey); err != nil {
			return false, fmt.Errorf("sqldb: migrate %s: %w", name, err)
		}
	}
	if _, err := tx.tx.ExecContext(ctx, migrationTable[db.engine]); err != nil {
		return false, fmt.Errorf("sqldb: migrate %s: %w", name, err)
	}
	var have int
	if err := tx.QueryRowContext(ctx,
		`SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE name = ?`, name).Scan(&have); err != nil {
		return false, fmt.Errorf("sqldb: migrate %s: %w", name, err)
	}
	if have > len(migrations) {
		return false, fmt.Errorf("sqldb: migrate %s: database is at version %d, this binary knows only %d", name, have, len(migrations))
	}
	if have == len(migrations) {
		// Commit: the transaction may have created schema_migrations.
		if err := tx.Commit(); err != nil {
			return false, fmt.Errorf("sqldb: migrate %s: %w", name, err)
		}
		return true, nil
	}
	v := have + 1
	if _, err := tx.tx.ExecContext(ctx, migrations[v-1].sql(db.engine)); err != nil {
		return false, fmt.Errorf("sqldb: migrate %s to %d: %w", name, v, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, version, applied_at) VALUES (?, ?, ?)`,
		name, v, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return false, fmt.Errorf("sqldb: migrate %s to %d: %w", name, v, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("sqldb: migrate %s to %d: %w", name, v, err)
	}
	return false, nil
}
