package escrow

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

var testTime = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustSplit(t *testing.T, secret []byte, n, k int) []*Share {
	t.Helper()
	shares, err := Split(secret, n, k, testTime)
	if err != nil {
		t.Fatalf("Split(%d bytes, n=%d, k=%d): %v", len(secret), n, k, err)
	}
	if len(shares) != n {
		t.Fatalf("Split made %d shares, want %d", len(shares), n)
	}
	return shares
}

// subsets lists every k-element subset of {0, …, n-1}, in lexicographic
// order.
func subsets(n, k int) [][]int {
	if k == 0 {
		return [][]int{nil}
	}
	var out [][]int
	for first := 0; first <= n-k; first++ {
		for _, rest := range subsets(n-first-1, k-1) {
			s := []int{first}
			for _, r := range rest {
				s = append(s, first+1+r)
			}
			out = append(out, s)
		}
	}
	return out
}

func pick(shares []*Share, idx ...int) []*Share {
	out := make([]*Share, len(idx))
	for i, j := range idx {
		out[i] = shares[j]
	}
	return out
}

func TestSplitDescribesShares(t *testing.T) {
	shares := mustSplit(t, []byte("keyring"), 5, 3)
	for i, s := range shares {
		if s.Index != i+1 || s.Total != 5 || s.Threshold != 3 || !s.Created.Equal(testTime) {
			t.Errorf("share %d: %v, created %v", i, s, s.Created)
		}
		if s.EscrowID != shares[0].EscrowID || len(s.EscrowID) != 32 || !isLowerHex(s.EscrowID) {
			t.Errorf("share %d: escrow ID %q", i, s.EscrowID)
		}
		if err := s.verify(); err != nil {
			t.Errorf("share %d does not verify: %v", i, err)
		}
	}
}

func TestSplitTruncatesCreatedToUTCSeconds(t *testing.T) {
	now := time.Date(2026, 11, 24, 11, 0, 0, 999_999_999, time.FixedZone("CET", 3600))
	shares, err := Split([]byte("k"), 2, 2, now)
	if err != nil {
		t.Fatal(err)
	}
	got := shares[0].Created
	if !got.Equal(testTime) || got.Location() != time.UTC {
		t.Errorf("Created = %v, want %v", got, testTime)
	}
}

func TestThreeOfFiveEverySubsetRecovers(t *testing.T) {
	secret := randomBytes(t, 3000)
	shares := mustSplit(t, secret, 5, 3)
	sets := subsets(5, 3)
	if len(sets) != 10 {
		t.Fatalf("%d subsets of 3 of 5, want 10", len(sets))
	}
	for _, set := range sets {
		// Forwards and backwards: the order of the shares does not matter.
		for _, order := range [][]int{set, {set[2], set[1], set[0]}} {
			got, err := Recover(pick(shares, order...))
			if err != nil {
				t.Fatalf("shares %v: %v", order, err)
			}
			if !bytes.Equal(got, secret) {
				t.Fatalf("shares %v: recovered a different secret", order)
			}
		}
	}
}

func TestAllSharesRecover(t *testing.T) {
	secret := randomBytes(t, 100)
	shares := mustSplit(t, secret, 5, 3)
	got, err := Recover(shares)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, secret) {
		t.Fatal("recovered a different secret")
	}
}

func TestEdgeParameters(t *testing.T) {
	for _, c := range []struct{ n, k, secretLen int }{
		{2, 2, 1},
		{32, 2, 10},
		{32, 32, 10},
		{3, 3, MaxSecretSize},
	} {
		secret := randomBytes(t, c.secretLen)
		shares := mustSplit(t, secret, c.n, c.k)
		// The last k shares, so that high indices are used.
		got, err := Recover(shares[c.n-c.k:])
		if err != nil {
			t.Fatalf("%d-of-%d: %v", c.k, c.n, err)
		}
		if !bytes.Equal(got, secret) {
			t.Fatalf("%d-of-%d: recovered a different secret", c.k, c.n)
		}
	}
}

func TestTooFewShares(t *testing.T) {
	shares := mustSplit(t, []byte("keyring"), 5, 3)
	for _, idx := range [][]int{{0, 4}, {3, 1}, {2}, {4}} {
		got, err := Recover(pick(shares, idx...))
		var ne *NotEnoughError
		if !errors.As(err, &ne) {
			t.Fatalf("shares %v: err = %v, want *NotEnoughError", idx, err)
		}
		if ne.Have != len(idx) || ne.Need != 3 {
			t.Errorf("shares %v: Have %d Need %d, want Have %d Need 3", idx, ne.Have, ne.Need, len(idx))
		}
		if !errors.Is(err, ErrNotEnough) || got != nil {
			t.Errorf("shares %v: errors.Is(ErrNotEnough) false or secret returned", idx)
		}
	}
	for _, none := range [][]*Share{nil, {}} {
		if _, err := Recover(none); !errors.Is(err, ErrNotEnough) {
			t.Errorf("no shares: err = %v, want ErrNotEnough", err)
		}
	}
}

// alteredValue is a share like s whose value is a different valid scalar
// (the original plus one).
func alteredValue(t *testing.T, s *Share) *Share {
	t.Helper()
	v := suite().NewScalar()
	if err := v.UnmarshalBinary(s.value); err != nil {
		t.Fatal(err)
	}
	v.Add(v, suite().NewScalar().SetUint64(1))
	b, err := v.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	c := *s
	c.value = b
	return &c
}

func TestAlteredValueIsInvalid(t *testing.T) {
	shares := mustSplit(t, []byte("keyring"), 5, 3)
	bad := alteredValue(t, shares[1])
	for _, set := range [][]*Share{
		{shares[0], bad, shares[2]},
		{shares[0], shares[2], shares[3], bad}, // not among the first three used
	} {
		_, err := Recover(set)
		if !errors.Is(err, ErrInvalidShare) {
			t.Fatalf("err = %v, want ErrInvalidShare", err)
		}
		assertNoValues(t, err, shares...)
		assertNoValues(t, err, bad)
	}
	if _, err := bad.MarshalText(); !errors.Is(err, ErrInvalidShare) {
		t.Errorf("MarshalText of an altered share: err = %v, want ErrInvalidShare", err)
	}
}

func TestChangedIndexIsInvalid(t *testing.T) {
	shares := mustSplit(t, []byte("keyring"), 5, 3)
	moved := *shares[0]
	moved.Index = 4 // index 4 is free in the set below, but the value is f(1)
	_, err := Recover([]*Share{&moved, shares[1], shares[2]})
	if !errors.Is(err, ErrInvalidShare) {
		t.Fatalf("err = %v, want ErrInvalidShare", err)
	}
}

func TestChangedEscrowIDIsRefused(t *testing.T) {
	shares := mustSplit(t, []byte("keyring"), 3, 2)
	for i := range shares {
		c := *shares[i]
		c.EscrowID = strings.Repeat("0", 32)
		shares[i] = &c
	}
	if _, err := Recover(shares); !errors.Is(err, ErrInvalidShare) {
		t.Fatalf("err = %v, want ErrInvalidShare", err)
	}
}

func TestMixedEscrows(t *testing.T) {
	secret := []byte("keyring")
	a := mustSplit(t, secret, 5, 3)
	b := mustSplit(t, secret, 5, 3) // the same secret, another escrow
	c := mustSplit(t, secret, 6, 3) // another total
	for name, set := range map[string][]*Share{
		"two escrows":       {a[0], a[1], b[2]},
		"other escrow last": {a[0], a[1], a[2], b[3]},
		"one of each":       {a[0], b[1]},
		"other total":       {a[0], a[1], c[2]},
	} {
		_, err := Recover(set)
		if !errors.Is(err, ErrMixed) {
			t.Errorf("%s: err = %v, want ErrMixed", name, err)
		}
	}
}

func TestDuplicateIndexRefusedWithoutPanic(t *testing.T) {
	shares := mustSplit(t, []byte("keyring"), 5, 3)
	copyOf0 := *shares[0]
	for name, set := range map[string][]*Share{
		"same pointer":         {shares[0], shares[0], shares[1]},
		"equal copy":           {shares[0], &copyOf0, shares[1]},
		"three times":          {shares[2], shares[2], shares[2]},
		"enough besides":       {shares[0], shares[1], shares[2], shares[1]},
		"too few and a twin":   {shares[0], shares[0]},
		"altered twin":         {shares[0], alteredValue(t, shares[0]), shares[1]},
		"duplicate at the end": {shares[3], shares[4], shares[0], shares[4]},
	} {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("%s: panic: %v", name, p)
				}
			}()
			_, err := Recover(set)
			if !errors.Is(err, ErrDuplicate) {
				t.Errorf("%s: err = %v, want ErrDuplicate", name, err)
			}
		}()
	}
}

func TestNilAndZeroSharesRefused(t *testing.T) {
	shares := mustSplit(t, []byte("keyring"), 3, 2)
	for name, set := range map[string][]*Share{
		"nil":  {shares[0], nil},
		"zero": {shares[0], {}},
	} {
		if _, err := Recover(set); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		}
	}
}

func TestCreatedDoesNotMatter(t *testing.T) {
	secret := []byte("keyring")
	shares := mustSplit(t, secret, 3, 2)
	later := *shares[1]
	later.Created = testTime.Add(time.Hour)
	got, err := Recover([]*Share{shares[0], &later})
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Recover = %q, %v", got, err)
	}
}

func TestSplitRefuses(t *testing.T) {
	ok := []byte("keyring")
	for _, c := range []struct {
		name   string
		secret []byte
		n, k   int
		now    time.Time
	}{
		{"k=1", ok, 5, 1, testTime},
		{"k=0", ok, 5, 0, testTime},
		{"k=-1", ok, 5, -1, testTime},
		{"k>n", ok, 3, 4, testTime},
		{"n=33", ok, 33, 3, testTime},
		{"n=33 k=33", ok, 33, 33, testTime},
		{"n=0", ok, 0, 2, testTime},
		{"nil secret", nil, 5, 3, testTime},
		{"empty secret", []byte{}, 5, 3, testTime},
		{"secret too large", make([]byte, MaxSecretSize+1), 5, 3, testTime},
		{"zero time", ok, 5, 3, time.Time{}},
		{"year 10000", ok, 5, 3, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		shares, err := Split(c.secret, c.n, c.k, c.now)
		if err == nil || shares != nil {
			t.Errorf("%s: Split succeeded", c.name)
		} else if !strings.HasPrefix(err.Error(), "escrow: ") {
			t.Errorf("%s: error %q lacks the escrow: prefix", c.name, err)
		}
	}
}

// TestFewerThanThresholdRevealNothingTrivially checks what can honestly be
// tested about secrecy: every split is fresh, share files do not contain the
// secret, and their sizes depend only on the secret's length. It does not
// (and cannot) test the cryptographic claim itself; see docs/escrow.md.
func TestFewerThanThresholdRevealNothingTrivially(t *testing.T) {
	secretA := []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA keyring one")
	secretB := []byte("BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB keyring two")
	a1 := mustSplit(t, secretA, 5, 3)
	a2 := mustSplit(t, secretA, 5, 3)
	b := mustSplit(t, secretB, 5, 3)

	// The same secret split twice: nothing in common.
	if a1[0].EscrowID == a2[0].EscrowID || bytes.Equal(a1[0].envelope, a2[0].envelope) {
		t.Error("two splits of one secret share an escrow ID or an envelope")
	}
	for i := range a1 {
		if bytes.Equal(a1[i].value, a2[i].value) {
			t.Errorf("share %d has the same value in two splits", i+1)
		}
	}
	for j := range a1[0].commitments {
		if bytes.Equal(a1[0].commitments[j], a2[0].commitments[j]) {
			t.Errorf("commitment %d is the same in two splits", j)
		}
	}

	// Different secrets of one length: same-size envelopes and files.
	if len(a1[0].envelope) != len(secretA)+28 || len(b[0].envelope) != len(a1[0].envelope) {
		t.Errorf("envelope sizes %d and %d, want %d", len(a1[0].envelope), len(b[0].envelope), len(secretA)+28)
	}
	for i := range a1 {
		ta, tb := mustMarshal(t, a1[i]), mustMarshal(t, b[i])
		if len(ta) != len(tb) {
			t.Errorf("share %d: file sizes %d and %d differ", i+1, len(ta), len(tb))
		}
		for _, leak := range [][]byte{secretA, secretA[:16], []byte(hex.EncodeToString(secretA[:16]))} {
			if bytes.Contains(ta, leak) || bytes.Contains(a1[i].envelope, leak) {
				t.Errorf("share %d contains (part of) the secret", i+1)
			}
		}
	}

	// K−1 shares are refused; adding a share of another escrow does not help.
	if _, err := Recover(pick(a1, 0, 1)); !errors.Is(err, ErrNotEnough) {
		t.Errorf("two shares: err = %v, want ErrNotEnough", err)
	}
	if _, err := Recover([]*Share{a1[0], a1[1], a2[2]}); !errors.Is(err, ErrMixed) {
		t.Errorf("two shares and a stranger: err = %v, want ErrMixed", err)
	}
}

func TestShareStringHidesValue(t *testing.T) {
	shares := mustSplit(t, []byte("keyring"), 3, 2)
	s := shares[1]
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		out := fmt.Sprintf(verb, s)
		if strings.Contains(out, hex.EncodeToString(s.value)) || strings.Contains(out, hex.EncodeToString([]byte(hex.EncodeToString(s.value)))) {
			t.Errorf("%s prints the share value", verb)
		}
	}
	want := "escrow " + s.EscrowID + " share 2 of 3 (threshold 2)"
	if got := s.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("text", "share", s)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("json", "share", s)
	if strings.Contains(logs.String(), hex.EncodeToString(s.value)) || !strings.Contains(logs.String(), s.EscrowID) {
		t.Errorf("slog output leaks the share value or lacks the description:\n%s", logs.String())
	}
	var nilShare *Share
	if got := nilShare.String(); got != "escrow share <nil>" {
		t.Errorf("nil String() = %q", got)
	}
}

func TestFileName(t *testing.T) {
	shares := mustSplit(t, []byte("keyring"), 5, 3)
	want := "escrow-" + shares[3].EscrowID[:8] + "-share-4-of-5.txt"
	if got := shares[3].FileName(); got != want {
		t.Errorf("FileName() = %q, want %q", got, want)
	}
	evil := &Share{EscrowID: "../../etc/passwd", Index: 1, Total: 2}
	if got := evil.FileName(); got != "escrow-invalid-share-1-of-2.txt" {
		t.Errorf("FileName() of a bad ID = %q", got)
	}
}

// assertNoValues fails if err's message contains the hex of any share's
// value.
func assertNoValues(t *testing.T, err error, shares ...*Share) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range shares {
		if v := hex.EncodeToString(s.value); len(v) > 0 && strings.Contains(err.Error(), v) {
			t.Errorf("error %q contains share %d's value", err, s.Index)
		}
	}
}
