package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"callvault/internal/sqlitedb"
)

// maxBatch bounds one group commit.
const maxBatch = 512

// logMigrations is the schema "audit" (docs/audit-log.md, "Storage"). The
// tables live in the catalog database. Append only.
var logMigrations = []string{
	`CREATE TABLE audit_log (
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
}

// Keys is what the log needs of the keyring: sealing and blind indexes for
// personal data, and the checkpoint signing keys.
type Keys interface {
	Protector
	AuditOrigin() string
	AuditSigners() ([]note.Signer, error)
	AuditVerifierKeys() ([]string, error)
	AuditRetiredKeys() []string
}

// Log is the Merkle-tree audit log (docs/audit-log.md) in a SQLite
// database. Appends from any number of goroutines are committed together
// (group commit); several processes may append to the same database.
type Log struct {
	db        *sql.DB
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

// Open opens the log in the SQLite database at path (the catalog's),
// creating its tables if needed, and starts the group-commit writer. Close
// stops it.
func Open(ctx context.Context, path string, keys Keys) (*Log, error) {
	db, err := sqlitedb.Open(ctx, path)
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

func newLog(ctx context.Context, db *sql.DB, keys Keys) (*Log, error) {
	if err := sqlitedb.Migrate(ctx, db, "audit", logMigrations); err != nil {
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
// Concurrent appends are committed together in one transaction.
func (l *Log) Append(ctx context.Context, e *Event) error {
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
	tx, err := l.db.BeginTx(ctx, nil) // _txlock=immediate: the write lock is ours from here
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer tx.Rollback()
	n, err := size(ctx, tx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	hr := &hashReader{q: tx, ctx: ctx, pending: map[int64]tlog.Hash{}}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO audit_log
		(idx, time, action, outcome, user, patient_index, recording_id, entry, hashes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
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
	if err := tx.Commit(); err != nil { // synchronous=FULL: fsynced here
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	for i, r := range batch {
		r.e.Index = n + int64(i)
	}
	return nil
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
