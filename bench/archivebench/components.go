package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"filippo.io/age"

	"callvault/internal/seal"
)

// components are the costs of the steps one upload or playback takes, each
// measured alone, to read the end-to-end numbers against.
type components struct {
	fsync4K   time.Duration // append 4 KiB to a file and fsync it (an SQLite WAL commit's floor)
	fsyncCall time.Duration // write one call's blob to each of two files in parallel, fsync both and their directory
	wrap      time.Duration // seal.Wrap of a file key to a hybrid (ML-KEM-768 + X25519) age recipient
	unwrap    time.Duration // seal.Unwrap of it with the hybrid identity
	callBytes int64

	// Page-cache write rate (no fsync), MB/s, into memory the kernel gets
	// fresh (kept files) and into memory just freed (after deleting them).
	// On a VM that returns freed memory to its host the two differ.
	pageFreshMBps, pageReusedMBps float64
}

// measureComponents measures the components in dir (created, then removed)
// for calls of plaintext bytes. Each figure is the median of its repetitions.
func measureComponents(dir string, plaintext int64) (components, error) {
	var c components
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return c, err
	}
	defer os.RemoveAll(dir)
	var err error
	if c.fsync4K, err = measureFsync4K(dir, 50); err != nil {
		return c, fmt.Errorf("fsync 4 KiB: %w", err)
	}
	c.callBytes = seal.BlobSize(plaintext)
	if c.fsyncCall, err = measureFsyncCall(dir, c.callBytes, 10); err != nil {
		return c, fmt.Errorf("fsync call: %w", err)
	}
	if c.wrap, c.unwrap, err = measureWrap(200); err != nil {
		return c, fmt.Errorf("wrap: %w", err)
	}
	if c.pageFreshMBps, c.pageReusedMBps, err = measurePageCache(filepath.Join(dir, "page-cache"), 256<<20); err != nil {
		return c, fmt.Errorf("page cache: %w", err)
	}
	return c, nil
}

// measurePageCache writes ten files of size bytes, kept, so that the page
// cache grows into memory the kernel has not used lately, and reports the
// median write rate of the last four (the first gigabyte or so is often
// memory the host still backs from earlier use); then it deletes them and
// at once writes one more file of size bytes, into the memory just freed,
// and reports its rate. No fsync: this is the copy into the page cache
// alone.
func measurePageCache(dir string, size int) (fresh, reused float64, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, 0, err
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 13)
	}
	write := func(name string) (float64, error) {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		t0 := time.Now()
		for n := 0; n < size; n += len(buf) {
			if _, err := f.Write(buf); err != nil {
				return 0, err
			}
		}
		return float64(size) / 1e6 / time.Since(t0).Seconds(), nil
	}
	var rates []float64
	for i := range 10 {
		r, err := write(fmt.Sprintf("kept-%d", i))
		if err != nil {
			return 0, 0, err
		}
		rates = append(rates, r)
	}
	for i := range 10 {
		if err := os.Remove(filepath.Join(dir, fmt.Sprintf("kept-%d", i))); err != nil {
			return 0, 0, err
		}
	}
	reused, err = write("reused")
	return median(rates[6:]), reused, err
}

func measureFsync4K(dir string, n int) (time.Duration, error) {
	f, err := os.OpenFile(filepath.Join(dir, "fsync-4k"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 4096)
	d := make([]time.Duration, n)
	for i := range d {
		t0 := time.Now()
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
		d[i] = time.Since(t0)
	}
	return medianDur(d), nil
}

// measureFsyncCall is the disk floor of one callvault upload: the blob
// written to two sites and committed on both in parallel (fsync of the
// file, then of its directory).
func measureFsyncCall(dir string, size int64, n int) (time.Duration, error) {
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	d := make([]time.Duration, n)
	for i := range d {
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for s := range 2 {
			sub := filepath.Join(dir, fmt.Sprintf("site-%d", s))
			if err := os.MkdirAll(sub, 0o700); err != nil {
				return 0, err
			}
			wg.Go(func() { errs[s] = writeSync(filepath.Join(sub, fmt.Sprintf("blob-%d", i)), buf) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return 0, err
		}
		d[i] = time.Since(t0)
	}
	return medianDur(d), nil
}

func writeSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func measureWrap(n int) (wrap, unwrap time.Duration, err error) {
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		return 0, 0, err
	}
	fk, err := seal.NewFileKey()
	if err != nil {
		return 0, 0, err
	}
	dw, du := make([]time.Duration, n), make([]time.Duration, n)
	for i := range n {
		t0 := time.Now()
		w, err := seal.Wrap(fk, id.Recipient())
		if err != nil {
			return 0, 0, err
		}
		dw[i] = time.Since(t0)
		t0 = time.Now()
		if _, err := seal.Unwrap(w, id); err != nil {
			return 0, 0, err
		}
		du[i] = time.Since(t0)
	}
	return medianDur(dw), medianDur(du), nil
}
