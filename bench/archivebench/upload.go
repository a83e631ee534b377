package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// throughput is one measurement of n recordings stored (or encrypted) by
// some number of concurrent clients.
type throughput struct {
	n     int
	bytes int64           // plaintext bytes of all n files
	wall  time.Duration   // first request start to last response
	lat   []time.Duration // per recording: request start to response (or both age runs done)
	cpu   time.Duration   // CPU time of the server process (or of the age processes)
	audit auditStats      // callvault only: audit appends made durable during the measurement
	load  cpuLoad         // how busy the machine was during the measurement
}

func (t throughput) perSec() float64 { return float64(t.n) / t.wall.Seconds() }
func (t throughput) mbps() float64   { return float64(t.bytes) / 1e6 / t.wall.Seconds() }

// parallel runs fn(i) for i in [0, n) on clients workers (worker w gets
// its own index w) and returns the wall time and fn's first error.
func parallel(ctx context.Context, n, clients int, fn func(ctx context.Context, worker, i int) error) (time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range clients {
		wg.Go(func() {
			for i := range next {
				if err := fn(ctx, w, i); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	wall := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return wall, err
	}
	return wall, nil
}

// cvUploader uploads the run's files to one callvault server as the dev
// capture system, with metadata made from the dev setup's
// sample-metadata.json (a new call_id per upload).
type cvUploader struct {
	b       *bench
	srv     *process
	opsAddr string
	cfg     *tls.Config
	sample  map[string]any
	started time.Time
}

func (b *bench) newUploader(srv *process, opsAddr, devDir string) (*cvUploader, error) {
	cfg, err := clientTLS(devDir, "capture")
	if err != nil {
		return nil, err
	}
	u := &cvUploader{b: b, srv: srv, opsAddr: opsAddr, cfg: cfg, started: time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Second)}
	raw, err := os.ReadFile(filepath.Join(devDir, "sample-metadata.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &u.sample); err != nil {
		return nil, fmt.Errorf("sample metadata: %w", err)
	}
	return u, nil
}

// one uploads file i with call_id bench-TAG-i and returns the recording ID
// and the time from request start to the 201 answer.
func (u *cvUploader) one(ctx context.Context, hc *http.Client, tag string, i int) (string, time.Duration, error) {
	md := maps.Clone(u.sample)
	md["call_id"] = fmt.Sprintf("bench-%s-%03d", tag, i)
	md["started_at"] = u.started.Format(time.RFC3339)
	md["ended_at"] = u.started.Add(time.Duration(u.b.o.seconds) * time.Second).Format(time.RFC3339)
	mdJSON, err := json.Marshal(md)
	if err != nil {
		return "", 0, err
	}
	t0 := time.Now()
	id, err := upload(ctx, hc, "https://"+u.srv.addr+"/v1/recordings", mdJSON, u.b.files[i])
	return id, time.Since(t0), err
}

// concurrent uploads every file with clients concurrent keep-alive clients.
func (u *cvUploader) concurrent(ctx context.Context, clients int, tag string) (throughput, error) {
	hcs := make([]*http.Client, clients)
	for w := range hcs {
		hcs[w] = newClient(u.cfg)
		defer hcs[w].CloseIdleConnections()
	}
	t := u.b.newThroughput()
	cpu0, err := u.srv.cpu()
	if err != nil {
		return t, err
	}
	audit0, err := scrapeAudit(u.opsAddr)
	if err != nil {
		return t, err
	}
	meter := startMeter(u.b.live)
	t.wall, err = parallel(ctx, len(u.b.files), clients, func(ctx context.Context, w, i int) error {
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
	audit1, err := scrapeAudit(u.opsAddr)
	if err != nil {
		return t, err
	}
	t.cpu, t.audit = cpu1-cpu0, audit1.minus(audit0)
	return t, nil
}

func (b *bench) newThroughput() throughput {
	t := throughput{n: len(b.files), lat: make([]time.Duration, len(b.files))}
	for _, f := range b.files {
		t.bytes += f.size
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
	hc := newClient(u.cfg)
	defer hc.CloseIdleConnections()
	agDirs := [2]string{filepath.Join(dir, "age-1-a"), filepath.Join(dir, "age-1-b")}
	asDirs := [2]string{filepath.Join(dir, "age-fsync-1-a"), filepath.Join(dir, "age-fsync-1-b")}
	for _, d := range append(agDirs[:], asDirs[:]...) {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return cv, ag, as, nil, err
		}
	}
	audit0, err := scrapeAudit(u.opsAddr)
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
	audit1, err := scrapeAudit(u.opsAddr)
	if err != nil {
		return cv, ag, as, nil, err
	}
	cv.audit = audit1.minus(audit0)
	for _, t := range []*throughput{&cv, &ag, &as} {
		t.load = load
		for _, l := range t.lat {
			t.wall += l
		}
	}
	return cv, ag, as, ids, nil
}

// upload POSTs one recording as multipart/form-data, metadata first, the
// audio streamed from its file, and returns the new recording's ID.
func upload(ctx context.Context, hc *http.Client, url string, metadata []byte, f callFile) (string, error) {
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="metadata"`)
	h.Set("Content-Type", "application/json")
	p, err := mw.CreatePart(h)
	if err != nil {
		return "", err
	}
	p.Write(metadata)
	h = textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="audio"; filename="call.wav"`)
	h.Set("Content-Type", "audio/wav")
	if _, err := mw.CreatePart(h); err != nil {
		return "", err
	}
	headLen := head.Len()
	if err := mw.Close(); err != nil {
		return "", err
	}
	all := head.Bytes()
	file, err := os.Open(f.path)
	if err != nil {
		return "", err
	}
	defer file.Close()
	body := io.MultiReader(bytes.NewReader(all[:headLen]), file, bytes.NewReader(all[headLen:]))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return "", err
	}
	req.ContentLength = int64(len(all)) + f.size
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("%s: %s: %s", f.name, resp.Status, bytes.TrimSpace(rb))
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(rb, &out); err != nil || out.ID == "" {
		return "", fmt.Errorf("%s: answer without an id: %s", f.name, rb)
	}
	return out.ID, nil
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
	wall, err := parallel(ctx, len(b.files), clients, func(ctx context.Context, _, i int) error {
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
	outs := []string{filepath.Join(dirs[0], f.name+".age"), filepath.Join(dirs[1], f.name+".age")}
	for _, out := range outs {
		cmd := exec.CommandContext(ctx, b.age, "-R", b.recips, "-o", out, f.path)
		if msg, err := cmd.CombinedOutput(); err != nil {
			return 0, 0, fmt.Errorf("age %s: %w: %s", f.name, err, msg)
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
