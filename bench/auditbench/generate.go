package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"callvault/internal/audit"
)

// chunk is what one stretch of generation measured.
type chunk struct {
	from, to   int64         // entries [from, to) appended
	wall       time.Duration // wall time
	cpu        time.Duration // this process's CPU time (user + system)
	load       cpuLoad       // machine busy share, and the share outside this process
	written    int64         // bytes this process caused to be written to disk (/proc/self/io write_bytes)
	dbBytes    int64         // size of the database and its WAL at the end
	appendMean time.Duration // mean time of one Append (call to return) in the chunk
	appendP99  time.Duration // p99 of a sample of Append times in the chunk
}

func (c chunk) rate() float64 { return float64(c.to-c.from) / c.wall.Seconds() }

// generate appends events [from, to) of pop to l with writers goroutines,
// each looping Append (so the log's writer group-commits up to its batch
// limit), and measures every chunkSize entries. It stops early, without
// error, at deadline; it returns the chunks measured and the size reached.
func (b *bench) generate(ctx context.Context, l *audit.Log, from, to int64, deadline time.Time) ([]chunk, int64, error) {
	var (
		next     atomic.Int64
		done     atomic.Int64 // entries appended
		firstErr atomic.Pointer[error]
		wg       sync.WaitGroup
		mu       sync.Mutex
		lat      []time.Duration // sample of Append times in the current chunk
		latSum   atomic.Int64    // sum of Append times in the current chunk, ns
		latN     atomic.Int64
	)
	next.Store(from)
	done.Store(from)
	stop := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	for range b.o.writers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := next.Add(1) - 1
				if k >= to {
					return
				}
				e := b.pop.event(k)
				t0 := time.Now()
				if err := l.Append(ctx, e); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					halt()
					return
				}
				d := time.Since(t0)
				latSum.Add(int64(d))
				if latN.Add(1)%64 == 0 {
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
				done.Add(1)
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()

	var chunks []chunk
	start := from
	t0, cpu0, io0, m0 := time.Now(), selfCPU(), selfWriteBytes(), startMeter()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	lastLog := time.Now()
	measure := func(end int64) {
		c := chunk{from: start, to: end, wall: time.Since(t0), cpu: selfCPU() - cpu0, load: m0.stop(),
			written: selfWriteBytes() - io0, dbBytes: dbSize(b.dbPath)}
		mu.Lock()
		if n := latN.Swap(0); n > 0 {
			c.appendMean = time.Duration(latSum.Swap(0) / n)
		}
		c.appendP99 = pct(lat, 99)
		lat = lat[:0]
		mu.Unlock()
		chunks = append(chunks, c)
		b.logf("entries %d..%d: %.0f entries/s, %.2f CPUs of this process, machine %.0f%% busy, %.1f KB written/entry, db %.2f GB",
			c.from, c.to, c.rate(), c.cpu.Seconds()/c.wall.Seconds(), 100*c.load.busy, float64(c.written)/1e3/float64(c.to-c.from), float64(c.dbBytes)/1e9)
		start, t0, cpu0, io0, m0 = end, time.Now(), selfCPU(), selfWriteBytes(), startMeter()
	}
	for {
		select {
		case <-finished:
			end := done.Load()
			if end > start {
				measure(end)
			}
			if p := firstErr.Load(); p != nil {
				return chunks, end, *p
			}
			if err := ctx.Err(); err != nil {
				return chunks, end, err
			}
			return chunks, end, nil
		case <-tick.C:
			d := done.Load()
			if d-start >= b.o.chunk {
				measure(d)
			}
			if time.Now().After(deadline) {
				b.logf("generation time limit reached at %d entries; stopping the writers", d)
				halt()
			}
			if time.Since(lastLog) > time.Minute {
				b.logf("... %d entries", d)
				lastLog = time.Now()
			}
		case <-ctx.Done():
			halt()
		}
	}
}

// appendRateTable prints the chunks as markdown.
func appendRateTable(chunks []chunk) string {
	s := "| entries | appends/s | Append mean / p99 ms | CPUs used by auditbench | machine busy (other) | disk writes per entry | database + WAL at end |\n|---|---|---|---|---|---|---|\n"
	for _, c := range chunks {
		s += fmt.Sprintf("| %s–%s | %.0f | %.1f / %.1f | %.2f | %.0f%% (%.0f%%) | %.1f KB | %.2f GB |\n",
			millions(c.from), millions(c.to), c.rate(), ms(c.appendMean), ms(c.appendP99),
			c.cpu.Seconds()/c.wall.Seconds(), 100*c.load.busy, 100*c.load.other,
			float64(c.written)/1e3/float64(c.to-c.from), float64(c.dbBytes)/1e9)
	}
	return s
}

func millions(n int64) string {
	if n == 0 {
		return "0"
	}
	if n%1_000_000 == 0 {
		return fmt.Sprintf("%dM", n/1_000_000)
	}
	return fmt.Sprintf("%.2fM", float64(n)/1e6)
}
