package recording

import (
	"errors"
	"strings"
	"testing"
	"time"

	"callvault/internal/pnr"
)

var now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func good() Metadata {
	return Metadata{
		CallID: "abc-123@sbc", CareProvider: "SE9999990001-VG01", CareUnit: "SE9999990001-VE0A",
		Patient: "20170110-2384", CallerNumber: "+46701740699", Staff: []string{"SE9999990001-N0A1"},
		StartedAt: now.Add(-10 * time.Minute), EndedAt: now.Add(-6 * time.Minute), Direction: Inbound, PrivacyNotice: "ivr-2026-01",
	}
}

func TestValidate(t *testing.T) {
	v, err := good().Validate(now)
	if err != nil {
		t.Fatal(err)
	}
	if v.Patient != "201701102384" || v.PatientNumber.Digits() != "201701102384" {
		t.Fatalf("patient not normalized: %q", v.Patient)
	}
	noPatient := good()
	noPatient.Patient, noPatient.CallerNumber = "", ""
	if v, err := noPatient.Validate(now); err != nil || !v.PatientNumber.IsZero() {
		t.Fatalf("unidentified caller: %v", err)
	}

	cases := []struct {
		field string
		mod   func(*Metadata)
		cause error
	}{
		{"call_id", func(m *Metadata) { m.CallID = "" }, nil},
		{"call_id", func(m *Metadata) { m.CallID = "has space" }, nil},
		{"call_id", func(m *Metadata) { m.CallID = strings.Repeat("x", 257) }, nil},
		{"care_provider", func(m *Metadata) { m.CareProvider = "" }, nil},
		{"care_unit", func(m *Metadata) { m.CareUnit = "VE0A" }, nil},
		{"patient", func(m *Metadata) { m.Patient = "20170110-2385" }, pnr.ErrChecksum},
		{"patient", func(m *Metadata) { m.Patient = "not a number" }, pnr.ErrFormat},
		{"caller_number", func(m *Metadata) { m.CallerNumber = "0701740699" }, nil},
		{"staff", func(m *Metadata) { m.Staff = nil }, nil},
		{"staff[1]", func(m *Metadata) { m.Staff = append(m.Staff, "nurse") }, nil},
		{"started_at", func(m *Metadata) { m.StartedAt = time.Time{} }, nil},
		{"ended_at", func(m *Metadata) { m.EndedAt = m.StartedAt.Add(-time.Second) }, nil},
		{"ended_at", func(m *Metadata) { m.StartedAt = m.EndedAt.Add(-25 * time.Hour) }, nil},
		{"ended_at", func(m *Metadata) { m.EndedAt = now.Add(time.Hour) }, nil},
		{"direction", func(m *Metadata) { m.Direction = "sideways" }, nil},
		{"privacy_notice", func(m *Metadata) { m.PrivacyNotice = strings.Repeat("v", 65) }, nil},
	}
	for _, c := range cases {
		m := good()
		c.mod(&m)
		_, err := m.Validate(now)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("want field %s, got %v", c.field, err)
			continue
		}
		if c.cause != nil && !errors.Is(err, c.cause) {
			t.Errorf("%s: cause %v, want %v", c.field, err, c.cause)
		}
		for _, secret := range []string{"2017", "2384", "2385", "701740"} {
			if strings.Contains(fe.Msg, secret) || strings.Contains(err.Error(), secret) {
				t.Errorf("%s: message echoes the value: %s", c.field, err)
			}
		}
	}
}

func TestIDs(t *testing.T) {
	a, err := NewID()
	if err != nil || !ValidID(a) {
		t.Fatalf("%q %v", a, err)
	}
	if b, _ := NewID(); a == b {
		t.Fatal("repeated ID")
	}
	for _, bad := range []string{"", "../../etc/passwd", strings.Repeat("A", 32), strings.Repeat("a", 31), strings.Repeat("a", 33), strings.Repeat("g", 32)} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q)", bad)
		}
	}
}
