package keys

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
)

func TestLiveReloads(t *testing.T) {
	kek, _ := NewKEK()
	k, err := Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "keyring.age")
	if err := WriteFileAtomic(path, mustMarshal(t, k, kek.Recipient())); err != nil {
		t.Fatal(err)
	}
	l := NewLive(path, k, []age.Identity{kek})
	if l.Current().ID != 1 {
		t.Fatal("start")
	}
	// Another process rotates.
	k2, _ := Unmarshal(mustRead(t, path), kek)
	k2.Rotate(time.Now())
	if err := WriteFileAtomic(path, mustMarshal(t, k2, kek.Recipient())); err != nil {
		t.Fatal(err)
	}
	// Asking for the new epoch rereads at once.
	if _, err := l.Identity(2); err != nil {
		t.Fatalf("identity of the new epoch: %v", err)
	}
	if l.Current().ID != 2 {
		t.Fatalf("current after reload: %d", l.Current().ID)
	}
	// A broken file is ignored; the last good keyring stays.
	os.WriteFile(path, []byte("garbage"), 0o600)
	l.reload(true)
	if l.Current().ID != 2 {
		t.Fatal("a broken file replaced the keyring")
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
