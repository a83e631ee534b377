package hsm

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"sync"
)

// shared holds the tokens OpenShared opened, by module path and token
// label. A PKCS#11 login belongs to the whole process (a second C_Login
// succeeds without checking the PIN), so a process can hold only one
// logged-in Token per token anyway; this registry makes that explicit.
var shared struct {
	sync.Mutex
	byKey map[string]*sharedToken
}

type sharedToken struct {
	tok    *Token
	pinSum [sha256.Size]byte
}

// OpenShared returns this process's Token for the token labelled
// tokenLabel in the module at modulePath, opening it with Open on first
// use. A later call must give the same PIN — it is compared, in constant
// time, with a SHA-256 of the first one kept in memory — and gets the same
// Token; another PIN gets ErrPINIncorrect. A shared Token lives as long as
// the process: its users must not Close it.
func OpenShared(modulePath, tokenLabel, pin string) (*Token, error) {
	key := modulePath + "\x00" + tokenLabel
	sum := sha256.Sum256([]byte(pin))
	shared.Lock()
	defer shared.Unlock()
	if s, ok := shared.byKey[key]; ok {
		if subtle.ConstantTimeCompare(s.pinSum[:], sum[:]) != 1 {
			return nil, fmt.Errorf("%w (token %q)", ErrPINIncorrect, tokenLabel)
		}
		return s.tok, nil
	}
	tok, err := Open(modulePath, tokenLabel, pin)
	if err != nil {
		return nil, err
	}
	if shared.byKey == nil {
		shared.byKey = map[string]*sharedToken{}
	}
	shared.byKey[key] = &sharedToken{tok: tok, pinSum: sum}
	return tok, nil
}
