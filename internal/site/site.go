// Package site stores the archive's blobs: one Store interface with a
// contract per method, a filesystem driver (FS), and the Replicator that
// writes every blob to two sites and repairs a missing copy.
//
// A blob is an already-encrypted container (ciphertext only) named by its
// recording ID: exactly 32 lowercase hex characters, which carry no personal
// data. Blobs are write-once: a committed name is never overwritten, only
// deleted.
//
// Nothing in this package logs or returns personal data: log lines and error
// strings name sites and recording IDs only, and a name that fails ValidName
// is never echoed back (it might be, say, a phone number passed by mistake).
package site

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Errors a caller branches on. Drivers wrap them with context; test with
// errors.Is.
var (
	// ErrNotExist is returned by Open, Stat and Delete when no committed blob
	// has the name.
	ErrNotExist = errors.New("blob does not exist")

	// ErrExists is returned by Create, or by Upload.Commit, when a committed
	// blob already has the name: blobs are write-once.
	ErrExists = errors.New("blob already exists")

	// ErrInvalidName is returned (wrapped) by ValidName and by every method
	// given a name that is not exactly 32 lowercase hex characters.
	ErrInvalidName = errors.New("invalid blob name")

	// ErrDigestMismatch is returned by Replicator.Repair when the bytes read
	// from the source site, or a copy the target already holds, do not have
	// the expected SHA-256 digest.
	ErrDigestMismatch = errors.New("blob digest mismatch")
)

// NameLen is the length of a valid blob name: a 128-bit recording ID in hex.
const NameLen = 32

// Store is one storage site holding committed blobs.
//
// A Store is safe for concurrent use by multiple goroutines. Every method
// that takes a name first checks it with ValidName and fails with an error
// wrapping ErrInvalidName, touching nothing, if it is invalid. Every method
// that takes a context fails with an error wrapping ctx.Err() if the context
// is done before it starts.
type Store interface {
	// Name returns the site's configured name ("a", "b"), used in logs,
	// errors and the pending-replication queue. It never changes.
	Name() string

	// Jurisdiction returns the ISO 3166-1 alpha-2 code (upper case, such as
	// "SE") of the country whose law governs the site's storage. It never
	// changes.
	Jurisdiction() string

	// Create starts writing the blob name. Nothing is visible under name
	// (Open and Stat return ErrNotExist) until Commit returns nil.
	//
	// Create fails with ErrExists if a committed blob has the name; Commit
	// fails with ErrExists if another upload of the same name committed
	// first. ctx bounds the whole upload: once it is done, Write and Commit
	// fail and the upload must be aborted.
	//
	// The caller must end every upload with Commit or Abort; calling Abort
	// after a successful Commit is a no-op, so `defer up.Abort()` is safe.
	Create(ctx context.Context, name string) (Upload, error)

	// Open returns the committed blob name for reading, or an error wrapping
	// ErrNotExist if there is none. ctx bounds Open only, not the reads of
	// the returned Blob. The caller must Close the Blob.
	Open(ctx context.Context, name string) (Blob, error)

	// Stat returns the size in bytes of the committed blob name, or an error
	// wrapping ErrNotExist if there is none.
	Stat(ctx context.Context, name string) (size int64, err error)

	// Delete removes the committed blob name durably: once Delete returns
	// nil, the blob does not come back after a crash. It returns an error
	// wrapping ErrNotExist if there is no such blob. Uploads in progress are
	// not affected.
	Delete(ctx context.Context, name string) error

	// List calls fn for every committed blob, in no particular order, and
	// stops at the first error fn returns (which List returns). Uploads in
	// progress are not listed. A blob committed or deleted while List runs
	// may or may not be listed.
	List(ctx context.Context, fn func(BlobInfo) error) error

	// Check reports whether the site is usable now: reachable and writable.
	// It is meant for status pages and health checks, and leaves nothing
	// behind.
	Check(ctx context.Context) error
}

// BlobInfo describes a committed blob, as Store.List reports it.
type BlobInfo struct {
	Name    string
	Size    int64
	ModTime time.Time // when the blob was committed (or last replaced)
}

// Upload is a blob being written, returned by Store.Create. An Upload is not
// safe for concurrent use.
type Upload interface {
	// Write appends p to the blob. After an error the upload is broken:
	// Commit fails and the caller must Abort.
	io.Writer

	// Commit makes the blob durable and then visible under its name: the
	// data is synced to stable storage before the name appears, and the name
	// itself is synced before Commit returns nil. If Commit fails, nothing is
	// visible under the name (ErrExists: the other blob stays) and the
	// upload's temporary data is removed. Commit may be called once.
	Commit() error

	// Abort discards the upload and removes everything it wrote. It is safe
	// after a failed Write or Commit, idempotent, and a no-op after a
	// successful Commit (the committed blob stays).
	Abort() error
}

// Locker is implemented by uploads to stores that can lock a blob against
// deletion and change (S3 Object Lock in COMPLIANCE mode). LockUntil must
// be called before the first Write; the committed blob then cannot be
// deleted or overwritten on the store, by anyone, before t. Stores that
// cannot lock (FS) do not implement it: use LockUntil, which ignores them.
type Locker interface {
	LockUntil(t time.Time)
}

// LockUntil asks up to lock its blob until t if its store can (Locker);
// otherwise it does nothing.
func LockUntil(up Upload, t time.Time) {
	if l, ok := up.(Locker); ok && !t.IsZero() {
		l.LockUntil(t)
	}
}

// Retainer is implemented by stores that can report a blob's lock, so a
// repaired copy gets the same lock as the copy it was made from.
type Retainer interface {
	// Retention returns the date until which the committed blob name is
	// locked, or the zero time if it is not.
	Retention(ctx context.Context, name string) (time.Time, error)
}

// WORMChecker is implemented by stores that can lock blobs. CheckWORM
// verifies that the store enforces its locks now (a locked test object
// cannot be deleted); it returns an error wrapping ErrNotWORM if not, and
// other errors when it could not tell.
type WORMChecker interface {
	CheckWORM(ctx context.Context) error
}

// ErrNotWORM is returned (wrapped) by WORMChecker.CheckWORM when the store
// does not enforce its locks.
var ErrNotWORM = errors.New("the store does not enforce its object locks")

// Blob is a committed blob opened for reading. Its content never changes
// while it is open. ReadAt follows io.ReaderAt, including concurrent calls;
// reads after Close fail. Reads may fail if the blob is deleted while open.
type Blob interface {
	io.ReaderAt
	io.Closer
	// Size returns the blob's length in bytes.
	Size() int64
}

// ValidName returns nil if name is a valid blob name: exactly 32 characters,
// each in 0-9 or a-f. Otherwise it returns an error wrapping ErrInvalidName
// that states the length but never the name itself.
func ValidName(name string) error {
	if len(name) != NameLen {
		return fmt.Errorf("%w: length %d, want %d lowercase hex characters", ErrInvalidName, len(name), NameLen)
	}
	for i := 0; i < len(name); i++ {
		if !isLowerHex(name[i]) {
			return fmt.Errorf("%w: byte %d is not lowercase hex", ErrInvalidName, i)
		}
	}
	return nil
}

func isLowerHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// validJurisdiction reports whether code looks like an ISO 3166-1 alpha-2
// code: two upper-case ASCII letters. It does not check the code is assigned.
func validJurisdiction(code string) bool {
	return len(code) == 2 && 'A' <= code[0] && code[0] <= 'Z' && 'A' <= code[1] && code[1] <= 'Z'
}

// validSiteName reports whether s may name a site: 1 to 64 characters from
// a-z, A-Z, 0-9, '-', '_' and '.', so that it is safe in logs and paths.
func validSiteName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// CheckJurisdictions returns nil if every store's jurisdiction is one of
// allowed, compared exactly (ISO 3166-1 alpha-2 codes are upper case).
// Otherwise it returns an error naming each offending site and its declared
// jurisdiction. An empty allowed list refuses every store: the caller applies
// the default ("SE") before calling.
func CheckJurisdictions(stores []Store, allowed []string) error {
	list := strings.Join(allowed, ", ")
	if list == "" {
		list = "none"
	}
	var errs []error
	for i, s := range stores {
		if s == nil {
			errs = append(errs, fmt.Errorf("site: store %d is nil", i))
			continue
		}
		j := s.Jurisdiction()
		switch {
		case j == "":
			errs = append(errs, fmt.Errorf("site %s: no jurisdiction declared", s.Name()))
		case !slices.Contains(allowed, j):
			errs = append(errs, fmt.Errorf("site %s: jurisdiction %q is not allowed (allowed: %s)",
				s.Name(), j, list))
		}
	}
	return errors.Join(errs...)
}
