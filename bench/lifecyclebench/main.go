// Command lifecyclebench measures two steps of the recording lifecycle,
// each beside a reference measured in the same run on the same machine, and
// prints the results as markdown for docs/benchmarks.md, "Lifecycle: scrub
// and rewrap".
//
// Usage:
//
//	lifecyclebench scrub [flags]    archive.Service.Scrub beside raw read + SHA-256 of the same blob files
//	lifecyclebench rewrap [flags]   archive.Service.Rewrap beside seal.Unwrap + seal.Wrap alone
//
// scrub ingests -n synthetic calls (2-channel G.711 μ-law WAV, generated in
// memory) through archive.Service.Ingest into a fresh archive (catalog,
// audit log, directory, two filesystem sites) in a temp dir, then times
// Scrub (OrphanGrace -1) and a plain Go loop that reads the same blob files
// in the same order with a 1 MiB buffer and SHA-256s them, alternating the
// order between repetitions: warm (after an untimed pass), and, if it can
// drop the page cache (root), cold, with the cache dropped before each pass.
//
// rewrap builds a catalog of -n synthetic rows on archive key epoch 1
// directly with database/sql (catalog.Insert, one durable transaction per
// row, would take far longer), rotates the keyring and times Rewrap of
// every row, beside the same unwrap and wrap calls on the keys of the first
// -ref-keys rows, held in memory, on as many goroutines. The keyring is
// rotated again before each repetition, so every repetition rewraps every
// row. If the first repetition takes longer than -max-run, the remaining
// ones run on a catalog of -fallback-n rows.
//
// Everything lives in a temp dir under -tmp ($TMPDIR), removed at the end,
// also on an error or an interrupt. No personal data: the only patient
// numbers are Skatteverket's test personnummer 191212121212 (scrub) and
// bulk numbers "99" + 10 digits, which are not personnummer (rewrap).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "scrub" && os.Args[1] != "rewrap") {
		fmt.Fprintln(os.Stderr, "usage: lifecyclebench scrub|rewrap [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var run func(context.Context, []string, io.Writer, io.Writer) error = runScrub
	if os.Args[1] == "rewrap" {
		run = runRewrap
	}
	if err := run(ctx, os.Args[2:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "lifecyclebench:", err)
		os.Exit(1)
	}
}
