package importer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"callvault/internal/atomicfile"
)

// ReportFormat is the first field of every migration report.
const ReportFormat = "callvault migration report v1"

// Names of the files verification writes in the work directory.
const (
	ReportFile     = "migration-report.json"
	SignatureFile  = "migration-report.json.sig"
	RecordingsFile = "migration-recordings.csv"
)

// VerifyOptions configure a verification.
type VerifyOptions struct {
	Source       string
	Work         string
	Archive      Archive
	RemoveSource bool   // delete each verified source file
	Signer       Signer // signs the report
	Jobs         int
	Progress     io.Writer
	Log          *slog.Logger
	Now          func() time.Time
}

// Report is the migration report (docs/import.md). It holds no personal
// data: counts, digests, recording IDs.
type Report struct {
	Format           string           `json:"format"`
	Importer         string           `json:"importer"`
	Archive          string           `json:"archive"`
	ManifestSHA256   []string         `json:"manifest_sha256"`
	FirstRunAt       time.Time        `json:"first_run_at"`
	FinishedAt       time.Time        `json:"finished_at"`
	ImportSeconds    float64          `json:"import_seconds"`
	Files            map[string]int   `json:"files"`
	Bytes            map[string]int64 `json:"bytes"`
	RejectsByReason  map[string]int   `json:"rejects_by_reason"`
	Verified         VerifiedCounts   `json:"verified"`
	SourceRemoved    int              `json:"source_removed"`
	RecordingsFile   string           `json:"recordings_file"`
	RecordingsSHA256 string           `json:"recordings_sha256"`
}

// VerifiedCounts: source files proven on both sites, the recordings they
// map to, and files that failed (changed, missing, or not matching).
type VerifiedCounts struct {
	Files      int `json:"files"`
	Recordings int `json:"recordings"`
	Failed     int `json:"failed"`
}

// Verify proves each imported or linked source file is in the archive: the
// file's SHA-256 is taken again and must equal the journal's, and every
// site's copy must decrypt to the same digest. With RemoveSource a file is
// deleted only then. It writes the recordings list, the report and its
// signature to the work directory and returns the report.
func Verify(ctx context.Context, o VerifyOptions) (*Report, error) {
	if o.Jobs <= 0 {
		o.Jobs = 8
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
	if o.Signer == nil {
		return nil, errors.New("importer: verify: a signer is required for the report")
	}
	if _, err := os.Stat(filepath.Join(o.Work, "journal.db")); err != nil {
		return nil, fmt.Errorf("importer: verify: no journal in the work directory: %w", err)
	}
	j, err := OpenJournal(ctx, filepath.Join(o.Work, "journal.db"))
	if err != nil {
		return nil, err
	}
	defer j.Close()
	root, err := os.OpenRoot(o.Source)
	if err != nil {
		return nil, fmt.Errorf("importer: source: %w", err)
	}
	defer root.Close()

	es, err := j.Entries(ctx, OutcomeImported, OutcomeDuplicate)
	if err != nil {
		return nil, err
	}
	prog := newProgress(o.Progress, o.Log, "verify")
	prog.start(len(es))
	ok := make([]bool, len(es))
	var removed int
	var mu sync.Mutex
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idx := make(chan int)
	var wg sync.WaitGroup
	for range o.Jobs {
		wg.Go(func() {
			for i := range idx {
				good, gone, n, err := verifyOne(ctx, o, root, j, es[i])
				prog.add(1, n)
				if err != nil {
					cancel(err)
					continue
				}
				mu.Lock()
				ok[i] = good
				if gone {
					removed++
				}
				mu.Unlock()
			}
		})
	}
feed:
	for i := range es {
		select {
		case idx <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(idx)
	wg.Wait()
	prog.finish()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}

	rep, err := buildReport(ctx, o, j, es, ok, removed)
	if err != nil {
		return nil, err
	}
	body, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, err
	}
	body = append(body, '\n')
	sig, err := SignReport(body, o.Signer)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(o.Work, ReportFile), body); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(o.Work, SignatureFile), sig); err != nil {
		return nil, err
	}
	o.Log.InfoContext(ctx, "verification finished", "verified", rep.Verified.Files, "failed", rep.Verified.Failed,
		"recordings", rep.Verified.Recordings, "removed", rep.SourceRemoved)
	return rep, nil
}

// verifyOne verifies one journal entry; it reports whether the file is
// verified, whether it was removed now, and the bytes read.
func verifyOne(ctx context.Context, o VerifyOptions, root *os.Root, j *Journal, e *Entry) (good, gone bool, n int64, err error) {
	if !e.RemovedAt.IsZero() {
		// Verified and removed by an earlier run; the source is gone, the
		// archive is asked again with the journal's digest.
		sites, err := o.Archive.Verify(ctx, e.RecordingID, e.SHA256)
		if err != nil {
			return false, false, 0, err
		}
		return allMatch(sites), false, 0, nil
	}
	f, err := root.Open(e.Path)
	if errors.Is(err, fs.ErrNotExist) {
		o.Log.WarnContext(ctx, "source file missing at verification", "line", e.Line)
		return false, false, 0, nil
	} else if err != nil {
		return false, false, 0, fmt.Errorf("importer: verify line %d: %w", e.Line, err)
	}
	h := sha256.New()
	n, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return false, false, n, fmt.Errorf("importer: verify line %d: %w", e.Line, err)
	}
	if hex.EncodeToString(h.Sum(nil)) != e.SHA256 {
		o.Log.WarnContext(ctx, "source file changed since import", "line", e.Line)
		return false, false, n, nil
	}
	sites, err := o.Archive.Verify(ctx, e.RecordingID, e.SHA256)
	if err != nil {
		return false, false, n, err
	}
	if !allMatch(sites) {
		o.Log.WarnContext(ctx, "archive copy does not verify", "line", e.Line, "recording", e.RecordingID, "sites", fmt.Sprint(sites))
		return false, false, n, nil
	}
	now := o.Now()
	if err := j.MarkVerified(ctx, e.Path, e.Line, now); err != nil {
		return false, false, n, err
	}
	if !o.RemoveSource {
		return true, false, n, nil
	}
	if err := root.Remove(e.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return true, false, n, fmt.Errorf("importer: removing source of line %d: %w", e.Line, err)
	}
	if d, err := root.Open(path.Dir(e.Path)); err == nil {
		d.Sync() // the removal itself durable before the journal says so
		d.Close()
	}
	return true, true, n, j.MarkRemoved(ctx, e.Path, e.Line, now)
}

// allMatch: both sites (at least two) hold a matching copy.
func allMatch(sites map[string]string) bool {
	if len(sites) < 2 {
		return false
	}
	for _, r := range sites {
		if r != "match" {
			return false
		}
	}
	return true
}

func buildReport(ctx context.Context, o VerifyOptions, j *Journal, es []*Entry, ok []bool, removedNow int) (*Report, error) {
	runs, err := j.Runs(ctx)
	if err != nil {
		return nil, err
	}
	s, err := summarize(ctx, j, 0)
	if err != nil {
		return nil, err
	}
	rep := &Report{Format: ReportFormat, Importer: o.Signer.Identity(), Archive: o.Archive.String(),
		Files: map[string]int{"seen": 0}, Bytes: map[string]int64{}, RejectsByReason: s.Reasons,
		FinishedAt: o.Now().UTC(), RecordingsFile: RecordingsFile}
	for _, r := range runs {
		if rep.FirstRunAt.IsZero() {
			rep.FirstRunAt = r.StartedAt
		}
		if !slices.Contains(rep.ManifestSHA256, r.Manifest) {
			rep.ManifestSHA256 = append(rep.ManifestSHA256, r.Manifest)
		}
		if !r.FinishedAt.IsZero() {
			rep.ImportSeconds += r.FinishedAt.Sub(r.StartedAt).Seconds()
		}
	}
	for _, out := range []string{OutcomeImported, OutcomeDuplicate, OutcomeDeleted, OutcomeRejected, OutcomeUnlisted} {
		rep.Files[out] = s.Outcomes[out]
		rep.Files["seen"] += s.Outcomes[out]
		rep.Bytes[out] = s.Bytes[out]
	}
	type recInfo struct {
		sha     string
		files   int
		allGood bool
	}
	recs := map[string]*recInfo{}
	for i, e := range es {
		ri := recs[e.RecordingID]
		if ri == nil {
			ri = &recInfo{sha: e.SHA256, allGood: true}
			recs[e.RecordingID] = ri
		}
		ri.files++
		ri.allGood = ri.allGood && ok[i]
		if ok[i] {
			rep.Verified.Files++
		} else {
			rep.Verified.Failed++
		}
		if !e.RemovedAt.IsZero() {
			rep.SourceRemoved++
		}
	}
	rep.SourceRemoved += removedNow
	ids := make([]string, 0, len(recs))
	for id := range recs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"recording_id", "source_sha256", "source_files", "verified"})
	for _, id := range ids {
		ri := recs[id]
		if ri.allGood {
			rep.Verified.Recordings++
		}
		w.Write([]string{id, ri.sha, fmt.Sprint(ri.files), fmt.Sprint(ri.allGood)})
	}
	w.Flush()
	sum := sha256.Sum256(b.Bytes())
	rep.RecordingsSHA256 = hex.EncodeToString(sum[:])
	if err := atomicfile.Write(filepath.Join(o.Work, RecordingsFile), b.Bytes()); err != nil {
		return nil, err
	}
	return rep, nil
}
