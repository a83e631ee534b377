package audit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"callvault/internal/atomicfile"
)

// Outbox is a place outside the operator's control that receives every
// checkpoint (docs/audit-log.md, "Witness outboxes").
type Outbox interface {
	// Name identifies the outbox in logs and in the table of what was
	// pushed; it holds no secret.
	Name() string
	// Push delivers a checkpoint. A nil return means it was accepted.
	Push(ctx context.Context, c *Checkpoint) error
}

// DirOutbox writes checkpoints into a directory (a mounted share, a
// removable medium): "checkpoint" is the latest, "checkpoints/<size>" each
// one, every file written atomically.
type DirOutbox struct{ Dir string }

// Name is "dir:" and the directory.
func (d DirOutbox) Name() string { return "dir:" + d.Dir }

// Push writes c.
func (d DirOutbox) Push(ctx context.Context, c *Checkpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(d.Dir, "checkpoints"), 0o700); err != nil {
		return fmt.Errorf("outbox %s: %w", d.Name(), err)
	}
	if err := atomicfile.Write(filepath.Join(d.Dir, "checkpoints", strconv.FormatInt(c.Size, 10)), c.Note); err != nil {
		return fmt.Errorf("outbox %s: %w", d.Name(), err)
	}
	if err := atomicfile.Write(filepath.Join(d.Dir, "checkpoint"), c.Note); err != nil {
		return fmt.Errorf("outbox %s: %w", d.Name(), err)
	}
	return nil
}

// HTTPOutbox POSTs checkpoints to a URL (HTTPS in production) as
// text/plain; any 2xx answer counts as accepted.
type HTTPOutbox struct {
	URL    string
	Client *http.Client // with the TLS configuration to use; nil means http.DefaultClient
}

// Name is the URL without user information or query.
func (h HTTPOutbox) Name() string {
	u := h.URL
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			u = u[:j+3] + u[i+1:]
		}
	}
	return u
}

// Push POSTs c.Note.
func (h HTTPOutbox) Push(ctx context.Context, c *Checkpoint) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(c.Note))
	if err != nil {
		return fmt.Errorf("outbox %s: %w", h.Name(), err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("outbox %s: %w", h.Name(), err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("outbox %s: answered %s", h.Name(), resp.Status)
	}
	return nil
}

// CheckpointPolicy says when serve cuts checkpoints.
type CheckpointPolicy struct {
	Interval time.Duration // cut at least this often if the log grew; > 0
	Entries  int64         // cut as soon as this many entries were appended since the last cut; > 0
}

// RunCheckpoints cuts checkpoints by policy and pushes every new one to
// each outbox until ctx ends. A failed push is logged and retried at the
// next cut or tick; what each outbox has received is stored, so a restart
// resumes. onCut, if not nil, is called after each cut (for metrics).
func (l *Log) RunCheckpoints(ctx context.Context, p CheckpointPolicy, outboxes []Outbox, logger *slog.Logger, onCut func(size int64)) {
	tick := time.NewTicker(p.Interval)
	defer tick.Stop()
	var lastCut int64 = -1
	step := func(timed bool) {
		n, err := l.Size(ctx)
		if err != nil {
			logger.ErrorContext(ctx, "audit checkpoint: size", "err", err)
			return
		}
		if lastCut < 0 {
			if c, err := l.LatestCheckpoint(ctx); err == nil {
				lastCut = c.Size
			} else {
				lastCut = 0
			}
		}
		if n > lastCut && (timed || n-lastCut >= p.Entries) {
			c, err := l.Cut(ctx)
			if err != nil {
				logger.ErrorContext(ctx, "audit checkpoint: cut failed", "err", err)
				return
			}
			lastCut = c.Size
			if onCut != nil {
				onCut(c.Size)
			}
		}
		if timed || n == lastCut {
			l.pushAll(ctx, outboxes, logger)
		}
	}
	step(true)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			step(true)
		case <-l.appended:
			step(false)
		}
	}
}

// pushAll sends the latest checkpoint to every outbox that has not had it.
func (l *Log) pushAll(ctx context.Context, outboxes []Outbox, logger *slog.Logger) {
	if len(outboxes) == 0 {
		return
	}
	c, err := l.LatestCheckpoint(ctx)
	if err != nil {
		return
	}
	for _, o := range outboxes {
		var have int64
		err := l.db.QueryRowContext(ctx, `SELECT size FROM audit_outbox WHERE name = ?`, o.Name()).Scan(&have)
		if err == nil && have >= c.Size {
			continue
		}
		if err := o.Push(ctx, c); err != nil {
			logger.WarnContext(ctx, "audit checkpoint: push to witness outbox failed; retried later", "outbox", o.Name(), "size", c.Size, "err", err)
			continue
		}
		if _, err := l.db.ExecContext(ctx, `INSERT INTO audit_outbox (name, size) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET size = excluded.size WHERE excluded.size > audit_outbox.size`, o.Name(), c.Size); err != nil {
			logger.ErrorContext(ctx, "audit checkpoint: recording a push", "outbox", o.Name(), "err", err)
		}
	}
}
