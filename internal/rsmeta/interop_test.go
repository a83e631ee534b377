package rsmeta

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// interopWant is what one corpus file must yield.
type interopWant struct {
	err          error             // sentinel SplitBody returns; nil for success
	lf           bool              // body uses bare LF line endings (else CRLF)
	mLines       int               // m=audio lines in the SDP; 0 when there is no SDP
	meta         bool              // a metadata part is present
	dataMode     string            // <datamode>
	participants int               // len(Metadata.Participants)
	streams      int               // len(Metadata.Streams)
	labels       []string          // stream labels in metadata order
	callIDs      []string          // Metadata.CallIDs
	senders      map[string]string // stream label → first AOR of its sender
}

// interopWants holds an entry for every file in testdata/interop.
var interopWants = map[string]interopWant{
	"rfc7865-two-streams.sip": {mLines: 2, meta: true, dataMode: "complete", participants: 2, streams: 2, labels: []string{"1", "2"},
		senders: map[string]string{"1": "sip:+46701740605@sbc.example.net", "2": "sip:nurse.a@vard.example.se"}},
	"draft-namespace.sip": {mLines: 2, meta: true, dataMode: "complete", participants: 2, streams: 2, labels: []string{"10", "11"},
		senders: map[string]string{"10": "sip:+46701740611@sbc.example.net", "11": "sip:nurse.b@vard.example.se"}},
	"extra-params.sip": {mLines: 2, meta: true, dataMode: "complete", participants: 2, streams: 2, labels: []string{"1", "2"},
		senders: map[string]string{"1": "sip:+46701740612@sbc.example.net;user=phone", "2": "sip:nurse.f@vard.example.se"}},
	"quoted-boundary.sip": {mLines: 2, meta: true, dataMode: "complete", participants: 2, streams: 2, labels: []string{"1", "2"},
		senders: map[string]string{"1": "sip:+46701740613@sbc.example.net", "2": "sip:nurse.k@vard.example.se"}},
	"lf-only.sip": {lf: true, mLines: 2, meta: true, dataMode: "complete", participants: 2, streams: 2, labels: []string{"1", "2"},
		senders: map[string]string{"1": "sip:+46701740614@sbc.example.net", "2": "sip:nurse.g@vard.example.se"}},
	"missing-close.sip": {mLines: 2, meta: true, dataMode: "complete", participants: 2, streams: 2, labels: []string{"1", "2"},
		senders: map[string]string{"1": "sip:+46701740615@sbc.example.net", "2": "sip:nurse.l@vard.example.se"}},
	"plain-sdp.sip":          {mLines: 2},
	"sdp-only-multipart.sip": {mLines: 2},
	"mixed-stream.sip": {mLines: 1, meta: true, dataMode: "complete", participants: 2, streams: 1, labels: []string{"1"},
		senders: map[string]string{"1": "sip:+46701740633@sbc.example.net"}},
	"four-streams.sip": {mLines: 4, meta: true, dataMode: "complete", participants: 2, streams: 4, labels: []string{"1", "2", "3", "4"},
		senders: map[string]string{"1": "sip:+46701740644@sbc.example.net", "2": "sip:+46701740644@sbc.example.net",
			"3": "sip:nurse.h@vard.example.se", "4": "sip:nurse.h@vard.example.se"}},
	"vendor-callid.sip": {mLines: 2, meta: true, dataMode: "complete", participants: 2, streams: 2, labels: []string{"1", "2"},
		callIDs: []string{"7f3e9a1c5b2d4e60@sbc.example.net"},
		senders: map[string]string{"1": "sip:+46701740620@sbc.example.net", "2": "sip:nurse.i@vard.example.se"}},
	"charset-disposition.sip": {mLines: 2, meta: true, dataMode: "complete", participants: 2, streams: 2, labels: []string{"1", "2"},
		senders: map[string]string{"1": "sip:+46701740655@sbc.example.net;user=phone", "2": "sip:nurse.e@vard.example.se"}},
	"update-metadata-only.sip": {err: ErrNoSDP, meta: true, dataMode: "partial", participants: 1},
	"update-partial-with-sdp.sip": {mLines: 2, meta: true, dataMode: "partial", participants: 1, streams: 1, labels: []string{"2"},
		senders: map[string]string{"2": "sip:nurse.j@vard.example.se"}},
}

// corpusFiles returns the .sip files of the interop corpus.
func corpusFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "interop", "*.sip"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("interop corpus has %d files, want at least 10", len(files))
	}
	return files
}

func TestInteropCorpus(t *testing.T) {
	seen := map[string]bool{}
	for _, path := range corpusFiles(t) {
		name := filepath.Base(path)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			want, ok := interopWants[name]
			if !ok {
				t.Fatalf("no expectation for %s in interopWants", name)
			}
			ct, body, err := ReadCorpusFile(path)
			if err != nil {
				t.Fatal(err)
			}
			checkLineEndings(t, body, want.lf)
			sdp, metaBody, err := SplitBody(ct, body)
			if !errors.Is(err, want.err) || (err != nil && want.err == nil) {
				t.Fatalf("SplitBody: err = %v, want %v", err, want.err)
			}
			if want.err == nil && !strings.HasPrefix(name, "update-") && want.dataMode == "partial" {
				t.Errorf("partial metadata in an initial INVITE body; name the file update-*")
			}
			sdpLabels := checkSDP(t, sdp, want.mLines)
			if got := metaBody != nil; got != want.meta {
				t.Fatalf("metadata present = %v, want %v", got, want.meta)
			}
			if metaBody == nil {
				return
			}
			m, err := Parse(metaBody)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkLimits(t, m)
			if m.DataMode != want.dataMode {
				t.Errorf("DataMode = %q, want %q", m.DataMode, want.dataMode)
			}
			if len(m.Participants) != want.participants || len(m.Streams) != want.streams {
				t.Errorf("%d participants, %d streams; want %d, %d", len(m.Participants), len(m.Streams), want.participants, want.streams)
			}
			var labels []string
			for _, s := range m.Streams {
				labels = append(labels, s.Label)
				if !sdpLabels[s.Label] {
					t.Errorf("metadata stream label %q has no SDP a=label", s.Label)
				}
			}
			if !reflect.DeepEqual(labels, want.labels) {
				t.Errorf("labels = %q, want %q", labels, want.labels)
			}
			if m.DataMode == "complete" && len(sdpLabels) != len(labels) {
				t.Errorf("SDP has %d labels, complete metadata %d streams", len(sdpLabels), len(labels))
			}
			if !reflect.DeepEqual(m.CallIDs, want.callIDs) {
				t.Errorf("CallIDs = %q, want %q", m.CallIDs, want.callIDs)
			}
			for label, aor := range want.senders {
				s := m.StreamByLabel(label)
				if s == nil {
					t.Errorf("no stream with label %q", label)
					continue
				}
				p := m.Sender(s.ID)
				if p == nil || len(p.AORs) == 0 || p.AORs[0] != aor {
					t.Errorf("sender of label %q = %+v, want AOR %q", label, p, aor)
				}
			}
		})
	}
	for name := range interopWants {
		if !seen[name] {
			t.Errorf("expectation for %s, which is not in testdata/interop", name)
		}
	}
}

// checkLineEndings fails unless every line of body ends in CRLF (or, with
// lf, in a bare LF), so that editors or git cannot silently change a case.
func checkLineEndings(t *testing.T, body []byte, lf bool) {
	t.Helper()
	crlfs := bytes.Count(body, []byte("\r\n"))
	switch {
	case lf && bytes.IndexByte(body, '\r') >= 0:
		t.Errorf("body should use bare LF but has CR")
	case !lf && (crlfs != bytes.Count(body, []byte("\n")) || crlfs != bytes.Count(body, []byte("\r"))):
		t.Errorf("body should use CRLF throughout")
	}
}

// checkSDP checks that sdp is an offer as the corpus README promises: a
// session description whose m=audio lines use ports 40000 and up, RTP/AVP,
// payload types 0, 8 and 101 each with a=rtpmap, and a=sendonly. It returns
// the set of a=label values.
func checkSDP(t *testing.T, sdp []byte, mLines int) map[string]bool {
	t.Helper()
	labels := map[string]bool{}
	if mLines == 0 {
		if sdp != nil {
			t.Errorf("unexpected SDP")
		}
		return labels
	}
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(string(sdp), "\r\n", "\n"), "\n"), "\n")
	if lines[0] != "v=0" {
		t.Fatalf("SDP does not start with v=0")
	}
	type media struct {
		pts      []string
		rtpmap   map[string]string
		sendonly bool
	}
	var ms []*media
	session := map[byte]bool{}
	for _, l := range lines {
		if len(l) < 2 || l[1] != '=' {
			t.Fatalf("SDP line %q is not type=value", l)
		}
		switch {
		case strings.HasPrefix(l, "m="):
			f := strings.Fields(l[2:])
			if len(f) < 4 || f[0] != "audio" || f[2] != "RTP/AVP" {
				t.Errorf("m-line %q: want audio RTP/AVP", l)
				continue
			}
			if port, err := strconv.Atoi(f[1]); err != nil || port < 40000 || port > 65535 {
				t.Errorf("m-line %q: port below 40000", l)
			}
			ms = append(ms, &media{pts: f[3:], rtpmap: map[string]string{}})
		case len(ms) == 0:
			session[l[0]] = true
		case strings.HasPrefix(l, "a=rtpmap:"):
			pt, enc, _ := strings.Cut(l[len("a=rtpmap:"):], " ")
			ms[len(ms)-1].rtpmap[pt] = enc
		case l == "a=sendonly":
			ms[len(ms)-1].sendonly = true
		case strings.HasPrefix(l, "a=label:"):
			labels[l[len("a=label:"):]] = true
		}
	}
	for _, k := range []byte("vostc") {
		if !session[k] {
			t.Errorf("SDP session lacks %c=", k)
		}
	}
	if len(ms) != mLines {
		t.Errorf("SDP has %d m-lines, want %d", len(ms), mLines)
	}
	codecs := map[string]string{"0": "PCMU/8000", "8": "PCMA/8000", "101": "telephone-event/8000"}
	for i, m := range ms {
		if !m.sendonly {
			t.Errorf("m-line %d: no a=sendonly", i)
		}
		for _, pt := range m.pts {
			if want, ok := codecs[pt]; !ok || m.rtpmap[pt] != want {
				t.Errorf("m-line %d: payload type %s: rtpmap %q", i, pt, m.rtpmap[pt])
			}
		}
	}
	return labels
}

func TestReadCorpusFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ct, body, err := ReadCorpusFile(write("ok.sip", "Content-Type:  multipart/mixed;boundary=b \r\n\r\n--b\r\nx\r\n"))
	if err != nil || ct != "multipart/mixed;boundary=b" || string(body) != "--b\r\nx\r\n" {
		t.Errorf("ReadCorpusFile = %q, %q, %v", ct, body, err)
	}
	ct, body, err = ReadCorpusFile(write("lf.sip", "content-type: application/sdp\n\nv=0\n"))
	if err != nil || ct != "application/sdp" || string(body) != "v=0\n" {
		t.Errorf("ReadCorpusFile = %q, %q, %v", ct, body, err)
	}
	for name, content := range map[string]string{
		"no-newline.sip": "Content-Type: application/sdp",
		"no-header.sip":  "Content-Length: 3\n\nv=0\n",
		"no-blank.sip":   "Content-Type: application/sdp\nv=0\n",
		"no-body.sip":    "Content-Type: application/sdp\n",
	} {
		if _, _, err := ReadCorpusFile(write(name, content)); err == nil {
			t.Errorf("ReadCorpusFile(%s): no error", name)
		}
	}
	if _, _, err := ReadCorpusFile(filepath.Join(dir, "absent.sip")); err == nil {
		t.Errorf("ReadCorpusFile of a missing file: no error")
	}
}
