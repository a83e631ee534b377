package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"callvault/bench/internal/synthpop"
	"callvault/internal/archive"
	"callvault/internal/keys"
	"callvault/internal/recording"
	"callvault/internal/seal"
	"callvault/internal/sqlitedb"
)

// Synthetic identities: HSA-IDs of the test organisation SE9999990001,
// as in the dev setup (cmd/callvault/dev.go).
const (
	provider = "SE9999990001-VG01"
	unit     = "SE9999990001-VE0A"
	nurseID  = "SE9999990001-N0A1"
	// fictionNumber is in the PTS number range reserved for fiction.
	fictionNumber = "+46701740605"
)

// columns are the recordings columns the load fills: every column of the
// schema, in catalog.Insert's order.
var columns = []string{"id", "call_id", "care_provider", "care_unit", "started_at", "ended_at",
	"direction", "privacy_notice", "patient_index", "patient_sealed", "caller_index", "caller_sealed",
	"format", "content_type", "audio_bytes", "blob_bytes", "blob_sha256", "key_epoch", "wrapped_key",
	"created_at", "retention_until", "source_index", "incomplete", "capture_stats"}

var staffColumns = []string{"recording_id", "position", "staff"}

// batch is rows [start, start+len(recs)) of the catalog, ready to load.
type batch struct {
	start int
	recs  [][]any // values in the order of columns
	staff [][]any // values in the order of staffColumns
	err   error
}

// rowMaker makes the synthetic rows: each looks like an ingested
// recording's (see the rewrap benchmark): a fresh random ID, the blind
// index of its patient and the patient number sealed under one of
// len(fileKeys) file keys, the fictional caller number sealed likewise,
// and that file key wrapped to the keyring's archive key. Row i starts
// 10 years × i/n after 2016-01-01, so a patient's rows are spread over
// ten years and over the table.
type rowMaker struct {
	kr       *keys.Keyring
	pop      *synthpop.Population
	fileKeys []*seal.FileKey
	wrapped  [][]byte
	caller   []byte // blind index of fictionNumber
}

func newRowMaker(kr *keys.Keyring, pop *synthpop.Population, distinct int) (*rowMaker, error) {
	m := &rowMaker{kr: kr, pop: pop, caller: kr.BlindIndex("caller", fictionNumber)}
	rcpt := kr.Current().Recipient
	for range distinct {
		fk, err := seal.NewFileKey()
		if err != nil {
			return nil, err
		}
		w, err := seal.Wrap(fk, rcpt)
		if err != nil {
			return nil, err
		}
		m.fileKeys = append(m.fileKeys, fk)
		m.wrapped = append(m.wrapped, w)
	}
	return m, nil
}

var (
	base = time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC)
	span = base.AddDate(10, 0, 0).Sub(base)
)

const (
	audioBytes = int64(3_648_058) // a 228-s two-channel G.711 WAV
	callLength = 228 * time.Second
)

// make fills b with rows [b.start, b.start+size).
func (m *rowMaker) make(b *batch, size int) error {
	blobBytes := seal.BlobSize(audioBytes)
	for i := b.start; i < min(b.start+size, m.pop.N); i++ {
		id, err := recording.NewID()
		if err != nil {
			return err
		}
		k := i % len(m.fileKeys)
		var patientIndex, patientSealed any // NULL without a patient
		if pnr := m.pop.PNR(i); pnr != "" {
			patientIndex = m.kr.BlindIndex("patient", pnr)
			if patientSealed, err = m.fileKeys[k].SealField("catalog/patient", []byte(pnr)); err != nil {
				return err
			}
		}
		callerSealed, err := m.fileKeys[k].SealField("catalog/caller-number", []byte(fictionNumber))
		if err != nil {
			return err
		}
		started := base.Add(time.Duration(float64(span) * float64(i) / float64(m.pop.N)))
		ended := started.Add(callLength)
		digest := sha256.Sum256([]byte(id))
		b.recs = append(b.recs, []any{
			id, fmt.Sprintf("bench-search-%d", i), provider, unit, started.UnixNano(), ended.UnixNano(),
			string(recording.Inbound), "ivr-2026-01", patientIndex, patientSealed, m.caller, callerSealed,
			"wav", "audio/wav", audioBytes, blobBytes, digest[:], int64(1), m.wrapped[k],
			ended.Add(time.Second).UnixNano(), ended.AddDate(archive.MinRetentionYears, 0, 0).UnixNano(),
			nil, int64(0), "",
		})
		b.staff = append(b.staff, []any{id, int64(0), nurseID})
	}
	return nil
}

// generate makes the rows of pop in batches of size on all cores and
// sends them to load in row order. It stops at the first error.
func (m *rowMaker) generate(ctx context.Context, size int, load func(*batch) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := runtime.GOMAXPROCS(0)
	futures := make(chan chan *batch, 2*workers)
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	go func() {
		defer close(futures)
		for start := 0; start < m.pop.N; start += size {
			f := make(chan *batch, 1)
			select {
			case futures <- f:
			case <-ctx.Done():
				return
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				b := &batch{start: start}
				b.err = m.make(b, size)
				f <- b
			})
		}
	}()
	var err error
	for f := range futures {
		if err != nil {
			continue // drain
		}
		b := <-f
		if err = errors.Join(b.err, ctx.Err()); err == nil {
			err = load(b)
		}
		if err != nil {
			cancel()
		}
	}
	wg.Wait()
	return err
}

// index is a secondary index: its name and the statement that creates it.
type index struct{ name, def string }

// sqliteLoader loads rows into a SQLite catalog file on one connection,
// a transaction per batch, with catalog.Insert's statements. The load
// alone runs with synchronous=OFF and a 1 GiB page cache; the file is
// checkpointed and synced afterwards.
type sqliteLoader struct {
	db *sql.DB
}

func openSQLiteLoader(ctx context.Context, path string) (*sqliteLoader, error) {
	db, err := sqlitedb.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	for _, p := range []string{"PRAGMA synchronous=OFF", "PRAGMA cache_size=-1048576"} {
		if _, err := db.ExecContext(ctx, p); err != nil {
			db.Close()
			return nil, err
		}
	}
	return &sqliteLoader{db: db}, nil
}

func (l *sqliteLoader) indexes(ctx context.Context) ([]index, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT name, sql FROM sqlite_master
		WHERE type = 'index' AND tbl_name IN ('recordings', 'recording_staff') AND sql IS NOT NULL ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []index
	for rows.Next() {
		var ix index
		if err := rows.Scan(&ix.name, &ix.def); err != nil {
			return nil, err
		}
		out = append(out, ix)
	}
	return out, rows.Err()
}

func (l *sqliteLoader) exec(ctx context.Context, stmt string) error {
	_, err := l.db.ExecContext(ctx, stmt)
	return err
}

func (l *sqliteLoader) load(ctx context.Context, b *batch) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO recordings (`+strings.Join(columns, ", ")+`) VALUES (?`+strings.Repeat(", ?", len(columns)-1)+`)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	staff, err := tx.PrepareContext(ctx, `INSERT INTO recording_staff (`+strings.Join(staffColumns, ", ")+`) VALUES (?, ?, ?)`)
	if err != nil {
		return err
	}
	defer staff.Close()
	for i := range b.recs {
		if _, err := ins.ExecContext(ctx, b.recs[i]...); err != nil {
			return err
		}
		if _, err := staff.ExecContext(ctx, b.staff[i]...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (l *sqliteLoader) finish(ctx context.Context) error {
	if _, err := l.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return err
	}
	return l.db.Close()
}

// pgLoader loads rows into a PostgreSQL catalog with COPY, a COPY of
// recordings and one of recording_staff per batch, on one connection with
// synchronous_commit off and 1 GiB of maintenance_work_mem for the index
// builds; a CHECKPOINT and VACUUM ANALYZE follow (autovacuum would get
// there on its own time).
type pgLoader struct {
	c *pgx.Conn
}

func openPGLoader(ctx context.Context, dsn string) (*pgLoader, error) {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	for _, s := range []string{"SET synchronous_commit = off", "SET maintenance_work_mem = '1GB'"} {
		if _, err := c.Exec(ctx, s); err != nil {
			c.Close(ctx)
			return nil, err
		}
	}
	return &pgLoader{c: c}, nil
}

func (l *pgLoader) indexes(ctx context.Context) ([]index, error) {
	rows, err := l.c.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes
		WHERE schemaname = current_schema() AND tablename IN ('recordings', 'recording_staff')
		AND indexname NOT IN (SELECT conname FROM pg_constraint) ORDER BY indexname`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (index, error) {
		var ix index
		err := r.Scan(&ix.name, &ix.def)
		return ix, err
	})
}

func (l *pgLoader) exec(ctx context.Context, stmt string) error {
	_, err := l.c.Exec(ctx, stmt)
	return err
}

func (l *pgLoader) load(ctx context.Context, b *batch) error {
	if _, err := l.c.CopyFrom(ctx, pgx.Identifier{"recordings"}, columns, pgx.CopyFromRows(b.recs)); err != nil {
		return err
	}
	_, err := l.c.CopyFrom(ctx, pgx.Identifier{"recording_staff"}, staffColumns, pgx.CopyFromRows(b.staff))
	return err
}

func (l *pgLoader) finish(ctx context.Context) error {
	if _, err := l.c.Exec(ctx, `VACUUM ANALYZE recordings, recording_staff`); err != nil {
		return err
	}
	return l.c.Close(ctx)
}

// loader is one engine's bulk load.
type loader interface {
	indexes(ctx context.Context) ([]index, error)
	exec(ctx context.Context, stmt string) error
	load(ctx context.Context, b *batch) error
	finish(ctx context.Context) error
}

// buildStats is what the build measured.
type buildStats struct {
	load, indexes time.Duration
	dropped       []index
}

// bulkLoad drops the secondary indexes, loads every row of m through l,
// creates the indexes again from their own definitions and finishes.
func bulkLoad(ctx context.Context, l loader, m *rowMaker, logf func(string, ...any)) (*buildStats, error) {
	st := &buildStats{}
	ixs, err := l.indexes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	if len(ixs) == 0 {
		return nil, errors.New("no secondary indexes found: schema changed?")
	}
	for _, ix := range ixs {
		if err := l.exec(ctx, `DROP INDEX `+ix.name); err != nil {
			return nil, fmt.Errorf("drop index %s: %w", ix.name, err)
		}
	}
	st.dropped = ixs
	t0, tLast, last := time.Now(), time.Now(), 0
	err = m.generate(ctx, 10_000, func(b *batch) error {
		if err := l.load(ctx, b); err != nil {
			return fmt.Errorf("load rows from %d: %w", b.start, err)
		}
		if done := b.start + len(b.recs); done-last >= 500_000 || done == m.pop.N {
			logf("loaded %d/%d rows (%.0f rows/s over the last %d)", done, m.pop.N, float64(done-last)/time.Since(tLast).Seconds(), done-last)
			last, tLast = done, time.Now()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	st.load = time.Since(t0)
	t1 := time.Now()
	for _, ix := range ixs {
		t := time.Now()
		if err := l.exec(ctx, ix.def); err != nil {
			return nil, fmt.Errorf("create index %s: %w", ix.name, err)
		}
		logf("index %s built in %v", ix.name, time.Since(t).Round(time.Second))
	}
	st.indexes = time.Since(t1)
	if err := l.finish(ctx); err != nil {
		return nil, fmt.Errorf("finish load: %w", err)
	}
	return st, nil
}
