// Package pgtest gives tests a real, throwaway PostgreSQL: a cluster made
// with initdb in a temporary directory, listening on 127.0.0.1 at a free
// port, with fsync on and SCRAM password authentication, never the
// machine's own databases.
//
// New returns the URL of a fresh, empty database on one cluster shared by
// the whole test process: the first call starts it (about a second), every
// call creates a database with CREATE DATABASE, dropped when the test ends,
// so tests are independent and may run in parallel. The shared cluster is
// stopped and its directory removed by Main after the tests; a package
// that calls New MUST call Main from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// (New fails the test otherwise). If the test process is killed, the
// kernel kills the server with it (PR_SET_PDEATHSIG), and its temporary
// directory /tmp/callvault-pgtest-* and a 56-byte System V shared memory
// segment are left behind.
//
// Start gives one test a cluster of its own, which the test may kill
// (Server.Stop, SIGKILL) and start again on the same port and data
// (Server.Start); it is removed when the test ends.
//
// The binaries are the newest /usr/lib/postgresql/<version>/bin (Debian's
// layout), else initdb and postgres on PATH. Running as root, initdb and
// postgres run as the postgres system user (its uid and gid set on the
// child process directly, not through runuser, so that the postmaster is
// our child: killable, and killed with us), which owns the data directory.
// A missing PostgreSQL fails the test: run scripts/deps.sh.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"
)

// appRole is the owner of every test database and the user of every DSN:
// a plain role, not a superuser, as in production.
const appRole = "callvault"

// config is appended to postgresql.conf. The port is given on the command
// line so that a restart can keep it.
const config = `
listen_addresses = '127.0.0.1'
max_connections = 200
shared_buffers = 16MB
fsync = on
synchronous_commit = on
full_page_writes = on
dynamic_shared_memory_type = posix
log_min_messages = warning
log_error_verbosity = terse
`

// Server is a PostgreSQL cluster in a temporary directory.
type Server struct {
	bin      string              // directory of initdb and postgres; immutable
	dir      string              // temporary directory holding everything; immutable
	data     string              // data directory; immutable
	logPath  string              // server output; immutable
	cred     *syscall.Credential // the postgres user when running as root, else nil; immutable
	port     int                 // immutable after the first start
	password string              // of appRole; immutable
	superPW  string              // of the superuser "postgres"; immutable
	dbs      atomic.Int64        // databases created, for unique names

	mu     sync.Mutex
	cmd    *exec.Cmd     // the postmaster; nil when stopped; guarded by mu
	exited chan struct{} // closed when cmd has exited; guarded by mu
}

// shared is the cluster of New.
var shared struct {
	mainCalled atomic.Bool
	once       sync.Once
	srv        *Server // immutable after once
	err        error   // immutable after once
}

// Main runs the tests, then stops the shared cluster (if New started it)
// and removes its directory. Call it from TestMain.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main for a TestMain that does more: it runs the tests, stops and
// removes the shared cluster, and returns m.Run's exit code.
func Run(m *testing.M) int {
	shared.mainCalled.Store(true)
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.remove(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
	return code
}

// New returns the DSN (postgres://…@127.0.0.1:port/db?sslmode=disable) of
// a new, empty database on the shared cluster, owned by the DSN's user
// (not a superuser). The database is dropped when t ends.
func New(t testing.TB) string {
	t.Helper()
	if !shared.mainCalled.Load() {
		t.Fatal("pgtest: call pgtest.Main(m) from TestMain, so that the shared PostgreSQL is stopped at exit")
	}
	shared.once.Do(func() {
		start := time.Now()
		shared.srv, shared.err = newServer("")
		if shared.err == nil {
			t.Logf("pgtest: PostgreSQL cluster made and started in %v", time.Since(start).Round(time.Millisecond))
		}
	})
	if shared.err != nil {
		t.Fatalf("pgtest: %v", shared.err)
	}
	return shared.srv.NewDatabase(t)
}

// Start makes and starts a cluster that belongs to t alone; it is stopped
// and removed when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	start := time.Now()
	s, err := newServer("")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Logf("pgtest: PostgreSQL cluster made and started in %v", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := s.remove(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return s
}

// Launch makes and starts a cluster for a program that is not a test (a
// benchmark driver): extraConf is appended to the postgresql.conf of the
// tests (later lines win), so a caller can size shared_buffers and the
// like. The cluster listens on TCP only: a driver's temp dir may be too
// deep for a Unix socket's path (107 bytes). The caller owns the cluster
// and must call Remove.
func Launch(extraConf string) (*Server, error) {
	return newServer("unix_socket_directories = ''\n" + extraConf)
}

// Remove stops s, if it runs, and removes its directory and data.
func (s *Server) Remove() error { return s.remove() }

// CreateDatabase creates a new, empty database named name, owned by the
// DSN's user, and returns its DSN. Unlike NewDatabase it is not dropped
// by anyone but Remove.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	if err := s.admin(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+` OWNER `+appRole); err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return s.DSN(name), nil
}

// Admin runs one statement as the superuser in database postgres: what
// the application role may not do (CHECKPOINT, ALTER SYSTEM).
func (s *Server) Admin(ctx context.Context, stmt string) error { return s.admin(ctx, stmt) }

// DSN returns the URL of database db of s.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", appRole, s.password, s.port, db)
}

// Port returns the TCP port of s on 127.0.0.1; it stays the same across
// Stop and Start.
func (s *Server) Port() int { return s.port }

// NewDatabase creates a new, empty database on s and returns its DSN. The
// database is dropped when t ends, if s is running then.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%s", s.dbs.Add(1), dbNamePart(t.Name()))
	ctx := context.Background()
	// About 250 ms with fsync on. STRATEGY FILE_COPY (PostgreSQL 15+) is
	// faster alone (150 ms) but checkpoints twice, and made parallel
	// suites no faster.
	if err := s.admin(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+` OWNER `+appRole); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		if !s.running() {
			return
		}
		if err := s.admin(ctx, `DROP DATABASE `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.DSN(name)
}

var notNameChar = regexp.MustCompile(`[^a-z0-9_]+`)

// dbNamePart turns a test name into a readable part of a database name.
func dbNamePart(test string) string {
	s := notNameChar.ReplaceAllString(strings.ToLower(test), "_")
	if len(s) > 40 {
		s = s[:40]
	}
	return s
}

// Stop kills the server and all its processes at once with SIGKILL, as a
// crash or the OOM killer would: no checkpoint, no clean shutdown (but
// the operating system's page cache survives: this is not a power cut).
// It returns when every server process has exited. Stopping a stopped
// server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	// The postmaster leads its own process group (Setpgid), so this kills
	// the backends too.
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
	// The backends die on their own time: wait until none is attached to
	// the shared memory, else a connection may still answer and a new
	// postmaster refuses to start ("pre-existing shared memory block is
	// still in use").
	s.waitDetached(10 * time.Second)
}

// waitDetached waits, at most limit, until no process is attached to the
// System V shared memory segment named in postmaster.pid.
func (s *Server) waitDetached(limit time.Duration) {
	id, ok := s.sharedMemoryID()
	if !ok {
		return
	}
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var ds unix.SysvShmDesc
		if _, err := unix.SysvShmCtl(id, unix.IPC_STAT, &ds); err != nil || ds.Nattch == 0 {
			return
		}
	}
}

// Start starts a stopped server again on the same port and data; it
// returns when the server accepts connections (after crash recovery).
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("pgtest: server is running")
	}
	return s.startLocked()
}

func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// newServer makes a cluster in a new temporary directory, with extraConf
// appended to its configuration, and starts it.
func newServer(extraConf string) (*Server, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, password: randomHex(16), superPW: randomHex(16)}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("run scripts/deps.sh: postgresql is missing (no postgres system user to run it as root: %v)", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	}
	if s.dir, err = os.MkdirTemp("", "callvault-pgtest-"); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(s.dir)
		}
	}()
	// The postgres user must pass through the directory (it is ours).
	if err := os.Chmod(s.dir, 0o711); err != nil {
		return nil, err
	}
	s.data = filepath.Join(s.dir, "data")
	s.logPath = filepath.Join(s.dir, "postgres.log")
	sock := filepath.Join(s.dir, "sock")
	pwfile := filepath.Join(s.dir, "pwfile")
	for _, d := range []string{s.data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(pwfile, []byte(s.superPW+"\n"), 0o600); err != nil {
		return nil, err
	}
	for _, p := range []string{s.data, sock, pwfile} {
		if err := s.chown(p); err != nil {
			return nil, err
		}
	}
	// --no-sync skips only initdb's final fsync of the template files; the
	// server itself runs with fsync on.
	out, err := s.command("initdb", "-D", s.data, "-U", "postgres", "--pwfile", pwfile,
		"--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions").CombinedOutput()
	os.Remove(pwfile)
	if err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	conf, err := os.OpenFile(filepath.Join(s.data, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	_, err = conf.WriteString(config + "unix_socket_directories = '" + sock + "'\n" + extraConf)
	if cerr := conf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	// A free port can be taken by someone else before the server binds
	// it: try a few.
	for try := 0; ; try++ {
		if s.port, err = freePort(); err != nil {
			return nil, err
		}
		s.mu.Lock()
		err = s.startLocked()
		s.mu.Unlock()
		if err == nil || try == 2 || !strings.Contains(err.Error(), "could not bind") {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if err := s.admin(context.Background(), `CREATE ROLE `+appRole+` LOGIN PASSWORD '`+s.password+`'`); err != nil {
		s.remove()
		return nil, fmt.Errorf("create role: %w", err)
	}
	ok = true
	return s, nil
}

// startLocked starts the postmaster and waits until it accepts
// connections. s.mu is held.
func (s *Server) startLocked() error {
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, 2)
	cmd := s.command("postgres", "-D", s.data, "-p", strconv.Itoa(s.port))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := startKeepingThread(cmd); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited

	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.superDSN("postgres"))
		cancel()
		if err == nil {
			c.Close(context.Background())
			return nil
		}
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("postgres exited at start:\n%s", s.logSince(logStart))
		default:
		}
		if time.Now().After(deadline) {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			s.cmd = nil
			return fmt.Errorf("postgres did not accept connections within a minute (last: %v):\n%s", err, s.logSince(logStart))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// remove stops the server cleanly if it runs (an immediate shutdown, which
// still frees its shared memory), removes the shared memory a killed
// server left, and removes the directory.
func (s *Server) remove() error {
	s.mu.Lock()
	if s.cmd != nil {
		s.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
		}
		s.cmd = nil
	}
	s.mu.Unlock()
	s.removeLeftSharedMemory()
	return os.RemoveAll(s.dir)
}

// removeLeftSharedMemory removes the System V shared memory segment named
// in postmaster.pid, which a server killed with SIGKILL leaves behind (a
// cleanly stopped one removes it and the file).
func (s *Server) removeLeftSharedMemory() {
	if id, ok := s.sharedMemoryID(); ok {
		unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	}
}

// sharedMemoryID reads the ID of the server's System V shared memory
// segment from postmaster.pid (line 7: "key shmid").
func (s *Server) sharedMemoryID() (int, bool) {
	b, err := os.ReadFile(filepath.Join(s.data, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 7 {
		return 0, false
	}
	f := strings.Fields(lines[6])
	if len(f) != 2 {
		return 0, false
	}
	id, err := strconv.Atoi(f[1])
	return id, err == nil
}

// admin runs one statement as the superuser in database postgres.
func (s *Server) admin(ctx context.Context, stmt string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, s.superDSN("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, stmt)
	return err
}

func (s *Server) superDSN(db string) string {
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=disable", s.superPW, s.port, db)
}

// command returns the command running PostgreSQL program name, as the
// postgres user when we are root, with a minimal environment (no PG*
// variables of the caller).
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC"}
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

func (s *Server) chown(path string) error {
	if s.cred == nil {
		return nil
	}
	return os.Chown(path, int(s.cred.Uid), int(s.cred.Gid))
}

func (s *Server) logSince(off int64) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil || off > int64(len(b)) {
		return ""
	}
	return string(bytes.TrimSpace(b[off:]))
}

// findBinaries returns the directory of the newest PostgreSQL's initdb
// and postgres.
func findBinaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	type cand struct {
		dir string
		ver int
	}
	var cs []cand
	for _, d := range dirs {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			cs = append(cs, cand{d, v})
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].ver > cs[j].ver })
	if len(cs) > 0 {
		return cs[0].dir, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("run scripts/deps.sh: postgresql is missing (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH)")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// starter starts processes from one OS thread that never exits: the
// kernel sends a child its PR_SET_PDEATHSIG signal when the *thread* that
// forked it ends, and the Go runtime may end an ordinary thread at any
// time.
var starter struct {
	once sync.Once
	reqs chan startReq
}

type startReq struct {
	cmd *exec.Cmd
	err chan error
}

func startKeepingThread(cmd *exec.Cmd) error {
	starter.once.Do(func() {
		starter.reqs = make(chan startReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range starter.reqs {
				r.err <- r.cmd.Start()
			}
		}()
	})
	r := startReq{cmd: cmd, err: make(chan error, 1)}
	starter.reqs <- r
	return <-r.err
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ForEachEngine runs f as the parallel subtests "sqlite" and "postgres",
// each with the DSN of a new, empty database: a SQLite file named file in
// a fresh temporary directory, or a database from New. A store's
// conformance suite runs every test through it, so that none runs on one
// engine only.
func ForEachEngine(t *testing.T, file string, f func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		f(t, filepath.Join(t.TempDir(), file))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		f(t, New(t))
	})
}
