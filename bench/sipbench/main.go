// Command sipbench measures how many concurrent recorded calls callvault's
// SIPREC server takes on this machine (docs/benchmarks.md, "SIPREC"): sipp
// on the same machine plays N two-leg calls at once; the recorder's loss is
// read from each stored recording's capture statistics, its CPU and memory
// from /proc, beside sipp's own CPU for the same packets. Run by
// bench/siprec.sh.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"callvault/internal/siprec/siptest"
)

func main() {
	bin := flag.String("bin", "", "callvault binary")
	dir := flag.String("dir", "", "work directory (data, pcap, scenarios)")
	counts := flag.String("calls", "10,25,50,100,150,200", "concurrent call counts to try, ascending")
	seconds := flag.Int("seconds", 20, "length of each call's audio")
	flag.Parse()
	if *bin == "" || *dir == "" {
		log.Fatal("sipbench: -bin and -dir are required")
	}
	srv, err := start(*bin, filepath.Join(*dir, "data"))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.cmd.Process.Kill()
	pcap := filepath.Join(*dir, "call.pcap")
	n := 8000 * *seconds
	if err := siptest.WritePcap(pcap, []siptest.Leg{{PortOffset: 0, SSRC: 1, Samples: siptest.NoiseSamples(1, n)},
		{PortOffset: 2, SSRC: 2, Samples: siptest.NoiseSamples(2, n)}}); err != nil {
		log.Fatal(err)
	}
	perLeg := (n + 159) / 160
	fmt.Println("| concurrent calls | packets sent | recorder loss (lost + late) | recorder CPU per call | sipp CPU per call | recorder ÷ sipp | recorder memory per call |")
	fmt.Println("|---|---|---|---|---|---|---|")
	stored := 0
	for _, c := range strings.Split(*counts, ",") {
		calls, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil {
			log.Fatal(err)
		}
		r, err := srv.round(*dir, pcap, calls, *seconds, perLeg)
		if err != nil {
			log.Fatalf("%d calls: %v", calls, err)
		}
		stored += calls
		lossPct := 100 * float64(r.sent-r.recorded) / float64(r.sent)
		fmt.Printf("| %d | %d | %.3f %% (%d) | %.2f %% of a core | %.2f %% of a core | %.2f | %.2f MB |\n", calls, r.sent, lossPct, r.sent-r.recorded,
			100*r.srvCPU/float64(calls)/float64(*seconds), 100*r.sippCPU/float64(calls)/float64(*seconds), r.srvCPU/r.sippCPU,
			float64(r.peakRSS-r.idleRSS)/float64(calls)/1e6)
		log.Printf("%d calls: loss %.3f %%, recorder %.2f s CPU, sipp %.2f s CPU, RSS %d → %d", calls, lossPct, r.srvCPU, r.sippCPU, r.idleRSS, r.peakRSS)
		if lossPct >= 0.1 {
			break
		}
	}
}

type server struct {
	cmd            *exec.Cmd
	data, api, ops string
	sip            string
	capture, nurse *http.Client
	ticksPerSecond float64
}

func start(bin, data string) (*server, error) {
	cmd := exec.Command(bin, "serve", "--dev", "--data", data, "--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0",
		"--sip-listen", "127.0.0.1:0", "--sip-listen-tls", "off")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, data: data, ticksPerSecond: 100}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "siprec on sip:"); ok {
			s.sip, _, _ = strings.Cut(rest, " ")
		}
		if _, err := fmt.Sscanf(line, "listening on https://%s (ops http://%s", &s.api, &s.ops); err == nil {
			s.ops = strings.TrimSuffix(s.ops, ")")
			break
		}
	}
	go io.Copy(io.Discard, out)
	if s.sip == "" || s.api == "" {
		return nil, fmt.Errorf("serve did not start")
	}
	if s.capture, err = s.client("capture"); err != nil {
		return nil, err
	}
	if s.nurse, err = s.client("nurse"); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *server) client(who string) (*http.Client, error) {
	dev := filepath.Join(s.data, "dev")
	cert, err := tls.LoadX509KeyPair(filepath.Join(dev, who+".pem"), filepath.Join(dev, who+"-key.pem"))
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(filepath.Join(dev, "ca.pem"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}}}, nil
}

type result struct {
	sent, recorded   int64
	srvCPU, sippCPU  float64
	idleRSS, peakRSS int64
}

// cpuSeconds reads utime+stime of pid.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100
}

func rss(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func freePort() int {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func (s *server) round(dir, pcap string, calls, seconds, perLeg int) (*result, error) {
	token := fmt.Sprintf("b%d", calls)
	scen := filepath.Join(dir, token+".xml")
	sc := siptest.Scenario{Token: token, Pcap: pcap, HoldMS: seconds*1000 + 500}
	if err := os.WriteFile(scen, []byte(sc.XML()), 0o600); err != nil {
		return nil, err
	}
	pid := s.cmd.Process.Pid
	r := &result{sent: int64(calls * 2 * perLeg), idleRSS: rss(pid)}
	cpu0 := cpuSeconds(pid)
	sipp := exec.Command("sipp", s.sip, "-sf", scen, "-cid_str", token+"-%u@%s", "-t", "u1", "-i", "127.0.0.1", "-mi", "127.0.0.1",
		"-mp", strconv.Itoa(freePort()&^1), "-p", strconv.Itoa(freePort()), "-m", strconv.Itoa(calls), "-l", strconv.Itoa(calls),
		"-r", strconv.Itoa(calls), "-nostdin", "-timeout", strconv.Itoa(seconds*3+60)+"s", "-timeout_error")
	sipp.Dir = dir
	var out bytes.Buffer
	sipp.Stdout, sipp.Stderr = &out, &out
	if err := sipp.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- sipp.Wait() }()
	var sippCPU float64
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case err := <-done:
			if err != nil {
				return nil, fmt.Errorf("sipp: %v\n%s", err, out.Bytes()[max(0, out.Len()-2000):])
			}
			break wait
		case <-tick.C:
			r.peakRSS = max(r.peakRSS, rss(pid))
			if c := cpuSeconds(sipp.Process.Pid); c > 0 {
				sippCPU = c
			}
		}
	}
	r.sippCPU = max(sippCPU, sipp.ProcessState.UserTime().Seconds()+sipp.ProcessState.SystemTime().Seconds())
	// Every call stored, then the recorder's own account of each.
	for k := 1; k <= calls; k++ {
		id, err := s.waitStored(fmt.Sprintf("orig-%s-%d", token, k))
		if err != nil {
			return nil, err
		}
		pk, err := s.packets(id)
		if err != nil {
			return nil, err
		}
		r.recorded += pk
	}
	r.srvCPU = cpuSeconds(pid) - cpu0
	return r, nil
}

func (s *server) waitStored(callID string) (string, error) {
	body := fmt.Sprintf(`{"call_id":%q,"patient":"191212121212"}`, callID)
	for i := 0; i < 600; i++ {
		resp, err := s.capture.Post("https://"+s.api+"/v1/recordings/link", "application/json", strings.NewReader(body))
		if err != nil {
			return "", err
		}
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if resp.StatusCode == 200 && m["state"] == "stored" {
			return m["recording_id"].(string), nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("%s not stored", callID)
}

// packets sums the packets the recorder wrote into recording id.
func (s *server) packets(id string) (int64, error) {
	req, _ := http.NewRequest("GET", "https://"+s.api+"/v1/recordings/"+id, nil)
	req.Header.Set("X-Purpose", "care")
	resp, err := s.nurse.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var d struct {
		CaptureStats struct {
			Streams []struct {
				Packets int64 `json:"packets"`
				Late    int64 `json:"late"`
			} `json:"streams"`
		} `json:"capture_stats"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		return 0, err
	}
	var n int64
	for _, st := range d.CaptureStats.Streams {
		n += st.Packets - st.Late
	}
	return n, nil
}
