package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"callvault/bench/internal/benchstat"
	"callvault/bench/internal/paired"
	"callvault/bench/internal/synthpop"
	"callvault/internal/audit"
	"callvault/internal/keys"
	"callvault/internal/recording"
	"callvault/internal/sqldb"
	"callvault/internal/sqldb/pgtest"
)

type options struct {
	n, bulk           int
	cold, warm        int
	rounds, tracked   int
	entries, months   int
	appends           int
	pgConf, tmpParent string
}

// The two tables compared: the audit package's own, and its monthly twin.
var tables = [2]string{"audit_log", "audit_log_monthly"}

// The entries span ten years from base; entry k is at base + k·step.
var (
	base     = time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC)
	years    = 10
	lastPart = base.AddDate(years+1, 0, 0) // partitions reach a year past the data: appends land there
)

type bench struct {
	o     options
	kr    *keys.Keyring
	pop   *synthpop.Population
	step  int64 // ns between entries
	srv   *pgtest.Server
	dsn   string
	start time.Time

	load, loadMonthly, indexes, indexesMonthly time.Duration
	sizes                                      [2]int64 // tables with their indexes
	partitions                                 int
	plans                                      []string
	coldDropped                                bool
	phases                                     []*phase
	loadStart, loadEnd                         string
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("partitionbench", flag.ContinueOnError)
	var o options
	fs.IntVar(&o.n, "n", 10_000_000, "audit entries in each table")
	fs.IntVar(&o.bulk, "bulk-patients", 1_000_000, "bulk patients the entries with a patient are spread over")
	fs.IntVar(&o.cold, "cold", 500, "cold phase: bulk patients queried once per table")
	fs.IntVar(&o.warm, "warm", 200, "warm phase: bulk patients queried again and again")
	fs.IntVar(&o.rounds, "rounds", 5, "warm phase: timed rounds")
	fs.IntVar(&o.tracked, "tracked-rounds", 50, "timed rounds over each test patient")
	fs.IntVar(&o.entries, "entries", 1000, "single-entry reads per table (random idx, warm)")
	fs.IntVar(&o.months, "months", 12, "random months read whole per table")
	fs.IntVar(&o.appends, "appends", 200, "append transactions (64 entries each) per table")
	fs.StringVar(&o.pgConf, "pg-conf", "shared_buffers = 4GB\neffective_cache_size = 16GB\nmax_wal_size = 8GB\n",
		"postgresql.conf lines added to the test cluster's")
	fs.StringVar(&o.tmpParent, "tmp", os.TempDir(), "directory for the temp dir holding all data")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.n < 100_000 || o.bulk < 1 || o.cold < 2 || o.warm < 1 || o.rounds < 1 || o.tracked < 1 ||
		o.entries < 1 || o.months < 1 || o.appends < 1 {
		return errors.New("flags out of range")
	}
	tmp, err := os.MkdirTemp(o.tmpParent, "callvault-partitionbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// The cluster lives in the temp dir, which the postgres user must pass.
	if err := os.Chmod(tmp, 0o711); err != nil {
		return err
	}
	os.Setenv("TMPDIR", tmp)
	b := &bench{o: o, start: time.Now(), loadStart: benchstat.LoadAvg()}
	b.step = int64(base.AddDate(years, 0, 0).Sub(base)) / int64(o.n)
	if b.srv, err = pgtest.Launch(o.pgConf); err != nil {
		return err
	}
	defer b.srv.Remove()
	if err := b.run(ctx); err != nil {
		return err
	}
	b.loadEnd = benchstat.LoadAvg()
	b.report(os.Stdout)
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05")+" "+format+"\n", args...)
}

func (b *bench) run(ctx context.Context) error {
	var err error
	if b.kr, err = keys.Generate(b.start); err != nil {
		return err
	}
	b.pop = synthpop.New(b.o.n, b.o.bulk, 0xa0d1_7109)
	if b.dsn, err = b.srv.CreateDatabase(ctx, "audit"); err != nil {
		return err
	}
	l, err := audit.Open(ctx, b.dsn, b.kr) // audit_log, by the package's own migration
	if err != nil {
		return err
	}
	if err := l.Close(); err != nil {
		return err
	}
	if err := b.build(ctx); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	if err := b.measure(ctx); err != nil {
		return fmt.Errorf("measure: %w", err)
	}
	return nil
}

// monthlyDDL is the twin: audit_log's columns, partitioned by month on
// time, with (idx, time) as its primary key (a partitioned table's unique
// keys must hold the partition key).
const monthlyDDL = `CREATE TABLE audit_log_monthly (
	idx BIGINT NOT NULL,
	time BIGINT NOT NULL,
	action TEXT NOT NULL,
	outcome TEXT NOT NULL,
	"user" TEXT NOT NULL,
	patient_index BYTEA,
	recording_id TEXT NOT NULL,
	entry BYTEA NOT NULL,
	hashes BYTEA NOT NULL,
	PRIMARY KEY (idx, time)
) PARTITION BY RANGE (time)`

var columns = []string{"idx", "time", "action", "outcome", "user", "patient_index", "recording_id", "entry", "hashes"}

func (b *bench) build(ctx context.Context) error {
	c, err := pgx.Connect(ctx, b.dsn)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	for _, s := range []string{"SET synchronous_commit = off", "SET maintenance_work_mem = '1GB'", monthlyDDL} {
		if _, err := c.Exec(ctx, s); err != nil {
			return err
		}
	}
	for m := base; m.Before(lastPart); m = m.AddDate(0, 1, 0) {
		if _, err := c.Exec(ctx, fmt.Sprintf(`CREATE TABLE audit_log_monthly_%s PARTITION OF audit_log_monthly FOR VALUES FROM (%d) TO (%d)`,
			m.Format("200601"), m.UnixNano(), m.AddDate(0, 1, 0).UnixNano())); err != nil {
			return err
		}
		b.partitions++
	}
	// audit_log's secondary indexes, as the package made them; dropped for
	// the load, made again after it, and made the same on the twin.
	rows, err := c.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_log'
		AND indexname NOT IN (SELECT conname FROM pg_constraint) ORDER BY indexname`)
	if err != nil {
		return err
	}
	ixs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var ix [2]string
		err := r.Scan(&ix[0], &ix[1])
		return ix, err
	})
	if err != nil {
		return err
	}
	if len(ixs) != 4 {
		return fmt.Errorf("audit_log has %d secondary indexes, want 4: schema changed?", len(ixs))
	}
	for _, ix := range ixs {
		if _, err := c.Exec(ctx, `DROP INDEX `+ix[0]); err != nil {
			return err
		}
	}
	logf("loading %d entries into each table (%d partitions)", b.o.n, b.partitions)
	rng := rand.New(rand.NewChaCha8([32]byte{'p', 'a', 'r', 't'}))
	const size = 10_000
	for start := 0; start < b.o.n; start += size {
		batch, err := b.rows(rng, start, min(start+size, b.o.n))
		if err != nil {
			return err
		}
		for ti, t := range tables {
			t0 := time.Now()
			if _, err := c.CopyFrom(ctx, pgx.Identifier{t}, columns, pgx.CopyFromRows(batch)); err != nil {
				return fmt.Errorf("copy into %s: %w", t, err)
			}
			if ti == 0 {
				b.load += time.Since(t0)
			} else {
				b.loadMonthly += time.Since(t0)
			}
		}
		if end := start + size; end%1_000_000 == 0 {
			logf("loaded %d/%d", end, b.o.n)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	for ti, t := range tables {
		t0 := time.Now()
		for _, ix := range ixs {
			def := ix[1]
			if ti == 1 {
				def = strings.Replace(strings.Replace(def, "audit_log_", "audit_log_monthly_", 1), "ON public.audit_log ", "ON public.audit_log_monthly ", 1)
				if !strings.Contains(def, "audit_log_monthly ") {
					return fmt.Errorf("cannot make the twin of %q", ix[1])
				}
			}
			if _, err := c.Exec(ctx, def); err != nil {
				return fmt.Errorf("%s: %w", def, err)
			}
		}
		if ti == 0 {
			b.indexes = time.Since(t0)
		} else {
			b.indexesMonthly = time.Since(t0)
		}
		logf("indexes of %s built in %v", t, time.Since(t0).Round(time.Second))
	}
	if _, err := c.Exec(ctx, `VACUUM ANALYZE audit_log, audit_log_monthly`); err != nil {
		return err
	}
	for ti, t := range tables {
		// pg_total_relation_size of a partitioned table is 0: sum its
		// partitions.
		q := `SELECT pg_total_relation_size('audit_log')`
		if ti == 1 {
			q = `SELECT SUM(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'audit_log_monthly'::regclass`
		}
		if err := c.QueryRow(ctx, q).Scan(&b.sizes[ti]); err != nil {
			return fmt.Errorf("size of %s: %w", t, err)
		}
	}
	syscall.Sync()
	return nil
}

// rows makes entries [from, to): time rising with idx; a patient as
// synthpop assigns them; one of 2,000 staff; a recording on nine in ten;
// an entry of 400–719 random bytes (a real one averages 559) and its
// stored hashes (1 + the trailing ones of idx, 32 bytes each, as tlog).
func (b *bench) rows(rng *rand.Rand, from, to int) ([][]any, error) {
	out := make([][]any, 0, to-from)
	actions := []string{"play", "play", "search", "read-metadata", "ingest"}
	for k := from; k < to; k++ {
		h := synthpop.Splitmix64(uint64(k) ^ 0x0a0d17)
		var pidx any
		if pnr := b.pop.PNR(k); pnr != "" {
			pidx = b.kr.BlindIndex("patient", pnr)
		}
		rec := ""
		if h%10 != 0 {
			id, err := recording.NewID()
			if err != nil {
				return nil, err
			}
			rec = id
		}
		entry := make([]byte, 400+int(h>>8)%320)
		fillRandom(rng, entry)
		hashes := make([]byte, 32*(1+bits.TrailingZeros64(^uint64(k))))
		fillRandom(rng, hashes)
		outcome := "allowed"
		if h%50 == 7 {
			outcome = "denied"
		}
		out = append(out, []any{int64(k), base.UnixNano() + int64(k)*b.step, actions[(h>>16)%uint64(len(actions))], outcome,
			fmt.Sprintf("SE9999990001-N%04d", (h>>24)%2000), pidx, rec, entry, hashes})
	}
	return out, nil
}

func fillRandom(rng *rand.Rand, p []byte) {
	for i := 0; i < len(p); i += 8 {
		v := rng.Uint64()
		for j := i; j < min(i+8, len(p)); j++ {
			p[j] = byte(v)
			v >>= 8
		}
	}
}

// query is one timed lookup: its statement (with %s for the table), its
// arguments and the rows it must return.
type query struct {
	stmt string
	args []any
	want int
}

// The audit package's statements (internal/audit/log.go), table made a
// parameter.
const (
	forPatient = `SELECT entry FROM %s WHERE patient_index = ? ORDER BY idx`
	oneEntry   = `SELECT entry FROM %s WHERE idx = ?`
	aMonth     = `SELECT entry FROM %s WHERE time >= ? AND time < ? ORDER BY idx`
)

// phase is one set of measurements.
type phase struct {
	name string
	t    *paired.Timings
}

func timeQuery(ctx context.Context, db *sqldb.DB, ti int, q query) (time.Duration, error) {
	t0 := time.Now()
	rows, err := db.QueryContext(ctx, fmt.Sprintf(q.stmt, tables[ti]), q.args...)
	if err != nil {
		return 0, err
	}
	n := 0
	for rows.Next() {
		var entry []byte
		if err := rows.Scan(&entry); err != nil {
			rows.Close()
			return 0, err
		}
		n++
	}
	rows.Close()
	d := time.Since(t0)
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if n != q.want {
		return 0, fmt.Errorf("%s on %s: %d rows, want %d", strings.Fields(q.stmt)[5], tables[ti], n, q.want)
	}
	return d, nil
}

// over returns the paired.Func that runs query k of qs on table m.
func over(db *sqldb.DB, qs []query) paired.Func {
	return func(ctx context.Context, k, m int) (time.Duration, int, error) {
		d, err := timeQuery(ctx, db, m, qs[k])
		return d, qs[k].want, err
	}
}

func (b *bench) patientQueries(pnrs []string, counts []int) []query {
	qs := make([]query, len(pnrs))
	for i := range pnrs {
		qs[i] = query{forPatient, []any{b.kr.BlindIndex("patient", pnrs[i])}, counts[i]}
	}
	return qs
}

// monthQuery returns the query of the month starting at m, and how many
// entries lie in it.
func (b *bench) monthQuery(m time.Time) query {
	from, to := m.UnixNano()-base.UnixNano(), m.AddDate(0, 1, 0).UnixNano()-base.UnixNano()
	first := (from + b.step - 1) / b.step // entries k with k·step ≥ from
	last := min((to+b.step-1)/b.step, int64(b.o.n))
	return query{aMonth, []any{m.UnixNano(), m.AddDate(0, 1, 0).UnixNano()}, int(last - first)}
}

func (b *bench) measure(ctx context.Context) error {
	rng := rand.New(rand.NewPCG(0xa0d1, 0x7109))
	used := map[int]bool{}
	cold := b.patientQueries(b.pop.Sample(rng, 2*b.o.cold, used))
	warm := b.patientQueries(b.pop.Sample(rng, b.o.warm, used))
	var entries []query
	for range b.o.entries {
		entries = append(entries, query{oneEntry, []any{rng.Int64N(int64(b.o.n))}, 1})
	}
	var months []query
	for range b.o.months {
		months = append(months, b.monthQuery(base.AddDate(0, rng.IntN(12*years), 0)))
	}

	if err := b.dropCaches(ctx); err != nil {
		logf("cold phase runs without dropping caches: %v", err)
	} else {
		b.coldDropped = true
	}
	db, err := sqldb.Open(ctx, b.dsn, "partitionbench")
	if err != nil {
		return err
	}
	defer db.Close()
	for ti := range tables { // a connection, on an entry not measured
		if _, err := timeQuery(ctx, db, ti, query{oneEntry, []any{int64(b.o.n - 1)}, 1}); err != nil {
			return err
		}
	}
	if err := b.explain(ctx, db, cold[0], entries[0], months[0]); err != nil {
		return err
	}
	steps := []struct {
		name   string
		qs     []query
		rounds int // 0: once
	}{
		{"ForPatient, cold: distinct bulk patients, once each", cold, 0},
		{"ForPatient, warm: bulk patients", warm, b.o.rounds},
		{"one entry by idx, warm", entries, 1},
		{"a whole month, warm", months, 1},
	}
	for _, t := range b.pop.Tracked {
		steps = append(steps, struct {
			name   string
			qs     []query
			rounds int
		}{fmt.Sprintf("ForPatient, test patient with %d events, warm", t.Count), b.patientQueries([]string{t.PNR}, []int{t.Count}), b.o.tracked})
	}
	for _, s := range steps {
		logf("%s: %d queries × %d", s.name, len(s.qs), max(1, s.rounds))
		ph := &phase{name: s.name}
		var err error
		if s.rounds == 0 {
			ph.t, err = paired.Once(ctx, len(s.qs), over(db, s.qs))
		} else {
			ph.t, err = paired.Repeat(ctx, len(s.qs), s.rounds, over(db, s.qs))
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		b.phases = append(b.phases, ph)
	}
	ph, err := b.appendPhase(ctx, db)
	if err != nil {
		return fmt.Errorf("append: %w", err)
	}
	b.phases = append(b.phases, ph)
	return nil
}

// explain records the partitioned table's plans (the plain table's are
// index scans of one index each).
func (b *bench) explain(ctx context.Context, db *sqldb.DB, qs ...query) error {
	for _, q := range qs {
		for ti := range tables {
			rows, err := db.QueryContext(ctx, "EXPLAIN "+fmt.Sprintf(q.stmt, tables[ti]), q.args...)
			if err != nil {
				return err
			}
			var lines []string
			for rows.Next() {
				var l string
				if err := rows.Scan(&l); err != nil {
					rows.Close()
					return err
				}
				lines = append(lines, l)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			scans := 0
			for _, l := range lines {
				if strings.Contains(l, "Scan") {
					scans++
				}
			}
			b.plans = append(b.plans, fmt.Sprintf("`%s` on %s: %d plan lines, %d scans; first: `%s`",
				fmt.Sprintf(q.stmt, tables[ti]), tables[ti], len(lines), scans, strings.TrimSpace(lines[0])))
		}
	}
	return nil
}

// appendPhase times the log writer's transaction on each table: MAX(idx),
// then 64 INSERTs of new entries, committed with synchronous_commit on.
func (b *bench) appendPhase(ctx context.Context, db *sqldb.DB) (*phase, error) {
	rng := rand.New(rand.NewChaCha8([32]byte{'a', 'p', 'p'}))
	at := base.AddDate(years, 5, 0).UnixNano() // in a partition past the data
	t, err := paired.Once(ctx, 2*b.o.appends, func(ctx context.Context, _, ti int) (time.Duration, int, error) {
		batch, err := b.rows(rng, 0, 64)
		if err != nil {
			return 0, 0, err
		}
		t0 := time.Now()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return 0, 0, err
		}
		defer tx.Rollback()
		var n int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx) + 1, 0) FROM `+tables[ti]).Scan(&n); err != nil {
			return 0, 0, err
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO `+tables[ti]+`
			(idx, time, action, outcome, "user", patient_index, recording_id, entry, hashes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return 0, 0, err
		}
		for i, row := range batch {
			row[0], row[1], row[5] = n+int64(i), at, nil
			if _, err := stmt.ExecContext(ctx, row...); err != nil {
				return 0, 0, err // the rollback closes stmt
			}
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			return 0, 0, err
		}
		return time.Since(t0), len(batch), nil
	})
	if err != nil {
		return nil, err
	}
	return &phase{name: "append: MAX(idx) + 64 INSERTs + COMMIT", t: t}, nil
}

// dropCaches: a CHECKPOINT, a stop and a start of PostgreSQL (its shared
// buffers), and the kernel's page cache (root only).
func (b *bench) dropCaches(ctx context.Context) error {
	if err := b.srv.Admin(ctx, "CHECKPOINT"); err != nil {
		return err
	}
	b.srv.Stop()
	defer func() {
		if err := b.srv.Start(); err != nil {
			logf("restart PostgreSQL: %v", err)
		}
	}()
	return benchstat.DropCaches()
}
