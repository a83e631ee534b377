package config

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// complete returns a config document with every field set, paths mixed
// relative and absolute.
func complete() map[string]any {
	return map[string]any{
		"data_dir":   "../data",
		"listen":     "10.0.0.5:8443",
		"ops_listen": "127.0.0.1:9191",
		"tls": map[string]any{
			"cert":      "tls/server.pem",
			"key":       "tls/server-key.pem",
			"client_ca": "/etc/callvault/siths-ca.pem",
		},
		"keyring":  "keys/keyring.age",
		"kek_file": "secret/kek.txt",
		"sites": []any{
			map[string]any{"name": "sthlm", "dir": "/srv/site-sthlm", "jurisdiction": "SE"},
			map[string]any{"name": "gbg", "dir": "sites/gbg", "jurisdiction": "SE"},
		},
		"allowed_jurisdictions": []any{"SE"},
		"max_upload_bytes":      1 << 30,
		"repair_interval":       "45s",
	}
}

// minimal returns a config document with only what Load requires.
func minimal() map[string]any {
	return map[string]any{
		"data_dir": "/var/lib/callvault",
		"tls": map[string]any{
			"cert":      "/etc/callvault/server.pem",
			"key":       "/etc/callvault/server-key.pem",
			"client_ca": "/etc/callvault/siths-ca.pem",
		},
		"passphrase_file": "/etc/callvault/passphrase",
		"sites": []any{
			map[string]any{"name": "a", "dir": "/srv/a", "jurisdiction": "SE"},
			map[string]any{"name": "b", "dir": "/srv/b", "jurisdiction": "SE"},
		},
	}
}

func tlsOf(m map[string]any) map[string]any { return m["tls"].(map[string]any) }

func site(m map[string]any, i int) map[string]any { return m["sites"].([]any)[i].(map[string]any) }

// writeConfig writes doc to dir/etc/callvault.json and returns the path
// and dir/etc.
func writeConfig(t *testing.T, dir string, doc any) (path, etc string) {
	t.Helper()
	etc = filepath.Join(dir, "etc")
	if err := os.MkdirAll(etc, 0o700); err != nil {
		t.Fatal(err)
	}
	var b []byte
	switch d := doc.(type) {
	case string:
		b = []byte(d)
	default:
		var err error
		if b, err = json.MarshalIndent(d, "", "  "); err != nil {
			t.Fatal(err)
		}
	}
	path = filepath.Join(etc, "callvault.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, etc
}

func TestDev(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	c, err := Dev("data")
	if err != nil {
		t.Fatal(err)
	}
	// The real path of the temp dir (it may sit behind a symlink) is what
	// Abs of a relative name resolves against.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(wd, "data")
	dev := filepath.Join(data, "dev")
	want := &Config{
		DataDir:   data,
		Listen:    "127.0.0.1:8443",
		OpsListen: "127.0.0.1:9090",
		TLS: TLS{
			Cert:     filepath.Join(dev, "server.pem"),
			Key:      filepath.Join(dev, "server-key.pem"),
			ClientCA: filepath.Join(dev, "ca.pem"),
		},
		Keyring: filepath.Join(data, "keys", "keyring.age"),
		KEKFile: filepath.Join(dev, "kek.txt"),
		Sites: []Site{
			{Name: "a", Dir: filepath.Join(data, "site-a"), Jurisdiction: "SE"},
			{Name: "b", Dir: filepath.Join(data, "site-b"), Jurisdiction: "SE"},
		},
		AllowedJurisdictions: []string{"SE"},
		RepairInterval:       Duration(30 * time.Second),
		Audit:                devAudit(data),
		Retention:            defaultRetention,
		ScrubInterval:        Duration(24 * time.Hour),
		OrphanGrace:          Duration(24 * time.Hour),
		SIPRec: SIPRec{Listen: "127.0.0.1:5060", ListenTLS: "127.0.0.1:5061", Sources: []SIPSource{{
			HSAID: "SE9999990001-CAP1", Addresses: []string{"127.0.0.1", "::1"}, CareUnit: "SE9999990001-VE0A"}}},
		Dev: true,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Dev(%q) =\n%+v\nwant\n%+v", "data", c, want)
	}
	for _, p := range []struct{ name, got, want string }{
		{"CatalogPath", c.CatalogPath(), filepath.Join(data, "catalog.db")},
		{"DirectoryPath", c.DirectoryPath(), filepath.Join(data, "directory.db")},
		{"PublicKeyPath", c.PublicKeyPath(), filepath.Join(data, "keys", "archive.pub")},
		{"DevDir", c.DevDir(), dev},
	} {
		if p.got != p.want {
			t.Errorf("%s = %q, want %q", p.name, p.got, p.want)
		}
	}
	// The dev config passes the production check.
	if err := c.Check(); err != nil {
		t.Errorf("Check of the dev config: %v", err)
	}
}

func TestLoadComplete(t *testing.T) {
	dir := t.TempDir()
	path, etc := writeConfig(t, dir, complete())
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		DataDir:   filepath.Join(dir, "data"), // "../data" from dir/etc
		Listen:    "10.0.0.5:8443",
		OpsListen: "127.0.0.1:9191",
		TLS: TLS{
			Cert:     filepath.Join(etc, "tls", "server.pem"),
			Key:      filepath.Join(etc, "tls", "server-key.pem"),
			ClientCA: "/etc/callvault/siths-ca.pem",
		},
		Keyring: filepath.Join(etc, "keys", "keyring.age"),
		KEKFile: filepath.Join(etc, "secret", "kek.txt"),
		Sites: []Site{
			{Name: "sthlm", Dir: "/srv/site-sthlm", Jurisdiction: "SE"},
			{Name: "gbg", Dir: filepath.Join(etc, "sites", "gbg"), Jurisdiction: "SE"},
		},
		AllowedJurisdictions: []string{"SE"},
		MaxUploadBytes:       1 << 30,
		RepairInterval:       Duration(45 * time.Second),
		Audit:                defaultAudit(),
		Retention:            defaultRetention,
		ScrubInterval:        Duration(24 * time.Hour),
		OrphanGrace:          Duration(24 * time.Hour),
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Load =\n%+v\nwant\n%+v", c, want)
	}
	if got, want := c.PublicKeyPath(), filepath.Join(etc, "keys", "archive.pub"); got != want {
		t.Errorf("PublicKeyPath = %q, want %q", got, want)
	}
}

func TestLoadMinimalDefaults(t *testing.T) {
	path, _ := writeConfig(t, t.TempDir(), minimal())
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		DataDir:   "/var/lib/callvault",
		Listen:    "127.0.0.1:8443",
		OpsListen: "127.0.0.1:9090",
		TLS: TLS{
			Cert:     "/etc/callvault/server.pem",
			Key:      "/etc/callvault/server-key.pem",
			ClientCA: "/etc/callvault/siths-ca.pem",
		},
		Keyring:        "/var/lib/callvault/keys/keyring.age",
		PassphraseFile: "/etc/callvault/passphrase",
		Sites: []Site{
			{Name: "a", Dir: "/srv/a", Jurisdiction: "SE"},
			{Name: "b", Dir: "/srv/b", Jurisdiction: "SE"},
		},
		AllowedJurisdictions: []string{"SE"},
		RepairInterval:       Duration(30 * time.Second),
		Audit:                defaultAudit(),
		Retention:            defaultRetention,
		ScrubInterval:        Duration(24 * time.Hour),
		OrphanGrace:          Duration(24 * time.Hour),
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Load =\n%+v\nwant\n%+v", c, want)
	}
}

func TestLoadRefusesIncomplete(t *testing.T) {
	const (
		msgTLS      = "tls.cert and tls.key are required: the API is served over TLS only"
		msgClientCA = "tls.client_ca is required: every client must present a certificate from these CAs"
		msgUnlock   = "exactly one of kek_file, passphrase_file and pkcs11 is required to unlock the keyring"
		msgTwoSites = "exactly two sites are required"
		msgNames    = "the two sites need different names"
		msgSite     = "each site needs a name and either a dir or an S3 url"
	)
	for _, c := range []struct {
		name   string
		mutate func(m map[string]any)
		want   string // the whole error
	}{
		{"no data_dir", func(m map[string]any) { delete(m, "data_dir") }, "config: data_dir is required"},
		{"no tls.cert", func(m map[string]any) { delete(tlsOf(m), "cert") }, "config: " + msgTLS},
		{"no tls.key", func(m map[string]any) { delete(tlsOf(m), "key") }, "config: " + msgTLS},
		{"no tls at all", func(m map[string]any) { delete(m, "tls") }, "config: " + msgTLS + "\n" + msgClientCA},
		{"no client_ca", func(m map[string]any) { delete(tlsOf(m), "client_ca") }, "config: " + msgClientCA},
		{"neither kek_file nor passphrase_file", func(m map[string]any) { delete(m, "passphrase_file") }, "config: " + msgUnlock},
		{"both kek_file and passphrase_file", func(m map[string]any) { m["kek_file"] = "/etc/callvault/kek.txt" }, "config: " + msgUnlock},
		{"no sites", func(m map[string]any) { delete(m, "sites") }, "config: " + msgTwoSites},
		{"one site", func(m map[string]any) { m["sites"] = m["sites"].([]any)[:1] }, "config: " + msgTwoSites},
		{"three sites", func(m map[string]any) {
			m["sites"] = append(m["sites"].([]any), map[string]any{"name": "c", "dir": "/srv/c", "jurisdiction": "SE"})
		}, "config: " + msgTwoSites},
		{"two sites with the same name", func(m map[string]any) { site(m, 1)["name"] = "a" }, "config: " + msgNames},
		{"site without dir", func(m map[string]any) { delete(site(m, 1), "dir") }, "config: " + msgSite},
		{"site without name", func(m map[string]any) { delete(site(m, 0), "name") }, "config: " + msgSite},
		{"site in US, default allowed", func(m map[string]any) { site(m, 1)["jurisdiction"] = "US" },
			`config: site "b" has jurisdiction "US", outside the allowed [SE]`},
		{"site without jurisdiction", func(m map[string]any) { delete(site(m, 0), "jurisdiction") },
			`config: site "a" has jurisdiction "", outside the allowed [SE]`},
		{"site in SE, only NO allowed", func(m map[string]any) { m["allowed_jurisdictions"] = []any{"NO"} },
			"config: site \"a\" has jurisdiction \"SE\", outside the allowed [NO]\n" +
				`site "b" has jurisdiction "SE", outside the allowed [NO]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := minimal()
			c.mutate(m)
			path, _ := writeConfig(t, t.TempDir(), m)
			cfg, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", cfg)
			}
			if err.Error() != c.want {
				t.Fatalf("error =\n%s\nwant\n%s", err, c.want)
			}
		})
	}
}

func TestLoadNamesEverythingMissing(t *testing.T) {
	path, _ := writeConfig(t, t.TempDir(), "{}")
	_, err := Load(path)
	want := "config: data_dir is required\n" +
		"tls.cert and tls.key are required: the API is served over TLS only\n" +
		"tls.client_ca is required: every client must present a certificate from these CAs\n" +
		"exactly one of kek_file, passphrase_file and pkcs11 is required to unlock the keyring\n" +
		"exactly two sites are required"
	if err == nil || err.Error() != want {
		t.Fatalf("error =\n%v\nwant\n%s", err, want)
	}
}

func TestLoadAllowedJurisdictions(t *testing.T) {
	m := minimal()
	site(m, 1)["jurisdiction"] = "US"
	m["allowed_jurisdictions"] = []any{"SE", "US"}
	path, _ := writeConfig(t, t.TempDir(), m)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"SE", "US"}; !reflect.DeepEqual(c.AllowedJurisdictions, want) {
		t.Errorf("AllowedJurisdictions = %q, want %q", c.AllowedJurisdictions, want)
	}
	if c.Sites[1].Jurisdiction != "US" {
		t.Errorf("site b jurisdiction = %q, want US", c.Sites[1].Jurisdiction)
	}
}

func TestLoadRefusesBadJSON(t *testing.T) {
	for _, c := range []struct {
		name string
		doc  func() any
		want string // the whole error
	}{
		{"unknown top-level field", func() any {
			m := minimal()
			m["tls_cert"] = "/etc/x.pem"
			return m
		}, `config callvault.json: json: unknown field "tls_cert"`},
		{"unknown nested field", func() any {
			m := minimal()
			site(m, 0)["region"] = "eu-north-1"
			return m
		}, `config callvault.json: json: unknown field "region"`},
		{"repair_interval not a duration", func() any {
			m := minimal()
			m["repair_interval"] = "soon"
			return m
		}, `config callvault.json: time: invalid duration "soon"`},
		{"repair_interval a number", func() any {
			m := minimal()
			m["repair_interval"] = 45
			return m
		}, `config callvault.json: duration must be a string such as "30s"`},
		{"not JSON", func() any { return "data_dir = /var/lib/callvault" }, "config callvault.json: invalid character 'd' looking for beginning of value"},
		{"empty file", func() any { return "" }, "config callvault.json: EOF"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path, _ := writeConfig(t, t.TempDir(), c.doc())
			cfg, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", cfg)
			}
			if err.Error() != c.want {
				t.Fatalf("error = %q, want %q", err, c.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.json")
	_, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error = %v, want one wrapping fs.ErrNotExist", err)
	}
	if err == nil || !strings.HasPrefix(err.Error(), "config: ") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("error = %v, want a config: … no such file error", err)
	}
}

func TestRepairIntervalParsed(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"45s", 45 * time.Second},
		{"5m", 5 * time.Minute},
		{"1m30s", 90 * time.Second},
		{"0s", 30 * time.Second}, // zero is "unset": the default
	} {
		m := minimal()
		m["repair_interval"] = c.in
		path, _ := writeConfig(t, t.TempDir(), m)
		cfg, err := Load(path)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if got := time.Duration(cfg.RepairInterval); got != c.want {
			t.Errorf("repair_interval %q = %v, want %v", c.in, got, c.want)
		}
	}
}

// A negative interval would reach time.NewTicker in the repair loop
// (archive.RunRepair), which panics on a non-positive interval and takes
// the server down after it started; Load must refuse it, naming the field.
func TestLoadRefusesNegativeRepairInterval(t *testing.T) {
	m := minimal()
	m["repair_interval"] = "-30s"
	path, _ := writeConfig(t, t.TempDir(), m)
	cfg, err := Load(path)
	if err == nil {
		t.Fatalf("Load accepted repair_interval -30s: RepairInterval = %v", time.Duration(cfg.RepairInterval))
	}
	if !strings.Contains(err.Error(), "repair_interval") {
		t.Errorf("error %q does not name repair_interval", err)
	}
}

func TestDurationJSON(t *testing.T) {
	b, err := json.Marshal(Duration(90 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `"1m30s"` {
		t.Fatalf("Marshal = %s, want %q", b, `"1m30s"`)
	}
	var d Duration
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d != Duration(90*time.Second) {
		t.Fatalf("round trip = %v", time.Duration(d))
	}
}

func devAudit(data string) Audit {
	a := defaultAudit()
	a.WitnessOutboxes = []string{filepath.Join(data, "dev", "witness")}
	return a
}

func defaultAudit() Audit {
	return Audit{CheckpointInterval: Duration(time.Minute), CheckpointEntries: 1000, RetentionYears: 10}
}

func TestLoadAudit(t *testing.T) {
	m := minimal()
	m["audit"] = map[string]any{"checkpoint_interval": "10s", "checkpoint_entries": 50, "retention_years": 12,
		"witness_outboxes": []string{"witness", "https://witness.example/add"}}
	path, dir := writeConfig(t, t.TempDir(), m)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Audit{CheckpointInterval: Duration(10 * time.Second), CheckpointEntries: 50, RetentionYears: 12,
		WitnessOutboxes: []string{filepath.Join(dir, "witness"), "https://witness.example/add"}}
	if !reflect.DeepEqual(cfg.Audit, want) {
		t.Fatalf("Audit = %+v, want %+v", cfg.Audit, want)
	}
	for _, c := range []struct {
		audit map[string]any
		want  string
	}{
		{map[string]any{"retention_years": 4}, "audit.retention_years 4 is below the 5 years"},
		{map[string]any{"checkpoint_entries": -1}, "audit.checkpoint_interval and audit.checkpoint_entries must be positive"},
		{map[string]any{"witness_outboxes": []string{"http://witness.example/add"}}, "a URL must be https://"},
		{map[string]any{"review": map[string]any{"usual_hours": "19:00-07:00"}}, "the start must come before the end"},
		{map[string]any{"review": map[string]any{"usual_hours": "9-17"}}, "want HH:MM-HH:MM"},
		{map[string]any{"review": map[string]any{"usual_days": []string{"mon", "funday"}}}, `"funday" is not one of mon`},
	} {
		m := minimal()
		m["audit"] = c.audit
		path, _ := writeConfig(t, t.TempDir(), m)
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("audit %v: %v, want %q", c.audit, err, c.want)
		}
	}
}

func TestLoadRetention(t *testing.T) {
	path, _ := writeConfig(t, t.TempDir(), minimal())
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Retention{Years: 10, Disposal: "keep", DisposalInterval: Duration(time.Hour)}); cfg.Retention != want {
		t.Fatalf("default Retention = %+v, want %+v", cfg.Retention, want)
	}
	m := minimal()
	m["retention"] = map[string]any{"years": 12, "disposal": "dispose", "disposal_interval": "10m"}
	path, _ = writeConfig(t, t.TempDir(), m)
	if cfg, err = Load(path); err != nil {
		t.Fatal(err)
	}
	if want := (Retention{Years: 12, Disposal: "dispose", DisposalInterval: Duration(10 * time.Minute)}); cfg.Retention != want {
		t.Fatalf("Retention = %+v, want %+v", cfg.Retention, want)
	}
	for _, c := range []struct {
		retention map[string]any
		want      string
	}{
		{map[string]any{"years": 9}, "retention.years 9 is below the 10 years medical records must be kept"},
		{map[string]any{"years": -1}, "retention.years -1 is below the 10 years"},
		{map[string]any{"disposal": "delete"}, `retention.disposal must be "keep" or "dispose"`},
		{map[string]any{"disposal_interval": "-1h"}, "retention.disposal_interval must be positive"},
	} {
		m := minimal()
		m["retention"] = c.retention
		path, _ := writeConfig(t, t.TempDir(), m)
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("retention %v: %v, want %q", c.retention, err, c.want)
		}
	}
}

var defaultRetention = Retention{Years: 10, Disposal: "keep", DisposalInterval: Duration(time.Hour)}

func TestSIPRecCheck(t *testing.T) {
	base := func() *Config {
		c, err := Dev(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := base().Check(); err != nil {
		t.Fatalf("dev SIPREC config: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*SIPRec)
		want string
	}{
		{"ports", func(s *SIPRec) { s.RTPPorts = "30000-29000" }, "siprec.rtp_ports"},
		{"ports text", func(s *SIPRec) { s.RTPPorts = "many" }, "siprec.rtp_ports"},
		{"media timeout", func(s *SIPRec) { s.MediaTimeout = Duration(10 * time.Second) }, "siprec.media_timeout"},
		{"no sources", func(s *SIPRec) { s.Sources = nil }, "siprec.sources"},
		{"source address", func(s *SIPRec) { s.Sources[0].Addresses = []string{"pbx.example.net"} }, "not an IP address"},
		{"source unit", func(s *SIPRec) { s.Sources[0].CareUnit = "" }, "hsa_id and care_unit are required"},
	} {
		c := base()
		tc.edit(&c.SIPRec)
		if err := c.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
	off := base()
	off.SIPRec = SIPRec{}
	if err := off.Check(); err != nil || off.SIPRec.Enabled() {
		t.Errorf("SIPREC off: %v", err)
	}
	lo, hi, err := SIPRec{RTPPorts: "40000 - 40999"}.Ports()
	if err != nil || lo != 40000 || hi != 40999 {
		t.Errorf("ports %d-%d %v", lo, hi, err)
	}
}

// The backends chosen with serve --dev's flags are kept for later commands
// on the same data directory, in a file only the owner can read.
func TestDevBackends(t *testing.T) {
	dir := t.TempDir()
	c, err := Dev(dir)
	if err != nil {
		t.Fatal(err)
	}
	const url = "s3+http://dev:TOPSECRET@127.0.0.1:7070/callvault-a"
	if err := c.SetDevBackends(DevBackends{SiteA: url}); err != nil {
		t.Fatal(err)
	}
	if c.Sites[0].URL != url || c.Sites[0].Dir != "" || c.Sites[1].URL != "" || c.Sites[1].Dir != filepath.Join(dir, "site-b") {
		t.Fatalf("sites after SetDevBackends: %+v", c.Sites)
	}
	if err := c.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	st, err := os.Stat(c.DevBackendsPath())
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backends file: %v, %v; want mode 0600", st, err)
	}
	// A later command sees the same sites.
	again, err := Dev(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Sites, c.Sites) {
		t.Fatalf("Dev after SetDevBackends: %+v, want %+v", again.Sites, c.Sites)
	}
	// A bad URL is refused, changes nothing and does not echo the secret.
	for _, bad := range []string{"s3+http://dev:TOPSECRET@10.0.0.9:7070/b", "s3://dev@host/b"} {
		err := again.SetDevBackends(DevBackends{SiteB: bad})
		if err == nil || strings.Contains(err.Error(), "TOPSECRET") {
			t.Fatalf("SetDevBackends(%q) = %v", bad, err)
		}
	}
	if third, _ := Dev(dir); !reflect.DeepEqual(third.Sites, c.Sites) {
		t.Fatalf("a refused change was kept: %+v", third.Sites)
	}
	// A site with both a dir and a URL, or a broken URL, fails Check.
	again.Sites[1].URL = url
	if err := again.Check(); err == nil || !strings.Contains(err.Error(), "either a dir or an S3 url") {
		t.Fatalf("Check with dir and url: %v", err)
	}
	again.Sites[1].Dir = ""
	again.Sites[1].URL = "s3://k:TOPSECRET@host/"
	if err := again.Check(); err == nil || strings.Contains(err.Error(), "TOPSECRET") {
		t.Fatalf("Check with a bucketless url: %v", err)
	}
}

// --database is a postgres:// URL kept with the other dev backends; the
// SQLite paths then all name it.
func TestDevDatabase(t *testing.T) {
	dir := t.TempDir()
	c, err := Dev(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.OnPostgres() || c.CatalogPath() != filepath.Join(dir, "catalog.db") {
		t.Fatalf("default: OnPostgres %v, catalog %s", c.OnPostgres(), c.CatalogPath())
	}
	if err := c.SetDevBackends(DevBackends{Database: "/tmp/other.db"}); err == nil || strings.Contains(err.Error(), "other.db") {
		t.Fatalf("a path as --database: %v", err)
	}
	const dsn = "postgres://cv:TOPSECRET@127.0.0.1:5432/cv?sslmode=disable"
	if err := c.SetDevBackends(DevBackends{Database: dsn}); err != nil {
		t.Fatal(err)
	}
	again, err := Dev(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !again.OnPostgres() || again.CatalogPath() != dsn || again.DirectoryPath() != dsn {
		t.Fatalf("after --database: catalog %q directory %q", again.CatalogPath(), again.DirectoryPath())
	}
	if err := again.Check(); err != nil {
		t.Fatal(err)
	}
	again.Database = "mysql://x"
	if err := again.Check(); err == nil || !strings.Contains(err.Error(), "database must be a postgres:// URL") {
		t.Fatalf("Check with a non-PostgreSQL URL: %v", err)
	}
}
