package audit

// Benchmarks of docs/benchmarks.md, "Audit log", each beside a reference
// measured in the same run on the same disk (b.TempDir, i.e. $TMPDIR):
//
//	go test ./internal/audit -run '^$' -bench . -count 6
//
// bench/audit.sh runs them and computes medians and ratios with
// `auditbench benchstat`. They run only with -bench; go test ./... is not
// slowed down.
//
// They measure SQLite only, the embedded default, on purpose: their
// references (a raw SQLite insert transaction opened as the log's
// database is, a raw fsync) are SQLite's and the disk's, and the numbers
// in docs/benchmarks.md are SQLite's. A PostgreSQL measurement needs a
// reference of its own (a raw insert transaction on the same server, with
// the same synchronous_commit) and is not part of bench/audit.sh.

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"callvault/internal/keys"
	"callvault/internal/sqlitedb"
)

// benchPatients are Skatteverket test personnummer; never real people.
var benchPatients = []string{"191212121212", "198001019804", "201701102384"}

// benchEvent is a typical allowed playback, as the archive writes it: one
// sealed field (the patient) and its blind index.
func benchEvent(i int64) *Event {
	return &Event{
		Action: "play", Outcome: Allowed, Reason: "own-unit",
		User: fmt.Sprintf("SE9999990001-N%03X", i%200), CareProvider: "SE9999990001-VG01", CareUnit: "SE9999990001-VE0A",
		Patient: benchPatients[i%int64(len(benchPatients))], RecordingID: fmt.Sprintf("%032x", i), Purpose: "care",
		ClientAddr: "10.0.0.11", CertFingerprint: "5d4bb2d1e0a1c3f7a9b8c6d4e2f0a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e3f5",
		RequestID: fmt.Sprintf("%016x", i), Detail: "bytes=0-",
	}
}

func openBenchLog(b *testing.B) *Log {
	b.Helper()
	kr, err := keys.Generate(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	l, err := Open(b.Context(), filepath.Join(b.TempDir(), "catalog.db"), kr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

// appendConcurrently appends n events with writers goroutines and returns
// the first error.
func appendConcurrently(ctx context.Context, l *Log, n int64, writers int) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		first atomic.Pointer[error]
	)
	for range writers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= n || first.Load() != nil {
					return
				}
				if err := l.Append(ctx, benchEvent(i)); err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		return *p
	}
	return nil
}

// BenchmarkAppend measures durable appends: every Append returns only
// after its entry is fsynced; concurrent appends are group-committed. One
// op is one entry.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			l := openBenchLog(b)
			ctx := b.Context()
			if err := appendConcurrently(ctx, l, 512, 64); err != nil { // the tree is not empty
				b.Fatal(err)
			}
			b.ResetTimer()
			if err := appendConcurrently(ctx, l, int64(b.N), writers); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkRawSQLiteInsert is the reference for one writer: a durable
// single-row INSERT transaction in a database opened as the log's is
// (sqlitedb.Open: WAL, synchronous=FULL), with a row of an entry's size.
func BenchmarkRawSQLiteInsert(b *testing.B) {
	ctx := b.Context()
	db, err := sqlitedb.Open(ctx, filepath.Join(b.TempDir(), "raw.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	row := make([]byte, 640)
	var i int64
	for b.Loop() {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO t (id, v) VALUES (?, ?)`, i, row); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txns/s")
}

// BenchmarkRawFsync is the floor of any durable commit on this disk:
// append 4 KiB (one SQLite page) to a file and fsync it.
func BenchmarkRawFsync(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "fsync"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for b.Loop() {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
}

// verifyEntries is the size of BenchmarkVerify's log.
const verifyEntries = 4096

// BenchmarkVerify measures Verify over a small log (verifyEntries entries,
// one checkpoint). One op is one whole Verify; entries/s is the rate.
func BenchmarkVerify(b *testing.B) {
	l := openBenchLog(b)
	ctx := b.Context()
	if err := appendConcurrently(ctx, l, verifyEntries, 256); err != nil {
		b.Fatal(err)
	}
	if _, err := l.Cut(ctx); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		res, err := l.Verify(ctx)
		if err != nil || res.Entries != verifyEntries {
			b.Fatalf("Verify = %+v, %v", res, err)
		}
	}
	b.ReportMetric(float64(b.N)*verifyEntries/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkRawSHA256 is Verify's hashing alone, per entry: one leaf hash
// of an entry as Append stores it (0x00 ‖ entry) and one inner-node hash
// (0x01 ‖ left ‖ right); a log of n entries has n leaves and n−1 inner
// nodes. One op is one entry's two SHA-256 calls; B/s counts the bytes
// hashed.
func BenchmarkRawSHA256(b *testing.B) {
	kr, err := keys.Generate(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	e := benchEvent(123456)
	e.Time = time.Now()
	raw, _, err := encode(kr, e, 1234567)
	if err != nil {
		b.Fatal(err)
	}
	leaf := append([]byte{0x00}, raw...)
	node := make([]byte, 1+2*tlog.HashSize)
	node[0] = 0x01
	b.SetBytes(int64(len(leaf) + len(node)))
	var sum [sha256.Size]byte
	for b.Loop() {
		sum = sha256.Sum256(leaf)
		copy(node[1:], sum[:])
		sum = sha256.Sum256(node)
		copy(node[1+tlog.HashSize:], sum[:])
	}
	b.ReportMetric(2*float64(b.N)/b.Elapsed().Seconds(), "sha256-calls/s")
	b.ReportMetric(float64(len(raw)), "entry-bytes")
}
