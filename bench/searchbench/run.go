package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"callvault/bench/internal/benchstat"
	"callvault/bench/internal/paired"
	"callvault/bench/internal/synthpop"
	"callvault/internal/catalog"
	"callvault/internal/keys"
	"callvault/internal/sqldb/pgtest"
)

type options struct {
	engine    string
	n         int
	bulk      int
	distinct  int
	cold      int
	warm      int
	rounds    int
	tracked   int
	pgConf    string
	tmpParent string
}

// bench is one run: one engine, one catalog.
type bench struct {
	o   options
	log io.Writer
	tmp string
	kr  *keys.Keyring
	pop *synthpop.Population

	dsn string         // the catalog: a SQLite path or a PostgreSQL URL
	srv *pgtest.Server // PostgreSQL only

	start, end   time.Time
	build        *buildStats
	sizes        []string // lines on the built catalog's size
	plan         string
	coldDropped  bool
	phases       []*phase
	loadAtStart  string
	loadAtFinish string
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("searchbench", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.engine, "engine", "", "sqlite or postgres")
	fs.IntVar(&o.n, "n", 10_000_000, "recordings in the catalog")
	fs.IntVar(&o.bulk, "bulk-patients", 2_000_000, "bulk patients the recordings with a patient are spread over")
	fs.IntVar(&o.distinct, "distinct-keys", 1000, "distinct wrapped file keys in the rows (row i gets key i mod this)")
	fs.IntVar(&o.cold, "cold", 1000, "cold phase: bulk patients queried once per method")
	fs.IntVar(&o.warm, "warm", 200, "warm phase: bulk patients queried again and again")
	fs.IntVar(&o.rounds, "rounds", 5, "warm phase: timed rounds over the warm patients")
	fs.IntVar(&o.tracked, "tracked-rounds", 100, "timed rounds over each test patient")
	fs.StringVar(&o.pgConf, "pg-conf", "shared_buffers = 4GB\neffective_cache_size = 16GB\nmax_wal_size = 8GB\n",
		"postgresql.conf lines added to the test cluster's (PostgreSQL only)")
	fs.StringVar(&o.tmpParent, "tmp", os.TempDir(), "directory for the temp dir holding all data")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.engine != "sqlite" && o.engine != "postgres" {
		return errors.New("-engine must be sqlite or postgres")
	}
	if o.n < 10_000 || o.bulk < 1 || o.distinct < 1 || o.cold < 2 || o.warm < 1 || o.rounds < 1 || o.tracked < 1 {
		return errors.New("flags out of range")
	}
	b := &bench{o: o, log: os.Stderr}
	var err error
	if b.tmp, err = os.MkdirTemp(o.tmpParent, "callvault-searchbench-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.tmp)
	if o.engine == "postgres" {
		// The cluster's directory goes under the temp dir too, which the
		// postgres user must pass through.
		if err := os.Chmod(b.tmp, 0o711); err != nil {
			return err
		}
		os.Setenv("TMPDIR", b.tmp)
		if b.srv, err = pgtest.Launch(o.pgConf); err != nil {
			return err
		}
		defer b.srv.Remove()
	}
	if err := b.run(ctx); err != nil {
		return err
	}
	b.report(os.Stdout)
	return nil
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, time.Now().Format("15:04:05")+" "+format+"\n", args...)
}

func (b *bench) run(ctx context.Context) error {
	b.start, b.loadAtStart = time.Now(), benchstat.LoadAvg()
	var err error
	if b.kr, err = keys.Generate(b.start); err != nil {
		return err
	}
	b.pop = synthpop.New(b.o.n, b.o.bulk, 0x5eed_5ea4_c4a7)
	for _, t := range b.pop.Tracked {
		b.logf("test patient with %d recordings (aimed at %d)", t.Count, t.Want)
	}
	if err := b.buildCatalog(ctx); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	if err := b.measure(ctx); err != nil {
		return fmt.Errorf("measure: %w", err)
	}
	b.end, b.loadAtFinish = time.Now(), benchstat.LoadAvg()
	return nil
}

func (b *bench) buildCatalog(ctx context.Context) error {
	if b.srv != nil {
		var err error
		if b.dsn, err = b.srv.CreateDatabase(ctx, "catalog"); err != nil {
			return err
		}
	} else {
		b.dsn = filepath.Join(b.tmp, "catalog.db")
	}
	cat, err := catalog.Open(ctx, b.dsn) // the schema, by the catalog's own migrations
	if err != nil {
		return err
	}
	cat.Close()
	m, err := newRowMaker(b.kr, b.pop, b.o.distinct)
	if err != nil {
		return err
	}
	var l loader
	if b.srv != nil {
		l, err = openPGLoader(ctx, b.dsn)
	} else {
		l, err = openSQLiteLoader(ctx, b.dsn)
	}
	if err != nil {
		return err
	}
	b.logf("loading %d rows (%s)", b.o.n, b.o.engine)
	if b.build, err = bulkLoad(ctx, l, m, b.logf); err != nil {
		return err
	}
	syscall.Sync()
	return b.readSizes(ctx)
}

// readSizes notes how big the built catalog is, and the query plan of
// the reference.
func (b *bench) readSizes(ctx context.Context) error {
	s, err := openSearcher(ctx, b.dsn, b.kr)
	if err != nil {
		return err
	}
	defer s.Close()
	n, err := s.cat.Count(ctx)
	if err != nil {
		return err
	}
	if n != b.o.n {
		return fmt.Errorf("catalog holds %d recordings, want %d", n, b.o.n)
	}
	index := b.kr.BlindIndex("patient", b.pop.Tracked[0].PNR)
	if b.srv == nil {
		db, wal := benchstat.DBSize(b.dsn)
		b.sizes = append(b.sizes, fmt.Sprintf("`catalog.db` %.2f GB (WAL %d bytes), %.0f bytes per recording", float64(db)/1e9, wal, float64(db)/float64(n)))
		rows, err := s.db.QueryContext(ctx, `EXPLAIN QUERY PLAN `+refQuery, provider, index)
		if err != nil {
			return err
		}
		defer rows.Close()
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				return err
			}
			plan = append(plan, detail)
		}
		b.plan = strings.Join(plan, "; ")
		return rows.Err()
	}
	var dbBytes, table, idx, staffTotal int64
	if err := s.db.QueryRowContext(ctx, `SELECT pg_database_size(current_database()), pg_table_size('recordings'),
		pg_indexes_size('recordings'), pg_total_relation_size('recording_staff')`).Scan(&dbBytes, &table, &idx, &staffTotal); err != nil {
		return err
	}
	b.sizes = append(b.sizes, fmt.Sprintf("database %.2f GB, %.0f bytes per recording: `recordings` %.2f GB + its indexes %.2f GB, `recording_staff` with indexes %.2f GB",
		float64(dbBytes)/1e9, float64(dbBytes)/float64(n), float64(table)/1e9, float64(idx)/1e9, float64(staffTotal)/1e9))
	rows, err := s.db.QueryContext(ctx, `EXPLAIN `+refQuery, provider, index)
	if err != nil {
		return err
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return err
		}
		plan = append(plan, strings.TrimSpace(line))
	}
	b.plan = strings.Join(plan, "; ")
	return rows.Err()
}

// measure runs the three phases.
func (b *bench) measure(ctx context.Context) error {
	rng := rand.New(rand.NewPCG(0x5ea4c4, 0xb3ac4))
	used := map[int]bool{}
	warmup := sampleBulk(b.pop, rng, 2, used)
	coldPs := sampleBulk(b.pop, rng, 2*b.o.cold, used)
	warmPs := sampleBulk(b.pop, rng, b.o.warm, used)

	// Cold: drop the page cache (and restart PostgreSQL, emptying its
	// shared buffers) before opening the handles.
	if err := b.dropCaches(ctx); err != nil {
		b.logf("cold phase runs without dropping caches: %v", err)
	} else {
		b.coldDropped = true
	}
	s, err := openSearcher(ctx, b.dsn, b.kr)
	if err != nil {
		return err
	}
	defer s.Close()
	// Connections and statements, on two other patients.
	for mi := range methods {
		if _, err := s.timeOne(ctx, mi, warmup[mi]); err != nil {
			return err
		}
	}
	cold := &phase{name: "cold", desc: fmt.Sprintf("%d distinct bulk patients, each queried once by one method", len(coldPs))}
	b.logf("cold phase: %d queries", len(coldPs))
	if cold.t, err = paired.Once(ctx, len(coldPs), s.over(coldPs)); err != nil {
		return err
	}
	warm := &phase{name: "warm", desc: fmt.Sprintf("%d bulk patients × %d rounds per method", len(warmPs), b.o.rounds)}
	b.logf("warm phase: %d patients × %d rounds", len(warmPs), b.o.rounds)
	if warm.t, err = paired.Repeat(ctx, len(warmPs), b.o.rounds, s.over(warmPs)); err != nil {
		return err
	}
	b.phases = append(b.phases, cold, warm)
	for _, t := range b.pop.Tracked {
		ph := &phase{name: fmt.Sprintf("test patient, %d recordings", t.Count), desc: fmt.Sprintf("%d rounds per method", b.o.tracked)}
		b.logf("test patient with %d recordings: %d rounds", t.Count, b.o.tracked)
		if ph.t, err = paired.Repeat(ctx, 1, b.o.tracked, s.over([]patient{{pnr: t.PNR, want: t.Count}})); err != nil {
			return err
		}
		b.phases = append(b.phases, ph)
	}
	return nil
}

// dropCaches empties the caches between the catalog and the disk: for
// PostgreSQL a CHECKPOINT, a stop and a start (its shared buffers), and
// for both the kernel's page cache (root only).
func (b *bench) dropCaches(ctx context.Context) error {
	if b.srv != nil {
		if err := b.srv.Admin(ctx, "CHECKPOINT"); err != nil {
			return err
		}
		b.srv.Stop()
		defer func() {
			if err := b.srv.Start(); err != nil {
				b.logf("restart PostgreSQL: %v", err)
			}
		}()
	}
	return benchstat.DropCaches()
}
