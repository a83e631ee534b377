// Command callvault is the secure archive of recorded health-advice calls.
//
// Output rules: what the command is for goes to standard output — results
// a script may read (IDs, JSON, tables), the "listening on" line and the dev
// welcome text; errors go to standard error, and so do operational logs, as
// slog JSON lines and nothing else, so that stream can be shipped to a log
// system that must never receive personal data. Nothing
// printed contains personal data unless the command's purpose is to show
// it to an authorized operator (and then it is audited).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `callvault — secure archive of recorded health-advice calls

Usage:
  callvault serve --dev [--data DIR] [--listen ADDR] [--ops-listen ADDR]
  callvault serve --config FILE
  callvault status     [--data DIR | --config FILE]
  callvault doctor     [--data DIR | --config FILE] [--ops-listen ADDR] [--json]   security posture of a config and the running system
  callvault directory  [--data DIR | --config FILE] <list|add-unit|add|disable|enable|block|unblock> ...
  callvault audit      [--data DIR | --config FILE] <verify|events>
  callvault keys       [--data DIR | --config FILE] <list|rotate|rewrap|destroy-epoch|escrow|recover> ...
  callvault backup     [--data DIR | --config FILE] --out DIR    encrypted backup of catalog, audit log, directory
  callvault restore    [--data DIR | --config FILE] --from FILE  put a backup back after a loss
  callvault recover-catalog [--data DIR | --config FILE]   rebuild a lost catalog from the sites
  callvault scrub      [--data DIR | --config FILE] [--orphan-grace D] [--json]   verify and repair every blob copy
  callvault dispose    [--data DIR | --config FILE] [--disposal keep|dispose]   one disposal pass
  callvault import     --from DIR --manifest FILE [--mapping FILE] (--server URL --cert F --key F --ca F | --data DIR)
                       [--verify] [--remove-source]     migrate a legacy recording store (docs/import.md)
  callvault import verify --from DIR (…as above) [--remove-source]   prove every file is on both sites; signed report
  callvault import check-report --ca FILE REPORT       check a migration report's signature
  callvault tone       [--seconds N]    a synthetic test call as WAV on standard output

Run "callvault COMMAND -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "callvault:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return cmdServe(ctx, args[1:], stdout, stderr)
	case "status":
		return cmdStatus(ctx, args[1:], stdout, stderr)
	case "doctor":
		return cmdDoctor(ctx, args[1:], stdout, stderr)
	case "directory":
		return cmdDirectory(ctx, args[1:], stdout, stderr)
	case "audit":
		return cmdAudit(ctx, args[1:], stdout, stderr)
	case "keys":
		return cmdKeys(ctx, args[1:], stdout, stderr)
	case "backup":
		return cmdBackup(ctx, args[1:], stdout, stderr)
	case "restore":
		return cmdRestore(ctx, args[1:], stdout, stderr)
	case "recover-catalog":
		return cmdRecoverCatalog(ctx, args[1:], stdout, stderr)
	case "scrub":
		return cmdScrub(ctx, args[1:], stdout, stderr)
	case "dispose":
		return cmdDispose(ctx, args[1:], stdout, stderr)
	case "import":
		return cmdImport(ctx, args[1:], stdout, stderr)
	case "tone":
		return cmdTone(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
