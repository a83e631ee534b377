// Package paired times two methods on the same inputs in turns, so that
// both see the same machine, the same load and the same cache warming:
// the comparison a benchmark driver reports as a ratio.
package paired

import (
	"context"
	"time"
)

// Func runs input k with method m (0 or 1) and returns how long it took
// and how many rows it returned.
type Func func(ctx context.Context, k, m int) (time.Duration, int, error)

// Timings are the timed runs of a phase, per method, and the rows they
// returned.
type Timings struct {
	D    [2][]time.Duration
	Rows [2]int
}

// MeanRows is the mean number of rows per timed run, over both methods.
func (t *Timings) MeanRows() float64 {
	n := len(t.D[0]) + len(t.D[1])
	if n == 0 {
		return 0
	}
	return float64(t.Rows[0]+t.Rows[1]) / float64(n)
}

func (t *Timings) add(m int, d time.Duration, rows int) {
	t.D[m] = append(t.D[m], d)
	t.Rows[m] += rows
}

// Once runs each of n inputs once, by one method: inputs go in pairs, one
// to each method, method 0 first in even pairs and method 1 first in odd
// ones. Every input is seen cold by exactly one method.
func Once(ctx context.Context, n int, f Func) (*Timings, error) {
	t := &Timings{}
	for k := range n {
		m := k % 2
		if (k/2)%2 == 1 {
			m = 1 - m
		}
		d, rows, err := f(ctx, k, m)
		if err != nil {
			return nil, err
		}
		t.add(m, d, rows)
	}
	return t, nil
}

// Repeat runs every one of n inputs with both methods once untimed, then
// rounds times timed, the method order alternating between rounds.
func Repeat(ctx context.Context, n, rounds int, f Func) (*Timings, error) {
	for k := range n {
		for m := range 2 {
			if _, _, err := f(ctx, k, m); err != nil {
				return nil, err
			}
		}
	}
	t := &Timings{}
	for r := range rounds {
		for k := range n {
			for j := range 2 {
				m := (j + r) % 2
				d, rows, err := f(ctx, k, m)
				if err != nil {
					return nil, err
				}
				t.add(m, d, rows)
			}
		}
	}
	return t, nil
}
