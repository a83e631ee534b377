package rsmeta

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// rfc7865Example is the metadata instance of RFC 7865 section 10 with
// synthetic identifiers, numbers and names; structure, extensions and
// associations are kept.
const rfc7865Example = `<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns='urn:ietf:params:xml:ns:recording:1'>
  <datamode>complete</datamode>
  <group group_id="R3JvdXAtc3ludGhldGljLTE=">
    <associate-time>2026-03-02T08:14:07Z</associate-time>
    <!-- Standardized extension -->
    <call-center xmlns='urn:ietf:params:xml:ns:callcenter'>
      <supervisor>sip:nurse.s@vard.example.se</supervisor>
    </call-center>
    <mydata xmlns='http://example.com/my'>
      <structure>structure!</structure>
      <whatever>structure</whatever>
    </mydata>
  </group>
  <session session_id="U2Vzc2lvbi1zeW50aGV0aWMtMQ==">
    <sipSessionID>ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2</sipSessionID>
    <group-ref>R3JvdXAtc3ludGhldGljLTE=
    </group-ref>
    <!-- Standardized extension -->
    <mydata xmlns='http://example.com/my'>
      <structure>FOO!</structure>
      <whatever>bar</whatever>
    </mydata>
  </session>
  <participant participant_id="UGFydGljaXBhbnQtMQ==">
    <nameID aor="sip:+46701740606@sbc.example.net">
      <name xml:lang="sv">+46701740606</name>
    </nameID>
    <!-- Standardized extension -->
    <mydata xmlns='http://example.com/my'>
      <structure>FOO!</structure>
      <whatever>bar</whatever>
    </mydata>
  </participant>
  <participant participant_id="UGFydGljaXBhbnQtMg==">
    <nameID aor="sip:nurse.a@vard.example.se">
      <name xml:lang="sv">Nurse A</name>
    </nameID>
    <!-- Standardized extension -->
    <mydata xmlns='http://example.com/my'>
      <structure>FOO!</structure>
      <whatever>bar</whatever>
    </mydata>
  </participant>
  <stream stream_id="U3RyZWFtLTE=" session_id="U2Vzc2lvbi1zeW50aGV0aWMtMQ==">
    <label>96</label>
  </stream>
  <stream stream_id="U3RyZWFtLTI=" session_id="U2Vzc2lvbi1zeW50aGV0aWMtMQ==">
    <label>97</label>
  </stream>
  <stream stream_id="U3RyZWFtLTM=" session_id="U2Vzc2lvbi1zeW50aGV0aWMtMQ==">
    <label>98</label>
  </stream>
  <stream stream_id="U3RyZWFtLTQ=" session_id="U2Vzc2lvbi1zeW50aGV0aWMtMQ==">
    <label>99</label>
  </stream>
  <sessionrecordingassoc session_id="U2Vzc2lvbi1zeW50aGV0aWMtMQ==">
    <associate-time>2026-03-02T08:14:07Z</associate-time>
  </sessionrecordingassoc>
  <participantsessionassoc participant_id="UGFydGljaXBhbnQtMQ==" session_id="U2Vzc2lvbi1zeW50aGV0aWMtMQ==">
    <associate-time>2026-03-02T08:14:07Z</associate-time>
  </participantsessionassoc>
  <participantsessionassoc participant_id="UGFydGljaXBhbnQtMg==" session_id="U2Vzc2lvbi1zeW50aGV0aWMtMQ==">
    <associate-time>2026-03-02T08:14:07Z</associate-time>
  </participantsessionassoc>
  <participantstreamassoc participant_id="UGFydGljaXBhbnQtMQ==">
    <send>U3RyZWFtLTI=</send>
    <send>U3RyZWFtLTE=</send>
    <recv>U3RyZWFtLTM=</recv>
    <recv>U3RyZWFtLTQ=</recv>
  </participantstreamassoc>
  <participantstreamassoc participant_id="UGFydGljaXBhbnQtMg==">
    <send>U3RyZWFtLTM=</send>
    <send>U3RyZWFtLTQ=</send>
    <recv>U3RyZWFtLTE=</recv>
    <recv>U3RyZWFtLTI=</recv>
  </participantstreamassoc>
</recording>
`

var rfc7865Want = &Metadata{
	DataMode:      "complete",
	SessionIDs:    []string{"U2Vzc2lvbi1zeW50aGV0aWMtMQ=="},
	SIPSessionIDs: []string{"ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2"},
	Participants: []Participant{
		{ID: "UGFydGljaXBhbnQtMQ==", AORs: []string{"sip:+46701740606@sbc.example.net"}, Names: []string{"+46701740606"},
			Send: []string{"U3RyZWFtLTI=", "U3RyZWFtLTE="}, Recv: []string{"U3RyZWFtLTM=", "U3RyZWFtLTQ="}},
		{ID: "UGFydGljaXBhbnQtMg==", AORs: []string{"sip:nurse.a@vard.example.se"}, Names: []string{"Nurse A"},
			Send: []string{"U3RyZWFtLTM=", "U3RyZWFtLTQ="}, Recv: []string{"U3RyZWFtLTE=", "U3RyZWFtLTI="}},
	},
	Streams: []Stream{
		{ID: "U3RyZWFtLTE=", Label: "96", SessionID: "U2Vzc2lvbi1zeW50aGV0aWMtMQ=="},
		{ID: "U3RyZWFtLTI=", Label: "97", SessionID: "U2Vzc2lvbi1zeW50aGV0aWMtMQ=="},
		{ID: "U3RyZWFtLTM=", Label: "98", SessionID: "U2Vzc2lvbi1zeW50aGV0aWMtMQ=="},
		{ID: "U3RyZWFtLTQ=", Label: "99", SessionID: "U2Vzc2lvbi1zeW50aGV0aWMtMQ=="},
	},
}

// draftExample is the form of draft-ietf-siprec-metadata before RFC 7865.
const draftExample = `<?xml version='1.0' encoding='UTF-8'?>
<recording xmlns='urn:ietf:params:xml:ns:recording'>
  <dataMode>complete</dataMode>
  <group id="Z3JvdXAtZHJhZnQ=">
    <associate-time>2026-03-02T09:01:12</associate-time>
  </group>
  <session id="c2Vzc2lvbi1kcmFmdA==">
    <group-ref>Z3JvdXAtZHJhZnQ=</group-ref>
    <start-time>2026-03-02T09:01:12</start-time>
  </session>
  <participant id="cGFydC1kcmFmdC0x" session="c2Vzc2lvbi1kcmFmdA==">
    <aor>sip:+46701740607@sbc.example.net</aor>
    <name>+46701740607</name>
    <send>c3RyZWFtLWRyYWZ0LTE=</send>
    <recv>c3RyZWFtLWRyYWZ0LTI=</recv>
    <associate-time>2026-03-02T09:01:12</associate-time>
  </participant>
  <participant id="cGFydC1kcmFmdC0y" session="c2Vzc2lvbi1kcmFmdA==">
    <nameID aor="sip:nurse.b@vard.example.se">
      <name>Nurse B</name>
    </nameID>
    <aor>tel:+46701740608</aor>
    <send>c3RyZWFtLWRyYWZ0LTI=</send>
    <recv>c3RyZWFtLWRyYWZ0LTE=</recv>
  </participant>
  <stream id="c3RyZWFtLWRyYWZ0LTE=" session="c2Vzc2lvbi1kcmFmdA==">
    <label>1</label>
    <mode>separate</mode>
  </stream>
  <stream id="c3RyZWFtLWRyYWZ0LTI=" session="c2Vzc2lvbi1kcmFmdA==">
    <label>2</label>
    <mode>separate</mode>
  </stream>
</recording>
`

var draftWant = &Metadata{
	DataMode:   "complete",
	SessionIDs: []string{"c2Vzc2lvbi1kcmFmdA=="},
	Participants: []Participant{
		{ID: "cGFydC1kcmFmdC0x", AORs: []string{"sip:+46701740607@sbc.example.net"}, Names: []string{"+46701740607"},
			Send: []string{"c3RyZWFtLWRyYWZ0LTE="}, Recv: []string{"c3RyZWFtLWRyYWZ0LTI="}},
		{ID: "cGFydC1kcmFmdC0y", AORs: []string{"sip:nurse.b@vard.example.se", "tel:+46701740608"}, Names: []string{"Nurse B"},
			Send: []string{"c3RyZWFtLWRyYWZ0LTI="}, Recv: []string{"c3RyZWFtLWRyYWZ0LTE="}},
	},
	Streams: []Stream{
		{ID: "c3RyZWFtLWRyYWZ0LTE=", Label: "1", SessionID: "c2Vzc2lvbi1kcmFmdA=="},
		{ID: "c3RyZWFtLWRyYWZ0LTI=", Label: "2", SessionID: "c2Vzc2lvbi1kcmFmdA=="},
	},
}

// twoParty returns the expected result for the small documents below:
// caller p1 and nurse p2, streams s1 (label 1) and s2 (label 2).
func twoParty() *Metadata {
	return &Metadata{
		SessionIDs: []string{"sess"},
		Participants: []Participant{
			{ID: "p1", AORs: []string{"sip:+46701740609@sbc.example.net"}, Send: []string{"s1"}, Recv: []string{"s2"}},
			{ID: "p2", AORs: []string{"sip:nurse.c@vard.example.se"}, Names: []string{"Nurse C"}, Send: []string{"s2"}, Recv: []string{"s1"}},
		},
		Streams: []Stream{{ID: "s1", Label: "1", SessionID: "sess"}, {ID: "s2", Label: "2", SessionID: "sess"}},
	}
}

// twoPartyDoc renders the twoParty document with root start tag open, a
// prefix p for every element name, and closing tag close.
func twoPartyDoc(open, p, close string) string {
	return strings.NewReplacer("P:", p).Replace(open + `
  <P:session session_id="sess"/>
  <P:participant participant_id="p1"><P:nameID aor="sip:+46701740609@sbc.example.net"/></P:participant>
  <P:participant participant_id="p2"><P:nameID aor="sip:nurse.c@vard.example.se"><P:name>Nurse C</P:name></P:nameID></P:participant>
  <P:stream stream_id="s1" session_id="sess"><P:label>1</P:label></P:stream>
  <P:stream stream_id="s2" session_id="sess"><P:label>2</P:label></P:stream>
  <P:participantstreamassoc participant_id="p1"><P:send>s1</P:send><P:recv>s2</P:recv></P:participantstreamassoc>
  <P:participantstreamassoc participant_id="p2"><P:send>s2</P:send><P:recv>s1</P:recv></P:participantstreamassoc>
` + close)
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Metadata
	}{
		{"rfc 7865 section 10 example", rfc7865Example, rfc7865Want},
		{"draft form", draftExample, draftWant},
		{"rfc namespace", twoPartyDoc(`<recording xmlns="urn:ietf:params:xml:ns:recording:1">`, "", `</recording>`), twoParty()},
		{"draft namespace", twoPartyDoc(`<recording xmlns="urn:ietf:params:xml:ns:recording">`, "", `</recording>`), twoParty()},
		{"no namespace", twoPartyDoc(`<recording>`, "", `</recording>`), twoParty()},
		{"rfc namespace with prefix", twoPartyDoc(`<rs:recording xmlns:rs="urn:ietf:params:xml:ns:recording:1">`, "rs:", `</rs:recording>`), twoParty()},
		{"draft namespace with prefix", twoPartyDoc(`<ns0:recording xmlns:ns0="urn:ietf:params:xml:ns:recording">`, "ns0:", `</ns0:recording>`), twoParty()},
		{"other namespace", twoPartyDoc(`<recording xmlns="urn:example:vendor:recording">`, "", `</recording>`), twoParty()},
		{"undeclared prefix", twoPartyDoc(`<x:recording>`, "x:", `</x:recording>`), twoParty()},
		{"element names in other case", strings.NewReplacer("nameID", "NameId", "participantstreamassoc", "participantStreamAssoc",
			"<stream ", "<Stream ", "</stream>", "</Stream>").Replace(twoPartyDoc(`<Recording>`, "", `</Recording>`)), twoParty()},
		{"bom, declaration, comments, cdata", "\xef\xbb\xbf" + twoPartyDoc(`<?xml version="1.0" encoding="utf-8"?><!-- c --><recording>`, "",
			`<label><![CDATA[ignored: label outside stream]]></label></recording><!-- trailer -->`), twoParty()},
		{"text after root is ignored", twoPartyDoc(`<recording>`, "", `</recording>trailing junk <`), twoParty()},
		{"iso-8859-1 declared", `<?xml version="1.0" encoding="ISO-8859-1"?><recording><participant id="p"><name>Sjuksk` + "\xf6" + `terska</name></participant></recording>`,
			&Metadata{Participants: []Participant{{ID: "p", Names: []string{"Sjuksköterska"}}}}},
		{"four streams, two per participant, assocs first", `<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>complete</datamode>
  <participantstreamassoc participant_id="nurse"><send>s3</send><send>s4</send><recv>s1</recv><recv>s2</recv></participantstreamassoc>
  <participantstreamassoc participant_id="caller"><send>s1</send><send>s2</send><recv>s3</recv><recv>s4</recv></participantstreamassoc>
  <session session_id="sess"/>
  <participant participant_id="caller"><nameID aor="sip:+46701740610@sbc.example.net"/></participant>
  <participant participant_id="nurse"><nameID aor="sip:nurse.d@vard.example.se"><name>Nurse D</name></nameID></participant>
  <stream stream_id="s1" session_id="sess"><label>1</label></stream>
  <stream stream_id="s2" session_id="sess"><label>2</label></stream>
  <stream stream_id="s3" session_id="sess"><label>3</label></stream>
  <stream stream_id="s4" session_id="sess"><label>4</label></stream>
</recording>`, &Metadata{
			DataMode:   "complete",
			SessionIDs: []string{"sess"},
			Participants: []Participant{
				{ID: "caller", AORs: []string{"sip:+46701740610@sbc.example.net"}, Send: []string{"s1", "s2"}, Recv: []string{"s3", "s4"}},
				{ID: "nurse", AORs: []string{"sip:nurse.d@vard.example.se"}, Names: []string{"Nurse D"}, Send: []string{"s3", "s4"}, Recv: []string{"s1", "s2"}},
			},
			Streams: []Stream{
				{ID: "s1", Label: "1", SessionID: "sess"}, {ID: "s2", Label: "2", SessionID: "sess"},
				{ID: "s3", Label: "3", SessionID: "sess"}, {ID: "s4", Label: "4", SessionID: "sess"},
			},
		}},
		{"no participantstreamassoc", `<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <session session_id="sess"/>
  <participant participant_id="p1"><nameID aor="sip:+46701740611@sbc.example.net"/></participant>
  <participant participant_id="p2"><nameID aor="sip:nurse.e@vard.example.se"/></participant>
  <stream stream_id="s1" session_id="sess"><label>1</label></stream>
  <stream stream_id="s2" session_id="sess"><label>2</label></stream>
</recording>`, &Metadata{
			SessionIDs: []string{"sess"},
			Participants: []Participant{
				{ID: "p1", AORs: []string{"sip:+46701740611@sbc.example.net"}},
				{ID: "p2", AORs: []string{"sip:nurse.e@vard.example.se"}},
			},
			Streams: []Stream{{ID: "s1", Label: "1", SessionID: "sess"}, {ID: "s2", Label: "2", SessionID: "sess"}},
		}},
		{"mixed stream sent by both", `<recording>
  <participant participant_id="p1"/><participant participant_id="p2"/>
  <stream stream_id="mix"><label>1</label></stream>
  <participantstreamassoc participant_id="p1"><send>mix</send></participantstreamassoc>
  <participantstreamassoc participant_id="p2"><send>mix</send></participantstreamassoc>
</recording>`, &Metadata{
			Participants: []Participant{{ID: "p1", Send: []string{"mix"}}, {ID: "p2", Send: []string{"mix"}}},
			Streams:      []Stream{{ID: "mix", Label: "1"}},
		}},
		{"vendor extension call ids", `<recording xmlns='urn:ietf:params:xml:ns:recording'>
  <session id="sess">
    <extensiondata xmlns:apkt="http://vendor.example.net/siprec/extensiondata">
      <apkt:ucid>00FA080018803B69810C6D;encoding=hex</apkt:ucid>
      <apkt:callid> 1a2b3c4d@sbc.example.net </apkt:callid>
      <apkt:ccsipCallId>not-a-call-id@sbc.example.net</apkt:ccsipCallId>
      <apkt:callidentity>not-a-call-id</apkt:callidentity>
    </extensiondata>
  </session>
  <participant id="p1">
    <extensiondata>
      <call-ID>1a2b3c4d@sbc.example.net</call-ID>
      <v:Call_Id xmlns:v="urn:example:v">5e6f7a8b@sbc.example.net</v:Call_Id>
      <deeper><SIP-Call-ID>9c0d1e2f@sbc.example.net</SIP-Call-ID></deeper>
      <extensiondata><sipCallId>3a4b5c6d@sbc.example.net</sipCallId></extensiondata>
      <participant id="ignored-inside-extension"><aor>sip:+46701740612@sbc.example.net</aor></participant>
      <callid></callid>
    </extensiondata>
    <callid>outside-extensiondata-ignored</callid>
  </participant>
</recording>`, &Metadata{
			SessionIDs:   []string{"sess"},
			CallIDs:      []string{"1a2b3c4d@sbc.example.net", "5e6f7a8b@sbc.example.net", "9c0d1e2f@sbc.example.net", "3a4b5c6d@sbc.example.net"},
			Participants: []Participant{{ID: "p1"}},
		}},
		{"whitespace trimmed", "<recording>\n <datamode>\n  partial\n </datamode>\n <session session_id=\" sess \">\n  <sipSessionID>\n   abc;remote=def\n  </sipSessionID>\n </session>\n" +
			" <participant participant_id=\"\tp1 \">\n  <nameID aor=\" sip:nurse.f@vard.example.se \">\n   <name>\n    Nurse F\n   </name>\n  </nameID>\n </participant>\n" +
			" <stream stream_id=\" s1\" session_id=\"sess \">\n  <label>\n   7\n  </label>\n </stream>\n" +
			" <participantstreamassoc participant_id=\"p1\">\n  <send>\n   s1\n  </send>\n  <recv>  </recv>\n </participantstreamassoc>\n</recording>\n",
			&Metadata{
				DataMode: "partial", SessionIDs: []string{"sess"}, SIPSessionIDs: []string{"abc;remote=def"},
				Participants: []Participant{{ID: "p1", AORs: []string{"sip:nurse.f@vard.example.se"}, Names: []string{"Nurse F"}, Send: []string{"s1"}}},
				Streams:      []Stream{{ID: "s1", Label: "7", SessionID: "sess"}},
			}},
		{"duplicates merged", `<recording>
  <session session_id="sess"/><session session_id="sess"/>
  <participant participant_id="p1"><nameID aor="sip:+46701740613@sbc.example.net"><name>A</name></nameID></participant>
  <stream stream_id="s1" session_id="sess"><label>1</label></stream>
  <participant participant_id="p1"><nameID aor="sip:+46701740613@sbc.example.net"><name>B</name></nameID><aor>tel:+46701740613</aor></participant>
  <stream stream_id="s1"><label>5</label></stream>
  <stream stream_id="s1" session_id="sess2"/>
  <participantstreamassoc participant_id="p1"><send>s1</send></participantstreamassoc>
  <participantstreamassoc participant_id="p1"><send>s1</send><recv>s2</recv></participantstreamassoc>
</recording>`, &Metadata{
			SessionIDs: []string{"sess"},
			Participants: []Participant{{ID: "p1", AORs: []string{"sip:+46701740613@sbc.example.net", "tel:+46701740613"},
				Names: []string{"A", "B"}, Send: []string{"s1"}, Recv: []string{"s2"}}},
			Streams: []Stream{{ID: "s1", Label: "5", SessionID: "sess2"}},
		}},
		{"assoc naming unknown participant ignored", `<recording>
  <participant participant_id="p1"/>
  <participantstreamassoc participant_id="nobody"><send>s1</send></participantstreamassoc>
  <participantstreamassoc><send>s1</send></participantstreamassoc>
  <participantstreamassoc participant_id="p1"><recv>s1</recv></participantstreamassoc>
</recording>`, &Metadata{Participants: []Participant{{ID: "p1", Recv: []string{"s1"}}}}},
		{"elements without id are kept apart", `<recording>
  <participant><aor>sip:nurse.g@vard.example.se</aor></participant>
  <participant><aor>sip:nurse.h@vard.example.se</aor></participant>
  <stream><label>1</label></stream><stream><label>2</label></stream>
</recording>`, &Metadata{
			Participants: []Participant{{AORs: []string{"sip:nurse.g@vard.example.se"}}, {AORs: []string{"sip:nurse.h@vard.example.se"}}},
			Streams:      []Stream{{Label: "1"}, {Label: "2"}},
		}},
		{"nested form: stream in session inherits its id", `<recording>
  <session id="outer"><stream id="s1"><label>1</label></stream><stream id="s2" session="own"><label>2</label></stream></session>
</recording>`, &Metadata{
			SessionIDs: []string{"outer"},
			Streams:    []Stream{{ID: "s1", Label: "1", SessionID: "outer"}, {ID: "s2", Label: "2", SessionID: "own"}},
		}},
		{"*_id attribute preferred over id", `<recording>
  <participant id="old" participant_id="new"/><stream id="old" stream_id="new"/><session id="old" session_id="new"/>
</recording>`, &Metadata{SessionIDs: []string{"new"}, Participants: []Participant{{ID: "new"}}, Streams: []Stream{{ID: "new"}}}},
		{"misplaced elements ignored", `<recording>
  <aor>sip:nowhere@sbc.example.net</aor><name>nobody</name><send>s</send><label>9</label>
  <participant participant_id="p1"><participant participant_id="inner"/><x><name>deep</name><send>s9</send></x>
    <nameID><aor>sip:nurse.i@vard.example.se</aor></nameID></participant>
  <stream stream_id="s1"><x><label>9</label></x></stream>
</recording>`, &Metadata{
			Participants: []Participant{{ID: "p1", AORs: []string{"sip:nurse.i@vard.example.se"}}},
			Streams:      []Stream{{ID: "s1"}},
		}},
		{"empty recording", `<recording/>`, &Metadata{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse =\n%#v\nwant\n%#v", got, tt.want)
			}
			checkLimits(t, got)
		})
	}
}

func TestParseErrors(t *testing.T) {
	deep := func(n int) string {
		return "<recording>" + strings.Repeat("<x>", n-1) + strings.Repeat("</x>", n-1) + "</recording>"
	}
	rep := func(n int, f string) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, f, i)
		}
		return b.String()
	}
	many := func(n int, f string) string { return "<recording>" + rep(n, f) + "</recording>" }
	long := strings.Repeat("4", MaxValueLen+1)
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrMalformed},
		{"whitespace", " \r\n", ErrMalformed},
		{"declaration only", `<?xml version="1.0"?><!-- no root -->`, ErrMalformed},
		{"not xml", "sip:+46701740614@sbc.example.net", ErrMalformed},
		{"sdp instead of xml", crlf(testSDP), ErrMalformed},
		{"wrong root", `<recordings><participant participant_id="p"/></recordings>`, ErrMalformed},
		{"wrong root with right namespace", `<session xmlns="urn:ietf:params:xml:ns:recording:1"/>`, ErrMalformed},
		{"doctype", `<!DOCTYPE recording><recording/>`, ErrMalformed},
		{"doctype after root start is not possible, inside root", `<recording><!DOCTYPE x></recording>`, ErrMalformed},
		{"entity declaration", `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "+46701740615">]><recording><participant id="&a;"/></recording>`, ErrMalformed},
		{"billion laughs", `<!DOCTYPE r [<!ENTITY l0 "ha"><!ENTITY l1 "&l0;&l0;&l0;&l0;&l0;&l0;&l0;&l0;">]><recording>&l1;</recording>`, ErrMalformed},
		{"undefined entity", `<recording><participant><name>&n4670174;</name></participant></recording>`, ErrMalformed},
		{"external entity reference", `<!DOCTYPE r SYSTEM "http://sbc.example.net/x.dtd"><recording/>`, ErrMalformed},
		{"truncated", `<recording><participant participant_id="p1"><nameID aor="sip:+46701740616@sbc.example.net">`, ErrMalformed},
		{"mismatched tags", `<recording><participant></stream></recording>`, ErrMalformed},
		{"unquoted attribute", `<recording><participant participant_id=p1/></recording>`, ErrMalformed},
		{"text before root", `+46701740617<recording/>`, ErrMalformed},
		{"unsupported encoding", `<?xml version="1.0" encoding="x-nurse-4670174"?><recording/>`, ErrMalformed},
		{"invalid utf-8", "<recording><participant><name>\xff\xfe</name></participant></recording>", ErrMalformed},
		{"over MaxBody", "<recording>" + strings.Repeat(" ", MaxBody) + "</recording>", ErrTooLarge},
		{"too many participants", many(MaxParticipants+1, `<participant participant_id="p%d"/>`), ErrTooLarge},
		{"too many participants without id", many(MaxParticipants+1, `<participant><!-- %d --></participant>`), ErrTooLarge},
		{"too many streams", many(MaxStreams+1, `<stream stream_id="s%d"/>`), ErrTooLarge},
		{"too many AORs", `<recording><participant participant_id="p">` +
			rep(MaxListLen+1, `<aor>sip:nurse.%d@vard.example.se</aor>`) + `</participant></recording>`, ErrTooLarge},
		{"too many call ids", `<recording><extensiondata>` + rep(MaxListLen+1, `<callid>c%d</callid>`) + `</extensiondata></recording>`, ErrTooLarge},
		{"too many sent streams by assoc", `<recording><participant participant_id="p"/><participantstreamassoc participant_id="p">` +
			rep(MaxListLen+1, `<send>s%d</send>`) + `</participantstreamassoc></recording>`, ErrTooLarge},
		{"too many received streams, draft form", `<recording><participant participant_id="p">` +
			rep(MaxListLen+1, `<recv>s%d</recv>`) + `</participant></recording>`, ErrTooLarge},
		{"too deep", deep(MaxDepth + 1), ErrTooLarge},
		{"value too long", `<recording><participant><name>` + long + `</name></participant></recording>`, ErrTooLarge},
		{"attribute too long", `<recording><participant participant_id="` + long + `"/></recording>`, ErrTooLarge},
		{"aor attribute too long", `<recording><participant><nameID aor="` + long + `"/></participant></recording>`, ErrTooLarge},
		{"call id too long", `<recording><extensiondata><callid>` + long + `</callid></extensiondata></recording>`, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if m != nil {
				t.Errorf("Metadata returned with error")
			}
			checkNoEcho(t, err, tt.in)
			if strings.Contains(err.Error(), "44444444") {
				t.Errorf("error %q quotes input", err)
			}
		})
	}
}

func TestParseAtLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString("<recording>")
	fmt.Fprintf(&b, `<participant participant_id="%s"><name>%s</name></participant>`, strings.Repeat("p", MaxValueLen), strings.Repeat("n", MaxValueLen))
	for i := range MaxParticipants - 1 {
		fmt.Fprintf(&b, `<participant participant_id="p%d"/>`, i)
	}
	for i := range MaxStreams {
		fmt.Fprintf(&b, `<stream stream_id="s%d"/>`, i)
	}
	// Repeats merge and do not count against the limits.
	for range 200 {
		b.WriteString(`<participant participant_id="p1"><aor>sip:+46701740618@sbc.example.net</aor></participant><stream stream_id="s0"/>`)
	}
	b.WriteString(strings.Repeat("<x>", MaxDepth-1) + strings.Repeat("</x>", MaxDepth-1))
	b.WriteString("</recording>")
	m, err := Parse([]byte(b.String()))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(m.Participants) != MaxParticipants || len(m.Streams) != MaxStreams {
		t.Errorf("got %d participants, %d streams", len(m.Participants), len(m.Streams))
	}
	if got := m.Participants[2].AORs; len(got) != 1 {
		t.Errorf("AORs of merged participant = %v", got)
	}
	checkLimits(t, m)
}

func TestStreamByLabelAndSender(t *testing.T) {
	m, err := Parse([]byte(rfc7865Example))
	if err != nil {
		t.Fatal(err)
	}
	s := m.StreamByLabel("98")
	if s == nil || s.ID != "U3RyZWFtLTM=" {
		t.Fatalf("StreamByLabel(98) = %+v", s)
	}
	if s != &m.Streams[2] {
		t.Errorf("StreamByLabel does not point into m.Streams")
	}
	p := m.Sender(s.ID)
	if p == nil || p.AORs[0] != "sip:nurse.a@vard.example.se" {
		t.Fatalf("Sender(%s) = %+v", s.ID, p)
	}
	if p != &m.Participants[1] {
		t.Errorf("Sender does not point into m.Participants")
	}
	if p := m.Sender(m.StreamByLabel("97").ID); p == nil || p.ID != "UGFydGljaXBhbnQtMQ==" {
		t.Errorf("Sender of label 97 = %+v", p)
	}
	for _, label := range []string{"", "100", " 96"} {
		if s := m.StreamByLabel(label); s != nil {
			t.Errorf("StreamByLabel(%q) = %+v, want nil", label, s)
		}
	}
	for _, id := range []string{"", "unknown"} {
		if p := m.Sender(id); p != nil {
			t.Errorf("Sender(%q) = %+v, want nil", id, p)
		}
	}
	var nilMeta *Metadata
	if nilMeta.StreamByLabel("1") != nil || nilMeta.Sender("s1") != nil {
		t.Errorf("methods on nil *Metadata returned non-nil")
	}

	// A mixed stream: the first sender in document order.
	m, err = Parse([]byte(`<recording><participant participant_id="a"/><participant participant_id="b"/>
<stream stream_id="mix"><label>1</label></stream>
<participantstreamassoc participant_id="b"><send>mix</send></participantstreamassoc>
<participantstreamassoc participant_id="a"><send>mix</send></participantstreamassoc></recording>`))
	if err != nil {
		t.Fatal(err)
	}
	if p := m.Sender("mix"); p == nil || p.ID != "a" {
		t.Errorf("Sender(mix) = %+v, want participant a", p)
	}
	// Without associations nothing is known.
	m, err = Parse([]byte(`<recording><participant participant_id="a"/><stream stream_id="s"><label>1</label></stream></recording>`))
	if err != nil {
		t.Fatal(err)
	}
	if p := m.Sender(m.StreamByLabel("1").ID); p != nil {
		t.Errorf("Sender without associations = %+v", p)
	}
}

// checkLimits fails if m breaks a promise of Parse.
func checkLimits(t testing.TB, m *Metadata) {
	t.Helper()
	if len(m.Participants) > MaxParticipants || len(m.Streams) > MaxStreams {
		t.Errorf("%d participants, %d streams: over the limits", len(m.Participants), len(m.Streams))
	}
	checkList := func(what string, l []string) {
		if l != nil && len(l) == 0 {
			t.Errorf("%s: empty non-nil list", what)
		}
		if len(l) > MaxListLen {
			t.Errorf("%s: %d entries", what, len(l))
		}
		seen := map[string]bool{}
		for _, v := range l {
			checkValue(t, what, v, false)
			if seen[v] {
				t.Errorf("%s: duplicate entry", what)
			}
			seen[v] = true
		}
	}
	checkValue(t, "DataMode", m.DataMode, true)
	checkList("SessionIDs", m.SessionIDs)
	checkList("SIPSessionIDs", m.SIPSessionIDs)
	checkList("CallIDs", m.CallIDs)
	ids := map[string]bool{}
	for _, p := range m.Participants {
		checkValue(t, "participant ID", p.ID, true)
		if p.ID != "" && ids[p.ID] {
			t.Errorf("participant ID not merged")
		}
		ids[p.ID] = true
		checkList("AORs", p.AORs)
		checkList("Names", p.Names)
		checkList("Send", p.Send)
		checkList("Recv", p.Recv)
	}
	ids = map[string]bool{}
	for _, s := range m.Streams {
		checkValue(t, "stream ID", s.ID, true)
		checkValue(t, "Label", s.Label, true)
		checkValue(t, "SessionID", s.SessionID, true)
		if s.ID != "" && ids[s.ID] {
			t.Errorf("stream ID not merged")
		}
		ids[s.ID] = true
	}
}

func checkValue(t testing.TB, what, v string, mayBeEmpty bool) {
	t.Helper()
	if len(v) > MaxValueLen {
		t.Errorf("%s: value of %d bytes", what, len(v))
	}
	if v == "" && !mayBeEmpty {
		t.Errorf("%s: empty value", what)
	}
	if strings.TrimSpace(v) != v {
		t.Errorf("%s: value not trimmed", what)
	}
}
