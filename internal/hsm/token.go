//go:build cgo

package hsm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/miekg/pkcs11"
)

// modules holds the PKCS#11 modules this process has loaded, by path.
//
// PKCS#11 allows one C_Initialize per process, and login state is per
// process and token, not per session. A module is therefore loaded and
// initialized once and never finalized: C_Finalize would end every session
// of every other user of the module in the process (and SoftHSM2 reads its
// configuration, SOFTHSM2_CONF, only at C_Initialize).
var modules struct {
	sync.Mutex
	byPath map[string]*pkcs11.Ctx
}

// loadModule returns the initialized module at path, loading it on first use.
func loadModule(path string) (*pkcs11.Ctx, error) {
	modules.Lock()
	defer modules.Unlock()
	if c, ok := modules.byPath[path]; ok {
		return c, nil
	}
	c := pkcs11.New(path)
	if c == nil {
		return nil, fmt.Errorf("hsm: cannot load PKCS#11 module %s (missing, or not a PKCS#11 library)", path)
	}
	// Another library in this process may have initialized the module
	// already; its initialization is shared (see modules).
	if err := c.Initialize(); err != nil && !isCKR(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		c.Destroy()
		return nil, fmt.Errorf("hsm: initialize PKCS#11 module %s: %w", path, err)
	}
	if modules.byPath == nil {
		modules.byPath = make(map[string]*pkcs11.Ctx)
	}
	modules.byPath[path] = c
	return c, nil
}

// Token is a logged-in session with one PKCS#11 token. It is safe for
// concurrent use: operations take turns on the one session. It does not
// keep the PIN.
type Token struct {
	ctx   *pkcs11.Ctx // immutable; shared by the process, never finalized
	label string      // the token's label, immutable

	// sem is held (one value in the channel) while the session is used.
	sem     chan struct{}
	session pkcs11.SessionHandle // guarded by sem
	closed  bool                 // guarded by sem
}

// Open loads the PKCS#11 module at modulePath (once per process), finds
// the one initialized token labelled tokenLabel, opens a read-write
// session and logs in as the normal user with pin.
//
// It returns ErrTokenNotFound if no token has the label, ErrPINIncorrect
// or ErrPINLocked if the token refuses the PIN, and an error if two tokens
// share the label or the token is already logged in by another user of the
// module in this process (open a token once and share the *Token). Errors
// never contain the PIN.
func Open(modulePath, tokenLabel, pin string) (*Token, error) {
	if modulePath == "" || tokenLabel == "" {
		return nil, errors.New("hsm: a PKCS#11 module path and a token label are required")
	}
	if pin == "" {
		return nil, errors.New("hsm: the user PIN is empty")
	}
	c, err := loadModule(modulePath)
	if err != nil {
		return nil, err
	}
	slot, err := findSlot(c, tokenLabel)
	if err != nil {
		return nil, err
	}
	s, err := c.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return nil, fmt.Errorf("hsm: open session with token %q: %w", tokenLabel, err)
	}
	if err := c.Login(s, pkcs11.CKU_USER, pin); err != nil {
		_ = c.CloseSession(s) // the login error is the one to report
		switch {
		case isCKR(err, pkcs11.CKR_PIN_INCORRECT):
			return nil, fmt.Errorf("%w (token %q)", ErrPINIncorrect, tokenLabel)
		case isCKR(err, pkcs11.CKR_PIN_LOCKED):
			return nil, fmt.Errorf("%w (token %q)", ErrPINLocked, tokenLabel)
		case isCKR(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN):
			// Logged in by someone else in this process: the PIN was
			// not checked, so do not hand out a session on its strength.
			return nil, fmt.Errorf("hsm: token %q is already logged in by another user of the module in this process; open it once and share the Token", tokenLabel)
		}
		return nil, fmt.Errorf("hsm: log in to token %q: %w", tokenLabel, err)
	}
	return &Token{ctx: c, label: tokenLabel, sem: make(chan struct{}, 1), session: s}, nil
}

// findSlot returns the slot of the one initialized token labelled label.
func findSlot(c *pkcs11.Ctx, label string) (uint, error) {
	slots, err := c.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("hsm: list slots: %w", err)
	}
	var found []uint
	for _, slot := range slots {
		ti, err := c.GetTokenInfo(slot)
		if err != nil {
			return 0, fmt.Errorf("hsm: token info of slot %d: %w", slot, err)
		}
		if ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0 && ti.Label == label {
			found = append(found, slot)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("%w: %q", ErrTokenNotFound, label)
	case 1:
		return found[0], nil
	}
	return 0, fmt.Errorf("hsm: %d tokens are labelled %q; token labels must be unique", len(found), label)
}

// Close logs out and closes the session. Afterwards the Token and its KEKs
// return ErrClosed. Closing twice is harmless.
func (t *Token) Close() error {
	t.sem <- struct{}{}
	defer func() { <-t.sem }()
	if t.closed {
		return nil
	}
	t.closed = true
	var errs []error
	if err := t.ctx.Logout(t.session); err != nil && !isCKR(err, pkcs11.CKR_USER_NOT_LOGGED_IN) {
		errs = append(errs, fmt.Errorf("hsm: log out of token %q: %w", t.label, err))
	}
	if err := t.ctx.CloseSession(t.session); err != nil {
		errs = append(errs, fmt.Errorf("hsm: close session with token %q: %w", t.label, err))
	}
	return errors.Join(errs...)
}

// do runs fn with the session, waiting for its turn until ctx is done.
func (t *Token) do(ctx context.Context, fn func(pkcs11.SessionHandle) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case t.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-t.sem }()
	if t.closed {
		return ErrClosed
	}
	return fn(t.session)
}

// EnsureKEK makes sure the token holds a key-encryption key labelled label,
// generating it on the token if there is none. The key is AES-256 with
// CKA_TOKEN, CKA_PRIVATE and CKA_SENSITIVE true, CKA_EXTRACTABLE and
// CKA_MODIFIABLE false, usable for encryption and decryption only
// (docs/hsm.md). created reports whether it was generated by this call.
//
// An existing key with the label is accepted only if it has those
// properties; two secret keys with the label are an error. EnsureKEK does
// not guard against another process creating the same label at the same
// moment: run it from one place (keyring initialization). ctx bounds the
// wait for the session; a PKCS#11 call under way is not interrupted.
func (t *Token) EnsureKEK(ctx context.Context, label string) (created bool, err error) {
	if err := checkLabel(label); err != nil {
		return false, err
	}
	err = t.do(ctx, func(s pkcs11.SessionHandle) error {
		_, err := t.findKEK(s, label)
		if !errors.Is(err, ErrKEKNotFound) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := t.ctx.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, kekTemplate(label))
		if err != nil {
			return fmt.Errorf("hsm: generate key-encryption key %q on token %q: %w", label, t.label, err)
		}
		// A token may silently ignore parts of a template: check what it
		// made, and do not leave a weaker key behind under the label.
		if err := t.checkKEK(s, h, label); err != nil {
			if derr := t.ctx.DestroyObject(s, h); derr != nil {
				return errors.Join(err, fmt.Errorf("hsm: destroy the unusable key: %w", derr))
			}
			return err
		}
		created = true
		return nil
	})
	return created, err
}

// kekTemplate is the attribute template of a generated KEK.
func kekTemplate(label string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		// Not modifiable: the label is bound into every stanza (AAD), and
		// no attribute should be loosened later.
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
	}
}

// KEK returns the key-encryption key labelled label, for use as an age
// recipient and identity. It returns ErrKEKNotFound if the token has no
// secret key with the label, and an error if it has two, or if the key is
// not a sensitive, non-extractable AES-256 token key allowed to encrypt and
// decrypt. The KEK is valid until the Token is closed.
func (t *Token) KEK(label string) (*KEK, error) {
	if err := checkLabel(label); err != nil {
		return nil, err
	}
	var h pkcs11.ObjectHandle
	err := t.do(context.Background(), func(s pkcs11.SessionHandle) error {
		var err error
		h, err = t.findKEK(s, label)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &KEK{tok: t, label: label, id: keyID(label), handle: h}, nil
}

// findKEK returns the one usable secret key labelled label.
func (t *Token) findKEK(s pkcs11.SessionHandle, label string) (pkcs11.ObjectHandle, error) {
	hs, err := t.findObjects(s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	})
	if err != nil {
		return 0, fmt.Errorf("hsm: find key %q on token %q: %w", label, t.label, err)
	}
	switch len(hs) {
	case 0:
		return 0, fmt.Errorf("%w: %q on token %q", ErrKEKNotFound, label, t.label)
	case 1:
		return hs[0], t.checkKEK(s, hs[0], label)
	}
	return 0, fmt.Errorf("hsm: %d secret keys are labelled %q on token %q; a key-encryption key label must be unique", len(hs), label, t.label)
}

func (t *Token) findObjects(s pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := t.ctx.FindObjectsInit(s, tmpl); err != nil {
		return nil, err
	}
	var all []pkcs11.ObjectHandle
	for {
		hs, _, err := t.ctx.FindObjects(s, 16)
		if err != nil {
			_ = t.ctx.FindObjectsFinal(s)
			return nil, err
		}
		if len(hs) == 0 {
			break
		}
		all = append(all, hs...)
	}
	return all, t.ctx.FindObjectsFinal(s)
}

// checkKEK returns an error unless h is what EnsureKEK would generate as
// far as protection goes: an AES-256 token key, private, sensitive and not
// extractable, allowed to encrypt and decrypt.
func (t *Token) checkKEK(s pkcs11.SessionHandle, h pkcs11.ObjectHandle, label string) error {
	types := []uint{pkcs11.CKA_KEY_TYPE, pkcs11.CKA_VALUE_LEN, pkcs11.CKA_TOKEN, pkcs11.CKA_PRIVATE,
		pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE, pkcs11.CKA_ENCRYPT, pkcs11.CKA_DECRYPT}
	attrs, err := t.getAttributes(s, h, types...)
	if err != nil {
		return fmt.Errorf("hsm: attributes of key %q on token %q: %w", label, t.label, err)
	}
	var problem string
	switch {
	case ulongAttr(attrs[pkcs11.CKA_KEY_TYPE]) != pkcs11.CKK_AES || ulongAttr(attrs[pkcs11.CKA_VALUE_LEN]) != 32:
		problem = "it is not an AES-256 key"
	case !boolAttr(attrs[pkcs11.CKA_TOKEN]):
		problem = "it is not a token object"
	case !boolAttr(attrs[pkcs11.CKA_PRIVATE]):
		problem = "it is not private (CKA_PRIVATE)"
	case !boolAttr(attrs[pkcs11.CKA_SENSITIVE]):
		problem = "it is not sensitive (CKA_SENSITIVE)"
	case boolAttr(attrs[pkcs11.CKA_EXTRACTABLE]):
		problem = "it is extractable (CKA_EXTRACTABLE)"
	case !boolAttr(attrs[pkcs11.CKA_ENCRYPT]) || !boolAttr(attrs[pkcs11.CKA_DECRYPT]):
		problem = "it may not encrypt and decrypt"
	default:
		return nil
	}
	return fmt.Errorf("hsm: key %q on token %q cannot be a key-encryption key: %s", label, t.label, problem)
}

// getAttributes reads attributes of h, by type.
func (t *Token) getAttributes(s pkcs11.SessionHandle, h pkcs11.ObjectHandle, types ...uint) (map[uint][]byte, error) {
	q := make([]*pkcs11.Attribute, len(types))
	for i, typ := range types {
		q[i] = pkcs11.NewAttribute(typ, nil)
	}
	got, err := t.ctx.GetAttributeValue(s, h, q)
	if err != nil {
		return nil, err
	}
	m := make(map[uint][]byte, len(got))
	for _, a := range got {
		m[a.Type] = a.Value
	}
	return m, nil
}

// boolAttr decodes a CK_BBOOL; a missing value is false.
func boolAttr(v []byte) bool { return len(v) == 1 && v[0] != 0 }

// ulongAttr decodes a CK_ULONG (native byte order and size); a missing or
// malformed value is ^0, which matches no valid constant.
func ulongAttr(v []byte) uint {
	switch len(v) {
	case 8:
		return uint(binary.NativeEndian.Uint64(v))
	case 4:
		return uint(binary.NativeEndian.Uint32(v))
	}
	return ^uint(0)
}

// isCKR reports whether err is the PKCS#11 return value rv.
func isCKR(err error, rv uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == rv
}
