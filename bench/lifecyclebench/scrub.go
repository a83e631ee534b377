package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"callvault/internal/archive"
	"callvault/internal/keys"
	"callvault/internal/recording"
)

type scrubOptions struct {
	n, seconds, reps int
	cold             string
	tmpParent        string
}

// scrubBench holds one scrub run's state and results.
type scrubBench struct {
	o        scrubOptions
	log      io.Writer
	st       *stack
	files    []blobFile
	bytes    int64 // sum of the blob files' sizes
	audio    int64 // plaintext bytes of one call
	ingest   time.Duration
	shaMem   float64 // SHA-256 of a buffer in memory, MB/s
	warm     []scrubRep
	cold     []scrubRep
	coldNote string
	loadEnd  string
}

// blobFile is one stored copy the scrubber reads.
type blobFile struct {
	path   string
	size   int64
	sha256 []byte // the catalog's digest
}

// scrubRep is one repetition: the scrub and the reference, in the order run.
type scrubRep struct {
	scrubFirst bool
	scrub      measured
	scrubDur   time.Duration // ScrubReport.Duration
	scrubBytes int64         // ScrubReport.Bytes
	ref        measured
	refBytes   int64
}

func (b *scrubBench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s scrub: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func runScrub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o scrubOptions
	fs := flag.NewFlagSet("lifecyclebench scrub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.n, "n", 300, "recordings to ingest and scrub")
	fs.IntVar(&o.seconds, "seconds", 228, "length of each synthetic call in seconds (228 s = 3,648,058-byte WAV)")
	fs.IntVar(&o.reps, "reps", 5, "repetitions of each measurement (medians are reported)")
	fs.StringVar(&o.cold, "cold", "auto", "also measure with the page cache dropped before each pass: auto (if root), on, off")
	fs.StringVar(&o.tmpParent, "tmp", "", "parent of the run's temp dir (default $TMPDIR); must be on the disk to measure")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.n < 1 || o.seconds < 1 || o.reps < 1 {
		return errors.New("-n, -seconds and -reps must be positive")
	}
	tmp, err := os.MkdirTemp(o.tmpParent, "callvault-scrubbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	kr, err := keys.Generate(time.Now())
	if err != nil {
		return err
	}
	b := &scrubBench{o: o, log: stderr}
	if b.st, err = openStack(ctx, tmp, kr); err != nil {
		return err
	}
	defer b.st.Close()
	if err := b.run(ctx); err != nil {
		return err
	}
	b.report(stdout)
	return nil
}

func (b *scrubBench) run(ctx context.Context) error {
	if err := b.populate(ctx); err != nil {
		return err
	}
	if err := b.listFiles(ctx); err != nil {
		return err
	}
	b.shaMem = shaInMemory()
	b.logf("SHA-256 of a buffer in memory: %.0f MB/s", b.shaMem)

	// Warm: every file is in the page cache (they were just written; one
	// untimed pass makes sure), so both sides read from memory.
	b.logf("warm-up pass (reference read, untimed)")
	if _, _, err := b.reference(ctx); err != nil {
		return err
	}
	for r := range b.o.reps {
		rep, err := b.rep(ctx, r, false)
		if err != nil {
			return err
		}
		b.warm = append(b.warm, rep)
	}

	switch {
	case b.o.cold == "off":
		b.coldNote = "not measured (-cold off)"
	case !canDropCaches():
		if b.o.cold == "on" {
			return errors.New("-cold on: cannot write /proc/sys/vm/drop_caches (needs root)")
		}
		b.coldNote = "not measured: /proc/sys/vm/drop_caches is not writable (not root)"
	default:
		for r := range b.o.reps {
			rep, err := b.rep(ctx, r, true)
			if err != nil {
				return err
			}
			b.cold = append(b.cold, rep)
		}
	}
	b.loadEnd = loadavg()
	return nil
}

// populate ingests n synthetic calls through archive.Service.Ingest, with
// GOMAXPROCS calls in flight, then writes everything back to disk.
func (b *scrubBench) populate(ctx context.Context) error {
	b.logf("ingesting %d synthetic calls of %d s through archive.Service.Ingest", b.o.n, b.o.seconds)
	t0 := time.Now()
	var next, done atomic.Int64
	errs := make(chan error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	now := time.Now().UTC().Truncate(time.Second)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= b.o.n || ctx.Err() != nil {
					return
				}
				wav, err := callWAV(i, b.o.seconds)
				if err != nil {
					errs <- err
					return
				}
				atomic.StoreInt64(&b.audio, int64(len(wav)))
				// Calls 5 minutes apart, the last ending an hour ago.
				start := now.Add(-time.Duration(b.o.n-i)*5*time.Minute - time.Hour)
				md := recording.Metadata{
					CallID: fmt.Sprintf("bench-scrub-%d", i), CareProvider: provider, CareUnit: unit,
					Patient: testPatient, CallerNumber: fictionNumber, Staff: []string{nurseID},
					StartedAt: start, EndedAt: start.Add(time.Duration(b.o.seconds) * time.Second),
					Direction: recording.Inbound, PrivacyNotice: "ivr-2026-01",
				}
				if _, err := b.st.svc.Ingest(ctx, capture, md, bytes.NewReader(wav)); err != nil {
					errs <- fmt.Errorf("ingest %d: %w", i, err)
					return
				}
				if d := done.Add(1); d%50 == 0 || d == int64(b.o.n) {
					b.logf("ingested %d/%d", d, b.o.n)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.ingest = time.Since(t0)
	t1 := time.Now()
	syscall.Sync()
	b.logf("ingested in %v; sync %v", b.ingest.Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
	return nil
}

// listFiles lists, in the order Scrub reads them (catalog ID order, site a
// then site b), the blob files and their catalog digests. The path is the
// site.FS layout: Dir/id[:2]/id.blob.
func (b *scrubBench) listFiles(ctx context.Context) error {
	after := ""
	for {
		page, err := b.st.cat.Blobs(ctx, after, 500)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		for _, ref := range page {
			for _, s := range b.st.sites {
				f := blobFile{path: filepath.Join(s.Dir(), ref.ID[:2], ref.ID+".blob"), size: ref.BlobBytes, sha256: ref.BlobSHA256}
				fi, err := os.Stat(f.path)
				if err != nil {
					return err
				}
				if fi.Size() != f.size {
					return fmt.Errorf("%s: %d bytes, catalog says %d", f.path, fi.Size(), f.size)
				}
				b.files = append(b.files, f)
				b.bytes += f.size
			}
		}
		after = page[len(page)-1].ID
	}
	if len(b.files) != 2*b.o.n {
		return fmt.Errorf("%d blob files, want %d", len(b.files), 2*b.o.n)
	}
	b.logf("%d blob files, %.2f GB", len(b.files), float64(b.bytes)/1e9)
	return nil
}

// rep runs one repetition of the scrub and the reference; the order
// alternates. If cold, the page cache is dropped before each of the two.
func (b *scrubBench) rep(ctx context.Context, r int, cold bool) (scrubRep, error) {
	rep := scrubRep{scrubFirst: r%2 == 0}
	kind := "warm"
	if cold {
		kind = "cold"
	}
	scrub := func() error {
		if cold {
			if err := dropCaches(); err != nil {
				return err
			}
		}
		m := startMeter()
		sr, err := b.st.svc.Scrub(ctx, archive.ScrubOptions{OrphanGrace: -1})
		rep.scrub = m.stop()
		if err != nil {
			return err
		}
		if len(sr.Findings) != 0 || sr.Lost != 0 || sr.Copies != len(b.files) || sr.Bytes != b.bytes || len(sr.Unavailable) != 0 {
			return fmt.Errorf("scrub: %d findings, %d lost, %d copies, %d bytes, unavailable %v; want a clean pass over %d copies, %d bytes",
				len(sr.Findings), sr.Lost, sr.Copies, sr.Bytes, sr.Unavailable, len(b.files), b.bytes)
		}
		rep.scrubDur, rep.scrubBytes = sr.Duration, sr.Bytes
		b.logf("%s rep %d: Scrub %.0f MB/s (%v)", kind, r+1, float64(sr.Bytes)/1e6/sr.Duration.Seconds(), sr.Duration.Round(time.Millisecond))
		return nil
	}
	ref := func() error {
		if cold {
			if err := dropCaches(); err != nil {
				return err
			}
		}
		n, m, err := b.reference(ctx)
		if err != nil {
			return err
		}
		rep.ref, rep.refBytes = m, n
		b.logf("%s rep %d: reference %.0f MB/s (%v)", kind, r+1, float64(n)/1e6/m.wall.Seconds(), m.wall.Round(time.Millisecond))
		return nil
	}
	steps := []func() error{scrub, ref}
	if !rep.scrubFirst {
		steps = []func() error{ref, scrub}
	}
	for _, f := range steps {
		if err := f(); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// reference reads every blob file once, in Scrub's order, with a plain
// read loop and a 1 MiB buffer, hashes it with SHA-256 and compares the
// digest with the catalog's (held in memory). One goroutine, as Scrub.
func (b *scrubBench) reference(ctx context.Context) (int64, measured, error) {
	buf := make([]byte, 1<<20)
	var total int64
	m := startMeter()
	for _, bf := range b.files {
		if err := ctx.Err(); err != nil {
			return 0, measured{}, err
		}
		f, err := os.Open(bf.path)
		if err != nil {
			return 0, measured{}, err
		}
		h := sha256.New()
		for {
			n, err := f.Read(buf)
			h.Write(buf[:n])
			total += int64(n)
			if err == io.EOF {
				break
			}
			if err != nil {
				f.Close()
				return 0, measured{}, err
			}
		}
		f.Close()
		if !bytes.Equal(h.Sum(nil), bf.sha256) {
			return 0, measured{}, fmt.Errorf("%s: digest differs from the catalog's", bf.path)
		}
	}
	out := m.stop()
	if total != b.bytes {
		return 0, measured{}, fmt.Errorf("reference read %d bytes, want %d", total, b.bytes)
	}
	return total, out, nil
}

// shaInMemory is SHA-256 over a 1 MiB buffer held in memory, 256 times,
// in MB/s: the median of 5 runs.
func shaInMemory() float64 {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	var rates []float64
	for range 5 {
		h := sha256.New()
		t0 := time.Now()
		for range 256 {
			h.Write(buf)
		}
		h.Sum(nil)
		rates = append(rates, float64(256*len(buf))/1e6/time.Since(t0).Seconds())
	}
	return median(rates)
}

func (b *scrubBench) report(w io.Writer) {
	fmt.Fprintf(w, "## Scrub\n\n")
	fmt.Fprintf(w, "- %s\n", machineLine())
	fmt.Fprintf(w, "- data: %d recordings ingested through `archive.Service.Ingest` in %v (%d calls in flight): synthetic 2-channel G.711 μ-law WAV of %d s, %s bytes each; blobs of %s bytes on each of 2 `site.FS` sites; %d copies, %s bytes (%.2f GB) read per pass\n",
		b.o.n, b.ingest.Round(time.Millisecond), runtime.GOMAXPROCS(0), b.o.seconds, thousands(b.audio), thousands(b.files[0].size), len(b.files), thousands(b.bytes), float64(b.bytes)/1e9)
	fmt.Fprintf(w, "- SHA-256 of a 1 MiB buffer in memory (crypto/sha256, one goroutine): %.0f MB/s\n", b.shaMem)
	fmt.Fprintf(w, "- load average at end: %s\n\n", b.loadEnd)
	fmt.Fprintf(w, "MB = 10^6 bytes. Scrub MB/s = ScrubReport.Bytes ÷ ScrubReport.Duration; reference MB/s = bytes ÷ wall time of the loop.\n\n")
	b.table(w, "warm (page cache holds every blob; one untimed pass first)", b.warm)
	if len(b.cold) > 0 {
		b.table(w, "cold (sync and `echo 3 > /proc/sys/vm/drop_caches` before each pass)", b.cold)
	} else {
		fmt.Fprintf(w, "Cold: %s.\n\n", b.coldNote)
	}
}

func (b *scrubBench) table(w io.Writer, title string, reps []scrubRep) {
	var sMB, rMB, sCPU, rCPU, sBusy, rBusy, sOther, rOther, sWall []float64
	for _, r := range reps {
		sMB = append(sMB, float64(r.scrubBytes)/1e6/r.scrubDur.Seconds())
		rMB = append(rMB, float64(r.refBytes)/1e6/r.ref.wall.Seconds())
		sCPU = append(sCPU, r.scrub.cpu.Seconds()/(float64(r.scrubBytes)/1e9))
		rCPU = append(rCPU, r.ref.cpu.Seconds()/(float64(r.refBytes)/1e9))
		sBusy, rBusy = append(sBusy, r.scrub.busy), append(rBusy, r.ref.busy)
		sOther, rOther = append(sOther, r.scrub.other), append(rOther, r.ref.other)
		sWall = append(sWall, r.scrub.wall.Seconds()-r.scrubDur.Seconds())
	}
	fmt.Fprintf(w, "### %s: medians of %d repetitions\n\n", title, len(reps))
	fmt.Fprintf(w, "| measurement | Scrub | reference: read + SHA-256 | ratio |\n|---|---|---|---|\n")
	fmt.Fprintf(w, "| MB/s | %.0f | %.0f | %.2f |\n", median(sMB), median(rMB), median(sMB)/median(rMB))
	fmt.Fprintf(w, "| time per pass, s | %.2f | %.2f | %.2f |\n", float64(b.bytes)/1e6/median(sMB), float64(b.bytes)/1e6/median(rMB), median(rMB)/median(sMB))
	fmt.Fprintf(w, "| CPU s per GB read (this process) | %.3f | %.3f | %.2f |\n", median(sCPU), median(rCPU), median(sCPU)/median(rCPU))
	fmt.Fprintf(w, "| machine busy (outside this process) | %s (%s) | %s (%s) | |\n\n", pct(median(sBusy)), pct(median(sOther)), pct(median(rBusy)), pct(median(rOther)))
	fmt.Fprintf(w, "Per repetition, MB/s (Scrub / reference), and read from the storage layer (/proc/self/io read_bytes) in GB:\n\n")
	fmt.Fprintf(w, "| rep | order | Scrub | reference | ratio | read GB (Scrub / reference) |\n|---|---|---|---|---|---|\n")
	for i, r := range reps {
		order := "Scrub first"
		if !r.scrubFirst {
			order = "reference first"
		}
		fmt.Fprintf(w, "| %d | %s | %.0f | %.0f | %.2f | %.2f / %.2f |\n", i+1, order, sMB[i], rMB[i], sMB[i]/rMB[i],
			float64(r.scrub.read)/1e9, float64(r.ref.read)/1e9)
	}
	fmt.Fprintf(w, "\nScrub's wall time outside ScrubReport.Duration (its closing audit append): median %.1f ms.\n\n", 1000*median(sWall))
}
