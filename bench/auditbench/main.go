// Command auditbench measures the audit log (internal/audit) at scale, each
// figure beside a reference measured in the same run on the same machine,
// and prints the results as markdown for docs/benchmarks.md, "Audit log".
//
// Usage:
//
//	auditbench [flags]                 generate, verify and extract (below)
//	auditbench benchstat < bench.txt   medians and ratios of internal/audit's go test -bench output
//
// The run is self-contained. In a temp dir (-tmp, which must be on the disk
// to measure) it opens a fresh log with a fresh keyring and appends -n
// synthetic events through audit.Log.Append from -writers goroutines, so
// the log's writer group-commits as in production (up to 512 entries per
// transaction), while the production checkpoint policy (a checkpoint per
// 1,000 entries, or per minute) cuts checkpoints. Then it times
//
//   - audit.Log.Verify of the whole log, beside the same SHA-256 calls on
//     entries in memory and beside the same SELECT read alone;
//   - reading all events of one patient with Log.ForPatient (and, built
//     with -tags auditreport, the full auditreport.Extract) for patients
//     with about 10, 100 and 1000 events, beside the indexed query alone.
//
// Generation stops at -gen-limit if -n is not reached by then; everything
// is then measured at the size reached, and the output says so. The temp
// dir, with the database, is removed at the end, also on an error or an
// interrupt.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"callvault/internal/audit"
	"callvault/internal/keys"
	"callvault/internal/sqlitedb"
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "benchstat" {
		err = benchStat(os.Stdin, os.Stdout)
	} else {
		err = run(os.Args[1:], os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "auditbench:", err)
		os.Exit(1)
	}
}

// options are the flags of a run.
type options struct {
	n           int64
	writers     int
	chunk       int64
	probe       int64
	genLimit    time.Duration
	tmpParent   string
	verifyReps  int
	extractReps int
	bulk        int
	profileDir  string
}

// bench holds one run's state and results.
type bench struct {
	o      options
	log    io.Writer
	dbPath string
	kr     *keys.Keyring
	pop    *population

	genStart    time.Time
	genWall     time.Duration
	size        int64 // entries in the log
	chunks      []chunk
	checkpoints int
	probe       *probeResult
	scan        scanResult
	verifies    []verifyRep
	plan        string
	methods     []method
	extracts    []latencies
}

// probeResult is one verify measurement at -probe entries, during
// generation.
type probeResult struct {
	size   int64
	verify time.Duration
	scan   time.Duration
	sha    time.Duration
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run(args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("auditbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Int64Var(&o.n, "n", 10_000_000, "entries to generate")
	fs.IntVar(&o.writers, "writers", 1024, "concurrent appending goroutines during generation (the log commits up to 512 per transaction)")
	fs.Int64Var(&o.chunk, "chunk", 1_000_000, "report the append rate every this many entries")
	fs.Int64Var(&o.probe, "probe", 1_000_000, "also time one Verify when the log has this many entries (0: no probe)")
	fs.DurationVar(&o.genLimit, "gen-limit", 25*time.Minute, "stop generating after this long and measure at the size reached")
	fs.StringVar(&o.tmpParent, "tmp", "", "parent of the run's temp dir (default $TMPDIR); must be on the disk to measure")
	fs.IntVar(&o.verifyReps, "verify-reps", 3, "repetitions of the verify measurement (medians are reported)")
	fs.IntVar(&o.extractReps, "extract-reps", 200, "timed reads of each tracked patient per method")
	fs.IntVar(&o.bulk, "bulk-patients", 200, "distinct bulk patients (about 10 events each) read once each")
	fs.StringVar(&o.profileDir, "cpuprofile-dir", "", "write CPU profiles of generation, one verify and the extracts into this directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.n < 2 || o.writers < 1 || o.chunk < 1 || o.verifyReps < 1 || o.extractReps < 1 || o.bulk < 0 || o.probe < 0 {
		return errors.New("-n must be at least 2; -writers, -chunk, -verify-reps, -extract-reps must be positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	tmp, err := os.MkdirTemp(o.tmpParent, "callvault-auditbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &bench{o: o, log: stderr, dbPath: filepath.Join(tmp, "catalog.db"), pop: newPopulation(o.n)}
	if b.kr, err = keys.Generate(time.Now()); err != nil {
		return err
	}
	if err := b.run(ctx); err != nil {
		return err
	}
	b.report(stdout)
	return nil
}

func (b *bench) run(ctx context.Context) error {
	l, err := audit.Open(ctx, b.dbPath, b.kr)
	if err != nil {
		return err
	}
	defer l.Close()
	raw, err := sqlitedb.Open(ctx, b.dbPath)
	if err != nil {
		return err
	}
	defer raw.Close()

	// The production checkpoint policy, as serve runs it.
	cpCtx, cpStop := context.WithCancel(ctx)
	var cpDone sync.WaitGroup
	cpDone.Go(func() {
		l.RunCheckpoints(cpCtx, audit.CheckpointPolicy{Interval: time.Minute, Entries: 1000}, nil,
			slog.New(slog.DiscardHandler), nil)
	})
	defer func() { cpStop(); cpDone.Wait() }()

	b.logf("generating %d entries with %d writers into %s", b.o.n, b.o.writers, b.dbPath)
	b.genStart = time.Now()
	deadline := b.genStart.Add(b.o.genLimit)
	var pauses time.Duration
	if b.o.probe > 0 && b.o.probe < b.o.n {
		chunks, reached, err := b.generate(ctx, l, 0, b.o.probe, deadline)
		b.chunks = append(b.chunks, chunks...)
		if err != nil {
			return err
		}
		if reached == b.o.probe {
			p0 := time.Now()
			if err := b.runProbe(ctx, l, raw, reached); err != nil {
				return err
			}
			pauses = time.Since(p0)
			deadline = deadline.Add(pauses)
		}
		b.size = reached
	}
	if b.size == 0 || b.size == b.o.probe {
		stopProfile, err := b.profile("generate")
		if err != nil {
			return err
		}
		chunks, reached, err := b.generate(ctx, l, b.size, b.o.n, deadline)
		stopProfile()
		b.chunks = append(b.chunks, chunks...)
		if err != nil {
			return err
		}
		b.size = reached
	}
	b.genWall = time.Since(b.genStart) - pauses
	cpStop()
	cpDone.Wait()
	if _, err := l.Cut(ctx); err != nil { // the last up to 999 entries
		return err
	}
	if n, err := l.Size(ctx); err != nil || n != b.size {
		return fmt.Errorf("log size %d (%v), want %d", n, err, b.size)
	}
	b.logf("generated %d entries in %v (%.0f entries/s); database + WAL %.2f GB", b.size, b.genWall.Round(time.Second),
		float64(b.size)/b.genWall.Seconds(), float64(dbSize(b.dbPath))/1e9)

	// Write back what generation left dirty in the page cache, so that
	// writeback does not run during the first timed reads.
	t0 := time.Now()
	syscall.Sync()
	b.logf("sync after generation: %v", time.Since(t0).Round(time.Millisecond))
	if err := b.runVerify(ctx, l, raw); err != nil {
		return err
	}
	return b.runExtracts(ctx)
}

// runExtracts times the patient reads on a log and a raw handle both opened
// afresh, as a process that makes extracts would: the handles used so far
// carry connection state (page caches, allocator state) from generation and
// verification that differs between the two and skews the comparison.
func (b *bench) runExtracts(ctx context.Context) error {
	l, err := audit.Open(ctx, b.dbPath, b.kr)
	if err != nil {
		return err
	}
	defer l.Close()
	raw, err := sqlitedb.Open(ctx, b.dbPath)
	if err != nil {
		return err
	}
	defer raw.Close()
	if b.plan, err = queryPlan(ctx, raw); err != nil {
		return err
	}
	b.logf("patient extracts (query plan: %s)", b.plan)
	stopProfile, err := b.profile("extract")
	if err != nil {
		return err
	}
	b.methods, b.extracts, err = b.measureExtracts(ctx, l, raw, b.o.extractReps, b.o.bulk)
	stopProfile()
	return err
}

// runProbe times one Verify, one raw scan and the raw hashing at the
// current size.
func (b *bench) runProbe(ctx context.Context, l *audit.Log, raw *sql.DB, size int64) error {
	if _, err := l.Cut(ctx); err != nil {
		return err
	}
	b.logf("probe at %d entries: verify", size)
	p := &probeResult{size: size}
	var err error
	if p.verify, _, err = timeVerify(ctx, l, size); err != nil {
		return err
	}
	sr, d, err := rawScan(ctx, raw, size, 4096)
	if err != nil {
		return err
	}
	p.scan = d
	_, p.sha = rawSHA256(sr.entries, sr.sample)
	b.probe = p
	return nil
}

// runVerify runs the verify repetitions, alternating the order of Verify
// and its references.
func (b *bench) runVerify(ctx context.Context, l *audit.Log, raw *sql.DB) error {
	for r := range b.o.verifyReps {
		var vr verifyRep
		steps := []func() error{
			func() error {
				b.logf("verify rep %d: audit.Log.Verify", r+1)
				stopProfile := func() {}
				if r == 0 {
					var err error
					if stopProfile, err = b.profile("verify"); err != nil {
						return err
					}
				}
				d, cps, err := timeVerify(ctx, l, b.size)
				stopProfile()
				vr.verify, b.checkpoints = d, cps
				return err
			},
			func() error {
				b.logf("verify rep %d: raw scan", r+1)
				sr, d, err := rawScan(ctx, raw, b.size, 4096)
				if err != nil {
					return err
				}
				if sr.entries != b.size {
					return fmt.Errorf("raw scan saw %d entries, want %d", sr.entries, b.size)
				}
				vr.scan, b.scan = d, sr
				return nil
			},
			func() error {
				b.logf("verify rep %d: raw SHA-256", r+1)
				vr.shaRes, vr.sha = rawSHA256(b.size, b.scan.sample)
				return nil
			},
		}
		// The first scan keeps the sample the hashing uses; then the
		// order alternates.
		order := []int{1, 0, 2}
		if r%2 == 1 {
			order = []int{2, 0, 1}
		}
		for _, i := range order {
			if err := steps[i](); err != nil {
				return err
			}
		}
		b.verifies = append(b.verifies, vr)
	}
	return nil
}

// profile starts a CPU profile named name if -cpuprofile-dir is set, and
// returns the function that stops it.
func (b *bench) profile(name string) (func(), error) {
	if b.o.profileDir == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(b.o.profileDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(b.o.profileDir, name+".pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
