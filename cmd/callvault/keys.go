package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"callvault/internal/archive"
	"callvault/internal/audit"
	"callvault/internal/config"
	"callvault/internal/escrow"
	"callvault/internal/keys"
)

const keysUsage = `usage: callvault keys [--data DIR | --config FILE] COMMAND [flags]

  list                              epochs and how many recordings are wrapped to each
  rotate                            new archive key epoch; new recordings use it
  rewrap [--batch N] [--limit N]    move wrapped file keys to the current epoch (resumable)
  destroy-epoch --epoch N           destroy a retired epoch's private key (nothing may use it)
  escrow --shares N --threshold K --out DIR
                                    split the keyring into N share files, K needed to recover
  recover --out FILE SHARE-FILE...  rebuild the keyring from K share files, encrypted to the
                                    config's key-encryption key, written to FILE
`

func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keys", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, keysUsage) }
	cfgOf := configFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, keysUsage)
		return errors.New("keys: no command given")
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	sub := flag.NewFlagSet("keys "+cmd, flag.ContinueOnError)
	sub.SetOutput(stderr)
	batch := sub.Int("batch", 500, "rows per transaction (rewrap)")
	limit := sub.Int("limit", 0, "stop after this many rows; a later run resumes (rewrap)")
	epoch := sub.Int("epoch", 0, "the epoch to destroy (destroy-epoch)")
	shares := sub.Int("shares", 0, "number of share files (escrow)")
	threshold := sub.Int("threshold", 0, "shares needed to recover, at least 2 (escrow)")
	out := sub.String("out", "", "directory for the share files (escrow); keyring file to write (recover)")
	if err := sub.Parse(rest); err != nil {
		return err
	}
	cfg, err := cfgOf()
	if err != nil {
		return err
	}
	if cmd == "recover" {
		return keysRecover(ctx, sub.Args(), *out, cfg, stdout)
	}
	st, err := openStack(ctx, cfg, slog.New(slog.NewJSONHandler(stderr, nil)))
	if err != nil {
		return err
	}
	defer st.Close()
	op := localOperator()
	switch cmd {
	case "list":
		return keysList(ctx, st, stdout)
	case "rotate":
		if err := st.arc.AuditAdminChange(ctx, op, "keys.rotate", fmt.Sprintf("from_epoch=%d", st.keys.Current().ID), ""); err != nil {
			return err
		}
		e, err := st.keys.Rotate(time.Now())
		if err != nil {
			return err
		}
		if err := saveKeyring(cfg, st.keys); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "epoch %d created and current: new recordings are wrapped to it (a running serve picks it up within seconds).\n"+
			"Capture hosts: copy %s. Then move existing recordings with: callvault keys rewrap\n", e.ID, cfg.PublicKeyPath())
		return nil
	case "rewrap":
		bar := newProgress(stderr)
		rep, err := st.arc.Rewrap(ctx, op, archive.RewrapOptions{Batch: *batch, Limit: *limit, Progress: func(done, total int) {
			if bar.tty {
				bar.update(done, total)
			} else {
				fmt.Fprintf(stderr, "rewrapped %d of %d\n", done, total)
			}
		}})
		bar.done()
		if err != nil {
			return fmt.Errorf("keys rewrap: %w", err)
		}
		fmt.Fprintf(stdout, "rewrapped %d of %d file keys to epoch %d\n", rep.Rewrapped, rep.Stale, rep.Epoch)
		if len(rep.Failed) > 0 {
			return fmt.Errorf("keys rewrap: %d keys could not be unwrapped (first: %s); see the log", len(rep.Failed), rep.Failed[0])
		}
		return keysList(ctx, st, stdout)
	case "destroy-epoch":
		return keysDestroy(ctx, st, *epoch, stdout)
	case "escrow":
		return keysEscrow(ctx, st, *shares, *threshold, *out, stdout)
	}
	fmt.Fprint(stderr, keysUsage)
	return fmt.Errorf("keys: unknown command %q", cmd)
}

func keysList(ctx context.Context, st *stack, stdout io.Writer) error {
	counts, err := st.cat.EpochCounts(ctx)
	if err != nil {
		return err
	}
	for _, e := range st.keys.Epochs() {
		cur := ""
		if e.ID == st.keys.Current().ID {
			cur = "  (current)"
		}
		fmt.Fprintf(stdout, "epoch %d  created %s  recordings %d%s\n", e.ID, e.Created.Format(time.RFC3339), counts[e.ID], cur)
		delete(counts, e.ID)
	}
	var missing []int
	for e := range counts {
		missing = append(missing, e)
	}
	sort.Ints(missing)
	for _, e := range missing {
		fmt.Fprintf(stdout, "epoch %d  KEY NOT IN KEYRING  recordings %d\n", e, counts[e])
	}
	return nil
}

func keysDestroy(ctx context.Context, st *stack, epoch int, stdout io.Writer) error {
	if epoch <= 0 {
		return errors.New("keys destroy-epoch: --epoch N is required")
	}
	counts, err := st.cat.EpochCounts(ctx)
	if err != nil {
		return err
	}
	if n := counts[epoch]; n > 0 {
		return fmt.Errorf("keys destroy-epoch: %d recordings are still wrapped to epoch %d; run callvault keys rewrap first", n, epoch)
	}
	if _, err := st.keys.Identity(epoch); err != nil {
		return fmt.Errorf("keys destroy-epoch: %w", err)
	}
	if epoch == st.keys.Current().ID {
		return fmt.Errorf("keys destroy-epoch: %w", keys.ErrCurrentEpoch)
	}
	if err := st.arc.AuditAdminChange(ctx, localOperator(), "keys.destroy-epoch", fmt.Sprintf("epoch=%d", epoch), ""); err != nil {
		return err
	}
	if err := st.keys.DestroyEpoch(epoch); err != nil {
		return err
	}
	if err := saveKeyring(st.cfg, st.keys); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "epoch %d destroyed. Copies of the keyring made before now (backups, escrow shares) still hold it.\n", epoch)
	return nil
}

func keysEscrow(ctx context.Context, st *stack, n, k int, dir string, stdout io.Writer) error {
	if dir == "" {
		return errors.New("keys escrow: --out DIR is required")
	}
	plain, err := st.keys.MarshalPlaintext()
	if err != nil {
		return err
	}
	defer clear(plain)
	if err := st.arc.AuditAdminChange(ctx, localOperator(), "keys.escrow", fmt.Sprintf("shares=%d threshold=%d", n, k), ""); err != nil {
		return err
	}
	parts, err := escrow.Split(plain, n, k, time.Now())
	if err != nil {
		return fmt.Errorf("keys escrow: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, p := range parts {
		b, err := p.MarshalText()
		if err != nil {
			return err
		}
		path := filepath.Join(dir, p.FileName())
		if err := keys.WriteFileAtomic(path, b); err != nil {
			return err
		}
		fmt.Fprintln(stdout, path)
	}
	fmt.Fprintf(stdout, "escrow %s: %d shares, any %d recover the keyring. Give each file to a different custodian and delete it here.\n",
		parts[0].EscrowID, n, k)
	return nil
}

// keysRecover rebuilds a keyring from share files without opening the
// archive (its keyring may be what was lost), encrypts it to the config's
// key-encryption key and writes it to out, which must not exist. If the
// audit log is there, the recovery is logged with the escrow and share
// numbers used.
func keysRecover(ctx context.Context, files []string, out string, cfg *config.Config, stdout io.Writer) error {
	if out == "" {
		return errors.New("keys recover: --out FILE is required (the keyring to write; it must not exist)")
	}
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("keys recover: %s exists; give a new file (move it into place after checking)", out)
	}
	var parts []*escrow.Share
	var used []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("keys recover: %w", err)
		}
		p, err := escrow.ParseShare(b)
		if err != nil {
			return fmt.Errorf("keys recover: %s: %w", filepath.Base(f), err)
		}
		parts = append(parts, p)
		used = append(used, fmt.Sprint(p.Index))
	}
	plain, err := escrow.Recover(parts)
	if err != nil {
		return fmt.Errorf("keys recover: %w", err)
	}
	defer clear(plain)
	kr, err := keys.UnmarshalPlaintext(plain)
	if err != nil {
		return fmt.Errorf("keys recover: %w", err)
	}
	r, err := kekRecipient(cfg)
	if err != nil {
		return err
	}
	data, err := kr.Marshal(r)
	if err != nil {
		return err
	}
	if err := keys.WriteFileAtomic(out, data); err != nil {
		return err
	}
	if _, err := os.Stat(cfg.CatalogPath()); err == nil || cfg.OnPostgres() {
		log, err := audit.Open(ctx, cfg.CatalogPath(), kr)
		if err == nil {
			op := localOperator()
			err = log.Append(ctx, &audit.Event{Action: "keys.recover", Outcome: audit.Allowed, Reason: "escrow",
				User: op.Principal.HSAID, ClientAddr: op.ClientAddr, RequestID: op.RequestID,
				Detail: fmt.Sprintf("escrow=%s shares=%s", parts[0].EscrowID, strings.Join(used, ","))})
			log.Close()
		}
		if err != nil {
			return fmt.Errorf("keys recover: keyring written to %s, but the audit log could not record it: %w", out, err)
		}
	}
	fmt.Fprintf(stdout, "keyring recovered from %d shares of escrow %s (epochs", len(parts), parts[0].EscrowID)
	for _, e := range kr.Epochs() {
		fmt.Fprintf(stdout, " %d", e.ID)
	}
	fmt.Fprintf(stdout, ") and written to %s, encrypted to the configured key-encryption key\n", out)
	return nil
}
