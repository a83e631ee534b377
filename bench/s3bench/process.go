package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"callvault/bench/internal/benchstat"
)

// process is a server child process: a MinIO server or callvault serve
// --dev. Its stderr (and, for MinIO, stdout) go to logPath.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	waitErr chan error  // holds cmd.Wait's result once the process has exited; a reader puts it back
	listen  chan string // callvault only: the address after "listening on https://"
}

// launch starts bin with args and env added to this process's environment.
// If watchListen, stdout is scanned for callvault's "listening on
// https://ADDR" line; otherwise it goes to the log too.
func launch(name, bin, logPath string, env []string, watchListen bool, args ...string) (*process, error) {
	p := &process{name: name, cmd: exec.Command(bin, args...), logPath: logPath, waitErr: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	// If s3bench dies without stopping it, the child gets SIGTERM.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	p.cmd.Stderr = logf
	var stdout *bufio.Scanner
	if watchListen {
		pipe, err := p.cmd.StdoutPipe()
		if err != nil {
			logf.Close()
			return nil, err
		}
		stdout = bufio.NewScanner(pipe)
		p.listen = make(chan string, 1)
	} else {
		p.cmd.Stdout = logf
	}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	if stdout != nil {
		go func() {
			for stdout.Scan() {
				if rest, ok := strings.CutPrefix(stdout.Text(), "listening on https://"); ok {
					addr, _, _ := strings.Cut(rest, " ")
					select {
					case p.listen <- addr:
					default:
					}
				}
			}
		}()
	}
	go func() { p.waitErr <- p.cmd.Wait(); logf.Close() }()
	return p, nil
}

// startupLimit bounds how long a server may take to become ready.
const startupLimit = 90 * time.Second

// waitListening waits for callvault's "listening on https://ADDR" line and
// returns ADDR.
func (p *process) waitListening(ctx context.Context) (string, error) {
	select {
	case addr := <-p.listen:
		return addr, nil
	case err := <-p.waitErr:
		p.waitErr <- err
		return "", fmt.Errorf("%s exited before listening: %v (log: %s)", p.name, err, tail(p.logPath))
	case <-time.After(startupLimit):
		return "", fmt.Errorf("%s did not start in %v (log: %s)", p.name, startupLimit, tail(p.logPath))
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// waitHTTP polls url until it answers 200 OK.
func (p *process) waitHTTP(ctx context.Context, url string) error {
	deadline := time.Now().Add(startupLimit)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-p.waitErr:
			p.waitErr <- err
			return fmt.Errorf("%s exited before it was ready: %v (log: %s)", p.name, err, tail(p.logPath))
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not ready in %v (log: %s)", p.name, startupLimit, tail(p.logPath))
		}
	}
}

// stop ends the process with SIGTERM, or SIGKILL after 15 s. It is
// idempotent.
func (p *process) stop() {
	select {
	case err := <-p.waitErr:
		p.waitErr <- err
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.waitErr:
		p.waitErr <- err
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		p.waitErr <- <-p.waitErr
	}
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// usage is a process's CPU time and storage writes so far.
type usage struct {
	cpu   time.Duration
	write int64 // bytes sent to the storage layer (/proc/PID/io write_bytes)
}

func (u usage) minus(v usage) usage { return usage{cpu: u.cpu - v.cpu, write: u.write - v.write} }

func (p *process) usage() (usage, error) {
	cpu, err := benchstat.ProcCPU(p.pid())
	if err != nil {
		return usage{}, fmt.Errorf("%s: %w", p.name, err)
	}
	_, w, err := benchstat.ProcIO(p.pid())
	if err != nil {
		return usage{}, fmt.Errorf("%s: %w", p.name, err)
	}
	return usage{cpu: cpu, write: w}, nil
}

// tail returns the end of a log file, for an error message.
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
