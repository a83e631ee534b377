package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"callvault/internal/access"
	"callvault/internal/archive"
	"callvault/internal/auditreport"
	"callvault/internal/config"
)

// reportArgs are the flags of the report subcommands of `callvault audit`.
type reportArgs struct {
	patient, format, since, until string
	finding, outcome, note        string
	user, clientCert, address     string
}

func reportFlags(fs *flag.FlagSet) *reportArgs {
	r := &reportArgs{}
	fs.StringVar(&r.patient, "patient", "", "personnummer or samordningsnummer (extract)")
	fs.StringVar(&r.format, "format", "", "output format")
	fs.StringVar(&r.since, "since", "", "start of the window: RFC 3339 or YYYY-MM-DD")
	fs.StringVar(&r.until, "until", "", "end of the window (exclusive): RFC 3339 or YYYY-MM-DD")
	fs.StringVar(&r.finding, "finding", "", "finding ID (mark)")
	fs.StringVar(&r.outcome, "outcome", "", "no-action, followed-up or reported (mark)")
	fs.StringVar(&r.note, "note", "", "the reviewer's note (mark)")
	fs.StringVar(&r.user, "user", "", "HSA-ID of the actor (incident)")
	fs.StringVar(&r.clientCert, "client-cert", "", "SHA-256 fingerprint of the actor's certificate (incident)")
	fs.StringVar(&r.address, "address", "", "IP address or CIDR prefix of the actor (incident)")
	return r
}

// parseWhen parses RFC 3339 or a date, taken as midnight Swedish time.
func parseWhen(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	zone, err := time.LoadLocation(auditreport.Zone)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.ParseInLocation("2006-01-02", v, zone)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s: want RFC 3339 or YYYY-MM-DD", name)
	}
	return t, nil
}

// localAuditor is the caller of report subcommands: the local operator,
// with the auditor role, recorded by operating-system user ID.
func localAuditor() archive.Caller {
	c := localOperator()
	c.Principal = &access.Principal{HSAID: c.Principal.HSAID, Roles: []access.Role{access.RoleAuditor}}
	return c
}

func runReport(ctx context.Context, cfg *config.Config, cmd string, a *reportArgs, stdout io.Writer) error {
	since, err := parseWhen("since", a.since)
	if err != nil {
		return err
	}
	until, err := parseWhen("until", a.until)
	if err != nil {
		return err
	}
	st, err := openStack(ctx, cfg, slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer st.Close()
	c := localAuditor()
	format := func(def string, allowed ...string) (string, error) {
		if a.format == "" {
			return def, nil
		}
		for _, f := range append(allowed, def) {
			if a.format == f {
				return f, nil
			}
		}
		return "", fmt.Errorf("audit %s: --format must be one of %s", cmd, strings.Join(append([]string{def}, allowed...), ", "))
	}
	switch cmd {
	case "extract":
		f, err := format("html", "json", "csv")
		if err != nil {
			return err
		}
		if a.patient == "" {
			return errors.New("audit extract: --patient is required")
		}
		x, err := st.arc.AuditExtract(ctx, c, a.patient, since, until)
		if err != nil {
			return err
		}
		switch f {
		case "json":
			return x.WriteJSON(stdout)
		case "csv":
			return x.WriteCSV(stdout)
		}
		return x.WriteHTML(stdout)
	case "review":
		f, err := format("text", "json", "csv")
		if err != nil {
			return err
		}
		r, err := st.arc.AuditReview(ctx, c, since, until)
		if err != nil {
			return err
		}
		switch f {
		case "json":
			return r.WriteJSON(stdout)
		case "csv":
			return r.WriteCSV(stdout)
		}
		return r.WriteText(stdout)
	case "mark":
		idx, err := st.arc.AuditMark(ctx, c, a.finding, a.outcome, a.note)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "finding %s marked %s (log entry %s)\n", a.finding, a.outcome, strconv.FormatInt(idx, 10))
		return nil
	case "incident":
		f, err := format("text", "json", "csv")
		if err != nil {
			return err
		}
		actor := auditreport.Actor{User: a.user, CertFingerprint: a.clientCert}
		if a.address != "" {
			p, err := auditreport.ParseAddress(a.address)
			if err != nil {
				return errors.New("audit incident: --address must be an IP address or a CIDR prefix")
			}
			actor.Address = p
		}
		r, err := st.arc.AuditIncident(ctx, c, since, until, actor)
		if err != nil {
			return err
		}
		switch f {
		case "json":
			return r.WriteJSON(stdout)
		case "csv":
			return r.WriteCSV(stdout)
		}
		return r.WriteText(stdout)
	}
	return fmt.Errorf("audit: unknown report %q", cmd)
}
