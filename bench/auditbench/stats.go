package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"callvault/bench/internal/benchstat"
)

func pct(d []time.Duration, p float64) time.Duration { return benchstat.Percentile(d, p) }

func median(xs []float64) float64 { return benchstat.Median(xs) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	var a, c, d string
	fmt.Sscan(string(b), &a, &c, &d)
	return a + " " + c + " " + d
}

// selfCPU is this process's user + system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// selfWriteBytes is write_bytes of /proc/self/io: bytes this process
// caused to be sent to the storage layer (page-cache writeback included).
func selfWriteBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// dbSize is the size of the SQLite database at path plus its WAL.
func dbSize(path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

type cpuTimes = benchstat.CPUTimes

func readCPUTimes() cpuTimes { return benchstat.ReadCPUTimes() }

// cpuMeter measures, over one step, how busy the machine's CPUs were and
// how much of that was outside this process (kernel threads such as disk
// writeback, and anyone else using the machine).
type cpuMeter struct {
	machine cpuTimes
	ours    time.Duration
}

// cpuLoad is what a cpuMeter measured, as fractions of all CPUs' time.
type cpuLoad struct {
	busy  float64 // busy, whoever used it
	other float64 // used outside this process
}

func startMeter() cpuMeter { return cpuMeter{machine: readCPUTimes(), ours: selfCPU()} }

func (m cpuMeter) stop() cpuLoad {
	t1, ours := readCPUTimes(), selfCPU()
	total := t1.Total - m.machine.Total
	if total <= 0 {
		return cpuLoad{}
	}
	busyTicks := float64(total - (t1.Idle - m.machine.Idle))
	const tick = 10 * time.Millisecond // USER_HZ = 100
	oursTicks := float64(ours-m.ours) / float64(tick)
	return cpuLoad{busy: busyTicks / float64(total), other: max(0, busyTicks-oursTicks) / float64(total)}
}

// machineLine describes the machine in one markdown list item.
func machineLine() string {
	model, memGiB, kernel := "?", 0.0, "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				memGiB = kb / (1 << 20)
			}
		}
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		var s strings.Builder
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			s.WriteByte(byte(c))
		}
		kernel = s.String()
	}
	return fmt.Sprintf("%d CPUs (nproc), %s; %.1f GiB memory; Linux %s; %s", runtime.NumCPU(), model, memGiB, kernel, runtime.Version())
}
