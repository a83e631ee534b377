package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"callvault/internal/auditreport"
)

// A scripted history of accesses through the API, then the patient log
// extract, the log follow-up (with a finding marked reviewed) and the
// incident report, over the API and the CLI, with every number asserted.
func TestAuditReportsScriptedHistory(t *testing.T) {
	const (
		p1 = testPatient    // two recordings in unit A
		p2 = "197010632391" // samordningsnummer; one recording in unit B; protected identity
	)
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	logPath := filepath.Join(root, "server.log")
	dev := startServer(t, dataDir, logPath) // the dev PKI, keyring and demo data
	dev.stop()

	// A production-style config whose usual hours are all day, every
	// day, so the outside-hours rule cannot depend on when the test runs.
	cfg := prodConfig(t, dataDir)
	cfg["audit"] = map[string]any{"review": map[string]any{"usual_hours": "00:00-24:00",
		"usual_days": []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}}}
	cfgPath := filepath.Join(root, "callvault.json")
	if err := os.WriteFile(cfgPath, mustJSON(t, cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := &server{t: t, dataDir: dataDir, addr: cfg["listen"].(string), opsAddr: cfg["ops_listen"].(string), logPath: logPath, waitErr: make(chan error, 1)}
	srv.cmd = exec.Command(binPath, "serve", "--config", cfgPath)
	startProcess(t, srv)

	start := time.Now().Add(-time.Second).UTC()
	upload := func(patient, unit string, seed uint64) string {
		t.Helper()
		r := srv.upload("capture", mustJSON(t, meta(patient, testCaller, unit)), noiseWAV(t, seed, 1))
		if r.status != http.StatusCreated {
			t.Fatalf("upload: %s", r)
		}
		return r.json(t)["id"].(string)
	}
	r1, r2, r3 := upload(p1, unitA, 101), upload(p1, unitA, 102), upload(p2, unitB, 103)
	expect := func(who, path string, status int, hdr ...string) {
		t.Helper()
		if r := srv.do(who, "GET", path, nil, hdr...); r.status != status {
			t.Fatalf("%s GET %s: %s, want %d", who, path, r, status)
		}
	}
	expect("nurse", "/v1/recordings?patient="+p1, 200, "X-Purpose", "care")
	expect("nurse", "/v1/recordings/"+r1+"/audio", 200, "X-Purpose", "care")
	expect("nurse", "/v1/recordings/"+r1+"/audio", 200, "X-Purpose", "complaint")
	expect("nurse", "/v1/recordings/"+r2, 200, "X-Purpose", "care")
	expect("nurse-b", "/v1/recordings/"+r1+"/audio", 403, "X-Purpose", "care")
	expect("nurse-b", "/v1/recordings/"+r1+"/audio", 200, "X-Purpose", "care", "X-Emergency-Reason", "Patienten ringer igen, journal behövs")
	expect("nurse-b", "/v1/recordings/"+r3+"/audio", 200, "X-Purpose", "care")
	expect("nurse-other", "/v1/recordings/"+r1+"/audio", 404, "X-Purpose", "care")
	out, err := exec.Command(binPath, "directory", "--config", cfgPath, "protect", "--patient", p2).CombinedOutput()
	if err != nil {
		t.Fatalf("directory protect: %v %s", err, out)
	}
	end := time.Now().Add(time.Minute).UTC()
	window := "from=" + url.QueryEscape(start.Format(time.RFC3339)) + "&to=" + url.QueryEscape(end.Format(time.RFC3339))

	// Only auditors get reports.
	for _, who := range []string{"nurse", "admin", "witness"} {
		expect(who, "/v1/audit/extract?patient="+p1, 403)
		expect(who, "/v1/audit/review?"+window, 403)
	}
	expect("auditor", "/v1/audit/extract?patient=201701102385", 400) // wrong check digit
	expect("auditor", "/v1/audit/review?from=yesterday", 400)
	expect("auditor", "/v1/audit/review", 400) // no window
	expect("auditor", "/v1/audit/extract?patient="+p1+"&format=pdf", 400)

	t.Run("patient log extract", func(t *testing.T) {
		r := srv.do("auditor", "GET", "/v1/audit/extract?patient="+p1, nil)
		if r.status != 200 {
			t.Fatal(r)
		}
		var x auditreport.PatientExtract
		if err := json.Unmarshal(r.body, &x); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range x.Entries {
			got = append(got, strings.Join([]string{e.Action, e.CareUnit, e.Purpose, e.RecordingID, boolWord(e.Emergency)}, " "))
		}
		want := []string{
			"search " + unitA + " care  -",
			"play " + unitA + " care " + r1 + " -",
			"play " + unitA + " complaint " + r1 + " -",
			"read-metadata " + unitA + " care " + r2 + " -",
			"play " + unitB + " care " + r1 + " emergency",
		}
		if !slices.Equal(got, want) {
			t.Fatalf("extract entries\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if x.Denied != 1 || x.Personnummer == "" || x.StaffShown {
			t.Fatalf("denied %d (want 1: nurse-b without a reason), staff shown %v", x.Denied, x.StaffShown)
		}
		html := srv.do("auditor", "GET", "/v1/audit/extract?patient="+p1+"&format=html", nil)
		for _, want := range []string{`lang="sv"`, "@page", "lyssnade på en inspelning", "sökte efter dina samtal", "Nödåtkomst", "Sjukvårdsrådgivning B (dev)"} {
			if !strings.Contains(string(html.body), want) {
				t.Errorf("HTML extract lacks %q", want)
			}
		}
		if strings.Contains(string(html.body), "journal behövs") || strings.Contains(string(html.body), p2) {
			t.Error("HTML extract shows the emergency reason or another patient")
		}
		if ct := html.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
		// The CLI gives the same rows. Its local operator sees every care
		// provider's events, so the other provider's refused attempt is
		// counted too.
		out, err := exec.Command(binPath, "audit", "--config", cfgPath, "extract", "--patient", p1, "--format", "json").Output()
		if err != nil {
			t.Fatal(err)
		}
		var cx auditreport.PatientExtract
		if err := json.Unmarshal(out, &cx); err != nil || len(cx.Entries) != 5 || cx.Denied != 2 {
			t.Fatalf("CLI extract: %d entries, %d denied (want 5, 2), %v", len(cx.Entries), cx.Denied, err)
		}
	})

	t.Run("log follow-up with a finding marked reviewed", func(t *testing.T) {
		review := func() auditreport.ReviewReport {
			t.Helper()
			r := srv.do("auditor", "GET", "/v1/audit/review?"+window, nil)
			if r.status != 200 {
				t.Fatal(r)
			}
			var rep auditreport.ReviewReport
			if err := json.Unmarshal(r.body, &rep); err != nil {
				t.Fatal(err)
			}
			return rep
		}
		rep := review()
		var got []string
		for _, f := range rep.Findings {
			got = append(got, f.Rule+" "+f.User+" "+f.CareUnit)
		}
		want := []string{
			auditreport.RuleEmergency + " " + hsaNurseB + " " + unitB,
			auditreport.RuleProtected + " " + hsaNurseB + " " + unitB,
		}
		if !slices.Equal(got, want) {
			t.Fatalf("findings %q, want %q", got, want)
		}
		emergency := rep.Findings[0]
		if len(emergency.Events) != 1 || emergency.Reviewed() {
			t.Fatalf("emergency finding %+v", emergency)
		}
		// A nurse cannot mark; a bad outcome is refused; the auditor marks.
		body := `{"finding": "` + emergency.ID + `", "outcome": "followed-up", "note": "Samtal med sjuksköterskan; åtkomsten var befogad."}`
		if r := srv.do("nurse", "POST", "/v1/audit/review/marks", strings.NewReader(body)); r.status != 403 {
			t.Fatalf("nurse marks: %s", r)
		}
		if r := srv.do("auditor", "POST", "/v1/audit/review/marks", strings.NewReader(`{"finding": "`+emergency.ID+`", "outcome": "fine"}`)); r.status != 400 {
			t.Fatalf("bad outcome: %s", r)
		}
		if r := srv.do("auditor", "POST", "/v1/audit/review/marks", strings.NewReader(body)); r.status != 201 {
			t.Fatalf("auditor marks: %s", r)
		}
		// The auditor's own refused requests above (a wrong check digit,
		// two bad windows, a bad format, a bad outcome) are five denials
		// within the hour: the follow-up reports its own user too.
		rep = review()
		if len(rep.Findings) != 3 || rep.Findings[0].ID != emergency.ID {
			t.Fatalf("findings after marking: %+v", rep.Findings)
		}
		if f := rep.Findings[2]; f.Rule != auditreport.RuleDenials || f.User != "SE9999990001-AUD1" || f.EventCount != 5 {
			t.Fatalf("third finding %+v, want the auditor's 5 denials", f)
		}
		m := rep.Findings[0].LastMark()
		if m == nil || m.Reviewer != "SE9999990001-AUD1" || m.Outcome != "followed-up" || m.Note != "Samtal med sjuksköterskan; åtkomsten var befogad." {
			t.Fatalf("mark %+v", m)
		}
		if rep.Findings[1].Reviewed() {
			t.Fatal("the protected-identity finding got the mark too")
		}
		// The CLI's review sees the same findings and the mark.
		out, err := exec.Command(binPath, "audit", "--config", cfgPath, "review", "--since", start.Format(time.RFC3339), "--until", end.Format(time.RFC3339), "--format", "json").Output()
		if err != nil {
			t.Fatal(err)
		}
		var cli auditreport.ReviewReport
		if err := json.Unmarshal(out, &cli); err != nil {
			t.Fatal(err)
		}
		if len(cli.Findings) != 3 || cli.Findings[0].ID != emergency.ID || !cli.Findings[0].Reviewed() {
			t.Fatalf("CLI review: %+v", cli.Findings)
		}
	})

	t.Run("incident report", func(t *testing.T) {
		incident := func(query string) auditreport.IncidentReport {
			t.Helper()
			r := srv.do("auditor", "GET", "/v1/audit/incident?"+window+"&format=json"+query, nil)
			if r.status != 200 {
				t.Fatal(r)
			}
			var rep auditreport.IncidentReport
			if err := json.Unmarshal(r.body, &rep); err != nil {
				t.Fatal(err)
			}
			return rep
		}
		b := incident("&user=" + hsaNurseB)
		if b.DataSubjects != 2 || b.Records != 2 || b.AccessEvents != 2 {
			t.Fatalf("nurse-b: %d subjects, %d records, %d events; want 2, 2, 2", b.DataSubjects, b.Records, b.AccessEvents)
		}
		var ids []string
		for _, rec := range b.Recordings {
			ids = append(ids, rec.RecordingID)
		}
		slices.Sort(ids)
		want := []string{r1, r3}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Fatalf("nurse-b read %v, want %v", ids, want)
		}
		all := incident("")
		if all.DataSubjects != 2 || all.Records != 3 || all.AccessEvents != 6 {
			t.Fatalf("anyone: %d subjects, %d records, %d events; want 2, 3, 6 (5 reads and 1 revealing search)", all.DataSubjects, all.Records, all.AccessEvents)
		}
		for _, rec := range all.Recordings {
			if rec.RecordingID == r1 && (rec.Plays != 3 || rec.MetadataReads != 0) {
				t.Fatalf("R1: %d plays, %d metadata reads; want 3, 0", rec.Plays, rec.MetadataReads)
			}
		}
		byAddr := incident("&address=127.0.0.0/8")
		if byAddr.Records != 3 {
			t.Fatalf("by address: %d records", byAddr.Records)
		}
		// The letters CSV, from the CLI: one row per affected patient.
		out, err := exec.Command(binPath, "audit", "--config", cfgPath, "incident", "--since", start.Format(time.RFC3339),
			"--until", end.Format(time.RFC3339), "--user", hsaNurseB, "--format", "csv").Output()
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\r\n") // RFC 4180
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "personnummer,recordings_read,revealed_by_search") {
			t.Fatalf("letters CSV:\n%s", out)
		}
		for i, pn := range []string{"19701063-2391", "20170110-2384"} {
			if !strings.HasPrefix(lines[i+1], pn+",1,0,") || !strings.HasSuffix(lines[i+1], ",play=1") {
				t.Fatalf("letters CSV row %d is not %s with one recording played:\n%s", i+1, pn, out)
			}
		}
	})

	// Every report run is itself in the log, with the auditor's identity.
	srv.stop()
	counts := map[string]int{}
	for _, e := range auditEvents(t, dataDir) {
		if a, _ := e["Action"].(string); strings.HasPrefix(a, "audit.") && e["Outcome"] == "allowed" {
			counts[a+" "+e["User"].(string)]++
		}
	}
	for k, want := range map[string]int{
		"audit.extract SE9999990001-AUD1":     2,
		"audit.review SE9999990001-AUD1":      2,
		"audit.review-mark SE9999990001-AUD1": 1,
		"audit.incident SE9999990001-AUD1":    3,
	} {
		if counts[k] != want {
			t.Errorf("%s: %d log events, want %d", k, counts[k], want)
		}
	}
}

func boolWord(emergency bool) string {
	if emergency {
		return "emergency"
	}
	return "-"
}
