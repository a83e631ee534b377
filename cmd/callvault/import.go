package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"callvault/internal/archive"
	"callvault/internal/config"
	"callvault/internal/importer"
)

// cmdImport: callvault import [verify|check-report] — migrate a legacy
// recording store (docs/import.md). Results go to standard output; logs
// (with manifest line numbers, never source paths) and the progress bar to
// standard error.
func cmdImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "verify":
			return cmdImportVerify(ctx, args[1:], stdout, stderr)
		case "check-report":
			return cmdImportCheckReport(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	t := importTargetFlags(fs)
	manifest := fs.String("manifest", "", "manifest file: CSV with a header row, or JSON Lines (.jsonl)")
	mappingFile := fs.String("mapping", "", "mapping file (JSON) for other manifest layouts or file-name metadata")
	jobs := fs.Int("jobs", 8, "files in flight at once")
	verify := fs.Bool("verify", false, "verify every imported file afterwards and write the signed report")
	remove := fs.Bool("remove-source", false, "delete each source file once verified on both sites (implies --verify)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("import: unexpected argument %q", fs.Arg(0))
	}
	var mapping *importer.Mapping
	if *mappingFile != "" {
		b, err := os.ReadFile(*mappingFile)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		if mapping, err = importer.ParseMapping(b); err != nil {
			return err
		}
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	tgt, err := t.open(ctx, logger)
	if err != nil {
		return err
	}
	defer tgt.close()
	sum, err := importer.Run(ctx, importer.Options{Source: t.from, Manifest: *manifest, Mapping: mapping, Work: t.work,
		Jobs: *jobs, Archive: tgt.archive, Progress: stderr, Log: logger})
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	printSummary(stdout, sum, t.workDir())
	if *verify || *remove {
		if err := runVerify(ctx, t, tgt, *remove, *jobs, stdout, stderr, logger); err != nil {
			return err
		}
	}
	if sum.Failed > 0 {
		return fmt.Errorf("import: %d files could not be stored now; run the same command again", sum.Failed)
	}
	return nil
}

func printSummary(w io.Writer, s *importer.Summary, work string) {
	fmt.Fprintf(w, "rows %d: imported %d, duplicate %d, deleted %d, rejected %d; unlisted files %d; failed now %d (%.1fs)\n",
		s.Rows, s.Outcomes[importer.OutcomeImported], s.Outcomes[importer.OutcomeDuplicate], s.Outcomes[importer.OutcomeDeleted],
		s.Outcomes[importer.OutcomeRejected], s.Outcomes[importer.OutcomeUnlisted], s.Failed, s.Elapsed.Seconds())
	if n := s.Outcomes[importer.OutcomeRejected] + s.Outcomes[importer.OutcomeUnlisted]; n > 0 {
		fmt.Fprintf(w, "%d files need attention: %s\n", n, filepath.Join(work, "rejects.csv"))
	}
}

func cmdImportVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	t := importTargetFlags(fs)
	jobs := fs.Int("jobs", 8, "files verified at once")
	remove := fs.Bool("remove-source", false, "delete each source file once verified on both sites")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	tgt, err := t.open(ctx, logger)
	if err != nil {
		return err
	}
	defer tgt.close()
	return runVerify(ctx, t, tgt, *remove, *jobs, stdout, stderr, logger)
}

func runVerify(ctx context.Context, t *importTarget, tgt *openTarget, remove bool, jobs int, stdout, stderr io.Writer, logger *slog.Logger) error {
	rep, err := importer.Verify(ctx, importer.VerifyOptions{Source: t.from, Work: t.work, Archive: tgt.archive,
		RemoveSource: remove, Signer: tgt.signer, Jobs: jobs, Progress: stderr, Log: logger})
	if err != nil {
		return fmt.Errorf("import verify: %w", err)
	}
	fmt.Fprintf(stdout, "verified %d files (%d recordings) on both sites, %d failed, %d source files removed\n",
		rep.Verified.Files, rep.Verified.Recordings, rep.Verified.Failed, rep.SourceRemoved)
	fmt.Fprintf(stdout, "report: %s (signed: %s)\n", filepath.Join(t.workDir(), importer.ReportFile), filepath.Join(t.workDir(), importer.SignatureFile))
	if rep.Verified.Failed > 0 {
		return fmt.Errorf("import verify: %d files are not verified (see the log lines for their manifest lines)", rep.Verified.Failed)
	}
	return nil
}

func cmdImportCheckReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import check-report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	caFile := fs.String("ca", "", "CA certificates (PEM) the signer must chain to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *caFile == "" {
		return errors.New("import check-report: give --ca FILE and the report")
	}
	roots, err := loadRoots(*caFile)
	if err != nil {
		return err
	}
	rep, leaf, err := importer.CheckReport(fs.Arg(0), roots)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	fmt.Fprintf(stdout, "report signed by %s (certificate serial %s); recordings list matches\n", rep.Importer, leaf.SerialNumber)
	return enc.Encode(rep.Files)
}

// importTarget holds the flags shared by import and import verify.
type importTarget struct {
	from, work, server, cert, key, ca string
	cfgOf                             func() (*config.Config, error)
	fs                                *flag.FlagSet
}

func importTargetFlags(fs *flag.FlagSet) *importTarget {
	t := &importTarget{fs: fs}
	fs.StringVar(&t.from, "from", "", "the legacy recording tree (required)")
	fs.StringVar(&t.work, "work", "", "work directory for the journal and reports (default FROM.callvault-import beside the tree)")
	fs.StringVar(&t.server, "server", "", "archive server https://HOST:PORT (else the local --data/--config archive)")
	fs.StringVar(&t.cert, "cert", "", "capture certificate (PEM); default with --data: its dev capture certificate")
	fs.StringVar(&t.key, "key", "", "the certificate's private key (PEM)")
	fs.StringVar(&t.ca, "ca", "", "CA of the server's certificate (PEM); default with --data: its dev CA")
	t.cfgOf = configFlags(fs)
	return t
}

func (t *importTarget) workDir() string {
	if t.work != "" {
		return t.work
	}
	return importer.DefaultWork(t.from)
}

// openTarget is the archive an import talks to, and the report signer.
type openTarget struct {
	archive importer.Archive
	signer  importer.Signer
	close   func()
}

func (t *importTarget) open(ctx context.Context, logger *slog.Logger) (*openTarget, error) {
	if t.from == "" {
		return nil, errors.New("import: --from is required")
	}
	dataFlag := t.fs.Lookup("data").Value.String()
	if t.cert == "" && t.key == "" && dataFlag != "" {
		t.cert = filepath.Join(dataFlag, "dev", "capture.pem")
		t.key = filepath.Join(dataFlag, "dev", "capture-key.pem")
	}
	if t.ca == "" && dataFlag != "" {
		t.ca = filepath.Join(dataFlag, "dev", "ca.pem")
	}
	if t.cert == "" || t.key == "" {
		return nil, errors.New("import: --cert and --key (a capture certificate) are required")
	}
	cert, err := tls.LoadX509KeyPair(t.cert, t.key)
	if err != nil {
		return nil, fmt.Errorf("import: certificate: %w", err)
	}
	signer, err := importer.NewSigner(cert)
	if err != nil {
		return nil, err
	}
	if t.server != "" {
		if t.ca == "" {
			return nil, errors.New("import: --ca is required with --server")
		}
		roots, err := loadRoots(t.ca)
		if err != nil {
			return nil, err
		}
		return &openTarget{archive: importer.NewRemote(t.server, cert, roots), signer: signer, close: func() {}}, nil
	}
	cfg, err := t.cfgOf()
	if err != nil {
		return nil, err
	}
	st, err := openStack(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		st.Close()
		return nil, err
	}
	p, err := st.dir.Principal(ctx, leaf)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("import: the certificate is not registered in the directory: %w", err)
	}
	caller := archive.Caller{Principal: p, ClientAddr: "local",
		RequestID: "import-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	return &openTarget{archive: &importer.Local{Service: st.arc, Caller: caller}, signer: signer, close: func() { st.Close() }}, nil
}

func loadRoots(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificates", path)
	}
	return pool, nil
}
