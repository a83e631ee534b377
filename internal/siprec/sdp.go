package siprec

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
)

// offerStream is one m-line of an SDP offer as the recorder needs it.
type offerStream struct {
	Index     int
	Audio     bool
	Port      int
	Proto     string   // "RTP/AVP" or "RTP/SAVP" (others are refused)
	Formats   []string // payload types as offered
	Label     string
	Direction string // sendonly, sendrecv, recvonly, inactive
	Codec     uint8  // chosen G.711 payload type (0 or 8); valid if OK
	Event     string // telephone-event payload type if offered
	Crypto    *sdesKey
	OK        bool // a stream the recorder takes
	Why       string
}

// sdesKey is one SDES crypto attribute (RFC 4568).
type sdesKey struct {
	Tag     string
	Suite   string
	Key     []byte // master key || master salt
	Profile srtp.ProtectionProfile
}

// offer is a parsed SDP offer.
type offer struct {
	Addr    netip.Addr // connection address of the media source
	Streams []*offerStream
}

var errSDP = errors.New("siprec: malformed SDP")

// Limits on an offer the recorder takes.
const (
	maxStreams = 8
	maxSDP     = 16 << 10
)

// parseOffer parses an SDP offer with pion/sdp and decides for each m-line
// whether the recorder takes it. secure is true when the signalling came
// over TLS: only then is RTP/SAVP (SDES keys travel in the SDP) accepted.
func parseOffer(b []byte, secure bool) (*offer, error) {
	if len(b) > maxSDP {
		return nil, fmt.Errorf("%w: larger than %d bytes", errSDP, maxSDP)
	}
	text := string(b)
	if !strings.HasSuffix(text, "\n") {
		// A multipart body's last line break belongs to the delimiter.
		text += "\r\n"
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(text); err != nil {
		return nil, fmt.Errorf("%w: %w", errSDP, err)
	}
	if len(sd.MediaDescriptions) == 0 {
		return nil, fmt.Errorf("%w: no media", errSDP)
	}
	if len(sd.MediaDescriptions) > maxStreams {
		return nil, fmt.Errorf("%w: more than %d media streams", errSDP, maxStreams)
	}
	o := &offer{}
	if sd.ConnectionInformation != nil && sd.ConnectionInformation.Address != nil {
		o.Addr, _ = netip.ParseAddr(sd.ConnectionInformation.Address.Address)
	}
	for i, md := range sd.MediaDescriptions {
		st := &offerStream{Index: i, Audio: md.MediaName.Media == "audio", Port: md.MediaName.Port.Value,
			Proto: strings.Join(md.MediaName.Protos, "/"), Formats: md.MediaName.Formats, Direction: "sendrecv"}
		if md.ConnectionInformation != nil && md.ConnectionInformation.Address != nil && !o.Addr.IsValid() {
			o.Addr, _ = netip.ParseAddr(md.ConnectionInformation.Address.Address)
		}
		rtpmap := map[string]string{}
		for _, a := range md.Attributes {
			switch a.Key {
			case "label":
				st.Label = strings.TrimSpace(a.Value)
			case "sendonly", "sendrecv", "recvonly", "inactive":
				st.Direction = a.Key
			case "rtpmap":
				pt, enc, _ := strings.Cut(a.Value, " ")
				rtpmap[pt] = strings.ToUpper(enc)
			case "crypto":
				if st.Crypto == nil {
					st.Crypto = parseCrypto(a.Value)
				}
			}
		}
		o.Streams = append(o.Streams, st)
		switch {
		case !st.Audio:
			st.Why = "not audio"
			continue
		case st.Port == 0:
			st.Why = "disabled by the offer"
			continue
		case st.Proto != "RTP/AVP" && st.Proto != "RTP/SAVP":
			st.Why = "unsupported profile " + st.Proto
			continue
		case st.Proto == "RTP/SAVP" && !secure:
			st.Why = "RTP/SAVP offered over unencrypted signalling"
			continue
		case st.Proto == "RTP/SAVP" && st.Crypto == nil:
			st.Why = "RTP/SAVP without a supported crypto attribute"
			continue
		}
		for _, f := range st.Formats {
			enc := rtpmap[f]
			switch {
			case f == "0" && (enc == "" || strings.HasPrefix(enc, "PCMU/8000")),
				f == "8" && (enc == "" || strings.HasPrefix(enc, "PCMA/8000")):
				if !st.OK {
					n, _ := strconv.Atoi(f)
					st.Codec, st.OK = uint8(n), true
				}
			case strings.HasPrefix(enc, "TELEPHONE-EVENT/8000"):
				st.Event = f
			}
		}
		if !st.OK {
			st.Why = "no PCMU or PCMA"
		}
	}
	return o, nil
}

// parseCrypto parses "tag suite inline:KEY[|lifetime][|MKI]"; nil if the
// suite is not one the recorder supports.
func parseCrypto(v string) *sdesKey {
	f := strings.Fields(v)
	if len(f) < 3 {
		return nil
	}
	var prof srtp.ProtectionProfile
	switch f[1] {
	case "AES_CM_128_HMAC_SHA1_80":
		prof = srtp.ProtectionProfileAes128CmHmacSha1_80
	case "AES_CM_128_HMAC_SHA1_32":
		prof = srtp.ProtectionProfileAes128CmHmacSha1_32
	default:
		return nil
	}
	inline, ok := strings.CutPrefix(f[2], "inline:")
	if !ok {
		return nil
	}
	inline, _, _ = strings.Cut(inline, "|")
	key, err := base64.StdEncoding.DecodeString(inline)
	if err != nil {
		if key, err = base64.RawStdEncoding.DecodeString(inline); err != nil {
			return nil
		}
	}
	if len(key) != 30 {
		return nil
	}
	return &sdesKey{Tag: f[0], Suite: f[1], Key: key, Profile: prof}
}

// answerStream is how the recorder answers one offered m-line.
type answerStream struct {
	Port   int // 0 rejects the stream
	Paused bool
	Key    []byte // our SDES key for a RTP/SAVP answer
}

// buildAnswer writes the SDP answer for o: every offered m-line in order,
// the same profile as offered, recvonly (inactive where the offer was
// inactive or the stream is rejected).
func buildAnswer(o *offer, host string, sessionID, version uint64, ans []answerStream) []byte {
	var b strings.Builder
	ipv := "IP4"
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
		ipv = "IP6"
	}
	fmt.Fprintf(&b, "v=0\r\no=callvault %d %d IN %s %s\r\ns=callvault\r\nc=IN %s %s\r\nt=0 0\r\n",
		sessionID, version, ipv, host, ipv, host)
	for i, st := range o.Streams {
		a := ans[i]
		media := "audio"
		if !st.Audio {
			media = "application"
		}
		proto := st.Proto
		if proto == "" {
			proto = "RTP/AVP"
		}
		if a.Port == 0 {
			formats := strings.Join(st.Formats, " ")
			if formats == "" {
				formats = "0"
			}
			fmt.Fprintf(&b, "m=%s 0 %s %s\r\n", media, proto, formats)
			continue
		}
		formats := strconv.Itoa(int(st.Codec))
		if st.Event != "" {
			formats += " " + st.Event
		}
		fmt.Fprintf(&b, "m=audio %d %s %s\r\n", a.Port, proto, formats)
		if st.Codec == 0 {
			b.WriteString("a=rtpmap:0 PCMU/8000\r\n")
		} else {
			b.WriteString("a=rtpmap:8 PCMA/8000\r\n")
		}
		if st.Event != "" {
			fmt.Fprintf(&b, "a=rtpmap:%s telephone-event/8000\r\n", st.Event)
		}
		if st.Label != "" {
			fmt.Fprintf(&b, "a=label:%s\r\n", st.Label)
		}
		if st.Crypto != nil && proto == "RTP/SAVP" {
			fmt.Fprintf(&b, "a=crypto:%s %s inline:%s\r\n", st.Crypto.Tag, st.Crypto.Suite, base64.StdEncoding.EncodeToString(a.Key))
		}
		if a.Paused || st.Direction == "inactive" || st.Direction == "recvonly" {
			b.WriteString("a=inactive\r\n")
		} else {
			b.WriteString("a=recvonly\r\n")
		}
	}
	return []byte(b.String())
}
