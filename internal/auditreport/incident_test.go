package auditreport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"callvault/internal/audit"
	"callvault/internal/auditreport"
)

func TestIncident(t *testing.T) {
	h := scripted()
	from, to := at(10, 0, 0, 0), at(17, 0, 0, 0)
	type counts struct{ subjects, records, events, noPatient int }
	tests := []struct {
		name       string
		actor      auditreport.Actor
		want       counts
		recordings string // id:plays/reads/exports, in report order
		patients   string // patient:recordings/revealed-by-search, in report order
		actions    string // action:allowed/denied
		categories int
	}{
		{"nurse A", auditreport.Actor{User: nurseA}, counts{3, 3, 8, 0},
			"[1111:2/1/1 4444:1/0/0 3333:1/0/0]", "[191212121212:1/1 197010632391:1/1 201701102384:1/0]",
			"[export:1/0 play:4/0 read-metadata:1/0 search:2/0]", 2},
		{"nurse A from 10.0.0.0/8, IPv4-mapped export included", auditreport.Actor{User: nurseA, Address: netip.MustParsePrefix("10.0.0.0/8")}, counts{3, 3, 8, 0},
			"[1111:2/1/1 4444:1/0/0 3333:1/0/0]", "[191212121212:1/1 197010632391:1/1 201701102384:1/0]",
			"[export:1/0 play:4/0 read-metadata:1/0 search:2/0]", 2},
		{"nurse A from another network: nothing", auditreport.Actor{User: nurseA, Address: netip.MustParsePrefix("192.0.2.0/24")}, counts{},
			"[]", "[]", "[]", 0},
		{"nurse B, emergency access", auditreport.Actor{User: nurseB}, counts{1, 1, 2, 0},
			"[1111:0/1/0]", "[191212121212:1/1]", "[play:0/2 read-metadata:1/0 search:1/0]", 1},
		{"nurse C, searches only", auditreport.Actor{User: nurseC}, counts{10, 0, 10, 0},
			"[]", fmt.Sprint(func() []string {
				var out []string
				for k := 1; k < 21; k += 2 {
					out = append(out, synthetic(k)+":0/1")
				}
				return out
			}()), "[search:21/0]", 1},
		{"unknown certificate, upper case", auditreport.Actor{CertFingerprint: strings.ToUpper(fingerprint)}, counts{},
			"[]", "[]", "[authenticate:0/5]", 0},
		{"unknown client's network", auditreport.Actor{Address: netip.MustParsePrefix("192.0.2.0/24")}, counts{},
			"[]", "[]", "[authenticate:0/5]", 0},
		{"anyone", auditreport.Actor{}, counts{13, 3, 20, 0},
			"[1111:2/2/1 4444:1/0/0 3333:1/0/0]", "", // patients checked by count only
			"[authenticate:0/5 directory.block:1/0 export:1/0 ingest:1/0 ingest.stored:1/0 play:4/2 read-metadata:2/0 search:24/0]", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := auditreport.Incident(context.Background(), h, from, to, tc.actor)
			if err != nil {
				t.Fatal(err)
			}
			if got := (counts{r.DataSubjects, r.Records, r.AccessEvents, r.RecordsWithoutPatient}); got != tc.want {
				t.Errorf("counts %+v, want %+v", got, tc.want)
			}
			var recs, pats, acts []string
			for _, rc := range r.Recordings {
				recs = append(recs, fmt.Sprintf("%s:%d/%d/%d", rc.RecordingID[:4], rc.Plays, rc.MetadataReads, rc.Exports))
			}
			for _, p := range r.Patients {
				pats = append(pats, fmt.Sprintf("%s:%d/%d", p.Patient, p.RecordingsRead, p.RevealedBySearch))
			}
			for _, a := range r.Actions {
				acts = append(acts, fmt.Sprintf("%s:%d/%d", a.Action, a.Allowed, a.Denied))
			}
			if got := fmt.Sprint(recs); got != tc.recordings {
				t.Errorf("recordings %s, want %s", got, tc.recordings)
			}
			if got := fmt.Sprint(pats); tc.patients != "" && got != tc.patients {
				t.Errorf("patients %s, want %s", got, tc.patients)
			}
			if got := fmt.Sprint(acts); got != tc.actions {
				t.Errorf("actions %s, want %s", got, tc.actions)
			}
			if len(r.Categories) != tc.categories {
				t.Errorf("categories %q", r.Categories)
			}
		})
	}
}

func TestIncidentDetails(t *testing.T) {
	r, err := auditreport.Incident(context.Background(), scripted(), at(10, 0, 0, 0), at(17, 0, 0, 0), auditreport.Actor{User: nurseA})
	if err != nil {
		t.Fatal(err)
	}
	rc := r.Recordings[0]
	if rc.RecordingID != r1 || rc.Patient != p1 || fmt.Sprint(rc.Users) != "["+nurseA+"]" || fmt.Sprint(rc.Events) != "[3 4 5 39]" ||
		!rc.First.Equal(at(10, 8, 1, 0)) || !rc.Last.Equal(at(14, 13, 0, 0)) {
		t.Errorf("recording R1: %+v", rc)
	}
	p := r.Patients[0]
	if p.Patient != p1 || p.MetadataReads != 1 || p.Plays != 2 || p.Exports != 1 || !p.First.Equal(at(10, 8, 0, 0)) || !p.Last.Equal(at(14, 13, 0, 0)) {
		t.Errorf("patient P1: %+v", p)
	}
	if !r.FirstAccess.Equal(at(10, 8, 0, 0)) || !r.LastAccess.Equal(at(15, 23, 10, 0)) || r.From.Location().String() != "Europe/Stockholm" {
		t.Errorf("first %v, last %v, from %v", r.FirstAccess, r.LastAccess, r.From)
	}
	if want := []string{auditreport.CategoryAudio, auditreport.CategoryMetadata}; fmt.Sprint(r.Categories) != fmt.Sprint(want) {
		t.Errorf("categories %q", r.Categories)
	}

	var c bytes.Buffer
	if err := r.WriteCSV(&c); err != nil {
		t.Fatal(err)
	}
	want := "personnummer,recordings_read,revealed_by_search,first_access,last_access,actions\r\n" +
		"19121212-1212,1,1,2025-03-10 08:00:00,2025-03-14 13:00:00,search=1 read-metadata=1 play=2 export=1\r\n" +
		"19701063-2391,1,1,2025-03-12 15:00:00,2025-03-12 15:01:00,search=1 play=1\r\n" +
		"20170110-2384,1,0,2025-03-15 23:10:00,2025-03-15 23:10:00,play=1\r\n"
	if c.String() != want {
		t.Errorf("csv:\n got %q\nwant %q", c.String(), want)
	}

	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Actor        map[string]any `json:"actor"`
		DataSubjects int            `json:"data_subjects"`
		Records      int            `json:"records"`
		AccessEvents int            `json:"access_events"`
		From         string         `json:"from"`
		Patients     []struct {
			Patient string `json:"patient"`
		} `json:"patients"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.DataSubjects != 3 || back.Records != 3 || back.AccessEvents != 8 || back.From != "2025-03-10T00:00:00+01:00" ||
		fmt.Sprint(back.Actor) != "map[user:"+nurseA+"]" || len(back.Patients) != 3 || back.Patients[0].Patient != p1 {
		t.Errorf("json: %+v", back)
	}

	var txt bytes.Buffer
	if err := r.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Window: 2025-03-10 00:00:00 – 2025-03-17 00:00:00 (Europe/Stockholm)",
		"Actor: user " + nurseA,
		"data subjects (distinct patients): 3",
		"records (distinct recordings read): 3",
		"access events: 8",
		"categories: " + auditreport.CategoryAudio + "; " + auditreport.CategoryMetadata,
		r1 + "  plays=2 metadata_reads=1 exports=1  2025-03-10 08:01:00 – 2025-03-14 13:00:00  by " + nurseA,
	} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, txt.String())
		}
	}
	for _, p := range append(otherPatients(), p1) {
		if strings.Contains(txt.String(), p) || strings.Contains(txt.String(), p[:8]+"-"+p[8:]) {
			t.Errorf("text names a patient")
		}
	}
}

func TestIncidentRecordingWithoutPatient(t *testing.T) {
	h := history{
		{Index: 0, Time: at(10, 8, 0, 0), Action: "play", Outcome: audit.Allowed, User: nurseA, RecordingID: r2},
		{Index: 1, Time: at(10, 8, 1, 0), Action: "search", Outcome: audit.Allowed, User: nurseA, Patient: p2, Detail: "garbled"},
		{Index: 2, Time: at(10, 8, 2, 0), Action: "search", Outcome: audit.Allowed, User: nurseA, Patient: p3, Detail: "hits=0 emergency_hits=0"},
		{Index: 3, Time: at(10, 8, 3, 0), Action: "play", Outcome: audit.Denied, User: nurseA, Patient: p1, RecordingID: r1},
	}
	r, err := auditreport.Incident(context.Background(), h, at(10, 0, 0, 0), at(11, 0, 0, 0), auditreport.Actor{})
	if err != nil {
		t.Fatal(err)
	}
	// The garbled search counts as revealing; the empty one and the
	// denial do not.
	if r.Records != 1 || r.RecordsWithoutPatient != 1 || r.DataSubjects != 1 || r.AccessEvents != 2 || r.Patients[0].Patient != p2 {
		t.Errorf("report: %+v", r)
	}
	var txt bytes.Buffer
	if err := r.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(txt.String(), "recordings read whose patient the log does not name: 1") {
		t.Errorf("text:\n%s", txt.String())
	}
}

func TestIncidentInvalid(t *testing.T) {
	for _, tc := range []struct {
		name     string
		actor    auditreport.Actor
		from, to bool // swap the range
	}{
		{"short fingerprint", auditreport.Actor{CertFingerprint: "abcd"}, false, false},
		{"non-hex fingerprint", auditreport.Actor{CertFingerprint: strings.Repeat("zz", 32)}, false, false},
		{"empty range", auditreport.Actor{}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from, to := at(10, 0, 0, 0), at(17, 0, 0, 0)
			if tc.from {
				from = to
			}
			if _, err := auditreport.Incident(context.Background(), scripted(), from, to, tc.actor); !errors.Is(err, auditreport.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}
