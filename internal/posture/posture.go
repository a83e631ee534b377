// Package posture checks a callvault configuration, and the files it
// names, against the security posture of DESIGN.md: TLS material, mutual
// TLS on every listener, where plain listeners are bound, SIP sources
// allowed without TLS, site jurisdictions, write-once storage, key
// protection and file permissions. It reads; it changes nothing.
// `callvault doctor` prints its findings.
package posture

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"callvault/internal/config"
	"callvault/internal/site/s3site"
	"callvault/internal/sqldb"
)

// Severity of a finding.
type Severity string

// Severities, from fine to wrong.
const (
	OK   Severity = "OK"
	Warn Severity = "WARN" // allowed, but weaker than production should be; say why
	Fail Severity = "FAIL" // against the posture: fix before production
)

// Finding is one check's result. Detail names files, addresses and
// settings, never personal data.
type Finding struct {
	Severity Severity `json:"severity"`
	Check    string   `json:"check"`
	Detail   string   `json:"detail"`
}

// Check runs every check on cfg as of now and returns the findings in a
// fixed order.
func Check(cfg *config.Config, now time.Time) []Finding {
	var out []Finding
	add := func(s Severity, check, format string, args ...any) {
		out = append(out, Finding{Severity: s, Check: check, Detail: fmt.Sprintf(format, args...)})
	}
	checkTLS(cfg, now, add)
	checkListeners(cfg, add)
	checkSites(cfg, add)
	checkDatabase(cfg, add)
	checkKeys(cfg, add)
	checkFiles(cfg, add)
	return out
}

type adder func(s Severity, check, format string, args ...any)

func checkTLS(cfg *config.Config, now time.Time, add adder) {
	cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
	if err != nil {
		add(Fail, "tls.server", "server certificate and key do not load: %v", err)
	} else if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err != nil {
		add(Fail, "tls.server", "server certificate does not parse: %v", err)
	} else {
		switch left := leaf.NotAfter.Sub(now); {
		case left <= 0:
			add(Fail, "tls.server", "server certificate expired on %s", leaf.NotAfter.Format(time.DateOnly))
		case left < 30*24*time.Hour:
			add(Warn, "tls.server", "server certificate expires on %s, in %d days", leaf.NotAfter.Format(time.DateOnly), int(left.Hours()/24))
		default:
			add(OK, "tls.server", "server certificate valid until %s", leaf.NotAfter.Format(time.DateOnly))
		}
	}
	b, err := os.ReadFile(cfg.TLS.ClientCA)
	n := 0
	for err == nil {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			break
		}
		if _, perr := x509.ParseCertificate(blk.Bytes); blk.Type == "CERTIFICATE" && perr == nil {
			n++
		}
	}
	switch {
	case err != nil:
		add(Fail, "tls.client_ca", "client CA bundle unreadable: %v", err)
	case n == 0:
		add(Fail, "tls.client_ca", "client CA bundle %s holds no certificate: no client could log in", cfg.TLS.ClientCA)
	default:
		add(OK, "tls.client_ca", "%d client CA certificate(s); every API and web request needs a client certificate from them (TLS 1.3)", n)
	}
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func checkListeners(cfg *config.Config, add adder) {
	add(OK, "listen.api", "%s: mutual TLS on every request (the API and the staff pages)", cfg.Listen)
	if isLoopback(cfg.OpsListen) {
		add(OK, "listen.ops", "%s: plain HTTP health and metrics on loopback only", cfg.OpsListen)
	} else {
		add(Warn, "listen.ops", "%s: plain HTTP health and metrics reachable beyond this host; keep it on a management network", cfg.OpsListen)
	}
	sc := cfg.SIPRec
	if !sc.Enabled() {
		add(OK, "listen.sip", "SIPREC off")
		return
	}
	if sc.ListenTLS != "" {
		add(OK, "listen.sip", "%s: SIP over TLS with client certificates from tls.client_ca", sc.ListenTLS)
	}
	if sc.Listen != "" {
		// DESIGN.md: an SBC that can only speak UDP/TCP is allow-listed
		// explicitly, and doctor reports it.
		var addrs []string
		for _, s := range sc.Sources {
			addrs = append(addrs, fmt.Sprintf("%s as %s (unit %s)", strings.Join(s.Addresses, ", "), s.HSAID, s.CareUnit))
		}
		sev := Warn
		if isLoopback(sc.Listen) {
			sev = OK
		}
		add(sev, "listen.sip", "%s: SIP over UDP/TCP without TLS, taken only from allow-listed addresses: %s", sc.Listen, strings.Join(addrs, "; "))
	}
}

func checkSites(cfg *config.Config, add adder) {
	if len(cfg.Sites) < 2 {
		add(Fail, "sites", "%d site(s): two full copies in two places are required", len(cfg.Sites))
	}
	for _, s := range cfg.Sites {
		if !slices.Contains(cfg.AllowedJurisdictions, s.Jurisdiction) {
			add(Fail, "sites.jurisdiction", "site %s is in %s, outside the allowed %v", s.Name, s.Jurisdiction, cfg.AllowedJurisdictions)
		} else {
			add(OK, "sites.jurisdiction", "site %s in %s", s.Name, s.Jurisdiction)
		}
		if s.URL != "" {
			c, err := s3site.ParseURL(s.URL)
			if err != nil {
				add(Fail, "sites", "site %s: %v", s.Name, err)
				continue
			}
			if c.Secure {
				add(OK, "sites.tls", "site %s is S3 over HTTPS (%s)", s.Name, c)
			} else {
				add(Warn, "sites.tls", "site %s is S3 over plain HTTP on loopback (%s): for development only", s.Name, c)
			}
			// Whether the bucket enforces Object Lock is for serve's
			// canary to find out (RunningWORM reads its result).
			continue
		}
		// Filesystem sites are the embedded default; write-once retention
		// needs an object store with Object Lock.
		add(Warn, "sites.worm", "site %s is a directory (%s): not write-once; a privileged user can delete or overwrite blobs (scrub detects, but cannot prevent)", s.Name, s.Dir)
	}
	if len(cfg.Sites) == 2 && cfg.Sites[0].Dir != "" && cfg.Sites[1].Dir != "" && sameDisk(cfg.Sites[0].Dir, cfg.Sites[1].Dir) {
		add(Warn, "sites.separation", "sites %s and %s are on the same filesystem: one disk failure loses both copies", cfg.Sites[0].Name, cfg.Sites[1].Name)
	}
}

// checkDatabase: PostgreSQL off this host must be reached over verified
// TLS; the URL is shown without its password.
func checkDatabase(cfg *config.Config, add adder) {
	if !cfg.OnPostgres() {
		add(OK, "database", "SQLite files in %s", cfg.DataDir)
		return
	}
	u, err := url.Parse(cfg.Database)
	if err != nil {
		add(Fail, "database", "the database URL does not parse")
		return
	}
	shown := sqldb.RedactDSN(cfg.Database)
	mode := u.Query().Get("sslmode")
	switch {
	case mode == "verify-full":
		add(OK, "database", "PostgreSQL over TLS with the server's name verified (%s)", shown)
	case isLoopback(net.JoinHostPort(u.Hostname(), "0")):
		add(Warn, "database", "PostgreSQL on loopback without verified TLS (%s): for a database on this host only", shown)
	default:
		add(Fail, "database", "PostgreSQL beyond this host without sslmode=verify-full (%s): personal data and the audit log would cross the network unverified", shown)
	}
}

func checkKeys(cfg *config.Config, add adder) {
	switch {
	case cfg.PKCS11 != nil:
		add(OK, "keys.protection", "the keyring is unlocked by a non-extractable key (%s) in the HSM token %q (%s)",
			cfg.PKCS11.KeyLabel, cfg.PKCS11.Token, cfg.PKCS11.Module)
	case cfg.KEKFile != "":
		sev := Warn
		detail := "the keyring is unlocked by a key file (%s), not by an HSM"
		if filepath.Dir(cfg.KEKFile) == filepath.Dir(cfg.Keyring) || sameDisk(cfg.KEKFile, cfg.DataDir) {
			detail += "; it lies on the same filesystem as the data, so one stolen disk holds both"
		}
		add(sev, "keys.protection", detail, cfg.KEKFile)
	case cfg.PassphraseFile != "":
		add(Warn, "keys.protection", "the keyring is unlocked by a passphrase file (%s), not by an HSM", cfg.PassphraseFile)
	}
}

// checkFiles: what holds keys or metadata must not be readable by others.
func checkFiles(cfg *config.Config, add adder) {
	perm := func(path string, want fs.FileMode, sev Severity, what string) {
		st, err := os.Stat(path)
		if err != nil {
			if os.IsNotExist(err) {
				return
			}
			add(Fail, "files", "%s: %v", path, err)
			return
		}
		if extra := st.Mode().Perm() &^ want; extra != 0 {
			add(sev, "files", "%s (%s) is mode %04o; want at most %04o", path, what, st.Mode().Perm(), want)
			return
		}
		add(OK, "files", "%s (%s) mode %04o", path, what, st.Mode().Perm())
	}
	perm(cfg.DataDir, 0o700, Fail, "data directory")
	perm(cfg.Keyring, 0o600, Fail, "keyring")
	if cfg.KEKFile != "" {
		perm(cfg.KEKFile, 0o600, Fail, "key-encryption key")
	}
	if cfg.PassphraseFile != "" {
		perm(cfg.PassphraseFile, 0o600, Fail, "passphrase")
	}
	if cfg.PKCS11 != nil && cfg.PKCS11.PINFile != "" {
		perm(cfg.PKCS11.PINFile, 0o600, Fail, "HSM user PIN")
	}
	perm(cfg.TLS.Key, 0o600, Fail, "TLS private key")
	if cfg.Dev {
		perm(cfg.DevBackendsPath(), 0o600, Fail, "dev backends, with S3 credentials")
	}
	perm(filepath.Join(cfg.DataDir, "spool"), 0o700, Fail, "SIPREC spool")
	for _, s := range cfg.Sites {
		if s.Dir != "" {
			perm(s.Dir, 0o700, Fail, "site "+s.Name)
		}
	}
	if !cfg.OnPostgres() {
		perm(cfg.CatalogPath(), 0o600, Warn, "catalog")
		perm(cfg.DirectoryPath(), 0o600, Warn, "directory")
	}
}

// RunningWORM judges the WORM canary results of a running serve, given the
// value of its metric callvault_site_worm per site name: every S3 site
// must have been verified (1). Directory sites were reported by Check.
func RunningWORM(cfg *config.Config, worm map[string]float64) []Finding {
	var out []Finding
	for _, s := range cfg.Sites {
		if s.URL == "" {
			continue
		}
		v, ok := worm[s.Name]
		switch {
		case !ok:
			out = append(out, Finding{Fail, "sites.worm", fmt.Sprintf("site %s: serve reports no WORM check", s.Name)})
		case v == 1:
			out = append(out, Finding{OK, "sites.worm", fmt.Sprintf("site %s: serve's canary found Object Lock enforced (a locked object could not be deleted)", s.Name)})
		default:
			out = append(out, Finding{Fail, "sites.worm", fmt.Sprintf("site %s: not verified as WORM (Object Lock not enforced, or the canary could not run; see serve's log and status)", s.Name)})
		}
	}
	return out
}

// Summary counts findings by severity.
func Summary(fs []Finding) (ok, warn, fail int) {
	for _, f := range fs {
		switch f.Severity {
		case OK:
			ok++
		case Warn:
			warn++
		case Fail:
			fail++
		}
	}
	return ok, warn, fail
}
