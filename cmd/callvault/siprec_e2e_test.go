package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"callvault/internal/siprec/siptest"
)

// linkWhenStored links patient to the recorded call callID as the capture
// system, waiting until the recording is stored, and returns its ID.
func (s *server) linkWhenStored(t *testing.T, callID, patient string) string {
	t.Helper()
	var id string
	waitFor(t, 60*time.Second, "recording of "+callID+" stored", func() bool {
		r := s.do("capture", "POST", "/v1/recordings/link", strings.NewReader(fmt.Sprintf(`{"call_id":%q,"patient":%q}`, callID, patient)))
		if r.status == 404 || r.status == 503 { // not yet recorded, or being stored
			return false
		}
		if r.status != 200 {
			t.Fatalf("link: %v", r)
		}
		m := r.json(t)
		if m["state"] != "stored" {
			return false
		}
		id = m["recording_id"].(string)
		return true
	})
	return id
}

// storedCall fetches a recording's details and channels as the unit-A nurse.
func (s *server) storedCall(t *testing.T, id string) (map[string]any, [][]int16) {
	t.Helper()
	r := s.do("nurse", "GET", "/v1/recordings/"+id, nil, "X-Purpose", "care")
	wantStatus(t, "request", r, 200, "")
	a := s.do("nurse", "GET", "/v1/recordings/"+id+"/audio", nil, "X-Purpose", "care")
	wantStatus(t, "request", a, 200, "")
	return r.json(t), wavChannels(t, a.body)
}

// streamStats returns capture_stats.streams of a recording's details.
func streamStats(t *testing.T, d map[string]any) []map[string]any {
	t.Helper()
	cs, ok := d["capture_stats"].(map[string]any)
	if !ok {
		t.Fatalf("no capture_stats in %v", d)
	}
	var out []map[string]any
	for _, s := range cs["streams"].([]any) {
		out = append(out, s.(map[string]any))
	}
	return out
}

// TestSIPRecCall: sipp as the recording client sends the multipart INVITE
// and two RTP streams of known audio; the patient is linked while the
// call runs; after BYE the recording plays back with each leg on its own
// channel, sample for sample.
func TestSIPRecCall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"), filepath.Join(dir, "serve.log"))
	caller, nurse := siptest.NoiseSamples(1, 8000*4), siptest.NoiseSamples(2, 8000*4)
	mustPcap(t, filepath.Join(dir, "call.pcap"), []siptest.Leg{{PortOffset: 0, SSRC: 0x1111, Samples: caller}, {PortOffset: 2, SSRC: 0x2222, Samples: nurse}})
	sc := siptest.Scenario{Token: "call", Pcap: "call.pcap", HoldMS: 5000}
	scen := filepath.Join(dir, "call.xml")
	os.WriteFile(scen, []byte(sc.XML()), 0o600)

	done := make(chan error, 1)
	var out []byte
	go func() {
		var err error
		out, err = runSipp(t, srv.sipAddr, scen, sc.Token, "-m", "1")
		done <- err
	}()
	// The patient is identified during the call: link while recording.
	var live map[string]any
	waitFor(t, 10*time.Second, "live link", func() bool {
		select {
		case err := <-done:
			t.Fatalf("sipp ended before the link: %v\n%s", err, out)
		default:
		}
		r := srv.do("capture", "POST", "/v1/recordings/link", strings.NewReader(`{"call_id":"orig-call-1","patient":"19121212-1212"}`))
		if r.status == 404 {
			return false
		}
		wantStatus(t, "request", r, 200, "")
		live = r.json(t)
		return true
	})
	if live["state"] != "recording" || live["replaced"] != false {
		t.Errorf("live link answer %v", live)
	}
	if err := <-done; err != nil {
		t.Fatalf("sipp: %v\n%s", err, out)
	}
	// A correction after the call: the stored recording, with history.
	id := srv.linkWhenStored(t, "orig-call-1", "198001019804")
	if id != live["recording_id"] {
		t.Errorf("stored as %s, live link named %v", id, live["recording_id"])
	}
	d, ch := srv.storedCall(t, id)
	if d["patient"] != "198001019804" || d["caller_number"] != "+46701740605" || d["call_id"] != "orig-call-1" {
		t.Errorf("details %v", d)
	}
	if staff := fmt.Sprint(d["staff"]); staff != "[SE9999990001-N0A1]" {
		t.Errorf("staff %s, want the nurse mapped from her AOR", staff)
	}
	if d["content_type"] != "audio/wav" || d["incomplete"] != nil {
		t.Errorf("content type %v incomplete %v", d["content_type"], d["incomplete"])
	}
	if len(ch) != 2 {
		t.Fatalf("%d channels", len(ch))
	}
	// Each leg on its own channel, aligned, exactly as sent.
	o0, o1 := align(ch[0], caller, 8000), align(ch[1], nurse, 8000)
	if o0 < 0 || o1 < 0 {
		t.Fatalf("sent audio not found: caller at %d, nurse at %d", o0, o1)
	}
	if f := matchFraction(ch[0], caller, o0); f < 0.999 {
		t.Errorf("caller channel matches %.4f of the sent samples", f)
	}
	if f := matchFraction(ch[1], nurse, o1); f < 0.999 {
		t.Errorf("nurse channel matches %.4f of the sent samples", f)
	}
	if diff := o0 - o1; diff < -160 || diff > 160 {
		t.Errorf("legs misaligned by %d samples (more than one packet)", diff)
	}
	if align(ch[0], nurse, 8000) >= 0 || align(ch[1], caller, 8000) >= 0 {
		t.Error("a leg's audio appears on the other channel")
	}
	// Length: the dialog's span (about 5 s from answer to BYE).
	if n := len(ch[0]); n < 8000*4 || n > 8000*7 {
		t.Errorf("recording is %d samples long", n)
	}
	for i, st := range streamStats(t, d) {
		if st["packets"].(float64) != 200 || st["lost"].(float64) != 0 || st["duplicates"].(float64) != 0 {
			t.Errorf("stream %d stats %v", i, st)
		}
	}

	evs := auditEvents(t, srv.dataDir)
	if n := countAudit(evs, "capture.start", "allowed", ""); n != 1 {
		t.Errorf("%d capture.start events", n)
	}
	if n := countAudit(evs, "capture.end", "allowed", "stored"); n != 1 {
		t.Errorf("%d capture.end stored events", n)
	}
	links := 0
	for _, e := range evs {
		if e["Action"] == "recording.link" && e["Outcome"] == "allowed" && e["RecordingID"] == id {
			links++
		}
	}
	if links != 2 {
		t.Errorf("%d audited links, want 2 (live and correction)", links)
	}
	st := statusJSON(t, srv.dataDir)["capture"].(map[string]any)
	if st["accepted"].(float64) != 1 || st["stored"].(float64) != 1 || st["active"].(float64) != 0 {
		t.Errorf("status capture %v", st)
	}
	// Nothing is left in the spool.
	if ents, _ := os.ReadDir(filepath.Join(srv.dataDir, "spool")); len(ents) != 0 {
		t.Errorf("spool holds %d files after the call was stored", len(ents))
	}
}

// TestSIPRecPauseResume: re-INVITEs with a=inactive and a=sendonly pause
// and resume the recording; the SRC keeps sending, but the paused span is
// silence and the timeline continues.
func TestSIPRecPauseResume(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"), filepath.Join(dir, "serve.log"))
	caller, nurse := siptest.NoiseSamples(3, 8000*7), siptest.NoiseSamples(4, 8000*7)
	mustPcap(t, filepath.Join(dir, "p.pcap"), []siptest.Leg{{PortOffset: 0, SSRC: 7, Samples: caller}, {PortOffset: 2, SSRC: 8, Samples: nurse}})
	// A pause repeated (2.5 s) changes nothing and is not audited again.
	sc := siptest.Scenario{Token: "pause", Pcap: "p.pcap", HoldMS: 7500, Pauses: []int{2000, 2500, 4000, 4100, 4150},
		Directions: []string{"inactive", "inactive", "sendonly", "inactive", "sendonly"}}
	scen := filepath.Join(dir, "p.xml")
	os.WriteFile(scen, []byte(sc.XML()), 0o600)
	if out, err := runSipp(t, srv.sipAddr, scen, sc.Token, "-m", "1"); err != nil {
		t.Fatalf("sipp: %v\n%s", err, out)
	}
	id := srv.linkWhenStored(t, "orig-pause-1", "191212121212")
	_, ch := srv.storedCall(t, id)
	o0 := align(ch[0], caller, 8000)
	if o0 < 0 {
		t.Fatal("caller audio not found")
	}
	// Played: before the pause (0–2 s), after the resume (from ~4.15 s).
	// Paused: 2–4 s and 4.1–4.15 s; a pause or resume repeated is safe.
	inSpan := func(from, to float64) (match, zero int) {
		for i := int(from * 8000); i < int(to*8000); i++ {
			if ch[0][o0+i] == caller[i] {
				match++
			}
			if ch[0][o0+i] == 0 && ch[1][o0+i] == 0 {
				zero++
			}
		}
		return
	}
	if m, _ := inSpan(0, 1.7); m < 13586 {
		t.Errorf("before the pause %d of %d samples match", m, int(1.7*8000))
	}
	if _, z := inSpan(2.4, 3.7); z != int(1.3*8000) {
		t.Errorf("during the pause %d of %d samples are silent on both channels", z, int(1.3*8000))
	}
	if m, _ := inSpan(4.6, 6.5); m < 15184 {
		t.Errorf("after the resume %d of %d samples match at their original place", m, int(1.9*8000))
	}
	evs := auditEvents(t, srv.dataDir)
	if p, r := countAudit(evs, "capture.pause", "allowed", ""), countAudit(evs, "capture.resume", "allowed", ""); p != 2 || r != 2 {
		t.Errorf("audited %d pauses and %d resumes, want 2 and 2", p, r)
	}
}

// TestSIPRecHold: a caller on hold for 60 s (no RTP at all) stays one
// recording, with 60 s of silence on its wall-clock timeline.
func TestSIPRecHold(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"), filepath.Join(dir, "serve.log"), "--sip-media-timeout", "1m30s")
	caller, nurse := siptest.NoiseSamples(5, 8000*6), siptest.NoiseSamples(6, 8000*6)
	legs := []siptest.Leg{{PortOffset: 0, SSRC: 5, Samples: caller, GapAtMS: 3000, GapMS: 60000}, {PortOffset: 2, SSRC: 6, Samples: nurse, GapAtMS: 3000, GapMS: 60000}}
	mustPcap(t, filepath.Join(dir, "h.pcap"), legs)
	sc := siptest.Scenario{Token: "hold", Pcap: "h.pcap", HoldMS: 67000}
	scen := filepath.Join(dir, "h.xml")
	os.WriteFile(scen, []byte(sc.XML()), 0o600)
	if out, err := runSipp(t, srv.sipAddr, scen, sc.Token, "-m", "1"); err != nil {
		t.Fatalf("sipp: %v\n%s", err, out)
	}
	id := srv.linkWhenStored(t, "orig-hold-1", "191212121212")
	d, ch := srv.storedCall(t, id)
	o0 := align(ch[0], caller, 8000)
	if o0 < 0 {
		t.Fatal("caller audio not found")
	}
	if n := len(ch[0]); n < 66*8000 || n > 68*8000 {
		t.Errorf("recording is %.1f s long, want the call's 67 s", float64(n)/8000)
	}
	// The second part lands 60 s after the first, where it belongs.
	after := caller[3*8000:]
	if f := matchFraction(ch[0], after, o0+63*8000); f < 0.99 {
		t.Errorf("audio after the hold matches %.3f at +60 s", f)
	}
	silent := 0
	for i := o0 + 4*8000; i < o0+62*8000; i++ {
		if ch[0][i] == 0 && ch[1][i] == 0 {
			silent++
		}
	}
	if silent != 58*8000 {
		t.Errorf("%d of %d samples of the hold are silent", silent, 58*8000)
	}
	for i, st := range streamStats(t, d) {
		if st["gaps"].(float64) != 1 || st["gap_ms"].(float64) < 59900 || st["gap_ms"].(float64) > 60100 {
			t.Errorf("stream %d: gaps %v gap_ms %v, want one of 60 s", i, st["gaps"], st["gap_ms"])
		}
	}
}

// TestSIPRecCancelAndRefusals: a CANCEL before the answer stores nothing;
// an INVITE from an address that is not a configured source gets 403 and
// an audited refusal.
//
// The client sends its CANCEL after the provisional 100, as RFC 3261 9.1
// requires. The server would answer long before its 100 (sent after 200
// ms), so the test holds the audit log's lock until sipp is done: the
// INVITE waits in BeginCapture, and the CANCEL reaches it before any
// answer. (Sent at once after the INVITE, a CANCEL can be handled before
// the INVITE's transaction exists, since sipgo handles each request on
// its own goroutine, and rightly gets 481.)
func TestSIPRecCancelAndRefusals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"), filepath.Join(dir, "serve.log"))
	before := statusJSON(t, srv.dataDir)["recordings"].(float64)

	cancel := `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="cancel">
<send><![CDATA[
` + strings.Replace(siptest.Invite, "{{SDP}}", siptest.SDP("sendonly"), 1) + `]]></send>
<recv response="100"/>
<!-- [branch-N] is the branch of the element N back: the INVITE. -->
<send><![CDATA[
CANCEL sip:srs@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-2]
From: <sip:src@[local_ip]:[local_port]>;tag=[pid]src[call_number]
To: <sip:srs@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 CANCEL
Max-Forwards: 70
Content-Length: 0

]]></send>
<recv response="200"/>
<recv response="487"/>
<send><![CDATA[
ACK sip:srs@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-5]
From: <sip:src@[local_ip]:[local_port]>;tag=[pid]src[call_number]
To: <sip:srs@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
</scenario>
`
	scen := filepath.Join(dir, "cancel.xml")
	os.WriteFile(scen, []byte(strings.ReplaceAll(cancel, "{{TOKEN}}", "cancel")), 0o600)
	release := lockAuditLog(t, srv.dataDir)
	out, err := runSipp(t, srv.sipAddr, scen, "cancel", "-m", "1")
	release()
	if err != nil {
		t.Fatalf("sipp cancel: %v\n%s", err, out)
	}

	refused := `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="refused">
<send retrans="500"><![CDATA[
` + strings.Replace(siptest.Invite, "{{SDP}}", siptest.SDP("sendonly"), 1) + `]]></send>
<recv response="100" optional="true"/>
<recv response="403"/>
<send><![CDATA[
ACK sip:srs@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-3]
From: <sip:src@[local_ip]:[local_port]>;tag=[pid]src[call_number]
To: <sip:srs@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
</scenario>
`
	scen = filepath.Join(dir, "refused.xml")
	os.WriteFile(scen, []byte(strings.ReplaceAll(refused, "{{TOKEN}}", "refused")), 0o600)
	// 127.0.0.2 is loopback too, but not the configured source.
	if out, err := runSipp(t, srv.sipAddr, scen, "refused", "-m", "1", "-i", "127.0.0.2", "-mi", "127.0.0.2"); err != nil {
		t.Fatalf("sipp from an unknown address: %v\n%s", err, out)
	}

	waitFor(t, 10*time.Second, "cancelled session recorded", func() bool {
		c := statusJSON(t, srv.dataDir)["capture"].(map[string]any)
		return c["cancelled"].(float64) == 1
	})
	st := statusJSON(t, srv.dataDir)
	c := st["capture"].(map[string]any)
	if st["recordings"].(float64) != before || c["stored"].(float64) != 0 || c["accepted"].(float64) != 1 || c["failed"].(float64) != 0 {
		t.Errorf("after CANCEL: recordings %v (before %v), capture %v", st["recordings"], before, c)
	}
	evs := auditEvents(t, srv.dataDir)
	if n := countAudit(evs, "capture.end", "allowed", "cancelled"); n != 1 {
		t.Errorf("%d capture.end cancelled events", n)
	}
	denied := 0
	for _, e := range evs {
		if e["Action"] == "capture.start" && e["Outcome"] == "denied" {
			denied++
			if e["Reason"] != "unknown-source" || e["ClientAddr"] != "127.0.0.2" {
				t.Errorf("refusal %v", e)
			}
		}
	}
	if denied != 1 {
		t.Errorf("%d audited refusals, want 1", denied)
	}
	if ents, _ := os.ReadDir(filepath.Join(srv.dataDir, "spool")); len(ents) != 0 {
		t.Errorf("spool holds %d files after a cancelled call", len(ents))
	}
}

// TestSIPRecLoad: 100 sequential and 50 concurrent sipp calls give
// exactly 100 and 50 stored recordings, and the counters agree.
func TestSIPRecLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"), filepath.Join(dir, "serve.log"))
	before := statusJSON(t, srv.dataDir)["recordings"].(float64)
	mustPcap(t, filepath.Join(dir, "short.pcap"), []siptest.Leg{{PortOffset: 0, SSRC: 9, Samples: siptest.NoiseSamples(9, 2400)}, {PortOffset: 2, SSRC: 10, Samples: siptest.NoiseSamples(10, 2400)}})
	seq := siptest.Scenario{Token: "seq", Pcap: "short.pcap", HoldMS: 400}
	os.WriteFile(filepath.Join(dir, "seq.xml"), []byte(seq.XML()), 0o600)
	if out, err := runSipp(t, srv.sipAddr, filepath.Join(dir, "seq.xml"), "seq", "-m", "100", "-l", "1", "-r", "100"); err != nil {
		t.Fatalf("sipp sequential: %v\n%s", err, out)
	}
	conc := siptest.Scenario{Token: "conc", Pcap: "short.pcap", HoldMS: 2000}
	os.WriteFile(filepath.Join(dir, "conc.xml"), []byte(conc.XML()), 0o600)
	if out, err := runSipp(t, srv.sipAddr, filepath.Join(dir, "conc.xml"), "conc", "-m", "50", "-l", "50", "-r", "50"); err != nil {
		t.Fatalf("sipp concurrent: %v\n%s", err, out)
	}
	waitFor(t, 60*time.Second, "150 recordings stored", func() bool {
		c := statusJSON(t, srv.dataDir)["capture"].(map[string]any)
		return c["active"].(float64) == 0 && c["stored"].(float64) == 150
	})
	st := statusJSON(t, srv.dataDir)
	c := st["capture"].(map[string]any)
	if st["recordings"].(float64)-before != 150 || c["accepted"].(float64) != 150 || c["failed"].(float64) != 0 || c["cancelled"].(float64) != 0 {
		t.Errorf("recordings +%v, capture %v", st["recordings"].(float64)-before, c)
	}
	// Each call once: every recorded call ID has exactly one recording.
	for _, callID := range []string{"orig-seq-1", "orig-seq-100", "orig-conc-1", "orig-conc-50"} {
		r := srv.do("capture", "POST", "/v1/recordings/link", strings.NewReader(fmt.Sprintf(`{"call_id":%q,"patient":"191212121212"}`, callID)))
		wantStatus(t, "request", r, 200, "")
	}
	m := srv.metrics(t)
	for _, want := range []string{
		`callvault_capture_sessions_total{outcome="accepted"} 150`,
		`callvault_capture_sessions_total{outcome="stored"} 150`,
		`callvault_siprec_sessions_total{outcome="stored"} 150`,
		`callvault_siprec_active_sessions 0`,
		`callvault_siprec_rtp_packets_total{result="received"} 4500`,
		`callvault_siprec_rtp_packets_total{result="lost"} 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// metrics returns the ops endpoint's Prometheus text.
func (s *server) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + s.opsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// countAudit counts events with action and outcome, and reason if given.
func countAudit(evs []map[string]any, action, outcome, reason string) int {
	n := 0
	for _, e := range evs {
		if e["Action"] == action && e["Outcome"] == outcome && (reason == "" || e["Reason"] == reason) {
			n++
		}
	}
	return n
}
