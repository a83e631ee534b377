package site

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FS layout. A blob named n lives at Dir/n[:2]/n.blob; an upload in progress
// is a temporary file Dir/n[:2]/.tmp-n-<random> in the same directory, so
// that committing it is a link within one directory. A fan-out directory
// Dir/n[:2] is created by the first upload that needs it. A health-check
// probe is a temporary file Dir/.tmp-check-<random>.
const (
	blobSuffix = ".blob"
	tempPrefix = ".tmp-"
	dirMode    = 0o700
)

// FSConfig configures a filesystem site. Every field is required.
type FSConfig struct {
	// Name is the site's name (Store.Name): 1 to 64 characters from a-z,
	// A-Z, 0-9, '-', '_' and '.'. If unset, NewFS fails.
	Name string

	// Dir is the directory holding the site's blobs. A relative path is
	// made absolute once, in NewFS. If it does not exist when NewFS runs it
	// is created with mode 0700, parents included; an existing directory's
	// mode is left as it is. It is never created later: a site whose Dir
	// vanished stays unavailable until an operator brings it back. The filesystem must support hard links and fsync (ext4, XFS,
	// Btrfs, ZFS do). If unset, NewFS fails.
	Dir string

	// Jurisdiction is the ISO 3166-1 alpha-2 code, in upper case, of the
	// country where Dir is physically stored (Store.Jurisdiction). If unset,
	// NewFS fails: a site is never assumed to be in a jurisdiction it was not
	// declared to be in.
	Jurisdiction string
}

// FS is a Store on a local or mounted filesystem. Directories are created
// with mode 0700 and files with mode 0600. It is safe for concurrent use;
// several FS values (or processes) may share one Dir, except that CleanTemp
// with olderThan 0 must not run while another uploads to it.
type FS struct {
	name         string // immutable after NewFS
	dir          string // absolute; immutable after NewFS
	jurisdiction string // immutable after NewFS

	mu      sync.Mutex
	durable [256]bool // fan-out directory i exists and Dir was synced since; guarded by mu
}

var _ Store = (*FS)(nil)

// NewFS validates cfg and returns the filesystem site it describes,
// creating Dir if it does not exist. Only an invalid cfg is an error: a Dir
// that cannot be created or used now (a file in its place, an unmounted
// disk) leaves a site that fails Check and every operation, naming the
// site, until the directory is back. So a server can start while one data
// centre is down and keep its pending copies for later repair.
func NewFS(ctx context.Context, cfg FSConfig) (*FS, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("site: new fs: %w", err)
	}
	if !validSiteName(cfg.Name) {
		return nil, errors.New("site: new fs: name must be 1 to 64 characters from a-z, A-Z, 0-9, '-', '_', '.'")
	}
	if cfg.Dir == "" {
		return nil, fmt.Errorf("site %s: new fs: dir is required", cfg.Name)
	}
	if !validJurisdiction(cfg.Jurisdiction) {
		return nil, fmt.Errorf("site %s: new fs: jurisdiction must be an upper-case ISO 3166-1 alpha-2 code such as SE", cfg.Name)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("site %s: new fs: %w", cfg.Name, err)
	}
	f := &FS{name: cfg.Name, dir: dir, jurisdiction: cfg.Jurisdiction}
	if _, err := os.Lstat(f.dir); errors.Is(err, fs.ErrNotExist) {
		// Errors here are the site's availability, not NewFS's: Check
		// reports them (and more) when the caller asks.
		if os.MkdirAll(f.dir, dirMode) == nil {
			syncDir(filepath.Dir(f.dir))
		}
	}
	return f, nil
}

// fanOut creates the fan-out directory of blob name if it is missing, and
// makes sure its entry in Dir is durable before the first upload into it
// can commit: once per directory and process, it syncs Dir after the
// directory exists. (Syncing only when this call created the directory
// would race with a concurrent creator that has not synced yet.)
func (f *FS) fanOut(name string) (string, error) {
	dir := filepath.Join(f.dir, name[:2])
	i, err := strconv.ParseUint(name[:2], 16, 8)
	if err != nil {
		return "", err // unreachable for a valid name
	}
	f.mu.Lock()
	done := f.durable[i]
	f.mu.Unlock()
	if done {
		return dir, nil
	}
	if err := os.Mkdir(dir, dirMode); errors.Is(err, fs.ErrExist) {
		if fi, err := os.Stat(dir); err != nil {
			return "", err
		} else if !fi.IsDir() {
			return "", fmt.Errorf("%s is not a directory", dir)
		}
	} else if err != nil {
		return "", err
	}
	if err := syncDir(f.dir); err != nil {
		return "", err
	}
	f.mu.Lock()
	f.durable[i] = true
	f.mu.Unlock()
	return dir, nil
}

// forgetFanOut drops the cached knowledge that name's fan-out directory exists.
func (f *FS) forgetFanOut(name string) {
	if i, err := strconv.ParseUint(name[:2], 16, 8); err == nil {
		f.mu.Lock()
		f.durable[i] = false
		f.mu.Unlock()
	}
}

// Name returns the configured site name.
func (f *FS) Name() string { return f.name }

// Jurisdiction returns the configured ISO 3166-1 alpha-2 code.
func (f *FS) Jurisdiction() string { return f.jurisdiction }

// Dir returns the absolute path of the site's directory.
func (f *FS) Dir() string { return f.dir }

// path returns the final path of the blob name, which must be valid.
func (f *FS) path(name string) string {
	return filepath.Join(f.dir, name[:2], name+blobSuffix)
}

// Create starts an upload into a temporary file of mode 0600 beside the
// blob's final path. See Store.Create.
func (f *FS) Create(ctx context.Context, name string) (Upload, error) {
	if err := f.pre(ctx, name); err != nil {
		return nil, fmt.Errorf("site %s: create: %w", f.name, err)
	}
	final := f.path(name)
	if _, err := os.Lstat(final); err == nil {
		return nil, fmt.Errorf("site %s: create %s: %w", f.name, name, ErrExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("site %s: create %s: %w", f.name, name, err)
	}
	dir, err := f.fanOut(name)
	if err != nil {
		return nil, fmt.Errorf("site %s: create %s: %w", f.name, name, err)
	}
	// os.CreateTemp opens with O_EXCL and mode 0600.
	tmp, err := os.CreateTemp(dir, tempPrefix+name+"-*")
	if errors.Is(err, fs.ErrNotExist) {
		// The fan-out directory vanished since this process made it: the
		// site came back empty (a remount, a replaced disk). Forget it and
		// make it again; Dir itself is never recreated here, so a missing
		// mount point still fails.
		f.forgetFanOut(name)
		if dir, err = f.fanOut(name); err == nil {
			tmp, err = os.CreateTemp(dir, tempPrefix+name+"-*")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("site %s: create %s: %w", f.name, name, err)
	}
	return &fsUpload{ctx: ctx, site: f.name, name: name, final: final, tmp: tmp.Name(), f: tmp}, nil
}

// Open opens the committed blob name. See Store.Open.
func (f *FS) Open(ctx context.Context, name string) (Blob, error) {
	if err := f.pre(ctx, name); err != nil {
		return nil, fmt.Errorf("site %s: open: %w", f.name, err)
	}
	file, err := os.Open(f.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("site %s: open %s: %w", f.name, name, ErrNotExist)
	} else if err != nil {
		return nil, fmt.Errorf("site %s: open %s: %w", f.name, name, err)
	}
	fi, err := file.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("site %s: open %s: %w", f.name, name, err)
	}
	return &fsBlob{f: file, size: fi.Size()}, nil
}

// Stat returns the size of the committed blob name. See Store.Stat.
func (f *FS) Stat(ctx context.Context, name string) (int64, error) {
	if err := f.pre(ctx, name); err != nil {
		return 0, fmt.Errorf("site %s: stat: %w", f.name, err)
	}
	fi, err := os.Lstat(f.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("site %s: stat %s: %w", f.name, name, ErrNotExist)
	} else if err != nil {
		return 0, fmt.Errorf("site %s: stat %s: %w", f.name, name, err)
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("site %s: stat %s: not a regular file", f.name, name)
	}
	return fi.Size(), nil
}

// Delete removes the committed blob name and syncs its directory. See
// Store.Delete.
func (f *FS) Delete(ctx context.Context, name string) error {
	if err := f.pre(ctx, name); err != nil {
		return fmt.Errorf("site %s: delete: %w", f.name, err)
	}
	final := f.path(name)
	if err := os.Remove(final); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("site %s: delete %s: %w", f.name, name, ErrNotExist)
	} else if err != nil {
		return fmt.Errorf("site %s: delete %s: %w", f.name, name, err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return fmt.Errorf("site %s: delete %s: %w", f.name, name, err)
	}
	return nil
}

// Check writes, syncs and removes a small temporary file in Dir. See
// Store.Check.
func (f *FS) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("site %s: check: %w", f.name, err)
	}
	tmp, err := os.CreateTemp(f.dir, tempPrefix+"check-*")
	if err != nil {
		return fmt.Errorf("site %s: check: %w", f.name, err)
	}
	_, err = tmp.Write([]byte("callvault site check\n"))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(tmp.Name()); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("site %s: check: %w", f.name, err)
	}
	return nil
}

// CleanTemp removes the temporary files that crashed uploads (and health
// checks) left behind in Dir, if their modification time is at least
// olderThan ago, and returns how many it removed. They hold ciphertext only.
//
// With olderThan <= 0 it removes every temporary file, including those of
// uploads in progress, whose Commit then fails: call it so only when no
// upload can be running against Dir, as serve does at start. Committed blobs
// are never touched.
func (f *FS) CleanTemp(ctx context.Context, olderThan time.Duration) (removed int, err error) {
	cutoff := time.Now().Add(-olderThan)
	clean := func(dir string, e fs.DirEntry) error {
		if !strings.HasPrefix(e.Name(), tempPrefix) || !e.Type().IsRegular() {
			return nil
		}
		if olderThan > 0 {
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil // committed or aborted meanwhile
			} else if err != nil {
				return err
			}
			if fi.ModTime().After(cutoff) {
				return nil
			}
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		removed++
		return nil
	}
	top, err := os.ReadDir(f.dir)
	if err != nil {
		return 0, fmt.Errorf("site %s: clean temp: %w", f.name, err)
	}
	for _, e := range top {
		if err := ctx.Err(); err != nil {
			return removed, fmt.Errorf("site %s: clean temp: %w", f.name, err)
		}
		if !e.IsDir() {
			if err := clean(f.dir, e); err != nil {
				return removed, fmt.Errorf("site %s: clean temp: %w", f.name, err)
			}
			continue
		}
		if !isFanOut(e.Name()) {
			continue
		}
		sub := filepath.Join(f.dir, e.Name())
		entries, err := os.ReadDir(sub)
		if err != nil {
			return removed, fmt.Errorf("site %s: clean temp: %w", f.name, err)
		}
		for _, e := range entries {
			if err := clean(sub, e); err != nil {
				return removed, fmt.Errorf("site %s: clean temp: %w", f.name, err)
			}
		}
	}
	return removed, nil
}

// List calls fn for every committed blob in the fan-out directories.
// Temporary files and anything not named like a blob are skipped.
func (f *FS) List(ctx context.Context, fn func(BlobInfo) error) error {
	top, err := os.ReadDir(f.dir)
	if err != nil {
		return fmt.Errorf("site %s: list: %w", f.name, err)
	}
	for _, d := range top {
		if !d.IsDir() || !isFanOut(d.Name()) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("site %s: list: %w", f.name, err)
		}
		entries, err := os.ReadDir(filepath.Join(f.dir, d.Name()))
		if err != nil {
			return fmt.Errorf("site %s: list: %w", f.name, err)
		}
		for _, e := range entries {
			name, ok := strings.CutSuffix(e.Name(), blobSuffix)
			if !ok || !e.Type().IsRegular() || ValidName(name) != nil || name[:2] != d.Name() {
				continue
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted meanwhile
			} else if err != nil {
				return fmt.Errorf("site %s: list: %w", f.name, err)
			}
			if err := fn(BlobInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// isFanOut reports whether s names a fan-out directory: two lowercase hex
// characters.
func isFanOut(s string) bool {
	return len(s) == 2 && isLowerHex(s[0]) && isLowerHex(s[1])
}

// pre checks the arguments every per-blob method starts with.
func (f *FS) pre(ctx context.Context, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	return ctx.Err()
}

// errUploadClosed is returned by Write and Commit after the upload ended.
var errUploadClosed = errors.New("upload already committed or aborted")

// fsUpload is an FS upload in progress.
type fsUpload struct {
	// ctx bounds the whole upload, as Store.Create promises; keeping it in
	// the struct is how a Writer without context arguments honours that.
	ctx   context.Context
	site  string
	name  string
	final string   // the blob's final path
	tmp   string   // the temporary file's path, in final's directory
	f     *os.File // the open temporary file; nil once closed
	err   error    // the first Write error; the upload is then broken

	ended     bool // Commit was called or Abort succeeded
	committed bool // Commit returned nil
}

// Write appends p to the temporary file.
func (u *fsUpload) Write(p []byte) (int, error) {
	if u.ended {
		return 0, fmt.Errorf("site %s: write %s: %w", u.site, u.name, errUploadClosed)
	}
	if u.err != nil {
		return 0, u.err
	}
	if err := u.ctx.Err(); err != nil {
		u.err = fmt.Errorf("site %s: write %s: %w", u.site, u.name, err)
		return 0, u.err
	}
	n, err := u.f.Write(p)
	if err != nil {
		u.err = fmt.Errorf("site %s: write %s: %w", u.site, u.name, err)
		return n, u.err
	}
	return n, nil
}

// Commit syncs and closes the temporary file, links it to the final path
// (which fails if that exists, so a committed blob is never replaced),
// removes the temporary name and syncs the directory. On failure it removes
// what it wrote.
func (u *fsUpload) Commit() error {
	if u.ended {
		return fmt.Errorf("site %s: commit %s: %w", u.site, u.name, errUploadClosed)
	}
	u.ended = true
	if err := u.commit(); err != nil {
		u.discard()
		return fmt.Errorf("site %s: commit %s: %w", u.site, u.name, err)
	}
	u.committed = true
	return nil
}

func (u *fsUpload) commit() error {
	if u.err != nil {
		return u.err
	}
	if err := u.ctx.Err(); err != nil {
		return err
	}
	// The data must be on stable storage before the name can appear.
	if err := u.f.Sync(); err != nil {
		return err
	}
	err := u.f.Close()
	u.f = nil
	if err != nil {
		return err
	}
	// link(2), unlike rename(2), refuses to replace an existing name: two
	// uploads of one name race safely and the loser gets ErrExists.
	if err := os.Link(u.tmp, u.final); errors.Is(err, fs.ErrExist) {
		return ErrExists
	} else if err != nil {
		return err
	}
	dir := filepath.Dir(u.final)
	err = os.Remove(u.tmp)
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		// Not durable: take the name back so nothing is visible that a
		// crash could lose. If this fails too, the scrubber finds an
		// orphan blob that the catalog never references.
		os.Remove(u.final)
		return err
	}
	return nil
}

// Abort closes and removes the temporary file. It is a no-op after a
// successful Commit.
func (u *fsUpload) Abort() error {
	if u.committed {
		return nil
	}
	u.ended = true
	if err := u.discard(); err != nil {
		return fmt.Errorf("site %s: abort %s: %w", u.site, u.name, err)
	}
	return nil
}

// discard closes and removes the temporary file; it is idempotent.
func (u *fsUpload) discard() error {
	var err error
	if u.f != nil {
		err = u.f.Close()
		u.f = nil
	}
	if rerr := os.Remove(u.tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

// fsBlob is a committed blob open for reading.
type fsBlob struct {
	f    *os.File
	size int64
}

func (b *fsBlob) ReadAt(p []byte, off int64) (int, error) { return b.f.ReadAt(p, off) }
func (b *fsBlob) Size() int64                             { return b.size }
func (b *fsBlob) Close() error                            { return b.f.Close() }

// syncDir fsyncs the directory dir, making its entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
