package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"callvault/internal/config"
	"callvault/internal/site/s3site"
	"callvault/internal/site/s3site/s3test"
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
