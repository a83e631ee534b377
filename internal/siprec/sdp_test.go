package siprec

import (
	"encoding/base64"
	"strings"
	"testing"
)

const offerTwo = "v=0\r\no=src 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n" +
	"m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=label:1\r\na=sendonly\r\n" +
	"m=audio 40002 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\na=label:2\r\na=sendonly\r\n" +
	"m=video 40004 RTP/AVP 96\r\na=label:3\r\n"

func TestParseOffer(t *testing.T) {
	o, err := parseOffer([]byte(offerTwo), false)
	if err != nil {
		t.Fatal(err)
	}
	if o.Addr.String() != "192.0.2.10" || len(o.Streams) != 3 {
		t.Fatalf("offer %+v", o)
	}
	s0, s1, s2 := o.Streams[0], o.Streams[1], o.Streams[2]
	if !s0.OK || s0.Codec != 8 || s0.Event != "101" || s0.Label != "1" || s0.Direction != "sendonly" {
		t.Errorf("stream 0 %+v", s0)
	}
	if s1.OK || s1.Why != "no PCMU or PCMA" || s2.OK || s2.Why != "not audio" {
		t.Errorf("streams 1, 2: %+v %+v", s1, s2)
	}
	// The answer: same order, same profile, chosen codec, recvonly, ports 0 for the rest.
	ans := string(buildAnswer(o, "127.0.0.1", 7, 1, []answerStream{{Port: 20000}, {}, {}}))
	for _, want := range []string{"m=audio 20000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=label:1\r\na=recvonly\r\n",
		"m=audio 0 RTP/AVP 18\r\n", "m=application 0 RTP/AVP 96\r\n", "c=IN IP4 127.0.0.1\r\n"} {
		if !strings.Contains(ans, want) {
			t.Errorf("answer lacks %q:\n%s", want, ans)
		}
	}
	if _, err := parseOffer([]byte(ans), false); err != nil {
		t.Errorf("our own answer does not parse: %v", err)
	}
}

func TestParseOfferSRTP(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcd"))
	savp := "v=0\r\no=src 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n" +
		"m=audio 40000 RTP/SAVP 0\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" + key + "|2^31\r\na=sendonly\r\n"
	for _, tc := range []struct {
		secure bool
		ok     bool
		why    string
	}{{false, false, "RTP/SAVP offered over unencrypted signalling"}, {true, true, ""}} {
		o, err := parseOffer([]byte(savp), tc.secure)
		if err != nil {
			t.Fatal(err)
		}
		st := o.Streams[0]
		if st.OK != tc.ok || st.Why != tc.why {
			t.Errorf("secure=%v: ok=%v why=%q", tc.secure, st.OK, st.Why)
		}
		if tc.ok {
			if st.Crypto == nil || st.Crypto.Tag != "2" || string(st.Crypto.Key) != "0123456789abcdef0123456789abcd" {
				t.Errorf("crypto %+v", st.Crypto)
			}
			ans := string(buildAnswer(o, "127.0.0.1", 1, 1, []answerStream{{Port: 20000, Key: make([]byte, 30)}}))
			if !strings.Contains(ans, "m=audio 20000 RTP/SAVP 0\r\n") || !strings.Contains(ans, "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:") {
				t.Errorf("SAVP answer:\n%s", ans)
			}
		}
	}
	// Unsupported suite or a malformed key: no crypto, so not taken.
	for _, bad := range []string{"a=crypto:1 F8_128_HMAC_SHA1_80 inline:" + key, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:short", "a=crypto:1"} {
		o, err := parseOffer([]byte(strings.Replace(savp, "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:"+key+"|2^31", bad, 1)), true)
		if err != nil {
			t.Fatal(err)
		}
		if o.Streams[0].OK {
			t.Errorf("%q taken", bad)
		}
	}
}

func TestParseOfferRejects(t *testing.T) {
	for _, bad := range []string{"", "not sdp", "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n", strings.Repeat("a", maxSDP+1)} {
		if _, err := parseOffer([]byte(bad), false); err == nil {
			t.Errorf("%.20q accepted", bad)
		}
	}
	many := "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n" + strings.Repeat("m=audio 4000 RTP/AVP 0\r\n", maxStreams+1)
	if _, err := parseOffer([]byte(many), false); err == nil {
		t.Error("more than maxStreams m-lines accepted")
	}
}

// FuzzParseOffer: hostile SDP never panics, and what is taken is always
// a G.711 audio stream on a real port.
func FuzzParseOffer(f *testing.F) {
	f.Add([]byte(offerTwo), false)
	f.Add([]byte("v=0\r\nm=audio 1 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n"), true)
	f.Fuzz(func(t *testing.T, b []byte, secure bool) {
		o, err := parseOffer(b, secure)
		if err != nil {
			return
		}
		ans := make([]answerStream, len(o.Streams))
		for i, st := range o.Streams {
			if st.OK {
				if !st.Audio || st.Port == 0 || (st.Codec != 0 && st.Codec != 8) {
					t.Fatalf("took %+v", st)
				}
				ans[i].Port = 20000 + 2*i
			}
		}
		buildAnswer(o, "127.0.0.1", 1, 1, ans)
	})
}
