//go:build cgo

package hsm

import (
	"testing"

	"filippo.io/age"

	"callvault/internal/keys/kektest"
)

// The HSM token's KEK passes the same suite as the key file and the
// passphrase (internal/keys): each KEK on a fresh SoftHSM2 token.
func TestKEKConformance(t *testing.T) {
	kektest.Run(t, func(t *testing.T) kektest.KEK {
		_, k := newKEK(t)
		return kektest.KEK{Recipient: k, Identities: []age.Identity{k}}
	})
}
