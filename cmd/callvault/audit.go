package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"callvault/internal/audit"
	"callvault/internal/config"
	"callvault/internal/keys"
)

const auditUsage = `callvault audit [--data DIR | --config FILE] COMMAND

  verify [--since-checkpoint FILE]  recompute the Merkle tree from every entry, check every
                                    stored checkpoint (and FILE, e.g. a witness's copy);
                                    names the first bad index
  prove --index N [--size M]        inclusion proof of entry N in the tree of size M
                                    (default: the latest checkpoint), as JSON
  checkpoint                        cut a checkpoint now if the log grew; print the latest
  events [--from N]                 entries as JSON lines, decrypted (personal data: for auditors)
  extract --patient PNR [--format json|csv|html] [--since T --until T]
                                    the patient log extract (patientloggutdrag)
  review --since T --until T [--format text|json|csv]
                                    the log follow-up: findings and their review marks
  mark --finding ID --outcome no-action|followed-up|reported [--note TEXT]
                                    mark a follow-up finding reviewed (itself a log event)
  incident --since T --until T [--user HSA-ID] [--client-cert SHA256] [--address CIDR]
           [--format csv|json|text] every recording read in the window, patients affected
T is RFC 3339 or a date (YYYY-MM-DD, Swedish time, the start of that day). Reports run as the
local operator with the auditor role and are logged as such.
  key list|rotate|retire --key ID   the checkpoint signing keys (docs/audit-log.md, rotation)
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
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	sub := flag.NewFlagSet("audit "+cmd, flag.ContinueOnError)
	sub.SetOutput(stderr)
	from := sub.Int64("from", 0, "first index (events)")
	since := sub.String("since-checkpoint", "", "a checkpoint file to verify the log against (verify)")
	index := sub.Int64("index", -1, "entry index (prove)")
	size := sub.Int64("size", 0, "tree size (prove; default the latest checkpoint)")
	keyID := sub.String("key", "", "key ID, 8 hex digits (key retire)")
	rep := reportFlags(sub)
	if cmd == "key" {
		if len(rest) == 0 {
			return errors.New("audit key: say list, rotate or retire")
		}
		cmd, rest = "key "+rest[0], rest[1:]
	}
	if err := sub.Parse(rest); err != nil {
		return err
	}
	if sub.NArg() != 0 {
		return fmt.Errorf("audit %s: unexpected argument %q", cmd, sub.Arg(0))
	}
	cfg, err := cfgOf()
	if err != nil {
		return err
	}
	switch cmd {
	case "extract", "review", "mark", "incident":
		return runReport(ctx, cfg, cmd, rep, stdout)
	}
	kr, err := loadKeyring(cfg)
	if err != nil {
		return err
	}
	log, err := audit.Open(ctx, cfg.CatalogPath(), kr)
	if err != nil {
		return err
	}
	defer log.Close()
	if strings.HasPrefix(cmd, "key ") {
		return auditKey(ctx, cfg, kr, log, strings.TrimPrefix(cmd, "key "), *keyID, stdout)
	}
	switch cmd {
	case "verify":
		var extra [][]byte
		if *since != "" {
			b, err := os.ReadFile(*since)
			if err != nil {
				return fmt.Errorf("audit verify: %w", err)
			}
			extra = append(extra, b)
		}
		res, err := log.Verify(ctx, extra...)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "audit log ok: %d entries, %d stored checkpoints verified", res.Entries, res.Checkpoints)
		if *since != "" {
			fmt.Fprint(stdout, ", and the given checkpoint")
		}
		fmt.Fprintf(stdout, "; root %s\n", base64.StdEncoding.EncodeToString(res.Root[:]))
		return nil
	case "prove":
		return auditProve(ctx, log, *index, *size, stdout)
	case "checkpoint":
		c, err := log.Cut(ctx)
		if err != nil {
			return err
		}
		_, err = stdout.Write(c.Note)
		return err
	case "events":
		op := localOperator()
		if err := log.Append(ctx, &audit.Event{Action: "audit.read-log", Outcome: audit.Allowed, Reason: "local-operator",
			User: op.Principal.HSAID, ClientAddr: op.ClientAddr, RequestID: op.RequestID, Detail: fmt.Sprintf("events from=%d", *from)}); err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		return log.Read(ctx, *from, func(e *audit.Event) error { return enc.Encode(e) })
	}
	fs.Usage()
	return fmt.Errorf("audit: unknown command %q", cmd)
}

// proofJSON is what `audit prove` prints: everything an RFC 6962 verifier
// needs besides the verifier key.
type proofJSON struct {
	Index      int64    `json:"index"`
	Size       int64    `json:"size"`
	Entry      string   `json:"entry"`     // base64 of the entry bytes
	LeafHash   string   `json:"leaf_hash"` // base64 of SHA-256(0x00 || entry)
	Proof      []string `json:"proof"`     // base64 hashes, leaf to root
	Root       string   `json:"root"`
	Checkpoint string   `json:"checkpoint,omitempty"` // the signed checkpoint of that size, if one is stored
}

func auditProve(ctx context.Context, log *audit.Log, index, size int64, stdout io.Writer) error {
	if index < 0 {
		return errors.New("audit prove: --index N is required")
	}
	var cp *audit.Checkpoint
	if size == 0 {
		c, err := log.LatestCheckpoint(ctx)
		if err != nil && !errors.Is(err, audit.ErrNoCheckpoint) {
			return err
		}
		if c == nil || c.Size <= index {
			if c, err = log.Cut(ctx); err != nil {
				return err
			}
		}
		cp, size = c, c.Size
	}
	if index >= size {
		return fmt.Errorf("audit prove: index %d is not in a tree of size %d", index, size)
	}
	entry, err := log.Entry(ctx, index)
	if err != nil {
		return err
	}
	p, err := log.InclusionProof(ctx, index, size)
	if err != nil {
		return err
	}
	root, err := log.TreeHash(ctx, size)
	if err != nil {
		return err
	}
	b64 := base64.StdEncoding.EncodeToString
	out := proofJSON{Index: index, Size: size, Entry: b64(entry), Root: b64(root[:])}
	leaf := tlog.RecordHash(entry)
	out.LeafHash = b64(leaf[:])
	for _, h := range p {
		out.Proof = append(out.Proof, b64(h[:]))
	}
	if cp != nil {
		out.Checkpoint = string(cp.Note)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// auditKey lists, rotates or retires the checkpoint signing keys. A change
// is audited (durably) before the keyring is rewritten. serve must be
// restarted to sign with the new set.
func auditKey(ctx context.Context, cfg *config.Config, kr *keys.Keyring, log *audit.Log, cmd, keyID string, stdout io.Writer) error {
	if cmd == "rotate" || cmd == "retire" {
		op := localOperator()
		detail := cmd
		if keyID != "" {
			detail += " key=" + keyID
		}
		if err := log.Append(ctx, &audit.Event{Action: "keys.audit-" + cmd, Outcome: audit.Allowed, Reason: "local-operator",
			User: op.Principal.HSAID, ClientAddr: op.ClientAddr, RequestID: op.RequestID, Detail: detail}); err != nil {
			return err
		}
	}
	switch cmd {
	case "list":
	case "rotate":
		vkey, err := kr.RotateAuditKey()
		if err != nil {
			return err
		}
		if err := saveKeyring(cfg, kr); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added %s\nAfter serve restarts, checkpoints are signed by every key below. Give the new key to\nthe witnesses, then retire the old one with: callvault audit key retire --key ID\n", vkey)
	case "retire":
		if keyID == "" {
			return errors.New("audit key retire: --key ID is required")
		}
		if err := kr.RetireAuditKey(keyID); err != nil {
			return err
		}
		if err := saveKeyring(cfg, kr); err != nil {
			return err
		}
	default:
		return fmt.Errorf("audit key: unknown command %q (list, rotate, retire)", cmd)
	}
	vkeys, err := kr.AuditVerifierKeys()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "origin %s\n", kr.AuditOrigin())
	for _, v := range vkeys {
		fmt.Fprintf(stdout, "key %s  %s\n", strings.Split(v, "+")[1], v)
	}
	for _, v := range kr.AuditRetiredKeys() {
		fmt.Fprintf(stdout, "retired %s  %s\n", strings.Split(v, "+")[1], v)
	}
	return nil
}
