package main

import (
	"time"

	"callvault/bench/internal/benchstat"
)

func pct(d []time.Duration, p float64) time.Duration { return benchstat.Percentile(d, p) }

func median(xs []float64) float64 { return benchstat.Median(xs) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func loadavg() string { return benchstat.LoadAvg() }

func selfCPU() time.Duration { return benchstat.SelfCPU() }

// selfWriteBytes is write_bytes of /proc/self/io.
func selfWriteBytes() int64 { _, w := benchstat.SelfIO(); return w }

// dbSize is the size of the SQLite database at path plus its WAL.
func dbSize(path string) int64 { db, wal := benchstat.DBSize(path); return db + wal }

func machineLine() string { return benchstat.Machine() }

// cpuLoad is what a cpuMeter measured, as fractions of all CPUs' time.
type cpuLoad struct {
	busy  float64 // busy, whoever used it
	other float64 // used outside this process
}

type cpuMeter struct{ m benchstat.Meter }

func startMeter() cpuMeter { return cpuMeter{benchstat.StartMeter()} }

func (m cpuMeter) stop() cpuLoad { l := m.m.Stop(); return cpuLoad{busy: l.Busy, other: l.Other} }
