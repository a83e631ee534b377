// Package s3site is a site.Store on an S3-compatible object store: one
// endpoint, one bucket, one set of credentials per site.
//
// A blob is one object named by its recording ID. Write-once is enforced by
// the store with conditional writes (If-None-Match: *), so two uploads of
// one name never both commit. Small blobs go up in one PUT with Content-MD5;
// a blob larger than the part size goes up as a multipart upload, completed
// with the same condition, and aborted if the upload is. Reads are ranged
// GETs of the version that Open found, so a blob's bytes cannot change under
// a reader.
//
// Object Lock: an upload given a retention date (site.Locker) is written in
// COMPLIANCE mode until that date, so nobody — not callvault, not the
// store's root account — can delete or change that version before then.
// Delete removes every version the lock allows and otherwise leaves a delete
// marker: a locked recording deleted by an IVO decision disappears from
// callvault, and its ciphertext stays on the store until the lock expires,
// unreadable because its file key was destroyed (docs/lifecycle.md). Objects
// written without a date (recovery records, which hold wrapped file keys)
// are deleted for good. CheckWORM verifies that the store really enforces
// the lock (docs/deploy.md).
//
// Errors name the site, the bucket and recording IDs, never credentials.
package s3site

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"callvault/internal/site"
)

// DefaultPartSize is the size of a multipart upload's parts, and the size
// below which a blob goes up in a single PUT. It is also the most an
// upload buffers in memory.
const DefaultPartSize = 8 << 20

// minPartSize is S3's smallest allowed non-final part.
const minPartSize = 5 << 20

// Config describes one S3 site.
type Config struct {
	// Name and Jurisdiction as site.Store reports them; both required.
	Name         string
	Jurisdiction string

	// Endpoint is host:port of the S3 API. Secure selects HTTPS; plain
	// HTTP is accepted only for a loopback endpoint.
	Endpoint string
	Secure   bool
	Bucket   string

	AccessKey string
	SecretKey string
	// Region, if the store needs one; "us-east-1" if empty.
	Region string

	// RootCAs verifies the store's certificate; nil means the system pool.
	RootCAs *x509.CertPool

	// PartSize of multipart uploads; DefaultPartSize if zero. At least
	// 5 MiB (S3's minimum part).
	PartSize int64
}

// ParseURL parses a site URL: s3://KEY:SECRET@HOST:PORT/BUCKET for HTTPS,
// or s3+http://… for plain HTTP to a store on loopback. Name and
// Jurisdiction are left for the caller. Errors never contain the secret.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, errors.New("s3site: the site URL does not parse (want s3://KEY:SECRET@HOST:PORT/BUCKET)")
	}
	var c Config
	switch u.Scheme {
	case "s3":
		c.Secure = true
	case "s3+http":
	default:
		return Config{}, fmt.Errorf("s3site: site URL scheme %q: want s3 or s3+http", u.Scheme)
	}
	if u.User == nil || u.User.Username() == "" {
		return Config{}, errors.New("s3site: the site URL has no access key (s3://KEY:SECRET@HOST:PORT/BUCKET)")
	}
	secret, ok := u.User.Password()
	if !ok || secret == "" {
		return Config{}, errors.New("s3site: the site URL has no secret key (s3://KEY:SECRET@HOST:PORT/BUCKET)")
	}
	c.AccessKey, c.SecretKey = u.User.Username(), secret
	if u.Host == "" {
		return Config{}, errors.New("s3site: the site URL has no host")
	}
	c.Endpoint = u.Host
	c.Bucket = strings.Trim(u.Path, "/")
	if c.Bucket == "" || strings.Contains(c.Bucket, "/") {
		return Config{}, errors.New("s3site: the site URL must name exactly one bucket as its path")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return Config{}, errors.New("s3site: the site URL takes no query or fragment")
	}
	if !c.Secure && !isLoopback(u.Hostname()) {
		return Config{}, fmt.Errorf("s3site: plain HTTP (s3+http) is only for a store on loopback, not %s: use s3:// (HTTPS)", u.Hostname())
	}
	return c, nil
}

// IsURL reports whether s is an S3 site URL rather than a directory.
func IsURL(s string) bool { return strings.HasPrefix(s, "s3://") || strings.HasPrefix(s, "s3+http://") }

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// String describes the site without its credentials.
func (c Config) String() string {
	scheme := "s3"
	if !c.Secure {
		scheme = "s3+http"
	}
	return scheme + "://" + c.Endpoint + "/" + c.Bucket
}

// Store is a site.Store on one bucket. It is safe for concurrent use.
type Store struct {
	cfg    Config
	client *minio.Client
	core   minio.Core

	// afterCanaryPut, if set (by tests), runs between writing a WORM
	// canary and trying to delete it.
	afterCanaryPut func(key, versionID string)
}

var (
	_ site.Store       = (*Store)(nil)
	_ site.Retainer    = (*Store)(nil)
	_ site.WORMChecker = (*Store)(nil)
)

// New returns the store cfg describes. It does not contact the store: a
// site that is down at start fails Check and every operation until it is
// back, like a filesystem site.
func New(cfg Config) (*Store, error) {
	if cfg.Name == "" {
		return nil, errors.New("s3site: a site name is required")
	}
	if len(cfg.Jurisdiction) != 2 || strings.ToUpper(cfg.Jurisdiction) != cfg.Jurisdiction {
		return nil, fmt.Errorf("site %s: jurisdiction must be an upper-case ISO 3166-1 alpha-2 code such as SE", cfg.Name)
	}
	if cfg.Endpoint == "" || cfg.Bucket == "" || cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, fmt.Errorf("site %s: endpoint, bucket and credentials are required", cfg.Name)
	}
	if !cfg.Secure {
		host, _, err := net.SplitHostPort(cfg.Endpoint)
		if err != nil || !isLoopback(host) {
			return nil, fmt.Errorf("site %s: plain HTTP is only for a store on loopback", cfg.Name)
		}
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.PartSize < minPartSize {
		return nil, fmt.Errorf("site %s: part size %d is below S3's minimum of 5 MiB", cfg.Name, cfg.PartSize)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	tr := &http.Transport{
		Proxy:                 nil, // a site is reached directly, never through an environment proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	if cfg.Secure {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: cfg.RootCAs}
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    cfg.Secure,
		Transport: tr,
		Region:    cfg.Region,
		// Path-style requests: the bucket is in the path, so any host
		// name (or an IP address) works.
		BucketLookup: minio.BucketLookupPath,
		// A site that is down must fail fast: the replicator queues the
		// copy and the request goes on with the other site.
		MaxRetries: 2,
	})
	if err != nil {
		return nil, fmt.Errorf("site %s: %w", cfg.Name, err)
	}
	return &Store{cfg: cfg, client: client, core: minio.Core{Client: client}}, nil
}

// Name implements site.Store.
func (s *Store) Name() string { return s.cfg.Name }

// Jurisdiction implements site.Store.
func (s *Store) Jurisdiction() string { return s.cfg.Jurisdiction }

// String describes the site without credentials.
func (s *Store) String() string { return s.cfg.Name + " (" + s.cfg.String() + ")" }

// EnsureBucket creates the bucket if it does not exist, with Object Lock
// (and so versioning) when lock is true. It reports whether it created it.
// It is for development setups; production buckets are made by operators
// (docs/deploy.md).
func (s *Store) EnsureBucket(ctx context.Context, lock bool) (created bool, err error) {
	ok, err := s.client.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		return false, s.wrap("bucket", "", err)
	}
	if ok {
		return false, nil
	}
	if err := s.client.MakeBucket(ctx, s.cfg.Bucket, minio.MakeBucketOptions{Region: s.cfg.Region, ObjectLocking: lock}); err != nil {
		return false, s.wrap("create bucket", "", err)
	}
	return true, nil
}

// LockEnabled reports whether the bucket has Object Lock enabled. That is
// the bucket's claim; CheckWORM tests it.
func (s *Store) LockEnabled(ctx context.Context) (bool, error) {
	enabled, _, _, _, err := s.client.GetObjectLockConfig(ctx, s.cfg.Bucket)
	if err != nil {
		if code := minio.ToErrorResponse(err).Code; code == "ObjectLockConfigurationNotFoundError" || code == "ObjectLockConfigurationNotFound" {
			return false, nil
		}
		return false, s.wrap("object lock configuration", "", err)
	}
	return enabled == "Enabled", nil
}

// Create implements site.Store. It fails with site.ErrExists if a
// committed blob has the name (checked now, and again at Commit).
func (s *Store) Create(ctx context.Context, name string) (site.Upload, error) {
	if err := s.begin(ctx, "create", name); err != nil {
		return nil, err
	}
	switch _, err := s.stat(ctx, name); {
	case err == nil:
		return nil, fmt.Errorf("site %s: create %s: %w", s.cfg.Name, name, site.ErrExists)
	case !errors.Is(err, site.ErrNotExist):
		return nil, err
	}
	return &upload{s: s, ctx: ctx, name: name}, nil
}

// Open implements site.Store. The blob reads the version current at Open.
func (s *Store) Open(ctx context.Context, name string) (site.Blob, error) {
	if err := s.begin(ctx, "open", name); err != nil {
		return nil, err
	}
	info, err := s.stat(ctx, name)
	if err != nil {
		return nil, err
	}
	return &blob{s: s, name: name, version: info.VersionID, size: info.Size}, nil
}

// Stat implements site.Store.
func (s *Store) Stat(ctx context.Context, name string) (int64, error) {
	if err := s.begin(ctx, "stat", name); err != nil {
		return 0, err
	}
	info, err := s.stat(ctx, name)
	if err != nil {
		return 0, err
	}
	return info.Size, nil
}

func (s *Store) stat(ctx context.Context, name string) (minio.ObjectInfo, error) {
	info, err := s.client.StatObject(ctx, s.cfg.Bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return info, s.wrap("stat", name, err)
	}
	return info, nil
}

// Delete implements site.Store: every version of name that no lock holds
// is removed for good; if a version stays locked, a delete marker hides it
// so that the name no longer exists for callvault.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := s.begin(ctx, "delete", name); err != nil {
		return err
	}
	if _, err := s.stat(ctx, name); err != nil {
		return err
	}
	locked := false
	for v := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: name, WithVersions: true}) {
		if v.Err != nil {
			return s.wrap("delete", name, v.Err)
		}
		if v.Key != name {
			continue
		}
		err := s.client.RemoveObject(ctx, s.cfg.Bucket, name, minio.RemoveObjectOptions{VersionID: v.VersionID})
		switch {
		case err == nil:
		case minio.ToErrorResponse(err).Code == "AccessDenied" && !v.IsDeleteMarker:
			locked = true
		default:
			return s.wrap("delete", name, err)
		}
	}
	if locked {
		if err := s.client.RemoveObject(ctx, s.cfg.Bucket, name, minio.RemoveObjectOptions{}); err != nil {
			return s.wrap("delete", name, err)
		}
	}
	return nil
}

// List implements site.Store. Objects whose names are not blob names (the
// WORM canaries) are not listed.
func (s *Store) List(ctx context.Context, fn func(site.BlobInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("site %s: list: %w", s.cfg.Name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine if fn fails
	for o := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			return s.wrap("list", "", o.Err)
		}
		if site.ValidName(o.Key) != nil {
			continue
		}
		if err := fn(site.BlobInfo{Name: o.Key, Size: o.Size, ModTime: o.LastModified}); err != nil {
			return err
		}
	}
	return nil
}

// checkPrefix holds Check's probe objects, which live for one request
// pair; their names are not blob names, so List skips them.
const checkPrefix = "callvault-check/"

// Check implements site.Store: it writes a small unlocked probe object and
// deletes that version, which proves the bucket is reachable and writable
// with these credentials and leaves nothing behind. If the probe cannot be
// deleted, the bucket locks objects by default — against what the bucket
// must be (docs/deploy.md): recovery records must stay deletable.
func (s *Store) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("site %s: check: %w", s.cfg.Name, err)
	}
	var r [8]byte
	rand.Read(r[:])
	key := fmt.Sprintf("%s%d-%x", checkPrefix, time.Now().UnixNano(), r)
	o := minio.PutObjectOptions{SendContentMd5: true, DisableMultipart: true}
	o.SetMatchETagExcept("*")
	info, err := s.client.PutObject(ctx, s.cfg.Bucket, key, strings.NewReader("ok"), 2, o)
	if err != nil {
		return s.wrap("check", "", err)
	}
	err = s.client.RemoveObject(context.WithoutCancel(ctx), s.cfg.Bucket, key, minio.RemoveObjectOptions{VersionID: info.VersionID})
	if minio.ToErrorResponse(err).Code == "AccessDenied" {
		return fmt.Errorf("site %s: check: bucket %s: a new object cannot be deleted: the bucket has a default retention, which it must not have (docs/deploy.md)", s.cfg.Name, s.cfg.Bucket)
	}
	if err != nil {
		return s.wrap("check", "", err)
	}
	return nil
}

// Retention implements site.Retainer: the COMPLIANCE retention date of the
// current version of name, or the zero time if it has none.
func (s *Store) Retention(ctx context.Context, name string) (time.Time, error) {
	if err := s.begin(ctx, "retention", name); err != nil {
		return time.Time{}, err
	}
	info, err := s.stat(ctx, name)
	if err != nil {
		return time.Time{}, err
	}
	return retentionOf(info), nil
}

func retentionOf(info minio.ObjectInfo) time.Time {
	if !strings.EqualFold(info.Metadata.Get("X-Amz-Object-Lock-Mode"), "COMPLIANCE") {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, info.Metadata.Get("X-Amz-Object-Lock-Retain-Until-Date"))
	if err != nil {
		return time.Time{}
	}
	return t
}

// begin checks what every named operation checks first.
func (s *Store) begin(ctx context.Context, op, name string) error {
	if err := site.ValidName(name); err != nil {
		return fmt.Errorf("site %s: %s: %w", s.cfg.Name, op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("site %s: %s %s: %w", s.cfg.Name, op, name, err)
	}
	return nil
}

// wrap turns a client error into the site's: "not found" wraps
// site.ErrNotExist, a failed If-None-Match wraps site.ErrExists, a done
// context its error. The S3 error's code and message are kept; they carry
// no credentials.
func (s *Store) wrap(op, name string, err error) error {
	what := op
	if name != "" {
		what += " " + name
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("site %s: %s: %w", s.cfg.Name, what, err)
	case resp.Code == "NoSuchKey" || resp.Code == "NoSuchVersion" || resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket":
		return fmt.Errorf("site %s: %s: %w", s.cfg.Name, what, site.ErrNotExist)
	case resp.StatusCode == http.StatusPreconditionFailed:
		return fmt.Errorf("site %s: %s: %w", s.cfg.Name, what, site.ErrExists)
	case resp.Code != "":
		return fmt.Errorf("site %s: %s: bucket %s: %s (%s)", s.cfg.Name, what, s.cfg.Bucket, resp.Code, resp.Message)
	}
	return fmt.Errorf("site %s: %s: %w", s.cfg.Name, what, err)
}

// upload buffers up to one part in memory; larger blobs become a
// multipart upload whose parts go up as they fill.
type upload struct {
	s    *Store
	ctx  context.Context
	name string

	until     time.Time // Object Lock retention, if set
	buf       []byte
	uploadID  string // multipart upload, once started
	parts     []minio.CompletePart
	err       error // sticky: after a failure only Abort
	done      bool  // committed or aborted
	committed bool
}

var _ site.Locker = (*upload)(nil)

// LockUntil implements site.Locker. It must be called before the first
// Write: a multipart upload carries its lock from the start. A date that
// is not in the future (a recording imported after its retention ended)
// locks nothing: stores refuse such a lock.
func (u *upload) LockUntil(t time.Time) {
	if !t.After(time.Now()) {
		return
	}
	if len(u.buf) == 0 && u.uploadID == "" {
		u.until = t.UTC().Truncate(time.Second)
	} else if u.err == nil {
		u.err = fmt.Errorf("site %s: lock %s: LockUntil after Write", u.s.cfg.Name, u.name)
	}
}

func (u *upload) opts() minio.PutObjectOptions {
	o := minio.PutObjectOptions{ContentType: "application/octet-stream"}
	if !u.until.IsZero() {
		o.Mode = minio.Compliance
		o.RetainUntilDate = u.until
	}
	return o
}

func (u *upload) Write(p []byte) (int, error) {
	switch {
	case u.done:
		return 0, fmt.Errorf("site %s: write %s: upload already ended", u.s.cfg.Name, u.name)
	case u.err != nil:
		return 0, u.err
	}
	if err := u.ctx.Err(); err != nil {
		u.err = fmt.Errorf("site %s: write %s: %w", u.s.cfg.Name, u.name, err)
		return 0, u.err
	}
	n := 0
	for len(p) > 0 {
		room := int(u.s.cfg.PartSize) - len(u.buf)
		k := min(room, len(p))
		u.buf = append(u.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(u.buf) == int(u.s.cfg.PartSize) && len(p) > 0 {
			// A full part with more to come: it cannot be the last.
			if err := u.flushPart(); err != nil {
				u.err = err
				return n, err
			}
		}
	}
	return n, nil
}

// flushPart uploads the buffer as the next part, starting the multipart
// upload if needed.
func (u *upload) flushPart() error {
	if u.uploadID == "" {
		id, err := u.s.core.NewMultipartUpload(u.ctx, u.s.cfg.Bucket, u.name, u.opts())
		if err != nil {
			return u.s.wrap("upload", u.name, err)
		}
		u.uploadID = id
	}
	sum := md5.Sum(u.buf)
	n := len(u.parts) + 1
	part, err := u.s.core.PutObjectPart(u.ctx, u.s.cfg.Bucket, u.name, u.uploadID, n,
		bytes.NewReader(u.buf), int64(len(u.buf)), minio.PutObjectPartOptions{Md5Base64: base64.StdEncoding.EncodeToString(sum[:])})
	if err != nil {
		return u.s.wrap("upload part", u.name, err)
	}
	u.parts = append(u.parts, minio.CompletePart{PartNumber: n, ETag: part.ETag})
	u.buf = u.buf[:0]
	return nil
}

func (u *upload) Commit() error {
	switch {
	case u.done:
		return fmt.Errorf("site %s: commit %s: upload already ended", u.s.cfg.Name, u.name)
	case u.err != nil:
		return u.err
	}
	if err := u.ctx.Err(); err != nil {
		u.err = fmt.Errorf("site %s: commit %s: %w", u.s.cfg.Name, u.name, err)
		return u.err
	}
	err := u.put(true)
	if errors.Is(err, site.ErrExists) {
		// A store may count a delete marker as an existing object (the
		// condition then fails although the name is free). If the name
		// is free, write without the condition.
		if _, serr := u.s.stat(u.ctx, u.name); errors.Is(serr, site.ErrNotExist) {
			err = u.put(false)
		}
	}
	if err != nil {
		u.err = err
		u.abortMultipart()
		u.done = true
		return err
	}
	u.done, u.committed = true, true
	u.buf = nil
	return nil
}

// put writes the blob: the remaining buffer as the last part and the
// completion, or one PUT.
func (u *upload) put(ifNoneMatch bool) error {
	o := u.opts()
	if ifNoneMatch {
		o.SetMatchETagExcept("*")
	}
	if u.uploadID != "" {
		if len(u.buf) > 0 {
			if err := u.flushPart(); err != nil {
				return err
			}
		}
		if _, err := u.s.core.CompleteMultipartUpload(u.ctx, u.s.cfg.Bucket, u.name, u.uploadID, u.parts, o); err != nil {
			return u.s.wrap("commit", u.name, err)
		}
		return nil
	}
	o.SendContentMd5 = true
	o.DisableMultipart = true
	if _, err := u.s.client.PutObject(u.ctx, u.s.cfg.Bucket, u.name, bytes.NewReader(u.buf), int64(len(u.buf)), o); err != nil {
		return u.s.wrap("commit", u.name, err)
	}
	return nil
}

func (u *upload) Abort() error {
	if u.committed || u.done && u.uploadID == "" {
		return nil
	}
	u.done = true
	u.buf = nil
	if u.err == nil {
		u.err = fmt.Errorf("site %s: upload %s aborted", u.s.cfg.Name, u.name)
	}
	return u.abortMultipart()
}

// abortMultipart removes the parts of a started multipart upload, even if
// the upload's context has ended.
func (u *upload) abortMultipart() error {
	if u.uploadID == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), 30*time.Second)
	defer cancel()
	err := u.s.core.AbortMultipartUpload(ctx, u.s.cfg.Bucket, u.name, u.uploadID)
	if err != nil && minio.ToErrorResponse(err).Code != "NoSuchUpload" {
		return u.s.wrap("abort", u.name, err)
	}
	u.uploadID = ""
	return nil
}

// blob reads one version of an object with ranged GETs.
type blob struct {
	s       *Store
	name    string
	version string
	size    int64

	mu     sync.Mutex
	closed bool
}

func (b *blob) Size() int64 { return b.size }

func (b *blob) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

func (b *blob) ReadAt(p []byte, off int64) (int, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return 0, fmt.Errorf("site %s: read %s: blob is closed", b.s.cfg.Name, b.name)
	}
	if off < 0 {
		return 0, fmt.Errorf("site %s: read %s: negative offset", b.s.cfg.Name, b.name)
	}
	if off >= b.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	want := min(int64(len(p)), b.size-off)
	o := minio.GetObjectOptions{VersionID: b.version}
	if err := o.SetRange(off, off+want-1); err != nil {
		return 0, fmt.Errorf("site %s: read %s: %w", b.s.cfg.Name, b.name, err)
	}
	// Reads are not bound to Open's context (site.Store's contract); a
	// stalled store is bounded by the transport's timeouts.
	rc, _, _, err := b.s.core.GetObject(context.Background(), b.s.cfg.Bucket, b.name, o)
	if err != nil {
		return 0, b.s.wrap("read", b.name, err)
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, p[:want])
	if err != nil {
		return n, fmt.Errorf("site %s: read %s: %w", b.s.cfg.Name, b.name, err)
	}
	if want < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

// ErrNotWORM is site.ErrNotWORM: CheckWORM wraps it when the store does
// not enforce Object Lock (a locked version could be deleted, or the lock
// was not applied).
var ErrNotWORM = site.ErrNotWORM

// canaryPrefix holds the WORM canaries; their names are not blob names, so
// List skips them.
const canaryPrefix = "callvault-worm-canary/"

// CanaryRetention is how long a WORM canary stays locked.
const CanaryRetention = time.Hour

// CheckWORM verifies that the store enforces Object Lock now, rather than
// trusting the bucket's configuration (stores have been seen to accept a
// lock and then allow deletes, or to lose lock settings in replication):
// it writes a small canary object locked in COMPLIANCE mode for
// CanaryRetention and tries to delete that version — a versioned DELETE,
// which really removes data, not a delete marker. It returns nil if the
// store refused, and an error wrapping ErrNotWORM if the lock could not be
// set, was not reported back, or the delete succeeded. Other errors (the
// store is down) are returned as they are: they say nothing about WORM.
// Canaries whose lock has expired are removed first.
func (s *Store) CheckWORM(ctx context.Context) error {
	s.removeExpiredCanaries(ctx)
	now := time.Now().UTC()
	key := fmt.Sprintf("%s%s-%d", canaryPrefix, now.Format("20060102T150405Z"), now.UnixNano()%1e9)
	body := []byte("callvault WORM canary: this object must not be deletable before its retention date\n")
	o := minio.PutObjectOptions{
		ContentType:     "text/plain",
		Mode:            minio.Compliance,
		RetainUntilDate: now.Add(CanaryRetention).Truncate(time.Second),
		SendContentMd5:  true,
	}
	info, err := s.client.PutObject(ctx, s.cfg.Bucket, key, bytes.NewReader(body), int64(len(body)), o)
	if err != nil {
		if resp := minio.ToErrorResponse(err); resp.StatusCode == http.StatusBadRequest || resp.Code == "InvalidRequest" {
			return fmt.Errorf("site %s: WORM canary: the store refused a locked write (%s: %s): %w",
				s.cfg.Name, resp.Code, resp.Message, ErrNotWORM)
		}
		return s.wrap("WORM canary", "", err)
	}
	if info.VersionID == "" {
		return fmt.Errorf("site %s: WORM canary: the bucket is not versioned: %w", s.cfg.Name, ErrNotWORM)
	}
	if s.afterCanaryPut != nil {
		s.afterCanaryPut(key, info.VersionID)
	}
	err = s.client.RemoveObject(ctx, s.cfg.Bucket, key, minio.RemoveObjectOptions{VersionID: info.VersionID})
	if err == nil {
		return fmt.Errorf("site %s: WORM canary: a locked version was deleted: %w", s.cfg.Name, ErrNotWORM)
	}
	if minio.ToErrorResponse(err).Code != "AccessDenied" {
		return s.wrap("WORM canary delete", "", err)
	}
	// The delete was refused; the version must still be there, locked.
	st, err := s.client.StatObject(ctx, s.cfg.Bucket, key, minio.StatObjectOptions{VersionID: info.VersionID})
	if err != nil {
		return s.wrap("WORM canary", "", err)
	}
	if until := retentionOf(st); until.Before(now.Add(CanaryRetention / 2)) {
		return fmt.Errorf("site %s: WORM canary: the store does not report the lock it accepted: %w", s.cfg.Name, ErrNotWORM)
	}
	return nil
}

// removeExpiredCanaries deletes the versions of earlier canaries whose
// lock has run out. Failures are left for the next check.
func (s *Store) removeExpiredCanaries(ctx context.Context) {
	cutoff := time.Now().Add(-CanaryRetention - time.Minute)
	for v := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: canaryPrefix, Recursive: true, WithVersions: true}) {
		if v.Err != nil {
			return
		}
		if v.LastModified.Before(cutoff) {
			_ = s.client.RemoveObject(ctx, s.cfg.Bucket, v.Key, minio.RemoveObjectOptions{VersionID: v.VersionID})
		}
	}
}

// CleanTemp aborts the multipart uploads of this bucket that were started
// more than olderThan ago: parts of uploads a crash left behind (their
// bytes are ciphertext, but they take space and are not blobs). Uploads
// of other serve replicas are in flight for seconds, so a day is a safe
// age; a bucket lifecycle rule (AbortIncompleteMultipartUpload) is the
// store's own way to the same end. It returns how many it aborted.
func (s *Store) CleanTemp(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	n := 0
	for u := range s.client.ListIncompleteUploads(ctx, s.cfg.Bucket, "", true) {
		if u.Err != nil {
			return n, s.wrap("clean uploads", "", u.Err)
		}
		if u.Initiated.After(cutoff) {
			continue
		}
		if err := s.core.AbortMultipartUpload(ctx, s.cfg.Bucket, u.Key, u.UploadID); err != nil && minio.ToErrorResponse(err).Code != "NoSuchUpload" {
			return n, s.wrap("clean uploads", "", err)
		}
		n++
	}
	return n, nil
}
