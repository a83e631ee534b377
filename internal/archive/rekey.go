package archive

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"callvault/internal/audit"
	"callvault/internal/catalog"
	"callvault/internal/keys"
	"callvault/internal/seal"
)

// RewrapOptions configure Rewrap.
type RewrapOptions struct {
	// Batch: rows read and committed together. If 0, 500.
	Batch int
	// Workers unwrapping, wrapping and writing recovery records in
	// parallel. If 0, 4 × GOMAXPROCS.
	Workers int
	// Limit: stop after this many rows (0: all). A later run resumes.
	Limit int
	// Progress, if set, is called after each batch with the rows rewrapped
	// so far and the rows that were stale at the start.
	Progress func(done, total int)
}

// RewrapReport says what Rewrap did. Failed lists the recording IDs whose
// key could not be rewrapped (at most 100), e.g. because their epoch's key
// is gone.
type RewrapReport struct {
	Epoch     int      `json:"epoch"`
	Stale     int      `json:"stale_at_start"`
	Rewrapped int      `json:"rewrapped"`
	Failed    []string `json:"failed,omitempty"`
}

// Rewrap moves every recording's wrapped file key to the current archive
// key epoch: unwrap with the old epoch's identity, wrap to the current
// recipient, write the recording's recovery record for the new epoch to
// both sites, store with a compare-and-set on the old epoch, and remove the
// old epoch's recovery record. Audio blobs are neither read nor written. It is idempotent and resumable: a run
// interrupted (or stopped by Limit) leaves every row wrapped to an epoch
// the keyring holds, and the next run continues with the rest. Only
// admins may run it; the run is audited.
func (s *Service) Rewrap(ctx context.Context, c Caller, opt RewrapOptions) (*RewrapReport, error) {
	if opt.Batch <= 0 {
		opt.Batch = 500
	}
	if opt.Workers <= 0 {
		opt.Workers = 4 * runtime.GOMAXPROCS(0) // the crypto is CPU-bound, the record writes wait on fsync
	}
	cur := s.keys.Current()
	counts, err := s.cat.EpochCounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	rep := &RewrapReport{Epoch: cur.ID}
	for e, n := range counts {
		if e != cur.ID {
			rep.Stale += n
		}
	}
	if err := s.AuditAdminChange(ctx, c, "keys.rewrap", fmt.Sprintf("to_epoch=%d stale=%d", cur.ID, rep.Stale), ""); err != nil {
		return nil, err
	}
	after := ""
	failed := 0
	for opt.Limit == 0 || rep.Rewrapped+failed < opt.Limit {
		n := opt.Batch
		if opt.Limit > 0 {
			n = min(n, opt.Limit-rep.Rewrapped-failed)
		}
		page, err := s.cat.Stale(ctx, cur.ID, after, n)
		if err != nil {
			return rep, fmt.Errorf("%w: %w", ErrStorage, err)
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].ID
		done, bad := s.rewrapPage(ctx, page, cur, opt.Workers)
		failed += len(bad)
		for _, id := range bad {
			if len(rep.Failed) < 100 {
				rep.Failed = append(rep.Failed, id)
			}
		}
		changed, err := s.cat.UpdateWrapped(ctx, done)
		if err != nil {
			return rep, fmt.Errorf("%w: %w", ErrStorage, err)
		}
		rep.Rewrapped += changed
		s.dropOldRecords(ctx, done, opt.Workers)
		if opt.Progress != nil {
			opt.Progress(rep.Rewrapped, rep.Stale)
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
	}
	detail := fmt.Sprintf("to_epoch=%d rewrapped=%d failed=%d", cur.ID, rep.Rewrapped, failed)
	if err := s.record(ctx, c, &audit.Event{Action: "keys.rewrap.done", Outcome: audit.Allowed, Reason: "admin", Detail: detail}); err != nil {
		return rep, err
	}
	s.log.InfoContext(ctx, "file keys rewrapped", "epoch", cur.ID, "rewrapped", rep.Rewrapped, "failed", failed)
	return rep, nil
}

// rewrapPage unwraps and wraps page's keys on workers goroutines. It
// returns the rewrapped keys and the IDs that failed.
//
// The recording's recovery record is written anew for the new epoch, on
// both sites, before the row may change: a row never points to an epoch
// its recovery record does not have.
func (s *Service) rewrapPage(ctx context.Context, page []catalog.WrappedRef, cur keys.Epoch, workers int) ([]catalog.Rewrapped, []string) {
	out := make([]catalog.Rewrapped, len(page))
	ok := make([]bool, len(page))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, len(page)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				w := page[i]
				id, err := s.keys.Identity(w.KeyEpoch)
				if err != nil {
					continue
				}
				fk, err := seal.Unwrap(w.WrappedKey, id)
				if err != nil {
					continue
				}
				wrapped, err := seal.Wrap(fk, cur.Recipient)
				if err != nil {
					continue
				}
				rec, err := s.cat.Get(ctx, w.ID)
				if err != nil {
					continue
				}
				rec.KeyEpoch, rec.WrappedKey = cur.ID, wrapped
				if err := s.writeRecovery(ctx, rec, fk); err != nil {
					s.log.Warn("rewrap: recovery record not written", "recording", w.ID, "err", err)
					continue
				}
				out[i], ok[i] = catalog.Rewrapped{ID: w.ID, From: w.KeyEpoch, To: cur.ID, WrappedKey: wrapped}, true
			}
		}()
	}
	for i := range page {
		next <- i
	}
	close(next)
	wg.Wait()
	var done []catalog.Rewrapped
	var bad []string
	for i := range page {
		if ok[i] {
			done = append(done, out[i])
		} else {
			bad = append(bad, page[i].ID)
			s.log.Error("rewrap failed: key cannot be unwrapped with the keyring", "recording", page[i].ID, "epoch", page[i].KeyEpoch)
		}
	}
	return done, bad
}

// dropOldRecords removes the old epoch's recovery record of each rewrapped
// row, on workers goroutines: the new record is durable and the row points
// to it. A leftover is removed by the scrubber as an orphan.
func (s *Service) dropOldRecords(ctx context.Context, done []catalog.Rewrapped, workers int) {
	next := make(chan catalog.Rewrapped)
	var wg sync.WaitGroup
	for range min(workers, len(done)) {
		wg.Go(func() {
			for w := range next {
				if err := s.sites.Delete(ctx, RecoveryName(w.ID, w.From)); err != nil {
					s.log.WarnContext(ctx, "rewrap: old recovery record not removed", "recording", w.ID, "err", err)
				}
			}
		})
	}
	for _, w := range done {
		next <- w
	}
	close(next)
	wg.Wait()
}
