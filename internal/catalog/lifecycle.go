package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Errors of the lifecycle (docs/lifecycle.md). They are wrapped with the
// recording or decision they concern (IDs only, never personal data).
var (
	// ErrDeleted: the recording was deleted; its tombstone remains.
	ErrDeleted = errors.New("catalog: recording already deleted")
	// ErrHeld: the recording is under an active legal hold.
	ErrHeld = errors.New("catalog: recording is under legal hold")
	// ErrNoHold: no such hold on that recording.
	ErrNoHold = errors.New("catalog: no such legal hold")
	// ErrHoldReleased: the hold was released already.
	ErrHoldReleased = errors.New("catalog: legal hold already released")
	// ErrNoDecision: no such deletion decision.
	ErrNoDecision = errors.New("catalog: no such deletion decision")
	// ErrDecisionState: the decision is not in the state the step needs
	// (e.g. approving one that is executed).
	ErrDecisionState = errors.New("catalog: deletion decision is not awaiting that step")
	// ErrSelfApproval: the approver registered the decision.
	ErrSelfApproval = errors.New("catalog: a deletion must be approved by another officer")
	// ErrOtherProvider: the recording belongs to another care provider than
	// the decision.
	ErrOtherProvider = errors.New("catalog: recording belongs to another care provider")
)

// RecordingError says which recording a lifecycle error concerns.
type RecordingError struct {
	ID  string
	Err error
}

func (e *RecordingError) Error() string { return e.Err.Error() + ": " + e.ID }
func (e *RecordingError) Unwrap() error { return e.Err }

// Decision kinds and states.
const (
	KindIVO      = "ivo"      // a decision by IVO (PDL 8 kap.)
	KindDisposal = "disposal" // retention ended and the policy is "dispose"

	StateRegistered = "registered" // awaiting a second officer's approval
	StateApproved   = "approved"   // approved; recordings are being deleted
	StateExecuted   = "executed"   // every recording of it is deleted

	// SystemActor registers and approves disposal decisions.
	SystemActor = "system"
)

// lifecycleSchema is migration 2: retention, legal holds, deletion
// decisions, tombstones and the queue of blob removals.
const lifecycleSchema = `ALTER TABLE recordings ADD COLUMN retention_until INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX recordings_retention ON recordings (retention_until);
	CREATE TABLE legal_holds (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		recording_id TEXT NOT NULL,
		reference TEXT NOT NULL,
		set_by TEXT NOT NULL,
		set_at INTEGER NOT NULL,
		released_by TEXT NOT NULL DEFAULT '',
		released_at INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX legal_holds_recording ON legal_holds (recording_id);
	CREATE TABLE deletion_decisions (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		kind TEXT NOT NULL,
		care_provider TEXT NOT NULL,
		case_number TEXT NOT NULL,
		decided_on TEXT NOT NULL,
		document_sha256 BLOB,
		registered_by TEXT NOT NULL,
		registered_at INTEGER NOT NULL,
		approved_by TEXT NOT NULL DEFAULT '',
		approved_at INTEGER NOT NULL DEFAULT 0,
		state TEXT NOT NULL
	);
	CREATE TABLE deletion_items (
		decision_id INTEGER NOT NULL REFERENCES deletion_decisions(id),
		position INTEGER NOT NULL,
		recording_id TEXT NOT NULL,
		PRIMARY KEY (decision_id, position)
	);
	CREATE INDEX deletion_items_recording ON deletion_items (recording_id);
	CREATE TABLE tombstones (
		recording_id TEXT PRIMARY KEY,
		care_provider TEXT NOT NULL,
		decision_id INTEGER NOT NULL REFERENCES deletion_decisions(id),
		kind TEXT NOT NULL,
		case_number TEXT NOT NULL,
		registered_by TEXT NOT NULL,
		approved_by TEXT NOT NULL,
		deleted_at INTEGER NOT NULL
	);
	CREATE TABLE pending_deletion (
		recording_id TEXT NOT NULL,
		site TEXT NOT NULL,
		since INTEGER NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0,
		last_error TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (recording_id, site)
	);`

// Hold is a legal hold on one recording.
type Hold struct {
	ID          int64     `json:"id"`
	RecordingID string    `json:"recording_id"`
	Reference   string    `json:"reference"`
	SetBy       string    `json:"set_by"`
	SetAt       time.Time `json:"set_at"`
	ReleasedBy  string    `json:"released_by,omitempty"`
	ReleasedAt  time.Time `json:"released_at,omitzero"`
}

// Active reports whether the hold still blocks deletion.
func (h *Hold) Active() bool { return h.ReleasedBy == "" }

// Decision is a deletion decision and the recordings it covers, in the
// order registered.
type Decision struct {
	ID             int64     `json:"id"`
	Kind           string    `json:"kind"`
	CareProvider   string    `json:"care_provider"`
	CaseNumber     string    `json:"case_number"`
	DecidedOn      string    `json:"decided_on"` // YYYY-MM-DD
	DocumentSHA256 []byte    `json:"-"`
	RegisteredBy   string    `json:"registered_by"`
	RegisteredAt   time.Time `json:"registered_at"`
	ApprovedBy     string    `json:"approved_by,omitempty"`
	ApprovedAt     time.Time `json:"approved_at,omitzero"`
	State          string    `json:"state"`
	Recordings     []string  `json:"recordings"`
}

// Tombstone is what remains of a deleted recording: no personal data.
type Tombstone struct {
	RecordingID  string    `json:"recording_id"`
	CareProvider string    `json:"care_provider"`
	DecisionID   int64     `json:"decision_id"`
	Kind         string    `json:"kind"`
	CaseNumber   string    `json:"case_number"`
	RegisteredBy string    `json:"registered_by"`
	ApprovedBy   string    `json:"approved_by"`
	DeletedAt    time.Time `json:"deleted_at"`
}

// BackfillRetention sets RetentionUntil = EndedAt + years for every row
// that has none (catalogued before retention was recorded) and returns how
// many rows it set.
func (db *DB) BackfillRetention(ctx context.Context, years int) (int, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT id, ended_at FROM recordings WHERE retention_until = 0`)
	if err != nil {
		return 0, fmt.Errorf("catalog: backfill retention: %w", err)
	}
	type row struct {
		id    string
		ended int64
	}
	var todo []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.ended); err != nil {
			rows.Close()
			return 0, fmt.Errorf("catalog: backfill retention: %w", err)
		}
		todo = append(todo, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("catalog: backfill retention: %w", err)
	}
	for _, r := range todo {
		until, ok := nanos(fromNanos(r.ended).AddDate(years, 0, 0))
		if !ok {
			return 0, fmt.Errorf("catalog: backfill retention %s: out of range", r.id)
		}
		if _, err := db.db.ExecContext(ctx, `UPDATE recordings SET retention_until = ? WHERE id = ? AND retention_until = 0`, until, r.id); err != nil {
			return 0, fmt.Errorf("catalog: backfill retention %s: %w", r.id, err)
		}
	}
	return len(todo), nil
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// deletable checks that recording id exists under careProvider, is not
// deleted and has no active hold.
func deletable(ctx context.Context, q querier, id, careProvider string) error {
	if err := tombstoned(ctx, q, id); err != nil {
		return err
	}
	var prov string
	switch err := q.QueryRowContext(ctx, `SELECT care_provider FROM recordings WHERE id = ?`, id).Scan(&prov); {
	case errors.Is(err, sql.ErrNoRows):
		return &RecordingError{id, ErrNotFound}
	case err != nil:
		return err
	}
	if careProvider != "" && prov != careProvider {
		return &RecordingError{id, ErrOtherProvider}
	}
	var held int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM legal_holds WHERE recording_id = ? AND released_by = ''`, id).Scan(&held); err != nil {
		return err
	}
	if held > 0 {
		return &RecordingError{id, ErrHeld}
	}
	return nil
}

// tombstoned returns ErrDeleted (wrapped with id) if id has a tombstone.
func tombstoned(ctx context.Context, q querier, id string) error {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM tombstones WHERE recording_id = ?`, id).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return &RecordingError{id, ErrDeleted}
	}
	return nil
}

// SetHold puts a legal hold on recording id. It returns ErrNotFound for an
// unknown recording and ErrDeleted for a deleted one.
func (db *DB) SetHold(ctx context.Context, id, reference, by string, at time.Time) (*Hold, error) {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("catalog: set hold: %w", err)
	}
	defer tx.Rollback()
	if err := tombstoned(ctx, tx, id); err != nil {
		return nil, err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM recordings WHERE id = ?`, id).Scan(&n); err != nil {
		return nil, fmt.Errorf("catalog: set hold: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	h := &Hold{RecordingID: id, Reference: reference, SetBy: by, SetAt: at.UTC()}
	res, err := tx.ExecContext(ctx, `INSERT INTO legal_holds (recording_id, reference, set_by, set_at) VALUES (?, ?, ?, ?)`,
		id, reference, by, at.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("catalog: set hold: %w", err)
	}
	if h.ID, err = res.LastInsertId(); err != nil {
		return nil, fmt.Errorf("catalog: set hold: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("catalog: set hold: %w", err)
	}
	return h, nil
}

// ReleaseHold releases hold holdID of recording id.
func (db *DB) ReleaseHold(ctx context.Context, id string, holdID int64, by string, at time.Time) (*Hold, error) {
	res, err := db.db.ExecContext(ctx, `UPDATE legal_holds SET released_by = ?, released_at = ?
		WHERE id = ? AND recording_id = ? AND released_by = ''`, by, at.UnixNano(), holdID, id)
	if err != nil {
		return nil, fmt.Errorf("catalog: release hold: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, fmt.Errorf("catalog: release hold: %w", err)
	}
	holds, err := db.Holds(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, h := range holds {
		if h.ID == holdID {
			if n == 0 {
				return nil, fmt.Errorf("%w: hold %d", ErrHoldReleased, holdID)
			}
			return h, nil
		}
	}
	return nil, fmt.Errorf("%w: hold %d", ErrNoHold, holdID)
}

// Holds lists the holds of recording id, active and released, oldest first.
func (db *DB) Holds(ctx context.Context, id string) ([]*Hold, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT id, reference, set_by, set_at, released_by, released_at
		FROM legal_holds WHERE recording_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("catalog: holds: %w", err)
	}
	defer rows.Close()
	var out []*Hold
	for rows.Next() {
		h := &Hold{RecordingID: id}
		var set, released int64
		if err := rows.Scan(&h.ID, &h.Reference, &h.SetBy, &set, &h.ReleasedBy, &released); err != nil {
			return nil, fmt.Errorf("catalog: holds: %w", err)
		}
		h.SetAt = fromNanos(set)
		if released != 0 {
			h.ReleasedAt = fromNanos(released)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: holds: %w", err)
	}
	return out, nil
}

// RegisterDeletion stores d (state registered) after checking that every
// recording exists under d.CareProvider, is not deleted and not held, and
// that no other unfinished decision covers it; then it sets d.ID and
// d.State. Nothing is stored if any check fails.
func (db *DB) RegisterDeletion(ctx context.Context, d *Decision) error {
	if len(d.Recordings) == 0 {
		return errors.New("catalog: register deletion: no recordings")
	}
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("catalog: register deletion: %w", err)
	}
	defer tx.Rollback()
	seen := map[string]bool{}
	for _, id := range d.Recordings {
		if seen[id] {
			return fmt.Errorf("catalog: register deletion: recording %s listed twice", id)
		}
		seen[id] = true
		if err := deletable(ctx, tx, id, d.CareProvider); err != nil {
			return err
		}
		var open int64
		err := tx.QueryRowContext(ctx, `SELECT d.id FROM deletion_items i JOIN deletion_decisions d ON d.id = i.decision_id
			WHERE i.recording_id = ? AND d.state != ? LIMIT 1`, id, StateExecuted).Scan(&open)
		if err == nil {
			return &RecordingError{id, fmt.Errorf("%w: in decision %d, not yet executed", ErrDecisionState, open)}
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("catalog: register deletion: %w", err)
		}
	}
	d.State = StateRegistered
	res, err := tx.ExecContext(ctx, `INSERT INTO deletion_decisions (kind, care_provider, case_number, decided_on, document_sha256,
		registered_by, registered_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		d.Kind, d.CareProvider, d.CaseNumber, d.DecidedOn, d.DocumentSHA256, d.RegisteredBy, d.RegisteredAt.UnixNano(), d.State)
	if err != nil {
		return fmt.Errorf("catalog: register deletion: %w", err)
	}
	if d.ID, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("catalog: register deletion: %w", err)
	}
	for i, id := range d.Recordings {
		if _, err := tx.ExecContext(ctx, `INSERT INTO deletion_items (decision_id, position, recording_id) VALUES (?, ?, ?)`, d.ID, i, id); err != nil {
			return fmt.Errorf("catalog: register deletion: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("catalog: register deletion: %w", err)
	}
	return nil
}

// Decision returns deletion decision id, or ErrNoDecision.
func (db *DB) Decision(ctx context.Context, id int64) (*Decision, error) {
	return decision(ctx, db.db, id)
}

func decision(ctx context.Context, q querier, id int64) (*Decision, error) {
	d := &Decision{ID: id}
	var reg, appr int64
	err := q.QueryRowContext(ctx, `SELECT kind, care_provider, case_number, decided_on, document_sha256, registered_by, registered_at,
		approved_by, approved_at, state FROM deletion_decisions WHERE id = ?`, id).Scan(&d.Kind, &d.CareProvider, &d.CaseNumber,
		&d.DecidedOn, blob{&d.DocumentSHA256}, &d.RegisteredBy, &reg, &d.ApprovedBy, &appr, &d.State)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %d", ErrNoDecision, id)
	} else if err != nil {
		return nil, fmt.Errorf("catalog: decision %d: %w", id, err)
	}
	d.RegisteredAt = fromNanos(reg)
	if appr != 0 {
		d.ApprovedAt = fromNanos(appr)
	}
	rows, err := q.QueryContext(ctx, `SELECT recording_id FROM deletion_items WHERE decision_id = ? ORDER BY position`, id)
	if err != nil {
		return nil, fmt.Errorf("catalog: decision %d: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, fmt.Errorf("catalog: decision %d: %w", id, err)
		}
		d.Recordings = append(d.Recordings, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: decision %d: %w", id, err)
	}
	return d, nil
}

// ApproveDeletion moves decision id from registered to approved, by
// approver. It refuses (changing nothing) a decision in another state,
// approval by its registrar (except the system's disposal decisions), and
// a decision any of whose recordings has meanwhile been held or deleted.
func (db *DB) ApproveDeletion(ctx context.Context, id int64, approver string, at time.Time) (*Decision, error) {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("catalog: approve deletion: %w", err)
	}
	defer tx.Rollback()
	d, err := decision(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if d.State != StateRegistered {
		return nil, fmt.Errorf("%w: decision %d is %s", ErrDecisionState, id, d.State)
	}
	if approver == d.RegisteredBy && d.Kind != KindDisposal {
		return nil, fmt.Errorf("%w: decision %d", ErrSelfApproval, id)
	}
	for _, r := range d.Recordings {
		if err := deletable(ctx, tx, r, d.CareProvider); err != nil {
			return nil, err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE deletion_decisions SET approved_by = ?, approved_at = ?, state = ? WHERE id = ?`,
		approver, at.UnixNano(), StateApproved, id); err != nil {
		return nil, fmt.Errorf("catalog: approve deletion %d: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("catalog: approve deletion %d: %w", id, err)
	}
	d.ApprovedBy, d.ApprovedAt, d.State = approver, at.UTC(), StateApproved
	return d, nil
}

// Approved returns the decisions approved but not yet fully executed (for
// example interrupted by a crash), oldest first.
func (db *DB) Approved(ctx context.Context) ([]*Decision, error) {
	return db.decisions(ctx, `SELECT id FROM deletion_decisions WHERE state = ? ORDER BY id`, StateApproved)
}

// Decisions returns up to limit of careProvider's decisions in state,
// newest first.
func (db *DB) Decisions(ctx context.Context, careProvider, state string, limit int) ([]*Decision, error) {
	return db.decisions(ctx, `SELECT id FROM deletion_decisions WHERE care_provider = ? AND state = ? ORDER BY id DESC LIMIT ?`,
		careProvider, state, limit)
}

// decisions loads the decisions whose IDs query selects, in its order.
func (db *DB) decisions(ctx context.Context, query string, args ...any) ([]*Decision, error) {
	rows, err := db.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("catalog: decisions: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("catalog: decisions: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: decisions: %w", err)
	}
	var out []*Decision
	for _, id := range ids {
		d, err := db.Decision(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Shred deletes recording id under approved decision d, in one
// transaction: it writes the tombstone, removes the recording's row (its
// wrapped file key, sealed fields and indexes), its staff and replication
// backlog, and queues the blob's removal at each of sites. It returns
// ErrDeleted if the recording has a tombstone already. Call Checkpoint
// afterwards so that the write-ahead log, too, no longer holds the
// wrapped key.
//
// objects lists the site objects to remove besides the blob (the
// recording's recovery records).
func (db *DB) Shred(ctx context.Context, d *Decision, id string, objects, sites []string, at time.Time) error {
	if d.State != StateApproved {
		return fmt.Errorf("%w: decision %d is %s", ErrDecisionState, d.ID, d.State)
	}
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("catalog: shred %s: %w", id, err)
	}
	defer tx.Rollback()
	var listed int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM deletion_items WHERE decision_id = ? AND recording_id = ?`, d.ID, id).Scan(&listed); err != nil {
		return fmt.Errorf("catalog: shred %s: %w", id, err)
	}
	if listed == 0 {
		return fmt.Errorf("catalog: shred %s: not in decision %d", id, d.ID)
	}
	if err := deletable(ctx, tx, id, d.CareProvider); err != nil {
		return err
	}
	// The tombstone keeps the source index (a keyed hash of the migrated
	// file, no personal data) so that importing the same file again is
	// answered "deleted" instead of bringing the recording back.
	if res, err := tx.ExecContext(ctx, `INSERT INTO tombstones (recording_id, care_provider, decision_id, kind, case_number,
		registered_by, approved_by, deleted_at, source_index)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, source_index FROM recordings WHERE id = ?`,
		id, d.CareProvider, d.ID, d.Kind, d.CaseNumber, d.RegisteredBy, d.ApprovedBy, at.UnixNano(), id); err != nil {
		return fmt.Errorf("catalog: shred %s: %w", id, err)
	} else if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("catalog: shred %s: tombstone not written (%d rows, %v)", id, n, err)
	}
	for _, q := range []string{
		`DELETE FROM lost_recordings WHERE recording_id = ?`,
		`DELETE FROM patient_links WHERE recording_id = ?`,
		`DELETE FROM recording_staff WHERE recording_id = ?`,
		`DELETE FROM pending_replication WHERE recording_id = ?`,
		`DELETE FROM recordings WHERE id = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, id); err != nil {
			return fmt.Errorf("catalog: shred %s: %w", id, err)
		}
	}
	for _, name := range append([]string{id}, objects...) {
		for _, s := range sites {
			if _, err := tx.ExecContext(ctx, `INSERT INTO pending_deletion (recording_id, site, since) VALUES (?, ?, ?)
				ON CONFLICT DO NOTHING`, name, s, at.UnixNano()); err != nil {
				return fmt.Errorf("catalog: shred %s: %w", id, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("catalog: shred %s: %w", id, err)
	}
	return nil
}

// CheckDeletable checks that each recording of ids exists under
// careProvider, is not deleted and not under an active hold; the error is
// a *RecordingError naming the first that is not.
func (db *DB) CheckDeletable(ctx context.Context, careProvider string, ids []string) error {
	for _, id := range ids {
		if err := deletable(ctx, db.db, id, careProvider); err != nil {
			return err
		}
	}
	return nil
}

// Checkpoint copies the write-ahead log into the database file and
// truncates it, so that old page images (holding deleted rows) do not
// linger in the -wal file.
func (db *DB) Checkpoint(ctx context.Context) error {
	var busy, logged, done int
	if err := db.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logged, &done); err != nil {
		return fmt.Errorf("catalog: checkpoint: %w", err)
	}
	if busy != 0 {
		return errors.New("catalog: checkpoint: database busy; the log is checkpointed later")
	}
	return nil
}

// FinishDecision marks approved decision id executed once every recording
// of it has a tombstone; it reports whether it did.
func (db *DB) FinishDecision(ctx context.Context, id int64) (bool, error) {
	res, err := db.db.ExecContext(ctx, `UPDATE deletion_decisions SET state = ? WHERE id = ? AND state = ? AND NOT EXISTS (
		SELECT 1 FROM deletion_items i WHERE i.decision_id = ? AND i.recording_id NOT IN (SELECT recording_id FROM tombstones))`,
		StateExecuted, id, StateApproved, id)
	if err != nil {
		return false, fmt.Errorf("catalog: finish decision %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("catalog: finish decision %d: %w", id, err)
	}
	return n == 1, nil
}

// Tombstone returns the tombstone of recording id, or ErrNotFound.
func (db *DB) Tombstone(ctx context.Context, id string) (*Tombstone, error) {
	t := &Tombstone{RecordingID: id}
	var at int64
	err := db.db.QueryRowContext(ctx, `SELECT care_provider, decision_id, kind, case_number, registered_by, approved_by, deleted_at
		FROM tombstones WHERE recording_id = ?`, id).Scan(&t.CareProvider, &t.DecisionID, &t.Kind, &t.CaseNumber,
		&t.RegisteredBy, &t.ApprovedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("catalog: tombstone: %w", err)
	}
	t.DeletedAt = fromNanos(at)
	return t, nil
}

// PendingDeletions returns the queued blob removals, oldest first.
func (db *DB) PendingDeletions(ctx context.Context) ([]Pending, error) {
	return db.queue(ctx, "pending_deletion")
}

// ResolveDeletion removes the queued removal of id at site once the site no
// longer holds the blob.
func (db *DB) ResolveDeletion(ctx context.Context, id, site string) error {
	if _, err := db.db.ExecContext(ctx, `DELETE FROM pending_deletion WHERE recording_id = ? AND site = ?`, id, site); err != nil {
		return fmt.Errorf("catalog: resolve deletion %s: %w", id, err)
	}
	return nil
}

// NoteDeletionFailure counts a failed removal attempt, keeping reason
// (operational text only) as its LastError.
func (db *DB) NoteDeletionFailure(ctx context.Context, id, site, reason string) error {
	if _, err := db.db.ExecContext(ctx, `UPDATE pending_deletion SET attempts = attempts + 1, last_error = ?
		WHERE recording_id = ? AND site = ?`, truncate(reason, maxReasonBytes), id, site); err != nil {
		return fmt.Errorf("catalog: note deletion failure %s: %w", id, err)
	}
	return nil
}

// Expired is a recording whose retention has ended.
type Expired struct{ ID, CareProvider string }

// ExpiredRecordings returns up to limit recordings whose retention ended at
// or before now, that have no active hold and are in no unfinished
// decision, oldest retention first.
func (db *DB) ExpiredRecordings(ctx context.Context, now time.Time, limit int) ([]Expired, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT r.id, r.care_provider FROM recordings r
		WHERE r.retention_until != 0 AND r.retention_until <= ?
		AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.recording_id = r.id AND h.released_by = '')
		AND NOT EXISTS (SELECT 1 FROM deletion_items i JOIN deletion_decisions d ON d.id = i.decision_id
			WHERE i.recording_id = r.id AND d.state != ?)
		ORDER BY r.retention_until, r.id LIMIT ?`, now.UnixNano(), StateExecuted, limit)
	if err != nil {
		return nil, fmt.Errorf("catalog: expired: %w", err)
	}
	defer rows.Close()
	var out []Expired
	for rows.Next() {
		var e Expired
		if err := rows.Scan(&e.ID, &e.CareProvider); err != nil {
			return nil, fmt.Errorf("catalog: expired: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: expired: %w", err)
	}
	return out, nil
}

// lostSchema is migration 3: recordings whose every stored copy failed
// the scrubber's integrity check.
const lostSchema = `CREATE TABLE lost_recordings (
		recording_id TEXT PRIMARY KEY REFERENCES recordings(id),
		since INTEGER NOT NULL,
		detail TEXT NOT NULL
	);`

// BlobRef is what the scrubber needs of a recording.
type BlobRef struct {
	ID         string
	BlobBytes  int64
	BlobSHA256 []byte
	KeyEpoch   int
}

// Blobs returns up to limit recordings with ID greater than after, in ID
// order, for walking the whole catalog in pages.
func (db *DB) Blobs(ctx context.Context, after string, limit int) ([]BlobRef, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT id, blob_bytes, blob_sha256, key_epoch FROM recordings WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("catalog: blobs: %w", err)
	}
	defer rows.Close()
	var out []BlobRef
	for rows.Next() {
		var b BlobRef
		if err := rows.Scan(&b.ID, &b.BlobBytes, blob{&b.BlobSHA256}, &b.KeyEpoch); err != nil {
			return nil, fmt.Errorf("catalog: blobs: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: blobs: %w", err)
	}
	return out, nil
}

// Known reports whether id is a catalogued recording (live) or has a
// tombstone (deleted); both false for an ID the catalog never had or lost.
func (db *DB) Known(ctx context.Context, id string) (live, deleted bool, err error) {
	var n, t int
	if err := db.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM recordings WHERE id = ?), (SELECT COUNT(*) FROM tombstones WHERE recording_id = ?)`,
		id, id).Scan(&n, &t); err != nil {
		return false, false, fmt.Errorf("catalog: known: %w", err)
	}
	return n > 0, t > 0, nil
}

// MarkLost records that every copy of recording id failed its integrity
// check (detail: operational text, no personal data). Marking it again
// keeps the first time.
func (db *DB) MarkLost(ctx context.Context, id, detail string, at time.Time) error {
	if _, err := db.db.ExecContext(ctx, `INSERT INTO lost_recordings (recording_id, since, detail) VALUES (?, ?, ?)
		ON CONFLICT (recording_id) DO UPDATE SET detail = excluded.detail`, id, at.UnixNano(), truncate(detail, maxReasonBytes)); err != nil {
		return fmt.Errorf("catalog: mark lost %s: %w", id, err)
	}
	return nil
}

// ClearLost removes id from the lost recordings (a good copy is back).
func (db *DB) ClearLost(ctx context.Context, id string) error {
	if _, err := db.db.ExecContext(ctx, `DELETE FROM lost_recordings WHERE recording_id = ?`, id); err != nil {
		return fmt.Errorf("catalog: clear lost %s: %w", id, err)
	}
	return nil
}

// Lost reports whether recording id is marked lost.
func (db *DB) Lost(ctx context.Context, id string) (bool, error) {
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM lost_recordings WHERE recording_id = ?`, id).Scan(&n); err != nil {
		return false, fmt.Errorf("catalog: lost: %w", err)
	}
	return n > 0, nil
}

// LostCount returns how many recordings are marked lost.
func (db *DB) LostCount(ctx context.Context) (int, error) {
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM lost_recordings`).Scan(&n); err != nil {
		return 0, fmt.Errorf("catalog: lost count: %w", err)
	}
	return n, nil
}
