package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

func TestTilePath(t *testing.T) {
	for _, c := range []struct {
		n    int64
		w    int
		want string
	}{
		{0, 256, "000"}, {5, 3, "005.p/3"}, {1000, 256, "x001/000"}, {1234067, 256, "x001/x234/067"},
		{1234067, 8, "x001/x234/067.p/8"},
	} {
		if got := TilePath(c.n, c.w); got != c.want {
			t.Errorf("TilePath(%d, %d) = %q, want %q", c.n, c.w, got, c.want)
		}
		n, w, err := parseTileIndex(c.want)
		if err != nil || n != c.n || w != c.w {
			t.Errorf("parseTileIndex(%q) = %d, %d, %v", c.want, n, w, err)
		}
	}
	for _, bad := range []string{"", "1", "01", "0000", "x000/001", "001/002", "x1/002", "001.p/0", "001.p/256", "001.p/07", "001.p/x", "../001", "x001/x002/x003/x004/x005/x006/x007/008"} {
		if _, _, err := parseTileIndex(bad); !errors.Is(err, ErrTilePath) {
			t.Errorf("parseTileIndex(%q) = %v, want ErrTilePath", bad, err)
		}
	}
}

// tileReader is a tlog.TileReader over Log.Tile, mapping tlog's tiles to
// C2SP tlog-tiles paths as an outside client does.
type tileReader struct {
	ctx context.Context
	get func(ctx context.Context, path string) ([]byte, error)
}

func (r tileReader) Height() int { return tileHeight }
func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		b, err := r.get(r.ctx, strconv.Itoa(t.L)+"/"+TilePath(t.N, t.W))
		if err != nil {
			return nil, fmt.Errorf("tile %d/%d.p/%d: %w", t.L, t.N, t.W, err)
		}
		out[i] = b
	}
	return out, nil
}
func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// A client that knows only a checkpoint builds proofs from the tiles (with
// x/mod's tile reader, which checks every tile against the checkpoint's
// root) and an outside RFC 6962 library accepts them; the entry bundle
// holds exactly the stored entries.
func TestTilesServeVerifiableProofs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		l, _ := newTestLog(t, dsn)
		ctx := t.Context()
		appendMany(t, l, 0, 873) // 3 full level-0 tiles and a partial one: a partial level-1 tile exists
		small, err := l.Cut(ctx)
		if err != nil {
			t.Fatal(err)
		}
		appendMany(t, l, int(small.Size), 300)
		big, err := l.Cut(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tr := tileReader{ctx: ctx, get: l.Tile}
		hr := tlog.TileHashReader(tlog.Tree{N: big.Size, Hash: big.Root}, tr)
		for _, i := range []int64{0, 255, 256, small.Size - 1, big.Size - 1} {
			p, err := tlog.ProveRecord(big.Size, i, hr)
			if err != nil {
				t.Fatalf("proof of %d from tiles: %v", i, err)
			}
			bundle, err := l.Tile(ctx, "entries/"+TilePath(i/256, bundleWidth(i, big.Size)))
			if err != nil {
				t.Fatal(err)
			}
			entry := bundleEntry(t, bundle, int(i%256))
			stored, _ := l.Entry(ctx, i)
			if string(entry) != string(stored) {
				t.Fatalf("bundle entry %d differs from the stored one", i)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), uint64(big.Size), rfc6962.DefaultHasher.HashLeaf(entry), hashes(p), big.Root[:]); err != nil {
				t.Fatalf("inclusion of %d: %v", i, err)
			}
		}
		cp, err := tlog.ProveTree(big.Size, small.Size, hr)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(small.Size), uint64(big.Size), hashes(cp), small.Root[:], big.Root[:]); err != nil {
			t.Fatalf("consistency: %v", err)
		}
		// Beyond the tree: no tile.
		if _, err := l.Tile(ctx, "entries/"+TilePath(big.Size/256+1, 256)); !errors.Is(err, ErrNoTile) {
			t.Fatalf("entry bundle past the end: %v", err)
		}
		if _, err := l.Tile(ctx, "2/000"); !errors.Is(err, ErrNoTile) {
			t.Fatalf("level-2 tile of a small tree: %v", err)
		}
		if _, err := l.Tile(ctx, "../../etc/passwd"); !errors.Is(err, ErrTilePath) {
			t.Fatalf("hostile path: %v", err)
		}
	})
}

func bundleWidth(i, size int64) int {
	if (i/256+1)*256 <= size {
		return 256
	}
	return int(size - i/256*256)
}

func bundleEntry(t *testing.T, b []byte, k int) []byte {
	t.Helper()
	for j := 0; ; j++ {
		if len(b) < 2 {
			t.Fatalf("bundle ends before entry %d", k)
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			t.Fatalf("bundle entry %d truncated", j)
		}
		if j == k {
			return b[2 : 2+n]
		}
		b = b[2+n:]
	}
}
