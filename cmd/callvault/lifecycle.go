package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// cmdDispose runs one disposal pass (docs/lifecycle.md): with the policy
// "dispose", recordings whose retention has ended and that are not held are
// deleted through the deletion path, audited; with "keep" nothing happens.
func cmdDispose(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dispose", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgOf := configFlags(fs)
	policy := fs.String("disposal", "", `"keep" or "dispose" (overrides the config's retention.disposal)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := cfgOf()
	if err != nil {
		return err
	}
	if *policy != "" {
		cfg.Retention.Disposal = *policy
	}
	switch cfg.Retention.Disposal {
	case "keep":
		fmt.Fprintln(stdout, "disposal policy is \"keep\": recordings are kept after retention ends; nothing deleted")
		return nil
	case "dispose":
	default:
		return errors.New(`dispose: --disposal must be "keep" or "dispose"`)
	}
	st, err := openStack(ctx, cfg, slog.New(slog.NewJSONHandler(stderr, nil)))
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := st.arc.Dispose(ctx)
	if err != nil {
		return fmt.Errorf("dispose: %w", err)
	}
	fmt.Fprintf(stdout, "disposed %d recordings whose retention (%d years) had ended\n", n, cfg.Retention.Years)
	return nil
}
