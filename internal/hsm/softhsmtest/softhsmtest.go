//go:build cgo

// Package softhsmtest gives tests a fresh SoftHSM2 token: a real PKCS#11
// module with its own token directory, never the machine's tokens.
//
// SoftHSM2 reads its configuration file, named by the SOFTHSM2_CONF
// environment variable, once, at C_Initialize, and a PKCS#11 module is
// initialized once per process (package hsm never finalizes it). It also
// does not notice tokens that another process (softhsm2-util) creates
// after C_Initialize. So the first call to New in a test binary creates
// one token directory and configuration for the whole process, sets
// SOFTHSM2_CONF with os.Setenv (t.Setenv would be undone after the first
// test while the module keeps the old directory), initializes the module,
// and every call creates a new, uniquely labelled token in that directory
// through the module itself (C_InitToken, C_InitPIN), so the process sees
// it at once. Subprocesses see the same tokens with Env.
//
// The directory is removed at exit by Main; call it from TestMain.
package softhsmtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"
)

// modulePaths are the places New looks for the SoftHSM2 module, in order.
var modulePaths = []string{
	"/usr/lib/softhsm/libsofthsm2.so",                   // Debian, Ubuntu
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",  // Debian multiarch
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so", // Debian multiarch
	"/usr/lib64/pkcs11/libsofthsm2.so",                  // Fedora
	"/usr/local/lib/softhsm/libsofthsm2.so",             // source builds
	"/opt/homebrew/lib/softhsm/libsofthsm2.so",          // Homebrew
}

// shared is the process-wide SoftHSM2 set-up (see the package comment).
var shared struct {
	once   sync.Once
	err    error       // set-up failure, immutable after once
	module string      // module path, immutable after once
	dir    string      // token directory and configuration, immutable after once
	conf   string      // configuration file, immutable after once
	ctx    *pkcs11.Ctx // immutable after once; never finalized

	mu sync.Mutex // serializes token creation (it takes the one free slot)
}

func setup() {
	for _, p := range modulePaths {
		if _, err := os.Stat(p); err == nil {
			shared.module = p
			break
		}
	}
	if shared.module == "" {
		shared.err = fmt.Errorf("run scripts/deps.sh: softhsm2 is missing (no libsofthsm2.so in %s)", strings.Join(modulePaths, ", "))
		return
	}
	dir, err := os.MkdirTemp("", "callvault-softhsm-")
	if err != nil {
		shared.err = err
		return
	}
	shared.dir = dir
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		shared.err = err
		return
	}
	shared.conf = filepath.Join(dir, "softhsm2.conf")
	conf := "directories.tokendir = " + tokens + "\n" +
		"objectstore.backend = file\n" +
		"log.level = ERROR\n" +
		"slots.removable = false\n"
	if err := os.WriteFile(shared.conf, []byte(conf), 0o600); err != nil {
		shared.err = err
		return
	}
	if err := os.Setenv("SOFTHSM2_CONF", shared.conf); err != nil {
		shared.err = err
		return
	}
	c := pkcs11.New(shared.module)
	if c == nil {
		shared.err = fmt.Errorf("cannot load %s; run scripts/deps.sh: softhsm2 is missing or broken", shared.module)
		return
	}
	if err := c.Initialize(); err != nil {
		if errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
			err = errors.New("the module was initialized before softhsmtest set SOFTHSM2_CONF; call softhsmtest.New before opening it")
		}
		shared.err = fmt.Errorf("initialize %s: %w", shared.module, err)
		return
	}
	shared.ctx = c
}

func ready(t testing.TB) {
	t.Helper()
	shared.once.Do(setup)
	if shared.err != nil {
		t.Fatalf("softhsmtest: %v", shared.err)
	}
}

// New creates a fresh SoftHSM2 token with a unique label and random user
// PIN, and returns the module path, the token label and the user PIN. The
// token is empty. It fails the test (never skips it) if SoftHSM2 is not
// installed.
func New(t testing.TB) (module, label, pin string) {
	t.Helper()
	ready(t)
	label = "cvtest-" + randomHex(t, 8) // at most 32 bytes
	pin = randomHex(t, 8)
	if err := initToken(label, randomHex(t, 8), pin); err != nil {
		t.Fatalf("softhsmtest: create token: %v", err)
	}
	return shared.module, label, pin
}

// initToken initializes the free slot's token and sets its user PIN.
func initToken(label, soPIN, pin string) error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	c := shared.ctx
	free, err := findSlot(c, func(ti pkcs11.TokenInfo) bool { return ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 })
	if err != nil {
		return err
	}
	if err := c.InitToken(free, soPIN, label); err != nil {
		return fmt.Errorf("init token: %w", err)
	}
	// SoftHSM2 gives an initialized token a new slot ID.
	slot, err := findSlot(c, func(ti pkcs11.TokenInfo) bool { return ti.Label == label })
	if err != nil {
		return err
	}
	s, err := c.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	defer c.CloseSession(s)
	if err := c.Login(s, pkcs11.CKU_SO, soPIN); err != nil {
		return fmt.Errorf("log in as security officer: %w", err)
	}
	defer c.Logout(s)
	if err := c.InitPIN(s, pin); err != nil {
		return fmt.Errorf("init user PIN: %w", err)
	}
	return nil
}

func findSlot(c *pkcs11.Ctx, match func(pkcs11.TokenInfo) bool) (uint, error) {
	slots, err := c.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("list slots: %w", err)
	}
	for _, slot := range slots {
		ti, err := c.GetTokenInfo(slot)
		if err != nil {
			return 0, fmt.Errorf("token info: %w", err)
		}
		if match(ti) {
			return slot, nil
		}
	}
	return 0, errors.New("no matching slot")
}

// Env returns the environment a subprocess needs to see the tokens New
// made (SOFTHSM2_CONF=…); append it to os.Environ().
func Env(t testing.TB) []string {
	t.Helper()
	ready(t)
	return []string{"SOFTHSM2_CONF=" + shared.conf}
}

// Main runs the tests and removes the token directory afterwards. Call it
// from TestMain: func TestMain(m *testing.M) { softhsmtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Cleanup removes the token directory, for a TestMain that does more than
// Main: call it after m.Run.
func Cleanup() {
	if shared.dir != "" {
		if err := os.RemoveAll(shared.dir); err != nil {
			fmt.Fprintln(os.Stderr, "softhsmtest:", err)
		}
	}
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
