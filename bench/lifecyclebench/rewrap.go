package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"syscall"
	"time"

	"callvault/internal/archive"
	"callvault/internal/catalog"
	"callvault/internal/keys"
	"callvault/internal/recording"
	"callvault/internal/seal"
	"callvault/internal/sqlitedb"
)

type rewrapOptions struct {
	n, reps      int
	maxRun       time.Duration
	fallbackN    int
	fallbackReps int
	distinct     int
	refKeys      int
	batch        int
	workers      int
	insertBatch  int
	tmpParent    string
	profile      string
}

// rewrapBench holds one rewrap run's state and results.
type rewrapBench struct {
	o       rewrapOptions
	log     io.Writer
	out     io.Writer // the markdown report
	tmp     string
	kr      *keys.Keyring
	workers int

	// Key material of the synthetic rows: distinct file keys wrapped to
	// epoch 1; row i uses number i % len.
	fileKeys []*seal.FileKey
	wrapped  [][]byte

	// Single-goroutine cost of one unwrap and one wrap (medians).
	unwrap1, wrap1 time.Duration

	sets    []*rewrapSet
	loadEnd string
}

// rewrapSet is one catalog size and the repetitions run on it.
type rewrapSet struct {
	n            int
	dir          string
	build        time.Duration
	buildDB      int64 // catalog.db after the build (WAL checkpointed)
	avgWrapped   float64
	avgRow       float64
	reps         []rewrapRep
	afterDB      int64 // catalog.db and WAL after the last repetition
	afterWAL     int64
	checkIDs     []string
	checkPatient []string
	put, del     time.Duration // one recovery-record-sized object written to / deleted from both sites
	placeholders time.Duration // writing the epoch-1 recovery record placeholders
	stoppedEarly bool          // one repetition only: it took longer than -max-run
}

// rewrapRep is one repetition: Rewrap of every row and the crypto alone.
type rewrapRep struct {
	epoch       int
	rewrapFirst bool
	rewrap      measured
	counts      time.Duration // EpochCounts (one GROUP BY over the table)
	stale       time.Duration // Stale, all pages
	page        time.Duration // rewrapPage, all pages
	update      time.Duration // UpdateWrapped, all transactions
	deletes     time.Duration // the old recovery records' deletes, all pages
	get         time.Duration // catalog Get in the workers, summed over them
	gets        int
	batches     int
	recordBytes int64 // size of one new recovery record
	raw         measured
	rawKeys     int
	dbAfter     int64
	walAfter    int64
	loadBefore  string
}

func (b *rewrapBench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s rewrap: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func runRewrap(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o rewrapOptions
	fs := flag.NewFlagSet("lifecyclebench rewrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.n, "n", 1_000_000, "recordings in the catalog")
	fs.IntVar(&o.reps, "reps", 3, "repetitions of Rewrap over all -n rows (medians are reported)")
	fs.DurationVar(&o.maxRun, "max-run", 4*time.Minute, "if the first Rewrap of -n rows takes longer, run the other repetitions on a catalog of -fallback-n rows instead")
	fs.IntVar(&o.fallbackN, "fallback-n", 100_000, "rows of the smaller catalog (see -max-run)")
	fs.IntVar(&o.fallbackReps, "fallback-reps", 3, "repetitions on the smaller catalog (see -max-run)")
	fs.IntVar(&o.distinct, "distinct-keys", 1000, "distinct wrapped file keys in the synthetic rows (row i gets key i mod this); every row still costs a full unwrap and wrap")
	fs.IntVar(&o.refKeys, "ref-keys", 40_000, "rows the crypto-only reference rewraps per repetition")
	fs.IntVar(&o.batch, "batch", 0, "RewrapOptions.Batch (0: Rewrap's default)")
	fs.IntVar(&o.workers, "workers", 0, "RewrapOptions.Workers (0: Rewrap's default)")
	fs.IntVar(&o.insertBatch, "insert-batch", 10_000, "rows per transaction while building the catalog")
	fs.StringVar(&o.tmpParent, "tmp", "", "parent of the run's temp dir (default $TMPDIR); must be on the disk to measure")
	fs.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of the first Rewrap to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.n < 1 || o.reps < 1 || o.fallbackN < 1 || o.fallbackReps < 1 || o.distinct < 1 || o.refKeys < 1 || o.insertBatch < 1 || o.batch < 0 || o.workers < 0 {
		return errors.New("-n, -reps, -fallback-n, -fallback-reps, -distinct-keys, -ref-keys and -insert-batch must be positive")
	}
	tmp, err := os.MkdirTemp(o.tmpParent, "callvault-rewrapbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &rewrapBench{o: o, log: stderr, out: stdout, tmp: tmp, workers: runtime.GOMAXPROCS(0)}
	if b.kr, err = keys.Generate(time.Now()); err != nil {
		return err
	}
	// Each part of the report is printed as soon as it is measured, so an
	// error or an interrupt late in the run keeps what came before.
	if err := b.run(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Load average at end: %s.\n", b.loadEnd)
	return nil
}

func (b *rewrapBench) run(ctx context.Context) error {
	if err := b.makeKeys(); err != nil {
		return err
	}
	if err := b.singleCosts(); err != nil {
		return err
	}
	b.reportHeader(b.out)
	first, err := b.runSet(ctx, b.o.n, b.o.reps, true)
	if err != nil {
		return err
	}
	if first != nil {
		// The first repetition took longer than -max-run: the other
		// repetitions run on a smaller catalog.
		b.logf("Rewrap of %d rows took %v (over -max-run %v): %d more repetitions on a catalog of %d rows",
			b.o.n, first.rewrap.wall.Round(time.Second), b.o.maxRun, b.o.fallbackReps, b.o.fallbackN)
		if _, err := b.runSet(ctx, b.o.fallbackN, b.o.fallbackReps, false); err != nil {
			return err
		}
	}
	b.loadEnd = loadavg()
	return nil
}

// makeKeys makes the distinct file keys and wraps them to epoch 1 on all
// cores.
func (b *rewrapBench) makeKeys() error {
	t0 := time.Now()
	rcpt := b.kr.Current().Recipient
	b.fileKeys = make([]*seal.FileKey, b.o.distinct)
	b.wrapped = make([][]byte, b.o.distinct)
	errs := make([]error, b.o.distinct)
	parallel(b.o.distinct, b.workers, func(i int) {
		fk, err := seal.NewFileKey()
		if err == nil {
			b.fileKeys[i] = fk
			b.wrapped[i], err = seal.Wrap(fk, rcpt)
		}
		errs[i] = err
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	b.logf("%d file keys wrapped to epoch 1 in %v (%d bytes each)", b.o.distinct, time.Since(t0).Round(time.Millisecond), len(b.wrapped[0]))
	return nil
}

// singleCosts times one unwrap and one wrap on one goroutine.
func (b *rewrapBench) singleCosts() error {
	id, err := b.kr.Identity(1)
	if err != nil {
		return err
	}
	rcpt := b.kr.Current().Recipient
	var un, wr []float64
	for i := range 400 {
		t0 := time.Now()
		fk, err := seal.Unwrap(b.wrapped[i%len(b.wrapped)], id)
		t1 := time.Now()
		if err != nil {
			return err
		}
		if _, err := seal.Wrap(fk, rcpt); err != nil {
			return err
		}
		un, wr = append(un, float64(t1.Sub(t0))), append(wr, float64(time.Since(t1)))
	}
	b.unwrap1, b.wrap1 = time.Duration(median(un)), time.Duration(median(wr))
	b.logf("one goroutine: seal.Unwrap %v, seal.Wrap %v (medians of 400)", b.unwrap1, b.wrap1)
	return nil
}

// runSet builds a catalog of n rows and runs reps repetitions on it. If
// mayFallBack and the first repetition takes longer than -max-run, it
// stops after that one and returns it.
func (b *rewrapBench) runSet(ctx context.Context, n, reps int, mayFallBack bool) (*rewrapRep, error) {
	set := &rewrapSet{n: n, dir: filepath.Join(b.tmp, fmt.Sprintf("catalog-%d", n))}
	b.sets = append(b.sets, set)
	if err := os.MkdirAll(set.dir, 0o700); err != nil {
		return nil, err
	}
	defer os.RemoveAll(set.dir)
	if err := b.build(ctx, set); err != nil {
		return nil, err
	}
	st, err := openStack(ctx, set.dir, b.kr)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := b.check(ctx, st, set); err != nil {
		return nil, err
	}
	if set.put, set.del, err = objectCosts(ctx, st, 200); err != nil {
		return nil, err
	}
	b.logf("one recovery-record-sized object (%d bytes) to both sites: write %v, delete %v (medians of 200)", placeholderSize, set.put, set.del)
	for r := range reps {
		rep, err := b.rep(ctx, st, set, r)
		if err != nil {
			return nil, err
		}
		set.reps = append(set.reps, rep)
		if mayFallBack && r == 0 && reps > 1 && rep.rewrap.wall > b.o.maxRun {
			set.afterDB, set.afterWAL = dbSize(st.catPath)
			set.stoppedEarly = true
			b.reportSet(b.out, set)
			return &set.reps[0], nil
		}
	}
	set.afterDB, set.afterWAL = dbSize(st.catPath)
	b.reportSet(b.out, set)
	return nil, nil
}

// insertRecording is catalog.Insert's statement, without its ON CONFLICT
// clause (the IDs are fresh random ones).
const insertRecording = `INSERT INTO recordings (id, call_id, care_provider, care_unit, started_at, ended_at,
	direction, privacy_notice, patient_index, patient_sealed, caller_index, caller_sealed, format, content_type,
	audio_bytes, blob_bytes, blob_sha256, key_epoch, wrapped_key, created_at, retention_until)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// build creates the catalog of set with set.n synthetic rows on epoch 1.
// catalog.Open creates the schema; the rows then go in through
// database/sql on one connection, -insert-batch rows a transaction, with
// catalog.Insert's statements (a recordings row and one recording_staff
// row each), with synchronous=OFF and a 256 MB page cache for speed.
// Afterwards the WAL is checkpointed and everything synced to disk.
//
// Each row looks like an ingested recording's: a fresh random ID (so rows
// are stored in insert order but walked by Rewrap in ID order, as in
// production), a blind index of a bulk patient "99" + 10 digits (not a
// personnummer) and that number sealed under the row's file key, the
// fictional caller number sealed likewise, and the wrapped file key.
func (b *rewrapBench) build(ctx context.Context, set *rewrapSet) error {
	path := filepath.Join(set.dir, "catalog.db")
	cat, err := catalog.Open(ctx, path)
	if err != nil {
		return err
	}
	cat.Close()
	db, err := sqlitedb.Open(ctx, path)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, p := range []string{"PRAGMA synchronous=OFF", "PRAGMA cache_size=-262144"} {
		if _, err := db.ExecContext(ctx, p); err != nil {
			return err
		}
	}
	b.logf("building a catalog of %d rows in %s", set.n, path)
	t0, tLast, lastBuilt := time.Now(), time.Now(), 0
	base := time.Date(2016, 1, 1, 8, 0, 0, 0, time.UTC)
	audioBytes := int64(3_648_058)
	blobBytes := seal.BlobSize(audioBytes)
	callerIndex := b.kr.BlindIndex("caller", fictionNumber)
	checkAt := map[int]bool{0: true, set.n / 2: true, set.n - 1: true}
	for start := 0; start < set.n; start += b.o.insertBatch {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for i := start; i < min(start+b.o.insertBatch, set.n); i++ {
			id, err := recording.NewID()
			if err != nil {
				tx.Rollback()
				return err
			}
			k := i % len(b.fileKeys)
			patient := fmt.Sprintf("99%010d", i%200_000)
			ps, err := b.fileKeys[k].SealField("catalog/patient", []byte(patient))
			if err != nil {
				tx.Rollback()
				return err
			}
			cs, err := b.fileKeys[k].SealField("catalog/caller-number", []byte(fictionNumber))
			if err != nil {
				tx.Rollback()
				return err
			}
			started := base.Add(time.Duration(i) * 4 * time.Minute)
			ended := started.Add(228 * time.Second)
			digest := sha256.Sum256([]byte(id))
			if _, err := tx.ExecContext(ctx, insertRecording,
				id, fmt.Sprintf("bench-rewrap-%d", i), provider, unit, started.UnixNano(), ended.UnixNano(),
				recording.Inbound, "ivr-2026-01", b.kr.BlindIndex("patient", patient), ps, callerIndex, cs,
				"wav", "audio/wav", audioBytes, blobBytes, digest[:], 1, b.wrapped[k],
				ended.Add(time.Second).UnixNano(), ended.AddDate(archive.MinRetentionYears, 0, 0).UnixNano()); err != nil {
				tx.Rollback()
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO recording_staff (recording_id, position, staff) VALUES (?, ?, ?)`, id, 0, nurseID); err != nil {
				tx.Rollback()
				return err
			}
			if checkAt[i] {
				set.checkIDs = append(set.checkIDs, id)
				set.checkPatient = append(set.checkPatient, patient)
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		done := min(start+b.o.insertBatch, set.n)
		if done-lastBuilt >= 100_000 || done == set.n {
			b.logf("built %d/%d rows (%.0f rows/s over the last %d)", done, set.n, float64(done-lastBuilt)/time.Since(tLast).Seconds(), done-lastBuilt)
			lastBuilt, tLast = done, time.Now()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if err := db.QueryRowContext(ctx, `SELECT AVG(LENGTH(wrapped_key)) FROM recordings`).Scan(&set.avgWrapped); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return err
	}
	if err := b.placeholders(ctx, db, set); err != nil {
		return err
	}
	syscall.Sync()
	set.build = time.Since(t0)
	set.buildDB, _ = dbSize(path)
	set.avgRow = float64(set.buildDB) / float64(set.n)
	b.logf("catalog built in %v: %.2f GB (%.0f bytes per recording), wrapped key %.0f bytes",
		set.build.Round(time.Second), float64(set.buildDB)/1e9, set.avgRow, set.avgWrapped)
	return nil
}

// check reads three of the built rows back through catalog.Get and opens
// them with the keyring, as the archive would: the bulk rows are valid
// catalog rows.
func (b *rewrapBench) check(ctx context.Context, st *stack, set *rewrapSet) error {
	for i, id := range set.checkIDs {
		rec, err := st.cat.Get(ctx, id)
		if err != nil {
			return fmt.Errorf("check row %s: %w", id, err)
		}
		ident, err := b.kr.Identity(rec.KeyEpoch)
		if err != nil {
			return err
		}
		fk, err := seal.Unwrap(rec.WrappedKey, ident)
		if err != nil {
			return fmt.Errorf("check row %s: %w", id, err)
		}
		p, err := fk.OpenField("catalog/patient", rec.PatientSealed)
		if err != nil || string(p) != set.checkPatient[i] || !bytes.Equal(rec.PatientIndex, b.kr.BlindIndex("patient", set.checkPatient[i])) {
			return fmt.Errorf("check row %s: patient field does not open (%v)", id, err)
		}
	}
	counts, err := st.cat.EpochCounts(ctx)
	if err != nil {
		return err
	}
	if len(counts) != 1 || counts[1] != set.n {
		return fmt.Errorf("epoch counts %v, want all %d rows on epoch 1", counts, set.n)
	}
	return nil
}

// rep rotates the keyring, so every row is on an old epoch, and runs
// Rewrap over the whole catalog and the crypto-only reference; the order
// alternates.
func (b *rewrapBench) rep(ctx context.Context, st *stack, set *rewrapSet, r int) (rewrapRep, error) {
	ep, err := b.kr.Rotate(time.Now())
	if err != nil {
		return rewrapRep{}, err
	}
	rep := rewrapRep{epoch: ep.ID, rewrapFirst: r%2 == 0, loadBefore: loadavg()}
	rewrap := func() error {
		b.logf("%d rows, rep %d: Rewrap to epoch %d", set.n, r+1, ep.ID)
		st.tcat.reset()
		step := max(set.n/10, 1)
		lastDone, lastT := 0, time.Now()
		stopProfile := func() {}
		if b.o.profile != "" && len(b.sets) == 1 && r == 0 {
			if stopProfile, err = startProfile(b.o.profile); err != nil {
				return err
			}
		}
		m := startMeter()
		rr, err := st.svc.Rewrap(ctx, operator, archive.RewrapOptions{Batch: b.o.batch, Workers: b.o.workers, Progress: func(done, total int) {
			st.tcat.progress()
			if done/step > lastDone/step || done == total {
				b.logf("  %d/%d rewrapped (%.0f recordings/s over the last %d)", done, total,
					float64(done-lastDone)/time.Since(lastT).Seconds(), done-lastDone)
				lastDone, lastT = done, time.Now()
			}
		}})
		rep.rewrap = m.stop()
		stopProfile()
		if err != nil {
			return err
		}
		if rr.Stale != set.n || rr.Rewrapped != set.n || len(rr.Failed) != 0 || rr.Epoch != ep.ID {
			return fmt.Errorf("rewrap: stale %d, rewrapped %d, failed %d, epoch %d; want all %d rows to epoch %d",
				rr.Stale, rr.Rewrapped, len(rr.Failed), rr.Epoch, set.n, ep.ID)
		}
		st.tcat.mu.Lock()
		rep.counts, rep.stale, rep.page, rep.update, rep.deletes = st.tcat.counts, st.tcat.stale, st.tcat.page, st.tcat.update, st.tcat.deletes
		rep.get, rep.gets, rep.batches = st.tcat.get, st.tcat.gets, st.tcat.pages
		st.tcat.mu.Unlock()
		if fi, err := os.Stat(recordPath(st.sites[0].Dir(), archive.RecoveryName(set.checkIDs[0], ep.ID))); err == nil {
			rep.recordBytes = fi.Size()
		} else {
			return fmt.Errorf("no recovery record for epoch %d after Rewrap: %w", ep.ID, err)
		}
		counts, err := st.cat.EpochCounts(ctx)
		if err != nil {
			return err
		}
		if len(counts) != 1 || counts[ep.ID] != set.n {
			return fmt.Errorf("after rewrap: epoch counts %v, want all %d rows on %d", counts, set.n, ep.ID)
		}
		rep.dbAfter, rep.walAfter = dbSize(st.catPath)
		b.logf("%d rows, rep %d: Rewrap %.0f recordings/s (%v)", set.n, r+1, float64(set.n)/rep.rewrap.wall.Seconds(), rep.rewrap.wall.Round(time.Millisecond))
		return nil
	}
	raw := func() error {
		// The first -ref-keys rows in ID order, as Rewrap reads them
		// first; untimed. -1 is no epoch, so every row is read.
		refs, err := st.cat.Stale(ctx, -1, "", b.o.refKeys)
		if err != nil {
			return err
		}
		m, err := rawRewrap(b.kr, refs, b.workers)
		if err != nil {
			return err
		}
		rep.raw, rep.rawKeys = m, len(refs)
		b.logf("%d rows, rep %d: crypto alone %.0f keys/s (%d keys)", set.n, r+1, float64(len(refs))/m.wall.Seconds(), len(refs))
		return nil
	}
	steps := []func() error{rewrap, raw}
	if !rep.rewrapFirst {
		steps = []func() error{raw, rewrap}
	}
	for _, f := range steps {
		if err := f(); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// rawRewrap is the reference: the same seal.Unwrap (with the row's epoch
// identity) and seal.Wrap (to the current recipient) Rewrap makes, on the
// given rows' keys held in memory, by workers goroutines fed one row at a
// time through an unbuffered channel, as archive's rewrapPage does, but
// over all rows at once, with no catalog read or write between pages.
func rawRewrap(kr *keys.Keyring, refs []catalog.WrappedRef, workers int) (measured, error) {
	cur := kr.Current()
	out := make([][]byte, len(refs))
	errs := make([]error, len(refs))
	m := startMeter()
	parallel(len(refs), workers, func(i int) {
		id, err := kr.Identity(refs[i].KeyEpoch)
		if err != nil {
			errs[i] = err
			return
		}
		fk, err := seal.Unwrap(refs[i].WrappedKey, id)
		if err != nil {
			errs[i] = err
			return
		}
		out[i], errs[i] = seal.Wrap(fk, cur.Recipient)
	})
	res := m.stop()
	return res, errors.Join(errs...)
}

// placeholderSize is about the size of a real recovery record of these
// rows (the report gives the real size, measured after Rewrap wrote them).
const placeholderSize = 2500

// recordPath is where site.FS keeps object name: Dir/name[:2]/name.blob.
func recordPath(siteDir, name string) string {
	return filepath.Join(siteDir, name[:2], name+".blob")
}

// placeholders writes, for every row, a file where its epoch-1 recovery
// record lives on both sites (archive.RecoveryName(id, 1), in site.FS's
// layout). An ingest writes the real record; here the rows were inserted
// directly, and Rewrap only deletes the old record, by name, without
// reading it, so a placeholder of about the right size costs Rewrap what
// a real one would. Written without fsync (a sync follows).
func (b *rewrapBench) placeholders(ctx context.Context, db *sql.DB, set *rewrapSet) error {
	t0 := time.Now()
	sites := []string{filepath.Join(set.dir, "site-a"), filepath.Join(set.dir, "site-b")}
	for _, d := range sites {
		for i := range 256 {
			if err := os.MkdirAll(filepath.Join(d, fmt.Sprintf("%02x", i)), 0o700); err != nil {
				return err
			}
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT id FROM recordings`)
	if err != nil {
		return err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	b.logf("writing %d recovery-record placeholders (%d bytes) on each of 2 sites", len(ids), placeholderSize)
	data := make([]byte, placeholderSize)
	errs := make([]error, len(ids))
	parallel(len(ids), b.workers, func(i int) {
		name := archive.RecoveryName(ids[i], 1)
		for _, d := range sites {
			if err := os.WriteFile(recordPath(d, name), data, 0o600); err != nil {
				errs[i] = err
				return
			}
		}
	})
	set.placeholders = time.Since(t0)
	return errors.Join(errs...)
}

// objectCosts times, one after the other, writing an object of
// placeholderSize bytes to both sites through the replicator (Create,
// Write, Commit: fsync of each file and its directory), as Rewrap writes a
// recovery record, and deleting it (Replicator.Delete), as Rewrap deletes
// the old one. It returns the medians.
func objectCosts(ctx context.Context, st *stack, n int) (put, del time.Duration, err error) {
	data := make([]byte, placeholderSize)
	var puts, dels []float64
	for range n {
		name, err := recording.NewID()
		if err != nil {
			return 0, 0, err
		}
		t0 := time.Now()
		up, err := st.rep.Create(ctx, name)
		if err != nil {
			return 0, 0, err
		}
		if _, err := up.Write(data); err != nil {
			up.Abort()
			return 0, 0, err
		}
		if _, missing, err := up.Commit(); err != nil || len(missing) > 0 {
			return 0, 0, fmt.Errorf("object write: %v, missing %v", err, missing)
		}
		t1 := time.Now()
		if err := st.rep.Delete(ctx, name); err != nil {
			return 0, 0, err
		}
		puts, dels = append(puts, float64(t1.Sub(t0))), append(dels, float64(time.Since(t1)))
	}
	return time.Duration(median(puts)), time.Duration(median(dels)), nil
}

// startProfile starts a CPU profile into path and returns the function
// that stops it.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// parallel calls f(0) … f(n-1) on workers goroutines, handing out one
// index at a time through an unbuffered channel.
func parallel(n, workers int, f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func (b *rewrapBench) reportHeader(w io.Writer) {
	fmt.Fprintf(w, "## Rewrap\n\n")
	fmt.Fprintf(w, "- %s\n", machineLine())
	fmt.Fprintf(w, "- Rewrap: `RewrapOptions{Batch: %d, Workers: %d}` (0 is Rewrap's default); reference: GOMAXPROCS = %d workers\n", b.o.batch, b.o.workers, b.workers)
	fmt.Fprintf(w, "- synthetic rows: %d distinct file keys wrapped to epoch 1 (hybrid ML-KEM-768 + X25519, %d bytes each); row i stores key i mod %d, so rows share wrapped bytes, but each row still costs a full unwrap and wrap\n",
		b.o.distinct, len(b.wrapped[0]), b.o.distinct)
	fmt.Fprintf(w, "- one goroutine: `seal.Unwrap` %.3f ms, `seal.Wrap` %.3f ms (medians of 400), i.e. %.0f rewraps/s per core\n",
		ms(b.unwrap1), ms(b.wrap1), 1/(b.unwrap1+b.wrap1).Seconds())
	fmt.Fprintf(w, "- each repetition first rotates the keyring (keys.Keyring.Rotate), so every row is on an older epoch, then runs Rewrap and the reference, in alternating order\n\n")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (b *rewrapBench) reportSet(w io.Writer, set *rewrapSet) {
	n := float64(set.n)
	var rate, rawRate, ratio, cores, rawCores, busy, rawBusy, other, wPerRow, secs []float64
	var counts, stale, page, update, deletes, rest, getMS []float64
	for _, r := range set.reps {
		s := r.rewrap.wall.Seconds()
		secs = append(secs, s)
		rate = append(rate, n/s)
		rawRate = append(rawRate, float64(r.rawKeys)/r.raw.wall.Seconds())
		ratio = append(ratio, rate[len(rate)-1]/rawRate[len(rawRate)-1])
		cores = append(cores, r.rewrap.cpu.Seconds()/s)
		rawCores = append(rawCores, r.raw.cpu.Seconds()/r.raw.wall.Seconds())
		busy, rawBusy, other = append(busy, r.rewrap.busy), append(rawBusy, r.raw.busy), append(other, r.rewrap.other)
		wPerRow = append(wPerRow, float64(r.rewrap.written)/n)
		counts = append(counts, r.counts.Seconds()/s)
		stale = append(stale, r.stale.Seconds()/s)
		page = append(page, r.page.Seconds()/s)
		update = append(update, r.update.Seconds()/s)
		deletes = append(deletes, r.deletes.Seconds()/s)
		rest = append(rest, 1-(r.counts+r.stale+r.page+r.update+r.deletes).Seconds()/s)
		getMS = append(getMS, ms(r.get)/float64(max(r.gets, 1)))
	}
	fmt.Fprintf(w, "### %s recordings: median of %d repetition(s)\n\n", thousands(int64(set.n)), len(set.reps))
	if set.stoppedEarly {
		fmt.Fprintf(w, "**One repetition only**: it took %v, longer than -max-run %v, so the other repetitions ran on a catalog of %s rows (below).\n\n",
			set.reps[0].rewrap.wall.Round(time.Second), b.o.maxRun, thousands(int64(b.o.fallbackN)))
	}
	fmt.Fprintf(w, "Catalog built in %v (not timed below; %v of it writing the recovery-record placeholders): `catalog.db` %.2f GB after the build (WAL checkpointed), %.0f bytes per recording; mean wrapped key %.0f bytes. After the last repetition: `catalog.db` %.2f GB, WAL %.1f MB. A recovery record written by Rewrap: %d bytes.\n\n",
		set.build.Round(time.Second), set.placeholders.Round(time.Second), float64(set.buildDB)/1e9, set.avgRow, set.avgWrapped,
		float64(set.afterDB)/1e9, float64(set.afterWAL)/1e6, set.reps[0].recordBytes)
	fmt.Fprintf(w, "| measurement | Rewrap | reference: seal.Unwrap + seal.Wrap alone | ratio |\n|---|---|---|---|\n")
	fmt.Fprintf(w, "| recordings/s | %.0f | %.0f | %.2f |\n", median(rate), median(rawRate), median(rate)/median(rawRate))
	fmt.Fprintf(w, "| time for %s recordings, s | %.1f | %.1f | %.2f |\n", thousands(int64(set.n)), median(secs), n/median(rawRate), median(secs)/(n/median(rawRate)))
	fmt.Fprintf(w, "| CPUs used by this process | %.2f | %.2f | |\n", median(cores), median(rawCores))
	fmt.Fprintf(w, "| machine busy (Rewrap: outside this process) | %s (%s) | %s | |\n", pct(median(busy)), pct(median(other)), pct(median(rawBusy)))
	fmt.Fprintf(w, "| written to storage per recording (/proc/self/io) | %.1f KB | | |\n\n", median(wPerRow)/1e3)
	fmt.Fprintf(w, "Rewrap's wall time by serial phase (medians of the shares), timed around the catalog calls and the Progress callback:\n\n")
	fmt.Fprintf(w, "| EpochCounts | Stale (read a page) | rewrapPage (unwrap, wrap, Get, write recovery records, on Rewrap's workers) | UpdateWrapped (commit a page) | delete the old recovery records (one by one) | rest (2 audit appends) |\n|---|---|---|---|---|---|\n")
	fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n\n", pct(median(counts)), pct(median(stale)), pct(median(page)), pct(median(update)), pct(median(deletes)), pct(median(rest)))
	fmt.Fprintf(w, "Catalog `Get` inside the workers: median %.3f ms per call. Alone, one after the other, on this catalog's sites: writing a %d-byte object to both sites %.2f ms, deleting it %.2f ms (medians of 200).\n\n",
		median(getMS), placeholderSize, ms(set.put), ms(set.del))
	fmt.Fprintf(w, "| rep | epoch | order | load before | Rewrap s | recordings/s | reference keys/s (%d keys) | ratio | catalog.db / WAL after |\n|---|---|---|---|---|---|---|---|---|\n", set.reps[0].rawKeys)
	for i, r := range set.reps {
		order := "Rewrap first"
		if !r.rewrapFirst {
			order = "reference first"
		}
		fmt.Fprintf(w, "| %d | %d | %s | %s | %.1f | %.0f | %.0f | %.2f | %.2f GB / %.1f MB |\n", i+1, r.epoch, order, r.loadBefore,
			secs[i], rate[i], rawRate[i], ratio[i], float64(r.dbAfter)/1e9, float64(r.walAfter)/1e6)
	}
	fmt.Fprintf(w, "\nPer-repetition ratios: median %.2f (range %.2f–%.2f).\n\n", median(ratio), slices.Min(ratio), slices.Max(ratio))
}
