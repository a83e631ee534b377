package siprec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"callvault/internal/access"
	"callvault/internal/archive"
	"callvault/internal/catalog"
	"callvault/internal/recording"
	"callvault/internal/rtpmix"
	"callvault/internal/seal"
)

// finalize stores the spool of recording id through the archive and
// removes it. A storage failure leaves the spool for the retry loop.
func (s *Server) finalize(ctx context.Context, dir, id string, c archive.Caller, incomplete bool) error {
	s.mu.Lock()
	if s.finalizing[id] {
		s.mu.Unlock()
		return errBusy
	}
	s.finalizing[id] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.finalizing, id)
		s.mu.Unlock()
	}()
	path := spoolPath(dir, id)
	live, _, err := s.arc.Known(ctx, id)
	if err != nil {
		return err
	}
	if live {
		// Stored before a crash took the spool's removal with it.
		_ = s.arc.EndCapture(ctx, c, id, catalog.CaptureStored, "")
		removeSpool(dir, id)
		return nil
	}
	o, off, err := openSpool(path, s.cfg.Keys.Identity)
	if err != nil {
		if permanent(err) {
			s.quarantine(ctx, c, id, err)
		}
		return err
	}
	meta := o.meta
	if meta == nil {
		meta = &spoolMeta{CallID: "siprec-" + id, Staff: []string{o.header.CareUnit}, Direction: recording.Inbound}
		incomplete = true
	}
	enc := wavEncoding(codecsOf(meta.Stats))
	// EndedAt follows from the audio itself: the timeline starts at
	// StartedAt, one frame per 1/8000 s; the WAV header needs the length
	// too. So count first (decrypting in memory), then stream.
	cnt, finished, err := o.pcm(io.Discard, off)
	if err != nil {
		if permanent(err) {
			s.quarantine(ctx, c, id, err)
		}
		return err
	}
	incomplete = incomplete || !finished
	total := max(cnt, minFrames)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := o.wavStream(pw, off, enc, cnt)
		pw.CloseWithError(err)
		done <- err
	}()
	dur := time.Duration(total) * time.Second / rtpmix.SampleRate
	md := recording.Metadata{CallID: meta.CallID, CareProvider: o.header.CareProvider, CareUnit: o.header.CareUnit,
		Patient: meta.Patient, CallerNumber: meta.CallerNumber, Staff: meta.Staff,
		StartedAt: o.header.StartedAt, EndedAt: o.header.StartedAt.Add(dur), Direction: meta.Direction}
	_, err = s.arc.IngestCapture(ctx, c, md, pr, archive.Capture{ID: id, Incomplete: incomplete, Stats: string(meta.Stats)})
	pr.CloseWithError(errors.New("ingest finished"))
	<-done
	if err != nil {
		if errors.Is(err, archive.ErrStorage) || errors.Is(err, archive.ErrAuditUnavailable) {
			s.log.Error("siprec: recording not stored yet; retried", "recording", id, "err", err)
			return err
		}
		// Refused (the source lost its role) or invalid: IngestCapture has
		// ended the session as failed; retrying would only repeat that.
		s.quarantine(ctx, c, id, err)
		return err
	}
	removeSpool(dir, id)
	outcome := "stored"
	if incomplete {
		outcome = "incomplete"
	}
	s.metrics.sessions.WithLabelValues(outcome).Inc()
	return nil
}

var errBusy = errors.New("siprec: spool is being finalized")

// permanent reports whether a spool error will not go away by retrying:
// not a spool file, or sealed under a key no identity opens.
func permanent(err error) bool {
	return errors.Is(err, errSpoolFormat) || errors.Is(err, seal.ErrAuth) || errors.Is(err, seal.ErrFormat)
}

// quarantine moves a spool that can never be stored out of the way, and
// ends its session as failed: an alert, and a finding in the log review.
func (s *Server) quarantine(ctx context.Context, c archive.Caller, id string, cause error) {
	dir := filepath.Join(s.cfg.SpoolDir, "quarantine")
	if err := os.MkdirAll(dir, 0o700); err == nil {
		os.Rename(spoolPath(s.cfg.SpoolDir, id), spoolPath(dir, id))
		os.Rename(metaPath(s.cfg.SpoolDir, id), metaPath(dir, id))
	}
	s.log.Error("siprec: spool cannot be stored; moved to quarantine", "recording", id, "err", cause)
	if err := s.arc.EndCapture(ctx, c, id, catalog.CaptureFailed, "spool-unreadable"); err != nil && !errors.Is(err, catalog.ErrCaptureState) {
		s.log.Error("siprec: failed session not recorded", "recording", id, "err", err)
	}
}

// Recover stores every spool left by a previous run (the recorder stopped
// mid-call) as an incomplete recording, playable up to the last synced
// chunk, and returns how many it stored. Call it before serving.
func (s *Server) Recover(ctx context.Context) (int, error) {
	n, err := s.retry(ctx, true)
	if err != nil {
		return n, err
	}
	// A session begun but killed before its spool existed has nothing to
	// store: it ends as failed, visibly, rather than active forever.
	active, err := s.arc.CaptureActive(ctx, 10000)
	if err != nil {
		return n, err
	}
	for _, cs := range active {
		if _, err := os.Stat(spoolPath(s.cfg.SpoolDir, cs.RecordingID)); err == nil {
			continue // kept for a retry
		}
		c := archive.Caller{ClientAddr: "local", RequestID: "siprec-recover"}
		if err := s.arc.EndCapture(ctx, c, cs.RecordingID, catalog.CaptureFailed, "no-spool"); err != nil && !errors.Is(err, catalog.ErrCaptureState) {
			return n, err
		}
	}
	return n, nil
}

// RunRetry retries, every interval until ctx ends, the spools of ended
// sessions whose recording could not be stored yet (both sites or the
// audit log unavailable).
func (s *Server) RunRetry(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.retry(ctx, false); err != nil {
				s.log.Error("siprec: retry", "err", err)
			}
		}
	}
}

// retry finalizes every spool not held by a live session.
func (s *Server) retry(ctx context.Context, startup bool) (int, error) {
	ids, err := listSpools(s.cfg.SpoolDir)
	if err != nil {
		return 0, fmt.Errorf("siprec: spool: %w", err)
	}
	active := map[string]bool{}
	s.mu.Lock()
	for id := range s.owned {
		active[id] = true
	}
	s.mu.Unlock()
	n := 0
	for _, id := range ids {
		if active[id] {
			continue
		}
		h, _, err := readSpoolHeader(spoolPath(s.cfg.SpoolDir, id))
		if err != nil {
			s.log.Error("siprec: not a spool file; left in place", "file", id+spoolSuffix)
			continue
		}
		c := archive.Caller{ClientAddr: "local", RequestID: "siprec-recover"}
		e, err := s.cfg.Directory.Lookup(ctx, h.Source)
		if err != nil && !errors.Is(err, access.ErrNotFound) {
			s.log.Error("siprec: directory unavailable; spool kept for the next attempt", "recording", id, "err", err)
			continue
		}
		if e != nil {
			c.Principal = &access.Principal{HSAID: e.HSAID, CareProvider: e.CareProvider, CareUnit: e.CareUnit, Roles: e.Roles}
		}
		if err := s.finalize(ctx, s.cfg.SpoolDir, id, c, startup); err != nil {
			if !errors.Is(err, errBusy) {
				s.log.Error("siprec: spool kept for the next attempt", "recording", id, "err", err)
			}
			continue
		}
		n++
	}
	return n, nil
}
