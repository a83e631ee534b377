package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"callvault/bench/internal/cvclient"
)

// throughput is one measurement of n recordings stored (or encrypted) by
// some number of concurrent clients.
type throughput struct {
	n     int
	bytes int64               // plaintext bytes of all n files
	wall  time.Duration       // first request start to last response
	lat   []time.Duration     // per recording: request start to response (or both age runs done)
	cpu   time.Duration       // CPU time of the server process (or of the age processes)
	audit cvclient.AuditStats // callvault only: audit appends made durable during the measurement
	load  cpuLoad             // how busy the machine was during the measurement
}

func (t throughput) perSec() float64 { return float64(t.n) / t.wall.Seconds() }
func (t throughput) mbps() float64   { return float64(t.bytes) / 1e6 / t.wall.Seconds() }

// cvUploader uploads the run's files to one callvault server as the dev
// capture system, with metadata made from the dev setup's
// sample-metadata.json (a new call_id per upload).
type cvUploader struct {
	b       *bench
	srv     *process
	opsAddr string
	cfg     *tls.Config
	md      *cvclient.Metadata
}

func (b *bench) newUploader(srv *process, opsAddr, devDir string) (*cvUploader, error) {
	cfg, err := cvclient.ClientTLS(devDir, "capture")
	if err != nil {
		return nil, err
	}
	md, err := cvclient.LoadMetadata(devDir, b.o.seconds)
	if err != nil {
		return nil, err
	}
	return &cvUploader{b: b, srv: srv, opsAddr: opsAddr, cfg: cfg, md: md}, nil
}

// one uploads file i with call_id bench-TAG-i and returns the recording ID
// and the time from request start to the 201 answer.
func (u *cvUploader) one(ctx context.Context, hc *http.Client, tag string, i int) (string, time.Duration, error) {
	mdJSON, err := u.md.For(fmt.Sprintf("bench-%s-%03d", tag, i))
	if err != nil {
		return "", 0, err
	}
	t0 := time.Now()
	id, err := cvclient.Upload(ctx, hc, "https://"+u.srv.addr+"/v1/recordings", mdJSON, u.b.files[i])
	return id, time.Since(t0), err
}

// concurrent uploads every file with clients concurrent keep-alive clients.
func (u *cvUploader) concurrent(ctx context.Context, clients int, tag string) (throughput, error) {
	hcs := make([]*http.Client, clients)
	for w := range hcs {
		hcs[w] = cvclient.NewClient(u.cfg)
		defer hcs[w].CloseIdleConnections()
	}
	t := u.b.newThroughput()
	cpu0, err := u.srv.cpu()
	if err != nil {
		return t, err
	}
	audit0, err := cvclient.ScrapeAudit(u.opsAddr)
	if err != nil {
		return t, err
	}
	meter := startMeter(u.b.live)
	t.wall, err = cvclient.Parallel(ctx, len(u.b.files), clients, func(ctx context.Context, w, i int) error {
		var err error
		_, t.lat[i], err = u.one(ctx, hcs[w], tag, i)
		return err
	})
	t.load = meter.stop()
	if err != nil {
		return t, fmt.Errorf("upload: %w", err)
	}
	cpu1, err := u.srv.cpu()
	if err != nil {
		return t, err
	}
	audit1, err := cvclient.ScrapeAudit(u.opsAddr)
	if err != nil {
		return t, err
	}
	t.cpu, t.audit = cpu1-cpu0, audit1.Minus(audit0)
	return t, nil
}

func (b *bench) newThroughput() throughput {
	t := throughput{n: len(b.files), lat: make([]time.Duration, len(b.files))}
	for _, f := range b.files {
		t.bytes += f.Size
	}
	return t
}

// sequential measures callvault (one keep-alive client), age and age +
// fsync one file at a time, taking turns file by file — file i goes first
// to system i mod 3 — so that all three see the same state of the machine
// (page cache, disk writeback, other load) over the measurement. A
// system's wall time is the sum of its latencies. It returns the three
// measurements and callvault's recording IDs, in file order.
func (b *bench) sequential(ctx context.Context, u *cvUploader, dir, tag string) (cv, ag, as throughput, ids []string, err error) {
	cv, ag, as = b.newThroughput(), b.newThroughput(), b.newThroughput()
	ids = make([]string, len(b.files))
	hc := cvclient.NewClient(u.cfg)
	defer hc.CloseIdleConnections()
	agDirs := [2]string{filepath.Join(dir, "age-1-a"), filepath.Join(dir, "age-1-b")}
	asDirs := [2]string{filepath.Join(dir, "age-fsync-1-a"), filepath.Join(dir, "age-fsync-1-b")}
	for _, d := range append(agDirs[:], asDirs[:]...) {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return cv, ag, as, nil, err
		}
	}
	audit0, err := cvclient.ScrapeAudit(u.opsAddr)
	if err != nil {
		return cv, ag, as, nil, err
	}
	meter := startMeter(b.live)
	steps := []func(i int) error{
		func(i int) error {
			c0, err := u.srv.cpu()
			if err != nil {
				return err
			}
			ids[i], cv.lat[i], err = u.one(ctx, hc, tag, i)
			if err != nil {
				return fmt.Errorf("upload: %w", err)
			}
			c1, err := u.srv.cpu()
			cv.cpu += c1 - c0
			return err
		},
		func(i int) error {
			lat, cpu, err := b.ageOne(ctx, b.files[i], agDirs, false)
			ag.lat[i], ag.cpu = lat, ag.cpu+cpu
			return err
		},
		func(i int) error {
			lat, cpu, err := b.ageOne(ctx, b.files[i], asDirs, true)
			as.lat[i], as.cpu = lat, as.cpu+cpu
			return err
		},
	}
	for i := range b.files {
		for k := range steps {
			if err := steps[(i+k)%len(steps)](i); err != nil {
				return cv, ag, as, nil, err
			}
		}
	}
	load := meter.stop()
	audit1, err := cvclient.ScrapeAudit(u.opsAddr)
	if err != nil {
		return cv, ag, as, nil, err
	}
	cv.audit = audit1.Minus(audit0)
	for _, t := range []*throughput{&cv, &ag, &as} {
		t.load = load
		for _, l := range t.lat {
			t.wall += l
		}
	}
	return cv, ag, as, ids, nil
}

// uploadAge is the upload reference with clients files encrypted at a
// time, by ageOne into dirs.
func (b *bench) uploadAge(ctx context.Context, clients int, dirs [2]string, fsync bool) (throughput, error) {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return throughput{}, err
		}
	}
	t := b.newThroughput()
	cpu := make([]time.Duration, len(b.files))
	meter := startMeter(b.live)
	wall, err := cvclient.Parallel(ctx, len(b.files), clients, func(ctx context.Context, _, i int) error {
		var err error
		t.lat[i], cpu[i], err = b.ageOne(ctx, b.files[i], dirs, fsync)
		return err
	})
	t.wall, t.load = wall, meter.stop()
	if err != nil {
		return t, err
	}
	for _, c := range cpu {
		t.cpu += c
	}
	return t, nil
}

// ageOne is the reference for one upload: the age CLI encrypts f twice to
// the same recipient, one process writing dirs[0]/NAME.age and then one
// writing dirs[1]/NAME.age, as callvault writes each blob to two sites.
// With fsync, the driver then fsyncs both outputs and their directories in
// parallel (age itself never fsyncs), for the durability callvault's
// commit gives. It returns the time all that took and the age processes'
// CPU time.
func (b *bench) ageOne(ctx context.Context, f callFile, dirs [2]string, fsync bool) (lat, cpu time.Duration, err error) {
	t0 := time.Now()
	outs := []string{filepath.Join(dirs[0], f.Name+".age"), filepath.Join(dirs[1], f.Name+".age")}
	for _, out := range outs {
		cmd := exec.CommandContext(ctx, b.age, "-R", b.recips, "-o", out, f.Path)
		if msg, err := cmd.CombinedOutput(); err != nil {
			return 0, 0, fmt.Errorf("age %s: %w: %s", f.Name, err, msg)
		}
		cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if fsync {
		errs := make([]error, len(outs))
		var wg sync.WaitGroup
		for k, out := range outs {
			wg.Go(func() { errs[k] = fsyncFileAndDir(out) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return 0, 0, err
		}
	}
	return time.Since(t0), cpu, nil
}

func fsyncFileAndDir(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}
