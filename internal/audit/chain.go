package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"callvault/internal/sqlitedb"
)

// Labels for personal data sealed inside entries.
const (
	labelPatient   = "audit/patient"
	labelEmergency = "audit/emergency-reason"
	indexPatient   = "patient"
)

// maxBatch bounds one group commit.
const maxBatch = 512

var chainMigrations = []string{
	`CREATE TABLE audit_chain (
		seq INTEGER PRIMARY KEY,
		time INTEGER NOT NULL,
		action TEXT NOT NULL,
		user TEXT NOT NULL,
		patient_index BLOB,
		recording_id TEXT NOT NULL,
		entry BLOB NOT NULL,
		hash BLOB NOT NULL
	);
	CREATE INDEX audit_chain_patient ON audit_chain (patient_index, time) WHERE patient_index IS NOT NULL;
	CREATE INDEX audit_chain_user ON audit_chain (user, time);
	CREATE INDEX audit_chain_recording ON audit_chain (recording_id) WHERE recording_id != '';`,
}

// entry is the canonical stored form of an Event; its JSON encoding (field
// order fixed by this struct) is what the chain hashes.
type entry struct {
	V               int    `json:"v"`
	Seq             int64  `json:"seq"`
	Time            string `json:"time"`
	Action          string `json:"action"`
	Outcome         string `json:"outcome"`
	Reason          string `json:"reason,omitempty"`
	Flagged         bool   `json:"flagged,omitempty"`
	User            string `json:"user"`
	CareProvider    string `json:"care_provider,omitempty"`
	CareUnit        string `json:"care_unit,omitempty"`
	PatientIndex    []byte `json:"patient_index,omitempty"`
	PatientSealed   []byte `json:"patient_sealed,omitempty"`
	RecordingID     string `json:"recording_id,omitempty"`
	Purpose         string `json:"purpose,omitempty"`
	EmergencySealed []byte `json:"emergency_sealed,omitempty"`
	ClientAddr      string `json:"client_addr,omitempty"`
	RequestID       string `json:"request_id,omitempty"`
	Detail          string `json:"detail,omitempty"`
}

// Chain is the hash-chained audit log in SQLite.
type Chain struct {
	db   *sql.DB
	prot Protector
	reqs chan *appendReq
	done chan struct{}

	mu     sync.Mutex // guards closed
	closed bool
}

var _ Appender = (*Chain)(nil)

type appendReq struct {
	e   *Event
	err chan error
}

// OpenChain opens (creating and migrating) the log at path and starts its
// group-commit writer. Close stops it.
func OpenChain(ctx context.Context, path string, prot Protector) (*Chain, error) {
	db, err := sqlitedb.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := sqlitedb.Migrate(ctx, db, "audit", chainMigrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("audit: %w", err)
	}
	c := &Chain{db: db, prot: prot, reqs: make(chan *appendReq), done: make(chan struct{})}
	go c.writer()
	return c, nil
}

// Close stops the writer and closes the database. Appends after Close fail
// with ErrUnavailable.
func (c *Chain) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	c.mu.Unlock()
	return c.db.Close()
}

// Append makes e durable and sets e.Seq and e.Time. Concurrent appends are
// committed together in one transaction (group commit).
func (c *Chain) Append(ctx context.Context, e *Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	r := &appendReq{e: e, err: make(chan error, 1)}
	select {
	case c.reqs <- r:
	case <-c.done:
		return fmt.Errorf("%w: closed", ErrUnavailable)
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	// Once handed to the writer, wait for the outcome even if ctx ends: the
	// caller must not act on an entry whose fate is unknown.
	return <-r.err
}

func (c *Chain) writer() {
	for {
		var batch []*appendReq
		select {
		case r := <-c.reqs:
			batch = append(batch, r)
		case <-c.done:
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-c.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		err := c.commit(batch)
		for _, r := range batch {
			r.err <- err
		}
	}
}

func (c *Chain) commit(batch []*appendReq) error {
	ctx := context.Background()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer tx.Rollback()
	var seq int64
	var prev []byte
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1`).Scan(&seq, &prev)
	if err != nil && err != sql.ErrNoRows {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err == sql.ErrNoRows {
		prev = make([]byte, sha256.Size)
	}
	seqs := make([]int64, len(batch))
	for i, r := range batch {
		seq++
		en, err := c.seal(r.e, seq)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		raw, err := json.Marshal(en)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		h := chainHash(prev, raw)
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_chain (seq, time, action, user, patient_index, recording_id, entry, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, seq, r.e.Time.UnixNano(), en.Action, en.User, en.PatientIndex, en.RecordingID, raw, h); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		prev = h
		seqs[i] = seq
	}
	if err := tx.Commit(); err != nil { // synchronous=FULL: fsynced here
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	for i, r := range batch {
		r.e.Index = seqs[i] - 1
	}
	return nil
}

func chainHash(prev, raw []byte) []byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(prev)
	h.Write(raw)
	return h.Sum(nil)
}

func (c *Chain) seal(e *Event, seq int64) (*entry, error) {
	en := &entry{
		V: 1, Seq: seq, Time: e.Time.UTC().Format(time.RFC3339Nano),
		Action: e.Action, Outcome: e.Outcome, Reason: e.Reason, Flagged: e.Flagged,
		User: e.User, CareProvider: e.CareProvider, CareUnit: e.CareUnit,
		RecordingID: e.RecordingID, Purpose: e.Purpose,
		ClientAddr: e.ClientAddr, RequestID: e.RequestID, Detail: e.Detail,
	}
	if e.Patient != "" {
		en.PatientIndex = c.prot.BlindIndex(indexPatient, e.Patient)
		s, err := c.prot.SealData(labelPatient, []byte(e.Patient))
		if err != nil {
			return nil, err
		}
		en.PatientSealed = s
	}
	if e.EmergencyReason != "" {
		s, err := c.prot.SealData(labelEmergency, []byte(e.EmergencyReason))
		if err != nil {
			return nil, err
		}
		en.EmergencySealed = s
	}
	return en, nil
}

func (c *Chain) open(raw []byte) (*Event, error) {
	var en entry
	if err := json.Unmarshal(raw, &en); err != nil {
		return nil, err
	}
	t, err := time.Parse(time.RFC3339Nano, en.Time)
	if err != nil {
		return nil, err
	}
	e := &Event{
		Index: en.Seq - 1, Time: t, Action: en.Action, Outcome: en.Outcome, Reason: en.Reason, Flagged: en.Flagged,
		User: en.User, CareProvider: en.CareProvider, CareUnit: en.CareUnit,
		RecordingID: en.RecordingID, Purpose: en.Purpose,
		ClientAddr: en.ClientAddr, RequestID: en.RequestID, Detail: en.Detail,
	}
	if en.PatientSealed != nil {
		p, err := c.prot.OpenData(labelPatient, en.PatientSealed)
		if err != nil {
			return nil, err
		}
		e.Patient = string(p)
	}
	if en.EmergencySealed != nil {
		p, err := c.prot.OpenData(labelEmergency, en.EmergencySealed)
		if err != nil {
			return nil, err
		}
		e.EmergencyReason = string(p)
	}
	return e, nil
}

// Read calls fn for every entry with Seq >= from, in order, decrypted.
func (c *Chain) Read(ctx context.Context, from int64, fn func(*Event) error) error {
	rows, err := c.db.QueryContext(ctx, `SELECT entry FROM audit_chain WHERE seq >= ? ORDER BY seq`, from)
	if err != nil {
		return fmt.Errorf("audit: read: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return fmt.Errorf("audit: read: %w", err)
		}
		e, err := c.open(raw)
		if err != nil {
			return fmt.Errorf("audit: read: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Verify recomputes the chain over every stored entry and checks each
// stored hash and that sequence numbers run 1, 2, 3… without a gap. It
// returns the number of entries, or an error wrapping ErrCorrupt that names
// the first bad sequence number.
func (c *Chain) Verify(ctx context.Context) (int64, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT seq, entry, hash FROM audit_chain ORDER BY seq`)
	if err != nil {
		return 0, fmt.Errorf("audit: verify: %w", err)
	}
	defer rows.Close()
	prev := make([]byte, sha256.Size)
	var n int64
	for rows.Next() {
		var seq int64
		var raw, h []byte
		if err := rows.Scan(&seq, &raw, &h); err != nil {
			return n, fmt.Errorf("audit: verify: %w", err)
		}
		var en entry
		if seq != n+1 || json.Unmarshal(raw, &en) != nil || en.Seq != seq {
			return n, fmt.Errorf("%w: entry %d: sequence broken", ErrCorrupt, n+1)
		}
		want := chainHash(prev, raw)
		if !bytes.Equal(want, h) {
			return n, fmt.Errorf("%w: entry %d: hash mismatch", ErrCorrupt, seq)
		}
		prev = h
		n++
	}
	return n, rows.Err()
}
