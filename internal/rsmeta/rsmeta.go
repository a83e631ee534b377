// Package rsmeta splits the body of a SIPREC INVITE (RFC 7866) into its SDP
// offer and its recording metadata, and parses that metadata (RFC 7865).
//
// A recording client (SRC: an SBC or PBX) sends either plain SDP or a
// multipart body holding the SDP and an application/rs-metadata+xml part.
// Real recorders deviate from the RFCs in small ways (bare LF line endings,
// a missing closing boundary, the pre-RFC draft namespace and attribute
// names), so both SplitBody and Parse are lenient about form: they accept
// what can be understood unambiguously and ignore what they do not know.
// They are strict about size, and never panic on any input.
//
// Errors returned by this package never contain bytes of the input (SIP
// bodies carry phone numbers and names); they name the header, parameter or
// element at fault instead. Every error wraps exactly one of the sentinel
// errors below, so callers decide with errors.Is.
package rsmeta

import "errors"

// Limits on what SplitBody and Parse accept. Input beyond a limit is refused
// with ErrTooLarge rather than truncated.
const (
	// MaxBody is the largest body SplitBody accepts and the largest
	// metadata document Parse accepts, in bytes (64 KiB).
	MaxBody = 64 << 10
	// MaxParts is the most MIME parts a multipart body may have.
	MaxParts = 8
	// MaxParticipants is the most distinct participants Parse accepts.
	MaxParticipants = 64
	// MaxStreams is the most distinct streams Parse accepts.
	MaxStreams = 64
	// MaxDepth is the deepest element nesting Parse accepts; the root
	// element is at depth 1.
	MaxDepth = 32
	// MaxValueLen is the longest string value (attribute or trimmed
	// element text) Parse keeps, in bytes.
	MaxValueLen = 1024
	// MaxListLen is the most entries Parse keeps in any one list of a
	// Metadata (SessionIDs, SIPSessionIDs, CallIDs) or of a Participant
	// (AORs, Names, Send, Recv), after deduplication.
	MaxListLen = 64
)

// Errors returned by SplitBody and Parse, wrapped with context.
var (
	// ErrNoSDP is returned by SplitBody when the body is empty or holds no
	// non-empty application/sdp part. For a metadata-only body (a top-level
	// rs-metadata content type, or a multipart body whose only usable part
	// is metadata, as an UPDATE may send) the metadata is returned together
	// with ErrNoSDP.
	ErrNoSDP = errors.New("rsmeta: no SDP in body")
	// ErrTooLarge is returned when the input exceeds one of the limits
	// above (body size, number of parts, participants, streams, list
	// entries, element depth or value length).
	ErrTooLarge = errors.New("rsmeta: input exceeds a limit")
	// ErrMalformed is returned when a multipart body cannot be split (no
	// boundary parameter, no delimiter line) or when metadata is not
	// well-formed XML, declares a DOCTYPE or entities, or has a root element
	// other than <recording>.
	ErrMalformed = errors.New("rsmeta: malformed body")
	// ErrUnsupportedType is returned by SplitBody when the Content-Type is
	// empty, unparseable, or neither application/sdp, an rs-metadata type,
	// nor multipart/*.
	ErrUnsupportedType = errors.New("rsmeta: unsupported content type")
)
