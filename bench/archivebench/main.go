// Command archivebench measures callvault's upload and playback, each beside
// a reference measured in the same run on the same machine, and prints the
// results as markdown for docs/benchmarks.md.
//
// Usage:
//
//	archivebench -age-dir DIR [flags]     run the upload and playback benchmarks
//	archivebench sealstat < bench.txt     medians and ratios of internal/seal's go test -bench output
//	archivebench fileserver [flags]       the playback reference server (started by archivebench itself)
//
// The run is self-contained and stays on loopback: archivebench builds
// callvault into a temporary directory (unless -callvault names a binary),
// generates distinct synthetic calls (2-channel G.711 μ-law WAV, 8 kHz) into
// that temporary directory — outside every callvault data directory — and
// for each repetition starts `callvault serve --dev` in a fresh data
// directory, uploads the calls, encrypts the same files with the age CLI,
// plays recordings back with many concurrent clients, and plays the same
// plaintext files back from a plain net/http file server with the same TLS
// 1.3 mutual-TLS configuration. Everything it created is removed at the end,
// also when it fails or is interrupted.
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

	"callvault/bench/internal/synthcall"
)

func main() {
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "sealstat":
		err = sealStat(os.Stdin, os.Stdout)
	case len(os.Args) > 1 && os.Args[1] == "fileserver":
		err = fileServer(os.Args[2:], os.Stdout)
	default:
		err = run(os.Args[1:], os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "archivebench:", err)
		os.Exit(1)
	}
}

// options are the flags of a benchmark run.
type options struct {
	callvault     string
	ageDir        string
	tmpParent     string
	n             int
	seconds       int
	uploadClients int
	playClients   int
	playGets      int
	reps          int
	timeout       time.Duration
}

func run(args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("archivebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.callvault, "callvault", "", "callvault binary (default: build ./cmd/callvault of this module into the temp dir)")
	fs.StringVar(&o.ageDir, "age-dir", "", "directory holding the age and age-keygen binaries (v1.3.2); required")
	fs.StringVar(&o.tmpParent, "tmp", "", "parent of the run's temp dir (default $TMPDIR); must be on the disk to measure")
	fs.IntVar(&o.n, "n", 200, "recordings per upload measurement")
	fs.IntVar(&o.seconds, "seconds", 228, "length of each synthetic call in seconds (228 s = 3,648,000 bytes of samples)")
	fs.IntVar(&o.uploadClients, "upload-clients", 4, "concurrent clients of the parallel upload measurement")
	fs.IntVar(&o.playClients, "play-clients", 50, "concurrent playback clients")
	fs.IntVar(&o.playGets, "play-gets", 20, "timed full-audio GETs per playback client")
	fs.IntVar(&o.reps, "reps", 3, "repetitions of every measurement (medians are reported)")
	fs.DurationVar(&o.timeout, "timeout", 8*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.ageDir == "" {
		return errors.New("-age-dir is required (GOBIN=DIR go install filippo.io/age/cmd/...@v1.3.2)")
	}
	if o.n < 1 || o.seconds < 1 || o.uploadClients < 1 || o.playClients < 1 || o.playGets < 1 || o.reps < 1 {
		return errors.New("-n, -seconds, -upload-clients, -play-clients, -play-gets and -reps must be positive")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	tmp, err := os.MkdirTemp(o.tmpParent, "callvault-bench-")
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
	o        options
	tmp      string
	log      io.Writer
	bin      string // callvault binary
	age      string // age binary
	recips   string // age recipients file (hybrid)
	files    []callFile
	machine  machine
	comp     components
	reps     []repResult
	live     []int // pids of the servers running now
	ageKeyPQ bool  // the recipient is a hybrid ML-KEM-768 + X25519 one
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (b *bench) prepare(ctx context.Context) error {
	b.machine = describeMachine()
	b.bin = b.o.callvault
	if b.bin == "" {
		b.bin = filepath.Join(b.tmp, "bin", "callvault")
		b.logf("building callvault into %s", b.bin)
		root, err := moduleRoot(ctx)
		if err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.bin, "./cmd/callvault")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building callvault: %w\n%s", err, out)
		}
	}
	b.age = filepath.Join(b.o.ageDir, "age")
	if err := b.ageKey(ctx); err != nil {
		return err
	}
	b.logf("writing %d synthetic calls of %d s", b.o.n, b.o.seconds)
	start := time.Now()
	var err error
	if b.files, err = synthcall.Write(filepath.Join(b.tmp, "audio"), b.o.n, b.o.seconds); err != nil {
		return err
	}
	b.logf("calls written in %v (%d bytes each)", time.Since(start).Round(time.Millisecond), b.files[0].Size)
	// First, before the repetitions free gigabytes that the page-cache
	// test would write into; then a pause (as between repetitions) for the
	// host to take back the memory this test frees.
	b.logf("measuring component costs")
	if b.comp, err = measureComponents(filepath.Join(b.tmp, "components"), b.files[0].Size); err != nil {
		return err
	}
	return pause(ctx)
}

// pause waits 5 s, time for this VM to hand memory freed just before back
// to its host (see runReps), unless ctx ends first.
func pause(ctx context.Context) error {
	select {
	case <-time.After(5 * time.Second):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ageKey generates the age identity of the reference: hybrid post-quantum if
// this age-keygen supports -pq, X25519 otherwise.
func (b *bench) ageKey(ctx context.Context) error {
	dir := filepath.Join(b.tmp, "age")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	keygen := filepath.Join(b.o.ageDir, "age-keygen")
	help, _ := exec.CommandContext(ctx, keygen, "-h").CombinedOutput()
	b.ageKeyPQ = strings.Contains(string(help), "-pq")
	args := []string{"-o", filepath.Join(dir, "key.txt")}
	if b.ageKeyPQ {
		args = append([]string{"-pq"}, args...)
	}
	if out, err := exec.CommandContext(ctx, keygen, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("age-keygen: %w\n%s", err, out)
	}
	b.recips = filepath.Join(dir, "recipients.txt")
	out, err := exec.CommandContext(ctx, keygen, "-y", filepath.Join(dir, "key.txt")).Output()
	if err != nil {
		return fmt.Errorf("age-keygen -y: %w", err)
	}
	if b.ageKeyPQ && !strings.HasPrefix(string(out), "age1pq1") {
		return fmt.Errorf("age-keygen -pq made no age1pq1 recipient")
	}
	return os.WriteFile(b.recips, out, 0o600)
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the callvault module: run from /work/main or pass -callvault")
	}
	return filepath.Dir(gomod), nil
}
