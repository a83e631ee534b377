package keys

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"filippo.io/age"
)

func TestRotateAndDestroy(t *testing.T) {
	k, err := Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	first := k.Current()
	e2, err := k.Rotate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if e2.ID != 2 || k.Current().ID != 2 || e2.Recipient.String() == first.Recipient.String() {
		t.Fatalf("after rotate: current %d, new %d", k.Current().ID, e2.ID)
	}
	if err := k.DestroyEpoch(2); !errors.Is(err, ErrCurrentEpoch) {
		t.Fatalf("destroy current: %v", err)
	}
	// Round trip through the file keeps both epochs.
	kek, _ := NewKEK()
	data, err := k.Marshal(kek.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	k2, err := Unmarshal(data, kek)
	if err != nil {
		t.Fatal(err)
	}
	if len(k2.Epochs()) != 2 {
		t.Fatalf("epochs after round trip: %d", len(k2.Epochs()))
	}
	if err := k2.DestroyEpoch(1); err != nil {
		t.Fatal(err)
	}
	if _, err := k2.Identity(1); !errors.Is(err, ErrNoEpoch) {
		t.Fatalf("identity of destroyed epoch: %v", err)
	}
	if err := k2.DestroyEpoch(1); !errors.Is(err, ErrNoEpoch) {
		t.Fatalf("destroy twice: %v", err)
	}
	// Something wrapped to epoch 1 no longer opens with the keyring.
	var buf bytes.Buffer
	w, _ := age.Encrypt(&buf, first.Recipient)
	w.Write([]byte("a file key"))
	w.Close()
	id2, _ := k2.Identity(2)
	var noMatch *age.NoIdentityMatchError
	if _, err := age.Decrypt(&buf, id2); !errors.As(err, &noMatch) {
		t.Fatalf("epoch 1 ciphertext with the remaining keys: %v", err)
	}
	if k3, err := Unmarshal(mustMarshal(t, k2, kek.Recipient()), kek); err != nil || len(k3.Epochs()) != 1 || k3.Current().ID != 2 {
		t.Fatalf("after destroy and round trip: %v", err)
	}
	// Rotating after a destroy continues the numbering.
	if e3, _ := k2.Rotate(time.Now()); e3.ID != 3 {
		t.Fatalf("next epoch %d, want 3", e3.ID)
	}
}

func mustMarshal(t *testing.T, k *Keyring, r age.Recipient) []byte {
	t.Helper()
	b, err := k.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
