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
	"text/tabwriter"
	"time"

	"callvault/internal/access"
	"callvault/internal/archive"
	"callvault/internal/pnr"
)

const directoryUsage = `callvault directory [--data DIR | --config FILE] COMMAND

  list                                              users, systems and units
  add-unit  --hsa-id ID --care-provider ID --name NAME
  add       --hsa-id ID --care-provider ID --care-unit ID --roles R[,R] [--name NAME]
  add-aor   --aor sip:USER@HOST --hsa-id ID   (a staff member's SIP address, for recorded calls)
  disable   --hsa-id ID          (refused at once on every request)
  enable    --hsa-id ID
  block     --patient PNR --care-unit ID    (the patient's spärr against a unit)
  unblock   --patient PNR --care-unit ID
  protect   --patient PNR                   (protected identity: every access is a follow-up finding)
  unprotect --patient PNR

Roles: capture, clinician, auditor, admin, witness.
`

func cmdDirectory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("directory", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, directoryUsage) }
	cfgOf := configFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("directory: no command given")
	}
	cfg, err := cfgOf()
	if err != nil {
		return err
	}
	// The directory is changed through the archive's stack so that every
	// change, and every listing, is in the audit log before it happens.
	st, err := openStack(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer st.Close()
	dir := st.dir
	op := localOperator()

	sub := flag.NewFlagSet("directory "+fs.Arg(0), flag.ContinueOnError)
	sub.SetOutput(stderr)
	hsa := sub.String("hsa-id", "", "HSA-ID")
	provider := sub.String("care-provider", "", "care provider HSA-ID")
	unit := sub.String("care-unit", "", "care unit HSA-ID")
	name := sub.String("name", "", "display name")
	roles := sub.String("roles", "", "comma-separated roles")
	patient := sub.String("patient", "", "personnummer or samordningsnummer")
	aor := sub.String("aor", "", "SIP address of record (sip:, sips: or tel: URI)")
	if err := sub.Parse(fs.Args()[1:]); err != nil {
		return err
	}
	cmd := fs.Arg(0)
	audited := func(detail, patient string) error {
		return st.arc.AuditAdminChange(ctx, op, "directory."+cmd, detail, patient)
	}
	switch cmd {
	case "list":
		if err := audited("", ""); err != nil {
			return err
		}
		units, err := dir.Units(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "UNIT\tCARE PROVIDER\tNAME")
		for _, u := range units {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", u.HSAID, u.CareProvider, u.Name)
		}
		fmt.Fprintln(tw, "\nHSA-ID\tCARE PROVIDER\tCARE UNIT\tROLES\tSTATE")
		entries, err := dir.List(ctx)
		if err != nil {
			return err
		}
		for _, e := range entries {
			state := "active"
			if e.Disabled {
				state = "disabled"
			}
			rs := make([]string, len(e.Roles))
			for i, r := range e.Roles {
				rs[i] = string(r)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.HSAID, e.CareProvider, e.CareUnit, strings.Join(rs, ","), state)
		}
		return tw.Flush()
	case "add-unit":
		if err := audited("unit="+*hsa+" care_provider="+*provider, ""); err != nil {
			return err
		}
		return dir.AddUnit(ctx, access.Unit{HSAID: *hsa, CareProvider: *provider, Name: *name})
	case "add":
		var rs []access.Role
		for _, r := range strings.Split(*roles, ",") {
			if r = strings.TrimSpace(r); r == "" {
				continue
			}
			role, err := access.ParseRole(r)
			if err != nil {
				return err
			}
			rs = append(rs, role)
		}
		if *name == "" {
			*name = *hsa
		}
		if err := audited("hsa_id="+*hsa+" care_unit="+*unit+" roles="+*roles, ""); err != nil {
			return err
		}
		return dir.Add(ctx, access.Entry{HSAID: *hsa, DisplayName: *name, CareProvider: *provider, CareUnit: *unit, Roles: rs})
	case "add-aor":
		// The AOR itself may carry a name; the log keeps only the HSA-ID.
		if err := audited("hsa_id="+*hsa, ""); err != nil {
			return err
		}
		return dir.AddAOR(ctx, *aor, *hsa)
	case "disable", "enable":
		if err := audited("hsa_id="+*hsa, ""); err != nil {
			return err
		}
		return dir.SetDisabled(ctx, *hsa, fs.Arg(0) == "disable")
	case "block", "unblock":
		n, err := pnr.Parse(*patient, time.Now())
		if err != nil {
			return fmt.Errorf("directory: --patient: %w", err)
		}
		if err := audited("care_unit="+*unit, n.Digits()); err != nil {
			return err
		}
		idx := archive.PatientIndex(st.keys, n)
		if cmd == "block" {
			return dir.AddBlock(ctx, idx, *unit)
		}
		return dir.RemoveBlock(ctx, idx, *unit)
	case "protect", "unprotect":
		n, err := pnr.Parse(*patient, time.Now())
		if err != nil {
			return fmt.Errorf("directory: --patient: %w", err)
		}
		if err := audited("", n.Digits()); err != nil {
			return err
		}
		return dir.SetProtected(ctx, archive.PatientIndex(st.keys, n), cmd == "protect")
	}
	fs.Usage()
	return fmt.Errorf("directory: unknown command %q", cmd)
}

// localOperator is the caller of local subcommands: whoever can read the
// data directory and unlock the keyring on this host acts as an admin, and
// is recorded by operating-system user ID.
func localOperator() archive.Caller {
	return archive.Caller{
		Principal:  &access.Principal{HSAID: fmt.Sprintf("local-uid-%d", os.Getuid()), Roles: []access.Role{access.RoleAdmin}},
		ClientAddr: "local",
		RequestID:  "cli-" + strconv.FormatInt(time.Now().UnixNano(), 36),
	}
}
