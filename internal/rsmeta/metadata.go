package rsmeta

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Metadata is the part of a recording metadata document (RFC 7865) that
// callvault uses. Lists keep document order, hold no duplicates and no
// empty strings, and are nil when empty. Every string is trimmed of
// surrounding whitespace and at most MaxValueLen bytes long; a scalar field
// is "" when the document did not give it.
type Metadata struct {
	// DataMode is the <datamode> value ("complete" or "partial") if given,
	// otherwise "".
	DataMode string
	// SessionIDs are the session_id (RFC 7865) or id (drafts) attributes of
	// the <session> elements.
	SessionIDs []string
	// SIPSessionIDs are the <sipSessionID> values (RFC 7865 section 6.1.2).
	SIPSessionIDs []string
	// CallIDs are the recorded call's SIP Call-IDs as found in vendor
	// <extensiondata>: elements whose local name, lower-cased with '-' and
	// '_' removed, is "callid" or "sipcallid".
	CallIDs []string
	// Participants are the <participant> elements, merged by ID.
	Participants []Participant
	// Streams are the <stream> elements, merged by ID.
	Streams []Stream
}

// Participant is one party of the recorded call.
type Participant struct {
	// ID is the participant_id (RFC 7865) or id (drafts) attribute; it may
	// be "" if the SRC sent none, and then the participant is never merged
	// with another.
	ID string
	// AORs are the aor attributes of <nameID> and the <aor> elements.
	AORs []string
	// Names are the display names (<name>, inside <nameID> or, in drafts,
	// directly inside <participant>).
	Names []string
	// Send are the IDs of the streams this participant sends, from
	// <participantstreamassoc> or, in drafts, <send> inside <participant>.
	Send []string
	// Recv are the IDs of the streams this participant receives, found as
	// Send is.
	Recv []string
}

// Stream is one recorded media stream; it corresponds to the SDP m-line
// whose a=label equals Label.
type Stream struct {
	// ID is the stream_id (RFC 7865) or id (drafts) attribute, possibly "".
	ID string
	// Label is the <label> value, which matches an SDP a=label.
	Label string
	// SessionID is the session_id (RFC 7865) or session (drafts) attribute,
	// or else the ID of an enclosing <session>.
	SessionID string
}

// StreamByLabel returns the first stream whose Label is label, or nil if
// there is none or label is "". The result points into m.Streams. It is
// safe to call on a nil *Metadata.
func (m *Metadata) StreamByLabel(label string) *Stream {
	if m == nil || label == "" {
		return nil
	}
	for i := range m.Streams {
		if m.Streams[i].Label == label {
			return &m.Streams[i]
		}
	}
	return nil
}

// Sender returns the first participant whose Send list holds streamID, or
// nil if there is none or streamID is "". For a mixed stream that several
// participants send, the first of them in document order is returned. The
// result points into m.Participants. It is safe to call on a nil *Metadata.
func (m *Metadata) Sender(streamID string) *Participant {
	if m == nil || streamID == "" {
		return nil
	}
	for i := range m.Participants {
		for _, id := range m.Participants[i].Send {
			if id == streamID {
				return &m.Participants[i]
			}
		}
	}
	return nil
}

// Parse parses a recording metadata document leniently.
//
// Elements are matched by local name only, case-insensitively, so the RFC
// 7865 namespace (urn:ietf:params:xml:ns:recording:1), the pre-RFC draft
// namespace (urn:ietf:params:xml:ns:recording), no namespace and any prefix
// all work. Both the RFC 7865 form (session_id, participant_id, stream_id
// attributes; <nameID aor>; <participantstreamassoc>) and the draft form (id
// and session attributes; <aor>, <name>, <send> and <recv> directly inside
// <participant>) are understood, also mixed. Inside <extensiondata> only
// Call-ID elements are read (see Metadata.CallIDs); unknown elements and
// attributes anywhere are ignored. Participants and streams with the same
// non-empty ID are merged: list values are appended without duplicates and
// a later non-empty Label or SessionID replaces an earlier one. A
// <participantstreamassoc> naming no known participant is ignored.
//
// Errors: input larger than MaxBody, more than MaxParticipants participants
// or MaxStreams streams, more than MaxListLen entries in a list, nesting
// deeper than MaxDepth or a kept value longer than MaxValueLen wrap
// ErrTooLarge. Input that is not well-formed XML, has no root element or a
// root other than <recording>, or contains a DOCTYPE or any other <!...>
// declaration wraps ErrMalformed; declarations are refused outright so that
// no entity can be defined. Parsing stops at the end of the root element.
func Parse(b []byte) (*Metadata, error) {
	if len(b) > MaxBody {
		return nil, fmt.Errorf("%w: metadata larger than %d bytes", ErrTooLarge, MaxBody)
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	p := &parser{parts: map[string]int{}, streams: map[string]int{}}
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	d.Entity = nil // only the five predefined entities
	d.CharsetReader = p.charsetReader
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, p.decodeError(err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, fmt.Errorf("%w: DOCTYPE and other declarations are refused", ErrMalformed)
		case xml.StartElement:
			if err := p.start(t); err != nil {
				return nil, err
			}
		case xml.EndElement:
			if err := p.end(); err != nil {
				return nil, err
			}
			if len(p.stack) == 0 {
				return p.finish()
			}
		case xml.CharData:
			if len(p.stack) == 0 {
				if !isBlank(t) {
					return nil, fmt.Errorf("%w: text outside the root element", ErrMalformed)
				}
				continue
			}
			if f := p.capturing(); f != nil {
				f.text = append(f.text, t...)
			}
		}
	}
}

// kind says what an open element means to the parser.
type kind int

const (
	kOther kind = iota // ignored, as is all its content except by capturing ancestors
	kRoot
	kExtension // <extensiondata>: only Call-IDs are read inside
	kSession
	kParticipant
	kNameID
	kStream
	kAssoc
	// Text elements: their character data is captured.
	kDataMode
	kSIPSessionID
	kAOR
	kName
	kSend
	kRecv
	kLabel
	kCallID
)

// frame is one open element.
type frame struct {
	kind    kind
	index   int    // participant, stream or assoc index, by kind
	session string // for kSession: its ID
	text    []byte // for text elements: character data so far
}

// assoc is one <participantstreamassoc>, applied when the document ends so
// that it may precede the participant it names.
type assoc struct {
	participant string
	send, recv  []string
}

type parser struct {
	m          Metadata
	parts      map[string]int // participant ID → index in m.Participants
	streams    map[string]int // stream ID → index in m.Streams
	assocs     []assoc
	stack      []frame
	ext        int  // number of open <extensiondata> elements
	badCharset bool // the document declared an encoding we cannot read
}

// start handles a start tag.
func (p *parser) start(se xml.StartElement) error {
	if len(p.stack) >= MaxDepth {
		return fmt.Errorf("%w: elements nested deeper than %d", ErrTooLarge, MaxDepth)
	}
	name := strings.ToLower(se.Name.Local)
	f := frame{kind: kOther, index: -1}
	if len(p.stack) == 0 {
		if name != "recording" {
			return fmt.Errorf("%w: root element is not <recording>", ErrMalformed)
		}
		f.kind = kRoot
		p.stack = append(p.stack, f)
		return nil
	}
	parent := p.stack[len(p.stack)-1].kind
	if p.ext > 0 {
		switch {
		case name == "extensiondata":
			f.kind = kExtension
		case isCallIDName(name):
			f.kind = kCallID
		}
	} else {
		if err := p.structural(&f, name, parent, se.Attr); err != nil {
			return err
		}
	}
	if f.kind == kExtension {
		p.ext++
	}
	p.stack = append(p.stack, f)
	return nil
}

// structural classifies an element outside <extensiondata> and records
// what its attributes say.
func (p *parser) structural(f *frame, name string, parent kind, attrs []xml.Attr) error {
	switch name {
	case "extensiondata":
		f.kind = kExtension
	case "datamode":
		f.kind = kDataMode
	case "sipsessionid":
		f.kind = kSIPSessionID
	case "session":
		id, err := attr(attrs, "session_id", "id")
		if err != nil {
			return err
		}
		f.kind, f.session = kSession, id
		if id != "" {
			return addUnique(&p.m.SessionIDs, id, "session IDs")
		}
	case "participant":
		if p.enclosing(kParticipant) != nil {
			return nil // a participant inside a participant means nothing
		}
		id, err := attr(attrs, "participant_id", "id")
		if err != nil {
			return err
		}
		i, err := p.participant(id)
		if err != nil {
			return err
		}
		f.kind, f.index = kParticipant, i
	case "nameid":
		pf := p.enclosing(kParticipant)
		if pf == nil {
			return nil
		}
		f.kind, f.index = kNameID, pf.index
		aor, err := attr(attrs, "aor")
		if err != nil || aor == "" {
			return err
		}
		return addUnique(&p.m.Participants[pf.index].AORs, aor, "AORs")
	case "aor", "name":
		if parent == kParticipant || parent == kNameID {
			f.kind, f.index = kAOR, p.stack[len(p.stack)-1].index
			if name == "name" {
				f.kind = kName
			}
		}
	case "send", "recv":
		if parent == kParticipant || parent == kAssoc {
			f.kind = kSend
			if name == "recv" {
				f.kind = kRecv
			}
		}
	case "participantstreamassoc":
		id, err := attr(attrs, "participant_id", "id")
		if err != nil {
			return err
		}
		f.kind, f.index = kAssoc, len(p.assocs)
		p.assocs = append(p.assocs, assoc{participant: id})
	case "stream":
		id, err := attr(attrs, "stream_id", "id")
		if err != nil {
			return err
		}
		session, err := attr(attrs, "session_id", "session")
		if err != nil {
			return err
		}
		if session == "" {
			if sf := p.enclosing(kSession); sf != nil {
				session = sf.session
			}
		}
		i, err := p.stream(id)
		if err != nil {
			return err
		}
		f.kind, f.index = kStream, i
		if session != "" {
			p.m.Streams[i].SessionID = session
		}
	case "label":
		if parent == kStream {
			f.kind, f.index = kLabel, p.stack[len(p.stack)-1].index
		}
	}
	return nil
}

// end handles an end tag; the decoder has checked that it matches.
func (p *parser) end() error {
	f := p.stack[len(p.stack)-1]
	p.stack = p.stack[:len(p.stack)-1]
	if f.kind == kExtension {
		p.ext--
	}
	if f.kind < kDataMode {
		return nil
	}
	v := strings.TrimSpace(string(f.text))
	if len(v) > MaxValueLen {
		return fmt.Errorf("%w: element value longer than %d bytes", ErrTooLarge, MaxValueLen)
	}
	if v == "" {
		return nil
	}
	var parent *frame
	if len(p.stack) > 0 {
		parent = &p.stack[len(p.stack)-1]
	}
	switch f.kind {
	case kDataMode:
		p.m.DataMode = v
	case kSIPSessionID:
		return addUnique(&p.m.SIPSessionIDs, v, "SIP session IDs")
	case kCallID:
		return addUnique(&p.m.CallIDs, v, "call IDs")
	case kAOR:
		return addUnique(&p.m.Participants[f.index].AORs, v, "AORs")
	case kName:
		return addUnique(&p.m.Participants[f.index].Names, v, "names")
	case kLabel:
		p.m.Streams[f.index].Label = v
	case kSend, kRecv:
		switch parent.kind {
		case kParticipant:
			pp := &p.m.Participants[parent.index]
			if f.kind == kSend {
				return addUnique(&pp.Send, v, "sent streams")
			}
			return addUnique(&pp.Recv, v, "received streams")
		case kAssoc:
			a := &p.assocs[parent.index]
			if f.kind == kSend {
				return addUnique(&a.send, v, "sent streams")
			}
			return addUnique(&a.recv, v, "received streams")
		}
	}
	return nil
}

// finish applies the stream associations and returns the result.
func (p *parser) finish() (*Metadata, error) {
	for _, a := range p.assocs {
		i, ok := p.parts[a.participant]
		if !ok || a.participant == "" {
			continue // names no known participant: ignored
		}
		pp := &p.m.Participants[i]
		for _, s := range a.send {
			if err := addUnique(&pp.Send, s, "sent streams"); err != nil {
				return nil, err
			}
		}
		for _, s := range a.recv {
			if err := addUnique(&pp.Recv, s, "received streams"); err != nil {
				return nil, err
			}
		}
	}
	m := p.m
	return &m, nil
}

// participant returns the index of the participant with id, adding it if
// new. Participants without an ID are never merged.
func (p *parser) participant(id string) (int, error) {
	if i, ok := p.parts[id]; ok && id != "" {
		return i, nil
	}
	if len(p.m.Participants) >= MaxParticipants {
		return 0, fmt.Errorf("%w: more than %d participants", ErrTooLarge, MaxParticipants)
	}
	p.m.Participants = append(p.m.Participants, Participant{ID: id})
	i := len(p.m.Participants) - 1
	if id != "" {
		p.parts[id] = i
	}
	return i, nil
}

// stream returns the index of the stream with id, adding it if new.
// Streams without an ID are never merged.
func (p *parser) stream(id string) (int, error) {
	if i, ok := p.streams[id]; ok && id != "" {
		return i, nil
	}
	if len(p.m.Streams) >= MaxStreams {
		return 0, fmt.Errorf("%w: more than %d streams", ErrTooLarge, MaxStreams)
	}
	p.m.Streams = append(p.m.Streams, Stream{ID: id})
	i := len(p.m.Streams) - 1
	if id != "" {
		p.streams[id] = i
	}
	return i, nil
}

// enclosing returns the innermost open element of kind k, or nil.
func (p *parser) enclosing(k kind) *frame {
	for i := len(p.stack) - 1; i >= 0; i-- {
		if p.stack[i].kind == k {
			return &p.stack[i]
		}
	}
	return nil
}

// capturing returns the innermost open text element, or nil.
func (p *parser) capturing() *frame {
	for i := len(p.stack) - 1; i >= 0; i-- {
		if p.stack[i].kind >= kDataMode {
			return &p.stack[i]
		}
	}
	return nil
}

// decodeError turns a decoder error into one that wraps a sentinel and
// does not quote the input (xml.SyntaxError messages can).
func (p *parser) decodeError(err error) error {
	if p.badCharset {
		return fmt.Errorf("%w: unsupported XML encoding declared", ErrMalformed)
	}
	if errors.Is(err, io.EOF) {
		if len(p.stack) == 0 {
			return fmt.Errorf("%w: no root element", ErrMalformed)
		}
		return fmt.Errorf("%w: document ends inside an element", ErrMalformed)
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: not well-formed XML (line %d)", ErrMalformed, se.Line)
	}
	return fmt.Errorf("%w: not well-formed XML", ErrMalformed)
}

// charsetReader reads the encodings besides UTF-8 that SRCs declare:
// US-ASCII (a subset of UTF-8) and ISO-8859-1.
func (p *parser) charsetReader(charset string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "us-ascii", "ascii", "utf8":
		return r, nil
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1":
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		out := make([]byte, 0, len(b)*2)
		for _, c := range b {
			out = utf8.AppendRune(out, rune(c))
		}
		return bytes.NewReader(out), nil
	}
	p.badCharset = true
	return nil, errors.New("unsupported charset")
}

// attr returns the trimmed value of the first of names (local names,
// case-insensitive) present in attrs, or "". Namespace declarations are
// skipped.
func attr(attrs []xml.Attr, names ...string) (string, error) {
	for _, n := range names {
		for _, a := range attrs {
			if a.Name.Space == "xmlns" || !strings.EqualFold(a.Name.Local, n) {
				continue
			}
			v := strings.TrimSpace(a.Value)
			if len(v) > MaxValueLen {
				return "", fmt.Errorf("%w: attribute %s longer than %d bytes", ErrTooLarge, n, MaxValueLen)
			}
			return v, nil
		}
	}
	return "", nil
}

// addUnique appends v to *list unless it is already there. what names the
// list in errors.
func addUnique(list *[]string, v, what string) error {
	for _, x := range *list {
		if x == v {
			return nil
		}
	}
	if len(*list) >= MaxListLen {
		return fmt.Errorf("%w: more than %d %s", ErrTooLarge, MaxListLen, what)
	}
	*list = append(*list, v)
	return nil
}

// isCallIDName reports whether an element's lower-cased local name, with
// '-' and '_' removed, is "callid" or "sipcallid".
func isCallIDName(name string) bool {
	n := strings.NewReplacer("-", "", "_", "").Replace(name)
	return n == "callid" || n == "sipcallid"
}
