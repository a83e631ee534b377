package catalog

import (
	"context"
	"fmt"
)

// WrappedRef is a recording's wrapped file key and its epoch.
type WrappedRef struct {
	ID         string
	KeyEpoch   int
	WrappedKey []byte
}

// Stale returns up to limit recordings with ID greater than after whose
// file key is wrapped to an epoch other than current, in ID order; a
// negative limit is no limit.
func (db *DB) Stale(ctx context.Context, current int, after string, limit int) ([]WrappedRef, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT id, key_epoch, wrapped_key FROM recordings
		WHERE key_epoch != ? AND id > ? ORDER BY id LIMIT ?`, int64(current), after, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("catalog: stale keys: %w", err)
	}
	defer rows.Close()
	var out []WrappedRef
	for rows.Next() {
		var w WrappedRef
		if err := rows.Scan(&w.ID, &w.KeyEpoch, blob{&w.WrappedKey}); err != nil {
			return nil, fmt.Errorf("catalog: stale keys: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: stale keys: %w", err)
	}
	return out, nil
}

// Rewrapped is a recording's file key wrapped anew to epoch To; From is
// the epoch it was read under.
type Rewrapped struct {
	ID         string
	From, To   int
	WrappedKey []byte
}

// UpdateWrapped stores the rewrapped keys in one transaction. A row is
// changed only if it is still wrapped to From (a row deleted or rewrapped
// meanwhile is skipped); it returns how many rows changed.
func (db *DB) UpdateWrapped(ctx context.Context, ws []Rewrapped) (int, error) {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("catalog: update wrapped keys: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `UPDATE recordings SET wrapped_key = ?, key_epoch = ? WHERE id = ? AND key_epoch = ?`)
	if err != nil {
		return 0, fmt.Errorf("catalog: update wrapped keys: %w", err)
	}
	defer stmt.Close()
	n := 0
	for _, w := range ws {
		res, err := stmt.ExecContext(ctx, w.WrappedKey, int64(w.To), w.ID, int64(w.From))
		if err != nil {
			return 0, fmt.Errorf("catalog: update wrapped key %s: %w", w.ID, err)
		}
		c, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("catalog: update wrapped key %s: %w", w.ID, err)
		}
		n += int(c)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("catalog: update wrapped keys: %w", err)
	}
	return n, nil
}

// EpochCounts returns how many recordings are wrapped to each epoch.
func (db *DB) EpochCounts(ctx context.Context) (map[int]int, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT key_epoch, COUNT(*) FROM recordings GROUP BY key_epoch`)
	if err != nil {
		return nil, fmt.Errorf("catalog: epoch counts: %w", err)
	}
	defer rows.Close()
	out := map[int]int{}
	for rows.Next() {
		var e, n int
		if err := rows.Scan(&e, &n); err != nil {
			return nil, fmt.Errorf("catalog: epoch counts: %w", err)
		}
		out[e] = n
	}
	return out, rows.Err()
}

// Snapshot writes a consistent copy of a SQLite catalog database (with the
// audit log's tables, which share its file) to path, which must not exist.
// On PostgreSQL it returns an error wrapping sqldb.ErrSnapshotUnsupported:
// the database is backed up with PostgreSQL's own tools.
func (db *DB) Snapshot(ctx context.Context, path string) error {
	return db.db.Snapshot(ctx, path)
}
