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

func median(xs []float64) float64 { return benchstat.Median(xs) }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	var a, c, d string
	fmt.Sscan(string(b), &a, &c, &d)
	return a + ", " + c + ", " + d
}

// selfCPU is this process's user + system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// selfIO is read_bytes and write_bytes of /proc/self/io: bytes this
// process caused to be fetched from and sent to the storage layer (a page
// written into the page cache counts when it is dirtied).
func selfIO() (read, write int64) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "read_bytes:"); ok {
			read, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			write, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return read, write
}

// dbSize is the size of the SQLite database at path plus its WAL.
func dbSize(path string) (db, wal int64) {
	if fi, err := os.Stat(path); err == nil {
		db = fi.Size()
	}
	if fi, err := os.Stat(path + "-wal"); err == nil {
		wal = fi.Size()
	}
	return db, wal
}

// meter measures one step: wall time, this process's CPU time and I/O, and
// how busy the machine's CPUs were, and how much of that was outside this
// process (kernel threads such as disk writeback, anyone else on the
// machine).
type meter struct {
	start         time.Time
	machine       benchstat.CPUTimes
	ours          time.Duration
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
	return meter{machine: benchstat.ReadCPUTimes(), ours: selfCPU(), read: r, written: w, start: time.Now()}
}

func (m meter) stop() measured {
	wall := time.Since(m.start)
	t1, ours := benchstat.ReadCPUTimes(), selfCPU()
	r, w := selfIO()
	out := measured{wall: wall, cpu: ours - m.ours, read: r - m.read, written: w - m.written}
	total := t1.Total - m.machine.Total
	if total <= 0 {
		return out
	}
	busyTicks := float64(total - (t1.Idle - m.machine.Idle))
	const tick = 10 * time.Millisecond // USER_HZ = 100
	oursTicks := float64(out.cpu) / float64(tick)
	out.busy = busyTicks / float64(total)
	out.other = max(0, busyTicks-oursTicks) / float64(total)
	return out
}

// machineLine describes the machine in one markdown list item.
func machineLine() string {
	model, memGiB, kernel, flags := "?", 0.0, "?", ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "model name":
				if model == "?" {
					model = strings.TrimSpace(v)
				}
			case "flags":
				if flags == "" {
					var have []string
					for _, f := range []string{"aes", "vaes", "avx2", "avx512f", "sha_ni"} {
						if strings.Contains(" "+strings.TrimSpace(v)+" ", " "+f+" ") {
							have = append(have, f)
						}
					}
					flags = strings.Join(have, ", ")
				}
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
	return fmt.Sprintf("%d CPUs (nproc), %s (flags include %s); GOMAXPROCS %d; %.1f GiB memory; Linux %s; %s",
		runtime.NumCPU(), model, flags, runtime.GOMAXPROCS(0), memGiB, kernel, runtime.Version())
}

// dropCaches writes dirty data back and drops the clean page cache, dentries
// and inodes (needs root). It returns an error if it cannot.
func dropCaches() error {
	syscall.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
}

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
