package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// benchName matches a result line's name and -GOMAXPROCS suffix.
var benchName = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?$`)

// benchResults maps benchmark name → unit → values, one per run.
type benchResults map[string]map[string][]float64

func parseBench(r io.Reader) (benchResults, error) {
	res := benchResults{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		m := benchName.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		units := res[m[1]]
		if units == nil {
			units = map[string][]float64{}
			res[m[1]] = units
		}
		for i := 2; i+1 < len(f); i += 2 { // f[1] is the iteration count
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchstat: %q: %w", sc.Text(), err)
			}
			units[f[i+1]] = append(units[f[i+1]], v)
		}
	}
	return res, sc.Err()
}

func (r benchResults) med(name, unit string) (float64, error) {
	v := r[name][unit]
	if len(v) == 0 {
		return 0, fmt.Errorf("benchstat: no %s for %s", unit, name)
	}
	return median(v), nil
}

// benchStat prints the medians and ratios of internal/audit's benchmarks
// (go test ./internal/audit -run '^$' -bench . -count N) as markdown.
func benchStat(in io.Reader, w io.Writer) error {
	res, err := parseBench(in)
	if err != nil {
		return err
	}
	const (
		sqlite = "BenchmarkRawSQLiteInsert"
		fsync  = "BenchmarkRawFsync"
		verify = "BenchmarkVerify"
		sha    = "BenchmarkRawSHA256"
	)
	get := func(name, unit string) float64 {
		if err != nil {
			return 0
		}
		var v float64
		v, err = res.med(name, unit)
		return v
	}
	txns, fsyncs := get(sqlite, "txns/s"), get(fsync, "fsyncs/s")
	verifyRate := get(verify, "entries/s")
	shaMB, shaCalls, entryBytes := get(sha, "MB/s"), get(sha, "sha256-calls/s"), get(sha, "entry-bytes")
	type row struct {
		writers int
		rate    float64
	}
	var rows []row
	for _, wr := range []int{1, 16, 256} {
		rows = append(rows, row{wr, get(fmt.Sprintf("BenchmarkAppend/writers=%d", wr), "entries/s")})
	}
	if err != nil {
		return err
	}
	runs := len(res[sqlite]["txns/s"])
	if runs < 2 {
		return errors.New("benchstat: want -count of at least 2")
	}
	fmt.Fprintf(w, "| measurement (median of %d runs) | value | vs raw SQLite INSERT txns/s (%.0f) | vs raw 4 KiB write + fsync /s (%.0f) |\n|---|---|---|---|\n", runs, txns, fsyncs)
	for _, r := range rows {
		s := "s"
		if r.writers == 1 {
			s = ""
		}
		fmt.Fprintf(w, "| durable appends/s, %d writer%s | %.0f | %.2f | %.2f |\n", r.writers, s, r.rate, r.rate/txns, r.rate/fsyncs)
	}
	fmt.Fprintf(w, "| raw SQLite INSERT transactions/s, 1 writer | %.0f | 1 | %.2f |\n", txns, txns/fsyncs)
	fmt.Fprintf(w, "| raw 4 KiB write + fsync /s | %.0f | | 1 |\n\n", fsyncs)
	shaEntries := shaCalls / 2
	fmt.Fprintf(w, "| measurement (median of %d runs) | value | reference: raw SHA-256, 2 calls per entry | value | ratio |\n|---|---|---|---|---|\n", runs)
	fmt.Fprintf(w, "| Verify of a %d-entry log, entries/s | %.0f | entries/s | %.0f | %.3f |\n", verifyEntries, verifyRate, shaEntries, verifyRate/shaEntries)
	fmt.Fprintf(w, "| | | SHA-256 calls/s | %.0f | |\n", shaCalls)
	fmt.Fprintf(w, "| | | MB/s (a %.0f-byte entry and a 65-byte node) | %.0f | |\n\n", entryBytes, shaMB)

	fmt.Fprintf(w, "Every run (the figure above, per run):\n\n| benchmark | unit | runs |\n|---|---|---|\n")
	for _, b := range []struct{ name, unit string }{
		{"BenchmarkAppend/writers=1", "entries/s"}, {"BenchmarkAppend/writers=16", "entries/s"}, {"BenchmarkAppend/writers=256", "entries/s"},
		{sqlite, "txns/s"}, {fsync, "fsyncs/s"}, {verify, "entries/s"}, {sha, "MB/s"},
	} {
		var vs []string
		for _, v := range res[b.name][b.unit] {
			vs = append(vs, strconv.FormatFloat(v, 'f', 0, 64))
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", strings.TrimPrefix(b.name, "Benchmark"), b.unit, strings.Join(vs, ", "))
	}
	return nil
}

// verifyEntries is the log size of BenchmarkVerify (internal/audit/bench_test.go).
const verifyEntries = 4096
