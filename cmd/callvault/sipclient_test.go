package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// sipClient is a minimal recording client over TCP or TLS for tests that
// need bodies sipp cannot send (the interop corpus, SRTP keys, hostile
// input). It speaks plain SIP text; the server under test is the peer.
type sipClient struct {
	t      *testing.T
	conn   net.Conn
	r      *bufio.Reader
	proto  string // "TCP" or "TLS"
	callID string
	tag    string
	toTag  string
	cseq   int
}

func dialSIP(t *testing.T, addr string, tlsCfg *tls.Config, callID string) *sipClient {
	t.Helper()
	var conn net.Conn
	var err error
	proto := "TCP"
	if tlsCfg != nil {
		conn, err = tls.Dial("tcp", addr, tlsCfg)
		proto = "TLS"
	} else {
		conn, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &sipClient{t: t, conn: conn, r: bufio.NewReader(conn), proto: proto, callID: callID, tag: "src" + strconv.Itoa(int(time.Now().UnixNano()%1e6))}
}

// send writes one request in the dialog.
func (c *sipClient) send(method, contentType string, body []byte) {
	c.t.Helper()
	if method != "ACK" {
		c.cseq++
	}
	to := "<sip:srs@callvault.test>"
	if c.toTag != "" {
		to += ";tag=" + c.toTag
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:srs@callvault.test SIP/2.0\r\n", method)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s;branch=z9hG4bK%s%d%s\r\n", c.proto, c.conn.LocalAddr(), c.tag, c.cseq, method)
	fmt.Fprintf(&b, "From: <sip:src@sbc.example.net>;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n", c.tag, to, c.callID, c.cseq, method)
	fmt.Fprintf(&b, "Contact: <sip:src@%s;transport=%s>;+sip.src\r\nMax-Forwards: 70\r\n", c.conn.LocalAddr(), strings.ToLower(c.proto))
	if method == "INVITE" && c.toTag == "" {
		b.WriteString("Require: siprec\r\n")
	}
	if len(body) > 0 {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", contentType)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	if _, err := io.WriteString(c.conn, b.String()+string(body)); err != nil {
		c.t.Fatal(err)
	}
}

// response reads the next final response (skipping 1xx).
func (c *sipClient) response() (int, string, []byte) {
	c.t.Helper()
	for {
		c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading SIP response: %v", err)
		}
		var code int
		fmt.Sscanf(line, "SIP/2.0 %d", &code)
		length, head := 0, line
		for {
			h, err := c.r.ReadString('\n')
			if err != nil {
				c.t.Fatal(err)
			}
			head += h
			if h == "\r\n" {
				break
			}
			name, value, _ := strings.Cut(h, ":")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "content-length", "l":
				length, _ = strconv.Atoi(strings.TrimSpace(value))
			case "to", "t":
				if m := regexp.MustCompile(`tag=([^;\s]+)`).FindStringSubmatch(value); m != nil && c.toTag == "" && code >= 200 && code < 300 {
					c.toTag = m[1]
				}
			}
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(c.r, body); err != nil {
			c.t.Fatal(err)
		}
		if code >= 200 {
			return code, head, body
		}
	}
}

// answerPorts returns the media ports of an SDP answer, 0 for rejected
// m-lines, and the first payload type of each.
func answerPorts(sdp []byte) (ports []int, pts []uint8) {
	for _, m := range regexp.MustCompile(`(?m)^m=audio (\d+) \S+ (\d+)`).FindAllSubmatch(sdp, -1) {
		p, _ := strconv.Atoi(string(m[1]))
		pt, _ := strconv.Atoi(string(m[2]))
		ports = append(ports, p)
		pts = append(pts, uint8(pt))
	}
	return ports, pts
}

// sendRTP sends n 20-ms packets of payload byte fill to port, from a
// fresh loopback socket, SRTP-protected under key if key is not nil. It
// may run in its own goroutine, so it reports errors with t.Error.
func sendRTP(t *testing.T, port int, pt uint8, ssrc uint32, n int, fill byte, key []byte) {
	conn, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close()
	var sctx *srtp.Context
	if key != nil {
		if sctx, err = srtp.CreateContext(key[:16], key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80); err != nil {
			t.Error(err)
			return
		}
	}
	payload := make([]byte, 160)
	for i := range payload {
		payload[i] = fill
	}
	start := time.Now()
	for k := 0; k < n; k++ {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: uint16(k + 100), Timestamp: uint32(k * 160), SSRC: ssrc}, Payload: payload}
		b, err := p.Marshal()
		if err == nil && sctx != nil {
			b, err = sctx.EncryptRTP(nil, b, nil)
		}
		if err != nil {
			t.Error(err)
			return
		}
		conn.Write(b)
		time.Sleep(time.Until(start.Add(time.Duration(k+1) * 20 * time.Millisecond)))
	}
}
