// Package importer migrates a legacy recording store into the archive
// (docs/import.md): it reads a manifest (or file names), validates each
// file, sends it to the archive as a capture system, and keeps a journal so
// that a run can be killed at any moment and re-run to the same result.
// It never logs a source path: legacy file names hold phone numbers.
package importer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"callvault/internal/atomicfile"
	"callvault/internal/audio"
)

// Options configure a run.
type Options struct {
	Source   string   // the legacy tree (--from)
	Manifest string   // the manifest file; "" when Mapping.ListsFiles
	Format   string   // "csv" or "jsonl"; "" guesses from the manifest's name
	Mapping  *Mapping // nil: DefaultMapping
	Work     string   // the work directory (journal, reports)
	Jobs     int      // files in flight at once; 0: 8
	Archive  Archive
	Progress io.Writer    // progress bar or lines; nil: none
	Log      *slog.Logger // nil: discard
	// MaxCallSlack bounds how much longer the audio may be than the
	// metadata's call; 0: 5 minutes.
	MaxCallSlack time.Duration
	// Retries of a file the archive could not take (5xx, network); 0: 3.
	Retries int
	Now     func() time.Time // nil: time.Now
}

// Summary counts a run's result from the journal: every manifest row and
// unlisted file, whichever run handled it.
type Summary struct {
	Rows     int              // manifest rows (or files, without a manifest)
	Outcomes map[string]int   // outcome → files
	Bytes    map[string]int64 // outcome → source bytes
	Failed   int              // files the archive could not take in this run; retried next time
	Reasons  map[string]int   // reject reason → files
	Elapsed  time.Duration
}

// DefaultWork returns the default work directory of source: beside it,
// named after it.
func DefaultWork(source string) string {
	abs, err := filepath.Abs(source)
	if err != nil {
		abs = source
	}
	return filepath.Clean(abs) + ".callvault-import"
}

// Run imports the source into the archive. It returns the summary; an
// error means the run stopped early (the journal keeps what was done).
func Run(ctx context.Context, o Options) (*Summary, error) {
	r, err := newRun(o)
	if err != nil {
		return nil, err
	}
	defer r.close()
	return r.run(ctx)
}

type run struct {
	Options
	root    *os.Root
	journal *Journal
	prog    *progress
	workAbs string

	mu       sync.Mutex
	inflight map[string]chan struct{} // digests being sent
	failed   int
}

func newRun(o Options) (*run, error) {
	if o.Mapping == nil {
		o.Mapping = DefaultMapping()
	}
	if o.Manifest == "" && !o.Mapping.ListsFiles() {
		return nil, errors.New("importer: a manifest is required unless the mapping's file_pattern gives the metadata")
	}
	if o.Format == "" {
		o.Format = formatOf(o.Manifest)
	}
	if o.Jobs <= 0 {
		o.Jobs = 8
	}
	if o.MaxCallSlack == 0 {
		o.MaxCallSlack = 5 * time.Minute
	}
	if o.Retries == 0 {
		o.Retries = 3
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Work == "" {
		o.Work = DefaultWork(o.Source)
	}
	root, err := os.OpenRoot(o.Source)
	if err != nil {
		return nil, fmt.Errorf("importer: source: %w", err)
	}
	if err := os.MkdirAll(o.Work, 0o700); err != nil {
		root.Close()
		return nil, fmt.Errorf("importer: work directory: %w", err)
	}
	j, err := OpenJournal(context.Background(), filepath.Join(o.Work, "journal.db"))
	if err != nil {
		root.Close()
		return nil, err
	}
	workAbs, _ := filepath.Abs(o.Work)
	return &run{Options: o, root: root, journal: j, workAbs: workAbs, inflight: map[string]chan struct{}{},
		prog: newProgress(o.Progress, o.Log, "import")}, nil
}

func (r *run) close() {
	r.journal.Close()
	r.root.Close()
}

func formatOf(name string) string {
	switch filepath.Ext(name) {
	case ".jsonl", ".ndjson":
		return "jsonl"
	}
	return "csv"
}

func (r *run) run(ctx context.Context) (*Summary, error) {
	start := r.Now()
	manifestSum, rows, err := r.list(ctx)
	if err != nil {
		return nil, err
	}
	runID, err := r.journal.StartRun(ctx, r.Archive.String(), manifestSum, start)
	if err != nil {
		return nil, err
	}
	if err := r.journal.ForgetRetryable(ctx); err != nil {
		return nil, err
	}
	r.Log.InfoContext(ctx, "import started", "rows", rows, "archive", r.Archive.String(), "jobs", r.Jobs)
	r.prog.start(rows)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan Row, r.Jobs*2)
	var wg sync.WaitGroup
	for range r.Jobs {
		wg.Go(func() {
			for row := range work {
				n, err := r.one(ctx, row)
				r.prog.add(1, n)
				if err != nil {
					cancel(err)
				}
			}
		})
	}
	feedErr := r.rows(ctx, func(row Row) error {
		select {
		case work <- row:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	close(work)
	wg.Wait()
	r.prog.finish()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	if feedErr != nil {
		return nil, feedErr
	}
	if err := r.unlisted(ctx); err != nil {
		return nil, err
	}
	if err := writeRejects(ctx, r.journal, filepath.Join(r.Work, "rejects.csv")); err != nil {
		return nil, err
	}
	if err := r.journal.FinishRun(ctx, runID, r.Now()); err != nil {
		return nil, err
	}
	s, err := summarize(ctx, r.journal, rows)
	if err != nil {
		return nil, err
	}
	s.Failed, s.Elapsed = r.failed, r.Now().Sub(start)
	r.Log.InfoContext(ctx, "import finished", "imported", s.Outcomes[OutcomeImported], "duplicate", s.Outcomes[OutcomeDuplicate],
		"deleted", s.Outcomes[OutcomeDeleted], "rejected", s.Outcomes[OutcomeRejected], "unlisted", s.Outcomes[OutcomeUnlisted],
		"failed", s.Failed, "seconds", s.Elapsed.Seconds())
	return s, nil
}

// rows calls fn for each row: the manifest's, or one per source file.
func (r *run) rows(ctx context.Context, fn func(Row) error) error {
	if r.Manifest == "" {
		line := 0
		return r.walk(ctx, func(p string) error {
			line++
			return fn(Row{Line: line, File: p, Fields: map[string]string{}})
		})
	}
	f, err := os.Open(r.Manifest)
	if err != nil {
		return fmt.Errorf("importer: manifest: %w", err)
	}
	defer f.Close()
	return ReadManifest(f, r.Format, r.Mapping, fn)
}

// list records the first manifest line of every path (so that a file
// listed twice is refused deterministically) and returns the manifest's
// SHA-256 and number of rows.
func (r *run) list(ctx context.Context) (string, int, error) {
	h := sha256.New()
	if r.Manifest != "" {
		f, err := os.Open(r.Manifest)
		if err != nil {
			return "", 0, fmt.Errorf("importer: manifest: %w", err)
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", 0, fmt.Errorf("importer: manifest: %w", err)
		}
	}
	var paths []string
	var lines []int
	rows, fresh := 0, true
	flush := func() error {
		err := r.journal.List(ctx, paths, lines, fresh)
		paths, lines, fresh = paths[:0], lines[:0], false
		return err
	}
	err := r.rows(ctx, func(row Row) error {
		rows++
		if row.Err != "" {
			return nil
		}
		p, err := CleanPath(row.File)
		if err != nil {
			return nil
		}
		paths, lines = append(paths, p), append(lines, row.Line)
		if len(paths) == 10000 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return hex.EncodeToString(h.Sum(nil)), rows, err
}

// walk calls fn with the slash path of every regular file under the
// source, in lexical order, skipping the work directory.
func (r *run) walk(ctx context.Context, fn func(string) error) error {
	return fs.WalkDir(r.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("importer: reading the source tree: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() {
			if abs, _ := filepath.Abs(filepath.Join(r.Source, filepath.FromSlash(p))); abs == r.workAbs {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return fn(p)
	})
}

// unlisted records every source file no manifest row names.
func (r *run) unlisted(ctx context.Context) error {
	if r.Manifest == "" {
		return nil
	}
	return r.walk(ctx, func(p string) error {
		line, err := r.journal.FirstLine(ctx, p)
		if err != nil || line != 0 {
			return err
		}
		var size int64
		if fi, err := r.root.Stat(p); err == nil {
			size = fi.Size()
		}
		return r.journal.Put(ctx, Entry{Path: p, Line: 0, Size: size, Outcome: OutcomeUnlisted, Reason: "no manifest row"})
	})
}

// one handles one row and returns the bytes it read; an error stops the run.
func (r *run) one(ctx context.Context, row Row) (int64, error) {
	reject := func(path string, size int64, sum, reason string) (int64, error) {
		return size, r.journal.Put(ctx, Entry{Path: path, Line: row.Line, Size: size, SHA256: sum, Outcome: OutcomeRejected, Reason: reason})
	}
	if row.Err != "" {
		return reject(row.File, 0, "", "manifest row: "+row.Err)
	}
	p, err := CleanPath(row.File)
	if err != nil {
		return reject(row.File, 0, "", err.Error())
	}
	if first, err := r.journal.FirstLine(ctx, p); err != nil {
		return 0, err
	} else if first != row.Line {
		return reject(p, 0, "", fmt.Sprintf("file listed twice (first on line %d)", first))
	}
	if e, err := r.journal.Done(ctx, p); err != nil || e != nil {
		return 0, err // done in an earlier run
	}
	f, err := r.root.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return reject(p, 0, "", "file missing")
	} else if err != nil {
		return reject(p, 0, "", "file unreadable")
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return reject(p, 0, "", "not a regular file")
	}
	h := sha256.New()
	_, dur, probeErr := audio.Duration(io.TeeReader(f, h))
	if _, err := io.Copy(h, f); err != nil {
		return reject(p, fi.Size(), "", "file unreadable")
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if probeErr != nil {
		return reject(p, fi.Size(), sum, "audio: "+audioReason(probeErr))
	}
	md, err := r.Mapping.Metadata(Row{Line: row.Line, File: p, Fields: row.Fields}, sum, dur)
	if err != nil {
		return reject(p, fi.Size(), sum, err.Error())
	}
	v, err := md.Validate(r.Now())
	if err != nil {
		return reject(p, fi.Size(), sum, err.Error())
	}
	if dur > v.EndedAt.Sub(v.StartedAt)+r.MaxCallSlack {
		return reject(p, fi.Size(), sum, "audio: longer than the call's started_at..ended_at")
	}

	unlock := r.lockDigest(sum)
	defer unlock()
	if primary, err := r.journal.Primary(ctx, sum); err != nil {
		return fi.Size(), err
	} else if primary != "" {
		return fi.Size(), r.journal.Put(ctx, Entry{Path: p, Line: row.Line, Size: fi.Size(), SHA256: sum, Outcome: OutcomeDuplicate, RecordingID: primary})
	}
	var st Stored
	for attempt := 0; ; attempt++ {
		if _, err = f.Seek(0, io.SeekStart); err != nil {
			return reject(p, fi.Size(), sum, "file unreadable")
		}
		st, err = r.Archive.Ingest(ctx, md, f)
		var rej *RejectError
		switch {
		case err == nil:
		case errors.As(err, &rej):
			return reject(p, fi.Size(), sum, rej.Reason)
		case errors.Is(err, ErrDenied), ctx.Err() != nil:
			return fi.Size(), err
		case attempt < r.Retries:
			r.Log.WarnContext(ctx, "archive did not take a file; retrying", "line", row.Line, "attempt", attempt+1, "err", err)
			select {
			case <-time.After(time.Duration(1<<attempt) * 500 * time.Millisecond):
			case <-ctx.Done():
				return fi.Size(), ctx.Err()
			}
			continue
		default:
			r.Log.ErrorContext(ctx, "archive did not take a file; left for the next run", "line", row.Line, "err", err)
			r.mu.Lock()
			r.failed++
			r.mu.Unlock()
			return fi.Size(), nil
		}
		break
	}
	e := Entry{Path: p, Line: row.Line, Size: fi.Size(), SHA256: sum, Outcome: OutcomeImported, RecordingID: st.ID}
	if st.Deleted {
		e.Outcome, e.Reason = OutcomeDeleted, "its recording was deleted by a decision"
	}
	// st.Existing with no imported file of this digest in the journal: an
	// earlier run stored it and was stopped before noting it. It is this
	// file's own import.
	return fi.Size(), r.journal.Put(ctx, e)
}

// lockDigest makes files with the same SHA-256 go one at a time, so the
// second is linked to the first's recording.
func (r *run) lockDigest(sum string) (unlock func()) {
	for {
		r.mu.Lock()
		ch, busy := r.inflight[sum]
		if !busy {
			ch = make(chan struct{})
			r.inflight[sum] = ch
			r.mu.Unlock()
			return func() {
				r.mu.Lock()
				delete(r.inflight, sum)
				r.mu.Unlock()
				close(ch)
			}
		}
		r.mu.Unlock()
		<-ch
	}
}

// writeRejects writes WORK/rejects.csv: line, file, reason of every
// rejected and unlisted file.
func writeRejects(ctx context.Context, j *Journal, path string) error {
	es, err := j.Entries(ctx, OutcomeRejected, OutcomeUnlisted)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"line", "file", "reason"})
	for _, e := range es {
		w.Write([]string{fmt.Sprint(e.Line), e.Path, e.Reason})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return atomicfile.Write(path, b.Bytes())
}

// summarize counts outcomes, bytes and reject reasons in the journal
// (aggregated by the database: a journal of millions of files is never
// held in memory).
func summarize(ctx context.Context, j *Journal, rows int) (*Summary, error) {
	s := &Summary{Rows: rows, Outcomes: map[string]int{}, Bytes: map[string]int64{}, Reasons: map[string]int{}}
	if err := j.Counts(ctx, s.Outcomes, s.Bytes, s.Reasons); err != nil {
		return nil, err
	}
	return s, nil
}
