package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// captureSchema (version 5) is what live capture (SIPREC) needs: a
// recording can be incomplete and carry its capture statistics; every
// accepted capture session has a row from its start, so that a session that
// ended without a stored recording is visible (docs/siprec.md); and a
// patient linked to a recording after the fact keeps its history.
const captureSchema = `ALTER TABLE recordings ADD COLUMN incomplete INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE recordings ADD COLUMN capture_stats TEXT NOT NULL DEFAULT '';
	CREATE INDEX recordings_call ON recordings (care_provider, call_id);
	CREATE TABLE capture_sessions (
		recording_id TEXT PRIMARY KEY,
		care_provider TEXT NOT NULL,
		care_unit TEXT NOT NULL,
		started_at INTEGER NOT NULL,
		ended_at INTEGER NOT NULL DEFAULT 0,
		state TEXT NOT NULL,
		detail TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX capture_sessions_state ON capture_sessions (state, started_at);
	CREATE TABLE patient_links (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		recording_id TEXT NOT NULL REFERENCES recordings(id),
		linked_at INTEGER NOT NULL,
		linked_by TEXT NOT NULL,
		previous_index BLOB,
		previous_sealed BLOB
	);
	CREATE INDEX patient_links_recording ON patient_links (recording_id, id);`

// States of a capture session. Active is the only state a session leaves;
// the others are final.
const (
	CaptureActive     = "active"     // the call is being recorded
	CaptureStored     = "stored"     // the recording is stored
	CaptureIncomplete = "incomplete" // stored as incomplete after a failure
	CaptureCancelled  = "cancelled"  // ended before it was answered: nothing to store
	CaptureFailed     = "failed"     // ended without a stored recording: an alert
)

// ErrCaptureState is returned when a capture session is not in the state
// an update requires (e.g. ending a session that has ended).
var ErrCaptureState = errors.New("catalog: capture session is not active")

// CaptureSession is one accepted live capture. It holds no personal data:
// the recording ID reserved for the call, where it is recorded, and when.
type CaptureSession struct {
	RecordingID  string
	CareProvider string
	CareUnit     string
	StartedAt    time.Time
	EndedAt      time.Time // zero while active
	State        string
	Detail       string // why it failed or was cancelled; no personal data
}

// BeginCapture records an accepted capture session as active.
func (db *DB) BeginCapture(ctx context.Context, cs *CaptureSession) error {
	n, ok := nanos(cs.StartedAt)
	if !ok {
		return fmt.Errorf("catalog: begin capture %s: start out of range", cs.RecordingID)
	}
	if _, err := db.db.ExecContext(ctx, `INSERT INTO capture_sessions (recording_id, care_provider, care_unit, started_at, state)
		VALUES (?, ?, ?, ?, ?)`, cs.RecordingID, cs.CareProvider, cs.CareUnit, n, CaptureActive); err != nil {
		return fmt.Errorf("catalog: begin capture %s: %w", cs.RecordingID, err)
	}
	return nil
}

// EndCapture moves an active capture session to its final state. It
// returns ErrCaptureState if the session is not active (already ended, or
// never begun), so a final state is written once.
func (db *DB) EndCapture(ctx context.Context, id, state, detail string, at time.Time) error {
	switch state {
	case CaptureStored, CaptureIncomplete, CaptureCancelled, CaptureFailed:
	default:
		return fmt.Errorf("catalog: end capture %s: %q is not a final state", id, state)
	}
	res, err := db.db.ExecContext(ctx, `UPDATE capture_sessions SET state = ?, detail = ?, ended_at = ?
		WHERE recording_id = ? AND state = ?`, state, detail, at.UnixNano(), id, CaptureActive)
	if err != nil {
		return fmt.Errorf("catalog: end capture %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("catalog: end capture %s: %w", id, err)
	} else if n == 0 {
		return ErrCaptureState
	}
	return nil
}

// CaptureSessions lists the capture sessions in state, oldest first, at
// most limit.
func (db *DB) CaptureSessions(ctx context.Context, state string, limit int) ([]*CaptureSession, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT recording_id, care_provider, care_unit, started_at, ended_at, state, detail
		FROM capture_sessions WHERE state = ? ORDER BY started_at, recording_id LIMIT ?`, state, limit)
	if err != nil {
		return nil, fmt.Errorf("catalog: capture sessions: %w", err)
	}
	defer rows.Close()
	var out []*CaptureSession
	for rows.Next() {
		var cs CaptureSession
		var started, ended int64
		if err := rows.Scan(&cs.RecordingID, &cs.CareProvider, &cs.CareUnit, &started, &ended, &cs.State, &cs.Detail); err != nil {
			return nil, fmt.Errorf("catalog: capture sessions: %w", err)
		}
		cs.StartedAt = fromNanos(started)
		if ended != 0 {
			cs.EndedAt = fromNanos(ended)
		}
		out = append(out, &cs)
	}
	return out, rows.Err()
}

// CaptureCounts counts capture sessions by state.
func (db *DB) CaptureCounts(ctx context.Context) (map[string]int, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM capture_sessions GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("catalog: capture counts: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("catalog: capture counts: %w", err)
		}
		out[state] = n
	}
	return out, rows.Err()
}

// ByCallID returns the IDs of careProvider's live recordings with the
// telephony call ID callID, oldest first.
func (db *DB) ByCallID(ctx context.Context, careProvider, callID string) ([]string, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT id FROM recordings WHERE care_provider = ? AND call_id = ?
		ORDER BY started_at, id`, careProvider, callID)
	if err != nil {
		return nil, fmt.Errorf("catalog: by call id: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("catalog: by call id: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// PatientLink is one change of a recording's patient: who made it, when,
// and the patient before it (blind index and sealed personnummer, nil
// when the recording had none).
type PatientLink struct {
	ID             int64
	RecordingID    string
	LinkedAt       time.Time
	LinkedBy       string // HSA-ID of the integration or person
	PreviousIndex  []byte
	PreviousSealed []byte
}

// LinkPatient sets recording id's patient to (index, sealed) and keeps the
// previous value in the link history, in one transaction. It returns
// ErrNotFound for an unknown (or deleted) recording.
func (db *DB) LinkPatient(ctx context.Context, id string, index, sealed []byte, by string, at time.Time) (*PatientLink, error) {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("catalog: link %s: %w", id, err)
	}
	defer tx.Rollback()
	l := &PatientLink{RecordingID: id, LinkedAt: at.UTC(), LinkedBy: by}
	err = tx.QueryRowContext(ctx, `SELECT patient_index, patient_sealed FROM recordings WHERE id = ?`, id).
		Scan(blob{&l.PreviousIndex}, blob{&l.PreviousSealed})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("catalog: link %s: %w", id, err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO patient_links (recording_id, linked_at, linked_by, previous_index, previous_sealed)
		VALUES (?, ?, ?, ?, ?)`, id, at.UnixNano(), by, l.PreviousIndex, l.PreviousSealed)
	if err != nil {
		return nil, fmt.Errorf("catalog: link %s: %w", id, err)
	}
	if l.ID, err = res.LastInsertId(); err != nil {
		return nil, fmt.Errorf("catalog: link %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE recordings SET patient_index = ?, patient_sealed = ? WHERE id = ?`,
		index, sealed, id); err != nil {
		return nil, fmt.Errorf("catalog: link %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("catalog: link %s: %w", id, err)
	}
	return l, nil
}

// PatientLinks returns recording id's link history, oldest first.
func (db *DB) PatientLinks(ctx context.Context, id string) ([]*PatientLink, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT id, recording_id, linked_at, linked_by, previous_index, previous_sealed
		FROM patient_links WHERE recording_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("catalog: patient links: %w", err)
	}
	defer rows.Close()
	var out []*PatientLink
	for rows.Next() {
		var l PatientLink
		var at int64
		if err := rows.Scan(&l.ID, &l.RecordingID, &at, &l.LinkedBy, blob{&l.PreviousIndex}, blob{&l.PreviousSealed}); err != nil {
			return nil, fmt.Errorf("catalog: patient links: %w", err)
		}
		l.LinkedAt = fromNanos(at)
		out = append(out, &l)
	}
	return out, rows.Err()
}
