package importer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"callvault/internal/sqlitedb"
)

// Outcomes of a source file (docs/import.md).
const (
	OutcomeImported  = "imported"  // stored as a new recording
	OutcomeDuplicate = "duplicate" // same bytes as an earlier file; linked to its recording
	OutcomeDeleted   = "deleted"   // its recording was deleted by a decision; not stored again
	OutcomeRejected  = "rejected"  // refused, with a reason; retried on the next run
	OutcomeUnlisted  = "unlisted"  // a file under the source that no manifest row names
)

var journalSchema = []string{`CREATE TABLE files (
		path TEXT NOT NULL,
		line INTEGER NOT NULL,
		size INTEGER NOT NULL DEFAULT 0,
		sha256 TEXT NOT NULL DEFAULT '',
		outcome TEXT NOT NULL,
		recording_id TEXT NOT NULL DEFAULT '',
		reason TEXT NOT NULL DEFAULT '',
		at INTEGER NOT NULL,
		verified_at INTEGER NOT NULL DEFAULT 0,
		removed_at INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (path, line)
	);
	CREATE INDEX files_sha ON files (sha256, outcome);
	CREATE INDEX files_outcome ON files (outcome);
	CREATE TABLE runs (
		id INTEGER PRIMARY KEY,
		started_at INTEGER NOT NULL,
		finished_at INTEGER NOT NULL DEFAULT 0,
		archive TEXT NOT NULL,
		manifest_sha256 TEXT NOT NULL
	);
	CREATE TABLE listed (
		path TEXT PRIMARY KEY,
		line INTEGER NOT NULL
	);`}

// Journal is the importer's record of every source file and its outcome,
// in a SQLite file committed (fsynced) after every file. It holds source
// paths and so belongs with the source, not with the archive.
type Journal struct {
	db *sql.DB
}

// Entry is one journal row.
type Entry struct {
	Path        string
	Line        int // manifest line; 0 for an unlisted file
	Size        int64
	SHA256      string
	Outcome     string
	RecordingID string
	Reason      string
	VerifiedAt  time.Time
	RemovedAt   time.Time
}

// OpenJournal opens (creating) the journal at path.
func OpenJournal(ctx context.Context, path string) (*Journal, error) {
	db, err := sqlitedb.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("importer: journal: %w", err)
	}
	if err := sqlitedb.Migrate(ctx, db, "import-journal", journalSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("importer: journal: %w", err)
	}
	return &Journal{db: db}, nil
}

// Close closes the journal.
func (j *Journal) Close() error { return j.db.Close() }

// Put records e, replacing the row of the same path and line.
func (j *Journal) Put(ctx context.Context, e Entry) error {
	_, err := j.db.ExecContext(ctx, `INSERT INTO files (path, line, size, sha256, outcome, recording_id, reason, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (path, line) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256, outcome = excluded.outcome,
			recording_id = excluded.recording_id, reason = excluded.reason, at = excluded.at,
			verified_at = 0, removed_at = 0`,
		e.Path, e.Line, e.Size, e.SHA256, e.Outcome, e.RecordingID, e.Reason, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("importer: journal: %w", err)
	}
	return nil
}

// Done returns the entry that imported, linked or found deleted the file
// at path, or nil.
func (j *Journal) Done(ctx context.Context, path string) (*Entry, error) {
	rows, err := j.query(ctx, `WHERE path = ? AND outcome IN (?, ?, ?) ORDER BY line LIMIT 1`,
		path, OutcomeImported, OutcomeDuplicate, OutcomeDeleted)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return rows[0], nil
}

// List records, for this run's manifest, the first line naming each path.
// It replaces the previous run's listing; paths[i] is named on lines[i],
// in manifest order.
func (j *Journal) List(ctx context.Context, paths []string, lines []int, fresh bool) error {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("importer: journal: %w", err)
	}
	defer tx.Rollback()
	if fresh {
		if _, err := tx.ExecContext(ctx, `DELETE FROM listed`); err != nil {
			return fmt.Errorf("importer: journal: %w", err)
		}
	}
	for i, p := range paths {
		if _, err := tx.ExecContext(ctx, `INSERT INTO listed (path, line) VALUES (?, ?) ON CONFLICT (path) DO NOTHING`, p, lines[i]); err != nil {
			return fmt.Errorf("importer: journal: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("importer: journal: %w", err)
	}
	return nil
}

// FirstLine returns the first manifest line naming path, 0 if none does.
func (j *Journal) FirstLine(ctx context.Context, path string) (int, error) {
	var line int
	err := j.db.QueryRowContext(ctx, `SELECT line FROM listed WHERE path = ?`, path).Scan(&line)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("importer: journal: %w", err)
	}
	return line, nil
}

// Primary returns the recording ID of the imported file with the digest,
// or "" if none was imported.
func (j *Journal) Primary(ctx context.Context, sha256Hex string) (string, error) {
	var id string
	err := j.db.QueryRowContext(ctx, `SELECT recording_id FROM files WHERE sha256 = ? AND outcome = ? ORDER BY line LIMIT 1`,
		sha256Hex, OutcomeImported).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("importer: journal: %w", err)
	}
	return id, nil
}

// ForgetRetryable removes the rejected and unlisted entries: a new run
// judges those files again.
func (j *Journal) ForgetRetryable(ctx context.Context) error {
	if _, err := j.db.ExecContext(ctx, `DELETE FROM files WHERE outcome IN (?, ?)`, OutcomeRejected, OutcomeUnlisted); err != nil {
		return fmt.Errorf("importer: journal: %w", err)
	}
	return nil
}

// Entries returns the entries with one of outcomes (all when none), in
// path and line order.
func (j *Journal) Entries(ctx context.Context, outcomes ...string) ([]*Entry, error) {
	if len(outcomes) == 0 {
		return j.query(ctx, `ORDER BY path, line`)
	}
	q, args := `WHERE outcome IN (?`, []any{outcomes[0]}
	for _, o := range outcomes[1:] {
		q += `, ?`
		args = append(args, o)
	}
	return j.query(ctx, q+`) ORDER BY path, line`, args...)
}

func (j *Journal) query(ctx context.Context, tail string, args ...any) ([]*Entry, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT path, line, size, sha256, outcome, recording_id, reason, verified_at, removed_at FROM files `+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("importer: journal: %w", err)
	}
	defer rows.Close()
	var out []*Entry
	for rows.Next() {
		var e Entry
		var ver, rem int64
		if err := rows.Scan(&e.Path, &e.Line, &e.Size, &e.SHA256, &e.Outcome, &e.RecordingID, &e.Reason, &ver, &rem); err != nil {
			return nil, fmt.Errorf("importer: journal: %w", err)
		}
		if ver != 0 {
			e.VerifiedAt = time.Unix(0, ver).UTC()
		}
		if rem != 0 {
			e.RemovedAt = time.Unix(0, rem).UTC()
		}
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("importer: journal: %w", err)
	}
	return out, nil
}

// MarkVerified and MarkRemoved note a file's verification and removal.
func (j *Journal) MarkVerified(ctx context.Context, path string, line int, at time.Time) error {
	return j.mark(ctx, "verified_at", path, line, at)
}

// MarkRemoved notes that the source file was deleted after verification.
func (j *Journal) MarkRemoved(ctx context.Context, path string, line int, at time.Time) error {
	return j.mark(ctx, "removed_at", path, line, at)
}

func (j *Journal) mark(ctx context.Context, col, path string, line int, at time.Time) error {
	if _, err := j.db.ExecContext(ctx, `UPDATE files SET `+col+` = ? WHERE path = ? AND line = ?`, at.UnixNano(), path, line); err != nil {
		return fmt.Errorf("importer: journal: %w", err)
	}
	return nil
}

// StartRun records the start of a run and returns its ID.
func (j *Journal) StartRun(ctx context.Context, archive, manifestSHA256 string, at time.Time) (int64, error) {
	res, err := j.db.ExecContext(ctx, `INSERT INTO runs (started_at, archive, manifest_sha256) VALUES (?, ?, ?)`,
		at.UnixNano(), archive, manifestSHA256)
	if err != nil {
		return 0, fmt.Errorf("importer: journal: %w", err)
	}
	return res.LastInsertId()
}

// FinishRun records the end of run id.
func (j *Journal) FinishRun(ctx context.Context, id int64, at time.Time) error {
	if _, err := j.db.ExecContext(ctx, `UPDATE runs SET finished_at = ? WHERE id = ?`, at.UnixNano(), id); err != nil {
		return fmt.Errorf("importer: journal: %w", err)
	}
	return nil
}

// RunRecord is one import run as the journal recorded it.
type RunRecord struct {
	StartedAt, FinishedAt time.Time
	Archive, Manifest     string
}

// Runs lists the runs in order.
func (j *Journal) Runs(ctx context.Context) ([]RunRecord, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT started_at, finished_at, archive, manifest_sha256 FROM runs ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("importer: journal: %w", err)
	}
	defer rows.Close()
	var out []RunRecord
	for rows.Next() {
		var r RunRecord
		var s, f int64
		if err := rows.Scan(&s, &f, &r.Archive, &r.Manifest); err != nil {
			return nil, fmt.Errorf("importer: journal: %w", err)
		}
		r.StartedAt = time.Unix(0, s).UTC()
		if f != 0 {
			r.FinishedAt = time.Unix(0, f).UTC()
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Counts adds, per outcome, the number of files and their bytes, and per
// reason the number of rejected and unlisted files.
func (j *Journal) Counts(ctx context.Context, files map[string]int, bytes map[string]int64, reasons map[string]int) error {
	rows, err := j.db.QueryContext(ctx, `SELECT outcome, COUNT(*), COALESCE(SUM(size), 0) FROM files GROUP BY outcome`)
	if err != nil {
		return fmt.Errorf("importer: journal: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var o string
		var n int
		var b int64
		if err := rows.Scan(&o, &n, &b); err != nil {
			return fmt.Errorf("importer: journal: %w", err)
		}
		files[o] += n
		bytes[o] += b
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("importer: journal: %w", err)
	}
	rr, err := j.db.QueryContext(ctx, `SELECT reason, COUNT(*) FROM files WHERE outcome IN (?, ?) GROUP BY reason`, OutcomeRejected, OutcomeUnlisted)
	if err != nil {
		return fmt.Errorf("importer: journal: %w", err)
	}
	defer rr.Close()
	for rr.Next() {
		var r string
		var n int
		if err := rr.Scan(&r, &n); err != nil {
			return fmt.Errorf("importer: journal: %w", err)
		}
		reasons[r] += n
	}
	return rr.Err()
}
