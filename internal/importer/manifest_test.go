package importer

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func readAll(t *testing.T, manifest, format string, m *Mapping) ([]Row, error) {
	t.Helper()
	var rows []Row
	err := ReadManifest(strings.NewReader(manifest), format, m, func(r Row) error {
		rows = append(rows, r)
		return nil
	})
	return rows, err
}

func TestReadCSV(t *testing.T) {
	manifest := "\ufefffile,call_id,started_at,ended_at,patient,caller_number,staff,care_provider,care_unit\n" +
		"a/1.wav,c1,2021-01-02T10:00:00Z,2021-01-02T10:04:00Z,201701102384,+46701740610,SE9999990001-N0A1;SE9999990001-N0B1,SE9999990001-VG01,SE9999990001-VE0A\n" +
		"a/2.wav,c2\n" +
		"\"a/3\nwav\",c3,,,,,,,\n" +
		"a/4.wav,\"bare\"quote,,,,,,,\n" +
		"a/5.wav,c5,,,,,,,\n"
	rows, err := readAll(t, manifest, "csv", DefaultMapping())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 {
		t.Fatalf("%d rows: %+v", len(rows), rows)
	}
	if r := rows[0]; r.Line != 2 || r.File != "a/1.wav" || r.Err != "" || r.Fields[FieldStaff] != "SE9999990001-N0A1;SE9999990001-N0B1" {
		t.Errorf("row 1: %+v", r)
	}
	if r := rows[1]; r.Line != 3 || r.Err != "2 fields, the header has 9" {
		t.Errorf("short row: %+v", r)
	}
	if r := rows[2]; r.Line != 4 || r.File != "a/3\nwav" {
		t.Errorf("quoted newline: %+v", r)
	}
	if r := rows[3]; r.Line != 6 || !strings.HasPrefix(r.Err, "not valid CSV") {
		t.Errorf("bare quote: %+v", r)
	}
	if r := rows[4]; r.Line != 7 || r.File != "a/5.wav" {
		t.Errorf("row after a broken one: %+v", r)
	}
}

func TestReadCSVHeaderErrors(t *testing.T) {
	for _, tc := range []struct{ manifest, want string }{
		{"file,call_id,personnummer\n", `unknown column 3 ("personnummer")`},
		{"call_id,started_at\n", "no file column"},
		{"file,file\n", "given twice"},
		{"", "manifest header"},
	} {
		_, err := readAll(t, tc.manifest, "csv", DefaultMapping())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.manifest, err, tc.want)
		}
	}
	// A header column holding a personnummer is not echoed.
	_, err := readAll(t, "file,19121212-1212\n", "csv", DefaultMapping())
	if err == nil || strings.Contains(err.Error(), "1212") {
		t.Errorf("header value echoed: %v", err)
	}
}

func TestReadJSONL(t *testing.T) {
	manifest := `{"file": "a.wav", "staff": ["SE9999990001-N0A1", "SE9999990001-N0B1"], "patient": "201701102384"}
not json

{"file": "b.wav", "nurse": "x"}
{"file": "c.wav", "call_id": 12}
{"file": "d.wav", "patient": null}
` + `{"file": "` + strings.Repeat("x", MaxLine) + `"}
{"file": "e.wav"}`
	rows, err := readAll(t, manifest, "jsonl", DefaultMapping())
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		line      int
		file, err string
	}{
		{1, "a.wav", ""}, {2, "", "not a JSON object"}, {4, "b.wav", `unknown key "nurse"`},
		{5, "c.wav", "call_id: not a string"}, {6, "d.wav", ""}, {7, "", "longer than 65536 bytes"}, {8, "e.wav", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows: %+v", len(rows), rows)
	}
	for i, w := range want {
		if r := rows[i]; r.Line != w.line || r.File != w.file || r.Err != w.err {
			t.Errorf("row %d: line %d file %.20q err %q, want %+v", i, r.Line, r.File, r.Err, w)
		}
	}
	if rows[0].Fields[FieldStaff] != "SE9999990001-N0A1;SE9999990001-N0B1" {
		t.Errorf("staff list: %q", rows[0].Fields[FieldStaff])
	}
}

func TestMappingMetadata(t *testing.T) {
	m, err := ParseMapping([]byte(`{
		"columns": {"file": "Fil", "started_at": "Start", "patient": "Pnr"},
		"file_pattern": "^(?P<caller_number>0[0-9-]+)_.*\\.mp3$",
		"time_layout": "2006-01-02 15:04",
		"duration_from_audio": true,
		"defaults": {"care_provider": "SE9999990001-VG01", "care_unit": "SE9999990001-VE0A", "staff": "SE9999990001-N0A1"}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	var rows []Row
	err = ReadManifest(strings.NewReader("Fil;x\n"), "csv", m, func(r Row) error { rows = append(rows, r); return nil })
	if err == nil {
		t.Fatal("a header without the mapped file column was accepted")
	}
	err = ReadManifest(strings.NewReader("Fil,Start,Pnr,Ignored\n2019/070-1740610_x.mp3,2019-07-01 14:30,20170110-2384,whatever\n"), "csv", m,
		func(r Row) error { rows = append(rows, r); return nil })
	if err != nil || len(rows) != 1 {
		t.Fatal(err, rows)
	}
	sum := strings.Repeat("ab", 32)
	md, err := m.Metadata(rows[0], sum, 150*time.Second+400*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	stockholm, _ := time.LoadLocation("Europe/Stockholm")
	start := time.Date(2019, 7, 1, 14, 30, 0, 0, stockholm)
	if md.CallerNumber != "+46701740610" || !md.StartedAt.Equal(start) || !md.EndedAt.Equal(start.Add(150*time.Second)) ||
		md.CallID != "import-"+sum[:32] || md.SourceSHA256 != sum || md.Direction != "inbound" || md.Patient != "20170110-2384" ||
		len(md.Staff) != 1 || md.CareUnit != "SE9999990001-VE0A" {
		t.Fatalf("metadata: %+v", md)
	}
	if _, err := md.Validate(time.Now()); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if _, err := m.Metadata(Row{File: "a/other.wav"}, sum, 0); err == nil || err.Error() != "file name does not match file_pattern" {
		t.Errorf("non-matching name: %v", err)
	}
	if _, err := m.Metadata(Row{File: "0701740610_.mp3", Fields: map[string]string{FieldStartedAt: "yesterday"}}, sum, 0); err == nil ||
		strings.Contains(err.Error(), "yesterday") {
		t.Errorf("bad time: %v", err)
	}
}

func TestParseMappingErrors(t *testing.T) {
	for _, tc := range []struct{ mapping, want string }{
		{`{"columns": {"phone": "x"}}`, `unknown field "phone"`},
		{`{"columns": {"file": ""}}`, "no column name"},
		{`{"columns": {}, "file_pattern": "("}`, "file_pattern"},
		{`{"columns": {}, "file_pattern": "(?P<file>.*)"}`, `group "file"`},
		{`{"columns": {}}`, "file column is required"},
		{`{"columns": {"file": "f"}, "time_zone": "Mars/Olympus"}`, "time_zone"},
		{`{"columns": {"file": "f"}, "defaults": {"file": "x"}}`, "defaults"},
		{`{"columns": {"file": "f"}, "extra": 1}`, "unknown field"},
		{`{"columns": {"file": "f"}} {}`, "data after"},
	} {
		if _, err := ParseMapping([]byte(tc.mapping)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.mapping, err, tc.want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for p, ok := range map[string]bool{
		"a/b.wav": true, "b.wav": true, "": false, "/etc/passwd": false, "../x.wav": false, "a/../../x": false,
		"a//b": false, "a/./b": false, "a/": false, ".": false, "a\\b": false, "a\x00b": false, "\xff.wav": false,
	} {
		if _, err := CleanPath(p); (err == nil) != ok {
			t.Errorf("CleanPath(%q): %v", p, err)
		}
	}
}

func TestE164(t *testing.T) {
	for in, want := range map[string]string{
		"0701740610": "+46701740610", "070-174 06 10": "+46701740610", "+46701740610": "+46701740610",
		"0046701740610": "+46701740610", "": "", "abc": "abc",
	} {
		if got := e164(in); got != want {
			t.Errorf("e164(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzReadManifest(f *testing.F) {
	f.Add([]byte("file,call_id\na.wav,c1\n"), false)
	f.Add([]byte("file,call_id,started_at,ended_at,patient,caller_number,staff,care_provider,care_unit\n\"a\"\"b\",x,,,,,,,\n"), false)
	f.Add([]byte(`{"file": "a.wav", "staff": ["x"]}`+"\n{"), true)
	f.Fuzz(func(t *testing.T, data []byte, jsonl bool) {
		format := "csv"
		if jsonl {
			format = "jsonl"
		}
		last := 0
		err := ReadManifest(bytes.NewReader(data), format, DefaultMapping(), func(r Row) error {
			if r.Line <= last && format == "jsonl" {
				t.Fatalf("line %d after %d", r.Line, last)
			}
			last = r.Line
			if r.Err == "" {
				if _, ok := r.Fields[FieldFile]; ok {
					t.Fatal("file left among the fields")
				}
				if _, err := CleanPath(r.File); err == nil {
					m := DefaultMapping()
					m.Metadata(r, strings.Repeat("0", 64), time.Second)
				}
			}
			return nil
		})
		_ = err
	})
}

func FuzzParseMapping(f *testing.F) {
	f.Add([]byte(`{"columns": {"file": "Fil"}, "file_pattern": "^(?P<caller_number>[0-9]+)_", "time_layout": "2006"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMapping(data)
		if err != nil {
			return
		}
		if m.loc == nil || m.TimeLayout == "" || m.StaffSeparator == "" {
			t.Fatalf("accepted mapping not initialised: %+v", m)
		}
		m.Metadata(Row{File: "0701740610_x.wav", Fields: map[string]string{}}, strings.Repeat("0", 64), 0)
	})
}
