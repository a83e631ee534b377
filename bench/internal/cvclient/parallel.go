package cvclient

import (
	"context"
	"sync"
	"time"
)

// Parallel runs fn(i) for i in [0, n) on clients workers (worker w gets
// its own index w) and returns the wall time and fn's first error; after
// an error no new i is started.
func Parallel(ctx context.Context, n, clients int, fn func(ctx context.Context, worker, i int) error) (time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range clients {
		wg.Go(func() {
			for i := range next {
				if err := fn(ctx, w, i); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	wall := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return wall, err
	}
	return wall, nil
}
