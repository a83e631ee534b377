package audit

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a signed statement of the log's size and root hash
// (docs/audit-log.md, "Checkpoints").
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
	Note   []byte // the signed note, as stored and served
}

// ErrNoCheckpoint is returned by LatestCheckpoint before the first cut.
var ErrNoCheckpoint = errors.New("audit: no checkpoint yet")

// checkpointText is the body of a checkpoint note.
func checkpointText(origin string, n int64, root tlog.Hash) string {
	return fmt.Sprintf("%s\n%d\n%s\n", origin, n, base64.StdEncoding.EncodeToString(root[:]))
}

// ParseCheckpoint opens a signed checkpoint with verifiers and parses its
// text. It fails unless at least one signature verifies, the origin is
// origin, and the body is exactly the three checkpoint lines.
func ParseCheckpoint(msg []byte, origin string, verifiers note.Verifiers) (*Checkpoint, error) {
	n, err := note.Open(msg, verifiers)
	if err != nil {
		return nil, fmt.Errorf("checkpoint signature: %w", err)
	}
	lines := strings.SplitAfter(n.Text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return nil, errors.New("checkpoint text is not three lines")
	}
	if strings.TrimSuffix(lines[0], "\n") != origin {
		return nil, errors.New("checkpoint is for another log (origin differs)")
	}
	sizeText := strings.TrimSuffix(lines[1], "\n")
	size, err := strconv.ParseInt(sizeText, 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != sizeText {
		return nil, errors.New("checkpoint size is not a decimal number")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(lines[2], "\n"))
	if err != nil || len(raw) != tlog.HashSize {
		return nil, errors.New("checkpoint root is not a base64 SHA-256 hash")
	}
	c := &Checkpoint{Origin: origin, Size: size, Note: msg}
	copy(c.Root[:], raw)
	return c, nil
}

// ParseCheckpoint opens a checkpoint of this log with its own keys.
func (l *Log) ParseCheckpoint(msg []byte) (*Checkpoint, error) {
	return ParseCheckpoint(msg, l.origin, l.verifiers)
}

// Cut signs and stores a checkpoint of the whole log if it has grown since
// the latest one, and returns the latest checkpoint (new or not). It
// returns ErrNoCheckpoint if the log is empty.
func (l *Log) Cut(ctx context.Context) (*Checkpoint, error) {
	if len(l.signers) == 0 {
		return nil, errors.New("audit: cut: no signing key")
	}
	n, err := l.Size(ctx)
	if err != nil {
		return nil, err
	}
	last, err := l.LatestCheckpoint(ctx)
	if err != nil && !errors.Is(err, ErrNoCheckpoint) {
		return nil, err
	}
	if n == 0 {
		return nil, ErrNoCheckpoint
	}
	if last != nil && last.Size >= n {
		return last, nil
	}
	root, err := l.TreeHash(ctx, n)
	if err != nil {
		return nil, err
	}
	msg, err := note.Sign(&note.Note{Text: checkpointText(l.origin, n, root)}, l.signers...)
	if err != nil {
		return nil, fmt.Errorf("audit: cut: sign: %w", err)
	}
	// Another process may have cut the same size: keep the first.
	if _, err := l.db.ExecContext(ctx, `INSERT INTO audit_checkpoints (size, time, note) VALUES (?, ?, ?)
		ON CONFLICT (size) DO NOTHING`, n, time.Now().UnixNano(), msg); err != nil {
		return nil, fmt.Errorf("audit: cut: %w", err)
	}
	return l.LatestCheckpoint(ctx)
}

// LatestCheckpoint returns the stored checkpoint of the largest size,
// verified with the log's keys.
func (l *Log) LatestCheckpoint(ctx context.Context) (*Checkpoint, error) {
	var msg []byte
	err := l.db.QueryRowContext(ctx, `SELECT note FROM audit_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&msg)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoCheckpoint
	}
	if err != nil {
		return nil, fmt.Errorf("audit: latest checkpoint: %w", err)
	}
	c, err := l.ParseCheckpoint(msg)
	if err != nil {
		return nil, fmt.Errorf("audit: latest checkpoint: %w", err)
	}
	return c, nil
}

// storedCheckpoint is a row of audit_checkpoints, not yet verified.
type storedCheckpoint struct {
	size int64
	note []byte
}

func (l *Log) storedCheckpoints(ctx context.Context) ([]storedCheckpoint, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT size, note FROM audit_checkpoints ORDER BY size`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storedCheckpoint
	for rows.Next() {
		var c storedCheckpoint
		if err := rows.Scan(&c.size, &c.note); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// VerifierKeys returns the verifier keys checkpoints are checked with: the
// current signing keys', then those of retired keys.
func (l *Log) VerifierKeys() ([]string, error) {
	v, err := l.keys.AuditVerifierKeys()
	if err != nil {
		return nil, fmt.Errorf("audit: verifier keys: %w", err)
	}
	return append(v, l.keys.AuditRetiredKeys()...), nil
}
