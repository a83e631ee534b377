package sqldb

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

var (
	// ErrBusy is wrapped by the error of a writer that waited the lock
	// timeout for the in-process writer lock of a PostgreSQL store, and by
	// Checkpoint when readers keep it from finishing. IsBusy reports it.
	ErrBusy = errors.New("sqldb: database busy")

	// ErrSnapshotUnsupported is wrapped by Snapshot on PostgreSQL.
	ErrSnapshotUnsupported = errors.New("backups of a PostgreSQL database are made with its own tools (pg_basebackup, pg_dump), not by callvault")
)

// SQLite result codes (https://sqlite.org/rescode.html).
const (
	sqliteBusy                 = 5
	sqliteConstraintForeignKey = 787
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

// IsUniqueViolation reports whether err is a violated UNIQUE or PRIMARY
// KEY constraint (SQLite SQLITE_CONSTRAINT_UNIQUE or _PRIMARYKEY,
// PostgreSQL SQLSTATE 23505).
func IsUniqueViolation(err error) bool {
	if c, ok := sqliteCode(err); ok {
		return c == sqliteConstraintUnique || c == sqliteConstraintPrimaryKey
	}
	return pgCode(err) == "23505"
}

// IsForeignKeyViolation reports whether err is a violated foreign key
// (SQLite SQLITE_CONSTRAINT_FOREIGNKEY, PostgreSQL SQLSTATE 23503).
func IsForeignKeyViolation(err error) bool {
	if c, ok := sqliteCode(err); ok {
		return c == sqliteConstraintForeignKey
	}
	return pgCode(err) == "23503"
}

// IsBusy reports whether err means the database was busy and the
// operation may succeed if retried later: ErrBusy, SQLITE_BUSY (any
// extended code), or PostgreSQL SQLSTATE 55P03 (lock_not_available, after
// lock_timeout), 40001 (serialization_failure) or 40P01
// (deadlock_detected).
func IsBusy(err error) bool {
	if errors.Is(err, ErrBusy) {
		return true
	}
	if c, ok := sqliteCode(err); ok {
		return c&0xff == sqliteBusy
	}
	switch pgCode(err) {
	case "55P03", "40001", "40P01":
		return true
	}
	return false
}

func sqliteCode(err error) (int, bool) {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code(), true
	}
	return 0, false
}

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
