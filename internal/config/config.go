// Package config is callvault's configuration: where data, keys and sites
// live, what the listeners are, and what is allowed. A config is either
// read from a JSON file (production) or derived from a data directory
// (`--dev` and local subcommands given `--data DIR`).
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"callvault/internal/atomicfile"
	"callvault/internal/site/s3site"
	"callvault/internal/sqldb"
)

// Site configures one storage site: a directory (Dir), or an S3 bucket
// (URL: s3://KEY:SECRET@HOST:PORT/BUCKET over HTTPS, or s3+http://… for a
// store on loopback). Exactly one of the two.
type Site struct {
	Name         string `json:"name"`
	Dir          string `json:"dir,omitempty"`
	URL          string `json:"url,omitempty"`
	Jurisdiction string `json:"jurisdiction"`
}

// PKCS11 names the HSM token whose key-encryption key unlocks the
// keyring (docs/hsm.md).
type PKCS11 struct {
	// Module is the path of the token's PKCS#11 library.
	Module string `json:"module"`
	// Token is the token's label.
	Token string `json:"token"`
	// PINFile holds the user PIN (a final newline is ignored); keep it
	// mode 0600. The PIN is never taken from the config file itself.
	PINFile string `json:"pin_file"`
	// KeyLabel is the KEK's label on the token; "callvault-kek" if unset.
	KeyLabel string `json:"key_label,omitempty"`

	// PIN, once read: from PINFile by PINValue, or from the dev
	// backends file in the dev setup. Never marshalled.
	PIN string `json:"-"`
}

// DefaultKEKLabel is the label of the keyring's KEK on an HSM token.
const DefaultKEKLabel = "callvault-kek"

// PINValue returns the user PIN: p.PIN if set, else the content of
// PINFile without a final newline.
func (p *PKCS11) PINValue() (string, error) {
	if p.PIN != "" {
		return p.PIN, nil
	}
	b, err := os.ReadFile(p.PINFile)
	if err != nil {
		return "", fmt.Errorf("config: pkcs11 pin file: %w", err)
	}
	pin := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pin == "" {
		return "", errors.New("config: pkcs11 pin file is empty")
	}
	return pin, nil
}

// TLS is the API listener's TLS material.
type TLS struct {
	Cert     string `json:"cert"`      // server certificate chain, PEM
	Key      string `json:"key"`       // its private key, PEM
	ClientCA string `json:"client_ca"` // CA bundle that client certificates must chain to, PEM
}

// Config is the whole configuration. Paths are absolute after Load or Dev.
type Config struct {
	DataDir string `json:"data_dir"`
	// Database holds catalog, directory and audit log: empty for the
	// SQLite files in DataDir, or a postgres:// URL (docs/deploy.md).
	Database string `json:"database,omitempty"`
	// Listen is the mTLS API address. If unset, 127.0.0.1:8443.
	Listen string `json:"listen"`
	// OpsListen is the plain health/metrics address. If unset, 127.0.0.1:9090.
	OpsListen string `json:"ops_listen"`
	TLS       TLS    `json:"tls"`
	// Keyring is the encrypted key file. If unset, DataDir/keys/keyring.age.
	Keyring string `json:"keyring"`
	// KEKFile holds the age identity that unlocks the keyring; or
	// PassphraseFile a passphrase. Exactly one is required.
	KEKFile        string `json:"kek_file"`
	PassphraseFile string `json:"passphrase_file"`
	// PKCS11, instead of either: the keyring is encrypted to a
	// non-extractable key in an HSM token (docs/hsm.md).
	PKCS11 *PKCS11 `json:"pkcs11,omitempty"`
	Sites  []Site  `json:"sites"`
	// AllowedJurisdictions for sites. If unset, ["SE"].
	AllowedJurisdictions []string `json:"allowed_jurisdictions"`
	// MaxUploadBytes bounds one upload. If unset, 2 GiB.
	MaxUploadBytes int64 `json:"max_upload_bytes"`
	// RepairInterval between replication repair passes. If unset, 30s.
	RepairInterval Duration `json:"repair_interval"`
	// ScrubInterval between scrub passes in serve (every blob copy read and
	// verified). If unset, 24h.
	ScrubInterval Duration `json:"scrub_interval"`
	// OrphanGrace: blobs without a catalog row are removed by the scrubber
	// once they are this old. If unset, 24h.
	OrphanGrace Duration `json:"orphan_grace"`
	// Audit configures the audit log's checkpoints and retention.
	Audit Audit `json:"audit"`
	// Retention configures how long recordings are kept (docs/lifecycle.md).
	Retention Retention `json:"retention"`
	// WebIdleTimeout ends a staff web page session after this long without
	// a request (docs/webui.md). If unset, 15m; at most 8h.
	WebIdleTimeout Duration `json:"web_idle_timeout"`
	// SIPRec configures the SIPREC recording server (docs/siprec.md); off
	// unless Listen or ListenTLS is set.
	SIPRec SIPRec `json:"siprec"`
	// Dev marks the throw-away development setup (dev PKI in DataDir/dev).
	Dev bool `json:"-"`
}

// SIPRec configures the SIPREC recording server (docs/siprec.md).
type SIPRec struct {
	// Listen is the SIP address for UDP and TCP (the same port for both);
	// requests are taken only from the Sources' addresses. "" turns it off.
	Listen string `json:"listen"`
	// ListenTLS is the SIP-over-TLS address; clients must present a
	// certificate from tls.client_ca that names a source. "" turns it off.
	ListenTLS string `json:"listen_tls"`
	// RTPHost is the IP address media ports bind to and SDP answers name.
	// If unset, the host of Listen (or ListenTLS).
	RTPHost string `json:"rtp_host"`
	// RTPPorts, "MIN-MAX", bounds the media ports. If unset, 20000-29999.
	RTPPorts string `json:"rtp_ports"`
	// MediaTimeout ends a session that had neither RTP nor a dialog
	// refresh for this long. If unset, 30m; at least 1m.
	MediaTimeout Duration `json:"media_timeout"`
	// Sources are the recording clients allowed.
	Sources []SIPSource `json:"sources"`
}

// SIPSource is one recording client (SRC): the capture principal it
// records as, the addresses it sends from (UDP/TCP), and the care unit
// whose calls it records.
type SIPSource struct {
	HSAID     string   `json:"hsa_id"`
	Addresses []string `json:"addresses"`
	CareUnit  string   `json:"care_unit"`
}

// Enabled reports whether any SIP listener is configured.
func (s SIPRec) Enabled() bool { return s.Listen != "" || s.ListenTLS != "" }

// Ports returns RTPPorts as a range.
func (s SIPRec) Ports() (lo, hi int, err error) {
	if s.RTPPorts == "" {
		return 20000, 29999, nil
	}
	a, b, ok := strings.Cut(s.RTPPorts, "-")
	if ok {
		lo, err = strconv.Atoi(strings.TrimSpace(a))
		if err == nil {
			hi, err = strconv.Atoi(strings.TrimSpace(b))
		}
	}
	if !ok || err != nil || lo < 1024 || hi > 65535 || hi-lo < 16 {
		return 0, 0, errors.New(`siprec.rtp_ports must be "MIN-MAX" within 1024-65535, at least 16 ports`)
	}
	return lo, hi, nil
}

// Audit configures the audit log (docs/audit-log.md).
type Audit struct {
	// CheckpointInterval: cut a checkpoint at least this often if the log
	// grew. If unset, 60s.
	CheckpointInterval Duration `json:"checkpoint_interval"`
	// CheckpointEntries: cut one as soon as this many entries were added
	// since the last. If unset, 1000.
	CheckpointEntries int64 `json:"checkpoint_entries"`
	// WitnessOutboxes receive every checkpoint: a directory (a path), or
	// an https:// URL that is POSTed to.
	WitnessOutboxes []string `json:"witness_outboxes"`
	// RetentionYears the log is kept. If unset, 10; at least 5.
	RetentionYears int `json:"retention_years"`
	// ExtractShowsStaff: patient log extracts name the staff member (the
	// care provider's choice); otherwise only care units.
	ExtractShowsStaff bool `json:"extract_shows_staff"`
	// Review holds the log follow-up's thresholds (docs/audit-reports.md).
	Review Review `json:"review"`
}

// Review is the log follow-up's thresholds. Unset fields take the
// defaults; a negative count turns its rule off.
type Review struct {
	// MaxPatientsPerHour: more distinct patients within 60 minutes by one
	// user is a finding. If unset, 20.
	MaxPatientsPerHour int `json:"max_patients_per_hour"`
	// DenialsPerHour: this many denials within 60 minutes by one user (or
	// address) is a finding. If unset, 5.
	DenialsPerHour int `json:"denials_per_hour"`
	// UsualHours, "HH:MM-HH:MM" Swedish time; accesses outside them (or on
	// other days than UsualDays) are findings. If unset, "07:00-19:00";
	// "off" turns the rule off.
	UsualHours string `json:"usual_hours"`
	// UsualDays, e.g. ["mon","tue","wed","thu","fri"] (the default).
	UsualDays []string `json:"usual_days"`
}

// Retention is how long recordings are kept and what happens after.
type Retention struct {
	// Years after the call's end. If unset, 10; fewer is refused.
	Years int `json:"years"`
	// Disposal after retention ends: "keep" (the default) or "dispose".
	Disposal string `json:"disposal"`
	// DisposalInterval between disposal passes when Disposal is "dispose".
	// If unset, 1h.
	DisposalInterval Duration `json:"disposal_interval"`
}

// MinRetentionYears is the shortest retention of a recording accepted
// (patientdatalagen 3 kap. 17 §).
const MinRetentionYears = 10

// MinAuditRetentionYears is the shortest audit log retention accepted.
const MinAuditRetentionYears = 5

// Duration is a time.Duration written as a Go duration string in JSON.
type Duration time.Duration

// UnmarshalJSON parses "30s", "5m"….
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"30s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// CatalogPath is the catalog's (and audit log's) SQLite file, or the
// PostgreSQL URL of Database.
func (c *Config) CatalogPath() string {
	if c.Database != "" {
		return c.Database
	}
	return filepath.Join(c.DataDir, "catalog.db")
}

// DirectoryPath is the directory's SQLite file, or the PostgreSQL URL of
// Database (one database holds catalog, directory and audit log).
func (c *Config) DirectoryPath() string {
	if c.Database != "" {
		return c.Database
	}
	return filepath.Join(c.DataDir, "directory.db")
}

// OnPostgres reports whether catalog, directory and audit log are in
// PostgreSQL rather than SQLite files.
func (c *Config) OnPostgres() bool      { return c.Database != "" }
func (c *Config) PublicKeyPath() string { return filepath.Join(filepath.Dir(c.Keyring), "archive.pub") }

// AuditVerifierKeyPath is the file of the audit log's verifier keys.
func (c *Config) AuditVerifierKeyPath() string {
	return filepath.Join(filepath.Dir(c.Keyring), "audit-log.vkey")
}
func (c *Config) DevDir() string { return filepath.Join(c.DataDir, "dev") }

// Dev returns the configuration of the development setup in dir: the dev
// PKI and KEK in dir/dev, two filesystem sites dir/site-a and dir/site-b in
// jurisdiction SE.
func Dev(dir string) (*Config, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dev := filepath.Join(abs, "dev")
	c := &Config{
		DataDir: abs, Dev: true,
		TLS:     TLS{Cert: filepath.Join(dev, "server.pem"), Key: filepath.Join(dev, "server-key.pem"), ClientCA: filepath.Join(dev, "ca.pem")},
		KEKFile: filepath.Join(dev, "kek.txt"),
		Sites: []Site{
			{Name: "a", Dir: filepath.Join(abs, "site-a"), Jurisdiction: "SE"},
			{Name: "b", Dir: filepath.Join(abs, "site-b"), Jurisdiction: "SE"},
		},
		// A stand-in for a witness outside the operator's control.
		Audit: Audit{WitnessOutboxes: []string{filepath.Join(dev, "witness")}},
		// The dev recording client is this machine, recording for unit A.
		SIPRec: SIPRec{Listen: "127.0.0.1:5060", ListenTLS: "127.0.0.1:5061", Sources: []SIPSource{{
			HSAID: "SE9999990001-CAP1", Addresses: []string{"127.0.0.1", "::1"}, CareUnit: "SE9999990001-VE0A"}}},
	}
	if err := c.readDevBackends(); err != nil {
		return nil, err
	}
	c.defaults()
	return c, nil
}

// DevBackends are the backends a development data directory runs on, when
// not the embedded defaults: chosen with serve --dev's flags and kept in
// DevDir/backends.json (mode 0600: it holds credentials), so that every
// command given --data DIR uses the same ones.
type DevBackends struct {
	SiteA string `json:"site_a,omitempty"` // a directory or an S3 URL
	SiteB string `json:"site_b,omitempty"`
	// PKCS11Module, PKCS11Token and PKCS11PIN: the keyring's KEK is in
	// this HSM token instead of dev/kek.txt (all three or none).
	PKCS11Module string `json:"pkcs11_module,omitempty"`
	PKCS11Token  string `json:"pkcs11_token,omitempty"`
	PKCS11PIN    string `json:"pkcs11_pin,omitempty"`
	// Database: a postgres:// URL for catalog, directory and audit log.
	Database string `json:"database,omitempty"`
}

// DevBackendsPath is the file that keeps a dev data directory's backends.
func (c *Config) DevBackendsPath() string { return filepath.Join(c.DevDir(), "backends.json") }

// SetDevBackends applies b to the dev configuration c (empty fields leave
// the current choice) and saves the result for later commands.
func (c *Config) SetDevBackends(b DevBackends) error {
	cur, err := c.devBackends()
	if err != nil {
		return err
	}
	for _, f := range []struct{ in, cur *string }{{&b.SiteA, &cur.SiteA}, {&b.SiteB, &cur.SiteB}} {
		switch v := *f.in; {
		case v == "":
			continue
		case s3site.IsURL(v):
			if _, err := s3site.ParseURL(v); err != nil {
				return fmt.Errorf("config: %w", err)
			}
		default:
			abs, err := filepath.Abs(v)
			if err != nil {
				return fmt.Errorf("config: site directory: %w", err)
			}
			*f.in = abs
		}
		*f.cur = *f.in
	}
	if b.Database != "" {
		if !sqldb.IsPostgresDSN(b.Database) {
			return errors.New("config: --database takes a postgres:// URL (without it, the SQLite files in the data directory)")
		}
		cur.Database = b.Database
	}
	if b.PKCS11Module != "" || b.PKCS11Token != "" || b.PKCS11PIN != "" {
		if b.PKCS11Module == "" || b.PKCS11Token == "" || b.PKCS11PIN == "" {
			return errors.New("config: --pkcs11, --pkcs11-token and --pkcs11-pin go together")
		}
		cur.PKCS11Module, cur.PKCS11Token, cur.PKCS11PIN = b.PKCS11Module, b.PKCS11Token, b.PKCS11PIN
	}
	c.applyDevBackends(cur)
	data, err := json.MarshalIndent(cur, "", "  ")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := os.MkdirAll(c.DevDir(), 0o700); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := atomicfile.Write(c.DevBackendsPath(), append(data, '\n')); err != nil {
		return fmt.Errorf("config: dev backends: %w", err)
	}
	return nil
}

func (c *Config) devBackends() (DevBackends, error) {
	var b DevBackends
	data, err := os.ReadFile(c.DevBackendsPath())
	if errors.Is(err, fs.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return b, fmt.Errorf("config: dev backends: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return b, fmt.Errorf("config: dev backends %s: %w", c.DevBackendsPath(), err)
	}
	return b, nil
}

func (c *Config) readDevBackends() error {
	b, err := c.devBackends()
	if err != nil {
		return err
	}
	c.applyDevBackends(b)
	return nil
}

func (c *Config) applyDevBackends(b DevBackends) {
	if b.Database != "" {
		c.Database = b.Database
	}
	if b.PKCS11Module != "" {
		c.KEKFile = ""
		c.PKCS11 = &PKCS11{Module: b.PKCS11Module, Token: b.PKCS11Token, PIN: b.PKCS11PIN, KeyLabel: DefaultKEKLabel}
	}
	for i, v := range []string{b.SiteA, b.SiteB} {
		switch {
		case v == "":
		case s3site.IsURL(v):
			c.Sites[i].Dir, c.Sites[i].URL = "", v
		default:
			c.Sites[i].Dir, c.Sites[i].URL = v, ""
		}
	}
}

// Load reads a JSON config file and checks that it is complete: TLS
// material, a client CA bundle, a keyring and its unlock, two sites.
// Relative paths are taken relative to the file's directory.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config %s: %w", filepath.Base(path), err)
	}
	base := filepath.Dir(path)
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	abs(&c.DataDir)
	abs(&c.TLS.Cert)
	abs(&c.TLS.Key)
	abs(&c.TLS.ClientCA)
	abs(&c.Keyring)
	abs(&c.KEKFile)
	abs(&c.PassphraseFile)
	if c.PKCS11 != nil {
		abs(&c.PKCS11.PINFile)
		if c.PKCS11.KeyLabel == "" {
			c.PKCS11.KeyLabel = DefaultKEKLabel
		}
	}
	for i := range c.Sites {
		abs(&c.Sites[i].Dir)
	}
	for i, o := range c.Audit.WitnessOutboxes {
		if !strings.Contains(o, "://") {
			abs(&c.Audit.WitnessOutboxes[i])
		}
	}
	c.defaults()
	if err := c.Check(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8443"
	}
	if c.OpsListen == "" {
		c.OpsListen = "127.0.0.1:9090"
	}
	if c.Keyring == "" && c.DataDir != "" {
		c.Keyring = filepath.Join(c.DataDir, "keys", "keyring.age")
	}
	if len(c.AllowedJurisdictions) == 0 {
		c.AllowedJurisdictions = []string{"SE"}
	}
	if c.RepairInterval == 0 {
		c.RepairInterval = Duration(30 * time.Second)
	}
	if c.ScrubInterval == 0 {
		c.ScrubInterval = Duration(24 * time.Hour)
	}
	if c.OrphanGrace == 0 {
		c.OrphanGrace = Duration(24 * time.Hour)
	}
	if c.Audit.CheckpointInterval == 0 {
		c.Audit.CheckpointInterval = Duration(time.Minute)
	}
	if c.Audit.CheckpointEntries == 0 {
		c.Audit.CheckpointEntries = 1000
	}
	if c.Audit.RetentionYears == 0 {
		c.Audit.RetentionYears = 10
	}
	if c.Retention.Years == 0 {
		c.Retention.Years = MinRetentionYears
	}
	if c.Retention.Disposal == "" {
		c.Retention.Disposal = "keep"
	}
	if c.Retention.DisposalInterval == 0 {
		c.Retention.DisposalInterval = Duration(time.Hour)
	}
}

// Check reports the first thing missing or wrong for a production start.
func (c *Config) Check() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir is required"))
	}
	if c.TLS.Cert == "" || c.TLS.Key == "" {
		errs = append(errs, errors.New("tls.cert and tls.key are required: the API is served over TLS only"))
	}
	if c.TLS.ClientCA == "" {
		errs = append(errs, errors.New("tls.client_ca is required: every client must present a certificate from these CAs"))
	}
	unlocks := 0
	for _, set := range []bool{c.KEKFile != "", c.PassphraseFile != "", c.PKCS11 != nil} {
		if set {
			unlocks++
		}
	}
	if unlocks != 1 {
		errs = append(errs, errors.New("exactly one of kek_file, passphrase_file and pkcs11 is required to unlock the keyring"))
	}
	if c.Database != "" && !sqldb.IsPostgresDSN(c.Database) {
		errs = append(errs, errors.New("database must be a postgres:// URL; leave it out for the SQLite files in data_dir"))
	}
	if p := c.PKCS11; p != nil && (p.Module == "" || p.Token == "" || p.PINFile == "" && p.PIN == "") {
		errs = append(errs, errors.New("pkcs11 needs module, token and pin_file"))
	}
	if c.RepairInterval < 0 {
		errs = append(errs, fmt.Errorf("repair_interval %v is negative; give a positive interval such as \"30s\"", time.Duration(c.RepairInterval)))
	}
	if c.Audit.CheckpointInterval < 0 || c.Audit.CheckpointEntries < 0 {
		errs = append(errs, errors.New("audit.checkpoint_interval and audit.checkpoint_entries must be positive"))
	}
	if c.Audit.RetentionYears < MinAuditRetentionYears {
		errs = append(errs, fmt.Errorf("audit.retention_years %d is below the %d years the log must be kept", c.Audit.RetentionYears, MinAuditRetentionYears))
	}
	if c.ScrubInterval < 0 || c.OrphanGrace < 0 {
		errs = append(errs, errors.New("scrub_interval and orphan_grace must be positive"))
	}
	if c.WebIdleTimeout < 0 || time.Duration(c.WebIdleTimeout) > 8*time.Hour {
		errs = append(errs, errors.New("web_idle_timeout must be between 0 (the default, 15m) and 8h"))
	}
	if c.Retention.Years < MinRetentionYears {
		errs = append(errs, fmt.Errorf("retention.years %d is below the %d years medical records must be kept", c.Retention.Years, MinRetentionYears))
	}
	if c.SIPRec.Enabled() {
		if _, _, err := c.SIPRec.Ports(); err != nil {
			errs = append(errs, err)
		}
		if c.SIPRec.MediaTimeout != 0 && time.Duration(c.SIPRec.MediaTimeout) < time.Minute {
			errs = append(errs, errors.New("siprec.media_timeout must be at least 1m: a caller on hold is still a call"))
		}
		if len(c.SIPRec.Sources) == 0 {
			errs = append(errs, errors.New("siprec.sources: at least one recording client is required"))
		}
		for i, src := range c.SIPRec.Sources {
			if src.HSAID == "" || src.CareUnit == "" {
				errs = append(errs, fmt.Errorf("siprec.sources[%d]: hsa_id and care_unit are required", i))
			}
			for _, a := range src.Addresses {
				if _, err := netip.ParseAddr(a); err != nil {
					errs = append(errs, fmt.Errorf("siprec.sources[%d]: address %q is not an IP address", i, a))
				}
			}
		}
	}
	if c.Retention.Disposal != "keep" && c.Retention.Disposal != "dispose" {
		errs = append(errs, errors.New(`retention.disposal must be "keep" or "dispose"`))
	}
	if c.Retention.DisposalInterval < 0 {
		errs = append(errs, errors.New("retention.disposal_interval must be positive"))
	}
	for _, o := range c.Audit.WitnessOutboxes {
		if strings.Contains(o, "://") && !strings.HasPrefix(o, "https://") {
			errs = append(errs, errors.New("audit.witness_outboxes: a URL must be https://"))
		}
	}
	if _, _, err := c.Audit.Review.Hours(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxUploadBytes < 0 {
		errs = append(errs, errors.New("max_upload_bytes must not be negative"))
	}
	if len(c.Sites) != 2 {
		errs = append(errs, errors.New("exactly two sites are required"))
	} else if c.Sites[0].Name == c.Sites[1].Name {
		errs = append(errs, errors.New("the two sites need different names"))
	}
	for _, s := range c.Sites {
		if s.Name == "" || (s.Dir == "") == (s.URL == "") {
			errs = append(errs, errors.New("each site needs a name and either a dir or an S3 url"))
		}
		if s.URL != "" {
			if _, err := s3site.ParseURL(s.URL); err != nil {
				errs = append(errs, fmt.Errorf("site %q: %w", s.Name, err))
			}
		}
		if !slices.Contains(c.AllowedJurisdictions, s.Jurisdiction) {
			errs = append(errs, fmt.Errorf("site %q has jurisdiction %q, outside the allowed %v", s.Name, s.Jurisdiction, c.AllowedJurisdictions))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// Hours parses UsualHours and UsualDays: the start and end as offsets from
// midnight; both are 0 when usual_hours is "off".
func (r Review) Hours() (start, end time.Duration, err error) {
	h := r.UsualHours
	if h == "" {
		h = "07:00-19:00"
	}
	if h == "off" {
		return 0, 0, nil
	}
	var h1, m1, h2, m2 int
	if n, err := fmt.Sscanf(h, "%02d:%02d-%02d:%02d", &h1, &m1, &h2, &m2); err != nil || n != 4 ||
		h1 > 24 || h2 > 24 || m1 > 59 || m2 > 59 {
		return 0, 0, fmt.Errorf("audit.review.usual_hours %q: want HH:MM-HH:MM", h)
	}
	start = time.Duration(h1)*time.Hour + time.Duration(m1)*time.Minute
	end = time.Duration(h2)*time.Hour + time.Duration(m2)*time.Minute
	if start >= end || end > 24*time.Hour {
		return 0, 0, fmt.Errorf("audit.review.usual_hours %q: the start must come before the end", h)
	}
	if _, err := r.Days(); err != nil {
		return 0, 0, err
	}
	return start, end, nil
}

// Days parses UsualDays (default Monday to Friday).
func (r Review) Days() ([]time.Weekday, error) {
	if len(r.UsualDays) == 0 {
		return []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}, nil
	}
	var out []time.Weekday
	for _, d := range r.UsualDays {
		w, ok := weekdays[strings.ToLower(d)]
		if !ok {
			return nil, fmt.Errorf("audit.review.usual_days: %q is not one of mon, tue, wed, thu, fri, sat, sun", d)
		}
		out = append(out, w)
	}
	return out, nil
}
