package sqldb

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// storeLock is the in-process writer lock of one store of one PostgreSQL
// database. A writer takes it before it takes a pooled connection and the
// store's advisory lock, so writers queued in this process hold no
// connection; the advisory lock serializes them with other processes.
type storeLock struct {
	ch chan struct{} // holds a token while taken
}

// storeLocks maps "host:port/database store" to its lock, so that two
// handles of one store in one process share it. Entries are never
// removed: there is one per store and database a process ever opens.
var storeLocks struct {
	mu sync.Mutex
	m  map[string]*storeLock // guarded by mu
}

func lockFor(database, store string) *storeLock {
	storeLocks.mu.Lock()
	defer storeLocks.mu.Unlock()
	if storeLocks.m == nil {
		storeLocks.m = map[string]*storeLock{}
	}
	k := database + " " + store
	l := storeLocks.m[k]
	if l == nil {
		l = &storeLock{ch: make(chan struct{}, 1)}
		storeLocks.m[k] = l
	}
	return l
}

// acquire takes l, waiting at most timeout (0: no limit) and not past
// ctx. It returns the function that releases it, which must be called
// exactly once; a wait that runs out returns ErrBusy.
func (l *storeLock) acquire(ctx context.Context, timeout time.Duration) (func(), error) {
	release := func() { <-l.ch }
	select {
	case l.ch <- struct{}{}:
		return release, nil
	default:
	}
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case l.ch <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-expired:
		return nil, ErrBusy
	}
}

// parsePGDuration parses a PostgreSQL time setting such as lock_timeout:
// an integer of milliseconds, or a number with unit us, ms, s, min, h or d.
func parsePGDuration(v string) (time.Duration, error) {
	s := strings.TrimSpace(v)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("lock_timeout %q is not a duration", v)
	}
	unit := map[string]time.Duration{
		"": time.Millisecond, "us": time.Microsecond, "ms": time.Millisecond,
		"s": time.Second, "min": time.Minute, "h": time.Hour, "d": 24 * time.Hour,
	}
	u, ok := unit[strings.TrimSpace(s[i:])]
	if !ok {
		return 0, fmt.Errorf("lock_timeout %q is not a duration", v)
	}
	return time.Duration(n * float64(u)), nil
}
