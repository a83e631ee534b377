package keys

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKeyringRoundTripAndLock(t *testing.T) {
	kr, err := Generate(time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	kek, err := NewKEK()
	if err != nil {
		t.Fatal(err)
	}
	data, err := kr.Marshal(kek.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(kr.Current().Recipient.String())) || bytes.Contains(data, kr.indexKey[:]) {
		t.Fatal("keyring file holds key material in the clear")
	}
	back, err := Unmarshal(data, kek)
	if err != nil {
		t.Fatal(err)
	}
	if back.Current().ID != 1 || back.Current().Recipient.String() != kr.Current().Recipient.String() {
		t.Fatal("epoch not restored")
	}
	if !bytes.Equal(back.BlindIndex("patient", "191212121212"), kr.BlindIndex("patient", "191212121212")) {
		t.Fatal("index key not restored")
	}
	other, _ := NewKEK()
	if _, err := Unmarshal(data, other); !errors.Is(err, ErrLocked) {
		t.Fatalf("wrong KEK: %v, want ErrLocked", err)
	}
	if _, err := back.Identity(2); !errors.Is(err, ErrNoEpoch) {
		t.Fatalf("Identity(2): %v", err)
	}
}

func TestPassphraseKeyring(t *testing.T) {
	if _, _, err := Passphrase("short"); err == nil {
		t.Fatal("short passphrase accepted")
	}
	id, r, err := Passphrase("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := Generate(time.Now())
	data, err := kr.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unmarshal(data, id); err != nil {
		t.Fatal(err)
	}
	wrong, _, _ := Passphrase("incorrect horse battery staple")
	if _, err := Unmarshal(data, wrong); err == nil {
		t.Fatal("wrong passphrase unlocked the keyring")
	}
}

func TestBlindIndexAndData(t *testing.T) {
	a, _ := Generate(time.Now())
	b, _ := Generate(time.Now())
	x := a.BlindIndex("patient", "191212121212")
	if len(x) != 32 || bytes.Equal(x, b.BlindIndex("patient", "191212121212")) || bytes.Equal(x, a.BlindIndex("caller", "191212121212")) {
		t.Fatal("blind index not keyed or not separated by kind")
	}
	s, err := a.SealData("audit/patient", []byte("191212121212"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(s, []byte("191212121212")) {
		t.Fatal("sealed data holds the plaintext")
	}
	if p, err := a.OpenData("audit/patient", s); err != nil || string(p) != "191212121212" {
		t.Fatalf("OpenData: %q %v", p, err)
	}
	if _, err := a.OpenData("audit/emergency-reason", s); err == nil {
		t.Fatal("opened under another label")
	}
	if _, err := b.OpenData("audit/patient", s); err == nil {
		t.Fatal("opened with another keyring")
	}
}

func TestKeyringDoesNotPrintSecrets(t *testing.T) {
	kr, _ := Generate(time.Now())
	id, _ := kr.Identity(1)
	secret := fmt.Sprint(id)
	for _, s := range []string{fmt.Sprint(kr), fmt.Sprintf("%v %+v %#v %s", kr, kr, kr, kr)} {
		if strings.Contains(s, "AGE-SECRET") || strings.Contains(s, secret) {
			t.Fatalf("keyring printed a secret: %s", s)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	if err := WriteFileAtomic(p, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("two")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(b) != "two" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%q %v", b, fi.Mode())
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
}
