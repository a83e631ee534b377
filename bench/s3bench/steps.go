package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"callvault/bench/internal/benchstat"
	"callvault/bench/internal/cvclient"
)

// measurement is one system storing every file on both servers with
// -clients files in flight.
type measurement struct {
	n      int
	bytes  int64           // plaintext bytes of all n files
	wall   time.Duration   // first request start to last response
	lat    []time.Duration // per file: request start to response (callvault) or to both PUTs answered
	cv     usage           // the callvault process (zero for the references)
	minio  usage           // both MinIO servers together
	driver time.Duration   // CPU time of this process: the clients
	load   benchstat.Load  // how busy the machine was, and how much of that outside these processes
	audit  cvclient.AuditStats
	reqs   map[string]float64 // S3 requests to both servers, by API
	check  string             // what the check after the step found, for the report
}

func (m measurement) perSec() float64 { return float64(m.n) / m.wall.Seconds() }
func (m measurement) mbps() float64   { return float64(m.bytes) / 1e6 / m.wall.Seconds() }

// perFile returns d in ms per file.
func (m measurement) perFile(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond) / float64(m.n)
}

// cpu is the CPU time of every process of the benchmark in the step.
func (m measurement) cpu() time.Duration { return m.driver + m.cv.cpu + m.minio.cpu }

// measure runs one(ctx, worker, i) for every file with -clients workers
// and records wall time, latencies, the S3 requests the servers answered,
// and the usage of the servers, of callvault (if cv is not nil) and of the
// machine.
func (b *bench) measure(ctx context.Context, cv *process, servers [2]*minioServer, one func(ctx context.Context, w, i int) (time.Duration, error)) (measurement, error) {
	m := measurement{n: len(b.files), bytes: b.bytes, lat: make([]time.Duration, len(b.files)), reqs: map[string]float64{}}
	all := []*process{servers[0].proc, servers[1].proc}
	if cv != nil {
		all = append([]*process{cv}, all...)
	}
	var reqs0 [2]map[string]float64
	for k, s := range servers {
		var err error
		if reqs0[k], err = s.requests(ctx); err != nil {
			return m, err
		}
	}
	u0, err := usages(all)
	if err != nil {
		return m, err
	}
	pids := make([]int, len(all))
	for i, p := range all {
		pids[i] = p.pid()
	}
	meter, self0 := benchstat.StartMeter(pids...), benchstat.SelfCPU()
	m.wall, err = cvclient.Parallel(ctx, len(b.files), b.o.clients, func(ctx context.Context, w, i int) error {
		var err error
		m.lat[i], err = one(ctx, w, i)
		return err
	})
	m.driver, m.load = benchstat.SelfCPU()-self0, meter.Stop()
	if err != nil {
		return m, err
	}
	u1, err := usages(all)
	if err != nil {
		return m, err
	}
	k := 0
	if cv != nil {
		m.cv, k = u1[0].minus(u0[0]), 1
	}
	for i := k; i < len(all); i++ {
		d := u1[i].minus(u0[i])
		m.minio.cpu += d.cpu
		m.minio.write += d.write
	}
	for k, s := range servers {
		reqs1, err := s.requests(ctx)
		if err != nil {
			return m, err
		}
		for api, n := range reqs1 {
			if d := n - reqs0[k][api]; d != 0 {
				m.reqs[api] += d
			}
		}
	}
	return m, nil
}

// requestsPerFile lists the S3 requests per file by API, most first, such
// as "PutObject 4.00, HeadObject 4.00".
func (m measurement) requestsPerFile() string {
	apis := slices.Collect(maps.Keys(m.reqs))
	slices.SortFunc(apis, func(a, b string) int { return cmp.Or(cmp.Compare(m.reqs[b], m.reqs[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(apis))
	for i, api := range apis {
		parts[i] = fmt.Sprintf("%s %.2f", api, m.reqs[api]/float64(m.n))
	}
	return strings.Join(parts, ", ")
}

func usages(ps []*process) ([]usage, error) {
	us := make([]usage, len(ps))
	for i, p := range ps {
		var err error
		if us[i], err = p.usage(); err != nil {
			return nil, err
		}
	}
	return us, nil
}

// cvSites are the buckets of callvault's two sites, site a on the first
// server and site b on the second.
var cvSites = [2]string{"callvault-a", "callvault-b"}

// callvaultStep uploads every file through callvault's API with -clients
// concurrent keep-alive clients (the dev capture identity) and metadata
// from md, as bench/archivebench does, and checks one recording's objects
// afterwards.
func (b *bench) callvaultStep(ctx context.Context, srv *process, addr, opsAddr, devDir string, md *cvclient.Metadata, servers [2]*minioServer, tag string) (measurement, error) {
	cfg, err := cvclient.ClientTLS(devDir, "capture")
	if err != nil {
		return measurement{}, err
	}
	hcs := make([]*http.Client, b.o.clients)
	for w := range hcs {
		hcs[w] = cvclient.NewClient(cfg)
		defer hcs[w].CloseIdleConnections()
	}
	ids := make([]string, len(b.files))
	audit0, err := cvclient.ScrapeAudit(opsAddr)
	if err != nil {
		return measurement{}, err
	}
	m, err := b.measure(ctx, srv, servers, func(ctx context.Context, w, i int) (time.Duration, error) {
		mdJSON, err := md.For(fmt.Sprintf("bench-%s-%03d", tag, i))
		if err != nil {
			return 0, err
		}
		t0 := time.Now()
		ids[i], err = cvclient.Upload(ctx, hcs[w], "https://"+addr+"/v1/recordings", mdJSON, b.files[i])
		return time.Since(t0), err
	})
	if err != nil {
		return m, fmt.Errorf("callvault upload: %w", err)
	}
	audit1, err := cvclient.ScrapeAudit(opsAddr)
	if err != nil {
		return m, err
	}
	m.audit = audit1.Minus(audit0)
	want := md.EndedAt().AddDate(b.o.retentionYears, 0, 0)
	var checks []string
	for k, s := range servers {
		c, _, err := checkObject(ctx, s, cvSites[k], ids[0], want)
		if err != nil {
			return m, fmt.Errorf("callvault's recording on %s: %w", s.name, err)
		}
		count, size, err := bucketContents(ctx, s, cvSites[k])
		if err != nil {
			return m, err
		}
		checks = append(checks, fmt.Sprintf("%s: a recording's object %s; the bucket holds %d objects, %.1f MB", s.name, c, count, float64(size)/1e6))
	}
	m.check = strings.Join(checks, "; ")
	return m, nil
}

// refStep PUTs every file to bucket on both servers at once, with or
// without SSE-S3, and checks the first file's objects afterwards.
func (b *bench) refStep(ctx context.Context, servers [2]*minioServer, bucket string, sse bool, endedAt time.Time) (measurement, error) {
	until := endedAt.AddDate(b.o.retentionYears, 0, 0).UTC().Truncate(time.Second)
	m, err := b.measure(ctx, nil, servers, func(ctx context.Context, _, i int) (time.Duration, error) {
		t0 := time.Now()
		err := putBoth(ctx, servers, bucket, b.files[i].Name, b.files[i].Path, until, sse)
		return time.Since(t0), err
	})
	if err != nil {
		return m, fmt.Errorf("reference %s: %w", bucket, err)
	}
	wantSSE := ""
	if sse {
		wantSSE = "AES256"
	}
	var checks []string
	for _, s := range servers {
		c, got, err := checkObject(ctx, s, bucket, b.files[0].Name, until)
		if err != nil {
			return m, fmt.Errorf("reference %s on %s: %w", bucket, s.name, err)
		}
		if got != wantSSE {
			return m, fmt.Errorf("reference %s on %s: server-side encryption %q, want %q", bucket, s.name, got, wantSSE)
		}
		checks = append(checks, s.name+": "+c)
	}
	m.check = strings.Join(checks, "; ")
	return m, nil
}

// putBoth is the reference for one upload: the client reads the file and
// PUTs it to both servers in parallel, as callvault commits a blob to its
// two sites in parallel. The request is the one callvault's s3site makes
// for a blob below its part size (one PUT, Content-MD5, If-None-Match: *,
// COMPLIANCE until until), plus SSE-S3 if sse.
func putBoth(ctx context.Context, servers [2]*minioServer, bucket, name, path string, until time.Time, sse bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	o := minio.PutObjectOptions{
		ContentType:      "application/octet-stream",
		Mode:             minio.Compliance,
		RetainUntilDate:  until,
		SendContentMd5:   true,
		DisableMultipart: true,
	}
	o.SetMatchETagExcept("*")
	if sse {
		o.ServerSideEncryption = encrypt.NewSSE()
	}
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for k, s := range servers {
		wg.Go(func() {
			if _, err := s.client.PutObject(ctx, bucket, name, bytes.NewReader(data), int64(len(data)), o); err != nil {
				errs[k] = fmt.Errorf("%s: put %s/%s: %w", s.name, bucket, name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// checkObject reads back the lock and the server-side encryption of
// object name, which must be locked in COMPLIANCE mode until until. It
// returns a description and the encryption ("AES256", or "" for none).
func checkObject(ctx context.Context, s *minioServer, bucket, name string, until time.Time) (desc, sse string, err error) {
	info, err := s.client.StatObject(ctx, bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return "", "", err
	}
	mode := info.Metadata.Get("X-Amz-Object-Lock-Mode")
	got, _ := time.Parse(time.RFC3339, info.Metadata.Get("X-Amz-Object-Lock-Retain-Until-Date"))
	sse = info.Metadata.Get("X-Amz-Server-Side-Encryption")
	if mode != "COMPLIANCE" {
		return "", "", fmt.Errorf("%s/%s: lock mode %q, want COMPLIANCE", bucket, name, mode)
	}
	if !got.Equal(until.UTC().Truncate(time.Second)) {
		return "", "", fmt.Errorf("%s/%s: locked until %v, want %v", bucket, name, got, until)
	}
	shown := sse
	if shown == "" {
		shown = "none"
	}
	return fmt.Sprintf("%d bytes, COMPLIANCE until %s, SSE %s", info.Size, got.Format(time.DateOnly), shown), sse, nil
}

// bucketContents counts the current objects of bucket and their bytes.
func bucketContents(ctx context.Context, s *minioServer, bucket string) (int, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine after an error
	n, size := 0, int64(0)
	for o := range s.client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			return 0, 0, fmt.Errorf("%s: list %s: %w", s.name, bucket, o.Err)
		}
		n++
		size += o.Size
	}
	return n, size, nil
}
