package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"callvault/internal/posture"
)

// cmdDoctor prints the posture findings of a config (internal/posture)
// and whether the serve it describes answers its health check. It exits
// non-zero if anything is against the posture.
func cmdDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgOf := configFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	ops := fs.String("ops-listen", "", "the running serve's ops address (default: the config's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := cfgOf()
	if err != nil {
		return err
	}
	if *ops != "" {
		cfg.OpsListen = *ops
	}
	findings := posture.Check(cfg, time.Now())
	serve := running(ctx, "http://"+cfg.OpsListen+"/healthz")
	findings = append(findings, serve)
	if serve.Severity != posture.Warn { // a serve answered
		worm, err := wormMetrics(ctx, "http://"+cfg.OpsListen+"/metrics")
		if err != nil {
			findings = append(findings, posture.Finding{Severity: posture.Fail, Check: "sites.worm", Detail: err.Error()})
		} else {
			findings = append(findings, posture.RunningWORM(cfg, worm)...)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(findings); err != nil {
			return err
		}
	} else {
		for _, f := range findings {
			fmt.Fprintf(stdout, "%-4s  %-18s %s\n", f.Severity, f.Check, f.Detail)
		}
	}
	ok, warn, fail := posture.Summary(findings)
	fmt.Fprintf(stderr, "doctor: %d ok, %d warnings, %d failures\n", ok, warn, fail)
	if fail > 0 {
		return errors.New("doctor: the configuration or the running system is against the posture (FAIL lines)")
	}
	return nil
}

// running asks the configured serve's health endpoint.
func running(ctx context.Context, url string) posture.Finding {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return posture.Finding{Severity: posture.Fail, Check: "serve", Detail: err.Error()}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return posture.Finding{Severity: posture.Warn, Check: "serve", Detail: "no serve answers at " + url + " (not running, or another ops address)"}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	msg := strings.TrimSpace(string(b))
	if resp.StatusCode != http.StatusOK {
		return posture.Finding{Severity: posture.Fail, Check: "serve", Detail: fmt.Sprintf("%s answers %d: %s", url, resp.StatusCode, msg)}
	}
	return posture.Finding{Severity: posture.OK, Check: "serve", Detail: url + " answers " + msg}
}

// wormMetrics reads callvault_site_worm{site="…"} from a serve's metrics.
func wormMetrics(ctx context.Context, url string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s answers %d", url, resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	const prefix = `callvault_site_worm{site="`
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		name, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: callvault_site_worm for site %s: %w", name, err)
		}
		out[name] = v
	}
	return out, sc.Err()
}
