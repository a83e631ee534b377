package importer

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"callvault/internal/recording"
)

// The metadata fields a manifest row or file name can give (docs/import.md).
const (
	FieldFile          = "file"
	FieldCallID        = "call_id"
	FieldStartedAt     = "started_at"
	FieldEndedAt       = "ended_at"
	FieldPatient       = "patient"
	FieldCallerNumber  = "caller_number"
	FieldStaff         = "staff"
	FieldCareProvider  = "care_provider"
	FieldCareUnit      = "care_unit"
	FieldDirection     = "direction"
	FieldPrivacyNotice = "privacy_notice"
)

var fields = []string{FieldFile, FieldCallID, FieldStartedAt, FieldEndedAt, FieldPatient, FieldCallerNumber,
	FieldStaff, FieldCareProvider, FieldCareUnit, FieldDirection, FieldPrivacyNotice}

// MaxLine bounds one manifest line (CSV record or JSON Lines object).
const MaxLine = 64 << 10

// Mapping says where each metadata field comes from: a manifest column, a
// named group of a pattern over the file name, or a default. The zero
// Mapping is not usable; use DefaultMapping or ParseMapping.
type Mapping struct {
	Columns           map[string]string `json:"columns"`
	FilePattern       string            `json:"file_pattern"`
	TimeLayout        string            `json:"time_layout"`
	TimeZone          string            `json:"time_zone"`
	StaffSeparator    string            `json:"staff_separator"`
	Defaults          map[string]string `json:"defaults"`
	DurationFromAudio bool              `json:"duration_from_audio"`

	pattern *regexp.Regexp
	loc     *time.Location
}

// DefaultMapping reads every field from the column of its own name, times
// as RFC 3339 and staff separated by ';'.
func DefaultMapping() *Mapping {
	m := &Mapping{Columns: map[string]string{}}
	for _, f := range fields {
		m.Columns[f] = f
	}
	if err := m.init(); err != nil {
		panic(err) // the default is valid
	}
	return m
}

// ParseMapping parses and checks a JSON mapping file: known fields only,
// a pattern that compiles and whose named groups are fields (not "file"),
// a time zone that exists.
func ParseMapping(data []byte) (*Mapping, error) {
	var m Mapping
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("importer: mapping: %w", err)
	}
	if dec.More() {
		return nil, errors.New("importer: mapping: data after the JSON object")
	}
	if err := m.init(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *Mapping) init() error {
	for f, col := range m.Columns {
		if !slices.Contains(fields, f) {
			return fmt.Errorf("importer: mapping: columns: unknown field %q", f)
		}
		if col == "" {
			return fmt.Errorf("importer: mapping: columns: %s has no column name", f)
		}
	}
	for f := range m.Defaults {
		if !slices.Contains(fields, f) || f == FieldFile {
			return fmt.Errorf("importer: mapping: defaults: unknown or not defaultable field %q", f)
		}
	}
	if m.FilePattern != "" {
		re, err := regexp.Compile(m.FilePattern)
		if err != nil {
			return fmt.Errorf("importer: mapping: file_pattern: %w", err)
		}
		for _, g := range re.SubexpNames()[1:] {
			if g != "" && (!slices.Contains(fields, g) || g == FieldFile) {
				return fmt.Errorf("importer: mapping: file_pattern: group %q is not a field", g)
			}
		}
		m.pattern = re
	}
	if _, ok := m.Columns[FieldFile]; !ok && m.pattern == nil {
		return errors.New("importer: mapping: the file column is required unless a file_pattern lists the files")
	}
	if m.TimeLayout == "" {
		m.TimeLayout = time.RFC3339
	}
	zone := m.TimeZone
	if zone == "" {
		zone = "Europe/Stockholm"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return fmt.Errorf("importer: mapping: time_zone: %w", err)
	}
	m.loc = loc
	if m.StaffSeparator == "" {
		m.StaffSeparator = ";"
	}
	return nil
}

// ListsFiles reports whether the mapping can stand without a manifest:
// its file pattern gives the metadata, every file under the source is a row.
func (m *Mapping) ListsFiles() bool { return m.pattern != nil }

// Row is one manifest row: the raw values of the fields its columns give.
// Err is set (and the fields may be empty) when the row itself is broken.
type Row struct {
	Line   int // 1-based line of the manifest where the row starts
	File   string
	Fields map[string]string
	Err    string // why the row cannot be used; never quotes a value
}

// ReadManifest reads the manifest in r (format "csv" or "jsonl") and calls
// fn for each row in order. A broken row is passed with Err set; a broken
// header, an unknown column (without a mapping that names it), an I/O
// error or fn's error ends the read.
func ReadManifest(r io.Reader, format string, m *Mapping, fn func(Row) error) error {
	switch format {
	case "csv":
		return readCSV(r, m, fn)
	case "jsonl":
		return readJSONL(r, m, fn)
	}
	return fmt.Errorf("importer: manifest format %q (want csv or jsonl)", format)
}

// columnFields inverts m.Columns: column name → field.
func (m *Mapping) columnFields() map[string]string {
	out := make(map[string]string, len(m.Columns))
	for f, c := range m.Columns {
		out[c] = f
	}
	return out
}

func readCSV(r io.Reader, m *Mapping, fn func(Row) error) error {
	cr := csv.NewReader(&lineLimit{r: bufio.NewReader(r)})
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("importer: manifest header: %w", err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff") // a byte order mark from spreadsheet exports
	}
	byCol := m.columnFields()
	colField := make([]string, len(header))
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		f, ok := byCol[h]
		if !ok {
			if isDefault(m) {
				return fmt.Errorf("importer: manifest header: unknown column %d (%s); give a --mapping for other layouts", i+1, safeName(h))
			}
			continue // a column the mapping does not use
		}
		if seen[f] {
			return fmt.Errorf("importer: manifest header: column for %s given twice", f)
		}
		seen[f] = true
		colField[i] = f
	}
	if _, ok := m.Columns[FieldFile]; ok && !seen[FieldFile] {
		return errors.New("importer: manifest header: no file column")
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			if errors.Is(err, errLineTooLong) {
				return fmt.Errorf("importer: manifest line %d: longer than %d bytes", pe.StartLine, MaxLine)
			}
			if err := fn(Row{Line: pe.StartLine, Err: "not valid CSV: " + pe.Err.Error()}); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("importer: manifest: %w", err)
		}
		line, _ := cr.FieldPos(0)
		row := Row{Line: line, Fields: map[string]string{}}
		if len(rec) != len(header) {
			row.Err = fmt.Sprintf("%d fields, the header has %d", len(rec), len(header))
		} else {
			for i, v := range rec {
				if colField[i] != "" {
					row.Fields[colField[i]] = strings.TrimSpace(v)
				}
			}
			row.File = row.Fields[FieldFile]
			delete(row.Fields, FieldFile)
			if !utf8.ValidString(strings.Join(rec, "")) {
				row.Err = "not valid UTF-8"
			}
		}
		if err := fn(row); err != nil {
			return err
		}
	}
}

func isDefault(m *Mapping) bool {
	if len(m.Columns) != len(fields) {
		return false
	}
	for f, c := range m.Columns {
		if f != c {
			return false
		}
	}
	return true
}

// safeName quotes a column name only if it looks like a name (ASCII
// letters, '_', '-', ' ', at most 40 bytes): a header could hold anything,
// a personnummer or a phone number too, so no digits.
func safeName(s string) string {
	if len(s) > 40 {
		return "(long name)"
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r == ' ' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return "(a name with digits or other characters)"
		}
	}
	return fmt.Sprintf("%q", s)
}

func readJSONL(r io.Reader, m *Mapping, fn func(Row) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	byCol := m.columnFields()
	for line := 1; ; line++ {
		b, err := readLine(br)
		if err == io.EOF {
			return nil
		}
		row := Row{Line: line, Fields: map[string]string{}}
		switch {
		case errors.Is(err, errLineTooLong):
			row.Err = fmt.Sprintf("longer than %d bytes", MaxLine)
		case err != nil:
			return fmt.Errorf("importer: manifest: %w", err)
		case len(bytes.TrimSpace(b)) == 0:
			continue
		default:
			row.Err = parseJSONRow(b, m, byCol, &row)
		}
		if err := fn(row); err != nil {
			return err
		}
	}
}

func parseJSONRow(b []byte, m *Mapping, byCol map[string]string, row *Row) string {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return "not a JSON object"
	}
	// The file first, so that a rejected row still names it.
	if raw, ok := obj[m.Columns[FieldFile]]; ok {
		json.Unmarshal(raw, &row.File)
		row.File = strings.TrimSpace(row.File)
	}
	for k, raw := range obj {
		f, ok := byCol[k]
		if !ok {
			if isDefault(m) {
				return "unknown key " + safeName(k)
			}
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			var list []string
			if f != FieldStaff || json.Unmarshal(raw, &list) != nil {
				if string(raw) == "null" {
					continue
				}
				return f + ": not a string"
			}
			s = strings.Join(list, m.StaffSeparator)
		}
		row.Fields[f] = strings.TrimSpace(s)
	}
	delete(row.Fields, FieldFile)
	return ""
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its end; a line over MaxLine is
// skipped to its end and reported as errLineTooLong.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > MaxLine+2 {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && err != io.EOF {
				return nil, err
			}
			return nil, errLineTooLong
		}
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF && len(line) == 0 {
			return nil, io.EOF
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		return bytes.TrimRight(line, "\r\n"), nil
	}
}

// lineLimit fails a CSV read whose current line exceeds MaxLine, so that a
// manifest without line breaks cannot make the reader buffer it whole.
type lineLimit struct {
	r   *bufio.Reader
	cur int
}

func (l *lineLimit) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for _, c := range p[:n] {
		if c == '\n' {
			l.cur = 0
		} else if l.cur++; l.cur > MaxLine {
			return 0, errLineTooLong
		}
	}
	return n, err
}

// CleanPath checks a manifest's file path: relative, '/'-separated, no
// "..", no empty or "." element, valid UTF-8. It returns the cleaned form
// or an error that does not quote the path.
func CleanPath(p string) (string, error) {
	switch {
	case p == "":
		return "", errors.New("file: empty")
	case !utf8.ValidString(p) || strings.ContainsAny(p, "\\\x00"):
		return "", errors.New("file: not a clean relative path")
	case strings.HasPrefix(p, "/"):
		return "", errors.New("file: absolute path")
	}
	c := path.Clean(p)
	if c != p || c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", errors.New("file: not a clean relative path (no '..', '.', '//' or trailing '/')")
	}
	return c, nil
}

// Metadata builds the upload metadata of a row: defaults, then manifest
// columns, then the file name pattern; times parsed in the mapping's
// layout and zone; a national phone number made E.164. sha256Hex is the
// source file's digest (it becomes source_sha256, and the call ID when the
// row has none); dur is the probed audio duration. The result is not yet
// validated (recording.Metadata.Validate does that).
func (m *Mapping) Metadata(row Row, sha256Hex string, dur time.Duration) (recording.Metadata, error) {
	v := map[string]string{}
	for f, d := range m.Defaults {
		v[f] = d
	}
	for f, s := range row.Fields {
		if s != "" {
			v[f] = s
		}
	}
	if m.pattern != nil {
		base := path.Base(row.File)
		match := m.pattern.FindStringSubmatch(base)
		if match == nil {
			return recording.Metadata{}, errors.New("file name does not match file_pattern")
		}
		for i, g := range m.pattern.SubexpNames() {
			if g != "" && match[i] != "" {
				v[g] = match[i]
			}
		}
	}
	md := recording.Metadata{
		CallID: v[FieldCallID], CareProvider: v[FieldCareProvider], CareUnit: v[FieldCareUnit],
		Patient: v[FieldPatient], CallerNumber: e164(v[FieldCallerNumber]), Direction: v[FieldDirection],
		PrivacyNotice: v[FieldPrivacyNotice], SourceSHA256: sha256Hex,
	}
	if md.CallID == "" {
		md.CallID = "import-" + sha256Hex[:32]
	}
	if md.Direction == "" {
		md.Direction = recording.Inbound
	}
	for _, s := range strings.Split(v[FieldStaff], m.StaffSeparator) {
		if s = strings.TrimSpace(s); s != "" {
			md.Staff = append(md.Staff, s)
		}
	}
	for _, t := range []struct {
		field string
		dst   *time.Time
	}{{FieldStartedAt, &md.StartedAt}, {FieldEndedAt, &md.EndedAt}} {
		s := v[t.field]
		if s == "" {
			continue
		}
		at, err := time.ParseInLocation(m.TimeLayout, s, m.loc)
		if err != nil {
			return recording.Metadata{}, fmt.Errorf("%s: not a time in the layout %s", t.field, m.TimeLayout)
		}
		*t.dst = at
	}
	if md.EndedAt.IsZero() && m.DurationFromAudio && !md.StartedAt.IsZero() {
		md.EndedAt = md.StartedAt.Add(dur.Round(time.Second))
	}
	return md, nil
}

// e164 turns a Swedish national number (0701740605, 070-174 06 05) or an
// international one with 00 into E.164; anything else is returned as is
// for validation to judge.
func e164(s string) string {
	if s == "" {
		return ""
	}
	d := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '(' || r == ')' {
			return -1
		}
		return r
	}, s)
	switch {
	case strings.HasPrefix(d, "+"):
		return d
	case strings.HasPrefix(d, "00"):
		return "+" + d[2:]
	case strings.HasPrefix(d, "0"):
		return "+46" + d[1:]
	}
	return d
}
