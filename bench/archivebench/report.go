package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"callvault/bench/internal/benchstat"
)

// machine describes where the benchmark ran.
type machine struct {
	cpus     int
	model    string
	memGiB   float64
	kernel   string
	goVer    string
	loadInit string
}

func describeMachine() machine {
	m := machine{cpus: runtime.NumCPU(), goVer: runtime.Version(), loadInit: loadavg(), model: "?", kernel: "?"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				m.memGiB = kb / (1 << 20)
			}
		}
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		m.kernel = utsString(u.Release[:])
	}
	return m
}

func utsString(b []int8) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		s.WriteByte(byte(c))
	}
	return s.String()
}

func medianDur(d []time.Duration) time.Duration { return pct(d, 50) }

func median(xs []float64) float64 { return benchstat.Median(xs) }

func (b *bench) over(f func(repResult) float64) float64 {
	xs := make([]float64, len(b.reps))
	for i, r := range b.reps {
		xs[i] = f(r)
	}
	return median(xs)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// report prints the results as markdown.
func (b *bench) report(w io.Writer) {
	m := b.machine
	fmt.Fprintf(w, "## Machine\n\n")
	fmt.Fprintf(w, "- %d CPUs (nproc), %s; %.1f GiB memory; Linux %s; %s\n", m.cpus, m.model, m.memGiB, m.kernel, m.goVer)
	fmt.Fprintf(w, "- load average at start: %s; per repetition below\n", m.loadInit)
	fmt.Fprintf(w, "- %d recordings of %d bytes (2-channel G.711 μ-law WAV, 8 kHz, %d s), %d repetitions; medians over repetitions\n\n",
		len(b.files), b.files[0].Size, b.o.seconds, len(b.reps))

	kind := "hybrid ML-KEM-768 + X25519 (age-keygen -pq)"
	if !b.ageKeyPQ {
		kind = "X25519 (this age-keygen has no -pq)"
	}
	c := b.o.uploadClients
	fmt.Fprintf(w, "## Upload\n\n")
	fmt.Fprintf(w, "Reference: age CLI, recipient %s, each file encrypted twice (one process to site-a/, then one to site-b/); \"+ fsync\": the driver then fsyncs both outputs and their directories in parallel. "+
		"1 client: callvault (one keep-alive client), age and age + fsync take turns file by file, recordings/s = n / sum of latencies. "+
		"%d clients: each system alone, %d uploads (age: %d files) at a time, recordings/s = n / wall time. Ratios are callvault / reference.\n\n", kind, c, c, c)
	fmt.Fprintf(w, "| measurement | callvault | age | ratio | age + fsync | ratio |\n|---|---|---|---|---|---|\n")
	for k, clients := range []int{1, c} {
		label := fmt.Sprintf("%d client", clients)
		if clients > 1 {
			label += "s"
		}
		cvR := b.over(func(r repResult) float64 { return r.upCV[k].perSec() })
		agR := b.over(func(r repResult) float64 { return r.upAge[k].perSec() })
		asR := b.over(func(r repResult) float64 { return r.upAgeSync[k].perSec() })
		fmt.Fprintf(w, "| %s: recordings/s | %.1f | %.1f | %.2f | %.1f | %.2f |\n", label, cvR, agR, cvR/agR, asR, cvR/asR)
		cvM := b.over(func(r repResult) float64 { return r.upCV[k].mbps() })
		agM := b.over(func(r repResult) float64 { return r.upAge[k].mbps() })
		asM := b.over(func(r repResult) float64 { return r.upAgeSync[k].mbps() })
		fmt.Fprintf(w, "| %s: MB/s (plaintext) | %.0f | %.0f | %.2f | %.0f | %.2f |\n", label, cvM, agM, cvM/agM, asM, cvM/asM)
		cvL := b.over(func(r repResult) float64 { return ms(medianDur(r.upCV[k].lat)) })
		agL := b.over(func(r repResult) float64 { return ms(medianDur(r.upAge[k].lat)) })
		asL := b.over(func(r repResult) float64 { return ms(medianDur(r.upAgeSync[k].lat)) })
		fmt.Fprintf(w, "| %s: latency p50 per recording, ms | %.1f | %.1f | %.2f | %.1f | %.2f |\n", label, cvL, agL, cvL/agL, asL, cvL/asL)
		cvC := b.over(func(r repResult) float64 { return ms(r.upCV[k].cpu) / float64(r.upCV[k].n) })
		agC := b.over(func(r repResult) float64 { return ms(r.upAge[k].cpu) / float64(r.upAge[k].n) })
		asC := b.over(func(r repResult) float64 { return ms(r.upAgeSync[k].cpu) / float64(r.upAgeSync[k].n) })
		fmt.Fprintf(w, "| %s: CPU ms per recording (server / age processes) | %.1f | %.1f | %.2f | %.1f | %.2f |\n", label, cvC, agC, cvC/agC, asC, cvC/asC)
		aud := b.over(func(r repResult) float64 { return r.upCV[k].audit.MeanMs() })
		aud99 := b.over(func(r repResult) float64 { return r.upCV[k].audit.QuantileMs(0.99) })
		audN := b.over(func(r repResult) float64 { return float64(r.upCV[k].audit.Count) })
		fmt.Fprintf(w, "| %s: audit append until durable, mean / p99 ≤ ms (%.0f appends) | %.2f / %.1f | | | | |\n", label, audN, aud, aud99)
	}
	fmt.Fprintf(w, "\nPer repetition, recordings/s (CPUs busy %%, of which outside the benchmark's processes %%) of callvault / age / age + fsync:\n\n| rep | load before → after | order of the concurrent steps | 1 client | %d clients |\n|---|---|---|---|---|\n", c)
	cell := func(t throughput) string {
		return fmt.Sprintf("%.1f (%.0f%%, %.0f%%)", t.perSec(), 100*t.load.busy, 100*t.load.other)
	}
	for i, r := range b.reps {
		order := "references first"
		if r.cvFirst {
			order = "callvault first"
		}
		fmt.Fprintf(w, "| %d | %s → %s | %s | %s / %s / %s | %s / %s / %s |\n", i+1, r.loadBefore, r.loadAfter, order,
			cell(r.upCV[0]), cell(r.upAge[0]), cell(r.upAgeSync[0]), cell(r.upCV[1]), cell(r.upAge[1]), cell(r.upAgeSync[1]))
	}

	fmt.Fprintf(w, "\n## Playback\n\n")
	fmt.Fprintf(w, "%d clients × %d full GETs (each client its own keep-alive TLS 1.3 connection, opened by one untimed 1-byte Range GET). Reference: net/http + http.ServeFile of the plaintext WAV files, same TLS config (httpapi.TLSConfig), same client.\n\n", b.o.playClients, b.o.playGets)
	fmt.Fprintf(w, "| measurement | callvault | reference | ratio |\n|---|---|---|---|\n")
	row := func(name string, f func(playResult) float64, prec int) {
		cv := b.over(func(r repResult) float64 { return f(r.playCV) })
		ref := b.over(func(r repResult) float64 { return f(r.playRef) })
		fmt.Fprintf(w, "| %s | %.*f | %.*f | %.2f |\n", name, prec, cv, prec, ref, cv/ref)
	}
	row("time to first byte p50, ms", func(p playResult) float64 { return ms(pct(p.ttfb, 50)) }, 1)
	row("time to first byte p99, ms", func(p playResult) float64 { return ms(pct(p.ttfb, 99)) }, 1)
	row("full GET p50, ms", func(p playResult) float64 { return ms(pct(p.total, 50)) }, 1)
	row("full GET p99, ms", func(p playResult) float64 { return ms(pct(p.total, 99)) }, 1)
	row("throughput, MB/s", playResult.mbps, 0)
	row("GETs/s", func(p playResult) float64 { return float64(p.gets) / p.wall.Seconds() }, 1)
	row("server CPU s per GB served", func(p playResult) float64 { return p.cpu.Seconds() / (float64(p.bytes) / 1e9) }, 2)
	aud := b.over(func(r repResult) float64 { return r.playCV.audit.MeanMs() })
	aud50 := b.over(func(r repResult) float64 { return r.playCV.audit.QuantileMs(0.5) })
	aud99 := b.over(func(r repResult) float64 { return r.playCV.audit.QuantileMs(0.99) })
	fmt.Fprintf(w, "| callvault audit append until durable: mean / p50 ≤ / p99 ≤ ms | %.1f / %.0f / %.0f | | |\n", aud, aud50, aud99)
	fmt.Fprintf(w, "\nPer repetition, TTFB p50 / p99 ms, MB/s (CPUs busy %%, of which outside the benchmark's processes %%):\n\n| rep | load before → after | order | callvault | reference |\n|---|---|---|---|---|\n")
	pcell := func(p playResult) string {
		return fmt.Sprintf("%.1f / %.1f, %.0f (%.0f%%, %.0f%%)", ms(pct(p.ttfb, 50)), ms(pct(p.ttfb, 99)), p.mbps(), 100*p.load.busy, 100*p.load.other)
	}
	for i, r := range b.reps {
		order := "reference first"
		if r.cvFirst {
			order = "callvault first"
		}
		fmt.Fprintf(w, "| %d | %s → %s | %s | %s | %s |\n", i+1, r.loadBefore, r.loadAfter, order, pcell(r.playCV), pcell(r.playRef))
	}

	fmt.Fprintf(w, "\n## Component costs (same run, medians)\n\n| step | time |\n|---|---|\n")
	fmt.Fprintf(w, "| append 4 KiB + fsync (an SQLite commit's floor) | %.2f ms |\n", ms(b.comp.fsync4K))
	fmt.Fprintf(w, "| write a %d-byte blob to two files in parallel, fsync each and its directory | %.1f ms |\n", b.comp.callBytes, ms(b.comp.fsyncCall))
	fmt.Fprintf(w, "| seal.Wrap to a hybrid ML-KEM-768 + X25519 recipient | %.3f ms |\n", ms(b.comp.wrap))
	fmt.Fprintf(w, "| seal.Unwrap with the hybrid identity | %.3f ms |\n", ms(b.comp.unwrap))
	fmt.Fprintf(w, "| write into the page cache (no fsync), memory new to the page cache | %.0f MB/s |\n", b.comp.pageFreshMBps)
	fmt.Fprintf(w, "| write into the page cache (no fsync), memory just freed by deleting those files | %.0f MB/s |\n", b.comp.pageReusedMBps)
}

// benchLine matches a go test -bench result line with a MB/s column.
var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+[\d.]+ ns/op\s+([\d.]+) MB/s`)

// sealStat reads `go test ./internal/seal -bench . -count N` output and
// prints the median MB/s of each benchmark and the seal/raw ratios.
func sealStat(r io.Reader, w io.Writer) error {
	mbps := map[string][]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return err
		}
		mbps[m[1]] = append(mbps[m[1]], v)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	names := []string{"BenchmarkSealEncrypt", "BenchmarkSealDecryptReaderAt", "BenchmarkRawAESGCM", "BenchmarkRawChaCha20Poly1305"}
	med := map[string]float64{}
	for _, n := range names {
		if len(mbps[n]) == 0 {
			return fmt.Errorf("sealstat: no results for %s", n)
		}
		med[n] = median(mbps[n])
	}
	if len(mbps[names[0]]) < 2 {
		return errors.New("sealstat: want -count of at least 2")
	}
	fmt.Fprintf(w, "| measurement (MB/s, median of %d) | value | vs AES-256-GCM Seal %.0f MB/s | vs ChaCha20-Poly1305 Seal %.0f MB/s |\n|---|---|---|---|\n",
		len(mbps[names[0]]), med[names[2]], med[names[3]])
	for _, n := range names[:2] {
		fmt.Fprintf(w, "| %s | %.0f | %.2f | %.2f |\n", strings.TrimPrefix(n, "Benchmark"), med[n], med[n]/med[names[2]], med[n]/med[names[3]])
	}
	for _, n := range names[2:] {
		fmt.Fprintf(w, "| %s | %.0f | | |\n", strings.TrimPrefix(n, "Benchmark"), med[n])
	}
	return nil
}
