package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"callvault/internal/audio"
	"callvault/internal/siprec/siptest"
)

// mustPcap writes legs as a capture for sipp (siptest.WritePcap).
func mustPcap(t *testing.T, path string, legs []siptest.Leg) {
	t.Helper()
	if err := siptest.WritePcap(path, legs); err != nil {
		t.Fatal(err)
	}
}

// freeUDPPort returns a UDP port free at the time of the call.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// runSipp runs sipp with scenario file scen against the server's SIP
// address and returns its error (exit status) and output.
func runSipp(t *testing.T, target, scen, token string, extra ...string) ([]byte, error) {
	t.Helper()
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Fatal("sipp is not installed; scripts/deps.sh installs Debian's sip-tester")
	}
	// The free ports sippArgs picks can be taken by another test's
	// socket before sipp binds them; sipp then exits at start, before
	// sending anything, and a run on other ports is the same test.
	for try := 1; ; try++ {
		errFile := filepath.Join(filepath.Dir(scen), "sipp-errors.log")
		os.Remove(errFile)
		args := append(sippArgs(t, target, scen, token), "-timeout", "180s", "-timeout_error",
			"-max_recv_loops", "1000", "-trace_err", "-error_file", errFile)
		args = append(args, extra...)
		cmd := exec.Command("sipp", args...)
		cmd.Dir = filepath.Dir(scen)
		out, err := cmd.CombinedOutput()
		if err != nil {
			errs, _ := os.ReadFile(errFile)
			out = append(out, errs...)
		}
		if err == nil || try == 3 || !bytes.Contains(out, []byte("Address already in use")) {
			return out, err
		}
		t.Logf("sipp could not bind its ports (try %d), again on others", try)
	}
}

// sippArgs are the arguments every sipp run of the tests shares: the
// scenario, Call-IDs TOKEN-N@…, UDP from 127.0.0.1 with free ports.
func sippArgs(t *testing.T, target, scen, token string) []string {
	return []string{target, "-sf", scen, "-cid_str", token + "-%u@%s", "-t", "u1", "-i", "127.0.0.1", "-mi", "127.0.0.1",
		"-mp", fmt.Sprint(freeMediaPorts(t)), "-p", fmt.Sprint(freeUDPPort(t)), "-nostdin"}
}

// freeMediaPorts returns an even port P such that P to P+3, sipp's audio
// and video RTP and RTCP ports for -mp P, were all free a moment ago.
func freeMediaPorts(t *testing.T) int {
	t.Helper()
	for range 100 {
		p := freeUDPPort(t) &^ 1
		var held []*net.UDPConn
		for i := range 4 {
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p + i})
			if err != nil {
				break
			}
			held = append(held, c)
		}
		for _, c := range held {
			c.Close()
		}
		if len(held) == 4 {
			return p
		}
	}
	t.Fatal("no four free consecutive UDP ports for sipp's media")
	return 0
}

// sippInBackground plays one call of sc (its pcap made of legs) against
// srv and returns once the server records it; stop ends sipp.
func sippInBackground(t *testing.T, dir string, srv *server, sc siptest.Scenario, legs []siptest.Leg) (stop func()) {
	t.Helper()
	mustPcap(t, filepath.Join(dir, sc.Pcap), legs)
	scen := filepath.Join(dir, sc.Token+".xml")
	if err := os.WriteFile(scen, []byte(sc.XML()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sipp := exec.CommandContext(ctx, "sipp", append(sippArgs(t, srv.sipAddr, scen, sc.Token), "-m", "1")...)
	sipp.Dir = dir
	if err := sipp.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	stop = func() { cancel(); sipp.Wait() }
	t.Cleanup(stop)
	waitFor(t, 10*time.Second, "call recording", func() bool {
		return statusJSON(t, srv.dataDir)["capture"].(map[string]any)["active"].(float64) == 1
	})
	return stop
}

// wavChannels decodes a stored WAV (PCM16 or G.711, 8 kHz) into channels.
func wavChannels(t *testing.T, b []byte) [][]int16 {
	t.Helper()
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		t.Fatalf("not a WAV file (%d bytes)", len(b))
	}
	var tag, chans, bits uint16
	var data []byte
	for off := 12; off+8 <= len(b); {
		id, n := string(b[off:off+4]), int(binary.LittleEndian.Uint32(b[off+4:]))
		body := b[off+8 : min(off+8+n, len(b))]
		switch id {
		case "fmt ":
			tag, chans, bits = binary.LittleEndian.Uint16(body), binary.LittleEndian.Uint16(body[2:]), binary.LittleEndian.Uint16(body[14:])
		case "data":
			data = body
		}
		off += 8 + n + n&1
	}
	out := make([][]int16, chans)
	per := int(bits / 8)
	for i := 0; i+per*int(chans) <= len(data); i += per * int(chans) {
		for c := 0; c < int(chans); c++ {
			var s int16
			switch tag {
			case 1:
				s = int16(binary.LittleEndian.Uint16(data[i+2*c:]))
			case 7:
				s = audio.DecodeMuLaw(data[i+c])
			case 6:
				s = audio.DecodeALaw(data[i+c])
			default:
				t.Fatalf("WAV format tag %d", tag)
			}
			out[c] = append(out[c], s)
		}
	}
	return out
}

// align finds where want starts in got: the offset at which the first
// 400 samples match exactly, searching the first maxOff samples.
func align(got, want []int16, maxOff int) int {
	const probe = 400
	for off := 0; off <= maxOff && off+probe <= len(got); off++ {
		ok := true
		for i := 0; i < probe; i++ {
			if got[off+i] != want[i] {
				ok = false
				break
			}
		}
		if ok {
			return off
		}
	}
	return -1
}

// matchFraction is the fraction of want found exactly at got[off:].
func matchFraction(got, want []int16, off int) float64 {
	n := 0
	for i, w := range want {
		if off+i < len(got) && got[off+i] == w {
			n++
		}
	}
	return float64(n) / float64(len(want))
}

// waitFor polls cond every 100 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
