package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"callvault/internal/sqldb"
)

// maxBatch bounds one group commit.
const maxBatch = 512

// logMigrations is the schema "audit" (docs/audit-log.md, "Storage"),
// append-only. On SQLite the tables live in the catalog's database file;
// the SQLite text of each version is exactly what shipped before the
// PostgreSQL variants existed, so existing data directories carry on.
//
// The PostgreSQL variant differs only where the engines do: BIGINT for
// INTEGER (Unix nanoseconds and indexes need 64 bits), BYTEA for BLOB, and
// the reserved word user quoted. It has the same indexes: audit_log_time
// (time), audit_log_patient (patient_index, idx) where patient_index is
// not NULL, audit_log_user ("user", time) and audit_log_recording
// (recording_id, idx) where recording_id is not empty, besides the
// primary keys audit_log(idx), audit_checkpoints(size) and
// audit_outbox(name). The blind patient index and the recording ID are
// random-looking keys: their B-tree inserts land anywhere in the index,
// on both engines alike.
var logMigrations = []sqldb.Migration{{
	SQLite: `CREATE TABLE audit_log (
		idx INTEGER PRIMARY KEY,
		time INTEGER NOT NULL,
		action TEXT NOT NULL,
		outcome TEXT NOT NULL,
		user TEXT NOT NULL,
		patient_index BLOB,
		recording_id TEXT NOT NULL,
		entry BLOB NOT NULL,
		hashes BLOB NOT NULL
	);
	CREATE INDEX audit_log_time ON audit_log (time);
	CREATE INDEX audit_log_patient ON audit_log (patient_index, idx) WHERE patient_index IS NOT NULL;
	CREATE INDEX audit_log_user ON audit_log (user, time);
	CREATE INDEX audit_log_recording ON audit_log (recording_id, idx) WHERE recording_id != '';
	CREATE TABLE audit_checkpoints (
		size INTEGER PRIMARY KEY,
		time INTEGER NOT NULL,
		note BLOB NOT NULL
	);
	CREATE TABLE audit_outbox (
		name TEXT PRIMARY KEY,
		size INTEGER NOT NULL
	);`,
	Postgres: `CREATE TABLE audit_log (
		idx BIGINT PRIMARY KEY,
		time BIGINT NOT NULL,
		action TEXT NOT NULL,
		outcome TEXT NOT NULL,
		"user" TEXT NOT NULL,
		patient_index BYTEA,
		recording_id TEXT NOT NULL,
		entry BYTEA NOT NULL,
		hashes BYTEA NOT NULL
	);
	CREATE INDEX audit_log_time ON audit_log (time);
	CREATE INDEX audit_log_patient ON audit_log (patient_index, idx) WHERE patient_index IS NOT NULL;
	CREATE INDEX audit_log_user ON audit_log ("user", time);
	CREATE INDEX audit_log_recording ON audit_log (recording_id, idx) WHERE recording_id != '';
	CREATE TABLE audit_checkpoints (
		size BIGINT PRIMARY KEY,
		time BIGINT NOT NULL,
		note BYTEA NOT NULL
	);
	CREATE TABLE audit_outbox (
		name TEXT PRIMARY KEY,
		size BIGINT NOT NULL
	);`,
}}

// Keys is what the log needs of the keyring: sealing and blind indexes for
// personal data, and the checkpoint signing keys.
type Keys interface {
	Protector
	AuditOrigin() string
	AuditSigners() ([]note.Signer, error)
	AuditVerifierKeys() ([]string, error)
	AuditRetiredKeys() []string
}

// Log is the Merkle-tree audit log (docs/audit-log.md) in a SQLite or
// PostgreSQL database (package sqldb). Appends from any number of
// goroutines are committed together (group commit); several processes —
// serve replicas sharing one PostgreSQL database — may append to the same
// log: each group commit reads the next index (MAX(idx)+1) and inserts its
// entries in one write transaction that holds the store's writer lock
// from the read to the commit (sqldb.DB.BeginTx), so no two commits take
// the same index or leave a gap.
type Log struct {
	db        *sqldb.DB
	keys      Keys
	origin    string
	signers   []note.Signer
	verifiers note.Verifiers
	reqs      chan *appendReq
	done      chan struct{}
	writer    sync.WaitGroup
	appended  chan struct{} // receives (without blocking) after each commit

	mu     sync.Mutex // guards closed
	closed bool
}

var _ Appender = (*Log)(nil)

type appendReq struct {
	e   *Event
	err chan error
}

// Open opens the log in the database at dsnOrPath — the path of a SQLite
// file (the catalog's) or a postgres:// URL (sqldb.Open) — creating its
// tables if needed, and starts the group-commit writer. Close stops it.
//
// On PostgreSQL it refuses a server that runs with fsync off: no commit
// there is durable (see the package doc, "Storage and durability").
func Open(ctx context.Context, dsnOrPath string, keys Keys) (*Log, error) {
	db, err := sqldb.Open(ctx, dsnOrPath, "audit")
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l, err := newLog(ctx, db, keys)
	if err != nil {
		db.Close()
		return nil, err
	}
	return l, nil
}

func newLog(ctx context.Context, db *sqldb.DB, keys Keys) (*Log, error) {
	if db.Engine() == sqldb.Postgres {
		var fsync string
		if err := db.QueryRowContext(ctx, `SELECT current_setting('fsync')`).Scan(&fsync); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		if fsync != "on" {
			return nil, errors.New("audit: the PostgreSQL server runs with fsync off: no commit would be durable")
		}
	}
	if err := sqldb.Migrate(ctx, db, "audit", logMigrations); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l := &Log{db: db, keys: keys, origin: keys.AuditOrigin(), reqs: make(chan *appendReq),
		done: make(chan struct{}), appended: make(chan struct{}, 1)}
	if l.origin == "" {
		return nil, errors.New("audit: the keyring has no audit origin")
	}
	var err error
	if l.signers, err = keys.AuditSigners(); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	vkeys, err := keys.AuditVerifierKeys()
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if l.verifiers, err = verifiersOf(append(vkeys, keys.AuditRetiredKeys()...)); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l.writer.Add(1)
	go l.write()
	return l, nil
}

func verifiersOf(vkeys []string) (note.Verifiers, error) {
	vs := make([]note.Verifier, 0, len(vkeys))
	for _, vk := range vkeys {
		v, err := note.NewVerifier(vk)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...), nil
}

// Origin is the log's origin, the first line of its checkpoints.
func (l *Log) Origin() string { return l.origin }

// Close stops the writer and closes the database. Appends after Close fail
// with ErrUnavailable.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	l.mu.Unlock()
	l.writer.Wait()
	return l.db.Close()
}

// Append makes e durable and sets e.Index (and e.Time if it was zero).
// Concurrent appends are committed together in one transaction. An event
// whose Action, Outcome, User or RecordingID is not UTF-8 text without NUL
// bytes is refused (ErrUnavailable): those fields are also stored as plain
// TEXT, which PostgreSQL cannot hold them in.
func (l *Log) Append(ctx context.Context, e *Event) error {
	if err := checkText(e); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	r := &appendReq{e: e, err: make(chan error, 1)}
	select {
	case l.reqs <- r:
	case <-l.done:
		return fmt.Errorf("%w: closed", ErrUnavailable)
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	// Once handed to the writer, wait for the outcome even if ctx ends: the
	// caller must not act on an entry whose fate is unknown.
	return <-r.err
}

// checkText refuses an event that a TEXT column of PostgreSQL could not
// store, before it joins a group commit whose other entries would fail
// with it; SQLite refuses the same events, so that both engines behave
// alike. The error names the field, never its value.
func checkText(e *Event) error {
	for _, f := range []struct{ name, v string }{
		{"action", e.Action}, {"outcome", e.Outcome}, {"user", e.User}, {"recording ID", e.RecordingID},
	} {
		if !utf8.ValidString(f.v) || strings.IndexByte(f.v, 0) >= 0 {
			return fmt.Errorf("event %s is not UTF-8 text without NUL bytes", f.name)
		}
	}
	return nil
}

func (l *Log) write() {
	defer l.writer.Done()
	for {
		var batch []*appendReq
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
		case <-l.done:
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-l.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		err := l.commit(batch)
		for _, r := range batch {
			r.err <- err
		}
		if err == nil {
			select {
			case l.appended <- struct{}{}:
			default:
			}
		}
	}
}

func (l *Log) commit(batch []*appendReq) error {
	ctx := context.Background()
	tx, n, err := l.beginAppend(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer tx.Rollback()
	hr := &hashReader{q: tx, ctx: ctx, pending: map[int64]tlog.Hash{}}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO audit_log
		(idx, time, action, outcome, "user", patient_index, recording_id, entry, hashes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer stmt.Close()
	for i, r := range batch {
		idx := n + int64(i)
		raw, pidx, err := encode(l.keys, r.e, idx)
		if err != nil {
			return fmt.Errorf("%w: entry: %w", ErrUnavailable, err)
		}
		hashes, err := tlog.StoredHashes(idx, raw, hr)
		if err != nil {
			return fmt.Errorf("%w: hashes: %w", ErrUnavailable, err)
		}
		base := tlog.StoredHashIndex(0, idx)
		packed := make([]byte, 0, len(hashes)*tlog.HashSize)
		for k, h := range hashes {
			hr.pending[base+int64(k)] = h
			packed = append(packed, h[:]...)
		}
		if _, err := stmt.ExecContext(ctx, idx, r.e.Time.UnixNano(), r.e.Action, r.e.Outcome, r.e.User,
			pidx, r.e.RecordingID, raw, packed); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	// Durable when Commit returns nil: SQLite fsyncs its WAL here
	// (synchronous=FULL), PostgreSQL flushes its WAL (synchronous_commit,
	// made sure of by beginAppend). An error may still mean committed (the
	// answer was lost with the connection): the caller denies, and the log
	// holds an entry for a request that was refused — too much, never too
	// little.
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	for i, r := range batch {
		r.e.Index = n + int64(i)
	}
	return nil
}

// beginAppend starts the write transaction of a group commit and returns
// it with the log's size, the index of its first entry. The transaction
// holds the store's writer lock (BEGIN IMMEDIATE on SQLite, the advisory
// lock on PostgreSQL) from before the size is read until it ends, so no
// other writer — of this process or another — appends in between.
//
// On PostgreSQL it makes sure the commit waits for the WAL flush: should
// the connection have synchronous_commit off (a server, database or role
// default, or a parameter of the DSN), it sets it on for this transaction
// (SET LOCAL). Every other value (on, local, remote_write, remote_apply)
// waits for the local flush, and is kept.
func (l *Log) beginAppend(ctx context.Context) (*sqldb.Tx, int64, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, err
	}
	var n int64
	if l.db.Engine() == sqldb.Postgres {
		var syncCommit string
		err = tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx) + 1, 0), current_setting('synchronous_commit') FROM audit_log`).Scan(&n, &syncCommit)
		if err == nil && syncCommit == "off" {
			_, err = tx.ExecContext(ctx, `SET LOCAL synchronous_commit = on`)
		}
	} else {
		n, err = size(ctx, tx)
	}
	if err != nil {
		tx.Rollback()
		return nil, 0, err
	}
	return tx, n, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// size returns the number of entries.
func size(ctx context.Context, q querier) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_log`).Scan(&n)
	return n, err
}

// Size returns the number of entries in the log.
func (l *Log) Size(ctx context.Context) (int64, error) {
	n, err := size(ctx, l.db)
	if err != nil {
		return 0, fmt.Errorf("audit: size: %w", err)
	}
	return n, nil
}

// hashReader is a tlog.HashReader over the stored hashes of audit_log (and
// those of a batch not yet committed, in pending).
type hashReader struct {
	q       querier
	ctx     context.Context
	pending map[int64]tlog.Hash
}

// recordOf returns the entry whose stored hashes include stored hash index
// s, and the position of s among them.
func recordOf(s int64) (n int64, k int) {
	// StoredHashIndex(0, n) grows with n; find the last n with
	// StoredHashIndex(0, n) <= s.
	lo, hi := int64(0), s+1 // invariant: StoredHashIndex(0, lo) <= s < StoredHashIndex(0, hi)
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if tlog.StoredHashIndex(0, mid) <= s {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, int(s - tlog.StoredHashIndex(0, lo))
}

func (r *hashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	need := map[int64][]int{} // record → positions in indexes
	for i, s := range indexes {
		if h, ok := r.pending[s]; ok {
			out[i] = h
			continue
		}
		n, _ := recordOf(s)
		need[n] = append(need[n], i)
	}
	if len(need) == 0 {
		return out, nil
	}
	records := make([]int64, 0, len(need))
	for n := range need {
		records = append(records, n)
	}
	sort.Slice(records, func(i, j int) bool { return records[i] < records[j] })
	// Contiguous runs (tiles) in one query; scattered ones one by one.
	lo, hi := records[0], records[len(records)-1]
	query, args := `SELECT idx, hashes FROM audit_log WHERE idx = ?`, [][]any{}
	if hi-lo < int64(2*len(records))+16 {
		query = `SELECT idx, hashes FROM audit_log WHERE idx BETWEEN ? AND ?`
		args = append(args, []any{lo, hi})
	} else {
		for _, n := range records {
			args = append(args, []any{n})
		}
	}
	found := 0
	for _, a := range args {
		rows, err := r.q.QueryContext(r.ctx, query, a...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var n int64
			var packed []byte
			if err := rows.Scan(&n, &packed); err != nil {
				rows.Close()
				return nil, err
			}
			pos, ok := need[n]
			if !ok {
				continue
			}
			found++
			for _, i := range pos {
				_, k := recordOf(indexes[i])
				if (k+1)*tlog.HashSize > len(packed) {
					rows.Close()
					return nil, fmt.Errorf("entry %d: stored hashes too short", n)
				}
				copy(out[i][:], packed[k*tlog.HashSize:])
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	if found != len(records) {
		return nil, fmt.Errorf("%d of %d entries missing from the log", len(records)-found, len(records))
	}
	return out, nil
}

func (l *Log) hashReader(ctx context.Context) *hashReader {
	return &hashReader{q: l.db, ctx: ctx}
}

// TreeHash returns the root hash of the tree of the first n entries, from
// the stored hashes.
func (l *Log) TreeHash(ctx context.Context, n int64) (tlog.Hash, error) {
	h, err := tlog.TreeHash(n, l.hashReader(ctx))
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("audit: tree hash: %w", err)
	}
	return h, nil
}

// Entry returns the stored bytes of entry i.
func (l *Log) Entry(ctx context.Context, i int64) ([]byte, error) {
	var raw []byte
	err := l.db.QueryRowContext(ctx, `SELECT entry FROM audit_log WHERE idx = ?`, i).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("audit: entry %d: no such entry", i)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: entry %d: %w", i, err)
	}
	return raw, nil
}

// InclusionProof returns the RFC 6962 inclusion proof of entry i in the
// tree of size n (i < n <= Size).
func (l *Log) InclusionProof(ctx context.Context, i, n int64) (tlog.RecordProof, error) {
	p, err := tlog.ProveRecord(n, i, l.hashReader(ctx))
	if err != nil {
		return nil, fmt.Errorf("audit: prove entry %d in tree %d: %w", i, n, err)
	}
	return p, nil
}

// ConsistencyProof returns the RFC 6962 consistency proof between the trees
// of sizes m and n (0 < m <= n <= Size).
func (l *Log) ConsistencyProof(ctx context.Context, m, n int64) (tlog.TreeProof, error) {
	p, err := tlog.ProveTree(n, m, l.hashReader(ctx))
	if err != nil {
		return nil, fmt.Errorf("audit: prove tree %d in tree %d: %w", m, n, err)
	}
	return p, nil
}

// Read calls fn for every entry with index >= from, in order, decrypted.
func (l *Log) Read(ctx context.Context, from int64, fn func(*Event) error) error {
	return l.each(ctx, fn, `SELECT entry FROM audit_log WHERE idx >= ? ORDER BY idx`, from)
}

// Range calls fn for every entry whose time is in [from, to), in log order.
func (l *Log) Range(ctx context.Context, from, to time.Time, fn func(*Event) error) error {
	return l.each(ctx, fn, `SELECT entry FROM audit_log WHERE time >= ? AND time < ? ORDER BY idx`,
		clampNanos(from), clampNanos(to))
}

// ForPatient calls fn for every entry about patient (a 12-digit
// personnummer), found by its blind index, in log order.
func (l *Log) ForPatient(ctx context.Context, patient string, fn func(*Event) error) error {
	return l.each(ctx, fn, `SELECT entry FROM audit_log WHERE patient_index = ? ORDER BY idx`,
		l.keys.BlindIndex(indexPatient, patient))
}

func clampNanos(t time.Time) int64 {
	switch {
	case t.IsZero() || t.Year() < 1678:
		return -1 << 63
	case t.Year() > 2261:
		return 1<<63 - 1
	}
	return t.UnixNano()
}

func (l *Log) each(ctx context.Context, fn func(*Event) error, query string, args ...any) error {
	rows, err := l.db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("audit: read: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return fmt.Errorf("audit: read: %w", err)
		}
		e, err := decode(l.keys, raw)
		if err != nil {
			return fmt.Errorf("audit: read: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: read: %w", err)
	}
	return nil
}
