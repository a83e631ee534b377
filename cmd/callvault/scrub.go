package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"callvault/internal/archive"
)

// cmdScrub runs one scrub pass: every blob copy on both sites is read and
// checked against the catalog; bad or missing copies are repaired from the
// good one, recordings with no good copy are reported lost, orphaned blobs
// are removed. Progress goes to standard error (a bar on a terminal), the
// report to standard output.
func cmdScrub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scrub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgOf := configFlags(fs)
	grace := fs.Duration("orphan-grace", -1, "remove blobs without a catalog row once this old (default: the config's orphan_grace, 24h)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := cfgOf()
	if err != nil {
		return err
	}
	if *grace < 0 {
		*grace = time.Duration(cfg.OrphanGrace)
	}
	st, err := openStack(ctx, cfg, slog.New(slog.NewJSONHandler(stderr, nil)))
	if err != nil {
		return err
	}
	defer st.Close()
	bar := newProgress(stderr)
	rep, err := st.arc.Scrub(ctx, archive.ScrubOptions{OrphanGrace: *grace, Progress: bar.update})
	bar.done()
	if err != nil {
		return fmt.Errorf("scrub: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		mbs := 0.0
		if rep.Duration > 0 {
			mbs = float64(rep.Bytes) / 1e6 / rep.Duration.Seconds()
		}
		fmt.Fprintf(stdout, "recordings %d, copies checked %d, %.1f MB in %.1fs (%.1f MB/s)\n", rep.Recordings, rep.Copies,
			float64(rep.Bytes)/1e6, rep.Duration.Seconds(), mbs)
		fmt.Fprintf(stdout, "repaired %d, lost %d, orphans removed %d\n", rep.Repaired, rep.Lost, rep.Orphans)
		for _, s := range rep.Unavailable {
			fmt.Fprintf(stdout, "site %s UNAVAILABLE: its copies were not checked\n", s)
		}
		for _, f := range rep.Findings {
			fmt.Fprintf(stdout, "%s site %s: %s → %s\n", f.RecordingID, f.Site, f.Problem, f.Action)
		}
	}
	if rep.Lost > 0 {
		return fmt.Errorf("scrub: %d recordings have no good copy left (see above); restore them from backup", rep.Lost)
	}
	return nil
}

// progress draws a one-line bar on a terminal and stays silent otherwise
// (the summary is in the report and the log).
type progress struct {
	w    io.Writer
	tty  bool
	last time.Time
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(done, total int) {
	if !p.tty || (time.Since(p.last) < 100*time.Millisecond && done != total) {
		return
	}
	p.last = time.Now()
	const width = 40
	n := width * done / max(total, 1)
	fmt.Fprintf(p.w, "\rscrub [%-*s] %d/%d", width, strings.Repeat("#", n), done, total)
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
