// Package pnr parses and validates Swedish personal identity numbers
// (personnummer) and coordination numbers (samordningsnummer), and normalizes
// them to the 12-digit form YYYYMMDDNNNC that callvault stores.
//
// A Number never prints its digits: String, GoString, Format and LogValue all
// redact, so a Number that reaches a log line, an error string or a %v of a
// struct shows "pnr:redacted". The digits are available only through
// Digits, which callers use where the number is genuinely needed (the
// catalog, a search). Errors returned by Parse never contain any digit.
package pnr

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Errors returned by Parse, always wrapped with a detail that says what is
// wrong; test with errors.Is. No error text contains a digit, so an error can
// be logged without leaking any part of the input.
var (
	// ErrFormat is returned when the input is not one of the accepted
	// shapes (10 or 12 digits, optionally with '-' or '+' before the last
	// four), or when a 12-digit number uses '+' for a person under 100.
	ErrFormat = errors.New("pnr: invalid format")
	// ErrChecksum is returned when the check digit does not match.
	ErrChecksum = errors.New("pnr: check digit does not match")
	// ErrDate is returned when the birth date does not exist or lies in
	// the future.
	ErrDate = errors.New("pnr: invalid date")
)

// redacted is what every printing method shows instead of the digits.
const redacted = "pnr:redacted"

// mask is XOR-ed into the stored value. Its top bit is set and every valid
// number is below 10^12 < 2^40, so a stored value is never 0 (the zero
// Number means "no number").
const mask uint64 = 0x9e3779b97f4a7c15

// Number is a validated personnummer or samordningsnummer. The zero value
// means "no number". Numbers are comparable with ==: two Numbers are equal
// exactly when their 12-digit forms are equal.
//
// Every way fmt, slog or a %v of an enclosing struct can print a Number
// shows a redacted placeholder, never the digits.
type Number struct {
	// v holds the 12 digits as an integer, XOR-ed with mask. Storing an
	// integer rather than a string matters: fmt cannot call Format on a
	// Number held in an unexported struct field and prints the raw field
	// instead, which then shows an unrelated integer, not the digits.
	// This guards against accidental logging only, not against a reader
	// of process memory.
	v uint64
}

// Parse validates s as a personnummer or samordningsnummer and returns it
// normalized. Surrounding white space is ignored. Accepted shapes are
// YYMMDDNNNC, YYMMDD-NNNC, YYMMDD+NNNC, YYYYMMDDNNNC, YYYYMMDD-NNNC and
// YYYYMMDD+NNNC; anything else is ErrFormat.
//
// The check digit C is the Luhn digit (weights 2,1,2,1,…) over YYMMDDNNN;
// a mismatch is ErrChecksum. A day of 61–91 marks a samordningsnummer for day
// 1–31. The date must exist in its year and not be after now's calendar date
// (in now's location), else ErrDate.
//
// For the 10-digit shapes the century is chosen relative to now: with '-' or
// no separator, the latest year ending in YY such that the birth date is not
// after now; with '+' (the person is 100 or older), 100 years before that.
// A 12-digit number with '+' is accepted only if the person has turned 100
// by now, else ErrFormat.
func Parse(s string, now time.Time) (Number, error) {
	s = strings.TrimSpace(s)
	var body string
	var sep byte
	switch len(s) {
	case 10, 12:
		body = s
	case 11, 13:
		i := len(s) - 5
		sep = s[i]
		if sep != '-' && sep != '+' {
			return Number{}, fmt.Errorf("%w: only '-' or '+' may separate the last four digits", ErrFormat)
		}
		body = s[:i] + s[i+1:]
	default:
		return Number{}, fmt.Errorf("%w: wrong number of characters", ErrFormat)
	}
	for i := range len(body) {
		if body[i] < '0' || body[i] > '9' {
			return Number{}, fmt.Errorf("%w: unexpected character", ErrFormat)
		}
	}

	ten := body[len(body)-10:]
	if !luhnValid(ten) {
		return Number{}, ErrChecksum
	}

	month := time.Month(atoi(ten[2:4]))
	day := atoi(ten[4:6])
	if day > 60 { // samordningsnummer: the day plus 60
		day -= 60
	}
	nowY, nowM, nowD := now.Date()
	year := 0
	if len(body) == 12 {
		year = atoi(body[:4])
	} else {
		// The latest year ending in yy that is not after now's year,
		// moved back a century if the birthday is later this year.
		yy := atoi(ten[:2])
		year = nowY - ((nowY-yy)%100+100)%100
		if after(year, month, day, nowY, nowM, nowD) {
			year -= 100
		}
		if sep == '+' {
			year -= 100
		}
	}

	if year < 0 {
		return Number{}, fmt.Errorf("%w: year out of range", ErrDate)
	}
	if month < time.January || month > time.December {
		return Number{}, fmt.Errorf("%w: month out of range", ErrDate)
	}
	if day < 1 || day > daysIn(year, month) {
		return Number{}, fmt.Errorf("%w: day out of range", ErrDate)
	}
	if after(year, month, day, nowY, nowM, nowD) {
		return Number{}, fmt.Errorf("%w: date is in the future", ErrDate)
	}
	if len(body) == 12 && sep == '+' && after(year+100, month, day, nowY, nowM, nowD) {
		return Number{}, fmt.Errorf("%w: '+' separator used for a person under one hundred", ErrFormat)
	}

	var v uint64
	if len(body) == 10 {
		v = uint64(year / 100)
	}
	for i := range len(body) {
		v = v*10 + uint64(body[i]-'0')
	}
	return Number{v: v ^ mask}, nil
}

// luhnValid reports whether the last digit of the ASCII digits in ten is the
// Luhn check digit of the others, with weights 2,1,2,1,… from the left.
func luhnValid(ten string) bool {
	sum := 0
	for i := range len(ten) {
		d := int(ten[i] - '0')
		if i%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// atoi converts a short string of ASCII digits, already validated.
func atoi(s string) int {
	n := 0
	for i := range len(s) {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// after reports whether date a is after date b.
func after(ay int, am time.Month, ad int, by int, bm time.Month, bd int) bool {
	if ay != by {
		return ay > by
	}
	if am != bm {
		return am > bm
	}
	return ad > bd
}

// daysIn returns the number of days in month m of year y (proleptic Gregorian).
func daysIn(y int, m time.Month) int {
	switch m {
	case time.February:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	default:
		return 31
	}
}

// value returns the 12 digits as an integer; only valid if !n.IsZero().
func (n Number) value() uint64 { return n.v ^ mask }

// Digits returns the number in its 12-digit form YYYYMMDDNNNC (for a
// samordningsnummer DD is the day plus 60), or "" for the zero Number.
// Parse(n.Digits(), now) returns n again for any now not before the birth
// date.
func (n Number) Digits() string {
	if n.IsZero() {
		return ""
	}
	var b [12]byte
	v := n.value()
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[:])
}

// IsZero reports whether n is the zero Number, which holds no number.
func (n Number) IsZero() bool { return n.v == 0 }

// IsCoordination reports whether n is a samordningsnummer (its day is the
// birth day plus 60). It is false for the zero Number.
func (n Number) IsCoordination() bool {
	return !n.IsZero() && (n.value()/10000)%100 > 60
}

// String returns "pnr:redacted", or "pnr:none" for the zero Number; never
// the digits.
func (n Number) String() string {
	if n.IsZero() {
		return "pnr:none"
	}
	return redacted
}

// GoString returns a redacted Go-syntax placeholder; never the digits.
func (n Number) GoString() string {
	if n.IsZero() {
		return "pnr.Number{}"
	}
	return "pnr.Number{" + redacted + "}"
}

// Format implements fmt.Formatter so that every verb and flag (%v, %+v, %#v,
// %s, %q, %d, %x, …) prints the redacted form.
func (n Number) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		io.WriteString(f, n.GoString())
	case verb == 'q':
		io.WriteString(f, strconv.Quote(n.String()))
	default:
		io.WriteString(f, n.String())
	}
}

// LogValue implements slog.LogValuer so that slog handlers, including the
// JSON handler, log the redacted form.
func (n Number) LogValue() slog.Value { return slog.StringValue(n.String()) }

var (
	_ fmt.Stringer   = Number{}
	_ fmt.GoStringer = Number{}
	_ fmt.Formatter  = Number{}
	_ slog.LogValuer = Number{}
)
