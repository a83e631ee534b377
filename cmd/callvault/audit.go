package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"callvault/internal/audit"
)

const auditUsage = `callvault audit [--data DIR | --config FILE] COMMAND

  verify              recompute the hash chain over every entry; names the first bad one
  events [--from N]   print entries as JSON lines, decrypted (shows personal data: for auditors)
`

func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, auditUsage) }
	cfgOf := configFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("audit: no command given")
	}
	sub := flag.NewFlagSet("audit "+fs.Arg(0), flag.ContinueOnError)
	sub.SetOutput(stderr)
	from := sub.Int64("from", 1, "first sequence number")
	if err := sub.Parse(fs.Args()[1:]); err != nil {
		return err
	}
	cfg, err := cfgOf()
	if err != nil {
		return err
	}
	kr, err := loadKeyring(cfg)
	if err != nil {
		return err
	}
	log, err := audit.OpenChain(ctx, cfg.AuditPath(), kr)
	if err != nil {
		return err
	}
	defer log.Close()
	switch fs.Arg(0) {
	case "verify":
		n, err := log.Verify(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "audit log ok: %d entries, chain intact\n", n)
		return nil
	case "events":
		enc := json.NewEncoder(stdout)
		return log.Read(ctx, *from, func(e *audit.Event) error { return enc.Encode(e) })
	}
	fs.Usage()
	return fmt.Errorf("audit: unknown command %q", fs.Arg(0))
}
