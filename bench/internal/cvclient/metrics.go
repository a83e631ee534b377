package cvclient

import (
	"bufio"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// AuditStats is callvault's audit-append histogram
// (callvault_audit_append_seconds): how long appends took until durable.
type AuditStats struct {
	Count   int64
	Sum     float64           // seconds
	Buckets map[float64]int64 // upper bound in seconds → cumulative count
}

// Minus returns the appends made between b and a (a scraped later).
func (a AuditStats) Minus(b AuditStats) AuditStats {
	d := AuditStats{Count: a.Count - b.Count, Sum: a.Sum - b.Sum, Buckets: map[float64]int64{}}
	for le, n := range a.Buckets {
		d.Buckets[le] = n - b.Buckets[le]
	}
	return d
}

// QuantileMs returns the upper bound, in ms, of the histogram bucket that
// holds the q-quantile (0 < q ≤ 1): the q-quantile is at most that.
func (a AuditStats) QuantileMs(q float64) float64 {
	les := slices.Sorted(maps.Keys(a.Buckets))
	for _, le := range les {
		if float64(a.Buckets[le]) >= q*float64(a.Count) {
			return le * 1000
		}
	}
	return math.Inf(1)
}

// MeanMs is the mean time until an audit entry was durable, in ms.
func (a AuditStats) MeanMs() float64 {
	if a.Count == 0 {
		return 0
	}
	return a.Sum / float64(a.Count) * 1000
}

// ScrapeAudit reads the histogram from callvault's plain ops listener.
func ScrapeAudit(opsAddr string) (AuditStats, error) {
	resp, err := http.Get("http://" + opsAddr + "/metrics")
	if err != nil {
		return AuditStats{}, err
	}
	defer resp.Body.Close()
	s := AuditStats{Buckets: map[float64]int64{}}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "callvault_audit_append_seconds_sum "); ok {
			s.Sum, _ = strconv.ParseFloat(v, 64)
		} else if v, ok := strings.CutPrefix(line, "callvault_audit_append_seconds_count "); ok {
			s.Count, _ = strconv.ParseInt(v, 10, 64)
		} else if v, ok := strings.CutPrefix(line, `callvault_audit_append_seconds_bucket{le="`); ok {
			le, n, _ := strings.Cut(v, `"} `)
			bound, err := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
			if err != nil {
				continue
			}
			s.Buckets[bound], _ = strconv.ParseInt(n, 10, 64)
		}
	}
	return s, sc.Err()
}
