// Command partitionbench measures what partitioning the audit log by month
// would change on PostgreSQL, so that the choice is made on numbers
// (docs/benchmarks.md, "Audit log on PostgreSQL: one table or monthly
// partitions").
//
// It starts a throwaway PostgreSQL cluster (internal/sqldb/pgtest) and
// creates the audit log with audit.Open (the real schema), then a twin of
// audit_log partitioned by month on time: the same columns and the same
// four secondary indexes, one partition per month of ten years. A
// partitioned table's unique keys must hold the partition key, so the
// twin's primary key is (idx, time): the database would no longer refuse
// a second entry with the same idx.
//
// Both tables get the same -n synthetic entries by COPY (in idx order,
// time rising with idx over ten years; the indexes built after the load),
// then the audit package's own queries are timed on each, alternating
// between the tables, in the same run:
//
//   - ForPatient: `SELECT entry FROM … WHERE patient_index = ? ORDER BY
//     idx`, cold (as root: after a restart of PostgreSQL and a drop of the
//     page cache, distinct patients, each once) and warm, and for three
//     test patients with 10, 100 and 1,000 events;
//   - one entry: `SELECT entry FROM … WHERE idx = ?` (proofs, tiles);
//   - a month: `SELECT entry FROM … WHERE time >= ? AND time < ? ORDER BY
//     idx` (the monthly report), all of a random month's entries;
//   - append: a transaction as the log's writer runs it, MAX(idx) then 64
//     INSERTs, committed with synchronous_commit on.
//
// Everything lives in a temp dir under -tmp ($TMPDIR), removed at the end.
// No personal data: blind indexes are HMACs of Skatteverket's test
// personnummer (measured patients) and of "99" + 10 digits (bulk), entries
// are random bytes of a real entry's size.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "partitionbench:", err)
		os.Exit(1)
	}
}
