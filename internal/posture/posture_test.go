package posture

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"callvault/internal/config"
	"callvault/internal/devpki"
)

// setup writes a complete dev-style configuration with everything in
// place and right, the server certificate valid from now-1h to notAfter.
func setup(t *testing.T, notAfter time.Time) *config.Config {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	cfg, err := config.Dev(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca, err := devpki.NewCA("posture test CA", now)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer([]string{"127.0.0.1"}, now.Add(-time.Hour), notAfter)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, cfg.DevDir(), filepath.Dir(cfg.Keyring), filepath.Join(dir, "spool"), cfg.Sites[0].Dir, cfg.Sites[1].Dir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for path, data := range map[string][]byte{cfg.TLS.Cert: certPEM, cfg.TLS.Key: keyPEM, cfg.TLS.ClientCA: ca.CertPEM(),
		cfg.Keyring: []byte("age"), cfg.KEKFile: []byte("kek"), cfg.CatalogPath(): nil, cfg.DirectoryPath(): nil} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

func find(fs []Finding, sev Severity, check, detailHas string) bool {
	for _, f := range fs {
		if f.Severity == sev && f.Check == check && strings.Contains(f.Detail, detailHas) {
			return true
		}
	}
	return false
}

func TestCheckDev(t *testing.T) {
	cfg := setup(t, time.Now().AddDate(1, 0, 0))
	fs := Check(cfg, time.Now())
	if _, _, fail := Summary(fs); fail != 0 {
		t.Errorf("a sound dev setup has failures: %+v", fs)
	}
	for _, want := range []struct {
		sev         Severity
		check, isIn string
	}{
		{OK, "tls.server", "valid until"},
		{OK, "tls.client_ca", "1 client CA"},
		{OK, "listen.ops", "loopback only"},
		{OK, "listen.sip", "127.0.0.1, ::1 as SE9999990001-CAP1"},
		{Warn, "sites.worm", "site a is a directory"},
		{Warn, "sites.worm", "site b is a directory"},
		{Warn, "sites.separation", "same filesystem"},
		{Warn, "keys.protection", "not by an HSM"},
		{OK, "files", "(keyring) mode 0600"},
	} {
		if !find(fs, want.sev, want.check, want.isIn) {
			t.Errorf("no %s %s %q in %+v", want.sev, want.check, want.isIn, fs)
		}
	}
}

func TestCheckFindsWhatIsWrong(t *testing.T) {
	for _, tc := range []struct {
		name        string
		edit        func(t *testing.T, c *config.Config) time.Time // returns "now"
		sev         Severity
		check, isIn string
	}{
		{"expired certificate", func(t *testing.T, c *config.Config) time.Time { return time.Now().AddDate(2, 0, 0) }, Fail, "tls.server", "expired"},
		{"certificate about to expire", func(t *testing.T, c *config.Config) time.Time { return time.Now().AddDate(1, 0, -10) }, Warn, "tls.server", "expires on"},
		{"empty client CA bundle", func(t *testing.T, c *config.Config) time.Time {
			os.WriteFile(c.TLS.ClientCA, []byte("not a certificate\n"), 0o600)
			return time.Now()
		}, Fail, "tls.client_ca", "holds no certificate"},
		{"keyring readable by others", func(t *testing.T, c *config.Config) time.Time {
			os.Chmod(c.Keyring, 0o644)
			return time.Now()
		}, Fail, "files", "keyring) is mode 0644"},
		{"data directory open", func(t *testing.T, c *config.Config) time.Time {
			os.Chmod(c.DataDir, 0o755)
			return time.Now()
		}, Fail, "files", "data directory) is mode 0755"},
		{"site abroad", func(t *testing.T, c *config.Config) time.Time {
			c.Sites[1].Jurisdiction = "US"
			return time.Now()
		}, Fail, "sites.jurisdiction", "site b is in US"},
		{"ops listener on all interfaces", func(t *testing.T, c *config.Config) time.Time {
			c.OpsListen = "0.0.0.0:9090"
			return time.Now()
		}, Warn, "listen.ops", "reachable beyond this host"},
		{"SIP over UDP on the network", func(t *testing.T, c *config.Config) time.Time {
			c.SIPRec.Listen = "10.0.0.5:5060"
			c.SIPRec.Sources[0].Addresses = []string{"10.0.0.20"}
			return time.Now()
		}, Warn, "listen.sip", "10.0.0.20 as SE9999990001-CAP1"},
		{"one site", func(t *testing.T, c *config.Config) time.Time {
			c.Sites = c.Sites[:1]
			return time.Now()
		}, Fail, "sites", "1 site(s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := setup(t, time.Now().AddDate(1, 0, 0))
			now := tc.edit(t, cfg)
			fs := Check(cfg, now)
			if !find(fs, tc.sev, tc.check, tc.isIn) {
				t.Errorf("no %s %s %q in %+v", tc.sev, tc.check, tc.isIn, fs)
			}
		})
	}
}

// S3 sites: HTTPS is OK, plain HTTP on loopback a warning; whether they are
// WORM is judged from the running serve's canary metric.
func TestS3Sites(t *testing.T) {
	cfg := setup(t, time.Now().AddDate(1, 0, 0))
	cfg.Sites[0].Dir, cfg.Sites[0].URL = "", "s3://k:TOPSECRET@s3.dc1.example.se:443/cv-a"
	cfg.Sites[1].Dir, cfg.Sites[1].URL = "", "s3+http://k:TOPSECRET@127.0.0.1:7070/cv-b"
	fs := Check(cfg, time.Now())
	for _, want := range []struct {
		sev         Severity
		check, isIn string
	}{
		{OK, "sites.tls", "site a is S3 over HTTPS (s3://s3.dc1.example.se:443/cv-a)"},
		{Warn, "sites.tls", "site b is S3 over plain HTTP on loopback"},
	} {
		if !find(fs, want.sev, want.check, want.isIn) {
			t.Errorf("no %s %s %q in %+v", want.sev, want.check, want.isIn, fs)
		}
	}
	for _, f := range fs {
		if strings.Contains(f.Detail, "TOPSECRET") {
			t.Errorf("a finding shows the secret: %+v", f)
		}
		if f.Check == "sites.worm" || f.Check == "sites.separation" {
			t.Errorf("a directory finding for S3 sites: %+v", f)
		}
	}
	got := RunningWORM(cfg, map[string]float64{"a": 1, "b": 0})
	if len(got) != 2 || got[0].Severity != OK || got[1].Severity != Fail {
		t.Fatalf("RunningWORM = %+v", got)
	}
	if got := RunningWORM(cfg, map[string]float64{"a": 1}); got[1].Severity != Fail || !strings.Contains(got[1].Detail, "no WORM check") {
		t.Fatalf("RunningWORM without b = %+v", got)
	}
}

// An HSM token unlocking the keyring is the protection the posture wants;
// its PIN file must be the owner's alone.
func TestPKCS11Protection(t *testing.T) {
	cfg := setup(t, time.Now().AddDate(1, 0, 0))
	pin := filepath.Join(t.TempDir(), "hsm-pin")
	if err := os.WriteFile(pin, []byte("1234\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.KEKFile = ""
	cfg.PKCS11 = &config.PKCS11{Module: "/usr/lib/softhsm/libsofthsm2.so", Token: "cv", PINFile: pin, KeyLabel: config.DefaultKEKLabel}
	fs := Check(cfg, time.Now())
	if !find(fs, OK, "keys.protection", `non-extractable key (callvault-kek) in the HSM token "cv"`) {
		t.Errorf("no OK keys.protection for a token: %+v", fs)
	}
	if !find(fs, Fail, "files", "(HSM user PIN) is mode 0644") {
		t.Errorf("a PIN file readable by others is not a failure: %+v", fs)
	}
}

// PostgreSQL beyond this host needs verified TLS; the URL is shown without
// its password.
func TestDatabase(t *testing.T) {
	for _, tc := range []struct {
		url  string
		sev  Severity
		text string
	}{
		{"postgres://cv:TOPSECRET@db.dc1.example.se:5432/callvault?sslmode=verify-full", OK, "verified"},
		{"postgres://cv:TOPSECRET@db.dc1.example.se:5432/callvault?sslmode=require", Fail, "without sslmode=verify-full"},
		{"postgres://cv:TOPSECRET@db.dc1.example.se:5432/callvault", Fail, "without sslmode=verify-full"},
		{"postgres://cv:TOPSECRET@127.0.0.1:5432/callvault?sslmode=disable", Warn, "on loopback"},
	} {
		cfg := setup(t, time.Now().AddDate(1, 0, 0))
		cfg.Database = tc.url
		fs := Check(cfg, time.Now())
		if !find(fs, tc.sev, "database", tc.text) {
			t.Errorf("%s: no %s database %q in %+v", tc.url, tc.sev, tc.text, fs)
		}
		for _, f := range fs {
			if strings.Contains(f.Detail, "TOPSECRET") {
				t.Errorf("a finding shows the password: %+v", f)
			}
			if strings.Contains(f.Detail, "catalog.db") {
				t.Errorf("a SQLite finding with PostgreSQL: %+v", f)
			}
		}
	}
}
