package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"callvault/internal/audio"
	"callvault/internal/devpki"
	"callvault/internal/rsmeta"
	"callvault/internal/siprec/siptest"
)

// TestSIPRecInteropCorpus runs every body of the interop corpus through a
// full session: INVITE (or, for update-*, an UPDATE inside a session), RTP
// to every answered port, BYE; each INVITE gives exactly one recording.
func TestSIPRecInteropCorpus(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"), filepath.Join(dir, "serve.log"))
	files, err := filepath.Glob("../../internal/rsmeta/testdata/interop/*.sip")
	if err != nil || len(files) < 10 {
		t.Fatalf("corpus: %d files, %v", len(files), err)
	}
	_, baseBody, err := rsmeta.ReadCorpusFile("../../internal/rsmeta/testdata/interop/rfc7865-two-streams.sip")
	if err != nil {
		t.Fatal(err)
	}
	baseCT, _, _ := rsmeta.ReadCorpusFile("../../internal/rsmeta/testdata/interop/rfc7865-two-streams.sip")
	invites := 0
	for i, f := range files {
		name := filepath.Base(f)
		ct, body, err := rsmeta.ReadCorpusFile(f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		callID := fmt.Sprintf("corpus-%d@sbc.example.net", i)
		c := dialSIP(t, srv.sipAddr, nil, callID)
		update := strings.HasPrefix(name, "update-")
		inviteCT, inviteBody := ct, body
		if update {
			inviteCT, inviteBody = baseCT, baseBody
		}
		c.send("INVITE", inviteCT, inviteBody)
		code, head, answer := c.response()
		if code != 200 {
			t.Errorf("%s: INVITE answered %d\n%s", name, code, head)
			continue
		}
		c.send("ACK", "", nil)
		invites++
		ports, pts := answerPorts(answer)
		taken := 0
		for k, p := range ports {
			if p != 0 {
				taken++
				go sendRTP(t, p, pts[k], uint32(1000+k), 25, byte(0x10+k), nil)
			}
		}
		if taken == 0 {
			t.Errorf("%s: no stream taken:\n%s", name, answer)
		}
		time.Sleep(300 * time.Millisecond)
		if update {
			c.send("UPDATE", ct, body)
			if code, head, _ := c.response(); code != 200 {
				t.Errorf("%s: UPDATE answered %d\n%s", name, code, head)
			}
		}
		time.Sleep(500 * time.Millisecond)
		c.send("BYE", "", nil)
		if code, head, _ := c.response(); code != 200 {
			t.Errorf("%s: BYE answered %d\n%s", name, code, head)
		}
	}
	waitFor(t, 30*time.Second, "corpus recordings stored", func() bool {
		cs := statusJSON(t, srv.dataDir)["capture"].(map[string]any)
		return cs["active"].(float64) == 0 && cs["stored"].(float64) == float64(invites)
	})
	cs := statusJSON(t, srv.dataDir)["capture"].(map[string]any)
	if invites != len(files) || cs["accepted"].(float64) != float64(invites) || cs["failed"].(float64) != 0 {
		t.Errorf("%d of %d corpus sessions answered; capture %v", invites, len(files), cs)
	}
}

// TestSIPRecHostileInput: malformed SIP, SDP and XML never crash the
// server; each gets an error answer or is dropped, and a proper session
// still works afterwards.
func TestSIPRecHostileInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"), filepath.Join(dir, "serve.log"))
	udp, err := net.Dial("udp", srv.sipAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	junk := make([]byte, 1400)
	rand.Read(junk)
	for _, m := range [][]byte{junk, []byte("INVITE\r\n\r\n"), []byte("INVITE sip:x SIP/2.0\r\nVia: garbage\r\nContent-Length: 99999\r\n\r\nv=0"),
		bytes.Repeat([]byte("A"), 1400), {0}} {
		udp.Write(m)
	}
	cases := []struct {
		name, ct string
		body     string
		want     int
	}{
		{"SDP not SDP", "application/sdp", "this is not SDP\r\n", 400},
		{"SDP without media", "application/sdp", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", 400},
		{"video only", "application/sdp", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 4000 RTP/AVP 96\r\n", 488},
		{"G.729 only", "application/sdp", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\na=sendonly\r\n", 488},
		{"SRTP over plain TCP", "application/sdp", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(make([]byte, 30)) + "\r\na=sendonly\r\n", 488},
		{"multipart without boundary", "multipart/mixed", "--x\r\n\r\n", 400},
		{"unknown body type", "text/plain", "hello", 400},
		{"XML bomb in metadata", "multipart/mixed;boundary=b", "--b\r\nContent-Type: application/sdp\r\n\r\nv=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n--b\r\nContent-Type: application/rs-metadata+xml\r\n\r\n<!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;\">]><recording>&b;</recording>\r\n--b--\r\n", 200},
	}
	for i, tc := range cases {
		c := dialSIP(t, srv.sipAddr, nil, fmt.Sprintf("hostile-%d", i))
		c.send("INVITE", tc.ct, []byte(tc.body))
		code, head, _ := c.response()
		if code != tc.want {
			t.Errorf("%s: answered %d, want %d\n%s", tc.name, code, tc.want, head)
		}
		if code == 200 {
			c.send("ACK", "", nil)
			c.send("BYE", "", nil)
			c.response()
		}
	}
	// No Call-ID: refused, not a crash.
	raw, err := net.Dial("tcp", srv.sipAddr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(raw, "INVITE sip:srs@callvault.test SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bKnocallid\r\nFrom: <sip:src@sbc.example.net>;tag=x1\r\n"+
		"To: <sip:srs@callvault.test>\r\nCSeq: 1 INVITE\r\nRequire: siprec\r\nContent-Length: 0\r\n\r\n", raw.LocalAddr())
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, _ := bufio.NewReader(raw).ReadString('\n'); !strings.HasPrefix(line, "SIP/2.0 400") {
		t.Errorf("INVITE without Call-ID answered %q", line)
	}
	raw.Close()

	// The server is alive and records; a BYE for its dialog from another
	// address is refused, a second INVITE of the dialog is a merged request.
	c := dialSIP(t, srv.sipAddr, nil, "after-hostile")
	_, body, _ := rsmeta.ReadCorpusFile("../../internal/rsmeta/testdata/interop/plain-sdp.sip")
	c.send("INVITE", "application/sdp", body)
	if code, head, _ := c.response(); code != 200 {
		t.Fatalf("a proper INVITE after the hostile ones: %d\n%s", code, head)
	}
	c.send("ACK", "", nil)
	intruder, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	to, _ := net.ResolveUDPAddr("udp", srv.sipAddr)
	bye := fmt.Sprintf("BYE sip:srs@callvault.test SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKintruder\r\nFrom: <sip:src@sbc.example.net>;tag=%s\r\n"+
		"To: <sip:srs@callvault.test>;tag=%s\r\nCall-ID: after-hostile\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n", intruder.LocalAddr(), c.tag, c.toTag)
	intruder.WriteTo([]byte(bye), to)
	intruder.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	if n, _, err := intruder.ReadFrom(buf); err != nil || !bytes.HasPrefix(buf[:n], []byte("SIP/2.0 403")) {
		t.Errorf("BYE from another address: %q %v", buf[:max(n, 0)], err)
	}
	merged := dialSIP(t, srv.sipAddr, nil, "after-hostile")
	merged.tag = c.tag
	merged.send("INVITE", "application/sdp", body)
	if code, _, _ := merged.response(); code != 482 {
		t.Errorf("a second INVITE of a dialog answered %d, want 482", code)
	}
	c.send("BYE", "", nil)
	if code, _, _ := c.response(); code != 200 {
		t.Errorf("the client's own BYE answered %d", code)
	}
	if srv.cmd.ProcessState != nil {
		t.Fatal("the server exited")
	}
}

// TestSIPRecTLS: over TLS with the capture system's certificate an
// RTP/SAVP offer is answered RTP/SAVP with our own key and the SRTP audio
// is recorded; a certificate from another CA, or of a person, is refused
// with 403 and audited.
func TestSIPRecTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"), filepath.Join(dir, "serve.log"))
	tlsFor := func(who string) *tls.Config {
		cert, err := tls.LoadX509KeyPair(srv.devFile(who+".pem"), srv.devFile(who+"-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: srv.caPool(), ServerName: "127.0.0.1"}
	}
	key := make([]byte, 30)
	rand.Read(key)
	offer := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/SAVP 8\r\na=rtpmap:8 PCMA/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(key) + "\r\na=label:1\r\na=sendonly\r\n" +
		"m=audio 4002 RTP/SAVP 8\r\na=rtpmap:8 PCMA/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(key) + "\r\na=label:2\r\na=sendonly\r\n"
	c := dialSIP(t, srv.sipsAddr, tlsFor("capture"), "tls-call@sbc.example.net")
	c.send("INVITE", "application/sdp", []byte(offer))
	code, head, answer := c.response()
	if code != 200 {
		t.Fatalf("INVITE over TLS: %d\n%s", code, head)
	}
	if n := strings.Count(string(answer), "RTP/SAVP 8"); n != 2 || strings.Count(string(answer), "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:") != 2 {
		t.Fatalf("answer does not match the offered profile:\n%s", answer)
	}
	c.send("ACK", "", nil)
	ports, _ := answerPorts(answer)
	done := make(chan struct{}, 2)
	for k, p := range ports {
		go func() { sendRTP(t, p, 8, uint32(77+k), 50, byte(0x2a+0x11*k), key); done <- struct{}{} }()
	}
	<-done
	<-done
	time.Sleep(300 * time.Millisecond)
	// The same dialog over plain TCP, from an address that is a source
	// over UDP/TCP: not the TLS client that began it.
	plain := dialSIP(t, srv.sipAddr, nil, c.callID)
	plain.tag, plain.toTag, plain.cseq = c.tag, c.toTag, 5
	plain.send("BYE", "", nil)
	if code, _, _ := plain.response(); code != 403 {
		t.Errorf("BYE of a TLS session over plain TCP answered %d, want 403", code)
	}
	c.send("BYE", "", nil)
	if code, _, _ := c.response(); code != 200 {
		t.Fatalf("BYE: %d", code)
	}
	id := srv.linkWhenStored(t, "tls-call@sbc.example.net", "191212121212")
	d, ch := srv.storedCall(t, id)
	if d["content_type"] != "audio/wav" {
		t.Errorf("details %v", d)
	}
	// One second of each leg's A-law byte, decoded; silence around it.
	for k, want := range []int16{audio.DecodeALaw(0x2a), audio.DecodeALaw(0x3b)} {
		n := 0
		for _, s := range ch[k] {
			if s == want {
				n++
			}
		}
		if n != 8000 {
			t.Errorf("channel %d holds %d samples of the SRTP audio, want 8000", k, n)
		}
	}

	// Refused: a certificate of another CA, and a nurse's (not a source).
	otherCA, err := devpki.NewCA("Not the dev CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := otherCA.IssueClient("Intruder", "SE9999990001-CAP1", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg    *tls.Config
		reason string
	}{
		// Sent even though the server asks for another CA's certificates.
		{&tls.Config{GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign, nil },
			RootCAs: srv.caPool(), ServerName: "127.0.0.1"}, "unknown-certificate"},
		{tlsFor("nurse"), "unknown-source"},
	} {
		c := dialSIP(t, srv.sipsAddr, tc.cfg, "tls-refused-"+tc.reason)
		c.send("INVITE", "application/sdp", []byte(offer))
		if code, head, _ := c.response(); code != 403 {
			t.Errorf("%s: answered %d\n%s", tc.reason, code, head)
		}
	}
	evs := auditEvents(t, srv.dataDir)
	for _, reason := range []string{"unknown-certificate", "unknown-source"} {
		if n := countAudit(evs, "capture.start", "denied", reason); n != 1 {
			t.Errorf("%d audited %s refusals, want 1", n, reason)
		}
	}
}

// TestSIPRecKill: the server is SIGKILLed mid-call; after restart the call
// is stored as incomplete, playable up to within a few seconds of the
// kill, and no plaintext audio exists on disk.
func TestSIPRecKill(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	srv := startServer(t, data, filepath.Join(dir, "serve.log"))
	caller, nurse := siptest.NoiseSamples(11, 8000*20), siptest.NoiseSamples(12, 8000*20)
	stopSipp := sippInBackground(t, dir, srv, siptest.Scenario{Token: "kill", Pcap: "k.pcap", HoldMS: 25000},
		[]siptest.Leg{{PortOffset: 0, SSRC: 11, Samples: caller}, {PortOffset: 2, SSRC: 12, Samples: nurse}})
	answered := time.Now()
	time.Sleep(8 * time.Second)
	srv.kill()
	killedAfter := time.Since(answered)
	stopSipp()

	srv = startServer(t, data, filepath.Join(dir, "serve2.log"))
	id := srv.linkWhenStored(t, "orig-kill-1", "191212121212")
	d, ch := srv.storedCall(t, id)
	if d["incomplete"] != true {
		t.Errorf("recording after a kill: incomplete = %v", d["incomplete"])
	}
	secs := float64(len(ch[0])) / 8000
	if secs < killedAfter.Seconds()-4 || secs > killedAfter.Seconds()+2.5 {
		t.Errorf("kept %.1f s of a call killed after %.1f s", secs, killedAfter.Seconds())
	}
	o0 := align(ch[0], caller, 8000)
	if o0 < 0 {
		t.Fatal("caller audio not found in the incomplete recording")
	}
	kept := len(ch[0]) - o0
	if f := matchFraction(ch[0][:o0+kept], caller[:kept], o0); f < 0.99 {
		t.Errorf("kept audio matches %.3f of what was sent", f)
	}
	evs := auditEvents(t, data)
	if n := countAudit(evs, "capture.end", "allowed", "incomplete"); n != 1 {
		t.Errorf("%d capture.end incomplete events", n)
	}
	if ents, _ := os.ReadDir(filepath.Join(data, "spool")); len(ents) != 0 {
		t.Errorf("spool holds %d files after recovery", len(ents))
	}
	// No plaintext audio anywhere: as sent (μ-law) or as assembled (PCM).
	scan := newLeakScan()
	for name, s := range map[string][]int16{"caller": caller, "nurse": nurse} {
		mu := make([]byte, 44, 44+len(s))
		pcm := make([]byte, 44, 44+2*len(s))
		for _, v := range s {
			mu = append(mu, audio.EncodeMuLaw(v))
			pcm = binary.LittleEndian.AppendUint16(pcm, uint16(v))
		}
		scan.addAudio(name+" μ-law", mu)
		scan.addAudio(name+" PCM", pcm)
	}
	finds, files := scan.find(t, data, nil, nil)
	if len(finds) > 0 || files == 0 {
		t.Errorf("plaintext on disk (%d files scanned):\n%s", files, strings.Join(finds, "\n"))
	}
}

// TestSIPRecShutdown: serve stopped (SIGTERM) mid-call stores what it has
// at once, marked incomplete, and its capture session ends incomplete.
func TestSIPRecShutdown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	srv := startServer(t, data, filepath.Join(dir, "serve.log"))
	stopSipp := sippInBackground(t, dir, srv, siptest.Scenario{Token: "stop", Pcap: "s.pcap", HoldMS: 12000},
		[]siptest.Leg{{PortOffset: 0, SSRC: 1, Samples: siptest.NoiseSamples(21, 8000*10)},
			{PortOffset: 2, SSRC: 2, Samples: siptest.NoiseSamples(22, 8000*10)}})
	time.Sleep(3 * time.Second)
	srv.stop()
	stopSipp()
	st := statusJSON(t, data)["capture"].(map[string]any)
	if st["incomplete"].(float64) != 1 || st["active"].(float64) != 0 {
		t.Fatalf("after SIGTERM mid-call: capture %v, want it stored as incomplete before serve exited", st)
	}
	srv = startServer(t, data, filepath.Join(dir, "serve2.log"))
	id := srv.linkWhenStored(t, "orig-stop-1", "191212121212")
	d, ch := srv.storedCall(t, id)
	if d["incomplete"] != true || len(ch[0]) < 3*8000 {
		t.Errorf("incomplete %v, %.1f s kept", d["incomplete"], float64(len(ch[0]))/8000)
	}
}
