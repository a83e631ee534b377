package site_test

import (
	"errors"
	"regexp"
	"testing"

	"callvault/internal/site"
	"callvault/internal/site/sitetest"
)

func TestValidName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		"0123456789abcdef0123456789abcdef",
		"00000000000000000000000000000000",
		"ffffffffffffffffffffffffffffffff",
		sitetest.RandomName(),
	} {
		if err := site.ValidName(name); err != nil {
			t.Errorf("ValidName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range sitetest.InvalidNames {
		if err := site.ValidName(name); !errors.Is(err, site.ErrInvalidName) {
			t.Errorf("ValidName(%q) = %v, want ErrInvalidName", name, err)
		}
	}
}

func TestValidNameMessages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, want string }{
		{"", "invalid blob name: length 0, want 32 lowercase hex characters"},
		{"../x", "invalid blob name: length 4, want 32 lowercase hex characters"},
		{"0701234567", "invalid blob name: length 10, want 32 lowercase hex characters"},
		{"0123456789abcdef0123456789abcdeF", "invalid blob name: byte 31 is not lowercase hex"},
		{"0123456789abcdef/123456789abcdef", "invalid blob name: byte 16 is not lowercase hex"},
	} {
		err := site.ValidName(tc.name)
		if err == nil || err.Error() != tc.want {
			t.Errorf("ValidName(%q) = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// validNameRef is the definition of a valid name, written independently.
var validNameRef = regexp.MustCompile(`^[0-9a-f]{32}$`)

// nameErrorRef matches every error message ValidName may return: fixed text
// and numbers only, so the rejected input is never echoed.
var nameErrorRef = regexp.MustCompile(`^invalid blob name: (length [0-9]+, want 32 lowercase hex characters|byte [0-9]+ is not lowercase hex)$`)

func FuzzValidName(f *testing.F) {
	for _, name := range sitetest.InvalidNames {
		f.Add(name)
	}
	f.Add("0123456789abcdef0123456789abcdef")
	f.Add("197001011234")
	f.Fuzz(func(t *testing.T, name string) {
		err := site.ValidName(name)
		if want := validNameRef.MatchString(name); (err == nil) != want {
			t.Fatalf("ValidName(%q) = %v, want valid = %v", name, err, want)
		}
		if err != nil && !nameErrorRef.MatchString(err.Error()) {
			t.Fatalf("ValidName(%q) error %q has an unexpected form", name, err)
		}
	})
}

func TestCheckJurisdictions(t *testing.T) {
	t.Parallel()
	se := newFS(t, "a", "SE")
	no := newFS(t, "b", "NO")
	us := newFS(t, "c", "US")
	for _, tc := range []struct {
		name    string
		stores  []site.Store
		allowed []string
		want    string // "" for nil
	}{
		{"SE allowed", []site.Store{se}, []string{"SE"}, ""},
		{"two allowed", []site.Store{se, no}, []string{"SE", "NO"}, ""},
		{"no stores", nil, []string{"SE"}, ""},
		{"US refused", []site.Store{se, us}, []string{"SE"},
			`site c: jurisdiction "US" is not allowed (allowed: SE)`},
		{"two refused", []site.Store{us, no}, []string{"SE"},
			`site c: jurisdiction "US" is not allowed (allowed: SE)` + "\n" +
				`site b: jurisdiction "NO" is not allowed (allowed: SE)`},
		{"empty allowed refuses all", []site.Store{se}, nil,
			`site a: jurisdiction "SE" is not allowed (allowed: none)`},
		{"compared exactly", []site.Store{se}, []string{"se"},
			`site a: jurisdiction "SE" is not allowed (allowed: se)`},
		{"nil store", []site.Store{se, nil}, []string{"SE"}, "site: store 1 is nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := site.CheckJurisdictions(tc.stores, tc.allowed)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("CheckJurisdictions = %q, want %q", got, tc.want)
			}
		})
	}
}
