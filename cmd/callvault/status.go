package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
)

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgOf := configFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := cfgOf()
	if err != nil {
		return err
	}
	st, err := openStack(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer st.Close()
	s, err := st.arc.Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	fmt.Fprintf(stdout, "recordings:           %d\n", s.Recordings)
	fmt.Fprintf(stdout, "replication backlog:  %d\n", s.ReplicationPending)
	for _, site := range s.Sites {
		state := "ok"
		if !site.OK {
			state = "UNAVAILABLE: " + site.Error
		}
		fmt.Fprintf(stdout, "site %-3s (%s):        %s\n", site.Name, site.Jurisdiction, state)
	}
	if s.ReplicationPending > 0 {
		fmt.Fprintln(stdout, "ALERT: recordings are held by one site only; repair runs while serve is up")
	}
	return nil
}
