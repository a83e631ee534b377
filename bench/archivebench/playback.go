package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"callvault/bench/internal/cvclient"
)

// playResult is one playback measurement.
type playResult struct {
	gets  int
	bytes int64
	wall  time.Duration       // first timed request start to last body byte of all clients
	ttfb  []time.Duration     // request start to first body byte, every timed GET
	total []time.Duration     // request start to last body byte, every timed GET
	cpu   time.Duration       // server CPU time during the timed GETs
	audit cvclient.AuditStats // callvault only
	load  cpuLoad             // how busy the machine was during the timed GETs
}

func (p playResult) mbps() float64 { return float64(p.bytes) / 1e6 / p.wall.Seconds() }

// playTarget is one server to play from.
type playTarget struct {
	urls  []string // urls[i] serves the bytes of file i
	sizes []int64
	cpu   func() (time.Duration, error)
	audit func() (cvclient.AuditStats, error) // nil for the reference
	live  []int                               // pids of the live servers, for cpuMeter
}

// playback runs clients concurrent clients, each with its own keep-alive
// connection (nurse certificate, X-Purpose: care). Each client first opens
// its connection with one untimed GET of the first byte (Range: bytes=0-0),
// so that the TLS handshakes are not timed; then, once all clients are
// connected, each does gets timed full GETs, client w of recording
// (w*gets+j) mod len(urls), reading and counting every byte.
func playback(ctx context.Context, cfg *tls.Config, tg playTarget, clients, gets int) (playResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := playResult{gets: clients * gets}
	ttfb := make([][]time.Duration, clients)
	total := make([][]time.Duration, clients)
	nbytes := make([]int64, clients)
	errs := make([]error, clients)
	var warm, done sync.WaitGroup
	warm.Add(clients)
	gate := make(chan struct{})
	for w := range clients {
		done.Go(func() {
			hc := cvclient.NewClient(cfg)
			defer hc.CloseIdleConnections()
			first := tg.urls[w%len(tg.urls)]
			_, _, err := get(ctx, hc, first, "bytes=0-0", http.StatusPartialContent, 1, nil)
			warm.Done()
			if err != nil {
				errs[w] = fmt.Errorf("warm-up: %w", err)
				cancel()
				return
			}
			select {
			case <-gate:
			case <-ctx.Done():
				return
			}
			buf := make([]byte, 64<<10)
			for j := range gets {
				i := (w*gets + j) % len(tg.urls)
				tf, tt, err := get(ctx, hc, tg.urls[i], "", http.StatusOK, tg.sizes[i], buf)
				if err != nil {
					errs[w] = err
					cancel()
					return
				}
				ttfb[w] = append(ttfb[w], tf)
				total[w] = append(total[w], tt)
				nbytes[w] += tg.sizes[i]
			}
		})
	}
	warm.Wait()
	cpu0, err := tg.cpu()
	if err != nil {
		cancel()
		done.Wait()
		return res, err
	}
	var audit0 cvclient.AuditStats
	if tg.audit != nil {
		if audit0, err = tg.audit(); err != nil {
			cancel()
			done.Wait()
			return res, err
		}
	}
	meter := startMeter(tg.live)
	start := time.Now()
	close(gate)
	done.Wait()
	res.wall, res.load = time.Since(start), meter.stop()
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	cpu1, err := tg.cpu()
	if err != nil {
		return res, err
	}
	res.cpu = cpu1 - cpu0
	if tg.audit != nil {
		audit1, err := tg.audit()
		if err != nil {
			return res, err
		}
		res.audit = audit1.Minus(audit0)
	}
	for w := range clients {
		res.ttfb = append(res.ttfb, ttfb[w]...)
		res.total = append(res.total, total[w]...)
		res.bytes += nbytes[w]
	}
	return res, nil
}

// get GETs url (with a Range header if rng is set), expects status and
// exactly want body bytes, and returns the time to the first body byte and
// to the last. buf, if given, is the read buffer.
func get(ctx context.Context, hc *http.Client, url, rng string, status int, want int64, buf []byte) (ttfb, total time.Duration, err error) {
	if buf == nil {
		buf = make([]byte, 64<<10)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("X-Purpose", "care")
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	t0 := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != status {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return 0, 0, fmt.Errorf("GET: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var n int64
	for n == 0 {
		k, err := resp.Body.Read(buf)
		n += int64(k)
		if err == io.EOF {
			break
		} else if err != nil {
			return 0, 0, err
		}
	}
	ttfb = time.Since(t0)
	for {
		k, err := resp.Body.Read(buf)
		n += int64(k)
		if err == io.EOF {
			break
		} else if err != nil {
			return 0, 0, err
		}
	}
	total = time.Since(t0)
	if n != want {
		return 0, 0, fmt.Errorf("GET: %d body bytes, want %d", n, want)
	}
	return ttfb, total, nil
}

// verifyPlayback checks, untimed, that url serves exactly the bytes of the
// file at path.
func verifyPlayback(ctx context.Context, cfg *tls.Config, url, path string) error {
	want, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	hc := cvclient.NewClient(cfg)
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Purpose", "care")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
		return fmt.Errorf("playback check: %s, %d bytes, not the uploaded file", resp.Status, len(got))
	}
	return nil
}
