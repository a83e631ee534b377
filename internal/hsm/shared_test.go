//go:build cgo

package hsm

import (
	"errors"
	"strings"
	"testing"

	"callvault/internal/hsm/softhsmtest"
)

// One Token per token and process: the same PIN gets the same Token,
// another PIN is refused without reaching the token.
func TestOpenShared(t *testing.T) {
	module, label, pin := softhsmtest.New(t)
	a, err := OpenShared(module, label, pin)
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenShared(module, label, pin)
	if err != nil || b != a {
		t.Fatalf("second OpenShared = %p, %v; want the first Token %p", b, err, a)
	}
	_, err = OpenShared(module, label, pin+"0")
	if !errors.Is(err, ErrPINIncorrect) || strings.Contains(err.Error(), pin) {
		t.Fatalf("OpenShared with another PIN: %v", err)
	}
	if _, err := a.EnsureKEK(t.Context(), kekLabel); err != nil {
		t.Fatalf("the shared Token works: %v", err)
	}
}
