package audit

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"golang.org/x/mod/sumdb/tlog"
)

// CorruptError says where verification failed: Index is the first entry
// that is wrong or missing (for a bad checkpoint with no bad entry found,
// the first index the checkpoint covers that is not covered by an earlier
// good one).
type CorruptError struct {
	Index int64
	Msg   string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("audit: log verification failed at index %d: %s", e.Index, e.Msg)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// VerifyResult is what Verify checked.
type VerifyResult struct {
	Entries     int64
	Checkpoints int // stored checkpoints verified
	Root        tlog.Hash
}

// Verify recomputes the tree from every stored entry (docs/audit-log.md,
// "Verification"): each entry's index, its stored hashes, and every stored
// checkpoint's signature and root; plus the extra checkpoints given (e.g. a
// witness's copy). It returns a *CorruptError naming the first bad index,
// or another error if the log cannot be read.
func (l *Log) Verify(ctx context.Context, extra ...[]byte) (*VerifyResult, error) {
	stored, err := l.storedCheckpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: verify: %w", err)
	}
	type want struct {
		c      *Checkpoint
		source string
	}
	var wants []want
	prev := int64(0) // size of the previous stored checkpoint: where a bad one's blame starts
	for _, sc := range stored {
		c, err := l.ParseCheckpoint(sc.note)
		if err != nil {
			return nil, &CorruptError{Index: prev, Msg: fmt.Sprintf("stored checkpoint of size %d: %v", sc.size, err)}
		}
		if c.Size != sc.size {
			return nil, &CorruptError{Index: prev, Msg: fmt.Sprintf("stored checkpoint of size %d says size %d", sc.size, c.Size)}
		}
		wants = append(wants, want{c, "stored checkpoint"})
		prev = sc.size
	}
	for _, msg := range extra {
		c, err := l.ParseCheckpoint(msg)
		if err != nil {
			return nil, fmt.Errorf("audit: verify: given checkpoint: %w", err)
		}
		wants = append(wants, want{c, "given checkpoint"})
	}
	sort.SliceStable(wants, func(i, j int) bool { return wants[i].c.Size < wants[j].c.Size })

	rows, err := l.db.QueryContext(ctx, `SELECT idx, entry, hashes FROM audit_log ORDER BY idx`)
	if err != nil {
		return nil, fmt.Errorf("audit: verify: %w", err)
	}
	defer rows.Close()
	var (
		n       int64       // entries verified
		stack   []tlog.Hash // roots of the complete subtrees, left to right
		next    int         // wants[next] is the next checkpoint to meet
		covered int64       // size of the last checkpoint that matched
		res     VerifyResult
	)
	check := func() error {
		for next < len(wants) && wants[next].c.Size == n {
			w := wants[next]
			if root := foldRoot(stack); root != w.c.Root {
				return &CorruptError{Index: covered, Msg: fmt.Sprintf("%s of size %d: root hash differs from the entries' (entries %d to %d were changed, or the checkpoint was)", w.source, n, covered, n-1)}
			}
			covered = n
			next++
		}
		return nil
	}
	for rows.Next() {
		var idx int64
		var raw, packed []byte
		if err := rows.Scan(&idx, &raw, &packed); err != nil {
			return nil, fmt.Errorf("audit: verify: %w", err)
		}
		if idx != n {
			return nil, &CorruptError{Index: n, Msg: fmt.Sprintf("entry missing (next stored entry is %d)", idx)}
		}
		if got, err := entryIndex(raw); err != nil {
			return nil, &CorruptError{Index: n, Msg: err.Error()}
		} else if got != n {
			return nil, &CorruptError{Index: n, Msg: fmt.Sprintf("entry says it is index %d (moved)", got)}
		}
		h := tlog.RecordHash(raw)
		hashes := []tlog.Hash{h}
		for m := n; m&1 == 1; m >>= 1 {
			h = tlog.NodeHash(stack[len(stack)-1], h)
			stack = stack[:len(stack)-1]
			hashes = append(hashes, h)
		}
		stack = append(stack, h)
		if len(packed) != len(hashes)*tlog.HashSize {
			return nil, &CorruptError{Index: n, Msg: "stored hashes have the wrong length"}
		}
		for k, h := range hashes {
			if !bytes.Equal(packed[k*tlog.HashSize:(k+1)*tlog.HashSize], h[:]) {
				if k == 0 {
					return nil, &CorruptError{Index: n, Msg: "entry bytes do not match their stored leaf hash (entry modified)"}
				}
				return nil, &CorruptError{Index: n, Msg: fmt.Sprintf("stored subtree hash %d differs from the recomputed one", k)}
			}
		}
		n++
		if err := check(); err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: verify: %w", err)
	}
	if next < len(wants) {
		w := wants[next]
		return nil, &CorruptError{Index: n, Msg: fmt.Sprintf("the log ends at %d entries, but a %s has size %d: entries from %d on are missing", n, w.source, w.c.Size, n)}
	}
	res.Entries, res.Checkpoints, res.Root = n, len(stored), foldRoot(stack)
	return &res, nil
}

// foldRoot returns the root of the tree whose complete subtrees (largest
// first) are stack, as RFC 6962 splits it.
func foldRoot(stack []tlog.Hash) tlog.Hash {
	if len(stack) == 0 {
		return tlog.Hash{}
	}
	root := stack[len(stack)-1]
	for i := len(stack) - 2; i >= 0; i-- {
		root = tlog.NodeHash(stack[i], root)
	}
	return root
}
