// Package benchstat holds the small statistics and machine readings the
// benchmark drivers under bench/ share: medians, nearest-rank percentiles,
// the machine's CPU time from /proc/stat, and a process's CPU time and
// storage writes from /proc/PID.
package benchstat

import (
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none. xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Percentile returns the p-th percentile of d by nearest rank, or 0 for
// none. d is not modified.
func Percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	k := int(math.Ceil(float64(len(s))*p/100)) - 1
	return s[max(0, min(k, len(s)-1))]
}

// CPUTimes is the machine's total and idle (idle + iowait) CPU time, in
// clock ticks, summed over all CPUs.
type CPUTimes struct{ Total, Idle int64 }

// ReadCPUTimes reads CPUTimes from /proc/stat; zero if it cannot.
func ReadCPUTimes() CPUTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CPUTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 2 {
		return CPUTimes{}
	}
	var t CPUTimes
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i == 7 || i == 8 { // guest and guest_nice are already in user and nice
			continue
		}
		t.Total += n
		if i == 3 || i == 4 { // idle, iowait
			t.Idle += n
		}
	}
	return t
}
