package rsmeta

import (
	"bytes"
	"fmt"
	"strings"
)

// Media types SplitBody recognises, in lower case.
const (
	typeSDP        = "application/sdp"
	typeMeta       = "application/rs-metadata+xml" // RFC 7866 section 12.2
	typeMetaLegacy = "application/rs-metadata"     // pre-RFC drafts; still sent by some SRCs
)

// SplitBody splits a SIP message body given the message's Content-Type
// header value.
//
// For application/sdp it returns (body, nil, nil). For multipart/* (mixed,
// related, alternative or any other subtype) it returns the content of the
// first non-empty application/sdp part and of the first non-empty metadata
// part (application/rs-metadata+xml or application/rs-metadata); meta is nil
// when there is no metadata part, which is legal. When there is no SDP the
// error wraps ErrNoSDP, and meta is still returned if a metadata part (or a
// top-level metadata content type) was found.
//
// The returned slices alias body; they are valid as long as body is, and a
// part's content excludes the line break that precedes the next delimiter.
// Part headers are not returned, and Content-Transfer-Encoding is not
// applied (SIP bodies are 8bit/binary in practice).
//
// Leniency: media types and parameter names are case-insensitive, parameters
// may come in any order, quoted or not, with extra ones ignored; part
// headers may carry parameters and any (or no) Content-Disposition; lines
// may end in CRLF or bare LF; a preamble and an epilogue are skipped;
// whitespace after a delimiter is ignored; and if the closing delimiter is
// missing the end of the body ends the last part.
//
// Errors: a body larger than MaxBody or with more than MaxParts parts wraps
// ErrTooLarge; an empty body ErrNoSDP; an unknown or unparseable content type
// ErrUnsupportedType; a multipart type without a boundary parameter, or a
// body without any delimiter line, ErrMalformed.
func SplitBody(contentType string, body []byte) (sdp, meta []byte, err error) {
	if len(body) > MaxBody {
		return nil, nil, fmt.Errorf("%w: body larger than %d bytes", ErrTooLarge, MaxBody)
	}
	if isBlank(body) {
		return nil, nil, fmt.Errorf("%w: empty body", ErrNoSDP)
	}
	mt, params, ok := parseMediaType(contentType)
	if !ok {
		return nil, nil, fmt.Errorf("%w: Content-Type missing or unparseable", ErrUnsupportedType)
	}
	switch {
	case mt == typeSDP:
		return body, nil, nil
	case mt == typeMeta || mt == typeMetaLegacy:
		return nil, body, fmt.Errorf("%w: body is metadata only", ErrNoSDP)
	case strings.HasPrefix(mt, "multipart/"):
		boundary := params["boundary"]
		if boundary == "" {
			return nil, nil, fmt.Errorf("%w: multipart Content-Type without boundary parameter", ErrMalformed)
		}
		return splitMultipart(body, boundary)
	default:
		return nil, nil, fmt.Errorf("%w: Content-Type is not SDP, metadata or multipart", ErrUnsupportedType)
	}
}

// splitMultipart picks the SDP and metadata parts out of a multipart body
// (RFC 2046 section 5.1.1).
func splitMultipart(body []byte, boundary string) (sdp, meta []byte, err error) {
	parts, err := multipartParts(body, []byte("--"+boundary))
	if err != nil {
		return nil, nil, err
	}
	for _, p := range parts {
		ct, content := splitPart(p)
		if isBlank(content) {
			continue
		}
		mt, _, _ := parseMediaType(ct)
		switch mt {
		case typeSDP:
			if sdp == nil {
				sdp = content
			}
		case typeMeta, typeMetaLegacy:
			if meta == nil {
				meta = content
			}
		}
	}
	if sdp == nil {
		return nil, meta, fmt.Errorf("%w: no application/sdp part", ErrNoSDP)
	}
	return sdp, meta, nil
}

// multipartParts returns the raw parts (headers and content) between the
// delimiter lines of body.
func multipartParts(body, delim []byte) ([][]byte, error) {
	var parts [][]byte
	start := -1 // start of the open part, or -1 before the first delimiter
	seen := false
	for pos := 0; pos < len(body); {
		end, next := len(body), len(body)
		if i := bytes.IndexByte(body[pos:], '\n'); i >= 0 {
			end, next = pos+i, pos+i+1
		}
		kind := delimiterKind(body[pos:end], delim)
		if kind == notDelimiter {
			pos = next
			continue
		}
		seen = true
		if start >= 0 {
			// RFC 2046: the line break before a delimiter belongs to the
			// delimiter, not to the part.
			stop := pos
			if stop > 0 && body[stop-1] == '\n' {
				stop--
				if stop > 0 && body[stop-1] == '\r' {
					stop--
				}
			}
			parts = append(parts, body[start:max(stop, start)])
			if len(parts) > MaxParts {
				return nil, fmt.Errorf("%w: more than %d MIME parts", ErrTooLarge, MaxParts)
			}
		}
		if kind == closeDelimiter {
			return parts, nil
		}
		start = next
		pos = next
	}
	if !seen {
		return nil, fmt.Errorf("%w: no multipart boundary delimiter line", ErrMalformed)
	}
	// No closing delimiter: some SBCs omit it, so the end of the body ends
	// the last part. A blank tail after a final delimiter is not a part.
	if start < len(body) && !isBlank(body[start:]) {
		parts = append(parts, body[start:])
		if len(parts) > MaxParts {
			return nil, fmt.Errorf("%w: more than %d MIME parts", ErrTooLarge, MaxParts)
		}
	}
	return parts, nil
}

type delimiter int

const (
	notDelimiter delimiter = iota
	partDelimiter
	closeDelimiter
)

// delimiterKind reports whether line (without its '\n') is a delimiter
// line: "--boundary" or "--boundary--", followed only by linear whitespace
// and an optional CR.
func delimiterKind(line, delim []byte) delimiter {
	rest, ok := bytes.CutPrefix(line, delim)
	if !ok {
		return notDelimiter
	}
	kind := partDelimiter
	if r, ok := bytes.CutPrefix(rest, []byte("--")); ok {
		kind, rest = closeDelimiter, r
	}
	if len(bytes.TrimRight(rest, " \t\r")) != 0 {
		return notDelimiter
	}
	return kind
}

// splitPart separates a raw part into its Content-Type value and content.
// Headers end at the first blank line; leniently, they also end at the
// first line that is not a header (so a part that lacks the blank line, or
// has no headers at all, still yields its content).
func splitPart(p []byte) (contentType string, content []byte) {
	last := "" // lower-cased name of the previous header, for folded lines
	for pos := 0; pos < len(p); {
		end, next := len(p), len(p)
		if i := bytes.IndexByte(p[pos:], '\n'); i >= 0 {
			end, next = pos+i, pos+i+1
		}
		line := bytes.TrimRight(p[pos:end], "\r")
		switch {
		case isBlank(line):
			return contentType, p[next:]
		case line[0] == ' ' || line[0] == '\t':
			if last == "content-type" {
				contentType += " " + strings.TrimSpace(string(line))
			}
		default:
			name, value, ok := bytes.Cut(line, []byte(":"))
			name = bytes.TrimRight(name, " \t")
			if !ok || !isToken(string(name)) {
				return contentType, p[pos:]
			}
			last = strings.ToLower(string(name))
			if last == "content-type" && contentType == "" {
				contentType = strings.TrimSpace(string(value))
			}
		}
		pos = next
	}
	return contentType, nil
}

// parseMediaType leniently parses a Content-Type value into a lower-case
// media type and its parameters (names lower-cased, values unquoted; the
// first of duplicate parameters wins). Unlike mime.ParseMediaType it
// accepts unquoted values with tspecials (some SRCs send boundaries such as
// boundary=a:b) and skips malformed parameters instead of failing.
func parseMediaType(v string) (mediaType string, params map[string]string, ok bool) {
	mt, rest, _ := strings.Cut(v, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	typ, sub, found := strings.Cut(mt, "/")
	if !found || !isToken(typ) || !isToken(sub) {
		return "", nil, false
	}
	params = map[string]string{}
	for {
		rest = strings.TrimLeft(rest, " \t;")
		if rest == "" {
			return mt, params, true
		}
		i := strings.IndexAny(rest, "=;")
		if i < 0 {
			return mt, params, true // trailing parameter without value
		}
		if rest[i] == ';' {
			rest = rest[i+1:] // parameter without value: skip
			continue
		}
		name := strings.ToLower(strings.TrimSpace(rest[:i]))
		rest = strings.TrimLeft(rest[i+1:], " \t")
		var value string
		if strings.HasPrefix(rest, `"`) {
			value, rest = unquote(rest)
		} else {
			j := strings.IndexByte(rest, ';')
			if j < 0 {
				j = len(rest)
			}
			value, rest = strings.TrimSpace(rest[:j]), rest[j:]
		}
		if _, dup := params[name]; !dup && isToken(name) {
			params[name] = value
		}
	}
}

// unquote reads a quoted-string (RFC 2045/5322) at the start of s and
// returns its value and what follows the closing quote. An unterminated
// quote runs to the end of s.
func unquote(s string) (value, rest string) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), ""
}

// isToken reports whether s is a non-empty RFC 2045 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// isBlank reports whether b holds only whitespace.
func isBlank(b []byte) bool {
	return len(bytes.TrimSpace(b)) == 0
}
