package keys

import (
	"errors"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"
)

// A new keyring has an origin and one signing key; rotation adds a key
// both sign with; the keys survive Marshal/Unmarshal; retiring leaves the
// newer key and refuses to leave none.
func TestAuditKeys(t *testing.T) {
	k, err := Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	origin := k.AuditOrigin()
	if !strings.HasPrefix(origin, "callvault.audit/") || len(origin) != len("callvault.audit/")+16 {
		t.Fatalf("origin %q", origin)
	}
	if changed, err := k.EnsureAuditKeys(); err != nil || changed {
		t.Fatalf("EnsureAuditKeys on a new keyring: %v %v", changed, err)
	}
	newKey, err := k.RotateAuditKey()
	if err != nil {
		t.Fatal(err)
	}
	kek, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	data, err := k.Marshal(kek.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	k2, err := Unmarshal(data, kek)
	if err != nil {
		t.Fatal(err)
	}
	vkeys, err := k2.AuditVerifierKeys()
	if err != nil || len(vkeys) != 2 || vkeys[1] != newKey || k2.AuditOrigin() != origin {
		t.Fatalf("after a round trip: %v %v, origin %q", vkeys, err, k2.AuditOrigin())
	}
	signers, err := k2.AuditSigners()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: origin + "\n1\nAAAA\n"}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	// Each verifier key alone opens the note: a verifier knowing either
	// key follows a rollover.
	for _, vk := range vkeys {
		v, err := note.NewVerifier(vk)
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Open(msg, note.VerifierList(v))
		if err != nil || len(n.Sigs) != 1 || !strings.HasPrefix(vk, n.Sigs[0].Name+"+") {
			t.Fatalf("open with %s: %v", vk, err)
		}
	}
	oldID := strings.Split(vkeys[0], "+")[1]
	if err := k2.RetireAuditKey("00000000"); err == nil {
		t.Fatal("retired a key that does not exist")
	}
	if err := k2.RetireAuditKey(strings.ToUpper(oldID)); err != nil {
		t.Fatal(err)
	}
	if v, _ := k2.AuditVerifierKeys(); len(v) != 1 || v[0] != newKey {
		t.Fatalf("after retiring the old key: %v", v)
	}
	if r := k2.AuditRetiredKeys(); len(r) != 1 || r[0] != vkeys[0] {
		t.Fatalf("retired keys %v, want the old verifier key", r)
	}
	if err := k2.RetireAuditKey(strings.Split(newKey, "+")[1]); !errors.Is(err, ErrLastAuditKey) {
		t.Fatalf("retiring the last key: %v", err)
	}
	if s := k2.String(); strings.Contains(s, "PRIVATE") || !strings.Contains(s, "1 audit keys") {
		t.Fatalf("String() = %q", s)
	}
}

// A keyring written before audit keys existed gets them from
// EnsureAuditKeys.
func TestEnsureAuditKeysOnOldKeyring(t *testing.T) {
	k, err := Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	k.auditOrigin, k.auditSigners = "", nil
	changed, err := k.EnsureAuditKeys()
	if err != nil || !changed || k.AuditOrigin() == "" {
		t.Fatalf("EnsureAuditKeys: %v %v %q", changed, err, k.AuditOrigin())
	}
	if v, err := k.AuditVerifierKeys(); err != nil || len(v) != 1 {
		t.Fatalf("verifier keys: %v %v", v, err)
	}
}
