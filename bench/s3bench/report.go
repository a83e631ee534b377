package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"callvault/bench/internal/benchstat"
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func pct(d []time.Duration, p float64) time.Duration { return benchstat.Percentile(d, p) }

// over returns the median over repetitions of f.
func (b *bench) over(f func(repResult) float64) float64 {
	xs := make([]float64, len(b.reps))
	for i, r := range b.reps {
		xs[i] = f(r)
	}
	return benchstat.Median(xs)
}

// reference is one reference column of the report.
type reference struct {
	name string
	of   func(repResult) measurement
}

func (b *bench) references() []reference {
	refs := []reference{{"MinIO PUT, SSE-S3", func(r repResult) measurement { return r.sse }}}
	if b.o.plain {
		refs = append(refs, reference{"MinIO PUT, no SSE", func(r repResult) measurement { return r.plain }})
	}
	return refs
}

// report prints the results as markdown.
func (b *bench) report(w io.Writer) {
	end := time.Now().UTC()
	refs := b.references()
	last := b.reps[len(b.reps)-1]

	fmt.Fprintf(w, "## Machine\n\n")
	fmt.Fprintf(w, "- %s\n", b.machine)
	fmt.Fprintf(w, "- MinIO %s, built from source; each server one drive, SSE-S3 with its own built-in key\n", b.o.minioVersion)
	fmt.Fprintf(w, "- %s–%s UTC; load average at start %s, per repetition below\n", b.started.Format("2006-01-02 15:04"), end.Format("15:04"), b.loadStart)
	fmt.Fprintf(w, "- %d recordings of %d bytes (2-channel G.711 μ-law WAV, 8 kHz, %d s), %d in flight, %d repetitions; medians over repetitions\n\n",
		len(b.files), b.files[0].Size, b.o.seconds, b.o.clients, len(b.reps))

	fmt.Fprintf(w, "## Upload to two S3 sites\n\n")
	fmt.Fprintf(w, "callvault: `serve --dev --site-a/--site-b` on one bucket of each MinIO server; %d mutual-TLS clients upload through the API. "+
		"References: minio-go PUTs each plaintext file to both servers at once (one PUT, Content-MD5, If-None-Match: *, COMPLIANCE until the same date as callvault's), %d files in flight. "+
		"recordings/s = n / wall time. Ratios are callvault / reference.\n\n", b.o.clients, b.o.clients)
	head, rule := "| measurement | callvault |", "|---|---|"
	for _, ref := range refs {
		head += " " + ref.name + " | ratio |"
		rule += "---|---|"
	}
	fmt.Fprintf(w, "%s\n%s\n", head, rule)
	row := func(name string, prec int, f func(measurement) float64) {
		cv := b.over(func(r repResult) float64 { return f(r.cv) })
		fmt.Fprintf(w, "| %s | %.*f |", name, prec, cv)
		for _, ref := range refs {
			v := b.over(func(r repResult) float64 { return f(ref.of(r)) })
			fmt.Fprintf(w, " %.*f | %s |", prec, v, ratio(cv, v))
		}
		fmt.Fprintln(w)
	}
	text := func(name string, f func(measurement) string) {
		fmt.Fprintf(w, "| %s | %s |", name, f(last.cv))
		for _, ref := range refs {
			fmt.Fprintf(w, " %s | |", f(ref.of(last)))
		}
		fmt.Fprintln(w)
	}
	row("recordings/s (files/s)", 1, measurement.perSec)
	row("MB/s (plaintext)", 0, measurement.mbps)
	row("latency p50 per recording, ms", 1, func(m measurement) float64 { return ms(pct(m.lat, 50)) })
	row("latency p99 per recording, ms", 1, func(m measurement) float64 { return ms(pct(m.lat, 99)) })
	row("CPU ms per recording, all processes (driver + servers)", 1, func(m measurement) float64 { return m.perFile(m.cpu()) })
	row("… callvault", 1, func(m measurement) float64 { return m.perFile(m.cv.cpu) })
	row("… both MinIO servers", 1, func(m measurement) float64 { return m.perFile(m.minio.cpu) })
	row("… driver (clients)", 1, func(m measurement) float64 { return m.perFile(m.driver) })
	row("storage writes per recording, MB: both MinIO servers", 2, func(m measurement) float64 { return float64(m.minio.write) / 1e6 / float64(m.n) })
	row("storage writes per recording, MB: callvault", 3, func(m measurement) float64 { return float64(m.cv.write) / 1e6 / float64(m.n) })
	text("S3 requests per recording, both servers (last repetition)", measurement.requestsPerFile)
	aud := b.over(func(r repResult) float64 { return r.cv.audit.MeanMs() })
	aud99 := b.over(func(r repResult) float64 { return r.cv.audit.QuantileMs(0.99) })
	audN := b.over(func(r repResult) float64 { return float64(r.cv.audit.Count) })
	fmt.Fprintf(w, "| callvault audit append until durable, mean / p99 ≤ ms (%.0f appends) | %.2f / %.1f |%s\n", audN, aud, aud99, strings.Repeat(" | |", len(refs)))

	fmt.Fprintf(w, "\nPer repetition, recordings/s (CPUs busy %%, of which outside the benchmark's processes %%):\n\n")
	head, rule = "| rep | load before → after | order | callvault |", "|---|---|---|---|"
	for _, ref := range refs {
		head += " " + ref.name + " |"
		rule += "---|"
	}
	fmt.Fprintf(w, "%s\n%s\n", head, rule)
	cell := func(m measurement) string {
		return fmt.Sprintf("%.1f (%.0f%%, %.0f%%)", m.perSec(), 100*m.load.Busy, 100*m.load.Other)
	}
	for i, r := range b.reps {
		fmt.Fprintf(w, "| %d | %s → %s | %s | %s |", i+1, r.loadBefore, r.loadAfter, strings.Join(r.order, ", "), cell(r.cv))
		for _, ref := range refs {
			fmt.Fprintf(w, " %s |", cell(ref.of(r)))
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintf(w, "\nRead back after each step of the last repetition:\n\n- callvault: %s\n", last.cv.check)
	for _, ref := range refs {
		fmt.Fprintf(w, "- %s (first file): %s\n", ref.name, ref.of(last).check)
	}
}

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a/b)
}
