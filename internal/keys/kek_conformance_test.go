package keys_test

import (
	"crypto/rand"
	"encoding/hex"
	"testing"

	"filippo.io/age"

	"callvault/internal/keys"
	"callvault/internal/keys/kektest"
)

// The embedded KEKs: a hybrid age identity in a file, and a passphrase.
// (The HSM token's KEK runs the same suite in internal/hsm.)
func TestKEKConformance(t *testing.T) {
	t.Run("KeyFile", func(t *testing.T) {
		kektest.Run(t, func(t *testing.T) kektest.KEK {
			id, err := keys.NewKEK()
			if err != nil {
				t.Fatal(err)
			}
			return kektest.KEK{Recipient: id.Recipient(), Identities: []age.Identity{id}}
		})
	})
	t.Run("Passphrase", func(t *testing.T) {
		kektest.Run(t, func(t *testing.T) kektest.KEK {
			b := make([]byte, 12)
			rand.Read(b)
			p := hex.EncodeToString(b)
			id, _, err := keys.Passphrase(p)
			if err != nil {
				t.Fatal(err)
			}
			// The same scrypt recipient keys.Passphrase makes, at a work
			// factor a test can afford (2^10 instead of 2^18).
			r, err := age.NewScryptRecipient(p)
			if err != nil {
				t.Fatal(err)
			}
			r.SetWorkFactor(10)
			return kektest.KEK{Recipient: r, Identities: []age.Identity{id}}
		})
	})
}
