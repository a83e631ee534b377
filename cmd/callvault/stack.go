package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"filippo.io/age"
	"github.com/prometheus/client_golang/prometheus"

	"callvault/internal/access"
	"callvault/internal/archive"
	"callvault/internal/audit"
	"callvault/internal/auditreport"
	"callvault/internal/catalog"
	"callvault/internal/config"
	"callvault/internal/hsm"
	"callvault/internal/keys"
	"callvault/internal/site"
	"callvault/internal/site/s3site"
)

// defaultDataDir is where serve --dev and the local subcommands keep data
// unless told otherwise.
const defaultDataDir = "./callvault-data"

// configFlags adds --data and --config to fs and returns a function that
// resolves them into a configuration after parsing.
func configFlags(fs *flag.FlagSet) func() (*config.Config, error) {
	data := fs.String("data", "", "data directory of a dev setup (default "+defaultDataDir+")")
	file := fs.String("config", "", "configuration file (production)")
	return func() (*config.Config, error) {
		if *data != "" && *file != "" {
			return nil, errors.New("give --data or --config, not both")
		}
		if *file != "" {
			return config.Load(*file)
		}
		dir := *data
		if dir == "" {
			dir = defaultDataDir
		}
		return config.Dev(dir)
	}
}

// stack is every part of a running archive, opened from a config.
type stack struct {
	cfg   *config.Config
	keys  *keys.Keyring
	live  *keys.Live
	cat   *catalog.DB
	dir   *access.Directory
	audit *audit.Log
	fs    []*site.FS
	sites *site.Replicator
	arc   *archive.Service
	reg   *prometheus.Registry
}

func unlockIdentities(cfg *config.Config) ([]age.Identity, error) {
	if cfg.PKCS11 != nil {
		kek, err := hsmKEK(cfg.PKCS11)
		if err != nil {
			return nil, err
		}
		return []age.Identity{kek}, nil
	}
	if cfg.KEKFile != "" {
		return keys.LoadKEKFile(cfg.KEKFile)
	}
	b, err := os.ReadFile(cfg.PassphraseFile)
	if err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	id, _, err := keys.Passphrase(strings.TrimRight(string(b), "\r\n"))
	if err != nil {
		return nil, err
	}
	return []age.Identity{id}, nil
}

// loadKeyring unlocks the keyring of cfg. A keyring made before the audit
// log had signed checkpoints gets its audit keys here, and is saved.
func loadKeyring(cfg *config.Config) (*keys.Keyring, error) {
	ids, err := unlockIdentities(cfg)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(cfg.Keyring)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	kr, err := keys.Unmarshal(data, ids...)
	if err != nil {
		return nil, err
	}
	if changed, err := kr.EnsureAuditKeys(); err != nil {
		return nil, err
	} else if changed {
		if err := saveKeyring(cfg, kr); err != nil {
			return nil, err
		}
	}
	return kr, nil
}

// kekRecipient returns what the keyring of cfg is encrypted to.
func kekRecipient(cfg *config.Config) (age.Recipient, error) {
	if cfg.PKCS11 != nil {
		return hsmKEK(cfg.PKCS11)
	}
	if cfg.KEKFile == "" {
		b, err := os.ReadFile(cfg.PassphraseFile)
		if err != nil {
			return nil, fmt.Errorf("passphrase file: %w", err)
		}
		_, r, err := keys.Passphrase(strings.TrimRight(string(b), "\r\n"))
		return r, err
	}
	ids, err := keys.LoadKEKFile(cfg.KEKFile)
	if err != nil {
		return nil, err
	}
	switch id := ids[0].(type) {
	case *age.HybridIdentity:
		return id.Recipient(), nil
	case *age.X25519Identity:
		return id.Recipient(), nil
	}
	return nil, errors.New("kek file: the first identity is neither a hybrid nor an X25519 age identity")
}

// saveKeyring encrypts kr to the KEK of cfg and replaces the keyring file
// and the public files beside it (archive.pub, audit-log.vkey).
func saveKeyring(cfg *config.Config, kr *keys.Keyring) error {
	r, err := kekRecipient(cfg)
	if err != nil {
		return err
	}
	data, err := kr.Marshal(r)
	if err != nil {
		return err
	}
	if err := keys.WriteFileAtomic(cfg.Keyring, data); err != nil {
		return err
	}
	return writePublicKeys(cfg, kr)
}

// writePublicKeys writes the public halves beside the keyring: the
// archive's recipients for capture hosts and the audit log's verifier keys
// for witnesses and verifiers.
func writePublicKeys(cfg *config.Config, kr *keys.Keyring) error {
	if err := keys.WriteFileAtomic(cfg.PublicKeyPath(), kr.PublicFile()); err != nil {
		return err
	}
	vkeys, err := kr.AuditVerifierKeys()
	if err != nil {
		return err
	}
	vkeys = append(vkeys, kr.AuditRetiredKeys()...)
	return keys.WriteFileAtomic(cfg.AuditVerifierKeyPath(), []byte(strings.Join(vkeys, "\n")+"\n"))
}

// openStack opens the keyring, databases and sites of cfg and wires the
// archive. The caller must Close it.
func openStack(ctx context.Context, cfg *config.Config, logger *slog.Logger) (_ *stack, err error) {
	st := &stack{cfg: cfg, reg: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			st.Close() // what was opened before the error
		}
	}()
	if st.keys, err = loadKeyring(cfg); err != nil {
		return nil, err
	}
	ids, err := unlockIdentities(cfg)
	if err != nil {
		return nil, err
	}
	// The archive follows the keyring file: keys rotate/rewrap/destroy-epoch
	// change it under a running serve.
	st.live = keys.NewLive(cfg.Keyring, st.keys, ids)
	if st.cat, err = catalog.Open(ctx, cfg.CatalogPath()); err != nil {
		return nil, err
	}
	if st.dir, err = access.OpenDirectory(ctx, cfg.DirectoryPath()); err != nil {
		return nil, err
	}
	if st.audit, err = audit.Open(ctx, cfg.CatalogPath(), st.keys); err != nil {
		return nil, err
	}
	var stores []site.Store
	for _, sc := range cfg.Sites {
		if sc.URL != "" {
			s, err := openS3Site(sc)
			if err != nil {
				return nil, err
			}
			stores = append(stores, s)
			continue
		}
		f, err := site.NewFS(ctx, site.FSConfig{Name: sc.Name, Dir: sc.Dir, Jurisdiction: sc.Jurisdiction})
		if err != nil {
			return nil, err
		}
		st.fs = append(st.fs, f)
		stores = append(stores, f)
	}
	if err := site.CheckJurisdictions(stores, cfg.AllowedJurisdictions); err != nil {
		return nil, err
	}
	if len(stores) != 2 {
		return nil, errors.New("exactly two sites are required")
	}
	if st.sites, err = site.NewReplicator(stores[0], stores[1], logger); err != nil {
		return nil, err
	}
	st.arc, err = archive.New(archive.Config{
		Catalog: st.cat, Sites: st.sites, Keys: st.live, Directory: st.dir, Audit: st.audit, AuditLog: st.audit, Reports: reportsOf(cfg),
		Retention: archive.Retention{Years: cfg.Retention.Years, Dispose: cfg.Retention.Disposal == "dispose"},
		Logger:    logger, Metrics: archive.NewMetrics(st.reg),
	})
	if err != nil {
		return nil, err
	}
	if n, err := st.cat.BackfillRetention(ctx, cfg.Retention.Years); err != nil {
		return nil, err
	} else if n > 0 {
		logger.Info("retention recorded for recordings catalogued before it existed", "recordings", n)
	}
	return st, nil
}

// Close closes everything that was opened.
func (st *stack) Close() {
	if st.audit != nil {
		st.audit.Close()
	}
	if st.dir != nil {
		st.dir.Close()
	}
	if st.cat != nil {
		st.cat.Close()
	}
}

// reportsOf turns the config's follow-up thresholds into the reports'
// rules. Config.Check has validated them.
func reportsOf(cfg *config.Config) archive.Reports {
	rv := cfg.Audit.Review
	rules := auditreport.DefaultRules()
	switch {
	case rv.MaxPatientsPerHour > 0:
		rules.MaxPatients = rv.MaxPatientsPerHour
	case rv.MaxPatientsPerHour < 0:
		rules.MaxPatients = 0
	}
	switch {
	case rv.DenialsPerHour > 0:
		rules.MinDenials = rv.DenialsPerHour
	case rv.DenialsPerHour < 0:
		rules.MinDenials = 0
	}
	start, end, _ := rv.Hours()
	days, _ := rv.Days()
	if end == 0 {
		rules.UsualHours = nil
	} else {
		rules.UsualHours = &auditreport.Hours{Start: start, End: end, Days: days}
	}
	return archive.Reports{Rules: rules, ShowStaff: cfg.Audit.ExtractShowsStaff}
}

// openS3Site returns the S3 store of site configuration sc.
func openS3Site(sc config.Site) (*s3site.Store, error) {
	c, err := s3site.ParseURL(sc.URL)
	if err != nil {
		return nil, fmt.Errorf("site %s: %w", sc.Name, err)
	}
	c.Name, c.Jurisdiction = sc.Name, sc.Jurisdiction
	return s3site.New(c)
}

// hsmKEK returns the keyring's KEK in the HSM token p names. The token is
// opened once per process (hsm.OpenShared): a PKCS#11 login is the
// process's.
func hsmKEK(p *config.PKCS11) (*hsm.KEK, error) {
	pin, err := p.PINValue()
	if err != nil {
		return nil, err
	}
	tok, err := hsm.OpenShared(p.Module, p.Token, pin)
	if err != nil {
		return nil, err
	}
	return tok.KEK(p.KeyLabel)
}
