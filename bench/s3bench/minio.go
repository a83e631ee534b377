package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// minioServer is one MinIO server on loopback: one of the two data
// centres. Its SSE-S3 key is a random built-in key (MINIO_KMS_SECRET_KEY),
// made for this server and gone with it.
type minioServer struct {
	name   string // dc1, dc2
	proc   *process
	addr   string // 127.0.0.1:PORT of the S3 API
	user   string // root credentials; the secret is random per server
	secret string
	client *minio.Client
}

// startMinIO runs `minio server DIR/data` on a free loopback port with
// SSE-S3 enabled and no web console, and waits until it is ready. What
// MinIO writes beside its data (~/.minio, the certificates directory) goes
// into DIR as well.
func startMinIO(ctx context.Context, bin, dir, name string) (*minioServer, error) {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &minioServer{name: name, addr: addr, user: "s3bench-" + name, secret: randomHex(20)}
	var kek [32]byte
	rand.Read(kek[:])
	env := []string{
		"MINIO_ROOT_USER=" + s.user,
		"MINIO_ROOT_PASSWORD=" + s.secret,
		// SSE-S3 with a built-in key: "<key name>:<base64 of 32 bytes>".
		"MINIO_KMS_SECRET_KEY=s3bench-" + name + ":" + base64.StdEncoding.EncodeToString(kek[:]),
		"MINIO_BROWSER=off",
		// The S3 request counts per API, read before and after each step.
		"MINIO_PROMETHEUS_AUTH_TYPE=public",
		// MinIO makes ~/.minio even with --certs-dir: keep it in DIR.
		"HOME=" + dir,
	}
	s.proc, err = launch("minio "+name, bin, filepath.Join(dir, "minio.log"), env, false,
		"server", filepath.Join(dir, "data"), "--address", addr, "--certs-dir", filepath.Join(dir, "certs"), "--quiet")
	if err != nil {
		return nil, err
	}
	if err := s.proc.waitHTTP(ctx, "http://"+addr+"/minio/health/ready"); err != nil {
		s.proc.stop()
		return nil, err
	}
	if s.client, err = newS3Client(addr, s.user, s.secret); err != nil {
		s.proc.stop()
		return nil, err
	}
	return s, nil
}

// siteURL is the callvault site URL of bucket on this server.
func (s *minioServer) siteURL(bucket string) string {
	return "s3+http://" + s.user + ":" + s.secret + "@" + s.addr + "/" + bucket
}

// makeLockedBucket creates bucket with Object Lock (and so versioning) and
// no default retention, as docs/deploy.md asks of a site's bucket.
func (s *minioServer) makeLockedBucket(ctx context.Context, bucket string) error {
	if err := s.client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: "us-east-1", ObjectLocking: true}); err != nil {
		return fmt.Errorf("%s: make bucket %s: %w", s.name, bucket, err)
	}
	return nil
}

// newS3Client returns a minio-go client configured as callvault's s3site
// configures its own (internal/site/s3site.New): path-style requests, no
// proxy, the same transport limits and retries.
func newS3Client(addr, user, secret string) (*minio.Client, error) {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return minio.New(addr, &minio.Options{
		Creds:        credentials.NewStaticV4(user, secret, ""),
		Transport:    tr,
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   2,
	})
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// requests returns the server's S3 request counts so far by API
// ("PutObject", "HeadObject", …), from its Prometheus metrics (v3, which
// are not cached, unlike v2's; public: MINIO_PROMETHEUS_AUTH_TYPE=public).
func (s *minioServer) requests(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/minio/metrics/v3/api/requests", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: metrics: %w", s.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: metrics: %s", s.name, resp.Status)
	}
	counts := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), `minio_api_requests_total{`)
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		_, api, ok := strings.Cut(labels, `name="`)
		if !ok || !strings.Contains(labels, `type="s3"`) {
			continue
		}
		api, _, _ = strings.Cut(api, `"`)
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		counts[api] += v
	}
	return counts, sc.Err()
}
