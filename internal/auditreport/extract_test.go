package auditreport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"callvault/internal/audit"
	"callvault/internal/auditreport"
)

// extractNow is when the test extracts are made.
var extractNow = at(20, 10, 0, 0)

// names is the directory of the test: unit B's name is hostile.
func names(id string) string {
	return map[string]string{
		provider: "Region Test",
		unitA:    "Sjukvårdsrådgivningen A",
		unitB:    "<script>alert('B')</script>",
		nurseA:   "Anna Andersson",
		nurseB:   "Bo Berg",
	}[id]
}

// row is an extract entry with its time as text, for exact comparison.
type row struct {
	Index                  int64
	Time                   string
	Provider, Unit         string
	Staff, StaffName       string
	Action, Text           string
	Purpose, PurposeText   string
	Recording              string
	Emergency              bool
	UnitName, ProviderName string
	HasEmergencyText       bool
}

func rowsOf(x *auditreport.PatientExtract) []row {
	var out []row
	for _, e := range x.Entries {
		out = append(out, row{Index: e.Index, Time: e.Time.Format("2006-01-02 15:04:05 MST"), Provider: e.CareProvider, Unit: e.CareUnit,
			Staff: e.Staff, StaffName: e.StaffName, Action: e.Action, Text: e.ActionText, Purpose: e.Purpose, PurposeText: e.PurposeText,
			Recording: e.RecordingID, Emergency: e.Emergency, UnitName: e.CareUnitName, ProviderName: e.CareProviderName,
			HasEmergencyText: e.EmergencyText != ""})
	}
	return out
}

func TestExtract(t *testing.T) {
	h := scripted()
	const (
		search = "sökte efter dina samtal"
		read   = "läste uppgifter om ett samtal"
		play   = "lyssnade på en inspelning"
		export = "exporterade en inspelning"
		care   = "vård och behandling"
		hostB  = "<script>alert('B')</script>"
		unitAN = "Sjukvårdsrådgivningen A"
	)
	withStaff := []row{
		{2, "2025-03-10 08:00:00 CET", provider, unitA, nurseA, "Anna Andersson", "search", search, "care", care, "", false, unitAN, "Region Test", false},
		{3, "2025-03-10 08:01:00 CET", provider, unitA, nurseA, "Anna Andersson", "read-metadata", read, "care", care, r1, false, unitAN, "Region Test", false},
		{4, "2025-03-10 08:02:00 CET", provider, unitA, nurseA, "Anna Andersson", "play", play, "care", care, r1, false, unitAN, "Region Test", false},
		{5, "2025-03-10 08:30:00 CET", provider, unitA, nurseA, "Anna Andersson", "play", play, "care", care, r1, false, unitAN, "Region Test", false},
		{6, "2025-03-10 09:15:00 CET", provider, unitB, nurseB, "Bo Berg", "search", search, "care", care, "", true, hostB, "Region Test", true},
		{7, "2025-03-10 09:16:00 CET", provider, unitB, nurseB, "Bo Berg", "read-metadata", read, "care", care, r1, true, hostB, "Region Test", true},
		{39, "2025-03-14 13:00:00 CET", provider, unitA, nurseA, "Anna Andersson", "export", export, "complaint", "klagomålsutredning", r1, false, unitAN, "Region Test", false},
	}
	noStaff := func(rows []row) []row {
		out := slices.Clone(rows)
		for i := range out {
			out[i].Staff, out[i].StaffName = "", ""
		}
		return out
	}
	noNames := func(rows []row) []row {
		out := noStaff(rows)
		for i := range out {
			out[i].UnitName, out[i].ProviderName = "", ""
		}
		return out
	}
	tests := []struct {
		name       string
		patient    string
		opts       auditreport.ExtractOptions
		want       []row
		wantDenied int
	}{
		{"P1 with staff", p1, auditreport.ExtractOptions{Names: names, ShowStaff: true, Now: extractNow}, withStaff, 1},
		{"P1 without staff", p1, auditreport.ExtractOptions{Names: names, Now: extractNow}, noStaff(withStaff), 1},
		{"P1 without names", p1, auditreport.ExtractOptions{Now: extractNow}, noNames(withStaff), 1},
		{"P1 on Monday 09:00–10:00", p1, auditreport.ExtractOptions{Names: names, Now: extractNow, From: at(10, 9, 0, 0), To: at(10, 10, 0, 0)},
			noStaff(withStaff[4:6]), 1},
		{"P1 from Tuesday", p1, auditreport.ExtractOptions{Names: names, Now: extractNow, From: at(11, 0, 0, 0)}, noStaff(withStaff[6:]), 0},
		{"P2: one denial only", p2, auditreport.ExtractOptions{Now: extractNow}, nil, 1},
		{"P4: protected, two accesses", p4, auditreport.ExtractOptions{Now: extractNow}, []row{
			{37, "2025-03-12 15:00:00 CET", provider, unitA, "", "", "search", search, "care", care, "", false, "", "", false},
			{38, "2025-03-12 15:01:00 CET", provider, unitA, "", "", "play", play, "care", care, r4, false, "", "", false},
		}, 0},
		{"patient not in the log", "198112189876", auditreport.ExtractOptions{Now: extractNow}, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x, err := auditreport.Extract(context.Background(), h, tc.patient, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := rowsOf(x); !slices.Equal(got, tc.want) {
				t.Errorf("rows:\n got %+v\nwant %+v", got, tc.want)
			}
			if x.Denied != tc.wantDenied {
				t.Errorf("denied = %d, want %d", x.Denied, tc.wantDenied)
			}
			if want := tc.patient[:8] + "-" + tc.patient[8:]; x.Personnummer != want {
				t.Errorf("personnummer = %q, want %q", x.Personnummer, want)
			}
			if x.StaffShown != tc.opts.ShowStaff || !x.GeneratedAt.Equal(extractNow) || x.GeneratedAt.Location().String() != "Europe/Stockholm" {
				t.Errorf("staff shown %v, generated %v", x.StaffShown, x.GeneratedAt)
			}
		})
	}
}

// TestExtractOutputs checks what every writer leaves out: other patients,
// the emergency reason, and staff unless shown.
func TestExtractOutputs(t *testing.T) {
	h := scripted()
	for _, showStaff := range []bool{false, true} {
		x, err := auditreport.Extract(context.Background(), h, p1, auditreport.ExtractOptions{Names: names, ShowStaff: showStaff, Now: extractNow})
		if err != nil {
			t.Fatal(err)
		}
		for name, write := range map[string]func(io.Writer) error{"json": x.WriteJSON, "csv": x.WriteCSV, "html": x.WriteHTML} {
			var b bytes.Buffer
			if err := write(&b); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			out := b.String()
			// The CSV is the rows only; JSON and HTML name the patient.
			if got := strings.Contains(out, "19121212-1212"); got != (name != "csv") {
				t.Errorf("%s: contains the patient's own personnummer = %v", name, got)
			}
			for _, p := range otherPatients() {
				for _, form := range []string{p, p[2:], p[:8] + "-" + p[8:], p[2:8] + "-" + p[8:]} {
					if strings.Contains(out, form) {
						t.Errorf("%s: contains another patient's personnummer", name)
					}
				}
			}
			if strings.Contains(out, "Medvetslös") {
				t.Errorf("%s: contains the emergency reason", name)
			}
			for _, staff := range []string{nurseA, nurseB, "Anna Andersson", "Bo Berg"} {
				if got := strings.Contains(out, staff); got != showStaff {
					t.Errorf("%s, ShowStaff %v: contains %q = %v", name, showStaff, staff, got)
				}
			}
		}
	}
}

func TestExtractCSV(t *testing.T) {
	x, err := auditreport.Extract(context.Background(), scripted(), p1, auditreport.ExtractOptions{Names: names, Now: extractNow, From: at(10, 9, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := x.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	want := "loggpost,tidpunkt,vårdgivare,vårdgivare_namn,vårdenhet,vårdenhet_namn,personal,personal_namn,åtgärd,ändamål,nödåtkomst,inspelning\r\n" +
		"6,2025-03-10 09:15:00,SE9999990001-VG01,Region Test,SE9999990001-VE0B,<script>alert('B')</script>,,,sökte efter dina samtal,vård och behandling,ja,\r\n" +
		"7,2025-03-10 09:16:00,SE9999990001-VG01,Region Test,SE9999990001-VE0B,<script>alert('B')</script>,,,läste uppgifter om ett samtal,vård och behandling,ja," + r1 + "\r\n" +
		"39,2025-03-14 13:00:00,SE9999990001-VG01,Region Test,SE9999990001-VE0A,Sjukvårdsrådgivningen A,,,exporterade en inspelning,klagomålsutredning,nej," + r1 + "\r\n"
	if b.String() != want {
		t.Errorf("csv:\n got %q\nwant %q", b.String(), want)
	}
}

func TestExtractCSVFormula(t *testing.T) {
	h := history{{Index: 0, Time: at(10, 8, 0, 0), Action: "play", Outcome: audit.Allowed, User: nurseA, CareProvider: provider,
		CareUnit: unitA, Patient: p1, RecordingID: r1, Purpose: "care"}}
	x, err := auditreport.Extract(context.Background(), h, p1, auditreport.ExtractOptions{Now: extractNow, ShowStaff: true,
		Names: func(id string) string {
			return map[string]string{unitA: "=HYPERLINK(\"x\")", nurseA: "@SUM(1)", provider: "-1"}[id]
		}})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := x.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	want := "0,2025-03-10 08:00:00,SE9999990001-VG01,'-1,SE9999990001-VE0A,\"'=HYPERLINK(\"\"x\"\")\",SE9999990001-N0A1,'@SUM(1),lyssnade på en inspelning,vård och behandling,nej," + r1 + "\r\n"
	if _, got, _ := strings.Cut(b.String(), "\r\n"); got != want {
		t.Errorf("csv row:\n got %q\nwant %q", got, want)
	}
}

func TestExtractJSON(t *testing.T) {
	x, err := auditreport.Extract(context.Background(), scripted(), p1, auditreport.ExtractOptions{Now: extractNow, To: at(10, 8, 1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := x.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"personnummer": "19121212-1212", "generated_at": "2025-03-20T10:00:00+01:00", "to": "2025-03-10T08:01:00+01:00",
		"staff_shown": false, "denied_attempts": float64(0),
		"entries": []any{map[string]any{"log_index": float64(2), "time": "2025-03-10T08:00:00+01:00", "care_provider": provider,
			"care_unit": unitA, "action": "search", "action_text": "sökte efter dina samtal", "purpose": "care",
			"purpose_text": "vård och behandling", "emergency_access": false}},
	}
	if !jsonEqual(got, want) {
		t.Errorf("json:\n got %v\nwant %v", got, want)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestExtractHTML(t *testing.T) {
	x, err := auditreport.Extract(context.Background(), scripted(), p1, auditreport.ExtractOptions{Names: names, ShowStaff: true, Now: extractNow})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := x.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()

	// It parses: the page is well-formed, every element closed, so a
	// strict XML decoder (with HTML's entities) reads it to the end.
	d := xml.NewDecoder(strings.NewReader(out))
	d.Entity = xml.HTMLEntity
	var lang string
	var elements, rows int
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("html does not parse: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			elements++
			if se.Name.Local == "html" {
				for _, a := range se.Attr {
					if a.Name.Local == "lang" {
						lang = a.Value
					}
				}
			}
			if se.Name.Local == "tr" {
				rows++
			}
		}
	}
	if lang != "sv" {
		t.Errorf(`<html lang=%q>, want "sv"`, lang)
	}
	if rows != 1+7 {
		t.Errorf("%d table rows, want a header and 7", rows)
	}

	for _, want := range []string{
		"@page { size: A4; margin: 18mm }",
		"thead { display: table-header-group; }",
		"break-inside: avoid",
		"sökte efter dina samtal", "läste uppgifter om ett samtal", "lyssnade på en inspelning", "exporterade en inspelning",
		"vård och behandling", "klagomålsutredning",
		"Nödåtkomst", "patientdatalagen 8 kap. 5 §", "Integritetsskyddsmyndigheten",
		"19121212-1212", "2025-03-10 09:15",
		"&lt;script&gt;alert(&#39;B&#39;)&lt;/script&gt;",
		"Dessutom försökte någon 1 gång",
		"Anna Andersson", nurseA,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("html lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "src=", "href=", "http:", "https:", "@import", "url(", "<nav", "191212121212", "Medvetslös"} {
		if strings.Contains(out, bad) {
			t.Errorf("html contains %q", bad)
		}
	}
}

func TestExtractHTMLEmpty(t *testing.T) {
	x, err := auditreport.Extract(context.Background(), scripted(), "198112189876", auditreport.ExtractOptions{Now: extractNow})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := x.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"Loggen visar inte att någon har tagit del av dina inspelade samtal.", "19811218-9876"} {
		if !strings.Contains(out, want) {
			t.Errorf("html lacks %q", want)
		}
	}
	for _, bad := range []string{"<table", "Nödåtkomst", "nekades"} {
		if strings.Contains(out, bad) {
			t.Errorf("html contains %q", bad)
		}
	}
}

func TestExtractInvalid(t *testing.T) {
	for _, tc := range []struct {
		name    string
		patient string
		opts    auditreport.ExtractOptions
	}{
		{"10 digits", "1212121212", auditreport.ExtractOptions{Now: extractNow}},
		{"with a dash", "19121212-1212", auditreport.ExtractOptions{Now: extractNow}},
		{"bad check digit", "191212121213", auditreport.ExtractOptions{Now: extractNow}},
		{"born after now", "202606159990", auditreport.ExtractOptions{Now: extractNow}},
		{"empty", "", auditreport.ExtractOptions{Now: extractNow}},
		{"inverted range", p1, auditreport.ExtractOptions{Now: extractNow, From: at(12, 0, 0, 0), To: at(11, 0, 0, 0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := auditreport.Extract(context.Background(), scripted(), tc.patient, tc.opts)
			if !errors.Is(err, auditreport.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if strings.ContainsAny(err.Error(), "0123456789") {
				t.Errorf("error %q contains a digit", err)
			}
		})
	}
}

// failing is a Source whose every read fails.
type failing struct{ err error }

func (f failing) Range(context.Context, time.Time, time.Time, func(*audit.Event) error) error {
	return f.err
}
func (f failing) ForPatient(context.Context, string, func(*audit.Event) error) error { return f.err }

func TestSourceErrors(t *testing.T) {
	boom := errors.New("log unavailable")
	ctx := context.Background()
	from, to := at(10, 0, 0, 0), at(17, 0, 0, 0)
	if _, err := auditreport.Extract(ctx, failing{boom}, p1, auditreport.ExtractOptions{Now: extractNow}); !errors.Is(err, boom) || strings.Contains(err.Error(), "1212") {
		t.Errorf("extract: %v", err)
	}
	if _, err := auditreport.Review(ctx, failing{boom}, from, to, auditreport.DefaultRules()); !errors.Is(err, boom) {
		t.Errorf("review: %v", err)
	}
	if _, err := auditreport.Incident(ctx, failing{boom}, from, to, auditreport.Actor{}); !errors.Is(err, boom) {
		t.Errorf("incident: %v", err)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := auditreport.Extract(canceled, scripted(), p1, auditreport.ExtractOptions{Now: extractNow}); !errors.Is(err, context.Canceled) {
		t.Errorf("extract, canceled: %v", err)
	}
	if _, err := auditreport.Review(canceled, scripted(), from, to, auditreport.DefaultRules()); !errors.Is(err, context.Canceled) {
		t.Errorf("review, canceled: %v", err)
	}
	if _, err := auditreport.Incident(canceled, scripted(), from, to, auditreport.Actor{}); !errors.Is(err, context.Canceled) {
		t.Errorf("incident, canceled: %v", err)
	}
}
