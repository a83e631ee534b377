package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// sourceSchema (version 4) lets a migration be re-run without storing a
// file twice: a recording imported from a legacy store carries the blind
// index of its source file's SHA-256, unique per care provider, and a
// deletion keeps it in the tombstone.
const sourceSchema = `ALTER TABLE recordings ADD COLUMN source_index BLOB;
	CREATE UNIQUE INDEX recordings_source ON recordings (care_provider, source_index) WHERE source_index IS NOT NULL;
	ALTER TABLE tombstones ADD COLUMN source_index BLOB;
	CREATE INDEX tombstones_source ON tombstones (care_provider, source_index) WHERE source_index IS NOT NULL;`

const sourceSchemaPostgres = `ALTER TABLE recordings ADD COLUMN source_index BYTEA;
	CREATE UNIQUE INDEX recordings_source ON recordings (care_provider, source_index) WHERE source_index IS NOT NULL;
	ALTER TABLE tombstones ADD COLUMN source_index BYTEA;
	CREATE INDEX tombstones_source ON tombstones (care_provider, source_index) WHERE source_index IS NOT NULL;`

// SourceExistsError is returned by Insert and BySource when the care
// provider already has a recording of the same source file.
type SourceExistsError struct {
	ID      string // the recording that holds the source
	Deleted bool   // the recording was deleted; ID names its tombstone
}

func (e *SourceExistsError) Error() string {
	if e.Deleted {
		return "catalog: the source file's recording " + e.ID + " was deleted"
	}
	return "catalog: the source file is stored already as recording " + e.ID
}

// sourceTaken returns a *SourceExistsError if careProvider has a live or
// deleted recording with the source index, nil if not.
func sourceTaken(ctx context.Context, q querier, careProvider string, index []byte) error {
	for _, t := range []struct {
		query   string
		deleted bool
	}{
		{`SELECT id FROM recordings WHERE care_provider = ? AND source_index = ?`, false},
		{`SELECT recording_id FROM tombstones WHERE care_provider = ? AND source_index = ? ORDER BY deleted_at LIMIT 1`, true},
	} {
		var id string
		err := q.QueryRowContext(ctx, t.query, careProvider, index).Scan(&id)
		if err == nil {
			return &SourceExistsError{ID: id, Deleted: t.deleted}
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("catalog: source lookup: %w", err)
		}
	}
	return nil
}

// BySource reports whether careProvider has a recording of the source
// file with the blind index: a *SourceExistsError if it has (live or
// deleted), nil if not, or another error.
func (db *DB) BySource(ctx context.Context, careProvider string, index []byte) error {
	if len(index) == 0 {
		return errors.New("catalog: source lookup: empty index")
	}
	return sourceTaken(ctx, db.db, careProvider, index)
}
