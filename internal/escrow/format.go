package escrow

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

const (
	headerLine = "callvault escrow share v1"
	timeLayout = "2006-01-02T15:04:05Z" // a literal Z: UTC only, whole seconds
)

// numKeys is the number of key lines; a share file has 1+numKeys lines.
const numKeys = 8

// fieldKeys are the keys of lines 2… of a share file, in their required
// order.
func fieldKeys() [numKeys]string {
	return [numKeys]string{"escrow", "threshold", "shares", "share", "value", "commitments", "envelope", "created"}
}

// b64 is standard base64 with padding that refuses non-zero padding bits.
func b64() *base64.Encoding { return base64.StdEncoding.Strict() }

// MarshalText encodes the share as a share file (docs/escrow.md, "Share
// file"). It refuses a share that is not valid — for instance one whose
// exported fields were changed — so that whatever it returns, ParseShare
// accepts and decodes to an equal share. For a share from ParseShare the
// result is the parsed bytes exactly. The result contains the secret share
// value; since *Share is an encoding.TextMarshaler, so does its encoding by
// encoding/json and similar encoders (log/slog uses LogValue instead).
func (s *Share) MarshalText() ([]byte, error) {
	if err := s.checkStructure(); err != nil {
		return nil, err
	}
	if err := s.verify(); err != nil {
		return nil, err
	}
	return s.encode(), nil
}

// encode writes the share file without checking the share.
func (s *Share) encode() []byte {
	commitments := make([]string, len(s.commitments))
	for i, c := range s.commitments {
		commitments[i] = hex.EncodeToString(c)
	}
	values := [numKeys]string{
		s.EscrowID,
		strconv.Itoa(s.Threshold),
		strconv.Itoa(s.Total),
		strconv.Itoa(s.Index),
		hex.EncodeToString(s.value),
		strings.Join(commitments, ","),
		b64().EncodeToString(s.envelope),
		s.Created.UTC().Format(timeLayout),
	}
	var b bytes.Buffer
	b.WriteString(headerLine + "\n")
	for i, k := range fieldKeys() {
		b.WriteString(k + ": " + values[i] + "\n")
	}
	return b.Bytes()
}

// ParseShare decodes a share file and verifies the share. It is strict: it
// accepts exactly the files MarshalText writes — the header line, then the
// keys once each in their fixed order, LF line ends, lowercase hex,
// canonical base64, canonical scalar and element encodings, sizes and
// counts within the limits of docs/escrow.md — and nothing else (ErrFormat).
// It then checks that the escrow ID is the hash of the commitments and that
// the share value passes Feldman verification (ErrInvalidShare). Its errors
// name the line at fault and never contain any of the input.
func ParseShare(b []byte) (*Share, error) {
	if len(b) > MaxShareFileSize {
		return nil, fmt.Errorf("%w: file is larger than %d bytes", ErrFormat, MaxShareFileSize)
	}
	values, err := splitFields(b)
	if err != nil {
		return nil, err
	}
	s, err := decodeFields(values)
	if err != nil {
		return nil, err
	}
	if err := s.checkStructure(); err != nil {
		return nil, err
	}
	if err := s.verify(); err != nil {
		return nil, err
	}
	if !bytes.Equal(s.encode(), b) {
		// Unreachable if the checks above are complete; kept so that the
		// one-encoding promise never rests on them alone.
		return nil, fmt.Errorf("%w: not in canonical form", ErrFormat)
	}
	return s, nil
}

// splitFields checks the line structure and returns the values of lines
// 2…, in the order of fieldKeys.
func splitFields(b []byte) ([]string, error) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, fmt.Errorf("%w: does not end with a line feed", ErrFormat)
	}
	lines := strings.Split(string(b[:len(b)-1]), "\n")
	if len(lines) != 1+numKeys {
		return nil, fmt.Errorf("%w: %d lines, want %d", ErrFormat, len(lines), 1+numKeys)
	}
	if lines[0] != headerLine {
		return nil, fmt.Errorf("%w: line 1 is not %q", ErrFormat, headerLine)
	}
	values := make([]string, numKeys)
	for i, k := range fieldKeys() {
		v, ok := strings.CutPrefix(lines[i+1], k+": ")
		if !ok {
			return nil, fmt.Errorf("%w: line %d does not start with %q", ErrFormat, i+2, k+": ")
		}
		values[i] = v
	}
	return values, nil
}

// decodeFields decodes the values of lines 2… (in the order of fieldKeys) into
// a share, checking each value's syntax but not how they fit together.
func decodeFields(v []string) (*Share, error) {
	s := &Share{EscrowID: v[0]}
	var err error
	if len(v[0]) != 2*idSize || !isLowerHex(v[0]) {
		return nil, lineError(2, "not %d lowercase hex characters", 2*idSize)
	}
	if s.Threshold, err = decodeCount(v[1], 3); err != nil {
		return nil, err
	}
	if s.Total, err = decodeCount(v[2], 4); err != nil {
		return nil, err
	}
	if s.Index, err = decodeCount(v[3], 5); err != nil {
		return nil, err
	}
	if s.value, err = decodeHex(v[4], scalarSize, 6); err != nil {
		return nil, err
	}
	if err := decodeScalar(s.value); err != nil {
		return nil, lineError(6, "not a canonical scalar")
	}
	if s.commitments, err = decodeCommitments(v[5], 7); err != nil {
		return nil, err
	}
	if s.envelope, err = decodeEnvelope(v[6], 8); err != nil {
		return nil, err
	}
	if s.Created, err = decodeTime(v[7], 9); err != nil {
		return nil, err
	}
	return s, nil
}

func lineError(line int, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrFormat, line, fmt.Sprintf(format, args...))
}

// decodeCount decodes a decimal 1…MaxShares without sign or leading zero.
func decodeCount(v string, line int) (int, error) {
	if len(v) == 0 || len(v) > 2 || v[0] == '0' {
		return 0, lineError(line, "not a number 1…%d", MaxShares)
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, lineError(line, "not a number 1…%d", MaxShares)
		}
		n = 10*n + int(v[i]-'0')
	}
	if n > MaxShares {
		return 0, lineError(line, "not a number 1…%d", MaxShares)
	}
	return n, nil
}

// decodeHex decodes exactly size bytes of lowercase hex.
func decodeHex(v string, size, line int) ([]byte, error) {
	if len(v) != 2*size || !isLowerHex(v) {
		return nil, lineError(line, "not %d lowercase hex characters", 2*size)
	}
	b, err := hex.DecodeString(v)
	if err != nil {
		return nil, lineError(line, "not hex")
	}
	return b, nil
}

// decodeCommitments decodes 1…MaxShares comma-separated element encodings.
func decodeCommitments(v string, line int) ([][]byte, error) {
	if len(v) > MaxShares*(2*elementSize+1) {
		return nil, lineError(line, "more than %d commitments", MaxShares)
	}
	parts := strings.Split(v, ",")
	if len(parts) > MaxShares {
		return nil, lineError(line, "more than %d commitments", MaxShares)
	}
	out := make([][]byte, len(parts))
	for i, p := range parts {
		c, err := decodeHex(p, elementSize, line)
		if err != nil {
			return nil, err
		}
		if _, err := decodeElement(c); err != nil {
			return nil, lineError(line, "commitment %d is not a canonical ristretto255 element", i+1)
		}
		out[i] = c
	}
	return out, nil
}

// decodeEnvelope decodes canonical standard base64 of minEnvelope…
// maxEnvelope bytes.
func decodeEnvelope(v string, line int) ([]byte, error) {
	if len(v) > b64().EncodedLen(maxEnvelope) {
		return nil, lineError(line, "envelope longer than %d bytes", maxEnvelope)
	}
	b, err := b64().DecodeString(v)
	// The decoder skips CR and LF; re-encoding refuses them and anything
	// else that is not the one canonical form.
	if err != nil || b64().EncodeToString(b) != v {
		return nil, lineError(line, "not canonical standard base64")
	}
	if len(b) < minEnvelope || len(b) > maxEnvelope {
		return nil, lineError(line, "envelope not %d…%d bytes", minEnvelope, maxEnvelope)
	}
	return b, nil
}

// decodeTime decodes YYYY-MM-DDTHH:MM:SSZ and nothing else.
func decodeTime(v string, line int) (time.Time, error) {
	t, err := time.Parse(timeLayout, v)
	// time.Parse accepts a fraction after the seconds even when the layout
	// has none; the round trip refuses it.
	if err != nil || t.Format(timeLayout) != v {
		return time.Time{}, lineError(line, "not a UTC time YYYY-MM-DDTHH:MM:SSZ")
	}
	return t, nil
}
