package rsmeta

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// testSDP is a minimal SRC offer (LF line endings; crlf converts).
const testSDP = `v=0
o=SRC 1772438047 1 IN IP4 192.0.2.10
s=SIPREC
c=IN IP4 192.0.2.10
t=0 0
m=audio 40000 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=label:1
a=sendonly
`

// testMeta is a minimal metadata document carrying a (synthetic) number,
// so that error texts can be checked for not quoting it.
const testMeta = `<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <participant participant_id="p1"><nameID aor="sip:+46701740605@sbc.example.net"/></participant>
</recording>
`

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// mp builds a CRLF multipart body from parts of (headers, content); nl is
// the line ending and closing says whether to write the close delimiter.
func mp(boundary, nl string, closing bool, parts ...[2]string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString("--" + boundary + nl)
		if p[0] != "" {
			b.WriteString(strings.ReplaceAll(p[0], "\n", nl) + nl)
		}
		b.WriteString(nl)
		b.WriteString(strings.ReplaceAll(p[1], "\n", nl))
		b.WriteString(nl)
	}
	if closing {
		b.WriteString("--" + boundary + "--" + nl)
	}
	return b.String()
}

var (
	sdpPart  = [2]string{"Content-Type: application/sdp", testSDP}
	metaPart = [2]string{"Content-Type: application/rs-metadata+xml\nContent-Disposition: recording-session", testMeta}
)

func TestSplitBody(t *testing.T) {
	sdpCRLF, metaCRLF := crlf(testSDP), crlf(testMeta)
	tests := []struct {
		name     string
		ct       string
		body     string
		sdp      string
		meta     string // "" means nil
		metaNone bool
	}{
		{name: "plain sdp", ct: "application/sdp", body: sdpCRLF, sdp: sdpCRLF},
		{name: "plain sdp, media type case", ct: "Application/SDP", body: sdpCRLF, sdp: sdpCRLF},
		{name: "plain sdp, parameters", ct: "application/sdp; charset=UTF-8", body: sdpCRLF, sdp: sdpCRLF},
		{name: "rfc 7866 form", ct: "multipart/mixed;boundary=foobar",
			body: mp("foobar", "\r\n", true, sdpPart, metaPart), sdp: sdpCRLF, meta: metaCRLF},
		{name: "extra parameter after boundary", ct: "multipart/mixed;boundary=foobar;charset=UTF-8",
			body: mp("foobar", "\r\n", true, sdpPart, metaPart), sdp: sdpCRLF, meta: metaCRLF},
		{name: "quoted boundary and type parameter", ct: `multipart/mixed; boundary="uniqueBoundary"; type=application/sdp`,
			body: mp("uniqueBoundary", "\r\n", true, sdpPart, metaPart), sdp: sdpCRLF, meta: metaCRLF},
		{name: "parameters in other order and case", ct: `MultiPart/Mixed ; Charset="utf-8";BOUNDARY=b1 `,
			body: mp("b1", "\r\n", true, sdpPart, metaPart), sdp: sdpCRLF, meta: metaCRLF},
		{name: "multipart/related", ct: `multipart/related;type="application/sdp";boundary=rel`,
			body: mp("rel", "\r\n", true, sdpPart, metaPart), sdp: sdpCRLF, meta: metaCRLF},
		{name: "multipart/alternative", ct: `multipart/alternative; boundary=alt`,
			body: mp("alt", "\r\n", true, sdpPart, metaPart), sdp: sdpCRLF, meta: metaCRLF},
		{name: "unquoted boundary with tspecials", ct: `multipart/mixed;boundary=a:b=c`,
			body: mp("a:b=c", "\r\n", true, sdpPart, metaPart), sdp: sdpCRLF, meta: metaCRLF},
		{name: "quoted boundary with escape", ct: `multipart/mixed;boundary="q\"x"`,
			body: mp(`q"x`, "\r\n", true, sdpPart, metaPart), sdp: sdpCRLF, meta: metaCRLF},
		{name: "part content type with parameters", ct: "multipart/mixed;boundary=b",
			body: mp("b", "\r\n", true,
				[2]string{"Content-Type: application/sdp; charset=utf-8", testSDP},
				[2]string{"Content-Type: application/rs-metadata+xml; charset=UTF-8\nContent-Disposition: recording-session", testMeta}),
			sdp: sdpCRLF, meta: metaCRLF},
		{name: "part header names and types in other case", ct: "multipart/mixed;boundary=b",
			body: mp("b", "\r\n", true,
				[2]string{"content-type:Application/SDP", testSDP},
				[2]string{"CONTENT-TYPE:  Application/RS-Metadata+XML", testMeta}),
			sdp: sdpCRLF, meta: metaCRLF},
		{name: "no content-disposition", ct: "multipart/mixed;boundary=b",
			body: mp("b", "\r\n", true, sdpPart, [2]string{"Content-Type: application/rs-metadata+xml", testMeta}),
			sdp:  sdpCRLF, meta: metaCRLF},
		{name: "folded part content type", ct: "multipart/mixed;boundary=b",
			body: mp("b", "\r\n", true, sdpPart, [2]string{"Content-Type: application/rs-metadata+xml;\n charset=UTF-8", testMeta}),
			sdp:  sdpCRLF, meta: metaCRLF},
		{name: "legacy metadata type", ct: "multipart/mixed;boundary=b",
			body: mp("b", "\r\n", true, sdpPart, [2]string{"Content-Type: application/rs-metadata", testMeta}),
			sdp:  sdpCRLF, meta: metaCRLF},
		{name: "bare LF line endings", ct: "multipart/mixed;boundary=b",
			body: mp("b", "\n", true, sdpPart, metaPart), sdp: testSDP, meta: testMeta},
		{name: "preamble and epilogue", ct: "multipart/mixed;boundary=b",
			body: "This is a multi-part message in MIME format.\r\n--b-not-a-delimiter\r\n" +
				mp("b", "\r\n", true, sdpPart, metaPart) + "epilogue\r\n--b\r\n",
			sdp: sdpCRLF, meta: metaCRLF},
		{name: "missing close delimiter", ct: "multipart/mixed;boundary=b",
			body: mp("b", "\r\n", false, sdpPart, metaPart), sdp: sdpCRLF, meta: metaCRLF + "\r\n"},
		{name: "missing close delimiter, no final line break", ct: "multipart/mixed;boundary=b",
			body: strings.TrimSuffix(mp("b", "\r\n", false, sdpPart, metaPart), "\r\n\r\n"), sdp: sdpCRLF,
			meta: strings.TrimSuffix(metaCRLF, "\r\n")},
		{name: "missing close delimiter, dangling delimiter", ct: "multipart/mixed;boundary=b",
			body: mp("b", "\r\n", false, sdpPart, metaPart) + "--b\r\n\r\n", sdp: sdpCRLF, meta: metaCRLF},
		{name: "trailing whitespace after delimiters", ct: "multipart/mixed;boundary=b",
			body: strings.NewReplacer("--b\r\n", "--b \t \r\n", "--b--\r\n", "--b--  \r\n").Replace(
				mp("b", "\r\n", true, sdpPart, metaPart)),
			sdp: sdpCRLF, meta: metaCRLF},
		{name: "metadata before sdp", ct: "multipart/mixed;boundary=b",
			body: mp("b", "\r\n", true, metaPart, sdpPart), sdp: sdpCRLF, meta: metaCRLF},
		{name: "sdp only", ct: "multipart/mixed;boundary=b",
			body: mp("b", "\r\n", true, sdpPart), sdp: sdpCRLF},
		{name: "first of several sdp and metadata parts", ct: "multipart/mixed;boundary=b",
			body: mp("b", "\r\n", true, sdpPart, metaPart,
				[2]string{"Content-Type: application/sdp", "v=0\n"},
				[2]string{"Content-Type: application/rs-metadata+xml", "<recording/>"}),
			sdp: sdpCRLF, meta: metaCRLF},
		{name: "other parts ignored", ct: "multipart/mixed;boundary=b",
			body: mp("b", "\r\n", true,
				[2]string{"Content-Type: application/isup;version=itu-t92+", "\x01\x02\x03"},
				[2]string{"", "part without headers"},
				[2]string{"Content-Type: application/sdp", ""}, // empty SDP part is skipped
				sdpPart, metaPart),
			sdp: sdpCRLF, meta: metaCRLF},
		{name: "part without blank line after headers", ct: "multipart/mixed;boundary=b",
			body: "--b\r\nContent-Type: application/sdp\r\n" + sdpCRLF + "--b--\r\n", sdp: strings.TrimSuffix(sdpCRLF, "\r\n")},
		{name: "exactly MaxParts parts", ct: "multipart/mixed;boundary=b",
			body: mp("b", "\r\n", true, sdpPart, metaPart, sdpPart, sdpPart, sdpPart, sdpPart, sdpPart, sdpPart),
			sdp:  sdpCRLF, meta: metaCRLF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sdp, meta, err := SplitBody(tt.ct, []byte(tt.body))
			if err != nil {
				t.Fatalf("SplitBody: %v", err)
			}
			if string(sdp) != tt.sdp {
				t.Errorf("sdp = %q, want %q", sdp, tt.sdp)
			}
			if tt.meta == "" && meta != nil {
				t.Errorf("meta = %q, want nil", meta)
			}
			if string(meta) != tt.meta {
				t.Errorf("meta = %q, want %q", meta, tt.meta)
			}
		})
	}
}

func TestSplitBodyErrors(t *testing.T) {
	tooMany := make([][2]string, MaxParts+1)
	for i := range tooMany {
		tooMany[i] = sdpPart
	}
	tests := []struct {
		name     string
		ct       string
		body     string
		want     error
		wantMeta bool
	}{
		{"empty body", "application/sdp", "", ErrNoSDP, false},
		{"blank body", "multipart/mixed;boundary=b", "\r\n \r\n", ErrNoSDP, false},
		{"empty content type", "", crlf(testSDP), ErrUnsupportedType, false},
		{"unparseable content type", "sdp", crlf(testSDP), ErrUnsupportedType, false},
		{"unknown content type", "text/plain", crlf(testSDP), ErrUnsupportedType, false},
		{"application/xml is not metadata", "application/xml", testMeta, ErrUnsupportedType, false},
		{"multipart without boundary", "multipart/mixed", mp("b", "\r\n", true, sdpPart), ErrMalformed, false},
		{"multipart with empty boundary", `multipart/mixed; boundary=""`, mp("b", "\r\n", true, sdpPart), ErrMalformed, false},
		{"boundary not in body", "multipart/mixed;boundary=other", mp("b", "\r\n", true, sdpPart), ErrMalformed, false},
		{"boundary prefix only", "multipart/mixed;boundary=b", "--bb\r\n\r\nv=0\r\n--b2--\r\n", ErrMalformed, false},
		{"more than MaxParts parts", "multipart/mixed;boundary=b", mp("b", "\r\n", true, tooMany...), ErrTooLarge, false},
		{"more than MaxParts parts, no close", "multipart/mixed;boundary=b", mp("b", "\r\n", false, tooMany...), ErrTooLarge, false},
		{"body over MaxBody", "application/sdp", crlf(testSDP) + strings.Repeat("a=x\r\n", MaxBody/5), ErrTooLarge, false},
		{"multipart without sdp", "multipart/mixed;boundary=b", mp("b", "\r\n", true, metaPart), ErrNoSDP, true},
		{"multipart with empty parts only", "multipart/mixed;boundary=b", "--b\r\n\r\n--b--\r\n", ErrNoSDP, false},
		{"metadata-only body", "application/rs-metadata+xml", testMeta, ErrNoSDP, true},
		{"legacy metadata-only body", "Application/RS-Metadata", testMeta, ErrNoSDP, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sdp, meta, err := SplitBody(tt.ct, []byte(tt.body))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if sdp != nil {
				t.Errorf("sdp = %q, want nil", sdp)
			}
			if got := meta != nil; got != tt.wantMeta {
				t.Errorf("meta returned = %v, want %v", got, tt.wantMeta)
			}
			checkNoEcho(t, err, tt.ct, tt.body)
		})
	}
}

// TestSplitBodyAliases documents that the results are sub-slices of body.
func TestSplitBodyAliases(t *testing.T) {
	body := []byte(mp("b", "\r\n", true, sdpPart, metaPart))
	sdp, meta, err := SplitBody("multipart/mixed;boundary=b", body)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range [][]byte{sdp, meta} {
		i := bytes.Index(body, s)
		if i < 0 || &body[i] != &s[0] {
			t.Errorf("result does not alias body")
		}
	}
}

// checkNoEcho fails if err's text quotes personal data or header values
// from the input.
func checkNoEcho(t *testing.T, err error, inputs ...string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, marker := range []string{"4670174", "nurse", "example.net", "example.se", "boundary=", "foobar"} {
		if strings.Contains(msg, marker) {
			t.Errorf("error %q quotes input (%q)", msg, marker)
		}
	}
	for _, in := range inputs {
		if len(in) >= 8 && strings.Contains(msg, in) {
			t.Errorf("error %q quotes input", msg)
		}
	}
}

func TestParseMediaType(t *testing.T) {
	tests := []struct {
		in     string
		mt     string
		params map[string]string
		ok     bool
	}{
		{"application/sdp", "application/sdp", map[string]string{}, true},
		{" Multipart/Mixed ;boundary=foobar;charset=UTF-8", "multipart/mixed", map[string]string{"boundary": "foobar", "charset": "UTF-8"}, true},
		{`multipart/mixed; boundary="uniqueBoundary"; type=application/sdp`, "multipart/mixed", map[string]string{"boundary": "uniqueBoundary", "type": "application/sdp"}, true},
		{`multipart/mixed; boundary="a;b" ;; flag; x = y `, "multipart/mixed", map[string]string{"boundary": "a;b", "x": "y"}, true},
		{`multipart/mixed; boundary=first; BOUNDARY=second`, "multipart/mixed", map[string]string{"boundary": "first"}, true},
		{`multipart/mixed; boundary="unterminated`, "multipart/mixed", map[string]string{"boundary": "unterminated"}, true},
		{`multipart/mixed; boundary="x"junk; a=b`, "multipart/mixed", map[string]string{"boundary": "x", "a": "b"}, true},
		{"", "", nil, false},
		{"application", "", nil, false},
		{"application/", "", nil, false},
		{"/sdp", "", nil, false},
		{"appli cation/sdp", "", nil, false},
	}
	for _, tt := range tests {
		mt, params, ok := parseMediaType(tt.in)
		if mt != tt.mt || ok != tt.ok || !equalMaps(params, tt.params) {
			t.Errorf("parseMediaType(%q) = %q, %v, %v; want %q, %v, %v", tt.in, mt, params, ok, tt.mt, tt.params, tt.ok)
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
