package rsmeta_test

import (
	"errors"
	"fmt"
	"strings"

	"callvault/internal/rsmeta"
)

func ExampleSplitBody() {
	body := strings.ReplaceAll(`--foobar
Content-Type: application/sdp

v=0
o=SRC 1 1 IN IP4 192.0.2.10
s=SIPREC
c=IN IP4 192.0.2.10
t=0 0
m=audio 40000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=label:1
a=sendonly

--foobar
Content-Type: application/rs-metadata+xml
Content-Disposition: recording-session

<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>complete</datamode></recording>
--foobar--
`, "\n", "\r\n")
	sdp, meta, err := rsmeta.SplitBody("multipart/mixed;boundary=foobar", []byte(body))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("SDP has %d m-line(s); metadata present: %v\n", strings.Count(string(sdp), "\nm="), meta != nil)

	_, _, err = rsmeta.SplitBody("multipart/mixed", []byte(body))
	fmt.Println(errors.Is(err, rsmeta.ErrMalformed))
	// Output:
	// SDP has 1 m-line(s); metadata present: true
	// true
}

func ExampleParse() {
	m, err := rsmeta.Parse([]byte(`<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <participant participant_id="p1"><nameID aor="sip:+46701740605@sbc.example.net"/></participant>
  <participant participant_id="p2"><nameID aor="sip:nurse.a@vard.example.se"><name>Nurse A</name></nameID></participant>
  <stream stream_id="s1"><label>1</label></stream>
  <stream stream_id="s2"><label>2</label></stream>
  <participantstreamassoc participant_id="p1"><send>s1</send></participantstreamassoc>
  <participantstreamassoc participant_id="p2"><send>s2</send></participantstreamassoc>
</recording>`))
	if err != nil {
		fmt.Println(err)
		return
	}
	// Which party speaks on the m-line with a=label:2?
	if s := m.StreamByLabel("2"); s != nil {
		if p := m.Sender(s.ID); p != nil {
			fmt.Println(p.Names, p.AORs)
		}
	}
	// Output:
	// [Nurse A] [sip:nurse.a@vard.example.se]
}
