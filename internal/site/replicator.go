package site

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Replicator writes every blob to two sites and reads from whichever holds
// it. It is safe for concurrent use.
//
// Failures that it works around (one site down during an upload or a read)
// are logged at level Warn with the attributes "site", "recording" and
// "err"; failures it cannot work around are returned. Log lines carry site
// names, recording IDs and driver errors only.
type Replicator struct {
	sites  [2]Store     // immutable; reads try them in this order
	logger *slog.Logger // never nil
}

// NewReplicator returns a Replicator over sites a and b, which must be
// non-nil and have different names. If logger is nil, nothing is logged.
func NewReplicator(a, b Store, logger *slog.Logger) (*Replicator, error) {
	if a == nil || b == nil {
		return nil, errors.New("site: new replicator: nil store")
	}
	if a.Name() == b.Name() {
		return nil, fmt.Errorf("site: new replicator: both sites are named %q", a.Name())
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Replicator{sites: [2]Store{a, b}, logger: logger}, nil
}

// Sites returns the two sites, a then b, in a new slice.
func (r *Replicator) Sites() []Store { return []Store{r.sites[0], r.sites[1]} }

// site returns the site named name, or nil.
func (r *Replicator) site(name string) Store {
	for _, s := range r.sites {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

// Create starts an upload of blob name to both sites at once (a tee). If one
// site fails, on Create, Write or Commit, the upload continues on the other.
// Create fails if name is invalid, if both sites fail, or with an error
// wrapping ErrExists if either site already holds a blob of that name (the
// other site's upload is then aborted). ctx bounds the whole upload, as for
// Store.Create.
//
// The caller must end the upload with Commit or Abort.
func (r *Replicator) Create(ctx context.Context, name string) (*MultiUpload, error) {
	if err := ValidName(name); err != nil {
		return nil, fmt.Errorf("site: create: %w", err)
	}
	m := &MultiUpload{r: r, name: name}
	var errs []error
	exists := false
	for _, s := range r.sites {
		up, err := s.Create(ctx, name)
		if err != nil {
			exists = exists || errors.Is(err, ErrExists)
			errs = append(errs, err)
			m.ups = append(m.ups, siteUpload{site: s.Name(), err: err})
			continue
		}
		m.ups = append(m.ups, siteUpload{site: s.Name(), up: up})
	}
	if exists || len(errs) == len(r.sites) {
		m.Abort()
		return nil, fmt.Errorf("site: create %s: %w", name, errors.Join(errs...))
	}
	for _, u := range m.ups {
		if u.err != nil {
			r.warn("site: upload continues without site", u.site, name, u.err)
		}
	}
	return m, nil
}

// MultiUpload is an upload to both sites of a Replicator, returned by
// Replicator.Create. It is not safe for concurrent use.
type MultiUpload struct {
	r    *Replicator
	name string
	ups  []siteUpload // one per site, in site order

	ended     bool // Commit or Abort was called
	committed bool // Commit held the blob on at least one site
}

// siteUpload is one site's part of a MultiUpload.
type siteUpload struct {
	site string
	up   Upload // nil if the site never started
	err  error  // why this site dropped out; nil while it is writing
}

// LockUntil asks every site that can lock blobs (Locker) to lock this one
// until t. Call it before the first Write.
func (m *MultiUpload) LockUntil(t time.Time) {
	for _, u := range m.ups {
		if u.up != nil {
			LockUntil(u.up, t)
		}
	}
}

// errMultiUploadClosed is returned by Write and Commit after the upload ended.
var errMultiUploadClosed = errors.New("upload already committed or aborted")

// Write writes p to every site still writing. A site whose Write fails (or
// writes short) is aborted and dropped with a log line; Write returns an
// error only when no site is left, and then the upload is broken.
func (m *MultiUpload) Write(p []byte) (int, error) {
	if m.ended {
		return 0, fmt.Errorf("site: write %s: %w", m.name, errMultiUploadClosed)
	}
	left := 0
	for i := range m.ups {
		u := &m.ups[i]
		if u.err != nil {
			continue
		}
		n, err := u.up.Write(p)
		if err == nil && n < len(p) {
			err = fmt.Errorf("site %s: write %s: %w", u.site, m.name, io.ErrShortWrite)
		}
		if err != nil {
			m.drop(u, err)
			continue
		}
		left++
	}
	if left == 0 {
		return 0, fmt.Errorf("site: write %s: no site left: %w", m.name, m.errs())
	}
	return len(p), nil
}

// Commit commits on every site still writing, in parallel, and returns the
// names of the sites that now durably hold the blob and of those that do
// not, each in site order. When missing is not empty, the caller must record
// durable pending-replication entries for those sites before acknowledging
// the blob. Commit returns an error, and no held sites, when no site
// committed. Commit may be called once.
func (m *MultiUpload) Commit() (held, missing []string, err error) {
	if m.ended {
		return nil, nil, fmt.Errorf("site: commit %s: %w", m.name, errMultiUploadClosed)
	}
	m.ended = true
	failed := make([]bool, len(m.ups)) // failed[i]: site i failed in this Commit
	var wg sync.WaitGroup
	for i := range m.ups {
		u := &m.ups[i]
		if u.err != nil {
			continue
		}
		wg.Go(func() {
			if err := u.up.Commit(); err != nil {
				u.err = err
				failed[i] = true
				u.up.Abort() // removes what a failed Commit may have left
			}
		})
	}
	wg.Wait()
	for _, u := range m.ups {
		if u.err == nil {
			held = append(held, u.site)
			continue
		}
		missing = append(missing, u.site)
	}
	if len(held) == 0 {
		return nil, missing, fmt.Errorf("site: commit %s: no site committed: %w", m.name, m.errs())
	}
	m.committed = true
	// Sites that dropped out earlier were logged then.
	for i, u := range m.ups {
		if failed[i] {
			m.r.warn("site: blob committed without site", u.site, m.name, u.err)
		}
	}
	return held, missing, nil
}

// Abort aborts the upload on every site still writing and removes what was
// written. It is idempotent and a no-op after a Commit that held the blob on
// at least one site, so `defer m.Abort()` is safe.
func (m *MultiUpload) Abort() error {
	if m.committed {
		return nil
	}
	m.ended = true
	var errs []error
	for _, u := range m.ups {
		if u.up == nil {
			continue
		}
		if err := u.up.Abort(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("site: abort %s: %w", m.name, errors.Join(errs...))
	}
	return nil
}

// drop aborts site u's upload after err and logs it.
func (m *MultiUpload) drop(u *siteUpload, err error) {
	u.err = err
	if aerr := u.up.Abort(); aerr != nil {
		err = errors.Join(err, aerr)
	}
	m.r.warn("site: upload continues without site", u.site, m.name, err)
}

// errs joins the errors of the sites that dropped out.
func (m *MultiUpload) errs() error {
	var errs []error
	for _, u := range m.ups {
		if u.err != nil {
			errs = append(errs, u.err)
		}
	}
	return errors.Join(errs...)
}

// Open opens blob name from the first site that opens it, a then b. It
// returns an error wrapping ErrNotExist only if every site reports
// ErrNotExist; if a site failed otherwise, the error does not wrap
// ErrNotExist, since the blob may exist there.
func (r *Replicator) Open(ctx context.Context, name string) (Blob, error) {
	if err := ValidName(name); err != nil {
		return nil, fmt.Errorf("site: open: %w", err)
	}
	errs := make([]error, 0, len(r.sites)) // errs[i] is from r.sites[i]
	notExist := 0
	for _, s := range r.sites {
		b, err := s.Open(ctx, name)
		if err == nil {
			for i, e := range errs {
				r.warn("site: blob read from other site", r.sites[i].Name(), name, e)
			}
			return b, nil
		}
		if errors.Is(err, ErrNotExist) {
			notExist++
		}
		errs = append(errs, err)
	}
	if notExist == len(r.sites) {
		return nil, fmt.Errorf("site: open %s: %w", name, ErrNotExist)
	}
	// Keep ErrNotExist out of the chain (but in the message): the site that
	// failed otherwise may hold the blob.
	for i, e := range errs {
		if errors.Is(e, ErrNotExist) {
			errs[i] = errors.New(e.Error())
		}
	}
	return nil, fmt.Errorf("site: open %s: %w", name, errors.Join(errs...))
}

// Repair copies blob name from another site holding it to the site named
// to, and commits the copy only if its SHA-256 digest equals wantSHA256. It
// is a no-op if to already holds a blob of that name with that digest.
//
// Repair returns an error wrapping ErrDigestMismatch if to holds a copy with
// another digest (left untouched: deleting it is the caller's decision) or if
// no source yields the expected bytes, an error wrapping ErrNotExist if no
// other site holds the blob, and other errors as they come. When it fails,
// nothing new is left on to.
func (r *Replicator) Repair(ctx context.Context, name, to string, wantSHA256 []byte) error {
	if err := ValidName(name); err != nil {
		return fmt.Errorf("site: repair: %w", err)
	}
	dst := r.site(to)
	if dst == nil {
		return fmt.Errorf("site: repair %s: no site named %q", name, to)
	}
	if len(wantSHA256) != sha256.Size {
		return fmt.Errorf("site: repair %s: digest is %d bytes, want %d", name, len(wantSHA256), sha256.Size)
	}

	switch sum, err := digest(ctx, dst, name); {
	case err == nil && bytes.Equal(sum, wantSHA256):
		return nil
	case err == nil:
		return fmt.Errorf("site %s: repair %s: existing copy: %w", to, name, ErrDigestMismatch)
	case !errors.Is(err, ErrNotExist):
		return fmt.Errorf("site: repair %s: %w", name, err)
	}

	var errs []error
	allNotExist := true
	for _, src := range r.sites {
		if src.Name() == dst.Name() {
			continue
		}
		err := copyBlob(ctx, src, dst, name, wantSHA256)
		if err == nil {
			r.logger.Info("site: blob repaired", "site", dst.Name(), "from", src.Name(), "recording", name)
			return nil
		}
		allNotExist = allNotExist && errors.Is(err, ErrNotExist)
		errs = append(errs, err)
	}
	if allNotExist {
		return fmt.Errorf("site: repair %s: no source: %w", name, ErrNotExist)
	}
	return fmt.Errorf("site: repair %s: %w", name, errors.Join(errs...))
}

// repairBufSize is the copy buffer of Repair.
const repairBufSize = 256 << 10

// digest returns the SHA-256 of blob name on s.
func digest(ctx context.Context, s Store, name string) ([]byte, error) {
	b, err := s.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, io.NewSectionReader(b, 0, b.Size()), make([]byte, repairBufSize)); err != nil {
		return nil, fmt.Errorf("site %s: read %s: %w", s.Name(), name, err)
	}
	return h.Sum(nil), nil
}

// copyBlob streams blob name from src to dst, hashing it on the way, and
// commits on dst only if the digest is want.
func copyBlob(ctx context.Context, src, dst Store, name string, want []byte) error {
	b, err := src.Open(ctx, name)
	if err != nil {
		return err
	}
	defer b.Close()
	up, err := dst.Create(ctx, name)
	if err != nil {
		return err
	}
	defer up.Abort()
	// The copy keeps the source's lock: a repaired copy is as protected
	// as the one it was made from.
	if r, ok := src.(Retainer); ok {
		until, err := r.Retention(ctx, name)
		if err != nil {
			return err
		}
		LockUntil(up, until)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(up, h), io.NewSectionReader(b, 0, b.Size()), make([]byte, repairBufSize))
	if err != nil {
		return fmt.Errorf("site %s: copy %s from site %s: %w", dst.Name(), name, src.Name(), err)
	}
	if n != b.Size() {
		return fmt.Errorf("site %s: copy %s from site %s: copied %d of %d bytes", dst.Name(), name, src.Name(), n, b.Size())
	}
	if !bytes.Equal(h.Sum(nil), want) {
		return fmt.Errorf("site %s: copy %s from site %s: %w", dst.Name(), name, src.Name(), ErrDigestMismatch)
	}
	return up.Commit()
}

// Delete removes blob name from both sites. A site that does not hold it is
// not an error; Delete tries both sites even if one fails, and returns the
// failures joined.
func (r *Replicator) Delete(ctx context.Context, name string) error {
	if err := ValidName(name); err != nil {
		return fmt.Errorf("site: delete: %w", err)
	}
	var errs []error
	for _, s := range r.sites {
		if err := s.Delete(ctx, name); err != nil && !errors.Is(err, ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("site: delete %s: %w", name, errors.Join(errs...))
	}
	return nil
}

// DeleteAt removes blob name from the site named siteName. A site that
// does not hold it is not an error.
func (r *Replicator) DeleteAt(ctx context.Context, siteName, name string) error {
	if err := ValidName(name); err != nil {
		return fmt.Errorf("site: delete: %w", err)
	}
	s := r.site(siteName)
	if s == nil {
		return fmt.Errorf("site: delete %s: no site %q", name, siteName)
	}
	if err := s.Delete(ctx, name); err != nil && !errors.Is(err, ErrNotExist) {
		return fmt.Errorf("site: delete %s at %s: %w", name, siteName, err)
	}
	return nil
}

// warn logs a failure the Replicator worked around.
func (r *Replicator) warn(msg, site, name string, err error) {
	r.logger.Warn(msg, "site", site, "recording", name, "err", err)
}
