//go:build !cgo

package softhsmtest

import (
	"os"
	"testing"
)

const noCgo = "softhsmtest: this test binary was built without cgo; PKCS#11 tests need CGO_ENABLED=1 and a C compiler"

// New fails the test: PKCS#11 needs cgo.
func New(t testing.TB) (module, label, pin string) {
	t.Helper()
	t.Fatal(noCgo)
	return "", "", ""
}

// Env fails the test: PKCS#11 needs cgo.
func Env(t testing.TB) []string {
	t.Helper()
	t.Fatal(noCgo)
	return nil
}

// Main runs the tests.
func Main(m *testing.M) { os.Exit(m.Run()) }

// Cleanup does nothing without cgo: no token directory is made.
func Cleanup() {}
