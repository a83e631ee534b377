//go:build !cgo

package hsm

import (
	"errors"
	"testing"
)

func TestOpenWithoutCgo(t *testing.T) {
	tok, err := Open("/usr/lib/softhsm/libsofthsm2.so", "callvault", "1234")
	if tok != nil || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open = %v, %v; want nil, ErrUnavailable", tok, err)
	}
	if want := "hsm: this binary was built without cgo; PKCS#11 is unavailable"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}
