// Command importbench measures `callvault import` (docs/benchmarks.md,
// "Import"): recordings/s and MB/s of a generated legacy tree imported
// into a running `callvault serve --dev` over mutual TLS, beside age
// encrypting the same tree with the same number of workers in the same
// run, for 100 kB files and for 3.6 MB files; and the time that rate
// means for 2.7 million recordings.
//
// Each repetition imports into a fresh server and data directory (an
// archive stores a source file once), and alternates with the age pass so
// that both see the same machine state. Medians of the repetitions.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"filippo.io/age"

	"callvault/bench/internal/benchstat"
	"callvault/internal/legacytree"
)

func main() {
	tmp := flag.String("tmp", os.TempDir(), "directory for the trees, data directories and age output")
	bin := flag.String("bin", "", "the callvault binary (required)")
	small := flag.Int("small", 2000, "number of 100 kB files")
	large := flag.Int("large", 100, "number of 3.6 MB files")
	reps := flag.Int("reps", 3, "repetitions per size")
	jobs := flag.Int("jobs", 8, "files in flight (importer --jobs, age workers)")
	flag.Parse()
	if *bin == "" {
		log.Fatal("-bin is required")
	}
	fmt.Printf("- machine: %s\n- load before: %s\n\n", benchstat.Machine(), benchstat.LoadAvg())
	fmt.Println("| files | size | import files/s | import MB/s | age files/s | age MB/s | import / age | 2.7 M recordings at this rate |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, c := range []struct {
		name  string
		n     int
		bytes int
	}{{"100 kB", *small, 100_000}, {"3.6 MB", *large, 3_600_000}} {
		dir := filepath.Join(*tmp, "tree-"+strings.ReplaceAll(c.name, " ", ""))
		tree, err := legacytree.Generate(legacytree.Spec{Dir: dir, Files: c.n, MP3Share: 50, WAVBytes: c.bytes, MP3Bytes: c.bytes,
			Seed: uint64(c.bytes), CareProvider: "SE9999990001-VG01", CareUnit: "SE9999990001-VE0A", Staff: "SE9999990001-N0A1"})
		if err != nil {
			log.Fatal(err)
		}
		var imp, ag []float64 // seconds
		for r := range *reps {
			log.Printf("%s: rep %d/%d: import", c.name, r+1, *reps)
			imp = append(imp, importOnce(*bin, *tmp, dir, tree.Manifest, *jobs, tree.Imported))
			log.Printf("%s: rep %d/%d: age", c.name, r+1, *reps)
			ag = append(ag, ageOnce(*tmp, dir, *jobs))
		}
		mi, ma := benchstat.Median(imp), benchstat.Median(ag)
		mb := float64(tree.Bytes) / 1e6
		rate := float64(tree.Imported) / mi
		fmt.Printf("| %d | %s | %.0f | %.1f | %.0f | %.1f | %.2f× | %s |\n", tree.Imported, c.name, rate, mb/mi,
			float64(c.n)/ma, mb/ma, ma/mi, (time.Duration(2.7e6/rate) * time.Second).Round(time.Minute))
		fmt.Fprintf(os.Stderr, "%s: import seconds %v, age seconds %v\n", c.name, imp, ag)
		os.RemoveAll(dir)
		os.Remove(tree.Manifest)
	}
	fmt.Printf("\n- load after: %s\n", benchstat.LoadAvg())
}

// importOnce starts a fresh dev server, imports the tree into it and
// returns the import's wall time in seconds.
func importOnce(bin, tmp, src, manifest string, jobs, want int) float64 {
	data, err := os.MkdirTemp(tmp, "data-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(data)
	srv := exec.Command(bin, "serve", "--dev", "--data", data, "--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0")
	srv.Stderr = io.Discard
	out, err := srv.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { srv.Process.Signal(os.Interrupt); srv.Wait() }()
	addr := ""
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var api, ops string
		if _, err := fmt.Sscanf(sc.Text(), "listening on https://%s (ops http://%s", &api, &ops); err == nil {
			addr = api
			break
		}
	}
	go io.Copy(io.Discard, out)
	if addr == "" {
		log.Fatal("the server did not start")
	}
	dev := filepath.Join(data, "dev")
	work := filepath.Join(data, "work")
	start := time.Now()
	cmd := exec.CommandContext(context.Background(), bin, "import", "--from", src, "--manifest", manifest, "--work", work,
		"--jobs", fmt.Sprint(jobs), "--server", "https://"+addr, "--cert", filepath.Join(dev, "capture.pem"),
		"--key", filepath.Join(dev, "capture-key.pem"), "--ca", filepath.Join(dev, "ca.pem"))
	res, err := cmd.Output()
	secs := time.Since(start).Seconds()
	if err != nil || !strings.Contains(string(res), fmt.Sprintf("imported %d,", want)) {
		log.Fatalf("import: %v\n%s", err, res)
	}
	return secs
}

// ageOnce encrypts every file of src with age to a hybrid (post-quantum)
// recipient, as the archive's keys are, with the same parallelism, and
// returns the wall time in seconds.
func ageOnce(tmp, src string, jobs int) float64 {
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		log.Fatal(err)
	}
	rcpt := id.Recipient()
	dst, err := os.MkdirTemp(tmp, "age-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dst)
	var files []string
	filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	start := time.Now()
	ch := make(chan int)
	var wg sync.WaitGroup
	for range jobs {
		wg.Go(func() {
			for i := range ch {
				in, err := os.Open(files[i])
				if err != nil {
					log.Fatal(err)
				}
				out, err := os.Create(filepath.Join(dst, fmt.Sprintf("%d.age", i)))
				if err != nil {
					log.Fatal(err)
				}
				w, err := age.Encrypt(out, rcpt)
				if err != nil {
					log.Fatal(err)
				}
				if _, err := io.Copy(w, in); err != nil {
					log.Fatal(err)
				}
				if err := w.Close(); err != nil {
					log.Fatal(err)
				}
				out.Close()
				in.Close()
			}
		})
	}
	for i := range files {
		ch <- i
	}
	close(ch)
	wg.Wait()
	return time.Since(start).Seconds()
}
