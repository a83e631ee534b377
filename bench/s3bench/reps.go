package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"callvault/bench/internal/benchstat"
	"callvault/bench/internal/cvclient"
)

// repResult is everything one repetition measured.
type repResult struct {
	loadBefore, loadAfter string
	order                 []string // the steps in the order they ran
	cv, sse, plain        measurement
}

// Reference buckets, one of each on both servers.
const (
	bucketSSE   = "reference-sse"
	bucketPlain = "reference-plain"
)

// runReps runs every repetition, each on two fresh MinIO servers and a
// fresh callvault. The steps run one after the other, in an order that
// rotates by one place per repetition (callvault, SSE-S3, no SSE; then SSE-S3,
// no SSE, callvault; …), so that each takes each place equally often and
// drift in the machine's state does not always favour the same step (the
// first step of a repetition writes into memory the last repetition
// freed, which is faster on this VM). Nothing written is deleted
// before the repetition ends (this VM returns freed memory to its host,
// and writing into memory just freed is faster than into fresh memory; see
// docs/benchmarks.md), and a pause before each repetition lets the host
// take back what the last one freed.
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

func (b *bench) rep(ctx context.Context, r int) (rr repResult, err error) {
	rr = repResult{loadBefore: benchstat.LoadAvg()}
	dir := filepath.Join(b.tmp, fmt.Sprintf("rep-%d", r+1))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return rr, err
	}
	defer os.RemoveAll(dir)

	b.logf("rep %d: starting two MinIO servers (load %s)", r+1, rr.loadBefore)
	var servers [2]*minioServer
	for k, name := range []string{"dc1", "dc2"} {
		if servers[k], err = startMinIO(ctx, b.o.minio, filepath.Join(dir, "minio-"+name), name); err != nil {
			return rr, err
		}
		defer servers[k].proc.stop()
	}
	for _, s := range servers {
		for _, bucket := range []string{bucketSSE, bucketPlain} {
			if err := s.makeLockedBucket(ctx, bucket); err != nil {
				return rr, err
			}
		}
	}

	b.logf("rep %d: starting callvault serve --dev on sites %s (dc1) and %s (dc2)", r+1, cvSites[0], cvSites[1])
	dataDir := filepath.Join(dir, "callvault")
	api, err := freeAddr()
	if err != nil {
		return rr, err
	}
	ops, err := freeAddr()
	if err != nil {
		return rr, err
	}
	// SIPREC is off so that the benchmark does not need (or clash on) the
	// SIP ports; it has no part in an API upload.
	srv, err := launch("callvault", b.o.callvault, filepath.Join(dir, "callvault.log"), nil, true,
		"serve", "--dev", "--data", dataDir, "--listen", api, "--ops-listen", ops,
		"--sip-listen", "off", "--sip-listen-tls", "off",
		"--site-a", servers[0].siteURL(cvSites[0]), "--site-b", servers[1].siteURL(cvSites[1]))
	if err != nil {
		return rr, err
	}
	defer srv.stop()
	addr, err := srv.waitListening(ctx)
	if err != nil {
		return rr, err
	}
	devDir := filepath.Join(dataDir, "dev")
	// One call start and end for the repetition: callvault's objects and
	// the references' are locked until the same second.
	md, err := cvclient.LoadMetadata(devDir, b.o.seconds)
	if err != nil {
		return rr, err
	}

	type step struct {
		name string
		run  func() (measurement, error)
		into *measurement
	}
	steps := []step{
		{"callvault", func() (measurement, error) {
			return b.callvaultStep(ctx, srv, addr, ops, devDir, md, servers, fmt.Sprintf("r%d", r+1))
		}, &rr.cv},
		{"SSE-S3", func() (measurement, error) { return b.refStep(ctx, servers, bucketSSE, true, md.EndedAt()) }, &rr.sse},
	}
	if b.o.plain {
		steps = append(steps, step{"no SSE", func() (measurement, error) { return b.refStep(ctx, servers, bucketPlain, false, md.EndedAt()) }, &rr.plain})
	}
	for i := range steps {
		s := steps[(i+r)%len(steps)]
		rr.order = append(rr.order, s.name)
		// The disk's dirty pages are written back first (untimed), so
		// that no step pays for another's writes.
		syscall.Sync()
		m, err := s.run()
		*s.into = m
		if err != nil {
			return rr, err
		}
		b.logStep(r, s.name, m)
	}
	rr.loadAfter = benchstat.LoadAvg()
	return rr, nil
}

func (b *bench) logStep(r int, name string, m measurement) {
	b.logf("rep %d: %s: %.1f files/s, %.0f MB/s, p50 %.1f ms; CPUs %.0f%% busy, %.0f%% outside the benchmark; S3 requests per file: %s; %s", r+1, name,
		m.perSec(), m.mbps(), ms(pct(m.lat, 50)), 100*m.load.Busy, 100*m.load.Other, m.requestsPerFile(), m.check)
}
