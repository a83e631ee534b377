package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"time"

	"callvault/internal/audit"
)

// verifyRep is one repetition of the verify measurement.
type verifyRep struct {
	verify time.Duration // audit.Log.Verify of the whole log
	scan   time.Duration // reference: the same SELECT as Verify, rows read, nothing checked
	sha    time.Duration // reference: the same SHA-256 calls on entries in memory
	shaRes shaResult
}

// scanResult is what the raw scan saw.
type scanResult struct {
	entries    int64
	entryBytes int64 // sum of the stored entries' lengths
	stored     int64 // stored hashes (leaf + subtree hashes)
	sample     [][]byte
}

// rawScan reads every row Verify reads (SELECT idx, entry, hashes ... ORDER
// BY idx) through a second handle opened like the log's, and keeps a
// sample of about sampleN entries spread over the log.
func rawScan(ctx context.Context, db *sql.DB, size int64, sampleN int) (scanResult, time.Duration, error) {
	var r scanResult
	every := max(1, size/int64(sampleN))
	t0 := time.Now()
	rows, err := db.QueryContext(ctx, `SELECT idx, entry, hashes FROM audit_log ORDER BY idx`)
	if err != nil {
		return r, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var idx int64
		var raw, packed sql.RawBytes
		if err := rows.Scan(&idx, &raw, &packed); err != nil {
			return r, 0, err
		}
		r.entries++
		r.entryBytes += int64(len(raw))
		r.stored += int64(len(packed) / sha256.Size)
		if idx%every == 0 && len(r.sample) < sampleN {
			r.sample = append(r.sample, append([]byte(nil), raw...))
		}
	}
	if err := rows.Err(); err != nil {
		return r, 0, err
	}
	return r, time.Since(t0), nil
}

// shaResult counts the reference's work.
type shaResult struct {
	calls int64
	bytes int64
}

// rawSHA256 makes exactly the SHA-256 calls Verify makes for n entries —
// per entry i the leaf hash H(0x00 ‖ entry) and one inner-node hash
// H(0x01 ‖ left ‖ right) per trailing 1 bit of i — on entries from sample
// held in memory: the hashing alone, no database, no checks.
func rawSHA256(n int64, sample [][]byte) (shaResult, time.Duration) {
	var res shaResult
	bufs := make([][]byte, len(sample))
	for i, s := range sample {
		bufs[i] = append([]byte{0x00}, s...)
	}
	var node [1 + 2*sha256.Size]byte
	node[0] = 0x01
	stack := make([][sha256.Size]byte, 0, 64)
	t0 := time.Now()
	for i := range n {
		leaf := bufs[i%int64(len(bufs))]
		h := sha256.Sum256(leaf)
		res.calls++
		res.bytes += int64(len(leaf))
		for m := i; m&1 == 1; m >>= 1 {
			copy(node[1:], stack[len(stack)-1][:])
			copy(node[1+sha256.Size:], h[:])
			h = sha256.Sum256(node[:])
			stack = stack[:len(stack)-1]
			res.calls++
			res.bytes += int64(len(node))
		}
		stack = append(stack, h)
	}
	return res, time.Since(t0)
}

// timeVerify runs Verify on l and checks that it covered size entries.
func timeVerify(ctx context.Context, l *audit.Log, size int64) (time.Duration, int, error) {
	t0 := time.Now()
	res, err := l.Verify(ctx)
	d := time.Since(t0)
	if err != nil {
		return 0, 0, fmt.Errorf("verify: %w", err)
	}
	if res.Entries != size {
		return 0, 0, fmt.Errorf("verify covered %d entries, want %d", res.Entries, size)
	}
	return d, res.Checkpoints, nil
}
