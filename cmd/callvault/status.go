package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"
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
	c := s.Capture
	fmt.Fprintf(stdout, "capture sessions:     accepted %d = stored %d + incomplete %d + cancelled %d + failed %d + active %d\n",
		c.Accepted, c.Stored, c.Incomplete, c.Cancelled, c.Failed, c.Active)
	for _, a := range c.Recording {
		fmt.Fprintf(stdout, "recording now:        unit %s since %s\n", a.CareUnit, a.StartedAt.Format(time.RFC3339))
	}
	if c.Failed > 0 {
		fmt.Fprintf(stdout, "ALERT: %d capture sessions ended without a stored recording; see the log review (capture-lost)\n", c.Failed)
	}
	if s.ReplicationPending > 0 {
		fmt.Fprintln(stdout, "ALERT: recordings are held by one site only; repair runs while serve is up")
	}
	return nil
}
