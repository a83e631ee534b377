package rsmeta

import (
	"bytes"
	"fmt"
	"os"
	"strings"
)

// ReadCorpusFile reads one file of the interop corpus in
// internal/rsmeta/testdata/interop, for tests of this and other packages.
//
// A corpus file models a SIP message body: its first line is
// "Content-Type: <value>", its second line is empty, and every byte after
// the second line's '\n' is the body, unchanged (line endings included).
// The two header lines may end in CRLF or LF. ReadCorpusFile returns the
// trimmed Content-Type value and the body; an error names the path but not
// the file's content.
func ReadCorpusFile(path string) (contentType string, body []byte, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	first, rest, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return "", nil, fmt.Errorf("rsmeta: corpus file %s: no header line", path)
	}
	name, value, ok := strings.Cut(string(bytes.TrimSuffix(first, []byte("\r"))), ":")
	if !ok || !strings.EqualFold(strings.TrimSpace(name), "Content-Type") {
		return "", nil, fmt.Errorf("rsmeta: corpus file %s: first line is not a Content-Type header", path)
	}
	blank, body, ok := bytes.Cut(rest, []byte("\n"))
	if !ok || len(bytes.TrimSuffix(blank, []byte("\r"))) != 0 {
		return "", nil, fmt.Errorf("rsmeta: corpus file %s: second line is not empty", path)
	}
	return strings.TrimSpace(value), body, nil
}
