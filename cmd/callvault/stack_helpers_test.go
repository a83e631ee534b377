package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"callvault/internal/config"
	"callvault/internal/site/s3site"
	"callvault/internal/site/s3site/s3test"
	"callvault/internal/sqldb"
)

// Helpers that let an end-to-end test reach below callvault — to a site's
// files, or to take a site away — on either stack (e2eStack).

// siteIndex maps a site name to its position in the dev config.
func siteIndex(site string) int { return map[string]int{"a": 0, "b": 1}[site] }

// s3Site returns the S3 server and bucket of dataDir's site, or nil on the
// embedded stack.
func s3Site(t *testing.T, dataDir, site string) (*s3test.Server, string) {
	t.Helper()
	pair := s3Of(dataDir)
	if pair == nil {
		return nil, ""
	}
	cfg, err := config.Dev(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	i := siteIndex(site)
	c, err := s3site.ParseURL(cfg.Sites[i].URL)
	if err != nil {
		t.Fatal(err)
	}
	return pair[i], c.Bucket
}

// siteBlobDir is the directory that holds site's blobs as files: the site
// directory, or the S3 server's directory of the site's bucket.
func siteBlobDir(t *testing.T, dataDir, site string) string {
	t.Helper()
	if srv, bucket := s3Site(t, dataDir, site); srv != nil {
		return filepath.Join(srv.Root(), bucket)
	}
	return filepath.Join(dataDir, "site-"+site)
}

// storageDirs are all the directories where dataDir's stack keeps data:
// the data directory and, on the scaleout stack, each S3 server's
// directories (current objects and older versions).
func storageDirs(dataDir string) []string {
	dirs := []string{dataDir}
	if pair := s3Of(dataDir); pair != nil {
		for _, srv := range pair {
			dirs = append(dirs, srv.Dirs()...)
		}
	}
	return dirs
}

// siteDown takes dataDir's site away as a data centre outage would — the
// directory replaced by a file, or the S3 server killed — and returns the
// function that brings it back.
func siteDown(t *testing.T, dataDir, site string) (back func()) {
	t.Helper()
	if srv, _ := s3Site(t, dataDir, site); srv != nil {
		srv.Stop()
		return func() {
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
		}
	}
	dir := filepath.Join(dataDir, "site-"+site)
	away := takeDown(t, dir)
	return func() { bringBack(t, dir, away) }
}

// blobVisible reports whether site serves blob name to callvault: the
// file exists, or the S3 object's current version does (a locked version
// hidden by a delete marker does not count).
func blobVisible(t *testing.T, dataDir, site, name string) bool {
	t.Helper()
	if srv, bucket := s3Site(t, dataDir, site); srv != nil {
		_, err := s3Client(t, srv).StatObject(context.Background(), bucket, name, minio.StatObjectOptions{})
		if err != nil && minio.ToErrorResponse(err).StatusCode != 404 {
			t.Fatal(err)
		}
		return err == nil
	}
	_, err := os.Stat(blobPath(dataDir, site, name))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

// plantBlob puts a blob no catalog row knows onto site, as a crash between
// committing a blob and its row would leave it, aged by age.
func plantBlob(t *testing.T, dataDir, site, name string, data []byte, age time.Duration) {
	t.Helper()
	p := blobPath(dataDir, site, name)
	if srv, bucket := s3Site(t, dataDir, site); srv != nil {
		if _, err := s3Client(t, srv).PutObject(context.Background(), bucket, name, bytes.NewReader(data), int64(len(data)),
			minio.PutObjectOptions{SendContentMd5: true}); err != nil {
			t.Fatal(err)
		}
	} else {
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The gateway reports a file's mtime as the object's LastModified.
	then := time.Now().Add(-age)
	if err := os.Chtimes(p, then, then); err != nil {
		t.Fatal(err)
	}
}

// prodConfig returns a production config (serve --config) for the stack of
// the dev data directory dataDir: its TLS material, sites and keyring
// unlock (the dev KEK file, or the HSM token with its PIN in a file), on
// fresh listen addresses. Tests add or remove keys.
func prodConfig(t *testing.T, dataDir string) map[string]any {
	t.Helper()
	cfg, err := config.Dev(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	var sites []any
	for _, s := range cfg.Sites {
		m := map[string]any{"name": s.Name, "jurisdiction": s.Jurisdiction}
		if s.URL != "" {
			m["url"] = s.URL
		} else {
			m["dir"] = s.Dir
		}
		sites = append(sites, m)
	}
	out := map[string]any{
		"database": cfg.Database,
		"data_dir": dataDir,
		"listen":   freeAddr(t), "ops_listen": freeAddr(t),
		"tls":   map[string]any{"cert": cfg.TLS.Cert, "key": cfg.TLS.Key, "client_ca": cfg.TLS.ClientCA},
		"sites": sites,
	}
	if p := cfg.PKCS11; p != nil {
		pinFile := filepath.Join(t.TempDir(), "hsm-pin")
		if err := os.WriteFile(pinFile, []byte(p.PIN+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out["pkcs11"] = map[string]any{"module": p.Module, "token": p.Token, "pin_file": pinFile}
	} else {
		out["kek_file"] = cfg.KEKFile
	}
	return out
}

// catalogDB opens the database that holds dataDir's catalog and audit log
// (catalog.db, or the PostgreSQL database) for a test's own SQL, written
// with ? placeholders.
func catalogDB(t *testing.T, dataDir string) *sqldb.DB {
	t.Helper()
	cfg, err := config.Dev(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqldb.Open(context.Background(), cfg.CatalogPath(), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// catalogPath is the path or URL of dataDir's catalog.
func catalogPath(t *testing.T, dataDir string) string {
	t.Helper()
	cfg, err := config.Dev(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.CatalogPath()
}

// onPostgres reports whether dataDir's catalog is in PostgreSQL.
func onPostgres(t *testing.T, dataDir string) bool {
	t.Helper()
	return sqldb.IsPostgresDSN(catalogPath(t, dataDir))
}

// directoryTables are the directory's tables, which live beside the
// catalog's in one PostgreSQL database but in their own SQLite file.
var directoryTables = map[string]bool{"units": true, "principals": true, "blocks": true, "protected_patients": true, "aors": true, "schema_migrations": true}

// loseCatalog destroys dataDir's catalog and audit log, as a lost disk
// would: catalog.db and its WAL, or every catalog and audit table of the
// PostgreSQL database (the directory stays, as directory.db does).
func loseCatalog(t *testing.T, dataDir string) {
	t.Helper()
	if !onPostgres(t, dataDir) {
		for _, f := range []string{"catalog.db", "catalog.db-wal", "catalog.db-shm"} {
			os.Remove(filepath.Join(dataDir, f))
		}
		return
	}
	db := catalogDB(t, dataDir)
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	var drop []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !directoryTables[name] {
			drop = append(drop, `"`+name+`"`)
		}
	}
	rows.Close()
	if len(drop) == 0 {
		t.Fatal("no catalog tables to drop")
	}
	if _, err := db.ExecContext(ctx, `DROP TABLE `+strings.Join(drop, ", ")+` CASCADE`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM schema_migrations WHERE name IN ('catalog', 'audit')`); err != nil {
		t.Fatal(err)
	}
}

// lockAuditLog makes the audit log unwritable until release is called: an
// exclusive SQLite transaction on catalog.db, or an exclusive lock on the
// PostgreSQL audit table.
func lockAuditLog(t *testing.T, dataDir string) (release func()) {
	t.Helper()
	ctx := context.Background()
	if onPostgres(t, dataDir) {
		db := catalogDB(t, dataDir)
		tx, err := db.SQL().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
		return func() { tx.Rollback() }
	}
	// The busy timeout lets the lock wait for a write the server happens
	// to be making (its repair loop, a checkpoint) instead of failing.
	db, err := sql.Open("sqlite", filepath.Join(dataDir, "catalog.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := db.Exec("ROLLBACK"); err != nil {
			t.Error(err)
		}
		db.Close()
	}
}
