package archive

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the archive's Prometheus collectors. Labels carry action
// names and outcomes only, never identifiers of people or recordings.
// A nil *Metrics is valid and records nothing.
type Metrics struct {
	decisions   *prometheus.CounterVec
	ingests     *prometheus.CounterVec
	ingestBytes prometheus.Counter
	auditAppend prometheus.Histogram
	auditFail   prometheus.Counter
	pending     prometheus.Gauge
	repairs     *prometheus.CounterVec
	deletions   prometheus.Counter
	scrubCopies *prometheus.CounterVec
	scrubBytes  prometheus.Counter
	scrubLast   prometheus.Gauge
	lost        prometheus.Gauge
	captures    *prometheus.CounterVec
	worm        *prometheus.GaugeVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callvault_decisions_total", Help: "Audited decisions by action and outcome.",
		}, []string{"action", "outcome"}),
		ingests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callvault_ingest_total", Help: "Ingest attempts that passed the policy, by result (stored, failed, duplicate: a migrated source file stored already).",
		}, []string{"result"}),
		ingestBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callvault_ingest_audio_bytes_total", Help: "Plaintext audio bytes of stored recordings.",
		}),
		auditAppend: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "callvault_audit_append_seconds", Help: "Time until an audit entry was durable.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		auditFail: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callvault_audit_append_failures_total", Help: "Audit appends that failed (requests refused).",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "callvault_replication_pending", Help: "Blob copies waiting for repair to a site (replication backlog).",
		}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callvault_replication_repairs_total", Help: "Repair attempts of missing blob copies, by result.",
		}, []string{"result"}),
	}
	m.deletions = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "callvault_recordings_deleted_total", Help: "Recordings deleted (key destroyed, tombstone written) by an IVO decision or disposal.",
	})
	m.scrubCopies = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callvault_scrub_findings_total", Help: "Scrub results: blob copies checked (checked), repaired, recordings lost, orphans removed.",
	}, []string{"result"})
	m.scrubBytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "callvault_scrub_bytes_total", Help: "Bytes of blob copies read and verified by scrub passes."})
	m.scrubLast = prometheus.NewGauge(prometheus.GaugeOpts{Name: "callvault_scrub_last_completed_seconds", Help: "Unix time of the last completed scrub pass."})
	m.lost = prometheus.NewGauge(prometheus.GaugeOpts{Name: "callvault_recordings_lost", Help: "Recordings with no stored copy that passes its integrity check (not served)."})
	m.captures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callvault_capture_sessions_total",
		Help: "Live capture sessions by outcome: accepted when they begin; stored, incomplete, cancelled or failed (nothing stored: an alert) when they end.",
	}, []string{"outcome"})
	m.worm = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "callvault_site_worm",
		Help: "1 if the site's last WORM canary showed that it enforces Object Lock, else 0 (not enforced: an alert; or unsupported, unknown).",
	}, []string{"site"})
	for _, o := range []string{"accepted", "stored", "incomplete", "cancelled", "failed"} {
		m.captures.WithLabelValues(o)
	}
	reg.MustRegister(m.captures, m.decisions, m.ingests, m.ingestBytes, m.auditAppend, m.auditFail, m.pending, m.repairs, m.deletions,
		m.scrubCopies, m.scrubBytes, m.scrubLast, m.lost, m.worm)
	return m
}

func (m *Metrics) decision(action, outcome string) {
	if m == nil || outcome == "" {
		return
	}
	m.decisions.WithLabelValues(action, outcome).Inc()
}

func (m *Metrics) observeAudit(d time.Duration, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.auditFail.Inc()
		return
	}
	m.auditAppend.Observe(d.Seconds())
}

func (m *Metrics) ingest(result string, bytes int64) {
	if m == nil {
		return
	}
	m.ingests.WithLabelValues(result).Inc()
	m.ingestBytes.Add(float64(bytes))
}

func (m *Metrics) pendingAdded(n int) {
	if m != nil {
		m.pending.Add(float64(n))
	}
}

func (m *Metrics) setPending(n int) {
	if m != nil {
		m.pending.Set(float64(n))
	}
}

func (m *Metrics) repaired(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.repairs.WithLabelValues("ok").Inc()
	} else {
		m.repairs.WithLabelValues("failed").Inc()
	}
}

func (m *Metrics) deleted() {
	if m != nil {
		m.deletions.Inc()
	}
}

func (m *Metrics) scrubbed(r *ScrubReport) {
	if m == nil {
		return
	}
	m.scrubCopies.WithLabelValues("checked").Add(float64(r.Copies))
	m.scrubCopies.WithLabelValues("repaired").Add(float64(r.Repaired))
	m.scrubCopies.WithLabelValues("lost").Add(float64(r.Lost))
	m.scrubCopies.WithLabelValues("orphan").Add(float64(r.Orphans))
	m.scrubBytes.Add(float64(r.Bytes))
	m.scrubLast.SetToCurrentTime()
}

func (m *Metrics) setLost(n int) {
	if m != nil {
		m.lost.Set(float64(n))
	}
}

func (m *Metrics) capture(outcome string) {
	if m == nil {
		return
	}
	m.captures.WithLabelValues(outcome).Inc()
}
