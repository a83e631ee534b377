// Package s3test starts a real S3 server for tests: versitygw (a Go S3
// gateway with versioning and Object Lock) on a POSIX directory, listening on
// loopback. scripts/deps.sh installs it with `go install`; a test that cannot
// find it fails and says so, it does not skip.
package s3test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Version is the versitygw release scripts/deps.sh installs.
const Version = "v1.8.0"

// Binary returns the path of the versitygw binary: from PATH, else from
// GOPATH/bin where `go install` puts it.
func Binary() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	p := filepath.Join(build.Default.GOPATH, "bin", "versitygw")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("versitygw is missing (run scripts/deps.sh, which runs go install github.com/versity/versitygw/cmd/versitygw@%s)", Version)
	}
	return p, nil
}

// Server is a running versitygw on loopback. Its root account's keys are
// random per server. Stop and Start keep the address and the data, so a
// test can take the server away and bring it back.
type Server struct {
	// Endpoint is host:port on 127.0.0.1, plain HTTP.
	Endpoint  string
	AccessKey string
	SecretKey string

	bin, root, versions, logPath string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts a server with its data in a temporary directory and stops
// it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := Launch(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// Launch starts a server keeping its data under dir, for callers without a
// testing.TB (a TestMain). The caller must Stop it.
func Launch(dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	s := &Server{
		AccessKey: "test" + randomHex(8),
		SecretKey: randomHex(20),
		bin:       bin,
		root:      filepath.Join(dir, "root"),
		versions:  filepath.Join(dir, "versions"),
		logPath:   filepath.Join(dir, "versitygw.log"),
	}
	for _, d := range []string{s.root, s.versions} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.Endpoint = l.Addr().String()
	l.Close()
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// Start (re)starts a stopped server on the same address and data, and
// waits until it answers HTTP.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, "--port", s.Endpoint, "--access", s.AccessKey, "--secret", s.SecretKey,
		"--quiet", "posix", "--versioning-dir", s.versions, s.root)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("s3test: start versitygw: %w", err)
	}
	s.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-exited:
			s.cmd = nil
			log, _ := os.ReadFile(s.logPath)
			return fmt.Errorf("s3test: versitygw exited (%v): %s", err, log)
		default:
		}
		resp, err := http.Get("http://" + s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			// The exit watcher stays; Stop reaps through it.
			go func() { s.reap(cmd, exited) }()
			return nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			s.cmd = nil
			return fmt.Errorf("s3test: versitygw did not answer on %s within 20s", s.Endpoint)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reap waits for cmd to end and forgets it (when it dies on its own).
func (s *Server) reap(cmd *exec.Cmd, exited <-chan error) {
	<-exited
	s.mu.Lock()
	if s.cmd == cmd {
		s.cmd = nil
	}
	s.mu.Unlock()
}

// Stop kills the server (SIGKILL: a crash, not a shutdown) and waits until
// its port is closed.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	for i := 0; i < 500; i++ {
		s.mu.Lock()
		gone := s.cmd != cmd
		s.mu.Unlock()
		if gone {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := 0; i < 500; i++ {
		c, err := net.DialTimeout("tcp", s.Endpoint, 100*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
}

// Root is the directory the gateway keeps buckets in (one directory each,
// objects as files with their metadata in extended attributes), for tests
// that damage the store behind its back.
func (s *Server) Root() string { return s.root }

// Dirs returns every directory the gateway keeps data in: the bucket root
// and the directory of older object versions.
func (s *Server) Dirs() []string { return []string{s.root, s.versions} }

// URL returns the callvault site URL of bucket on this server
// (s3+http://KEY:SECRET@HOST:PORT/BUCKET).
func (s *Server) URL(bucket string) string {
	return fmt.Sprintf("s3+http://%s:%s@%s/%s", s.AccessKey, s.SecretKey, s.Endpoint, bucket)
}

// BucketName returns a fresh valid bucket name with the given prefix.
func BucketName(prefix string) string { return prefix + "-" + randomHex(6) }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
