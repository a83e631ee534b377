package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"callvault/internal/audit"
	"callvault/internal/catalog"
	"callvault/internal/seal"
	"callvault/internal/site"
)

// ErrLost: every stored copy of the recording failed its integrity check;
// it is not served.
var ErrLost = errors.New("archive: recording damaged: no stored copy passes its integrity check")

// ScrubOptions configure one scrub pass.
type ScrubOptions struct {
	// OrphanGrace: a blob without a catalog row is removed only if it was
	// committed at least this long ago (an ingest writes its blobs before
	// its row). Negative disables orphan removal.
	OrphanGrace time.Duration
	// Progress, if set, is called after each recording with the number
	// checked and the total.
	Progress func(done, total int)
}

// Finding is one problem the scrubber found and what it did about it.
type Finding struct {
	RecordingID string `json:"recording_id"`
	Site        string `json:"site"`
	Problem     string `json:"problem"` // missing, size, digest, orphan, lost
	Action      string `json:"action"`  // repaired, removed, reported, failed: …
}

// ScrubReport summarizes a scrub pass. It holds recording IDs and site
// names only.
type ScrubReport struct {
	Recordings  int           `json:"recordings"`
	Copies      int           `json:"copies_checked"`
	Bytes       int64         `json:"bytes_read"`
	Repaired    int           `json:"repaired"`
	Lost        int           `json:"lost"`
	Orphans     int           `json:"orphans_removed"`
	Unavailable []string      `json:"sites_unavailable,omitempty"`
	Findings    []Finding     `json:"findings"`
	Duration    time.Duration `json:"duration_ns"`
}

// scrubPage is how many catalog rows a pass reads at a time.
const scrubPage = 500

// Scrub reads every blob copy on both sites and checks it against the
// catalog: size, SHA-256 over every byte, and the container header (magic,
// recording ID). It needs no private key: the digest, recorded at ingest,
// covers every byte, so the scrubber can run where the archive key is not.
// A missing or damaged copy is replaced from the good one (the damaged one
// is removed only once the other is verified); a recording with no good
// copy is marked lost and never served. Blobs without a catalog row older
// than OrphanGrace are removed, as are blobs of deleted recordings. A site
// that cannot be read is reported, not treated as empty.
func (s *Service) Scrub(ctx context.Context, opt ScrubOptions) (*ScrubReport, error) {
	start := time.Now()
	rep := &ScrubReport{Findings: []Finding{}}
	sites := s.sites.Sites()
	up := map[string]bool{}
	for _, st := range sites {
		if err := st.Check(ctx); err != nil {
			rep.Unavailable = append(rep.Unavailable, st.Name())
			s.log.WarnContext(ctx, "scrub: site unavailable; its copies are not checked", "site", st.Name(), "err", err)
			continue
		}
		up[st.Name()] = true
	}
	total, err := s.cat.Count(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	buf := make([]byte, 1<<20)
	after := ""
	for {
		page, err := s.cat.Blobs(ctx, after, scrubPage)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStorage, err)
		}
		if len(page) == 0 {
			break
		}
		for _, ref := range page {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			s.scrubOne(ctx, ref, sites, up, buf, rep)
			s.scrubRecovery(ctx, ref, sites, up, rep)
			rep.Recordings++
			if opt.Progress != nil {
				opt.Progress(rep.Recordings, max(total, rep.Recordings))
			}
		}
		after = page[len(page)-1].ID
	}
	if opt.OrphanGrace >= 0 {
		for _, st := range sites {
			if up[st.Name()] {
				s.removeOrphans(ctx, st, opt.OrphanGrace, rep)
			}
		}
	}
	rep.Duration = time.Since(start)
	s.metrics.scrubbed(rep)
	if n, err := s.cat.LostCount(ctx); err == nil {
		s.metrics.setLost(n)
	}
	detail := fmt.Sprintf("recordings=%d copies=%d bytes=%d repaired=%d lost=%d orphans=%d unavailable=%d",
		rep.Recordings, rep.Copies, rep.Bytes, rep.Repaired, rep.Lost, rep.Orphans, len(rep.Unavailable))
	if err := s.record(ctx, Caller{}, &audit.Event{Action: "scrub", Outcome: audit.Allowed, Reason: "system", Detail: detail}); err != nil {
		s.log.ErrorContext(ctx, "scrub summary not audited", "err", err)
	}
	s.log.InfoContext(ctx, "scrub finished", "recordings", rep.Recordings, "copies", rep.Copies, "bytes", rep.Bytes,
		"repaired", rep.Repaired, "lost", rep.Lost, "orphans", rep.Orphans, "unavailable", rep.Unavailable, "seconds", rep.Duration.Seconds())
	return rep, nil
}

// scrubOne checks one recording's copies and repairs what it can.
func (s *Service) scrubOne(ctx context.Context, ref catalog.BlobRef, sites []site.Store, up map[string]bool, buf []byte, rep *ScrubReport) {
	var good []string
	bad := map[string]string{} // site → problem
	for _, st := range sites {
		if !up[st.Name()] {
			continue
		}
		n, problem, err := checkCopy(ctx, st, ref, buf)
		rep.Copies++
		rep.Bytes += n
		if err != nil {
			s.log.WarnContext(ctx, "scrub: copy unreadable", "recording", ref.ID, "site", st.Name(), "err", err)
			rep.Findings = append(rep.Findings, Finding{ref.ID, st.Name(), "unreadable", "reported"})
			continue
		}
		if problem == "" {
			good = append(good, st.Name())
		} else {
			bad[st.Name()] = problem
		}
	}
	if len(good) == 0 && len(bad) > 0 && len(bad) == len(up) {
		rep.Lost++
		for st, p := range bad {
			rep.Findings = append(rep.Findings, Finding{ref.ID, st, p, "lost: no good copy; not served"})
		}
		s.log.ErrorContext(ctx, "scrub: recording lost: no copy passes its integrity check", "recording", ref.ID)
		if err := s.cat.MarkLost(ctx, ref.ID, fmt.Sprint(bad), s.now()); err != nil {
			s.log.ErrorContext(ctx, "scrub: marking lost failed", "recording", ref.ID, "err", err)
		}
		return
	}
	if len(good) > 0 {
		if lost, _ := s.cat.Lost(ctx, ref.ID); lost {
			_ = s.cat.ClearLost(ctx, ref.ID)
		}
	}
	for st, problem := range bad {
		action := "repaired"
		if problem != "missing" {
			// The damaged copy goes only now that a verified one exists.
			if err := s.sites.DeleteAt(ctx, st, ref.ID); err != nil {
				action = "failed: " + err.Error()
			}
		}
		if action == "repaired" {
			if err := s.sites.Repair(ctx, ref.ID, st, ref.BlobSHA256); err != nil {
				action = "failed: " + err.Error()
			} else {
				rep.Repaired++
				_ = s.cat.ResolvePending(ctx, ref.ID, st)
				s.metrics.repaired(true)
			}
		}
		rep.Findings = append(rep.Findings, Finding{ref.ID, st, problem, action})
		s.log.WarnContext(ctx, "scrub: bad copy", "recording", ref.ID, "site", st, "problem", problem, "action", action)
	}
}

// checkCopy reads ref's copy on st whole and returns the bytes read and
// the problem found: "" (good), "missing", "size", "header" or "digest".
// err is set when the copy could not be read for another reason (site
// trouble), which says nothing about the copy.
func checkCopy(ctx context.Context, st site.Store, ref catalog.BlobRef, buf []byte) (n int64, problem string, err error) {
	b, err := st.Open(ctx, ref.ID)
	if errors.Is(err, site.ErrNotExist) {
		return 0, "missing", nil
	} else if err != nil {
		return 0, "", err
	}
	defer b.Close()
	if b.Size() != ref.BlobBytes {
		return 0, "size", nil
	}
	h := sha256.New()
	n, err = io.CopyBuffer(h, io.NewSectionReader(b, 0, b.Size()), buf)
	if err != nil {
		return n, "", err
	}
	var head [seal.HeaderSize]byte
	if _, err := b.ReadAt(head[:], 0); err != nil && !errors.Is(err, io.EOF) {
		return n, "", err
	}
	if err := seal.CheckHeader(head[:], b.Size(), ref.ID); err != nil {
		return n, "header", nil
	}
	if !bytes.Equal(h.Sum(nil), ref.BlobSHA256) {
		return n, "digest", nil
	}
	return n, "", nil
}

// removeOrphans removes blobs on st that no catalog row refers to (older
// than grace), and blobs of deleted recordings.
func (s *Service) removeOrphans(ctx context.Context, st site.Store, grace time.Duration, rep *ScrubReport) {
	cutoff := time.Now().Add(-grace)
	var orphans []string
	err := st.List(ctx, func(b site.BlobInfo) error {
		live, deleted, err := s.cat.Known(ctx, b.Name)
		if err != nil {
			return err
		}
		if deleted || (!live && !b.ModTime.After(cutoff)) {
			orphans = append(orphans, b.Name)
		}
		return nil
	})
	if err != nil {
		s.log.ErrorContext(ctx, "scrub: listing a site failed", "site", st.Name(), "err", err)
		return
	}
	for _, id := range orphans {
		// Look again: an ingest may have committed its row meanwhile.
		if live, _, err := s.cat.Known(ctx, id); err != nil || live {
			continue
		}
		if s.currentRecovery(ctx, st, id) {
			continue
		}
		action := "removed"
		if err := s.sites.DeleteAt(ctx, st.Name(), id); err != nil {
			action = "failed: " + err.Error()
		} else {
			rep.Orphans++
			_ = s.cat.ResolveDeletion(ctx, id, st.Name())
		}
		rep.Findings = append(rep.Findings, Finding{id, st.Name(), "orphan", action})
		s.log.InfoContext(ctx, "scrub: orphaned blob", "recording", id, "site", st.Name(), "action", action)
	}
}

// RunScrub calls Scrub every interval until ctx ends; the first pass runs
// one interval after the start.
func (s *Service) RunScrub(ctx context.Context, interval, grace time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.Scrub(ctx, ScrubOptions{OrphanGrace: grace}); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "scrub pass failed", "err", err)
		}
	}
}

// scrubRecovery checks that both sites hold ref's current recovery record;
// a missing one is copied from the other site, or written anew from the
// catalog row when neither has it.
func (s *Service) scrubRecovery(ctx context.Context, ref catalog.BlobRef, sites []site.Store, up map[string]bool, rep *ScrubReport) {
	name := RecoveryName(ref.ID, ref.KeyEpoch)
	var have site.Store
	var lack []string
	for _, st := range sites {
		if !up[st.Name()] {
			continue
		}
		if _, err := st.Stat(ctx, name); errors.Is(err, site.ErrNotExist) {
			lack = append(lack, st.Name())
		} else if err == nil && have == nil {
			have = st
		}
	}
	if len(lack) == 0 {
		return
	}
	if have == nil {
		action := "rewritten"
		rec, err := s.cat.Get(ctx, ref.ID)
		if err == nil {
			err = s.recoveryRecord(ctx, rec)
		}
		if err != nil {
			action = "failed: " + err.Error()
		}
		for _, st := range lack {
			rep.Findings = append(rep.Findings, Finding{ref.ID, st, "recovery-record-missing", action})
		}
		return
	}
	sum, err := objectDigest(ctx, have, name)
	for _, st := range lack {
		action := "repaired"
		if err == nil {
			err = s.sites.Repair(ctx, name, st, sum)
		}
		if err != nil {
			action = "failed: " + err.Error()
		}
		rep.Findings = append(rep.Findings, Finding{ref.ID, st, "recovery-record-missing", action})
	}
}

// objectDigest returns the SHA-256 of object name on st.
func objectDigest(ctx context.Context, st site.Store, name string) ([]byte, error) {
	b, err := st.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(b, 0, b.Size())); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// currentRecovery reports whether object name on st is the recovery record
// a live recording's row points to (and so no orphan).
func (s *Service) currentRecovery(ctx context.Context, st site.Store, name string) bool {
	b, err := st.Open(ctx, name)
	if err != nil {
		return false
	}
	defer b.Close()
	head := make([]byte, recoveryFixed)
	if _, err := b.ReadAt(head, 0); err != nil {
		return false
	}
	id, epoch, _, err := parseRecoveryHeader(head)
	if err != nil {
		return false
	}
	rec, err := s.cat.Get(ctx, id)
	return err == nil && rec.KeyEpoch == epoch && RecoveryName(rec.ID, rec.KeyEpoch) == name
}
