package archive

import (
	"context"
	"errors"
	"time"

	"callvault/internal/site"
)

// WORMState is what the last WORM check found for a site.
type WORMState struct {
	// State is "verified" (a locked canary could not be deleted),
	// "not-enforced" (it could: an alert), "unknown" (the check could not
	// run, e.g. the store was down) or "unsupported" (the store cannot
	// lock blobs at all, such as a directory).
	State   string    `json:"state"`
	Checked time.Time `json:"checked,omitzero"`
	Error   string    `json:"error,omitempty"`
}

// CheckWORM runs the WORM canary on every site that can lock blobs
// (site.WORMChecker) and records the result in the status and the metric
// callvault_site_worm. A site whose store accepted a lock and then let the
// locked object be deleted is logged as an ALERT and is not called WORM.
func (s *Service) CheckWORM(ctx context.Context) map[string]WORMState {
	out := map[string]WORMState{}
	for _, st := range s.sites.Sites() {
		w, ok := st.(site.WORMChecker)
		if !ok {
			out[st.Name()] = WORMState{State: "unsupported"}
			continue
		}
		ws := WORMState{Checked: time.Now().UTC()}
		switch err := w.CheckWORM(ctx); {
		case err == nil:
			ws.State = "verified"
		case errors.Is(err, site.ErrNotWORM):
			ws.State, ws.Error = "not-enforced", err.Error()
			s.log.ErrorContext(ctx, "ALERT: site does not enforce Object Lock; it is not WORM storage", "site", st.Name(), "err", err)
		default:
			ws.State, ws.Error = "unknown", err.Error()
			s.log.WarnContext(ctx, "WORM check could not run", "site", st.Name(), "err", err)
		}
		out[st.Name()] = ws
	}
	s.wormMu.Lock()
	s.worm = out
	s.wormMu.Unlock()
	if s.metrics != nil {
		for name, ws := range out {
			v := 0.0
			if ws.State == "verified" {
				v = 1
			}
			s.metrics.worm.WithLabelValues(name).Set(v)
		}
	}
	return out
}

// RunWORMCheck runs CheckWORM every interval (serve: daily, after the
// check at start) until ctx is done.
func (s *Service) RunWORMCheck(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.CheckWORM(ctx)
	}
}

// wormState returns the last WORM check's result for site name.
func (s *Service) wormState(name string) *WORMState {
	s.wormMu.Lock()
	defer s.wormMu.Unlock()
	if ws, ok := s.worm[name]; ok {
		return &ws
	}
	return nil
}
