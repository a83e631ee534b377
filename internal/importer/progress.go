package importer

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// progress shows files, bytes, rate and ETA: a bar redrawn in place on a
// terminal, otherwise a log line every interval (the log stream carries
// nothing but log lines). It never names a file.
type progress struct {
	w        io.Writer
	log      *slog.Logger
	what     string
	tty      bool
	interval time.Duration

	mu           sync.Mutex
	total        int
	files        int
	bytes        int64
	began, drawn time.Time
}

func newProgress(w io.Writer, log *slog.Logger, what string) *progress {
	p := &progress{w: w, log: log, what: what, interval: 10 * time.Second}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty, p.interval = true, 200*time.Millisecond
		}
	}
	return p
}

func (p *progress) start(total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total, p.files, p.bytes = total, 0, 0
	p.began, p.drawn = time.Now(), time.Now()
}

func (p *progress) add(files int, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.files += files
	p.bytes += bytes
	if time.Since(p.drawn) >= p.interval {
		p.draw()
	}
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw()
	if p.tty && p.w != nil {
		fmt.Fprintln(p.w)
	}
}

func (p *progress) draw() {
	p.drawn = time.Now()
	secs := time.Since(p.began).Seconds()
	rate, mbps := 0.0, 0.0
	if secs > 0 {
		rate, mbps = float64(p.files)/secs, float64(p.bytes)/1e6/secs
	}
	var eta time.Duration
	if rate > 0 && p.total >= p.files {
		eta = time.Duration(float64(p.total-p.files) / rate * float64(time.Second)).Round(time.Second)
	}
	if !p.tty || p.w == nil {
		if p.log != nil {
			p.log.Info(p.what+" progress", "files", p.files, "total", p.total, "mb", round1(float64(p.bytes)/1e6),
				"files_per_s", round1(rate), "mb_per_s", round1(mbps), "eta_s", int(eta.Seconds()))
		}
		return
	}
	const width = 30
	n := width * p.files / max(p.total, 1)
	fmt.Fprintf(p.w, "\r%s [%-*s] %d/%d files  %.1f MB  %.1f files/s  %.2f MB/s  ETA %s ", p.what, width,
		strings.Repeat("#", min(n, width)), p.files, p.total, float64(p.bytes)/1e6, rate, mbps, eta)
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
