package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"callvault/internal/access"
	"callvault/internal/audit"
	"callvault/internal/config"
	"callvault/internal/httpapi"
	"callvault/internal/site"
	"callvault/internal/site/s3site"
	"callvault/internal/webui"
)

// wormCheckInterval is how often serve repeats the WORM canary on sites
// that can lock blobs.
const wormCheckInterval = 24 * time.Hour

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dev := fs.Bool("dev", false, "run the development setup: dev PKI, two local sites, demo recordings")
	data := fs.String("data", "", "data directory for --dev (default "+defaultDataDir+")")
	file := fs.String("config", "", "configuration file (production)")
	listen := fs.String("listen", "", "mTLS API address (default 127.0.0.1:8443)")
	opsListen := fs.String("ops-listen", "", "plain health and metrics address (default 127.0.0.1:9090)")
	maxUpload := fs.Int64("max-upload", 0, "largest upload body in bytes (default 2 GiB)")
	repair := fs.Duration("repair-interval", 0, "time between replication repair passes (default 30s)")
	cpInterval := fs.Duration("checkpoint-interval", 0, "cut an audit checkpoint at least this often (default 60s)")
	cpEntries := fs.Int64("checkpoint-entries", 0, "cut an audit checkpoint after this many entries (default 1000)")
	scrubEvery := fs.Duration("scrub-interval", 0, "time between scrub passes (default 24h)")
	webIdle := fs.Duration("web-idle-timeout", 0, "end a web page session after this long without a request (default 15m)")
	disposal := fs.String("disposal", "", `after retention ends: "keep" or "dispose" (overrides the config)`)
	sipListen := fs.String("sip-listen", "", "SIPREC address for UDP and TCP (--dev default 127.0.0.1:5060; \"off\" turns SIPREC off)")
	sipListenTLS := fs.String("sip-listen-tls", "", "SIPREC address for SIP over TLS (--dev default 127.0.0.1:5061; \"off\" turns it off)")
	rtpPorts := fs.String("rtp-ports", "", "SIPREC media port range MIN-MAX (default 20000-29999)")
	mediaTimeout := fs.Duration("sip-media-timeout", 0, "end a recorded call after this long without RTP or a dialog refresh (default 30m)")
	siteA := fs.String("site-a", "", "--dev: site a as a directory or s3://KEY:SECRET@HOST:PORT/BUCKET (s3+http:// on loopback); kept for later commands on the data dir")
	siteB := fs.String("site-b", "", "--dev: site b, as --site-a")
	database := fs.String("database", "", "--dev: catalog, directory and audit log in PostgreSQL at this postgres:// URL (default: SQLite files in the data dir); kept for later commands")
	p11Module := fs.String("pkcs11", "", "--dev: the PKCS#11 module (library path) of the HSM token whose key unlocks the keyring (docs/hsm.md)")
	p11Token := fs.String("pkcs11-token", "", "--dev: the token's label")
	p11PIN := fs.String("pkcs11-pin", "", "--dev: the token's user PIN (kept in the data dir's dev/backends.json, mode 0600)")
	var outboxes stringList
	fs.Var(&outboxes, "witness-outbox", "directory or https:// URL that receives every audit checkpoint (repeatable; adds to the config's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *repair < 0 {
		return fmt.Errorf("serve: --repair-interval %v is negative", *repair)
	}
	if *maxUpload < 0 {
		return fmt.Errorf("serve: --max-upload must not be negative")
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))

	cfg, err := resolveServeConfig(*dev, *data, *file)
	if err != nil {
		return err
	}
	if *siteA != "" || *siteB != "" || *database != "" || *p11Module != "" || *p11Token != "" || *p11PIN != "" {
		if !cfg.Dev {
			return errors.New("serve: --database, --site-a, --site-b and --pkcs11* go with --dev; a config file names its backends")
		}
		if err := cfg.SetDevBackends(config.DevBackends{SiteA: *siteA, SiteB: *siteB, Database: *database,
			PKCS11Module: *p11Module, PKCS11Token: *p11Token, PKCS11PIN: *p11PIN}); err != nil {
			return err
		}
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *opsListen != "" {
		cfg.OpsListen = *opsListen
	}
	if *maxUpload > 0 {
		cfg.MaxUploadBytes = *maxUpload
	}
	if *repair > 0 {
		cfg.RepairInterval = config.Duration(*repair)
	}
	if *cpInterval > 0 {
		cfg.Audit.CheckpointInterval = config.Duration(*cpInterval)
	}
	if *cpEntries > 0 {
		cfg.Audit.CheckpointEntries = *cpEntries
	}
	cfg.Audit.WitnessOutboxes = append(cfg.Audit.WitnessOutboxes, outboxes...)
	if *scrubEvery > 0 {
		cfg.ScrubInterval = config.Duration(*scrubEvery)
	}
	if *disposal != "" {
		cfg.Retention.Disposal = *disposal
	}
	if *webIdle != 0 {
		cfg.WebIdleTimeout = config.Duration(*webIdle)
	}
	for _, f := range []struct {
		flag string
		dst  *string
	}{{*sipListen, &cfg.SIPRec.Listen}, {*sipListenTLS, &cfg.SIPRec.ListenTLS}} {
		switch f.flag {
		case "":
		case "off":
			*f.dst = ""
		default:
			*f.dst = f.flag
		}
	}
	if *rtpPorts != "" {
		cfg.SIPRec.RTPPorts = *rtpPorts
	}
	if *mediaTimeout != 0 {
		cfg.SIPRec.MediaTimeout = config.Duration(*mediaTimeout)
	}
	if err := cfg.Check(); err != nil {
		return err
	}
	var setup *devSetup
	if cfg.Dev {
		var err error
		if setup, err = prepareDev(ctx, cfg); err != nil {
			return fmt.Errorf("dev setup: %w", err)
		}
	}
	tlsCfg, err := serverTLS(cfg.TLS.Cert, cfg.TLS.Key, cfg.TLS.ClientCA)
	if err != nil {
		return err
	}
	st, err := openStack(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	// One site down is a degraded start: uploads are acknowledged with a
	// durable pending copy and repaired when it returns (healthz says 503
	// meanwhile). With both down nothing could be stored or played.
	available := 0
	for _, s := range st.sites.Sites() {
		if err := s.Check(ctx); err != nil {
			logger.Error("site unavailable at start; serving degraded", "site", s.Name(), "err", err)
			continue
		}
		available++
		// Interrupted uploads: a directory site is this serve's alone, so
		// all its temp files go; a bucket is shared with other replicas,
		// so only multipart uploads older than a day are aborted.
		var n int
		var err error
		switch st := s.(type) {
		case *site.FS:
			n, err = st.CleanTemp(ctx, 0)
		case *s3site.Store:
			n, err = st.CleanTemp(ctx, 24*time.Hour)
		}
		if err != nil {
			return fmt.Errorf("cleaning interrupted uploads: %w", err)
		} else if n > 0 {
			logger.Info("removed interrupted uploads (ciphertext only)", "site", s.Name(), "count", n)
		}
	}
	if available == 0 {
		return errors.New("serve: no site is available; see the log for each site's error")
	}
	// Object Lock is verified, not trusted: a canary at start and daily
	// (docs/deploy.md). A site that fails it is an alert, not a stop.
	st.arc.CheckWORM(ctx)
	// The configuration in effect (sites, their jurisdictions, key epoch) is
	// in the log from every start on, so a change of site shows there.
	var sites []string
	for _, sc := range cfg.Sites {
		sites = append(sites, sc.Name+"("+sc.Jurisdiction+")")
	}
	if err := st.audit.Append(ctx, &audit.Event{Action: "serve.start", Outcome: audit.Allowed, Reason: "system",
		User: "callvault-serve", ClientAddr: "local",
		Detail: fmt.Sprintf("sites=%s key_epoch=%d", strings.Join(sites, ","), st.keys.Current().ID)}); err != nil {
		return fmt.Errorf("serve: the audit log cannot be written: %w", err)
	}
	if setup != nil {
		if err := setup.seed(ctx, st); err != nil {
			return fmt.Errorf("dev demo recordings: %w", err)
		}
	}

	sipSvc, err := startSIP(ctx, cfg, st, tlsCfg, logger)
	if err != nil {
		return fmt.Errorf("siprec: %w", err)
	}
	if sipSvc != nil {
		defer sipSvc.close()
	}
	apiLn, err := tls.Listen("tcp", cfg.Listen, tlsCfg)
	if err != nil {
		return fmt.Errorf("api listener: %w", err)
	}
	opsLn, err := net.Listen("tcp", cfg.OpsListen)
	if err != nil {
		apiLn.Close()
		return fmt.Errorf("ops listener: %w", err)
	}
	// One listener: the API under /v1/, the staff pages everywhere else.
	pages, err := webui.New(webui.Config{Archive: st.arc, Names: st.dir, Logger: logger,
		// The session key is derived from the keyring, so every replica
		// opens every other's session cookies and audio links.
		SessionKey:  st.keys.BlindIndex("web-session-key", "v1"),
		IdleTimeout: time.Duration(cfg.WebIdleTimeout),
		Principal: func(r *http.Request) (*access.Principal, error) {
			return st.dir.Principal(r.Context(), r.TLS.PeerCertificates[0])
		}})
	if err != nil {
		apiLn.Close()
		opsLn.Close()
		return fmt.Errorf("web pages: %w", err)
	}
	mux := http.NewServeMux()
	apiCfg := httpapi.Config{Archive: st.arc, Auth: st.dir, MaxUploadBytes: cfg.MaxUploadBytes, Logger: logger}
	if sipSvc != nil {
		apiCfg.Live = sipSvc.srv
	}
	mux.Handle("/v1/", httpapi.NewHandler(apiCfg))
	mux.Handle("/", pages)
	api := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(slogWriter{logger}, "", 0),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	opsMux := http.NewServeMux()
	opsMux.Handle("GET /metrics", promhttp.HandlerFor(st.reg, promhttp.HandlerOpts{}))
	opsMux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		s, err := st.arc.Status(r.Context())
		if err != nil {
			http.Error(w, "unhealthy: catalog", http.StatusServiceUnavailable)
			return
		}
		for _, site := range s.Sites {
			if !site.OK {
				http.Error(w, "degraded: site "+site.Name+" unavailable", http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	ops := &http.Server{Handler: opsMux, ReadHeaderTimeout: 10 * time.Second}

	repairCtx, stopRepair := context.WithCancel(ctx)
	defer stopRepair()
	go st.arc.RunRepair(repairCtx, time.Duration(cfg.RepairInterval))
	go st.arc.RunScrub(repairCtx, time.Duration(cfg.ScrubInterval), time.Duration(cfg.OrphanGrace))
	go st.arc.RunWORMCheck(repairCtx, wormCheckInterval)
	if cfg.Retention.Disposal == "dispose" {
		go st.arc.RunDisposal(repairCtx, time.Duration(cfg.Retention.DisposalInterval))
	}
	checkpointSize := prometheus.NewGauge(prometheus.GaugeOpts{Name: "callvault_audit_checkpoint_size",
		Help: "Tree size of the latest signed audit checkpoint."})
	st.reg.MustRegister(checkpointSize)
	go st.audit.RunCheckpoints(repairCtx, audit.CheckpointPolicy{
		Interval: time.Duration(cfg.Audit.CheckpointInterval), Entries: cfg.Audit.CheckpointEntries,
	}, witnessOutboxes(cfg.Audit.WitnessOutboxes), logger, func(n int64) { checkpointSize.Set(float64(n)) })

	errc := make(chan error, 2)
	go func() { errc <- api.Serve(apiLn) }()
	go func() { errc <- ops.Serve(opsLn) }()
	logger.Info("callvault serving", "api", apiLn.Addr().String(), "ops", opsLn.Addr().String(), "dev", cfg.Dev)
	if setup != nil {
		setup.printWelcome(stdout, apiLn.Addr().String(), opsLn.Addr().String())
	}
	if sipSvc != nil {
		fmt.Fprintln(stdout, sipSvc.describe())
	}
	fmt.Fprintf(stdout, "listening on https://%s (ops http://%s)\n", apiLn.Addr(), opsLn.Addr())

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("server: %w", err)
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	api.Shutdown(shutdownCtx)
	ops.Shutdown(shutdownCtx)
	logger.Info("callvault stopped")
	return nil
}

func resolveServeConfig(dev bool, data, file string) (*config.Config, error) {
	switch {
	case dev && file != "":
		return nil, errors.New("--dev and --config exclude each other")
	case dev:
		if data == "" {
			data = defaultDataDir
		}
		return config.Dev(data)
	case file == "":
		return nil, errors.New("serve needs --config FILE (or --dev for the development setup)")
	case data != "":
		return nil, errors.New("--data goes with --dev; a config file names its data_dir")
	}
	return config.Load(file)
}

// serverTLS loads the server certificate and the client CA bundle and
// returns the mTLS configuration. It refuses to start without them.
func serverTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, errors.New("TLS certificate, key and client CA bundle are required")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: server certificate: %w", err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("tls: client CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("tls: client CA bundle holds no certificate")
	}
	return httpapi.TLSConfig(cert, pool), nil
}

// slogWriter sends net/http's own error lines (e.g. failed TLS handshakes)
// to the structured log.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn("http server", "msg", string(trimNL(p)))
	return len(p), nil
}

func trimNL(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// witnessOutboxes turns the configured outboxes into audit.Outboxes: an
// https:// URL is POSTed to with the system's roots; anything else is a
// directory.
func witnessOutboxes(specs []string) []audit.Outbox {
	var out []audit.Outbox
	for _, s := range specs {
		if strings.HasPrefix(s, "https://") {
			out = append(out, audit.HTTPOutbox{URL: s, Client: &http.Client{Timeout: 30 * time.Second}})
			continue
		}
		out = append(out, audit.DirOutbox{Dir: s})
	}
	return out
}
