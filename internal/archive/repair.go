package archive

import (
	"context"
	"fmt"
	"time"

	"callvault/internal/catalog"
)

// RepairPending tries once to copy every queued missing blob to the site
// that lacks it, verifying the stored SHA-256, and clears the queue entry on
// success. It returns how many copies were repaired and how many remain.
func (s *Service) RepairPending(ctx context.Context) (repaired, remaining int, err error) {
	if err := s.resumeDeletions(ctx); err != nil {
		return 0, 0, err
	}
	if s.removeBlobs(ctx) == 0 {
		if err := s.cat.Checkpoint(ctx); err != nil {
			s.log.WarnContext(ctx, "catalog checkpoint deferred", "err", err)
		}
	}
	pend, err := s.cat.Pending(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	for _, p := range pend {
		if ctx.Err() != nil {
			break
		}
		rec, err := s.cat.Get(ctx, p.RecordingID)
		if err != nil {
			return repaired, len(pend) - repaired, fmt.Errorf("%w: %w", ErrStorage, err)
		}
		err = s.sites.Repair(ctx, p.RecordingID, p.Site, rec.BlobSHA256)
		if err == nil {
			err = s.ensureRecovery(ctx, rec, p.Site)
		}
		if err != nil {
			s.metrics.repaired(false)
			s.log.WarnContext(ctx, "repair failed; will retry", "recording", p.RecordingID, "site", p.Site, "err", err)
			_ = s.cat.NotePendingFailure(ctx, p.RecordingID, p.Site, err.Error())
			continue
		}
		if err := s.cat.ResolvePending(ctx, p.RecordingID, p.Site); err != nil {
			return repaired, len(pend) - repaired, fmt.Errorf("%w: %w", ErrStorage, err)
		}
		s.metrics.repaired(true)
		s.log.InfoContext(ctx, "replica repaired", "recording", p.RecordingID, "site", p.Site)
		repaired++
	}
	n, err := s.cat.PendingCount(ctx)
	if err != nil {
		return repaired, 0, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	s.metrics.setPending(n)
	return repaired, n, nil
}

// RunRepair calls RepairPending every interval until ctx ends.
func (s *Service) RunRepair(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, _, err := s.RepairPending(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "repair pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SiteStatus is the health of one storage site.
type SiteStatus struct {
	Name         string `json:"name"`
	Jurisdiction string `json:"jurisdiction"`
	OK           bool   `json:"ok"`
	Error        string `json:"error,omitempty"`
	// WORM is the last WORM check of this serve (CheckWORM); nil where
	// none ran (a command outside serve).
	WORM *WORMState `json:"worm,omitempty"`
}

// Status is the archive's operational state, without personal data.
type Status struct {
	Recordings         int           `json:"recordings"`
	ReplicationPending int           `json:"replication_pending"`
	Sites              []SiteStatus  `json:"sites"`
	Capture            CaptureStatus `json:"capture"`
}

// CaptureStatus counts live capture sessions (docs/siprec.md): every
// accepted session ends stored, incomplete, cancelled (never answered) or
// failed (nothing stored: an alert). Accepted = Active + the four others.
type CaptureStatus struct {
	Accepted   int `json:"accepted"`
	Active     int `json:"active"`
	Stored     int `json:"stored"`
	Incomplete int `json:"incomplete"`
	Cancelled  int `json:"cancelled"`
	Failed     int `json:"failed"`
	// Recording lists the active sessions, oldest first (at most 100):
	// care unit and start only, no personal data.
	Recording []ActiveCapture `json:"recording"`
}

// ActiveCapture is one call being recorded, as status shows it.
type ActiveCapture struct {
	CareUnit  string    `json:"care_unit"`
	StartedAt time.Time `json:"started_at"`
}

// Status reports counts and site health for operators.
func (s *Service) Status(ctx context.Context) (*Status, error) {
	st := &Status{}
	var err error
	if st.Recordings, err = s.cat.Count(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if st.ReplicationPending, err = s.cat.PendingCount(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	counts, err := s.cat.CaptureCounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	cs := &st.Capture
	cs.Active, cs.Stored, cs.Incomplete = counts[catalog.CaptureActive], counts[catalog.CaptureStored], counts[catalog.CaptureIncomplete]
	cs.Cancelled, cs.Failed = counts[catalog.CaptureCancelled], counts[catalog.CaptureFailed]
	cs.Accepted = cs.Active + cs.Stored + cs.Incomplete + cs.Cancelled + cs.Failed
	active, err := s.cat.CaptureSessions(ctx, catalog.CaptureActive, 100)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	for _, a := range active {
		cs.Recording = append(cs.Recording, ActiveCapture{CareUnit: a.CareUnit, StartedAt: a.StartedAt})
	}
	for _, site := range s.sites.Sites() {
		ss := SiteStatus{Name: site.Name(), Jurisdiction: site.Jurisdiction(), OK: true, WORM: s.wormState(site.Name())}
		if err := site.Check(ctx); err != nil {
			ss.OK, ss.Error = false, err.Error()
		}
		st.Sites = append(st.Sites, ss)
	}
	return st, nil
}
