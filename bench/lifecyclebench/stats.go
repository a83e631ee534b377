package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"callvault/bench/internal/benchstat"
)

func median(xs []float64) float64 { return benchstat.Median(xs) }

func loadavg() string { return benchstat.LoadAvg() }

func selfIO() (read, write int64) { return benchstat.SelfIO() }

func dbSize(path string) (db, wal int64) { return benchstat.DBSize(path) }

func machineLine() string { return benchstat.Machine() }

// meter measures one step: wall time, this process's CPU time and I/O, and
// how busy the machine was (benchstat.Meter).
type meter struct {
	start         time.Time
	cpu           benchstat.Meter
	read, written int64
}

// measured is what a meter saw.
type measured struct {
	wall          time.Duration
	cpu           time.Duration // this process, user + system
	busy, other   float64       // shares of all CPUs' time: busy, and busy outside this process
	read, written int64         // /proc/self/io read_bytes, write_bytes
}

func startMeter() meter {
	r, w := selfIO()
	return meter{cpu: benchstat.StartMeter(), read: r, written: w, start: time.Now()}
}

func (m meter) stop() measured {
	wall := time.Since(m.start)
	l := m.cpu.Stop()
	r, w := selfIO()
	return measured{wall: wall, cpu: l.CPU, busy: l.Busy, other: l.Other, read: r - m.read, written: w - m.written}
}

// dropCaches writes dirty data back and drops the clean page cache, dentries
// and inodes (needs root). It returns an error if it cannot.
func dropCaches() error { return benchstat.DropCaches() }

// canDropCaches reports whether dropCaches works here, by trying it.
func canDropCaches() bool { return dropCaches() == nil }

// pct formats a fraction as a whole percentage.
func pct(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) }

// thousands formats n with commas, as the docs do (1,000,000).
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
