package main

import (
	"fmt"
	"io"
	"time"

	"callvault/bench/internal/benchstat"
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// report prints the run as markdown.
func (b *bench) report(w io.Writer) {
	fmt.Fprintf(w, "### %s: %d recordings\n\n", b.o.engine, b.o.n)
	fmt.Fprintf(w, "- run: %s – %s UTC; %s; load average at start %s, at end %s\n",
		b.start.UTC().Format("2006-01-02 15:04"), b.end.UTC().Format("15:04"), benchstat.Machine(), b.loadAtStart, b.loadAtFinish)
	fmt.Fprintf(w, "- population: %d bulk patients, %d recordings without a patient; test patients with %d, %d and %d recordings\n",
		b.o.bulk, b.pop.Without(), b.pop.Tracked[0].Count, b.pop.Tracked[1].Count, b.pop.Tracked[2].Count)
	fmt.Fprintf(w, "- build (not timed below): load %v, %d secondary indexes built again in %v\n",
		b.build.load.Round(time.Second), len(b.build.dropped), b.build.indexes.Round(time.Second))
	for _, s := range b.sizes {
		fmt.Fprintf(w, "- size: %s\n", s)
	}
	fmt.Fprintf(w, "- plan of the reference: `%s`\n", b.plan)
	if b.srv != nil {
		fmt.Fprintf(w, "- PostgreSQL settings added: `%s`\n", oneLine(b.o.pgConf))
	}
	if b.coldDropped {
		fmt.Fprintf(w, "- cold: page cache dropped (and PostgreSQL restarted) before the phase\n")
	} else {
		fmt.Fprintf(w, "- cold: **caches not dropped** (not root): the cold phase is only a first look\n")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| phase | queries per method | mean rows | reference p50 ms | ByPatient p50 ms | reference p99 ms | ByPatient p99 ms | p50 ratio | p99 ratio |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, ph := range b.phases {
		r, c := ph.t.D[0], ph.t.D[1]
		rp50, rp99 := benchstat.Percentile(r, 50), benchstat.Percentile(r, 99)
		cp50, cp99 := benchstat.Percentile(c, 50), benchstat.Percentile(c, 99)
		fmt.Fprintf(w, "| %s (%s) | %d | %.1f | %.3f | %.3f | %.3f | %.3f | %.2f | %.2f |\n",
			ph.name, ph.desc, len(c), ph.t.MeanRows(),
			ms(rp50), ms(cp50), ms(rp99), ms(cp99), ms(cp50)/ms(rp50), ms(cp99)/ms(rp99))
	}
	fmt.Fprintln(w)
}

func oneLine(s string) string {
	out := []rune{}
	for _, r := range s {
		if r == '\n' {
			r = ';'
		}
		out = append(out, r)
	}
	for len(out) > 0 && out[len(out)-1] == ';' {
		out = out[:len(out)-1]
	}
	return string(out)
}
