// Package siptest generates what a SIPREC recording client sends, for the
// tests and benchmarks of callvault's recording server: RTP captures of
// known audio for sipp's play_pcap_audio, and sipp UAC scenarios with the
// multipart INVITE (SDP + RFC 7865 metadata), re-INVITEs and BYE. The
// audio is synthetic; the parties' addresses are fictional.
package siptest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"

	"callvault/internal/audio"
)

// Leg is one RTP stream a recording client sends: G.711 μ-law of known samples.
type Leg struct {
	PortOffset int    // added to the answer's first media port (0, 2, …)
	SSRC       uint32 // RTP SSRC
	Samples    []int16
	StartMS    int // first packet at this offset from the pcap's start
	GapAtMS    int // no packets in [gapAtMS, gapAtMS+gapMS) of the leg's own time
	GapMS      int
}

// NoiseSamples returns n pseudo-random samples (unique alignment, unlike a
// tone) of moderate level, already on the μ-law grid.
func NoiseSamples(seed uint64, n int) []int16 {
	r := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	out := make([]int16, n)
	for i := range out {
		out[i] = audio.DecodeMuLaw(audio.EncodeMuLaw(int16(r.IntN(16000) - 8000)))
	}
	return out
}

// WritePcap writes the legs as an Ethernet/IPv4/UDP/RTP capture, 20 ms
// packets, in time order, for sipp's play_pcap_audio: sipp sends each
// packet to the answered media port plus the packet's destination port
// minus the lowest in the file (so portOffset picks the m-line). During a
// gap the RTP timestamp keeps running, as a sender's clock does.
func WritePcap(path string, legs []Leg) error {
	type pkt struct {
		at   int // µs
		data []byte
	}
	var pkts []pkt
	for _, l := range legs {
		seq := uint16(l.SSRC)
		for k := 0; k*160 < len(l.Samples); k++ {
			ms := k * 20
			if l.GapMS > 0 && ms >= l.GapAtMS {
				ms += l.GapMS
			}
			ts := uint32(ms*8) + l.SSRC
			payload := make([]byte, 0, 160)
			for _, s := range l.Samples[k*160 : min((k+1)*160, len(l.Samples))] {
				payload = append(payload, audio.EncodeMuLaw(s))
			}
			rtp := []byte{0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
			if k == 0 {
				rtp[1] = 0x80 // marker
			}
			binary.BigEndian.PutUint16(rtp[2:], seq)
			binary.BigEndian.PutUint32(rtp[4:], ts)
			binary.BigEndian.PutUint32(rtp[8:], l.SSRC)
			seq++
			udpLen := 8 + len(rtp) + len(payload)
			frame := make([]byte, 14+20, 14+20+udpLen)
			copy(frame[12:], []byte{0x08, 0x00})
			ip := frame[14:]
			ip[0] = 0x45
			binary.BigEndian.PutUint16(ip[2:], uint16(20+udpLen))
			ip[8], ip[9] = 64, 17
			copy(ip[12:], []byte{127, 0, 0, 1})
			copy(ip[16:], []byte{127, 0, 0, 1})
			udp := make([]byte, 8)
			binary.BigEndian.PutUint16(udp[0:], uint16(40000+l.PortOffset))
			binary.BigEndian.PutUint16(udp[2:], uint16(40000+l.PortOffset))
			binary.BigEndian.PutUint16(udp[4:], uint16(udpLen))
			frame = append(append(append(frame, udp...), rtp...), payload...)
			pkts = append(pkts, pkt{at: (l.StartMS + ms) * 1000, data: frame})
		}
	}
	// In time order; the legs interleave.
	slices.SortStableFunc(pkts, func(a, b pkt) int { return a.at - b.at })
	var b bytes.Buffer
	hdr := []any{uint32(0xa1b2c3d4), uint16(2), uint16(4), int32(0), uint32(0), uint32(65535), uint32(1)}
	for _, v := range hdr {
		binary.Write(&b, binary.LittleEndian, v)
	}
	base := 1_700_000_000
	for _, p := range pkts {
		binary.Write(&b, binary.LittleEndian, []uint32{uint32(base + p.at/1e6), uint32(p.at % 1e6), uint32(len(p.data)), uint32(len(p.data))})
		b.Write(p.data)
	}
	return os.WriteFile(path, b.Bytes(), 0o600)
}

// Scenario is a UAC scenario for sipp acting as the recording client.
type Scenario struct {
	Token  string // unique per run: the recorded call of call N is orig-Token-N
	Pcap   string // played after the ACK, if set
	HoldMS int    // time between ACK and BYE
	// Pauses are the times (ms after the ACK) of re-INVITEs that pause
	// (a=inactive) and resume (a=sendonly) the recording, alternately, or
	// as Directions says when it is set (one a= direction per re-INVITE).
	Pauses     []int
	Directions []string
}

// Invite is the initial INVITE of a scenario: {{SDP}} and {{TOKEN}} are
// replaced by the offer and the scenario's token.
const Invite = `INVITE sip:srs@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:src@[local_ip]:[local_port]>;tag=[pid]src[call_number]
To: <sip:srs@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:src@[local_ip]:[local_port]>;+sip.src
Require: siprec
Max-Forwards: 70
Content-Type: multipart/mixed;boundary=cvboundary
Content-Length: [len]

--cvboundary
Content-Type: application/sdp

{{SDP}}
--cvboundary
Content-Type: application/rs-metadata+xml
Content-Disposition: recording-session

<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
<datamode>complete</datamode>
<session session_id="s1"><sipSessionID>{{TOKEN}}-[call_number]</sipSessionID></session>
<participant participant_id="p1"><nameID aor="sip:+46701740605@sbc.example.net"/></participant>
<participant participant_id="p2"><nameID aor="sip:sjukskoterska.a@1177.example.se"/></participant>
<stream stream_id="st1" session_id="s1"><label>1</label></stream>
<stream stream_id="st2" session_id="s1"><label>2</label></stream>
<participantstreamassoc participant_id="p1"><send>st1</send></participantstreamassoc>
<participantstreamassoc participant_id="p2"><send>st2</send></participantstreamassoc>
<extensiondata><callid>orig-{{TOKEN}}-[call_number]</callid></extensiondata>
</recording>
--cvboundary--
`

// SDP is the two-stream offer (labels 1 and 2, PCMU) with a=dir.
func SDP(dir string) string {
	return fmt.Sprintf(`v=0
o=src 1 1 IN IP4 [media_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=label:1
a=%[1]s
m=audio [media_port+2] RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=label:2
a=%[1]s`, dir)
}

// InDialog is a request of method in the dialog, with an optional SDP body.
func InDialog(method string, cseq int, body string) string {
	ct := ""
	if body != "" {
		ct = "Content-Type: application/sdp\n"
	}
	return fmt.Sprintf(`<send retrans="500"><![CDATA[
%[1]s sip:srs@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:src@[local_ip]:[local_port]>;tag=[pid]src[call_number]
To: <sip:srs@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: %[2]d %[1]s
Contact: <sip:src@[local_ip]:[local_port]>;+sip.src
Max-Forwards: 70
%[3]sContent-Length: [len]

%[4]s
]]></send>
`, method, cseq, ct, body)
}

// Ack acknowledges the INVITE with CSeq cseq.
func Ack(cseq int) string {
	return fmt.Sprintf(`<send><![CDATA[
ACK sip:srs@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:src@[local_ip]:[local_port]>;tag=[pid]src[call_number]
To: <sip:srs@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: %d ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
`, cseq)
}

// XML renders the scenario; run it with sipp -cid_str TOKEN-%u@%s so
// that the recorded call of call N has the call ID orig-TOKEN-N.
func (sc Scenario) XML() string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="ISO-8859-1" ?>` + "\n<scenario name=\"callvault-src\">\n")
	b.WriteString(`<send retrans="500"><![CDATA[` + "\n" + strings.Replace(Invite, "{{SDP}}", SDP("sendonly"), 1) + "]]></send>\n")
	b.WriteString(`<recv response="100" optional="true"/>` + "\n" + `<recv response="200"/>` + "\n")
	b.WriteString(Ack(1))
	if sc.Pcap != "" {
		fmt.Fprintf(&b, `<nop><action><exec play_pcap_audio="%s"/></action></nop>`+"\n", sc.Pcap)
	}
	cseq, at := 2, 0
	for i, p := range sc.Pauses {
		fmt.Fprintf(&b, "<pause milliseconds=\"%d\"/>\n", p-at)
		at = p
		dir := "inactive"
		if i < len(sc.Directions) {
			dir = sc.Directions[i]
		} else if i%2 == 1 {
			dir = "sendonly"
		}
		b.WriteString(InDialog("INVITE", cseq, SDP(dir)))
		b.WriteString(`<recv response="100" optional="true"/>` + "\n" + `<recv response="200"/>` + "\n")
		b.WriteString(Ack(cseq))
		cseq++
	}
	fmt.Fprintf(&b, "<pause milliseconds=\"%d\"/>\n", sc.HoldMS-at)
	b.WriteString(InDialog("BYE", cseq, ""))
	b.WriteString(`<recv response="200"/>` + "\n</scenario>\n")
	return strings.ReplaceAll(b.String(), "{{TOKEN}}", sc.Token)
}
