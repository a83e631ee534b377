// Command searchbench measures patient search — catalog.DB.ByPatient, the
// database half of archive.Service.Search — on a catalog of 10 million
// recordings, on one engine per run (SQLite or PostgreSQL), beside the
// indexed query alone measured in the same run on the same database, and
// prints the results as markdown for docs/benchmarks.md, "Patient search
// at 10 million recordings".
//
// Usage:
//
//	searchbench -engine sqlite|postgres [flags]
//
// It builds the catalog with catalog.Open (the real schema and its
// migrations), then loads -n synthetic rows directly (catalog.Insert, one
// durable transaction per row, would take a day): SQLite through
// database/sql in transactions of 10,000 rows, PostgreSQL with COPY. The
// secondary indexes of recordings and recording_staff are dropped for the
// load and created again from their own definitions after it, as an
// operator's bulk import would. For PostgreSQL it starts a throwaway
// cluster (internal/sqldb/pgtest) with -pg-conf added to its
// configuration.
//
// Then it times two methods on the same patients:
//
//   - reference: the indexed query alone, `SELECT id FROM recordings WHERE
//     care_provider = ? AND patient_index = ? ORDER BY started_at`, through
//     the same database handle type as the catalog (internal/sqldb), every
//     row read into memory;
//   - ByPatient: catalog.DB.ByPatient, which reads every column and joins
//     the staff.
//
// in three phases: cold (as root, after the page cache is dropped and
// PostgreSQL restarted: distinct bulk patients, each queried once by one
// method, methods alternating), warm (bulk patients queried again and
// again, methods alternating in order) and three test patients with 10,
// 100 and 1,000 recordings (warm). Every query's row count is checked
// against the patient's known number of recordings.
//
// Everything lives in a temp dir under -tmp ($TMPDIR), removed at the end,
// also on an error or an interrupt. No personal data: the measured
// patients are Skatteverket's published test personnummer; bulk patients
// are "99" + 10 digits, which are not personnummer.
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
		fmt.Fprintln(os.Stderr, "searchbench:", err)
		os.Exit(1)
	}
}
