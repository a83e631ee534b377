package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"callvault/bench/internal/benchstat"
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (b *bench) report(w io.Writer) {
	fmt.Fprintf(w, "- run: %s – %s UTC; %s; load average at start %s, at end %s\n",
		b.start.UTC().Format("2006-01-02 15:04"), time.Now().UTC().Format("15:04"), benchstat.Machine(), b.loadStart, b.loadEnd)
	fmt.Fprintf(w, "- %d entries per table over %d years (one every %.1f s); %d bulk patients, %d entries without a patient; test patients with %d, %d and %d events\n",
		b.o.n, years, float64(b.step)/1e9, b.o.bulk, b.pop.Without(), b.pop.Tracked[0].Count, b.pop.Tracked[1].Count, b.pop.Tracked[2].Count)
	fmt.Fprintf(w, "- load by COPY (not timed below): `audit_log` %v, `audit_log_monthly` (%d partitions) %v; indexes built after: %v and %v\n",
		b.load.Round(time.Second), b.partitions, b.loadMonthly.Round(time.Second), b.indexes.Round(time.Second), b.indexesMonthly.Round(time.Second))
	fmt.Fprintf(w, "- size with indexes: `audit_log` %.2f GB, `audit_log_monthly` %.2f GB\n", float64(b.sizes[0])/1e9, float64(b.sizes[1])/1e9)
	fmt.Fprintf(w, "- PostgreSQL settings added: `%s`\n", strings.TrimRight(strings.ReplaceAll(b.o.pgConf, "\n", "; "), "; "))
	if b.coldDropped {
		fmt.Fprintln(w, "- cold: PostgreSQL restarted and the page cache dropped before the cold phase")
	} else {
		fmt.Fprintln(w, "- cold: **caches not dropped** (not root)")
	}
	for _, p := range b.plans {
		fmt.Fprintf(w, "- plan: %s\n", p)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| query | timed per table | mean rows | one table p50 ms | monthly p50 ms | one table p99 ms | monthly p99 ms | p50 ratio | p99 ratio |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, ph := range b.phases {
		a, m := ph.t.D[0], ph.t.D[1]
		ap50, ap99 := benchstat.Percentile(a, 50), benchstat.Percentile(a, 99)
		mp50, mp99 := benchstat.Percentile(m, 50), benchstat.Percentile(m, 99)
		fmt.Fprintf(w, "| %s | %d | %.1f | %.3f | %.3f | %.3f | %.3f | %.2f | %.2f |\n",
			ph.name, len(a), ph.t.MeanRows(),
			ms(ap50), ms(mp50), ms(ap99), ms(mp99), ms(mp50)/ms(ap50), ms(mp99)/ms(ap99))
	}
	fmt.Fprintln(w)
}
