package rsmeta

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzSplitBody checks that SplitBody never panics, returns only its
// sentinel errors, and on success returns non-blank SDP taken from body.
func FuzzSplitBody(f *testing.F) {
	for _, path := range corpusFiles(f) {
		ct, body, err := ReadCorpusFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ct, body)
	}
	f.Add("multipart/mixed;boundary=b", []byte(mp("b", "\n", false, sdpPart, metaPart)))
	f.Add(`multipart/related; boundary="q\"x"`, []byte(mp(`q"x`, "\r\n", true, metaPart, sdpPart)))
	f.Add("multipart/mixed;boundary=b", []byte("--b\r\n\r\n--b--\r\n"))
	f.Add("application/rs-metadata+xml", []byte(testMeta))
	f.Add("", []byte{})
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		orig := bytes.Clone(body)
		sdp, meta, err := SplitBody(ct, body)
		if !bytes.Equal(body, orig) {
			t.Fatalf("SplitBody modified body")
		}
		if err != nil {
			if !errors.Is(err, ErrNoSDP) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedType) {
				t.Fatalf("error without sentinel: %v", err)
			}
			if sdp != nil {
				t.Fatalf("SDP returned with error %v", err)
			}
			if meta != nil && !errors.Is(err, ErrNoSDP) {
				t.Fatalf("metadata returned with error %v", err)
			}
		} else {
			if len(body) > MaxBody {
				t.Fatalf("accepted a body of %d bytes", len(body))
			}
			if isBlank(sdp) {
				t.Fatalf("blank SDP accepted")
			}
		}
		for _, part := range [][]byte{sdp, meta} {
			if part != nil && !bytes.Contains(body, part) {
				t.Fatalf("result is not part of body")
			}
		}
		if meta != nil {
			if m, err := Parse(meta); err == nil {
				checkLimits(t, m)
			}
		}
	})
}

// FuzzParse checks that Parse never panics, returns only its sentinel
// errors, and on success keeps every limit and promise of Metadata.
func FuzzParse(f *testing.F) {
	for _, path := range corpusFiles(f) {
		ct, body, err := ReadCorpusFile(path)
		if err != nil {
			f.Fatal(err)
		}
		if _, meta, _ := SplitBody(ct, body); meta != nil {
			f.Add(meta)
		}
	}
	for _, s := range []string{
		rfc7865Example, draftExample, testMeta,
		twoPartyDoc(`<rs:recording xmlns:rs="urn:ietf:params:xml:ns:recording:1">`, "rs:", `</rs:recording>`),
		`<recording><extensiondata><x:call-id xmlns:x="urn:x">c1</x:call-id></extensiondata></recording>`,
		`<?xml version="1.0" encoding="ISO-8859-1"?><recording><participant id="p"><name>` + "\xe5" + `</name></participant></recording>`,
		`<!DOCTYPE r [<!ENTITY a "b">]><recording>&a;</recording>`,
		`<recording><session id="s"><stream id="x"><label>1</label></stream></session></recording>`,
		"<recording>" + strings.Repeat("<x>", MaxDepth),
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error without sentinel: %v", err)
			}
			if m != nil {
				t.Fatalf("Metadata returned with error")
			}
			return
		}
		if len(b) > MaxBody {
			t.Fatalf("accepted %d bytes", len(b))
		}
		checkLimits(t, m)
		for _, s := range m.Streams {
			if got := m.StreamByLabel(s.Label); s.Label != "" && (got == nil || got.Label != s.Label) {
				t.Fatalf("StreamByLabel does not find a stream's label")
			}
			if p := m.Sender(s.ID); p != nil && !containsString(p.Send, s.ID) {
				t.Fatalf("Sender returned a participant that does not send the stream")
			}
		}
	})
}

func containsString(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
