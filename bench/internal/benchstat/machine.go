package benchstat

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LoadAvg returns the 1, 5 and 15 minute load averages ("0.21, 1.21,
// 1.22"), or "?".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	var a, c, d string
	fmt.Sscan(string(b), &a, &c, &d)
	return a + ", " + c + ", " + d
}

// SelfCPU is this process's user + system CPU time so far.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// SelfIO is read_bytes and write_bytes of /proc/self/io: bytes this
// process caused to be fetched from and sent to the storage layer (a page
// written into the page cache counts when it is dirtied).
func SelfIO() (read, write int64) {
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

// DBSize is the size of the SQLite database at path and of its WAL.
func DBSize(path string) (db, wal int64) {
	if fi, err := os.Stat(path); err == nil {
		db = fi.Size()
	}
	if fi, err := os.Stat(path + "-wal"); err == nil {
		wal = fi.Size()
	}
	return db, wal
}

// Meter measures, over one step, how busy the machine's CPUs were and how
// much of that was outside this process and the processes it watches
// (kernel threads such as disk writeback, anyone else on the machine).
type Meter struct {
	machine CPUTimes
	ours    time.Duration
	pids    []int // watched processes, such as servers this process started
}

// Load is what a Meter saw: shares of all CPUs' time, busy whoever used
// it, and busy outside this process and the watched ones; and the CPU
// time of this process and the watched ones.
type Load struct {
	Busy, Other float64
	CPU         time.Duration
}

// StartMeter starts measuring this process and the processes pids, which
// must keep running until Stop.
func StartMeter(pids ...int) Meter {
	m := Meter{machine: ReadCPUTimes(), pids: pids}
	m.ours = m.oursCPU()
	return m
}

func (m Meter) oursCPU() time.Duration {
	d := SelfCPU()
	for _, pid := range m.pids {
		if c, err := ProcCPU(pid); err == nil {
			d += c
		}
	}
	return d
}

// Stop returns the load since StartMeter.
func (m Meter) Stop() Load {
	t1, ours := ReadCPUTimes(), m.oursCPU()
	l := Load{CPU: ours - m.ours}
	total := t1.Total - m.machine.Total
	if total <= 0 {
		return l
	}
	busyTicks := float64(total - (t1.Idle - m.machine.Idle))
	const tick = 10 * time.Millisecond // USER_HZ = 100
	l.Busy = busyTicks / float64(total)
	l.Other = max(0, busyTicks-float64(l.CPU)/float64(tick)) / float64(total)
	return l
}

// Machine describes the machine in one line: CPUs, model and the crypto
// flags that matter here, GOMAXPROCS, memory, kernel, Go version.
func Machine() string {
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

// DropCaches writes dirty data back and drops the kernel's clean page
// cache, dentries and inodes (needs root); an error means it could not.
func DropCaches() error {
	syscall.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
}
