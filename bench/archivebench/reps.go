package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"callvault/bench/internal/benchstat"
	"callvault/bench/internal/cvclient"
)

// repResult is everything one repetition measured.
type repResult struct {
	loadBefore, loadAfter string
	cvFirst               bool          // callvault ran before its references in this repetition (concurrent steps)
	upCV                  [2]throughput // [0] one client (interleaved with the references), [1] -upload-clients clients
	upAge                 [2]throughput // age CLI, no fsync
	upAgeSync             [2]throughput // age CLI, outputs fsynced by the driver
	playCV, playRef       playResult
}

// runReps runs every repetition: each one starts a fresh callvault, so no
// repetition sees another's data. Sequential uploads interleave callvault
// and its references file by file; the concurrent steps run as blocks,
// callvault first in even repetitions and last in odd ones, so that drift
// in the machine's state (page cache, disk writeback, others' load) does
// not always favour the same side. Nothing written is deleted before the
// repetition ends: this VM returns freed memory to its host, and a step
// writing into memory just freed runs faster than one that gets fresh
// memory, so freeing nothing gives every step fresh memory alike, and a
// pause before each repetition lets the host take back what the last one
// freed.
func (b *bench) runReps(ctx context.Context) error {
	for r := range b.o.reps {
		if r > 0 {
			if err := pause(ctx); err != nil {
				return err
			}
		}
		rr, err := b.rep(ctx, r)
		if err != nil {
			return fmt.Errorf("repetition %d: %w", r+1, err)
		}
		b.reps = append(b.reps, rr)
	}
	return nil
}

func (b *bench) rep(ctx context.Context, r int) (repResult, error) {
	rr := repResult{loadBefore: loadavg(), cvFirst: r%2 == 0}
	dir := filepath.Join(b.tmp, fmt.Sprintf("rep-%d", r+1))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return rr, err
	}
	defer os.RemoveAll(dir)
	dataDir := filepath.Join(dir, "data")
	devDir := filepath.Join(dataDir, "dev")
	b.logf("rep %d: starting callvault serve --dev (load %s)", r+1, rr.loadBefore)
	srv, opsAddr, err := startCallvault(ctx, b.bin, dataDir, filepath.Join(dir, "callvault.log"))
	if err != nil {
		return rr, err
	}
	defer srv.stop()
	b.live = []int{srv.cmd.Process.Pid}
	defer func() { b.live = nil }()

	u, err := b.newUploader(srv, opsAddr, devDir)
	if err != nil {
		return rr, err
	}
	syscall.Sync()
	b.logf("rep %d: sequential uploads, callvault / age / age + fsync taking turns file by file", r+1)
	var ids []string
	rr.upCV[0], rr.upAge[0], rr.upAgeSync[0], ids, err = b.sequential(ctx, u, dir, fmt.Sprintf("r%d-c1", r+1))
	if err != nil {
		return rr, err
	}
	b.logf("rep %d: 1 client: callvault %.1f rec/s, age %.1f, age + fsync %.1f; CPUs %.0f%% busy, %.0f%% by others", r+1,
		rr.upCV[0].perSec(), rr.upAge[0].perSec(), rr.upAgeSync[0].perSec(), 100*rr.upCV[0].load.busy, 100*rr.upCV[0].load.other)

	clients := b.o.uploadClients
	steps := []func() error{
		func() error {
			t, err := u.concurrent(ctx, clients, fmt.Sprintf("r%d-c%d", r+1, clients))
			rr.upCV[1] = t
			b.logf("rep %d: callvault upload, %d clients: %.1f rec/s, %.0f MB/s, CPUs %.0f%% busy, %.0f%% by others", r+1, clients, t.perSec(), t.mbps(), 100*t.load.busy, 100*t.load.other)
			return err
		},
		func() error {
			t, err := b.uploadAge(ctx, clients, [2]string{filepath.Join(dir, "age-n-a"), filepath.Join(dir, "age-n-b")}, false)
			rr.upAge[1] = t
			b.logf("rep %d: age, %d at a time: %.1f files/s, %.0f MB/s, CPUs %.0f%% busy, %.0f%% by others", r+1, clients, t.perSec(), t.mbps(), 100*t.load.busy, 100*t.load.other)
			return err
		},
		func() error {
			t, err := b.uploadAge(ctx, clients, [2]string{filepath.Join(dir, "age-fsync-n-a"), filepath.Join(dir, "age-fsync-n-b")}, true)
			rr.upAgeSync[1] = t
			b.logf("rep %d: age + fsync, %d at a time: %.1f files/s, %.0f MB/s, CPUs %.0f%% busy, %.0f%% by others", r+1, clients, t.perSec(), t.mbps(), 100*t.load.busy, 100*t.load.other)
			return err
		},
	}
	if err := runOrdered(rr.cvFirst, steps); err != nil {
		return rr, err
	}

	nurse, err := cvclient.ClientTLS(devDir, "nurse")
	if err != nil {
		return rr, err
	}
	cvTarget := playTarget{cpu: srv.cpu, audit: func() (cvclient.AuditStats, error) { return cvclient.ScrapeAudit(opsAddr) }}
	for i, id := range ids {
		cvTarget.urls = append(cvTarget.urls, "https://"+srv.addr+"/v1/recordings/"+id+"/audio")
		cvTarget.sizes = append(cvTarget.sizes, b.files[i].Size)
	}
	if err := verifyPlayback(ctx, nurse, cvTarget.urls[0], b.files[0].Path); err != nil {
		return rr, fmt.Errorf("callvault: %w", err)
	}
	fsrv, err := startFileServer(ctx, filepath.Join(b.tmp, "audio"), devDir, filepath.Join(dir, "fileserver.log"))
	if err != nil {
		return rr, err
	}
	defer fsrv.stop()
	b.live = append(b.live, fsrv.cmd.Process.Pid)
	cvTarget.live = b.live
	refTarget := playTarget{cpu: fsrv.cpu, live: b.live}
	for _, f := range b.files {
		refTarget.urls = append(refTarget.urls, "https://"+fsrv.addr+"/audio/"+f.Name)
		refTarget.sizes = append(refTarget.sizes, f.Size)
	}
	if err := verifyPlayback(ctx, nurse, refTarget.urls[0], b.files[0].Path); err != nil {
		return rr, fmt.Errorf("reference: %w", err)
	}
	steps = []func() error{
		func() error {
			syscall.Sync()
			p, err := playback(ctx, nurse, cvTarget, b.o.playClients, b.o.playGets)
			rr.playCV = p
			b.logf("rep %d: callvault playback: ttfb p50 %v p99 %v, %.0f MB/s, CPUs %.0f%% busy, %.0f%% by others", r+1, pct(p.ttfb, 50), pct(p.ttfb, 99), p.mbps(), 100*p.load.busy, 100*p.load.other)
			return err
		},
		func() error {
			syscall.Sync()
			p, err := playback(ctx, nurse, refTarget, b.o.playClients, b.o.playGets)
			rr.playRef = p
			b.logf("rep %d: reference playback: ttfb p50 %v p99 %v, %.0f MB/s, CPUs %.0f%% busy, %.0f%% by others", r+1, pct(p.ttfb, 50), pct(p.ttfb, 99), p.mbps(), 100*p.load.busy, 100*p.load.other)
			return err
		},
	}
	if err := runOrdered(rr.cvFirst, steps); err != nil {
		return rr, err
	}
	rr.loadAfter = loadavg()
	return rr, nil
}

// runOrdered runs steps[0] (callvault) and then its references, or the
// references and then steps[0]. Before each step the disk's dirty pages
// are written back (untimed), so no step pays for another's writes.
func runOrdered(cvFirst bool, steps []func() error) error {
	order := append(steps[1:len(steps):len(steps)], steps[0])
	if cvFirst {
		order = steps
	}
	for _, s := range order {
		syscall.Sync()
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

// loadavg returns the first three fields of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	var a, c, d string
	fmt.Sscan(string(b), &a, &c, &d)
	return a + " " + c + " " + d
}

func pct(d []time.Duration, p float64) time.Duration { return benchstat.Percentile(d, p) }
