// Package catalog is the metadata index of recordings, in SQLite (the
// embedded default) or PostgreSQL, through package sqldb.
//
// It never sees personal data in plaintext: the archive hands it the
// patient's personnummer and the caller's number already sealed under the
// recording's file key, plus keyed blind indexes (HMAC digests) to look them
// up by. A copied database file therefore reveals no patient.
//
// # Storage
//
// Times are stored as INTEGER Unix nanoseconds (UTC), so they sort and
// compare as numbers and round-trip to the nanosecond; they are read back in
// UTC, without a monotonic clock reading. That limits them to the years 1678
// to 2262, and Insert refuses a time outside that range rather than store a
// wrong one. Byte fields keep the difference between nil (SQL NULL) and an
// empty slice (a zero-length BLOB).
//
// The schema is versioned (schema name "catalog" in sqldb.Migrate) and
// migrations are append-only. Each version has a SQLite text, exactly as it
// shipped before PostgreSQL was supported, and a PostgreSQL text with the
// same tables, columns and indexes: BLOB is BYTEA, INTEGER is BIGINT,
// AUTOINCREMENT ids are identity columns, and every TEXT column is
// COLLATE "C", so that it compares and sorts by bytes as SQLite's BINARY
// collation does, whatever the database's locale.
//
// TEXT columns hold valid UTF-8 without NUL bytes only (PostgreSQL refuses
// anything else, and quotes the offending bytes in its error). The catalog
// refuses such a value on both engines where it is data (the error names
// the field, never the value) and cleans it where it is operational text (a
// failure reason or detail).
//
// # Sharing a database
//
// The audit log keeps its tables in the catalog's database (the same
// SQLite file, or the same PostgreSQL database) under its own writer lock
// (sqldb store "audit"). No statement of this package names an audit
// table, so the two stores' write transactions never touch each other's
// rows (see TestTouchesNoAuditTable).
package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"callvault/internal/recording"
	"callvault/internal/sqldb"
)

// Errors callers branch on.
var (
	// ErrNotFound is returned by Get when no recording has the ID.
	ErrNotFound = errors.New("catalog: no such recording")
	// ErrExists is returned by Insert when a recording with the ID is
	// already stored; nothing was changed.
	ErrExists = errors.New("catalog: recording ID already stored")
)

// Recording is one catalog row. Personal data appears only sealed
// (PatientSealed, CallerSealed) or as keyed blind indexes (PatientIndex,
// CallerIndex), as the archive made them.
type Recording struct {
	ID                 string   // 32 lowercase hex (recording.ValidID)
	CallID             string   // the telephony system's call identifier
	CareProvider       string   // HSA-ID
	CareUnit           string   // HSA-ID
	Staff              []string // HSA-IDs, order kept; empty reads back as nil
	StartedAt, EndedAt time.Time
	Direction          string // "inbound" | "outbound"
	PrivacyNotice      string
	PatientIndex       []byte // blind index; nil when the caller was not identified
	PatientSealed      []byte // personnummer sealed under the file key; nil when none
	CallerIndex        []byte // blind index of the caller's number; nil when none
	CallerSealed       []byte // caller's number sealed under the file key; nil when none
	Format             string // "wav" | "mp3"
	ContentType        string
	AudioBytes         int64  // plaintext size
	BlobBytes          int64  // size of the sealed blob on each site
	BlobSHA256         []byte // SHA-256 of the sealed blob; required
	KeyEpoch           int    // archive key epoch WrappedKey is wrapped to
	WrappedKey         []byte // the file key, wrapped; required
	CreatedAt          time.Time
	// RetentionUntil: the recording is kept at least until then
	// (docs/lifecycle.md). Zero only for rows catalogued before retention
	// was recorded, until BackfillRetention sets it.
	RetentionUntil time.Time
	// SourceIndex is the blind index of the SHA-256 of the source file a
	// migration imported (docs/import.md); nil for other recordings. At
	// most one live recording of a care provider has a given SourceIndex.
	SourceIndex []byte
	// Incomplete marks a recording finalized from what was saved before
	// its capture ended abnormally (e.g. the recorder crashed mid-call):
	// it holds the call up to within a few seconds of the failure.
	Incomplete bool
	// CaptureStats is the capture's own account of the media (per-stream
	// packet counts, loss, jitter, gaps) as JSON; "" when none (uploads).
	// It holds no personal data.
	CaptureStats string
}

// Pending is a blob copy a site is missing, queued for the repair loop.
type Pending struct {
	RecordingID string
	Site        string
	Since       time.Time // when the entry was queued (Insert's wall clock, UTC)
	Attempts    int       // failed repair attempts so far
	LastError   string    // reason given to the last NotePendingFailure; "" if none
}

// maxReasonBytes bounds the failure reason NotePendingFailure keeps.
const maxReasonBytes = 500

// migrations[i] is schema version i+1. Append only: never edit one that has
// shipped. The SQLite texts are byte for byte those that shipped when the
// catalog ran on SQLite alone (TestOpensOldSQLiteFile).
var migrations = []sqldb.Migration{
	{SQLite: recordingsSchema, Postgres: recordingsSchemaPostgres},
	{SQLite: lifecycleSchema, Postgres: lifecycleSchemaPostgres},
	{SQLite: lostSchema, Postgres: lostSchemaPostgres},
	{SQLite: sourceSchema, Postgres: sourceSchemaPostgres},
	{SQLite: captureSchema, Postgres: captureSchemaPostgres},
}

// recordingsSchema is migration 1: recordings, their staff and the
// replication backlog.
const recordingsSchema = `CREATE TABLE recordings (
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
	);`

const recordingsSchemaPostgres = `CREATE TABLE recordings (
		id TEXT COLLATE "C" PRIMARY KEY,
		call_id TEXT COLLATE "C" NOT NULL,
		care_provider TEXT COLLATE "C" NOT NULL,
		care_unit TEXT COLLATE "C" NOT NULL,
		started_at BIGINT NOT NULL,
		ended_at BIGINT NOT NULL,
		direction TEXT COLLATE "C" NOT NULL,
		privacy_notice TEXT COLLATE "C" NOT NULL,
		patient_index BYTEA,
		patient_sealed BYTEA,
		caller_index BYTEA,
		caller_sealed BYTEA,
		format TEXT COLLATE "C" NOT NULL,
		content_type TEXT COLLATE "C" NOT NULL,
		audio_bytes BIGINT NOT NULL,
		blob_bytes BIGINT NOT NULL,
		blob_sha256 BYTEA NOT NULL,
		key_epoch BIGINT NOT NULL,
		wrapped_key BYTEA NOT NULL,
		created_at BIGINT NOT NULL
	);
	CREATE INDEX recordings_patient ON recordings (care_provider, patient_index, started_at) WHERE patient_index IS NOT NULL;
	CREATE INDEX recordings_caller ON recordings (care_provider, caller_index) WHERE caller_index IS NOT NULL;
	CREATE INDEX recordings_unit_time ON recordings (care_unit, started_at);
	CREATE INDEX recordings_time ON recordings (started_at);
	CREATE TABLE recording_staff (
		recording_id TEXT COLLATE "C" NOT NULL REFERENCES recordings(id),
		position BIGINT NOT NULL,
		staff TEXT COLLATE "C" NOT NULL,
		PRIMARY KEY (recording_id, position)
	);
	CREATE INDEX recording_staff_staff ON recording_staff (staff);
	CREATE TABLE pending_replication (
		recording_id TEXT COLLATE "C" NOT NULL REFERENCES recordings(id),
		site TEXT COLLATE "C" NOT NULL,
		since BIGINT NOT NULL,
		attempts BIGINT NOT NULL DEFAULT 0,
		last_error TEXT COLLATE "C" NOT NULL DEFAULT '',
		PRIMARY KEY (recording_id, site)
	);`

// DB is the catalog. It is safe for concurrent use.
type DB struct {
	db *sqldb.DB // store "catalog"; immutable
}

// Open opens the catalog and brings its schema up to date. dsnOrPath is
// the path of a SQLite file (created if needed) or a postgres:// URL of an
// existing database (sqldb.Open).
func Open(ctx context.Context, dsnOrPath string) (*DB, error) {
	db, err := sqldb.Open(ctx, dsnOrPath, "catalog")
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	if err := sqldb.Migrate(ctx, db, "catalog", migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return &DB{db: db}, nil
}

// Close closes the database. The DB must not be used afterwards.
func (db *DB) Close() error {
	if err := db.db.Close(); err != nil {
		return fmt.Errorf("catalog: close: %w", err)
	}
	return nil
}

// Times representable as int64 Unix nanoseconds.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// nanos converts t for storage; ok is false when t is out of range.
func nanos(t time.Time) (n int64, ok bool) {
	if t.Before(minTime) || t.After(maxTime) {
		return 0, false
	}
	return t.UnixNano(), true
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// Insert stores rec and, in the same transaction, one pending-replication
// entry per site in pendingSites (the sites that do not yet hold the blob).
// When it returns nil, all of that is durable (SQLite synchronous=FULL;
// on PostgreSQL, as durable as the server's synchronous_commit makes a
// commit); otherwise nothing was stored. It returns ErrExists if the ID is
// taken, a *SourceExistsError if the care provider already has a recording
// (live or deleted) with rec.SourceIndex, and an error for an ID that is
// not a recording ID, a time outside 1678–2262, a missing BlobSHA256 or
// WrappedKey, a site named twice, or a text field (or site name) that is
// not UTF-8 or holds a NUL byte.
func (db *DB) Insert(ctx context.Context, rec *Recording, pendingSites []string) error {
	if rec == nil {
		return errors.New("catalog: insert: nil recording")
	}
	if !recording.ValidID(rec.ID) {
		return errors.New("catalog: insert: malformed recording ID")
	}
	var times [4]int64
	for i, f := range []struct {
		name string
		t    time.Time
	}{{"started_at", rec.StartedAt}, {"ended_at", rec.EndedAt}, {"created_at", rec.CreatedAt}, {"retention_until", rec.RetentionUntil}} {
		if f.name == "retention_until" && f.t.IsZero() {
			continue
		}
		n, ok := nanos(f.t)
		if !ok {
			return fmt.Errorf("catalog: insert %s: %s out of range", rec.ID, f.name)
		}
		times[i] = n
	}
	fields := [][2]string{{"call_id", rec.CallID}, {"care_provider", rec.CareProvider}, {"care_unit", rec.CareUnit},
		{"direction", rec.Direction}, {"privacy_notice", rec.PrivacyNotice}, {"format", rec.Format},
		{"content_type", rec.ContentType}, {"capture_stats", rec.CaptureStats}}
	for i, s := range rec.Staff {
		fields = append(fields, [2]string{fmt.Sprintf("staff[%d]", i), s})
	}
	for _, s := range pendingSites {
		fields = append(fields, [2]string{"site", s})
	}
	if f := invalidText(fields...); f != "" {
		return fmt.Errorf("catalog: insert %s: %s %s", rec.ID, f, errText)
	}
	since := time.Now().UnixNano()

	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("catalog: insert %s: %w", rec.ID, err)
	}
	defer tx.Rollback()
	if rec.SourceIndex != nil {
		// The transaction holds the store's writer lock (SQLite BEGIN
		// IMMEDIATE, PostgreSQL the store lock of sqldb), so no other
		// insert can add the same source between this and the insert.
		if err := sourceTaken(ctx, tx, rec.CareProvider, rec.SourceIndex); err != nil {
			return err
		}
	}
	// ON CONFLICT DO NOTHING turns a taken ID into "0 rows", which is
	// ErrExists, without depending on the driver's error types.
	res, err := tx.ExecContext(ctx, `INSERT INTO recordings (id, call_id, care_provider, care_unit, started_at, ended_at,
		direction, privacy_notice, patient_index, patient_sealed, caller_index, caller_sealed, format, content_type,
		audio_bytes, blob_bytes, blob_sha256, key_epoch, wrapped_key, created_at, retention_until, source_index,
		incomplete, capture_stats)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`,
		rec.ID, rec.CallID, rec.CareProvider, rec.CareUnit, times[0], times[1],
		rec.Direction, rec.PrivacyNotice, rec.PatientIndex, rec.PatientSealed, rec.CallerIndex, rec.CallerSealed,
		rec.Format, rec.ContentType, rec.AudioBytes, rec.BlobBytes, rec.BlobSHA256, int64(rec.KeyEpoch), rec.WrappedKey, times[2], times[3],
		rec.SourceIndex, rec.Incomplete, rec.CaptureStats)
	if err != nil {
		return fmt.Errorf("catalog: insert %s: %w", rec.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("catalog: insert %s: %w", rec.ID, err)
	} else if n == 0 {
		return ErrExists
	}
	for i, s := range rec.Staff {
		if _, err := tx.ExecContext(ctx, `INSERT INTO recording_staff (recording_id, position, staff) VALUES (?, ?, ?)`,
			rec.ID, int64(i), s); err != nil {
			return fmt.Errorf("catalog: insert %s staff: %w", rec.ID, err)
		}
	}
	for _, s := range pendingSites {
		if _, err := tx.ExecContext(ctx, `INSERT INTO pending_replication (recording_id, site, since) VALUES (?, ?, ?)`,
			rec.ID, s, since); err != nil {
			return fmt.Errorf("catalog: insert %s pending: %w", rec.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("catalog: insert %s: %w", rec.ID, err)
	}
	return nil
}

// selectRecordings reads recordings with their staff in one statement (one
// consistent snapshot): one row per staff member, or one row with a NULL
// staff column for a recording without staff. Callers append WHERE and
// ORDER BY; the ORDER BY must end with r.id, s.position so that a
// recording's rows are adjacent and its staff in order.
const selectRecordings = `SELECT r.id, r.call_id, r.care_provider, r.care_unit, r.started_at, r.ended_at,
	r.direction, r.privacy_notice, r.patient_index, r.patient_sealed, r.caller_index, r.caller_sealed,
	r.format, r.content_type, r.audio_bytes, r.blob_bytes, r.blob_sha256, r.key_epoch, r.wrapped_key,
	r.created_at, r.retention_until, r.source_index, r.incomplete, r.capture_stats, s.staff
	FROM recordings r LEFT JOIN recording_staff s ON s.recording_id = r.id`

// blob scans a BLOB/BYTEA column keeping NULL (nil) apart from a
// zero-length value (empty, non-nil), which database/sql's []byte
// conversion merges. Both drivers hand a NULL over as a nil interface and
// a value as a []byte: pgx an empty non-nil one, modernc a nil one — still
// of dynamic type []byte, so the case below tells it from NULL.
type blob struct{ p *[]byte }

func (b blob) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*b.p = nil
	case []byte:
		*b.p = append([]byte{}, v...)
	default:
		return fmt.Errorf("blob column holds %T", src)
	}
	return nil
}

func (db *DB) query(ctx context.Context, tail string, args ...any) ([]*Recording, error) {
	rows, err := db.db.QueryContext(ctx, selectRecordings+" "+tail, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Recording
	for rows.Next() {
		var r Recording
		var started, ended, created, retention int64
		var staff sql.NullString
		if err := rows.Scan(&r.ID, &r.CallID, &r.CareProvider, &r.CareUnit, &started, &ended,
			&r.Direction, &r.PrivacyNotice, blob{&r.PatientIndex}, blob{&r.PatientSealed}, blob{&r.CallerIndex}, blob{&r.CallerSealed},
			&r.Format, &r.ContentType, &r.AudioBytes, &r.BlobBytes, blob{&r.BlobSHA256}, &r.KeyEpoch, blob{&r.WrappedKey},
			&created, &retention, blob{&r.SourceIndex}, &r.Incomplete, &r.CaptureStats, &staff); err != nil {
			return nil, err
		}
		if n := len(out); n > 0 && out[n-1].ID == r.ID {
			out[n-1].Staff = append(out[n-1].Staff, staff.String)
			continue
		}
		r.StartedAt, r.EndedAt, r.CreatedAt = fromNanos(started), fromNanos(ended), fromNanos(created)
		if retention != 0 {
			r.RetentionUntil = fromNanos(retention)
		}
		if staff.Valid {
			r.Staff = []string{staff.String}
		}
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Get returns the recording with id, or ErrNotFound.
func (db *DB) Get(ctx context.Context, id string) (*Recording, error) {
	if !recording.ValidID(id) {
		return nil, ErrNotFound // Insert stores no other
	}
	recs, err := db.query(ctx, `WHERE r.id = ? ORDER BY r.id, s.position`, id)
	if err != nil {
		return nil, fmt.Errorf("catalog: get: %w", err)
	}
	if len(recs) == 0 {
		return nil, ErrNotFound
	}
	return recs[0], nil
}

// byPatientWhere returns the filter and ordering of ByPatient: provider and
// patient index always, each time bound only when given. Kept in one place
// so the query-plan test checks the statement ByPatient runs.
func byPatientWhere(from, to bool) string {
	var b strings.Builder
	b.WriteString(`WHERE r.care_provider = ? AND r.patient_index = ?`)
	if from {
		b.WriteString(` AND r.started_at >= ?`)
	}
	if to {
		b.WriteString(` AND r.started_at < ?`)
	}
	b.WriteString(` ORDER BY r.started_at, r.id, s.position`)
	return b.String()
}

// ByPatient lists careProvider's recordings whose PatientIndex equals
// patientIndex, optionally limited to StartedAt in [from, to) (a zero time
// leaves that end unbounded), ordered by StartedAt, then ID. An empty
// patientIndex matches nothing. The lookup uses the index on
// (care_provider, patient_index, started_at).
func (db *DB) ByPatient(ctx context.Context, careProvider string, patientIndex []byte, from, to time.Time) ([]*Recording, error) {
	if len(patientIndex) == 0 {
		return nil, nil
	}
	args := []any{careProvider, patientIndex}
	for _, b := range []struct {
		name string
		t    time.Time
	}{{"from", from}, {"to", to}} {
		if b.t.IsZero() {
			continue
		}
		n, ok := nanos(b.t)
		if !ok {
			return nil, fmt.Errorf("catalog: by patient: %s out of range", b.name)
		}
		args = append(args, n)
	}
	recs, err := db.query(ctx, byPatientWhere(!from.IsZero(), !to.IsZero()), args...)
	if err != nil {
		return nil, fmt.Errorf("catalog: by patient: %w", err)
	}
	return recs, nil
}

// Count returns the number of recordings.
func (db *DB) Count(ctx context.Context) (int, error) {
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM recordings`).Scan(&n); err != nil {
		return 0, fmt.Errorf("catalog: count: %w", err)
	}
	return n, nil
}

// Pending returns the replication backlog, oldest first (ties by recording
// ID, then site).
func (db *DB) Pending(ctx context.Context) ([]Pending, error) {
	return db.queue(ctx, "pending_replication")
}

// queue reads one of the per-site work queues (pending_replication,
// pending_deletion), oldest first.
func (db *DB) queue(ctx context.Context, table string) ([]Pending, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT recording_id, site, since, attempts, last_error
		FROM `+table+` ORDER BY since, recording_id, site`)
	if err != nil {
		return nil, fmt.Errorf("catalog: %s: %w", table, err)
	}
	defer rows.Close()
	var out []Pending
	for rows.Next() {
		var p Pending
		var since int64
		if err := rows.Scan(&p.RecordingID, &p.Site, &since, &p.Attempts, &p.LastError); err != nil {
			return nil, fmt.Errorf("catalog: %s: %w", table, err)
		}
		p.Since = fromNanos(since)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: %s: %w", table, err)
	}
	return out, nil
}

// PendingCount returns the number of entries in the replication backlog.
func (db *DB) PendingCount(ctx context.Context) (int, error) {
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pending_replication`).Scan(&n); err != nil {
		return 0, fmt.Errorf("catalog: pending count: %w", err)
	}
	return n, nil
}

// ResolvePending removes the backlog entry of recordingID at site once the
// site holds the copy. Resolving an entry that does not exist (already
// resolved) succeeds and changes nothing.
func (db *DB) ResolvePending(ctx context.Context, recordingID, site string) error {
	if _, err := db.db.ExecContext(ctx, `DELETE FROM pending_replication WHERE recording_id = ? AND site = ?`,
		recordingID, site); err != nil {
		return fmt.Errorf("catalog: resolve pending %s: %w", recordingID, err)
	}
	return nil
}

// NotePendingFailure counts one more failed repair attempt of recordingID at
// site and keeps reason as LastError: its first 500 bytes, cut at a
// character boundary, with NUL bytes dropped and invalid UTF-8 replaced
// (reasonText). reason must be operational text (site names, OS errors,
// recording IDs), never personal data. An entry that does not exist
// (resolved meanwhile) is left absent.
func (db *DB) NotePendingFailure(ctx context.Context, recordingID, site, reason string) error {
	if _, err := db.db.ExecContext(ctx, `UPDATE pending_replication SET attempts = attempts + 1, last_error = ?
		WHERE recording_id = ? AND site = ?`, reasonText(reason), recordingID, site); err != nil {
		return fmt.Errorf("catalog: note pending failure %s: %w", recordingID, err)
	}
	return nil
}

// errText ends the error of a field that invalidText names.
const errText = "is not UTF-8 text without NUL bytes"

// validText reports whether s can be stored in a TEXT column on both
// engines: PostgreSQL refuses invalid UTF-8 and NUL bytes.
func validText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// invalidText returns the name of the first of fields (name, value) whose
// value is not validText, or "" if all are.
func invalidText(fields ...[2]string) string {
	for _, f := range fields {
		if !validText(f[1]) {
			return f[0]
		}
	}
	return ""
}

// cleanText returns operational text s fit for a TEXT column: NUL bytes
// dropped and invalid UTF-8 replaced by U+FFFD.
func cleanText(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}

// reasonText returns a failure reason as the work queues keep it: cleaned
// by cleanText and cut to maxReasonBytes.
func reasonText(s string) string { return truncate(cleanText(s), maxReasonBytes) }

// limitArg returns limit as the argument of a LIMIT clause. A negative
// limit is no limit, as SQLite reads it; PostgreSQL would refuse it.
func limitArg(limit int) int64 {
	if limit < 0 {
		return math.MaxInt64
	}
	return int64(limit)
}

// truncate returns s cut to at most n bytes without splitting a UTF-8
// sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
