package archive

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"callvault/internal/access"
	"callvault/internal/audit"
	"callvault/internal/catalog"
)

// Overview is what an administrator sees of the running archive: the
// directory, the sites, the keys and the replication backlog. It holds no
// patient data and no recording IDs.
type Overview struct {
	Users []*access.Entry
	Units []access.Unit
	Status
	// KeyEpoch is the archive key epoch new recordings are sealed to, and
	// KeyEpochCreated when it was made.
	KeyEpoch        int
	KeyEpochCreated time.Time
	// RecordingsByEpoch counts the live recordings whose file key is
	// wrapped to each epoch (more than one epoch: a rewrap is due).
	RecordingsByEpoch map[int]int
	// Lost counts recordings with no stored copy that passes its check.
	Lost int
}

// AdminOverview returns the overview to a principal with the admin role.
// The view is audited (action admin.view) before it is assembled; anyone
// else is refused and that is audited too.
func (s *Service) AdminOverview(ctx context.Context, c Caller) (*Overview, error) {
	ev := &audit.Event{Action: "admin.view"}
	if !c.Principal.Has(access.RoleAdmin) {
		ev.Reason = access.ReasonRole
		return nil, s.deny(ctx, c, ev, nil)
	}
	ev.Outcome, ev.Reason = audit.Allowed, "admin"
	if err := s.record(ctx, c, ev); err != nil {
		return nil, err
	}
	st, err := s.Status(ctx)
	if err != nil {
		return nil, err
	}
	o := &Overview{Status: *st}
	if o.Users, err = s.dir.List(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if o.Units, err = s.dir.Units(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	cur := s.keys.Current()
	o.KeyEpoch, o.KeyEpochCreated = cur.ID, cur.Created
	if o.RecordingsByEpoch, err = s.cat.EpochCounts(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if o.Lost, err = s.cat.LostCount(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	return o, nil
}

// maxListedDecisions bounds Decisions' answer.
const maxListedDecisions = 200

// Decisions lists the caller's care provider's deletion decisions in state
// (catalog.StateRegistered: awaiting a second officer's approval), newest
// first, at most 200. Records officers only; the listing is audited.
func (s *Service) Decisions(ctx context.Context, c Caller, state string) ([]*catalog.Decision, error) {
	ev := &audit.Event{Action: "deletion.list", Detail: "state=" + state}
	if !slices.Contains([]string{catalog.StateRegistered, catalog.StateApproved, catalog.StateExecuted}, state) {
		ev.Reason, ev.Detail = "invalid-input", "field=state"
		return nil, s.deny(ctx, c, ev, &InvalidError{Field: "state", Msg: "state must be registered, approved or executed"})
	}
	if err := s.decideLifecycle(ctx, c, ev, c.Principal.CareProvider); err != nil {
		return nil, err
	}
	ds, err := s.cat.Decisions(ctx, c.Principal.CareProvider, state, maxListedDecisions)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	ev.Outcome, ev.Detail = audit.Allowed, ev.Detail+" count="+strconv.Itoa(len(ds))
	if err := s.record(ctx, c, ev); err != nil {
		return nil, err
	}
	return ds, nil
}
