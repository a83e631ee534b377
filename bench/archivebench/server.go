package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"callvault/internal/httpapi"

	"callvault/bench/internal/benchstat"
	"callvault/bench/internal/cvclient"
)

// process is a server child process: callvault serve --dev or the
// reference file server.
type process struct {
	name    string
	cmd     *exec.Cmd
	addr    string // the address printed after "listening on https://"
	waitErr chan error
	logPath string
}

// startProcess starts bin with args, its stderr appended to logPath, and
// waits until it prints "listening on https://ADDR" on stdout.
func startProcess(ctx context.Context, name, bin, logPath string, args ...string) (*process, error) {
	p := &process{name: name, cmd: exec.Command(bin, args...), waitErr: make(chan error, 1), logPath: logPath}
	// If archivebench dies without stopping it, the child gets SIGTERM.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	p.cmd.Stderr = logf
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "listening on https://"); ok {
				addr, _, _ := strings.Cut(rest, " ")
				ready <- addr
			}
		}
	}()
	go func() { p.waitErr <- p.cmd.Wait(); logf.Close() }()
	select {
	case p.addr = <-ready:
		return p, nil
	case err := <-p.waitErr:
		return nil, fmt.Errorf("%s exited before listening: %v (log: %s)", name, err, tail(logPath))
	case <-time.After(90 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%s did not start in 90 s", name)
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
}

// stop ends the process with SIGTERM, or SIGKILL after 15 s.
func (p *process) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.waitErr:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.waitErr
	}
}

// cpu returns the user+system CPU time the process has used so far.
func (p *process) cpu() (time.Duration, error) { return benchstat.ProcCPU(p.cmd.Process.Pid) }

// tail returns the last lines of a log file, for an error message.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// freeAddr returns a free loopback TCP address.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startCallvault runs `callvault serve --dev` on free loopback ports in
// dataDir (created fresh by callvault).
func startCallvault(ctx context.Context, bin, dataDir, logPath string) (*process, string, error) {
	api, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	ops, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := startProcess(ctx, "callvault", bin, logPath, "serve", "--dev", "--data", dataDir, "--listen", api, "--ops-listen", ops)
	return p, ops, err
}

// startFileServer runs this binary's fileserver subcommand: the playback
// reference, serving root with the dev PKI of devDir.
func startFileServer(ctx context.Context, root, devDir, logPath string) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	return startProcess(ctx, "fileserver", self, logPath, "fileserver", "-root", root, "-dev", devDir, "-listen", addr)
}

// fileServer is the playback reference: a plain net/http server that
// serves the plaintext WAV files of root under /audio/NAME with
// http.ServeFile, on a listener with exactly callvault's TLS configuration
// (httpapi.TLSConfig: TLS 1.3 only, a client certificate from the dev CA
// required) and callvault's server timeouts. No audit, no crypto at rest.
func fileServer(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fileserver", flag.ContinueOnError)
	root := fs.String("root", "", "directory of files to serve")
	devDir := fs.String("dev", "", "callvault dev directory holding server.pem, server-key.pem and ca.pem")
	listen := fs.String("listen", "127.0.0.1:0", "address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(*devDir, "server.pem"), filepath.Join(*devDir, "server-key.pem"))
	if err != nil {
		return fmt.Errorf("fileserver: %w", err)
	}
	pool, err := cvclient.CAPool(*devDir)
	if err != nil {
		return err
	}
	ln, err := tls.Listen("tcp", *listen, httpapi.TLSConfig(cert, pool))
	if err != nil {
		return fmt.Errorf("fileserver: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /audio/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if name != filepath.Base(name) || strings.HasPrefix(name, ".") {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, filepath.Join(*root, name))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: log.New(os.Stderr, "fileserver: ", 0)}
	fmt.Fprintf(stdout, "listening on https://%s\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("fileserver: %w", err)
	}
	return nil
}

type cpuTimes = benchstat.CPUTimes

func readCPUTimes() cpuTimes { return benchstat.ReadCPUTimes() }

// cpuMeter measures, over one step, how busy the machine's CPUs were and
// how much of that was work outside the benchmark's own processes (this
// driver, its children, the live servers): kernel threads such as disk
// writeback, and anyone else using the machine.
type cpuMeter struct {
	machine cpuTimes
	ours    time.Duration
	pids    []int
}

// cpuLoad is what a cpuMeter measured, as fractions of all CPUs' time.
type cpuLoad struct {
	busy  float64 // busy, whoever used it
	other float64 // used outside the benchmark's processes
}

// startMeter starts measuring; pids are the live server processes.
func startMeter(pids []int) cpuMeter {
	m := cpuMeter{pids: slices.Clone(pids)}
	m.machine, m.ours = readCPUTimes(), oursCPU(m.pids)
	return m
}

func (m cpuMeter) stop() cpuLoad {
	t1, ours := readCPUTimes(), oursCPU(m.pids)
	total := t1.Total - m.machine.Total
	if total <= 0 {
		return cpuLoad{}
	}
	busyTicks := float64(total - (t1.Idle - m.machine.Idle))
	const tick = 10 * time.Millisecond // USER_HZ = 100
	oursTicks := float64(ours-m.ours) / float64(tick)
	return cpuLoad{busy: busyTicks / float64(total), other: max(0, busyTicks-oursTicks) / float64(total)}
}

// oursCPU is the CPU time used so far by this process, its waited-for
// children (the age processes) and the processes pids.
func oursCPU(pids []int) time.Duration {
	var d time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			d += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	for _, pid := range pids {
		if c, err := benchstat.ProcCPU(pid); err == nil {
			d += c
		}
	}
	return d
}
