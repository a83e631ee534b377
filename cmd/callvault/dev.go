package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"callvault/internal/access"
	"callvault/internal/archive"
	"callvault/internal/audio"
	"callvault/internal/config"
	"callvault/internal/devpki"
	"callvault/internal/hsm"
	"callvault/internal/keys"
	"callvault/internal/recording"
)

// The dev setup's organisations. The HSA-IDs use the made-up organisation
// numbers 9999990001 and 9999990002 so they can never be mistaken for real ones.
const (
	devProvider      = "SE9999990001-VG01"
	devUnitA         = "SE9999990001-VE0A"
	devUnitB         = "SE9999990001-VE0B"
	devProviderOther = "SE9999990002-VG02"
	devUnitOther     = "SE9999990002-VE0C"
	// devP12Password protects the browser bundles NAME.p12.
	devP12Password = "callvault"
)

// devIdentity is one certificate of the dev setup and its directory entry.
type devIdentity struct {
	file, name, hsaID, provider, unit string
	role                              access.Role
}

var devIdentities = []devIdentity{
	{"capture", "Capture system (dev)", "SE9999990001-CAP1", devProvider, devUnitA, access.RoleCapture},
	{"nurse", "Nurse, unit A (dev)", "SE9999990001-N0A1", devProvider, devUnitA, access.RoleClinician},
	{"nurse-b", "Nurse, unit B (dev)", "SE9999990001-N0B1", devProvider, devUnitB, access.RoleClinician},
	{"nurse-other", "Nurse, other provider (dev)", "SE9999990002-N0C1", devProviderOther, devUnitOther, access.RoleClinician},
	{"auditor", "Log reviewer (dev)", "SE9999990001-AUD1", devProvider, devUnitA, access.RoleAuditor},
	{"admin", "Administrator (dev)", "SE9999990001-ADM1", devProvider, devUnitA, access.RoleAdmin},
	{"witness", "Log witness (dev)", "SE9999990001-WIT1", devProvider, devUnitA, access.RoleWitness},
	{"records", "Records officer (dev)", "SE9999990001-REC1", devProvider, devUnitA, access.RoleRecords},
	{"records-2", "Records officer, second (dev)", "SE9999990001-REC2", devProvider, devUnitA, access.RoleRecords},
}

var devUnits = []access.Unit{
	{HSAID: devUnitA, CareProvider: devProvider, Name: "Sjukvårdsrådgivning A (dev)"},
	{HSAID: devUnitB, CareProvider: devProvider, Name: "Sjukvårdsrådgivning B (dev)"},
	{HSAID: devUnitOther, CareProvider: devProviderOther, Name: "Annan vårdgivare (dev)"},
}

// Synthetic patients of the demo data: Skatteverket's published test
// personnummer, never real people.
var devPatients = []string{"191212121212", "198001019804"}

// devSetup is the result of preparing a dev data directory.
type devSetup struct {
	cfg       *config.Config
	firstRun  bool
	sampleMD  string
	samplePNR string
}

// prepareDev creates, on the first run, the dev PKI, KEK, keyring,
// directory entries and sample metadata in cfg.DataDir; later runs reuse them.
func prepareDev(ctx context.Context, cfg *config.Config) (*devSetup, error) {
	devDir := cfg.DevDir()
	if err := os.MkdirAll(devDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Keyring), 0o700); err != nil {
		return nil, err
	}
	// Dev S3 sites get their buckets made here, with Object Lock where
	// the store supports it; production buckets are the operator's.
	for _, sc := range cfg.Sites {
		if sc.URL == "" {
			continue
		}
		st, err := openS3Site(sc)
		if err != nil {
			return nil, err
		}
		// A store that cannot be reached now is not fatal here: serve
		// starts degraded and logs the site's error, as for a directory.
		_, _ = st.EnsureBucket(ctx, true)
	}
	s := &devSetup{cfg: cfg, sampleMD: filepath.Join(devDir, "sample-metadata.json"), samplePNR: devPatients[0]}
	if _, err := os.Stat(filepath.Join(devDir, "ca.pem")); errors.Is(err, os.ErrNotExist) {
		s.firstRun = true
		if err := writeDevPKI(devDir); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	} else {
		ca, err := loadDevCA(devDir)
		if err != nil {
			return nil, fmt.Errorf("dev CA: %w", err)
		}
		if err := issueDevClients(devDir, ca, time.Now()); err != nil {
			return nil, err
		}
	}
	if cfg.PKCS11 != nil {
		if err := devHSMKeyring(ctx, cfg); err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(cfg.Keyring); errors.Is(err, os.ErrNotExist) {
		if err := writeDevKeys(cfg); err != nil {
			return nil, err
		}
	}
	if err := registerDev(ctx, cfg); err != nil {
		return nil, err
	}
	if err := writeSampleMetadata(s.sampleMD); err != nil {
		return nil, err
	}
	return s, nil
}

func writeDevPKI(devDir string) error {
	now := time.Now()
	ca, err := devpki.NewCA("callvault dev CA", now)
	if err != nil {
		return err
	}
	write := func(name string, data []byte) error {
		return keys.WriteFileAtomic(filepath.Join(devDir, name), data)
	}
	if err := write("ca-key.pem", ca.KeyPEM()); err != nil {
		return err
	}
	certPEM, keyPEM, err := ca.IssueServer([]string{"localhost", "127.0.0.1", "::1"}, now.Add(-time.Hour), now.AddDate(2, 0, 0))
	if err != nil {
		return err
	}
	if err := write("server.pem", certPEM); err != nil {
		return err
	}
	if err := write("server-key.pem", keyPEM); err != nil {
		return err
	}
	if err := issueDevClients(devDir, ca, now); err != nil {
		return err
	}
	// ca.pem last: its presence marks a complete dev PKI.
	return write("ca.pem", ca.CertPEM())
}

// issueDevClients issues the certificate (PEM and .p12) of every dev
// identity that has none in devDir yet: all of them on the first run, and
// on later runs those added to the dev setup since the directory was made.
func issueDevClients(devDir string, ca *devpki.CA, now time.Time) error {
	for _, id := range devIdentities {
		if _, err := os.Stat(filepath.Join(devDir, id.file+".p12")); err == nil {
			continue
		}
		certPEM, keyPEM, err := ca.IssueClient(id.name, id.hsaID, now.Add(-time.Hour), now.AddDate(2, 0, 0))
		if err != nil {
			return err
		}
		p12, err := devpki.PKCS12(certPEM, keyPEM, ca.CertPEM(), devP12Password)
		if err != nil {
			return err
		}
		// The .p12 last: its presence marks the identity complete.
		for _, f := range []struct {
			name string
			data []byte
		}{{id.file + ".pem", certPEM}, {id.file + "-key.pem", keyPEM}, {id.file + ".p12", p12}} {
			if err := keys.WriteFileAtomic(filepath.Join(devDir, f.name), f.data); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadDevCA reads the dev CA of an existing dev directory.
func loadDevCA(devDir string) (*devpki.CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(devDir, "ca.pem"))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(devDir, "ca-key.pem"))
	if err != nil {
		return nil, err
	}
	return devpki.LoadCA(certPEM, keyPEM)
}

func writeDevKeys(cfg *config.Config) error {
	kek, err := keys.NewKEK()
	if err != nil {
		return err
	}
	if err := keys.WriteFileAtomic(cfg.KEKFile, []byte("# callvault dev key-encryption key: unlocks "+filepath.Base(cfg.Keyring)+"\n"+kek.String()+"\n")); err != nil {
		return err
	}
	kr, err := keys.Generate(time.Now())
	if err != nil {
		return err
	}
	data, err := kr.Marshal(kek.Recipient())
	if err != nil {
		return err
	}
	if err := keys.WriteFileAtomic(cfg.Keyring, data); err != nil {
		return err
	}
	return writePublicKeys(cfg, kr)
}

// devHSMKeyring puts the dev keyring under a KEK in the HSM token of
// cfg.PKCS11: the KEK is generated on the token if missing; a new keyring
// is encrypted to it; a keyring that dev/kek.txt still unlocks is
// re-encrypted to it and kek.txt removed, so that only the token unlocks
// the keyring from then on.
func devHSMKeyring(ctx context.Context, cfg *config.Config) error {
	p := cfg.PKCS11
	pin, err := p.PINValue()
	if err != nil {
		return err
	}
	tok, err := hsm.OpenShared(p.Module, p.Token, pin)
	if err != nil {
		return err
	}
	if _, err := tok.EnsureKEK(ctx, p.KeyLabel); err != nil {
		return err
	}
	kek, err := tok.KEK(p.KeyLabel)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(cfg.Keyring)
	if errors.Is(err, os.ErrNotExist) {
		kr, err := keys.Generate(time.Now())
		if err != nil {
			return err
		}
		return saveKeyring(cfg, kr)
	}
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	if _, err := keys.Unmarshal(data, kek); err == nil {
		return nil // already the token's
	}
	kekFile := filepath.Join(cfg.DevDir(), "kek.txt")
	ids, err := keys.LoadKEKFile(kekFile)
	if err != nil {
		return fmt.Errorf("the keyring is neither the token's nor unlocked by %s: %w", kekFile, err)
	}
	kr, err := keys.Unmarshal(data, ids...)
	if err != nil {
		return fmt.Errorf("the keyring is neither the token's nor unlocked by %s: %w", kekFile, err)
	}
	if err := saveKeyring(cfg, kr); err != nil {
		return err
	}
	return os.Remove(kekFile)
}

func registerDev(ctx context.Context, cfg *config.Config) error {
	dir, err := access.OpenDirectory(ctx, cfg.DirectoryPath())
	if err != nil {
		return err
	}
	defer dir.Close()
	for _, u := range devUnits {
		if err := dir.AddUnit(ctx, u); err != nil && !errors.Is(err, access.ErrExists) {
			return err
		}
	}
	for _, id := range devIdentities {
		err := dir.Add(ctx, access.Entry{HSAID: id.hsaID, DisplayName: id.name, CareProvider: id.provider, CareUnit: id.unit, Roles: []access.Role{id.role}})
		if err != nil && !errors.Is(err, access.ErrExists) {
			return err
		}
	}
	for aor, id := range devAORs {
		if err := dir.AddAOR(ctx, aor, id); err != nil && !errors.Is(err, access.ErrExists) {
			return err
		}
	}
	return nil
}

// devAORs are the nurses' SIP addresses of record in the dev directory,
// so a recorded call's agent is known (docs/siprec.md).
var devAORs = map[string]string{
	"sip:sjukskoterska.a@1177.example.se": "SE9999990001-N0A1",
	"sip:sjukskoterska.b@1177.example.se": "SE9999990001-N0B1",
}

func sampleMetadata(callID, patient string, unit string, staff string, start time.Time, d time.Duration) recording.Metadata {
	return recording.Metadata{
		CallID: callID, CareProvider: devProvider, CareUnit: unit, Patient: patient,
		CallerNumber: "+46701740605", // PTS number range reserved for fiction
		Staff:        []string{staff}, StartedAt: start.UTC().Truncate(time.Second), EndedAt: start.Add(d).UTC().Truncate(time.Second),
		Direction: recording.Inbound, PrivacyNotice: "ivr-2026-01",
	}
}

func writeSampleMetadata(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	md := sampleMetadata("dev-sample-call-1", devPatients[0], devUnitA, "SE9999990001-N0A1", time.Now().Add(-10*time.Minute), 20*time.Second)
	b, err := json.MarshalIndent(md, "", "  ")
	if err != nil {
		return err
	}
	return keys.WriteFileAtomic(path, append(b, '\n'))
}

// demoWAV returns a synthetic two-channel G.711 μ-law call: the caller's
// channel a 440 Hz tone, the nurse's 660 Hz.
func demoWAV(seconds int) []byte {
	n := 8000 * seconds
	var buf bytes.Buffer
	if err := audio.WriteWAV(&buf, audio.MuLaw, 8000, [][]int16{audio.Tone(440, 8000, n, 8000), audio.Tone(660, 8000, n, 8000)}); err != nil {
		panic(err) // writing to a bytes.Buffer cannot fail
	}
	return buf.Bytes()
}

// seed ingests a few demo recordings through the archive, as the capture
// system, on the first run only.
func (s *devSetup) seed(ctx context.Context, st *stack) error {
	n, err := st.cat.Count(ctx)
	if err != nil || n > 0 {
		return err
	}
	capture := &access.Principal{HSAID: devIdentities[0].hsaID, CareProvider: devProvider, CareUnit: devUnitA, Roles: []access.Role{access.RoleCapture}}
	c := archive.Caller{Principal: capture, ClientAddr: "dev-seed", RequestID: "dev-seed"}
	base := time.Now().Add(-48 * time.Hour)
	demos := []recording.Metadata{
		sampleMetadata("dev-demo-1", devPatients[0], devUnitA, "SE9999990001-N0A1", base, 20*time.Second),
		sampleMetadata("dev-demo-2", devPatients[0], devUnitB, "SE9999990001-N0B1", base.Add(2*time.Hour), 20*time.Second),
		sampleMetadata("dev-demo-3", devPatients[1], devUnitA, "SE9999990001-N0A1", base.Add(3*time.Hour), 20*time.Second),
	}
	for _, md := range demos {
		if _, err := st.arc.Ingest(ctx, c, md, bytes.NewReader(demoWAV(20))); err != nil {
			return err
		}
	}
	return nil
}

func (s *devSetup) printWelcome(w io.Writer, addr, opsAddr string) {
	d := s.cfg.DevDir()
	curl := func(who string) string {
		return fmt.Sprintf("curl --cacert %s --cert %s --key %s", filepath.Join(d, "ca.pem"), filepath.Join(d, who+".pem"), filepath.Join(d, who+"-key.pem"))
	}
	exe := "go run ./cmd/callvault"
	fmt.Fprintf(w, `
callvault dev setup in %s (development only: throw-away keys and certificates)

Client certificates (and .p12 bundles for browsers, password %q) are in %s.

Staff web pages: https://%s/ (import nurse.p12, or auditor, records, admin, nurse-b, into a browser)

Search a (synthetic, test) patient's calls as the unit-A nurse:
  %s -H 'X-Purpose: care' 'https://%s/v1/recordings?patient=%s'

Play the first hit (replace ID):
  %s -H 'X-Purpose: care' -o call.wav https://%s/v1/recordings/ID/audio

Upload a call as the capture system (the audio is generated, nothing is downloaded):
  %s tone | %s -F 'metadata=<%s;type=application/json' -F 'audio=@-;type=audio/wav' https://%s/v1/recordings

Who accessed that patient's calls (patient log extract, as the auditor; HTML, Swedish):
  %s -o extract.html 'https://%s/v1/audit/extract?patient=%s&format=html'

Verify the audit log (its checkpoints also go to %s):
  %s audit --data %s verify

Legal hold on a recording as a records officer (replace ID; deletions need a second officer, records-2):
  %s -H 'Content-Type: application/json' -d '{"reference": "JUR 2026/1"}' https://%s/v1/recordings/ID/holds

Read and verify every stored copy on both sites, repairing what is damaged:
  %s scrub --data %s

Status and metrics:  %s status --data %s   ·   curl http://%s/metrics
`, s.cfg.DataDir, devP12Password, d, addr,
		curl("nurse"), addr, s.samplePNR,
		curl("nurse"), addr,
		exe, curl("capture"), s.sampleMD, addr,
		curl("auditor"), addr, s.samplePNR,
		filepath.Join(d, "witness"),
		exe, s.cfg.DataDir,
		curl("records"), addr,
		exe, s.cfg.DataDir,
		exe, s.cfg.DataDir, opsAddr)
}
