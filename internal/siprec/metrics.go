package siprec

import "github.com/prometheus/client_golang/prometheus"

// metrics of the recording server. Labels carry outcomes only, never
// identifiers of calls, people or recordings.
type metrics struct {
	sessions       *prometheus.CounterVec
	refused        *prometheus.CounterVec
	packets        *prometheus.CounterVec
	pauses         *prometheus.CounterVec
	sealed         prometheus.Counter
	metadataErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, active func() int) *metrics {
	m := &metrics{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callvault_siprec_sessions_total",
			Help: "SIPREC sessions by outcome: accepted (answered), stored, incomplete, cancelled."}, []string{"outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callvault_siprec_refused_total",
			Help: "SIPREC requests refused, by reason (unknown-source, unknown-certificate, policy, sdp, body, media, not-siprec, tls-handshake)."}, []string{"reason"}),
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callvault_siprec_rtp_packets_total",
			Help: "RTP packets by result: received, invalid (not RTP or SRTP authentication failed), foreign (not from the session's source); and, counted when a session ends, lost (sequence gaps), late (after the jitter window) and duplicate."}, []string{"result"}),
		pauses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callvault_siprec_pauses_total",
			Help: "Recording pauses and resumes requested by the recording client."}, []string{"action"}),
		sealed: prometheus.NewCounter(prometheus.CounterOpts{Name: "callvault_siprec_sealed_bytes_total",
			Help: "PCM bytes of live calls sealed into spools."}),
		metadataErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "callvault_siprec_metadata_errors_total",
			Help: "Recording metadata bodies that could not be parsed (the call is recorded without them)."}),
	}
	for _, o := range []string{"accepted", "stored", "incomplete", "cancelled"} {
		m.sessions.WithLabelValues(o)
	}
	if reg != nil {
		reg.MustRegister(m.sessions, m.refused, m.packets, m.pauses, m.sealed, m.metadataErrors,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "callvault_siprec_active_sessions",
				Help: "SIPREC sessions being recorded now."}, func() float64 { return float64(active()) }))
	}
	return m
}
