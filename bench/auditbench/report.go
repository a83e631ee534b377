package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// report prints the results as markdown.
func (b *bench) report(w io.Writer) {
	fmt.Fprintf(w, "### Setup\n\n")
	fmt.Fprintf(w, "- %s\n", machineLine())
	fmt.Fprintf(w, "- load average at end: %s\n", loadavg())
	reached := "the planned size"
	if b.size < b.o.n {
		reached = fmt.Sprintf("**not the planned %d: generation stopped at the %v limit**", b.o.n, b.o.genLimit)
	}
	fmt.Fprintf(w, "- log: **%d entries** (%s), appended in %v through `audit.Log.Append` by %d goroutines (group commit, at most 512 entries a transaction), mean %.0f entries/s; checkpoints by the production policy (every 1,000 entries or 60 s): %d stored\n",
		b.size, reached, b.genWall.Round(time.Second), b.o.writers, float64(b.size)/b.genWall.Seconds(), b.checkpoints)
	fmt.Fprintf(w, "- database + WAL after generation: %.2f GB; stored entries: mean %.0f bytes, %d stored hashes (%.3f per entry)\n",
		float64(b.chunks[len(b.chunks)-1].dbBytes)/1e9, float64(b.scan.entryBytes)/float64(b.scan.entries), b.scan.stored, float64(b.scan.stored)/float64(b.scan.entries))
	fmt.Fprintf(w, "- events: 96 %% about a patient; bulk patients `99xxxxxxxxxx` (%d of them, ~10 events each); tracked: %s\n\n",
		b.pop.bulk, b.trackedText())

	fmt.Fprintf(w, "### Appends while generating (durable, %d concurrent writers)\n\n", b.o.writers)
	fmt.Fprint(w, appendRateTable(b.chunks))
	fmt.Fprintf(w, "\nAppend times are per call, from a 1-in-64 sample for the p99. \"machine busy (other)\": share of both CPUs busy, and busy outside auditbench (e.g. kernel writeback).\n\n")

	b.reportVerify(w)
	b.reportExtracts(w)
}

func (b *bench) trackedText() string {
	var s []string
	for _, t := range b.pop.tracked {
		s = append(s, fmt.Sprintf("%s with %d events", t.pnr, t.written))
	}
	return strings.Join(s, ", ")
}

func (b *bench) reportVerify(w io.Writer) {
	n := float64(b.size)
	// What Verify hashes: every stored entry once as a leaf (0x00 ‖ entry)
	// and one inner node (65 bytes) per stored subtree hash.
	nodes := b.scan.stored - b.scan.entries
	vBytes := float64(b.scan.entryBytes+b.scan.entries) + 65*float64(nodes)
	vCalls := float64(b.scan.stored)
	var vRate, vMB, vCallRate, sRate, sMB, sCallRate, qRate []float64
	for _, r := range b.verifies {
		vRate = append(vRate, n/r.verify.Seconds())
		vMB = append(vMB, vBytes/1e6/r.verify.Seconds())
		vCallRate = append(vCallRate, vCalls/r.verify.Seconds())
		sRate = append(sRate, n/r.sha.Seconds())
		sMB = append(sMB, float64(r.shaRes.bytes)/1e6/r.sha.Seconds())
		sCallRate = append(sCallRate, float64(r.shaRes.calls)/r.sha.Seconds())
		qRate = append(qRate, n/r.scan.Seconds())
	}
	fmt.Fprintf(w, "### Verify: %d entries (medians of %d repetitions)\n\n", b.size, len(b.verifies))
	fmt.Fprintf(w, "| measurement | audit.Log.Verify | reference | value | ratio |\n|---|---|---|---|---|\n")
	fmt.Fprintf(w, "| entries/s | %.0f | raw SHA-256, the same calls on entries in memory | %.0f | %.2f |\n", median(vRate), median(sRate), median(vRate)/median(sRate))
	fmt.Fprintf(w, "| SHA-256 calls/s | %.0f | raw SHA-256 | %.0f | %.2f |\n", median(vCallRate), median(sCallRate), median(vCallRate)/median(sCallRate))
	fmt.Fprintf(w, "| MB/s hashed | %.0f | raw SHA-256 | %.0f | %.2f |\n", median(vMB), median(sMB), median(vMB)/median(sMB))
	fmt.Fprintf(w, "| entries/s | %.0f | the same SELECT alone (rows read, nothing checked) | %.0f | %.2f |\n", median(vRate), median(qRate), median(vRate)/median(qRate))
	fmt.Fprintf(w, "| time for the whole log, s | %.1f | raw SHA-256 / SELECT alone | %.1f / %.1f | |\n\n",
		median(secs(b.verifies, func(r verifyRep) time.Duration { return r.verify })),
		median(secs(b.verifies, func(r verifyRep) time.Duration { return r.sha })),
		median(secs(b.verifies, func(r verifyRep) time.Duration { return r.scan })))
	fmt.Fprintf(w, "SHA-256 calls per entry: %.3f (Verify) and %.3f (reference); bytes hashed per entry: %.0f and %.0f.\n\n",
		vCalls/n, float64(b.verifies[0].shaRes.calls)/n, vBytes/n, float64(b.verifies[0].shaRes.bytes)/n)
	fmt.Fprintf(w, "| rep | Verify s | raw SHA-256 s | SELECT alone s |\n|---|---|---|---|\n")
	for i, r := range b.verifies {
		fmt.Fprintf(w, "| %d | %.1f | %.1f | %.1f |\n", i+1, r.verify.Seconds(), r.sha.Seconds(), r.scan.Seconds())
	}
	if p := b.probe; p != nil {
		pn := float64(p.size)
		fmt.Fprintf(w, "\nScaling: at %d entries (one run of each, during generation) Verify did %.0f entries/s, raw SHA-256 %.0f, the SELECT alone %.0f (ratios %.2f and %.2f); at %d entries %.0f, %.0f and %.0f.\n",
			p.size, pn/p.verify.Seconds(), pn/p.sha.Seconds(), pn/p.scan.Seconds(), p.sha.Seconds()/p.verify.Seconds(), p.scan.Seconds()/p.verify.Seconds(),
			b.size, median(vRate), median(sRate), median(qRate))
	}
	fmt.Fprintln(w)
}

func secs(rs []verifyRep, f func(verifyRep) time.Duration) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r).Seconds()
	}
	return out
}

func (b *bench) reportExtracts(w io.Writer) {
	fmt.Fprintf(w, "### Patient log extract at %d entries\n\n", b.size)
	fmt.Fprintf(w, "Query plan of `%s`: %s.\n", patientQuery, b.plan)
	fmt.Fprintf(w, "\n| patient (events) | method | samples | p50 ms | p99 ms | p50 ratio | p99 ratio |\n|---|---|---|---|---|---|---|\n")
	for _, lt := range b.extracts {
		ev := fmt.Sprintf("%d", lt.events[0])
		if len(lt.events) > 1 {
			s := slices.Clone(lt.events)
			slices.Sort(s)
			ev = fmt.Sprintf("%d–%d, median %d", s[0], s[len(s)-1], s[len(s)/2])
		}
		ref50, ref99 := pct(lt.times[0], 50), pct(lt.times[0], 99)
		for mi, ts := range lt.times {
			name := b.methods[mi].name
			if mi == 2 {
				name = fmt.Sprintf("%s (%d entries)", name, lt.entries)
			}
			p50, p99 := pct(ts, 50), pct(ts, 99)
			if mi == 0 {
				fmt.Fprintf(w, "| %s (%s) | %s | %d | %.3f | %.3f | reference | reference |\n", lt.class, ev, name, len(ts), ms(p50), ms(p99))
				continue
			}
			fmt.Fprintf(w, "| | %s | %d | %.3f | %.3f | %.2f | %.2f |\n", name, len(ts), ms(p50), ms(p99),
				float64(p50)/float64(ref50), float64(p99)/float64(ref99))
		}
	}
	fmt.Fprintf(w, "\nratio = method ÷ raw indexed query (the same SELECT, rows read, nothing decoded), same patient, same run; the methods' order rotates between samples.\n")
}
