//go:build cgo

package hsm

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/miekg/pkcs11"

	"callvault/internal/hsm/softhsmtest"
	"callvault/internal/keys"
)

func TestMain(m *testing.M) { softhsmtest.Main(m) }

const kekLabel = "callvault-kek"

// openToken opens a fresh SoftHSM2 token, closed when the test ends.
func openToken(t *testing.T) *Token {
	t.Helper()
	module, label, pin := softhsmtest.New(t)
	tok, err := Open(module, label, pin)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := tok.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tok
}

// newKEK opens a fresh token and creates its KEK labelled kekLabel.
func newKEK(t *testing.T) (*Token, *KEK) {
	t.Helper()
	tok := openToken(t)
	if _, err := tok.EnsureKEK(t.Context(), kekLabel); err != nil {
		t.Fatalf("EnsureKEK: %v", err)
	}
	k, err := tok.KEK(kekLabel)
	if err != nil {
		t.Fatalf("KEK: %v", err)
	}
	return tok, k
}

// session runs fn with the token's session, for inspecting the token
// directly through PKCS#11.
func session(t *testing.T, tok *Token, fn func(c *pkcs11.Ctx, s pkcs11.SessionHandle)) {
	t.Helper()
	if err := tok.do(t.Context(), func(s pkcs11.SessionHandle) error { fn(tok.ctx, s); return nil }); err != nil {
		t.Fatal(err)
	}
}

func encrypt(t *testing.T, r age.Recipient, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		t.Fatalf("age.Encrypt: %v", err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decrypt(data []byte, ids ...age.Identity) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(data), ids...)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestEnsureKEKCreatesOnce(t *testing.T) {
	tok := openToken(t)
	if _, err := tok.KEK(kekLabel); !errors.Is(err, ErrKEKNotFound) {
		t.Fatalf("KEK before EnsureKEK: got %v, want ErrKEKNotFound", err)
	}
	created, err := tok.EnsureKEK(t.Context(), kekLabel)
	if err != nil || !created {
		t.Fatalf("first EnsureKEK = %v, %v; want true, nil", created, err)
	}
	created, err = tok.EnsureKEK(t.Context(), kekLabel)
	if err != nil || created {
		t.Fatalf("second EnsureKEK = %v, %v; want false, nil", created, err)
	}
	session(t, tok, func(c *pkcs11.Ctx, s pkcs11.SessionHandle) {
		hs, err := tok.findObjects(s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, kekLabel)})
		if err != nil || len(hs) != 1 {
			t.Fatalf("objects labelled %q: %d, %v; want exactly 1", kekLabel, len(hs), err)
		}
	})
	if _, err := tok.KEK(kekLabel); err != nil {
		t.Fatalf("KEK after EnsureKEK: %v", err)
	}
}

func TestKEKAttributes(t *testing.T) {
	tok, k := newKEK(t)
	want := map[uint]bool{
		pkcs11.CKA_TOKEN:             true,
		pkcs11.CKA_PRIVATE:           true,
		pkcs11.CKA_SENSITIVE:         true,
		pkcs11.CKA_ALWAYS_SENSITIVE:  true,
		pkcs11.CKA_EXTRACTABLE:       false,
		pkcs11.CKA_NEVER_EXTRACTABLE: true,
		pkcs11.CKA_LOCAL:             true,
		pkcs11.CKA_MODIFIABLE:        false,
		pkcs11.CKA_ENCRYPT:           true,
		pkcs11.CKA_DECRYPT:           true,
		pkcs11.CKA_WRAP:              false,
		pkcs11.CKA_UNWRAP:            false,
		pkcs11.CKA_SIGN:              false,
		pkcs11.CKA_DERIVE:            false,
	}
	session(t, tok, func(c *pkcs11.Ctx, s pkcs11.SessionHandle) {
		for typ, w := range want {
			got, err := tok.getAttributes(s, k.handle, typ)
			if err != nil {
				t.Fatalf("attribute %#x: %v", typ, err)
			}
			if boolAttr(got[typ]) != w {
				t.Errorf("attribute %#x = %v, want %v", typ, boolAttr(got[typ]), w)
			}
		}
		got, err := tok.getAttributes(s, k.handle, pkcs11.CKA_KEY_TYPE, pkcs11.CKA_VALUE_LEN)
		if err != nil {
			t.Fatal(err)
		}
		if ulongAttr(got[pkcs11.CKA_KEY_TYPE]) != pkcs11.CKK_AES || ulongAttr(got[pkcs11.CKA_VALUE_LEN]) != 32 {
			t.Errorf("key type %d, length %d; want AES, 32", ulongAttr(got[pkcs11.CKA_KEY_TYPE]), ulongAttr(got[pkcs11.CKA_VALUE_LEN]))
		}

		// The value cannot be read ...
		v, err := tok.getAttributes(s, k.handle, pkcs11.CKA_VALUE)
		if !isCKR(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
			t.Errorf("reading CKA_VALUE: got %d bytes, err %v; want CKR_ATTRIBUTE_SENSITIVE", len(v[pkcs11.CKA_VALUE]), err)
		}
		// ... and the key cannot be made extractable or insensitive.
		for _, a := range []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, "renamed"),
		} {
			if err := c.SetAttributeValue(s, k.handle, []*pkcs11.Attribute{a}); err == nil {
				t.Errorf("setting attribute %#x succeeded", a.Type)
			}
		}
	})
}

func TestKEKCannotBeWrappedOut(t *testing.T) {
	tok, k := newKEK(t)
	session(t, tok, func(c *pkcs11.Ctx, s pkcs11.SessionHandle) {
		// A wrapping key the user controls, as an attacker with the PIN
		// would make.
		wk, err := c.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
		})
		if err != nil {
			t.Fatalf("generate wrapping key: %v", err)
		}
		for _, m := range []uint{pkcs11.CKM_AES_KEY_WRAP, pkcs11.CKM_AES_KEY_WRAP_PAD} {
			out, err := c.WrapKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(m, nil)}, wk, k.handle)
			if err == nil {
				t.Fatalf("mechanism %#x wrapped the KEK out (%d bytes)", m, len(out))
			}
			if !isCKR(err, pkcs11.CKR_KEY_UNEXTRACTABLE) {
				t.Errorf("mechanism %#x: got %v, want CKR_KEY_UNEXTRACTABLE", m, err)
			}
		}
	})
}

func TestAgeRoundTrip(t *testing.T) {
	_, k := newKEK(t)
	plain := make([]byte, 100_000)
	rand.Read(plain)
	data := encrypt(t, k, plain)

	// The header holds exactly one stanza, ours, naming the key ID.
	hdr, _, _ := strings.Cut(string(data), "\n---")
	lines := strings.Split(hdr, "\n")
	var stanzas []string
	for _, l := range lines {
		if strings.HasPrefix(l, "-> ") {
			stanzas = append(stanzas, l)
		}
	}
	if want := "-> " + StanzaType + " " + keyID(kekLabel); len(stanzas) != 1 || stanzas[0] != want {
		t.Errorf("stanzas %q, want [%q]", stanzas, want)
	}

	got, err := decrypt(data, k)
	if err != nil {
		t.Fatalf("age.Decrypt: %v", err)
	}
	if !bytes.Equal(got, plain) {
		t.Fatal("decrypted bytes differ")
	}
}

func TestStanzaFormat(t *testing.T) {
	_, k := newKEK(t)
	fileKey := make([]byte, 16)
	rand.Read(fileKey)
	ss, err := k.Wrap(fileKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].Type != StanzaType || len(ss[0].Args) != 1 || len(ss[0].Body) != 44 {
		t.Fatalf("stanza %+v; want one %s stanza, one arg, 44-byte body", ss, StanzaType)
	}
	// base64 (no padding) of the first 16 bytes of SHA-256("callvault-kek").
	if got, want := ss[0].Args[0], "LbNWwbSc0m8C799HCFtWVw"; got != want {
		t.Errorf("key ID %q, want %q", got, want)
	}
	again, err := k.Wrap(fileKey)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again[0].Body[:12], ss[0].Body[:12]) || bytes.Equal(again[0].Body, ss[0].Body) {
		t.Error("two wraps of one file key share an IV or a body")
	}
	if _, err := k.Wrap(make([]byte, 32)); err == nil {
		t.Error("Wrap accepted a 32-byte file key")
	}
}

// TestGCMIsStandard checks that the token's CKM_AES_GCM, as this package
// drives it, is AES-256-GCM as docs/hsm.md specifies: a key whose value
// the test knows gives the same output as crypto/cipher, both ways.
func TestGCMIsStandard(t *testing.T) {
	tok := openToken(t)
	key := make([]byte, 32)
	iv := make([]byte, 12)
	fileKey := make([]byte, 16)
	for _, b := range [][]byte{key, iv, fileKey} {
		rand.Read(b)
	}
	aad := additionalData(kekLabel)
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	want := append(bytes.Clone(iv), gcm.Seal(nil, iv, fileKey, aad)...)

	session(t, tok, func(c *pkcs11.Ctx, s pkcs11.SessionHandle) {
		h, err := c.CreateObject(s, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, key),
		})
		if err != nil {
			t.Fatalf("import test key: %v", err)
		}
		got, err := gcmSeal(c, s, h, iv, aad, fileKey)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("token AES-GCM\n got %x\nwant %x", got, want)
		}
		pt, err := gcmOpen(c, s, h, aad, want)
		if err != nil || !bytes.Equal(pt, fileKey) {
			t.Errorf("token could not open crypto/cipher's AES-GCM: %v", err)
		}
		// The AAD is authenticated.
		if _, err := gcmOpen(c, s, h, additionalData("other"), want); !errors.Is(err, errNotAuthentic) {
			t.Errorf("open with other AAD: got %v, want errNotAuthentic", err)
		}
	})
}

func TestKeyringRoundTrip(t *testing.T) {
	_, k := newKEK(t)
	kr, err := keys.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	data, err := kr.Marshal(k)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	got, err := keys.Unmarshal(data, k)
	if err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if got.Current().ID != kr.Current().ID || got.Current().Recipient.String() != kr.Current().Recipient.String() {
		t.Errorf("current epoch %d %s, want %d %s", got.Current().ID, got.Current().Recipient, kr.Current().ID, kr.Current().Recipient)
	}
	if !bytes.Equal(got.BlindIndex("patient", "synthetic-1"), kr.BlindIndex("patient", "synthetic-1")) {
		t.Error("blind index differs after the round trip")
	}
}

func TestOtherTokenSameLabelCannotDecrypt(t *testing.T) {
	_, a := newKEK(t)
	_, b := newKEK(t)
	data := encrypt(t, a, []byte("synthetic keyring"))

	_, err := decrypt(data, b)
	var noMatch *age.NoIdentityMatchError
	if !errors.As(err, &noMatch) || !errors.Is(noMatch.Errors[0], age.ErrIncorrectIdentity) {
		t.Fatalf("decrypt with another token's key: got %v, want NoIdentityMatchError wrapping ErrIncorrectIdentity", err)
	}

	kr, err := keys.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ring, err := kr.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Unmarshal(ring, b); !errors.Is(err, keys.ErrLocked) {
		t.Fatalf("keys.Unmarshal with another token's key: got %v, want ErrLocked", err)
	}
}

func TestUnwrapRejectsDamagedStanzas(t *testing.T) {
	_, k := newKEK(t)
	fileKey := make([]byte, 16)
	rand.Read(fileKey)
	ss, err := k.Wrap(fileKey)
	if err != nil {
		t.Fatal(err)
	}
	good := *ss[0]
	if got, err := k.Unwrap([]*age.Stanza{&good}); err != nil || !bytes.Equal(got, fileKey) {
		t.Fatalf("Unwrap of the good stanza: %v", err)
	}

	// Any flipped bit of IV, ciphertext or tag: not this key's stanza.
	for i := range good.Body {
		s := good
		s.Body = bytes.Clone(good.Body)
		s.Body[i] ^= 0x01
		if _, err := k.Unwrap([]*age.Stanza{&s}); !errors.Is(err, age.ErrIncorrectIdentity) {
			t.Fatalf("body byte %d flipped: got %v, want ErrIncorrectIdentity", i, err)
		}
	}
	// The failed decryptions left no operation behind in the session.
	if got, err := k.Unwrap([]*age.Stanza{&good}); err != nil || !bytes.Equal(got, fileKey) {
		t.Fatalf("Unwrap of the good stanza after failures: %v", err)
	}

	incorrect := map[string]*age.Stanza{
		"other key ID": {Type: StanzaType, Args: []string{keyID("other")}, Body: good.Body},
		"other type":   {Type: "X25519", Args: good.Args, Body: good.Body},
	}
	for name, s := range incorrect {
		if _, err := k.Unwrap([]*age.Stanza{s}); !errors.Is(err, age.ErrIncorrectIdentity) {
			t.Errorf("%s: got %v, want ErrIncorrectIdentity", name, err)
		}
	}

	fatal := map[string][]*age.Stanza{
		"short body":  {{Type: StanzaType, Args: good.Args, Body: good.Body[:43]}},
		"long body":   {{Type: StanzaType, Args: good.Args, Body: append(bytes.Clone(good.Body), 0)}},
		"no args":     {{Type: StanzaType, Body: good.Body}},
		"two args":    {{Type: StanzaType, Args: []string{good.Args[0], "x"}, Body: good.Body}},
		"not alone":   {&good, {Type: "X25519", Args: []string{"x"}, Body: make([]byte, 32)}},
		"twice":       {&good, &good},
		"alone after": {{Type: "X25519", Args: []string{"x"}, Body: make([]byte, 32)}, &good},
	}
	for name, ss := range fatal {
		_, err := k.Unwrap(ss)
		if err == nil || errors.Is(err, age.ErrIncorrectIdentity) {
			t.Errorf("%s: got %v, want a fatal error", name, err)
		}
	}
}

func TestTamperedFileFails(t *testing.T) {
	_, k := newKEK(t)
	data := encrypt(t, k, []byte("synthetic keyring"))
	// Flip one byte of the stanza body, inside the header's base64 line.
	hdr, _, _ := strings.Cut(string(data), "\n---")
	i := strings.Index(hdr, "\n"+"-> "+StanzaType)
	body := i + 1 + strings.Index(hdr[i+1:], "\n") + 1 // first body line
	bad := bytes.Clone(data)
	if bad[body] == 'A' {
		bad[body] = 'B'
	} else {
		bad[body] = 'A'
	}
	var noMatch *age.NoIdentityMatchError
	if _, err := decrypt(bad, k); !errors.As(err, &noMatch) {
		t.Fatalf("decrypt with a tampered stanza body: got %v, want NoIdentityMatchError", err)
	}
	if _, err := keys.Unmarshal(bad, k); !errors.Is(err, keys.ErrLocked) {
		t.Fatalf("keys.Unmarshal with a tampered stanza body: got %v, want ErrLocked", err)
	}
}

func TestKEKIsNotMixedWithOtherRecipients(t *testing.T) {
	_, k := newKEK(t)
	other, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := age.Encrypt(io.Discard, k, other.Recipient()); err == nil {
		t.Error("age.Encrypt mixed the KEK with a hybrid recipient")
	}
	if _, err := age.Encrypt(io.Discard, k, k); err == nil {
		t.Error("age.Encrypt used the KEK twice")
	}
	// A file for other recipients only is not the KEK's.
	data := encrypt(t, other.Recipient(), []byte("synthetic"))
	if _, err := k.Unwrap(nil); !errors.Is(err, age.ErrIncorrectIdentity) {
		t.Errorf("Unwrap of no stanzas: got %v, want ErrIncorrectIdentity", err)
	}
	if _, err := decrypt(data, k); err == nil {
		t.Error("the KEK decrypted a file for another recipient")
	}
	if got, err := decrypt(data, k, other); err != nil || string(got) != "synthetic" {
		t.Errorf("with the KEK tried first, the right identity failed: %v", err)
	}
}

func TestOpenWrongPIN(t *testing.T) {
	module, label, pin := softhsmtest.New(t)
	wrong := "9" + pin[1:]
	if wrong == pin {
		wrong = "8" + pin[1:]
	}
	tok, err := Open(module, label, wrong)
	if err == nil {
		tok.Close()
		t.Fatal("Open with a wrong PIN succeeded")
	}
	if !errors.Is(err, ErrPINIncorrect) {
		t.Errorf("got %v, want ErrPINIncorrect", err)
	}
	if msg := err.Error(); strings.Contains(msg, wrong) || strings.Contains(msg, pin) || !strings.Contains(msg, label) {
		t.Errorf("error %q: must name the token and contain no PIN", msg)
	}
	// The right PIN still works (one failure does not lock SoftHSM2).
	tok, err = Open(module, label, pin)
	if err != nil {
		t.Fatal(err)
	}
	tok.Close()
}

func TestOpenUnknownToken(t *testing.T) {
	module, _, pin := softhsmtest.New(t)
	_, err := Open(module, "no-such-token", pin)
	if !errors.Is(err, ErrTokenNotFound) || !strings.Contains(err.Error(), "no-such-token") || strings.Contains(err.Error(), pin) {
		t.Errorf("got %v, want ErrTokenNotFound naming the label and not the PIN", err)
	}
}

func TestOpenBadArguments(t *testing.T) {
	module, label, pin := softhsmtest.New(t)
	cases := map[string][3]string{
		"missing module": {"/nonexistent/libpkcs11.so", label, pin},
		"not a module":   {"/etc/hostname", label, pin},
		"empty module":   {"", label, pin},
		"empty label":    {module, "", pin},
		"empty PIN":      {module, label, ""},
	}
	for name, c := range cases {
		tok, err := Open(c[0], c[1], c[2])
		if err == nil {
			tok.Close()
			t.Errorf("%s: Open succeeded", name)
			continue
		}
		if pin != "" && strings.Contains(err.Error(), pin) {
			t.Errorf("%s: error %q contains the PIN", name, err)
		}
	}
}

func TestOpenTwiceInOneProcess(t *testing.T) {
	module, label, pin := softhsmtest.New(t)
	a, err := Open(module, label, pin)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// The token is logged in for the whole process, so a second Open
	// would not check its PIN: refused, whatever the PIN.
	for _, p := range []string{pin, "0000"} {
		if b, err := Open(module, label, p); err == nil {
			b.Close()
			t.Errorf("second Open of a logged-in token succeeded")
		}
	}
}

func TestClose(t *testing.T) {
	module, label, pin := softhsmtest.New(t)
	tok, err := Open(module, label, pin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.EnsureKEK(t.Context(), kekLabel); err != nil {
		t.Fatal(err)
	}
	k, err := tok.KEK(kekLabel)
	if err != nil {
		t.Fatal(err)
	}
	data := encrypt(t, k, []byte("synthetic"))
	if err := tok.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tok.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := k.Wrap(make([]byte, 16)); !errors.Is(err, ErrClosed) {
		t.Errorf("Wrap after Close: got %v, want ErrClosed", err)
	}
	if _, err := decrypt(data, k); !errors.Is(err, ErrClosed) {
		t.Errorf("Decrypt after Close: got %v, want ErrClosed (fatal, not a wrong key)", err)
	}
	if _, err := tok.EnsureKEK(t.Context(), kekLabel); !errors.Is(err, ErrClosed) {
		t.Errorf("EnsureKEK after Close: got %v, want ErrClosed", err)
	}
	// Closing logged out: the token opens again, and the key persisted.
	tok, err = Open(module, label, pin)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer tok.Close()
	k, err = tok.KEK(kekLabel)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decrypt(data, k); err != nil || string(got) != "synthetic" {
		t.Errorf("decrypt after reopen: %v", err)
	}
}

func TestKEKRejectsUnsafeKeys(t *testing.T) {
	tok := openToken(t)
	gen := func(label string, extractable, sensitive bool) {
		session(t, tok, func(c *pkcs11.Ctx, s pkcs11.SessionHandle) {
			_, err := c.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
				pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
				pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, sensitive),
				pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, extractable),
				pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
				pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	gen("extractable", true, true)
	gen("insensitive", false, false)
	gen("twice", false, true)
	gen("twice", false, true)
	for _, label := range []string{"extractable", "insensitive", "twice"} {
		if _, err := tok.KEK(label); err == nil || errors.Is(err, ErrKEKNotFound) {
			t.Errorf("KEK(%q): got %v, want a refusal", label, err)
		}
		if _, err := tok.EnsureKEK(t.Context(), label); err == nil {
			t.Errorf("EnsureKEK(%q) accepted the key", label)
		}
	}
	for _, label := range []string{"", strings.Repeat("x", 65), "\xff"} {
		if _, err := tok.EnsureKEK(t.Context(), label); err == nil {
			t.Errorf("EnsureKEK(%q) accepted the label", label)
		}
	}
}

func TestEnsureKEKCanceled(t *testing.T) {
	tok := openToken(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := tok.EnsureKEK(ctx, kekLabel); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if _, err := tok.KEK(kekLabel); !errors.Is(err, ErrKEKNotFound) {
		t.Errorf("a canceled EnsureKEK created a key: %v", err)
	}
}

func TestConcurrentWrapUnwrap(t *testing.T) {
	tok, k := newKEK(t)
	// A second KEK object for the same key, used at the same time.
	k2, err := tok.KEK(kekLabel)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			kek := k
			if g%2 == 1 {
				kek = k2
			}
			for range 20 {
				fileKey := make([]byte, 16)
				rand.Read(fileKey)
				ss, err := kek.Wrap(fileKey)
				if err != nil {
					errs <- err
					return
				}
				got, err := kek.Unwrap(ss)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, fileKey) {
					errs <- errors.New("unwrapped a different file key")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
