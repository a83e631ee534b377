package pnr

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// now is the fixed "today" of every test: 15 June 2026.
var now = time.Date(2026, time.June, 15, 12, 0, 0, 0, time.UTC)

// The numbers below are Skatteverket's published test personnummer
// (19121212-1212, 19811218-9876, 701063-2391) or synthetic ones whose check
// digit was computed with the Luhn algorithm.
func TestParse(t *testing.T) {
	tests := []struct {
		in     string
		digits string // "" when an error is expected
		coord  bool
		err    error
	}{
		// Accepted shapes.
		{in: "19121212-1212", digits: "191212121212"},
		{in: "191212121212", digits: "191212121212"},
		{in: "121212-1212", digits: "201212121212"},
		{in: "1212121212", digits: "201212121212"},
		{in: "121212+1212", digits: "191212121212"},
		{in: "19121212+1212", digits: "191212121212"},
		{in: "  19811218-9876\t\n", digits: "198112189876"},
		{in: "8112189876", digits: "198112189876"},
		{in: "811218-9876", digits: "198112189876"},
		{in: "19811218-9876", digits: "198112189876"},

		// Samordningsnummer.
		{in: "701063-2391", digits: "197010632391", coord: true},
		{in: "197010632391", digits: "197010632391", coord: true},
		{in: "7001912398", digits: "197001912398", coord: true}, // 31 January + 60
		{in: "7001922397", err: ErrDate},                        // day 92
		{in: "2002901235", err: ErrDate},                        // 30 February + 60
		{in: "2002891238", digits: "202002891238", coord: true}, // 29 February 2020 + 60
		{in: "1212603458", err: ErrDate},                        // day 60 is neither

		// Century selection relative to now (15 June 2026).
		{in: "260615-9990", digits: "202606159990"}, // born today
		{in: "260616-9999", digits: "192606169999"}, // tomorrow in 2026, so 1926
		{in: "260615+9990", digits: "192606159990"},
		{in: "260616+9999", digits: "182606169999"},
		{in: "990101-9993", digits: "199901019993"},
		{in: "010101-9990", digits: "200101019990"},
		{in: "010101+9990", digits: "190101019990"},

		// '+' with 12 digits: only from the 100th birthday on.
		{in: "19260615+9990", digits: "192606159990"},
		{in: "19260616+9999", err: ErrFormat},
		{in: "20121212+1212", err: ErrFormat},

		// Leap days.
		{in: "20000229-2381", digits: "200002292381"},
		{in: "000229-2381", digits: "200002292381"},
		{in: "0402292387", digits: "200402292387"},
		{in: "000229+2381", err: ErrDate}, // 1900 was not a leap year
		{in: "19000229-2381", err: ErrDate},
		{in: "230229-2384", err: ErrDate},
		{in: "20230229-2384", err: ErrDate},

		// Other impossible dates.
		{in: "20261231-9992", err: ErrDate}, // future
		{in: "20260616-9999", err: ErrDate}, // tomorrow
		{in: "1213123456", err: ErrDate},    // month 13
		{in: "1200001236", err: ErrDate},    // month 00
		{in: "1201001235", err: ErrDate},    // day 00
		{in: "1212323453", err: ErrDate},    // day 32

		// Check digit.
		{in: "19121212-1213", err: ErrChecksum},
		{in: "121212-1211", err: ErrChecksum},
		{in: "701063-2390", err: ErrChecksum},
		{in: "19811218-9867", err: ErrChecksum}, // transposed digits

		// Format.
		{in: "", err: ErrFormat},
		{in: "   ", err: ErrFormat},
		{in: "19121212-12A2", err: ErrFormat},
		{in: "abcdefghij", err: ErrFormat},
		{in: "19121212 1212", err: ErrFormat},
		{in: "19121212_1212", err: ErrFormat},
		{in: "1912-12-12-1212", err: ErrFormat},
		{in: "19121212--1212", err: ErrFormat},
		{in: "1912121-21212", err: ErrFormat},
		{in: "-1212121212", err: ErrFormat},
		{in: "+121212121", err: ErrFormat},
		{in: "121212121", err: ErrFormat},
		{in: "12121212121", err: ErrFormat},
		{in: "1912121212120", err: ErrFormat},
		{in: "１２１２１２-１２１２", err: ErrFormat},      // full-width digits
		{in: "121212\u22121212", err: ErrFormat}, // minus sign, not hyphen
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, err := Parse(tt.in, now)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Parse error = %v, want %v", err, tt.err)
				}
				if strings.ContainsAny(err.Error(), "0123456789") {
					t.Errorf("error text %q contains a digit", err)
				}
				if !n.IsZero() {
					t.Errorf("Parse returned a non-zero Number with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse error = %v", err)
			}
			if got := n.Digits(); got != tt.digits {
				t.Errorf("Digits = %q, want %q", got, tt.digits)
			}
			if got := n.IsCoordination(); got != tt.coord {
				t.Errorf("IsCoordination = %v, want %v", got, tt.coord)
			}
			if n.IsZero() {
				t.Errorf("IsZero = true")
			}
		})
	}
}

func TestErrorTexts(t *testing.T) {
	for _, err := range []error{ErrFormat, ErrChecksum, ErrDate} {
		if !strings.HasPrefix(err.Error(), "pnr: ") {
			t.Errorf("%q lacks the package prefix", err)
		}
		if strings.ContainsAny(err.Error(), "0123456789") {
			t.Errorf("%q contains a digit", err)
		}
	}
	_, err := Parse("19121212-1213", now)
	if got, want := err.Error(), "pnr: check digit does not match"; got != want {
		t.Errorf("checksum error = %q, want %q", got, want)
	}
	_, err = Parse("20261231-9992", now)
	if got, want := err.Error(), "pnr: invalid date: date is in the future"; got != want {
		t.Errorf("future error = %q, want %q", got, want)
	}
}

func TestZero(t *testing.T) {
	var n Number
	if !n.IsZero() || n.Digits() != "" || n.IsCoordination() {
		t.Errorf("zero Number: IsZero=%v Digits=%q IsCoordination=%v", n.IsZero(), n.Digits(), n.IsCoordination())
	}
	if got := fmt.Sprint(n); got != "pnr:none" {
		t.Errorf("Sprint(zero) = %q", got)
	}
	a, _ := Parse("19121212-1212", now)
	b, _ := Parse("121212+1212", now)
	c, _ := Parse("121212-1212", now)
	if a != b || a == c || a == (Number{}) {
		t.Errorf("equality: a==b %v, a==c %v", a == b, a == c)
	}
}

func TestRedaction(t *testing.T) {
	n, err := Parse("19811218-9876", now)
	if err != nil {
		t.Fatal(err)
	}
	type exported struct {
		PNR  Number
		Name string
	}
	type unexported struct {
		pnr  Number
		name string
	}
	type nested struct {
		Inner unexported
		Ptr   *Number
		List  []Number
		Map   map[Number]int
	}
	values := []any{
		n, &n,
		exported{PNR: n, Name: "x"},
		&exported{PNR: n},
		unexported{pnr: n, name: "x"},
		nested{Inner: unexported{pnr: n}, Ptr: &n, List: []Number{n}, Map: map[Number]int{n: 1}},
		[]Number{n},
		fmt.Errorf("wrapped: %v", n),
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%X", "%o", "%10.3v", "%T"}
	for _, v := range values {
		for _, verb := range verbs {
			out := fmt.Sprintf(verb, v)
			assertRedacted(t, verb, out)
		}
		assertRedacted(t, "Sprint", fmt.Sprint(v))
		assertRedacted(t, "Sprintln", fmt.Sprintln(v))
	}
	for _, want := range []struct{ verb, out string }{
		{"%v", "pnr:redacted"},
		{"%s", "pnr:redacted"},
		{"%q", `"pnr:redacted"`},
		{"%+v", "pnr:redacted"},
		{"%#v", "pnr.Number{pnr:redacted}"},
		{"%d", "pnr:redacted"},
	} {
		if got := fmt.Sprintf(want.verb, n); got != want.out {
			t.Errorf("Sprintf(%s) = %q, want %q", want.verb, got, want.out)
		}
	}
	if got := fmt.Sprintf("%v", exported{PNR: n, Name: "x"}); got != "{pnr:redacted x}" {
		t.Errorf("struct = %q", got)
	}
	if got := fmt.Sprintf("%+v", exported{PNR: n, Name: "x"}); got != "{PNR:pnr:redacted Name:x}" {
		t.Errorf("struct %%+v = %q", got)
	}

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("ingest", "pnr", n, "ptr", &n, "rec", exported{PNR: n})
		l.Info("ingest", slog.Any("pnr", n), slog.String("s", n.String()))
	}
	assertRedacted(t, "slog", buf.String())
	if !strings.Contains(buf.String(), "pnr:redacted") {
		t.Errorf("slog output lacks the placeholder: %s", buf.String())
	}
}

// assertRedacted fails if out contains the test number 19811218-9876 or any
// recognizable part of it.
func assertRedacted(t *testing.T, what, out string) {
	t.Helper()
	for _, part := range []string{"811218", "9876", "8112189876"} {
		if strings.Contains(out, part) {
			t.Errorf("%s printed %q, which contains %q", what, out, part)
		}
	}
}

func ExampleParse() {
	now := time.Date(2026, time.June, 15, 0, 0, 0, 0, time.UTC)
	n, err := Parse("121212+1212", now)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(n.Digits())
	fmt.Println(n)

	_, err = Parse("121212-1213", now)
	fmt.Println(err)
	// Output:
	// 191212121212
	// pnr:redacted
	// pnr: check digit does not match
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"19121212-1212", "191212121212", "121212-1212", "121212+1212", "19121212+1212",
		"701063-2391", "197010632391", "20000229-2381", "000229+2381", "20261231-9992",
		"19121212-1213", "19121212-12A2", "", " 8112189876 ", "260616+9999", "19260616+9999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s, now)
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrDate) {
				t.Fatalf("error %q is none of the sentinels", err)
			}
			if strings.ContainsAny(err.Error(), "0123456789") {
				t.Fatalf("error %q contains a digit", err)
			}
			if !n.IsZero() {
				t.Fatalf("non-zero Number returned with an error")
			}
			return
		}
		d := n.Digits()
		if len(d) != 12 || strings.Trim(d, "0123456789") != "" {
			t.Fatalf("Digits = %q, not 12 digits", d)
		}
		if n.IsZero() {
			t.Fatalf("accepted number is zero")
		}
		if !strings.HasSuffix(strings.TrimSpace(s), d[8:]) {
			t.Fatalf("Digits %q does not end with the input's last four", d)
		}
		m, err := Parse(d, now)
		if err != nil {
			t.Fatalf("Parse(Digits()) error = %v", err)
		}
		if m != n {
			t.Fatalf("Parse(Digits()) = %q, want the same Number", m.Digits())
		}
		if out := fmt.Sprintf("%v %s %q %+v %#v %d", n, n, n, n, n, n); strings.ContainsAny(out, "0123456789") {
			t.Fatalf("formatted Number %q contains a digit", out)
		}
	})
}
