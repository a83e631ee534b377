// Command s3bench measures callvault's upload to two S3 sites beside the
// same S3 server's own PUT throughput for the same files, with its
// server-side encryption, measured in the same run, and prints the results
// as markdown for docs/benchmarks.md ("S3 sites").
//
// Usage:
//
//	s3bench -callvault BIN -minio BIN [flags]
//
// Each repetition starts two MinIO servers (the two data centres), each in
// a fresh data directory with SSE-S3 enabled by a built-in key, and
// `callvault serve --dev` in a fresh data directory with --site-a and
// --site-b on fresh buckets of the two servers (serve --dev creates them
// with Object Lock). Then, one after the other, in an order that rotates
// by one place per repetition, with the same number of concurrent clients:
//
//   - callvault: the synthetic calls uploaded through the mutual-TLS API
//     exactly as bench/archivebench uploads them (bench/internal/cvclient);
//     callvault seals each one and writes it to both sites, locked in
//     COMPLIANCE mode until its retention date, with a recovery record per
//     site and durable audit entries;
//   - reference "SSE-S3": the same plaintext files PUT with minio-go
//     directly to both servers, each file to both at once, into a bucket
//     with Object Lock, each object with SSE-S3 and a COMPLIANCE retention
//     to the same date, with the request options callvault's s3site uses;
//   - reference "no SSE" (unless -plain=false): the same without SSE-S3.
//
// Everything stays on loopback. The synthetic calls (bench/internal/
// synthcall) live in the run's temporary directory, outside every data
// directory, and everything s3bench created is removed at the end, also
// when it fails or is interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"callvault/bench/internal/benchstat"
	"callvault/bench/internal/synthcall"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "s3bench:", err)
		os.Exit(1)
	}
}

// options are the flags of a run.
type options struct {
	callvault      string
	minio          string
	minioVersion   string
	tmpParent      string
	n              int
	seconds        int
	clients        int
	reps           int
	plain          bool
	retentionYears int
	timeout        time.Duration
}

func run(args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("s3bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.callvault, "callvault", "", "callvault binary (required)")
	fs.StringVar(&o.minio, "minio", "", "MinIO server binary (required)")
	fs.StringVar(&o.minioVersion, "minio-version", "", "MinIO version to report (default: from `go version -m` of -minio)")
	fs.StringVar(&o.tmpParent, "tmp", "", "parent of the run's temp dir (default $TMPDIR); must be on the disk to measure")
	fs.IntVar(&o.n, "n", 200, "recordings per measurement")
	fs.IntVar(&o.seconds, "seconds", 228, "length of each synthetic call in seconds (228 s = 3,648,000 bytes of samples)")
	fs.IntVar(&o.clients, "clients", 4, "concurrent clients (callvault uploads, or files PUT to both servers, in flight)")
	fs.IntVar(&o.reps, "reps", 3, "repetitions of every measurement (medians are reported)")
	fs.BoolVar(&o.plain, "plain", true, "also measure the reference without SSE-S3")
	fs.IntVar(&o.retentionYears, "retention-years", 10, "retention of the reference's objects after the call's end; callvault's default retention")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.callvault == "" || o.minio == "" {
		return errors.New("-callvault and -minio are required (bench/s3.sh builds both)")
	}
	if o.n < 1 || o.seconds < 1 || o.clients < 1 || o.reps < 1 || o.retentionYears < 1 {
		return errors.New("-n, -seconds, -clients, -reps and -retention-years must be positive")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	tmp, err := os.MkdirTemp(o.tmpParent, "callvault-s3bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &bench{o: o, tmp: tmp, log: stderr}
	if err := b.prepare(ctx); err != nil {
		return err
	}
	if err := b.runReps(ctx); err != nil {
		return err
	}
	b.report(stdout)
	return nil
}

// bench holds one run's inputs and results.
type bench struct {
	o         options
	tmp       string
	log       io.Writer
	files     []synthcall.File
	bytes     int64  // plaintext bytes of all files
	machine   string // benchstat.Machine
	loadStart string
	started   time.Time
	reps      []repResult
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (b *bench) prepare(ctx context.Context) error {
	b.machine, b.loadStart, b.started = benchstat.Machine(), benchstat.LoadAvg(), time.Now().UTC()
	if b.o.minioVersion == "" {
		b.o.minioVersion = moduleVersion(ctx, b.o.minio)
	}
	b.logf("writing %d synthetic calls of %d s", b.o.n, b.o.seconds)
	var err error
	if b.files, err = synthcall.Write(filepath.Join(b.tmp, "audio"), b.o.n, b.o.seconds); err != nil {
		return err
	}
	for _, f := range b.files {
		b.bytes += f.Size
	}
	return pause(ctx)
}

// moduleVersion reads the main module's version from a Go binary's build
// information, or returns "?".
func moduleVersion(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, "go", "version", "-m", bin).Output()
	if err != nil {
		return "?"
	}
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "mod" {
			return f[1] + "@" + f[2]
		}
	}
	return "?"
}

// pause waits 5 s, time for this VM to hand memory freed just before back
// to its host (docs/benchmarks.md, "Repeatability"), unless ctx ends first.
func pause(ctx context.Context) error {
	select {
	case <-time.After(5 * time.Second):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
