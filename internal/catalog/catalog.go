// Package catalog is the metadata index of recordings, in SQLite.
//
// It never sees personal data in plaintext: the archive hands it the
// patient's personnummer and the caller's number already sealed under the
// recording's file key, plus keyed blind indexes (HMAC digests) to look them
// up by. A copied database file therefore reveals no patient.
//
// Times are stored as INTEGER Unix nanoseconds, UTC, and read back as UTC.
package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"callvault/internal/sqlitedb"
)

// Errors callers branch on.
var (
	// ErrNotFound: no recording with that ID.
	ErrNotFound = errors.New("catalog: no such recording")
	// ErrExists: a recording with that ID is already stored.
	ErrExists = errors.New("catalog: recording ID already stored")
)

// Recording is one catalog row.
type Recording struct {
	ID                 string // 32 lowercase hex
	CallID             string
	CareProvider       string   // HSA-ID
	CareUnit           string   // HSA-ID
	Staff              []string // HSA-IDs, order kept
	StartedAt, EndedAt time.Time
	Direction          string // "inbound" | "outbound"
	PrivacyNotice      string
	PatientIndex       []byte // blind index; nil when the caller was not identified
	PatientSealed      []byte // personnummer sealed under the file key; nil when none
	CallerIndex        []byte
	CallerSealed       []byte
	Format             string // "wav" | "mp3"
	ContentType        string
	AudioBytes         int64 // plaintext size
	BlobBytes          int64
	BlobSHA256         []byte
	KeyEpoch           int
	WrappedKey         []byte
	CreatedAt          time.Time
}

// Pending is a blob copy a site is missing, waiting for repair.
type Pending struct {
	RecordingID string
	Site        string
	Since       time.Time
	Attempts    int
	LastError   string
}

var migrations = []string{
	`CREATE TABLE recordings (
		id TEXT PRIMARY KEY,
		call_id TEXT NOT NULL,
		care_provider TEXT NOT NULL,
		care_unit TEXT NOT NULL,
		started_at INTEGER NOT NULL,
		ended_at INTEGER NOT NULL,
		direction TEXT NOT NULL,
		privacy_notice TEXT NOT NULL,
		patient_index BLOB,
		patient_sealed BLOB,
		caller_index BLOB,
		caller_sealed BLOB,
		format TEXT NOT NULL,
		content_type TEXT NOT NULL,
		audio_bytes INTEGER NOT NULL,
		blob_bytes INTEGER NOT NULL,
		blob_sha256 BLOB NOT NULL,
		key_epoch INTEGER NOT NULL,
		wrapped_key BLOB NOT NULL,
		created_at INTEGER NOT NULL
	);
	CREATE INDEX recordings_patient ON recordings (care_provider, patient_index, started_at) WHERE patient_index IS NOT NULL;
	CREATE INDEX recordings_caller ON recordings (care_provider, caller_index) WHERE caller_index IS NOT NULL;
	CREATE INDEX recordings_unit_time ON recordings (care_unit, started_at);
	CREATE INDEX recordings_time ON recordings (started_at);
	CREATE TABLE recording_staff (
		recording_id TEXT NOT NULL REFERENCES recordings(id),
		position INTEGER NOT NULL,
		staff TEXT NOT NULL,
		PRIMARY KEY (recording_id, position)
	);
	CREATE INDEX recording_staff_staff ON recording_staff (staff);
	CREATE TABLE pending_replication (
		recording_id TEXT NOT NULL REFERENCES recordings(id),
		site TEXT NOT NULL,
		since INTEGER NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0,
		last_error TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (recording_id, site)
	);`,
}

// DB is the catalog. It is safe for concurrent use.
type DB struct {
	db *sql.DB
}

// Open opens (creating and migrating) the catalog at path.
func Open(ctx context.Context, path string) (*DB, error) {
	db, err := sqlitedb.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	if err := sqlitedb.Migrate(ctx, db, "catalog", migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return &DB{db: db}, nil
}

// Close closes the database.
func (db *DB) Close() error { return db.db.Close() }

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// Insert stores rec and, in the same transaction, one pending-replication
// entry per site in pendingSites. It is durable when it returns nil
// (synchronous=FULL). ErrExists if the ID is taken.
func (db *DB) Insert(ctx context.Context, rec *Recording, pendingSites []string) error {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("catalog: insert: %w", err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO recordings (id, call_id, care_provider, care_unit, started_at, ended_at,
		direction, privacy_notice, patient_index, patient_sealed, caller_index, caller_sealed, format, content_type,
		audio_bytes, blob_bytes, blob_sha256, key_epoch, wrapped_key, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rec.ID, rec.CallID, rec.CareProvider, rec.CareUnit, nanos(rec.StartedAt), nanos(rec.EndedAt),
		rec.Direction, rec.PrivacyNotice, rec.PatientIndex, rec.PatientSealed, rec.CallerIndex, rec.CallerSealed,
		rec.Format, rec.ContentType, rec.AudioBytes, rec.BlobBytes, rec.BlobSHA256, rec.KeyEpoch, rec.WrappedKey, nanos(rec.CreatedAt))
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return ErrExists
		}
		return fmt.Errorf("catalog: insert: %w", err)
	}
	for i, s := range rec.Staff {
		if _, err := tx.ExecContext(ctx, `INSERT INTO recording_staff (recording_id, position, staff) VALUES (?, ?, ?)`, rec.ID, i, s); err != nil {
			return fmt.Errorf("catalog: insert staff: %w", err)
		}
	}
	now := time.Now().UnixNano()
	for _, s := range pendingSites {
		if _, err := tx.ExecContext(ctx, `INSERT INTO pending_replication (recording_id, site, since) VALUES (?, ?, ?)`, rec.ID, s, now); err != nil {
			return fmt.Errorf("catalog: insert pending: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("catalog: insert: %w", err)
	}
	return nil
}

const recordingColumns = `id, call_id, care_provider, care_unit, started_at, ended_at, direction, privacy_notice,
	patient_index, patient_sealed, caller_index, caller_sealed, format, content_type, audio_bytes, blob_bytes,
	blob_sha256, key_epoch, wrapped_key, created_at`

type scanner interface{ Scan(dest ...any) error }

func scanRecording(s scanner) (*Recording, error) {
	var r Recording
	var started, ended, created int64
	err := s.Scan(&r.ID, &r.CallID, &r.CareProvider, &r.CareUnit, &started, &ended, &r.Direction, &r.PrivacyNotice,
		&r.PatientIndex, &r.PatientSealed, &r.CallerIndex, &r.CallerSealed, &r.Format, &r.ContentType, &r.AudioBytes,
		&r.BlobBytes, &r.BlobSHA256, &r.KeyEpoch, &r.WrappedKey, &created)
	if err != nil {
		return nil, err
	}
	r.StartedAt, r.EndedAt, r.CreatedAt = fromNanos(started), fromNanos(ended), fromNanos(created)
	return &r, nil
}

func (db *DB) staff(ctx context.Context, id string) ([]string, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT staff FROM recording_staff WHERE recording_id = ? ORDER BY position`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Get returns the recording with id, or ErrNotFound.
func (db *DB) Get(ctx context.Context, id string) (*Recording, error) {
	r, err := scanRecording(db.db.QueryRowContext(ctx, `SELECT `+recordingColumns+` FROM recordings WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: get: %w", err)
	}
	if r.Staff, err = db.staff(ctx, id); err != nil {
		return nil, fmt.Errorf("catalog: get staff: %w", err)
	}
	return r, nil
}

// ByPatient lists a care provider's recordings for one patient index,
// optionally limited to StartedAt in [from, to) (zero time = unbounded),
// ordered by StartedAt then ID.
func (db *DB) ByPatient(ctx context.Context, careProvider string, patientIndex []byte, from, to time.Time) ([]*Recording, error) {
	if len(patientIndex) == 0 {
		return nil, nil
	}
	lo, hi := int64(-1<<63), int64(1<<63-1)
	if !from.IsZero() {
		lo = nanos(from)
	}
	if !to.IsZero() {
		hi = nanos(to)
	}
	rows, err := db.db.QueryContext(ctx, `SELECT `+recordingColumns+` FROM recordings
		WHERE care_provider = ? AND patient_index = ? AND started_at >= ? AND started_at < ?
		ORDER BY started_at, id`, careProvider, patientIndex, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("catalog: by patient: %w", err)
	}
	var out []*Recording
	for rows.Next() {
		r, err := scanRecording(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("catalog: by patient: %w", err)
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: by patient: %w", err)
	}
	for _, r := range out {
		if r.Staff, err = db.staff(ctx, r.ID); err != nil {
			return nil, fmt.Errorf("catalog: by patient staff: %w", err)
		}
	}
	return out, nil
}

// Count returns the number of recordings.
func (db *DB) Count(ctx context.Context) (int, error) {
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM recordings`).Scan(&n); err != nil {
		return 0, fmt.Errorf("catalog: count: %w", err)
	}
	return n, nil
}

// Pending returns the replication backlog, oldest first.
func (db *DB) Pending(ctx context.Context) ([]Pending, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT recording_id, site, since, attempts, last_error FROM pending_replication ORDER BY since, recording_id, site`)
	if err != nil {
		return nil, fmt.Errorf("catalog: pending: %w", err)
	}
	defer rows.Close()
	var out []Pending
	for rows.Next() {
		var p Pending
		var since int64
		if err := rows.Scan(&p.RecordingID, &p.Site, &since, &p.Attempts, &p.LastError); err != nil {
			return nil, fmt.Errorf("catalog: pending: %w", err)
		}
		p.Since = fromNanos(since)
		out = append(out, p)
	}
	return out, rows.Err()
}

// PendingCount returns the size of the replication backlog.
func (db *DB) PendingCount(ctx context.Context) (int, error) {
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pending_replication`).Scan(&n); err != nil {
		return 0, fmt.Errorf("catalog: pending count: %w", err)
	}
	return n, nil
}

// ResolvePending removes a backlog entry once the site holds the copy.
func (db *DB) ResolvePending(ctx context.Context, recordingID, site string) error {
	if _, err := db.db.ExecContext(ctx, `DELETE FROM pending_replication WHERE recording_id = ? AND site = ?`, recordingID, site); err != nil {
		return fmt.Errorf("catalog: resolve pending: %w", err)
	}
	return nil
}

// NotePendingFailure counts a failed repair attempt and keeps its reason
// (operational text: site and OS errors, no personal data).
func (db *DB) NotePendingFailure(ctx context.Context, recordingID, site, reason string) error {
	if len(reason) > 500 {
		reason = reason[:500]
	}
	if _, err := db.db.ExecContext(ctx, `UPDATE pending_replication SET attempts = attempts + 1, last_error = ? WHERE recording_id = ? AND site = ?`,
		reason, recordingID, site); err != nil {
		return fmt.Errorf("catalog: note pending failure: %w", err)
	}
	return nil
}
