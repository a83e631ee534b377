package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDoctor: doctor on the dev setup, with serve running, reports the
// known weak points as warnings and no failure; a keyring made readable
// by others is a failure and a non-zero exit.
func TestDoctor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"), filepath.Join(dir, "serve.log"))
	doctor := func() (string, error) {
		out, err := exec.Command(binPath, "doctor", "--data", srv.dataDir, "--ops-listen", srv.opsAddr).Output()
		return string(out), err
	}
	out, err := doctor()
	if err != nil {
		t.Fatalf("doctor on the dev setup: %v\n%s", err, out)
	}
	siteLine := "WARN  sites.worm         site a is a directory"
	dbLine := "catalog.db (catalog) mode 0600"
	keysLine := "WARN  keys.protection    the keyring is unlocked by a key file"
	if e2eStack == "scaleout" {
		siteLine = "OK    sites.worm         site a: serve's canary found Object Lock enforced"
		keysLine = "OK    keys.protection    the keyring is unlocked by a non-extractable key (callvault-kek) in the HSM token"
		dbLine = "WARN  database           PostgreSQL on loopback without verified TLS"
	}
	for _, want := range []string{
		"OK    serve              http://" + srv.opsAddr + "/healthz answers ok",
		siteLine,
		keysLine,
		"SIP over UDP/TCP without TLS, taken only from allow-listed addresses: 127.0.0.1, ::1 as SE9999990001-CAP1",
		dbLine,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FAIL") {
		t.Errorf("failures on the dev setup:\n%s", out)
	}
	keyring := filepath.Join(srv.dataDir, "keys", "keyring.age")
	if err := os.Chmod(keyring, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = doctor()
	if err == nil || !strings.Contains(out, "FAIL  files              "+keyring+" (keyring) is mode 0644; want at most 0600") {
		t.Errorf("a keyring readable by others: err %v\n%s", err, out)
	}
}
