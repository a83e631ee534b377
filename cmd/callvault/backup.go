package main

import (
	"archive/tar"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"
)

// The databases a backup holds: the catalog (with the audit log's tables)
// and the directory. Blobs are not in it: the two sites are each a full copy.
var backupFiles = []string{"catalog.db", "directory.db"}

// cmdBackup writes a consistent, encrypted backup of the catalog and the
// directory (HSLF-FS 2016:40 3 kap. 12–13 §): each database is snapshot
// with VACUUM INTO, the snapshots are put in a tar stream encrypted with
// age to the current archive key epoch (so the backup host needs no
// secret), and the file is written atomically to a directory that should
// be elsewhere than the data.
func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgOf := configFlags(fs)
	outDir := fs.String("out", "", "directory that receives the backup file (apart from the data directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *outDir == "" {
		return errors.New("backup: --out DIR is required")
	}
	cfg, err := cfgOf()
	if err != nil {
		return err
	}
	if cfg.OnPostgres() {
		return errors.New("backup: catalog, directory and audit log are in PostgreSQL: back that database up with its own tools (pg_basebackup with WAL archiving, or pg_dump), encrypted, to a separate location (docs/deploy.md)")
	}
	st, err := openStack(ctx, cfg, slog.New(slog.NewJSONHandler(stderr, nil)))
	if err != nil {
		return err
	}
	defer st.Close()
	epoch := st.keys.Current()
	name := "callvault-backup-" + time.Now().UTC().Format("20060102T150405Z") + ".tar.age"
	if err := st.arc.AuditAdminChange(ctx, localOperator(), "backup", fmt.Sprintf("file=%s epoch=%d", name, epoch.ID), ""); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(cfg.DataDir, ".backup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	snaps := map[string]func(context.Context, string) error{"catalog.db": st.cat.Snapshot, "directory.db": st.dir.Snapshot}
	for _, f := range backupFiles {
		if err := snaps[f](ctx, filepath.Join(tmp, f)); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
	}
	if err := os.MkdirAll(*outDir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(*outDir, name)
	if err := writeAtomic(path, func(out io.Writer) error {
		w, err := age.Encrypt(out, epoch.Recipient)
		if err != nil {
			return err
		}
		tw := tar.NewWriter(w)
		for _, f := range backupFiles {
			if err := addFile(tw, filepath.Join(tmp, f), f); err != nil {
				return err
			}
		}
		if err := tw.Close(); err != nil {
			return err
		}
		return w.Close()
	}); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "%s\nencrypted to archive key epoch %d; restore with: callvault restore --from %s\n", path, epoch.ID, path)
	return nil
}

// cmdRestore puts a backup's databases back into a data directory that has
// none (after a loss), decrypting with the keyring.
func cmdRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgOf := configFlags(fs)
	from := fs.String("from", "", "backup file written by callvault backup")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" {
		return errors.New("restore: --from FILE is required")
	}
	cfg, err := cfgOf()
	if err != nil {
		return err
	}
	for _, f := range backupFiles {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, f)); err == nil {
			return fmt.Errorf("restore: %s exists in %s; restore only replaces what was lost (move it away first)", f, cfg.DataDir)
		}
	}
	kr, err := loadKeyring(cfg)
	if err != nil {
		return err
	}
	var ids []age.Identity
	for _, e := range kr.Epochs() {
		id, err := kr.Identity(e.ID)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	f, err := os.Open(*from)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	r, err := age.Decrypt(f, ids...)
	if err != nil {
		return fmt.Errorf("restore: %s cannot be decrypted with the keyring (its epoch destroyed, or not a callvault backup): %w", filepath.Base(*from), err)
	}
	// Each database goes to a temporary name first; both are renamed into
	// place only after the whole backup decrypted and authenticated.
	tr := tar.NewReader(r)
	got := map[string]string{}
	defer func() {
		for _, p := range got {
			os.Remove(p)
		}
	}()
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if got[h.Name] != "" || (h.Name != backupFiles[0] && h.Name != backupFiles[1]) {
			return errors.New("restore: unexpected entry in the backup")
		}
		p := filepath.Join(cfg.DataDir, ".restore-"+h.Name)
		got[h.Name] = p
		if err := writeAtomic(p, func(w io.Writer) error { _, err := io.Copy(w, tr); return err }); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	if len(got) != len(backupFiles) {
		return errors.New("restore: the backup is incomplete")
	}
	for _, name := range backupFiles {
		if err := os.Rename(got[name], filepath.Join(cfg.DataDir, name)); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		delete(got, name)
	}
	st, err := openStack(ctx, cfg, slog.New(slog.NewJSONHandler(stderr, nil)))
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.arc.AuditAdminChange(ctx, localOperator(), "restore", "file="+filepath.Base(*from), ""); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %v from %s; run callvault audit verify and callvault scrub next\n", backupFiles, filepath.Base(*from))
	return nil
}

// writeAtomic writes path through fill: to a temporary file in the same
// directory, synced, then renamed over path, and the directory synced.
func writeAtomic(path string, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".partial-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// addFile appends the file at path to tw under name.
func addFile(tw *tar.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
