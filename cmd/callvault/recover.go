package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"callvault/internal/catalog"
	"callvault/internal/config"
)

// cmdRecoverCatalog rebuilds a lost catalog from the recovery records on
// the sites (docs/format.md, "Recovery record"), with the archive key.
func cmdRecoverCatalog(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("recover-catalog", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgOf := configFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := cfgOf()
	if err != nil {
		return err
	}
	if cfg.OnPostgres() {
		if n, err := catalogRows(ctx, cfg); err != nil {
			return fmt.Errorf("recover-catalog: %w", err)
		} else if n > 0 {
			return fmt.Errorf("recover-catalog: the PostgreSQL catalog holds %d recordings; a catalog is rebuilt only where none is (drop the database's catalog tables first)", n)
		}
	} else if _, err := os.Stat(cfg.CatalogPath()); err == nil {
		return fmt.Errorf("recover-catalog: %s exists; a catalog is rebuilt only where none is (move it away first)", cfg.CatalogPath())
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	st, err := openStack(ctx, cfg, slog.New(slog.NewJSONHandler(stderr, nil)))
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.arc.AuditAdminChange(ctx, localOperator(), "catalog.recover", "from=sites", ""); err != nil {
		return err
	}
	rep, err := st.arc.RecoverCatalog(ctx)
	if err != nil {
		return fmt.Errorf("recover-catalog: %w", err)
	}
	fmt.Fprintf(stdout, "restored %d recordings from %d recovery records; %d copies queued for repair\n", rep.Recordings, rep.Records, rep.Pending)
	fmt.Fprintln(stdout, "Not on the sites, so not restored: legal holds, deletion decisions, tombstones and the audit log's history; restore those from a backup.")
	if len(rep.Failed) > 0 {
		return fmt.Errorf("recover-catalog: %d objects could not be read (first %s); see the log", len(rep.Failed), rep.Failed[0])
	}
	return nil
}

// catalogRows counts the recordings of the catalog of cfg.
func catalogRows(ctx context.Context, cfg *config.Config) (int, error) {
	cat, err := catalog.Open(ctx, cfg.CatalogPath())
	if err != nil {
		return 0, err
	}
	defer cat.Close()
	return cat.Count(ctx)
}
