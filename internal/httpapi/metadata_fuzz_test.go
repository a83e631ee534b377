package httpapi

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
	"reflect"
	"strings"
	"testing"
	"time"

	"callvault/internal/archive"
	"callvault/internal/recording"
)

// validMetadata is an upload metadata part as docs/api.md describes it and
// `serve --dev` writes it (cmd/callvault/dev.go sampleMetadata); patient and
// number are the fictional test identities used there.
const validMetadata = `{
  "call_id": "dev-sample-call-1",
  "care_provider": "SE9999990001-VG01",
  "care_unit": "SE9999990001-VE0A",
  "patient": "191212121212",
  "caller_number": "+46701740605",
  "staff": ["SE9999990001-N0A1", "SE9999990001-N0A2"],
  "started_at": "2026-11-22T10:00:00Z",
  "ended_at": "2026-11-22T10:03:48.123456789Z",
  "direction": "inbound",
  "privacy_notice": "ivr-2026-01"
}`

// with returns validMetadata with the line of key replaced by line (or
// removed if line is "", which must not be the last line).
func with(t testing.TB, key, line string) string {
	t.Helper()
	var out []string
	found := false
	for l := range strings.Lines(validMetadata) {
		if strings.HasPrefix(strings.TrimSpace(l), `"`+key+`":`) {
			found = true
			if line != "" {
				if strings.HasSuffix(strings.TrimSpace(l), ",") {
					line += ","
				}
				out = append(out, "  "+line+"\n")
			}
			continue
		}
		out = append(out, l)
	}
	if !found {
		t.Fatalf("no key %q in validMetadata", key)
	}
	return strings.Join(out, "")
}

// digitRun reports the first run of six or more ASCII digits in s.
func digitRun(s string) (string, bool) {
	start := -1
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 && i-start >= 6 {
			return s[start:i], true
		}
		start = -1
	}
	return "", false
}

// checkParseError checks what every error of parseMetadata must be: an
// *archive.InvalidError or errBadRequestBody, and free of personal data. No
// fixed message of parseMetadata holds six digits in a row, so any such run
// in Error() came from the input (a personnummer or phone number, possibly
// JSON-escaped there); the check is therefore stricter than "not a run that
// appears in the input bytes".
func checkParseError(t testing.TB, in []byte, err error) {
	t.Helper()
	var inv *archive.InvalidError
	if !errors.As(err, &inv) && !errors.Is(err, errBadRequestBody) {
		t.Fatalf("error %q (%T) is neither *archive.InvalidError nor errBadRequestBody", err, err)
	}
	if run, ok := digitRun(err.Error()); ok {
		echoed := ""
		if bytes.Contains(in, []byte(run)) {
			echoed = " (verbatim from the input)"
		}
		t.Fatalf("error %q holds the digit run %q%s", err, run, echoed)
	}
}

func FuzzParseMetadata(f *testing.F) {
	for _, s := range []string{
		validMetadata,
		with(f, "patient", `"patient": "19121212-1212"`),
		with(f, "patient", ""),
		`{}`,
		`null`,
		``,
		`{`,
		validMetadata[:len(validMetadata)/2],
		`[]`,
		`"191212121212"`,
		`{"call_id": 191212121212}`,
		`{"staff": "SE9999990001-N0A1"}`,
		`{"staff": [191212121212]}`,
		`{"started_at": 1700000000}`,
		`{"started_at": "yesterday"}`,
		`{"ended_at": "2026-11-22T10:03:48"}`,
		`{"started_at": "191212121212"}`,
		`{"colour": "blue"}`,
		`{"patient_id": "191212121212"}`,
		`{"191212121212": true}`,
		`{"\u0031\u0039\u0031\u0032\u0031\u0032\u0031\u0032\u0031\u0032\u0031\u0032": 1}`,
		`{"+46701740605": "caller"}`,
		`{"patient": "191212121212", "patient": "198001019804"}`,
		validMetadata + ` {"patient": "198001019804"}`,
		"{\"call_id\": \"\xff\xfe\"}",
		`{"staff": [` + strings.Repeat(`"SE9999990001-N0A1",`, 40) + `"x"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := parseMetadata(bytes.NewReader(in))
		if err != nil {
			checkParseError(t, in, err)
			if !reflect.DeepEqual(m, recording.Metadata{}) {
				t.Fatalf("error %v with non-zero metadata %+v", err, m)
			}
			return
		}
		if len(in) > maxMetadata {
			t.Fatalf("accepted %d bytes, more than the %d-byte limit", len(in), maxMetadata)
		}
	})
}

func TestParseMetadata(t *testing.T) {
	m, err := parseMetadata(strings.NewReader(validMetadata))
	if err != nil {
		t.Fatal(err)
	}
	want := recording.Metadata{
		CallID:        "dev-sample-call-1",
		CareProvider:  "SE9999990001-VG01",
		CareUnit:      "SE9999990001-VE0A",
		Patient:       "191212121212",
		CallerNumber:  "+46701740605",
		Staff:         []string{"SE9999990001-N0A1", "SE9999990001-N0A2"},
		StartedAt:     time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		EndedAt:       time.Date(2026, 11, 22, 10, 3, 48, 123456789, time.UTC),
		Direction:     "inbound",
		PrivacyNotice: "ivr-2026-01",
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("parseMetadata =\n%+v\nwant\n%+v", m, want)
	}

	// A time with an offset keeps its instant and offset.
	m, err = parseMetadata(strings.NewReader(with(t, "started_at", `"started_at": "2026-11-22T11:00:00+01:00"`)))
	if err != nil {
		t.Fatal(err)
	}
	if _, off := m.StartedAt.Zone(); !m.StartedAt.Equal(want.StartedAt) || off != 3600 {
		t.Errorf("StartedAt = %v, want %v at offset +01:00", m.StartedAt, want.StartedAt)
	}

	// Optional fields may be absent; required ones are Validate's business.
	m, err = parseMetadata(strings.NewReader(with(t, "patient", "")))
	if err != nil {
		t.Fatal(err)
	}
	if m.Patient != "" || m.CallID != want.CallID {
		t.Errorf("without patient: %+v", m)
	}
	m, err = parseMetadata(strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, recording.Metadata{}) {
		t.Errorf("{} gave %+v, want the zero Metadata", m)
	}

	// Exactly the limit is accepted: the valid document padded with spaces.
	atLimit := validMetadata + strings.Repeat(" ", maxMetadata-len(validMetadata))
	if _, err := parseMetadata(strings.NewReader(atLimit)); err != nil {
		t.Errorf("%d bytes (the limit): %v", len(atLimit), err)
	}
}

func TestParseMetadataRefusals(t *testing.T) {
	for _, c := range []struct {
		name  string
		in    string
		field string
		msg   string
	}{
		{"bad started_at", with(t, "started_at", `"started_at": "22 Nov 2026 10:00"`), "started_at", "not an RFC 3339 time"},
		{"started_at without zone", with(t, "started_at", `"started_at": "2026-11-22T10:00:00"`), "started_at", "not an RFC 3339 time"},
		{"started_at a personnummer", with(t, "started_at", `"started_at": "191212121212"`), "started_at", "not an RFC 3339 time"},
		{"bad ended_at", with(t, "ended_at", `"ended_at": "soon"`), "ended_at", "not an RFC 3339 time"},
		{"unknown field", with(t, "privacy_notice", `"colour": "blue"`), "colour", "unknown field"},
		{"wrong type: staff a string", with(t, "staff", `"staff": "SE9999990001-N0A1"`), "staff", "wrong JSON type"},
		{"wrong type: staff of numbers", with(t, "staff", `"staff": [191212121212]`), "staff", "wrong JSON type"},
		{"wrong type: started_at a number", with(t, "started_at", `"started_at": 1763805600`), "started_at", "wrong JSON type"},
		{"wrong type: patient a number", with(t, "patient", `"patient": 191212121212`), "patient", "wrong JSON type"},
		{"over 64 KiB", validMetadata + strings.Repeat(" ", maxMetadata+1-len(validMetadata)), "metadata", "metadata part is larger than 65536 bytes"},
		{"far over 64 KiB", strings.Repeat("1", 1<<20), "metadata", "metadata part is larger than 65536 bytes"},
		{"not JSON", "patient=191212121212", "metadata", "not a valid JSON object"},
		{"empty", "", "metadata", "not a valid JSON object"},
		{"truncated", validMetadata[:len(validMetadata)-2], "metadata", "not a valid JSON object"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := parseMetadata(strings.NewReader(c.in))
			var inv *archive.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("error = %v (%T), want *archive.InvalidError", err, err)
			}
			if inv.Field != c.field || inv.Msg != c.msg {
				t.Errorf("InvalidError{Field: %q, Msg: %q}, want {%q, %q}", inv.Field, inv.Msg, c.field, c.msg)
			}
			if want := "archive: invalid " + c.field + ": " + c.msg; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err, want)
			}
			if !reflect.DeepEqual(m, recording.Metadata{}) {
				t.Errorf("metadata %+v returned with the error", m)
			}
			checkParseError(t, []byte(c.in), err)
		})
	}
}

// An unknown field is named in the error, the audit entry ("field=…") and
// the HTTP answer. A client that puts personal data in a key (a
// personnummer as key, e.g. from a mis-built map) must not get it echoed
// and logged.
func TestParseMetadataUnknownFieldNameNotEchoed(t *testing.T) {
	for _, key := range []string{
		"191212121212",
		"19121212-1212",
		"patient 198001019804",
		`\u0031\u0039\u0031\u0032\u0031\u0032\u0031\u0032\u0031\u0032\u0031\u0032`,
		"+46701740605",
	} {
		in := `{"` + key + `": true}`
		_, err := parseMetadata(strings.NewReader(in))
		var inv *archive.InvalidError
		if !errors.As(err, &inv) || inv.Msg != "unknown field" {
			t.Errorf("%s: error = %v, want *archive.InvalidError unknown field", in, err)
			continue
		}
		if run, ok := digitRun(err.Error()); ok {
			t.Errorf("%s: error %q echoes the digits %q", in, err, run)
		}
	}
}

// A read error of the part (a body that ends before its boundary) is
// errBadRequestBody, wrapping the cause.
func TestParseMetadataBodyEndsEarly(t *testing.T) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	pw, err := mw.CreateFormField("metadata")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(pw, validMetadata); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	cut := body.Bytes()[:bytes.Index(body.Bytes(), []byte(`"staff"`))]
	part, err := multipart.NewReader(bytes.NewReader(cut), mw.Boundary()).NextPart()
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseMetadata(part)
	if !errors.Is(err, errBadRequestBody) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("error = %v, want errBadRequestBody wrapping io.ErrUnexpectedEOF", err)
	}
	var inv *archive.InvalidError
	if errors.As(err, &inv) {
		t.Errorf("a broken body reported as invalid field %q", inv.Field)
	}
	if !reflect.DeepEqual(m, recording.Metadata{}) {
		t.Errorf("metadata %+v returned with the error", m)
	}
	checkParseError(t, cut, err)
}
