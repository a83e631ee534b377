package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// tileHeight is the C2SP tlog-tiles tile height: 2^8 = 256 hashes a tile.
const tileHeight = 8

// ErrNoTile is returned by Tile for a well-formed path the tree does not
// (yet) cover.
var ErrNoTile = errors.New("audit: no such tile")

// ErrTilePath is returned by Tile for a path that is not a tile path.
var ErrTilePath = errors.New("audit: malformed tile path")

// Tile returns the C2SP tlog-tiles resource at path, the part after
// "tile/": "<L>/<N>[.p/<W>]" for a hash tile or "entries/<N>[.p/<W>]" for
// an entry bundle (docs/audit-log.md, "Read API").
func (l *Log) Tile(ctx context.Context, path string) ([]byte, error) {
	entries := false
	level := 0
	first, rest, ok := strings.Cut(path, "/")
	if !ok {
		return nil, ErrTilePath
	}
	if first == "entries" {
		entries = true
	} else {
		v, err := strconv.Atoi(first)
		if err != nil || v < 0 || v > 63 || strconv.Itoa(v) != first {
			return nil, ErrTilePath
		}
		level = v
	}
	n, w, err := parseTileIndex(rest)
	if err != nil {
		return nil, err
	}
	size, err := l.Size(ctx)
	if err != nil {
		return nil, err
	}
	if entries {
		start := n * 256
		if start+int64(w) > size || start < 0 {
			return nil, ErrNoTile
		}
		return l.bundle(ctx, start, w)
	}
	// The tile's last hash is the node at height 8·L with index 256·N+W-1:
	// it needs (256·N+W) · 256^L leaves.
	leaves := n*256 + int64(w)
	for range level {
		if leaves > size {
			return nil, ErrNoTile
		}
		leaves *= 256
	}
	if leaves > size || leaves <= 0 {
		return nil, ErrNoTile
	}
	data, err := tlog.ReadTileData(tlog.Tile{H: tileHeight, L: level, N: n, W: w}, l.hashReader(ctx))
	if err != nil {
		return nil, fmt.Errorf("audit: tile %s: %w", path, err)
	}
	return data, nil
}

// parseTileIndex parses "<N>[.p/<W>]" with N as x-prefixed groups of three
// digits ("x001/x234/067").
func parseTileIndex(s string) (n int64, w int, err error) {
	w = 256
	if i := strings.Index(s, ".p/"); i >= 0 {
		ws := s[i+3:]
		v, err := strconv.Atoi(ws)
		if err != nil || v < 1 || v > 255 || strconv.Itoa(v) != ws {
			return 0, 0, ErrTilePath
		}
		w, s = v, s[:i]
	}
	parts := strings.Split(s, "/")
	if len(parts) > 7 {
		return 0, 0, ErrTilePath
	}
	for i, p := range parts {
		last := i == len(parts)-1
		if !last {
			if !strings.HasPrefix(p, "x") {
				return 0, 0, ErrTilePath
			}
			p = p[1:]
		}
		if len(p) != 3 || strings.Trim(p, "0123456789") != "" {
			return 0, 0, ErrTilePath
		}
		d, _ := strconv.Atoi(p)
		n = n*1000 + int64(d)
	}
	if TilePath(n, w) != s+suffix(w) {
		return 0, 0, ErrTilePath // not the canonical encoding (e.g. a leading x000/)
	}
	return n, w, nil
}

func suffix(w int) string {
	if w == 256 {
		return ""
	}
	return ".p/" + strconv.Itoa(w)
}

// TilePath encodes tile index n and width w (256 for a full tile) as the
// C2SP tlog-tiles path element: "x001/x234/067[.p/W]".
func TilePath(n int64, w int) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		s = fmt.Sprintf("x%03d/%s", n%1000, s)
	}
	return s + suffix(w)
}

// bundle returns entries start..start+w-1, each as a 2-byte big-endian
// length and the entry bytes.
func (l *Log) bundle(ctx context.Context, start int64, w int) ([]byte, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT idx, entry FROM audit_log WHERE idx >= ? AND idx < ? ORDER BY idx`, start, start+int64(w))
	if err != nil {
		return nil, fmt.Errorf("audit: entry bundle: %w", err)
	}
	defer rows.Close()
	var out []byte
	next := start
	for rows.Next() {
		var idx int64
		var raw []byte
		if err := rows.Scan(&idx, &raw); err != nil {
			return nil, fmt.Errorf("audit: entry bundle: %w", err)
		}
		if idx != next || len(raw) > MaxEntryBytes {
			return nil, fmt.Errorf("audit: entry bundle: entry %d missing or oversized", next)
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(raw)))
		out = append(out, raw...)
		next++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: entry bundle: %w", err)
	}
	if next != start+int64(w) {
		return nil, fmt.Errorf("audit: entry bundle: entry %d missing", next)
	}
	return out, nil
}
