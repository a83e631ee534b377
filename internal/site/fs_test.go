package site_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"callvault/internal/site"
	"callvault/internal/site/sitetest"
)

// newFS returns an FS named name in a directory that does not exist yet.
func newFS(t *testing.T, name, jurisdiction string) *site.FS {
	t.Helper()
	f, err := site.NewFS(t.Context(), site.FSConfig{
		Name:         name,
		Dir:          filepath.Join(t.TempDir(), "sites", name),
		Jurisdiction: jurisdiction,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFSConformance(t *testing.T) {
	t.Parallel()
	sitetest.Run(t, func(t *testing.T) site.Store { return newFS(t, "a", "SE") })
}

// mode returns the permission bits of path.
func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// entries returns the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestFSLayoutAndPermissions(t *testing.T) {
	t.Parallel()
	f := newFS(t, "a", "SE")
	dir := f.Dir()
	if !filepath.IsAbs(dir) {
		t.Fatalf("Dir = %q, want absolute", dir)
	}
	if got := mode(t, dir); got != 0o700 {
		t.Errorf("Dir mode = %o, want 700", got)
	}
	if got := mode(t, filepath.Dir(dir)); got != 0o700 {
		t.Errorf("created parent mode = %o, want 700", got)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Fatalf("new Dir holds %q, want nothing", got)
	}

	name, data := "ab"+sitetest.RandomName()[2:], []byte("ciphertext")
	up, err := f.Create(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(data); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, dir); !equal(got, []string{"ab"}) {
		t.Fatalf("Dir holds %q, want [ab]", got)
	}
	fan := filepath.Join(dir, "ab")
	if got := mode(t, fan); got != 0o700 {
		t.Errorf("fan-out directory mode = %o, want 700", got)
	}
	temps := entries(t, fan)
	if len(temps) != 1 || !strings.HasPrefix(temps[0], ".tmp-"+name+"-") || len(temps[0]) <= len(".tmp-"+name+"-") {
		t.Fatalf("during upload %s holds %q, want one .tmp-%s-<random>", fan, temps, name)
	}
	if got := mode(t, filepath.Join(fan, temps[0])); got != 0o600 {
		t.Errorf("temp file mode = %o, want 600", got)
	}
	if err := up.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, want := entries(t, fan), []string{name + ".blob"}; !equal(got, want) {
		t.Fatalf("after Commit %s holds %q, want %q", fan, got, want)
	}
	path := filepath.Join(fan, name+".blob")
	if got := mode(t, path); got != 0o600 {
		t.Errorf("blob mode = %o, want 600", got)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
		t.Errorf("blob file = %q, %v; want %q", got, err, data)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFSAbortLeavesNothing(t *testing.T) {
	t.Parallel()
	f := newFS(t, "a", "SE")
	name := sitetest.RandomName()
	up, err := f.Create(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write([]byte("ciphertext")); err != nil {
		t.Fatal(err)
	}
	if err := up.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, filepath.Join(f.Dir(), name[:2])); len(got) != 0 {
		t.Fatalf("after Abort the fan-out directory holds %q", got)
	}
}

func TestNewFSConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  site.FSConfig
		want string
	}{
		{"no name", site.FSConfig{Dir: dir, Jurisdiction: "SE"},
			"site: new fs: name must be 1 to 64 characters from a-z, A-Z, 0-9, '-', '_', '.'"},
		{"bad name", site.FSConfig{Name: "a/b", Dir: dir, Jurisdiction: "SE"},
			"site: new fs: name must be 1 to 64 characters from a-z, A-Z, 0-9, '-', '_', '.'"},
		{"no dir", site.FSConfig{Name: "a", Jurisdiction: "SE"},
			"site a: new fs: dir is required"},
		{"no jurisdiction", site.FSConfig{Name: "a", Dir: dir},
			"site a: new fs: jurisdiction must be an upper-case ISO 3166-1 alpha-2 code such as SE"},
		{"lower-case jurisdiction", site.FSConfig{Name: "a", Dir: dir, Jurisdiction: "se"},
			"site a: new fs: jurisdiction must be an upper-case ISO 3166-1 alpha-2 code such as SE"},
		{"alpha-3 jurisdiction", site.FSConfig{Name: "a", Dir: dir, Jurisdiction: "SWE"},
			"site a: new fs: jurisdiction must be an upper-case ISO 3166-1 alpha-2 code such as SE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := site.NewFS(t.Context(), tc.cfg)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("NewFS = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestFSFanOutIsFile(t *testing.T) {
	t.Parallel()
	f := newFS(t, "a", "SE")
	fan := filepath.Join(f.Dir(), "7f")
	if err := os.WriteFile(fan, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	name := "7f" + sitetest.RandomName()[2:]
	up, err := f.Create(t.Context(), name)
	want := "site a: create " + name + ": lstat " + filepath.Join(fan, name+".blob") + ": not a directory"
	if err == nil || err.Error() != want {
		if err == nil {
			up.Abort()
		}
		t.Fatalf("Create = %v, want %q", err, want)
	}
	// The failure is not remembered: once repaired, the site works.
	restoreDir(t, fan)
	sitetest.Put(t, f, name, []byte("ciphertext"), 100)
}

func TestNewFSReopen(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a")
	cfg := site.FSConfig{Name: "a", Dir: dir, Jurisdiction: "SE"}
	f1, err := site.NewFS(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	name, data := sitetest.RandomName(), []byte("ciphertext")
	sitetest.Put(t, f1, name, data, 4)
	f2, err := site.NewFS(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := sitetest.Get(t, f2, name); !bytes.Equal(got, data) {
		t.Fatalf("reopened site holds %q, want %q", got, data)
	}
}

func TestNewFSRelativeDir(t *testing.T) {
	wd := t.TempDir()
	t.Chdir(wd)
	f, err := site.NewFS(t.Context(), site.FSConfig{Name: "a", Dir: "rel/a", Jurisdiction: "SE"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := filepath.EvalSymlinks(filepath.Join(wd, "rel", "a"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := filepath.EvalSymlinks(f.Dir())
	if err != nil || got != want {
		t.Fatalf("Dir = %q (%v), want %q", got, err, want)
	}
}

func TestFSCleanTemp(t *testing.T) {
	t.Parallel()
	f := newFS(t, "a", "SE")
	dir := f.Dir()
	ctx := t.Context()

	kept, keptData := sitetest.RandomName(), []byte("committed")
	sitetest.Put(t, f, kept, keptData, 100)
	// Two crashed uploads (never committed nor aborted), one of them old, and
	// a leftover health-check probe.
	oldName, newName := sitetest.RandomName(), sitetest.RandomName()
	oldUp, err := f.Create(ctx, oldName)
	if err != nil {
		t.Fatal(err)
	}
	newUp, err := f.Create(ctx, newName)
	if err != nil {
		t.Fatal(err)
	}
	for _, up := range []site.Upload{oldUp, newUp} {
		if _, err := up.Write([]byte("ciphertext")); err != nil {
			t.Fatal(err)
		}
	}
	oldTemp := tempFiles(t, dir, oldName)
	if len(oldTemp) != 1 {
		t.Fatalf("temp files of the old upload: %q", oldTemp)
	}
	hourAgo := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(oldTemp[0], hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(dir, ".tmp-check-123")
	other := filepath.Join(dir, "README")
	for _, p := range []string{probe, other} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	if n, err := f.CleanTemp(ctx, time.Hour); n != 1 || err != nil {
		t.Fatalf("CleanTemp(1h) = %d, %v; want 1, nil", n, err)
	}
	if got := tempFiles(t, dir, oldName); len(got) != 0 {
		t.Errorf("old temp file survived: %q", got)
	}
	if got := tempFiles(t, dir, newName); len(got) != 1 {
		t.Errorf("new temp file removed too early: %q", got)
	}

	if n, err := f.CleanTemp(ctx, 0); n != 2 || err != nil {
		t.Fatalf("CleanTemp(0) = %d, %v; want 2, nil", n, err)
	}
	if got := tempFiles(t, dir, newName); len(got) != 0 {
		t.Errorf("temp file survived CleanTemp(0): %q", got)
	}
	if _, err := os.Stat(probe); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("check probe survived: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("non-temp file removed: %v", err)
	}
	if got := sitetest.Get(t, f, kept); !bytes.Equal(got, keptData) {
		t.Errorf("committed blob = %q, want %q", got, keptData)
	}
	// The upload whose temp file was cleaned cannot commit.
	if err := newUp.Commit(); err == nil {
		t.Error("Commit of a cleaned upload succeeded")
	}
	if _, err := f.Stat(ctx, newName); !errors.Is(err, site.ErrNotExist) {
		t.Errorf("Stat of a cleaned upload: %v, want ErrNotExist", err)
	}
	if n, err := f.CleanTemp(ctx, 0); n != 0 || err != nil {
		t.Fatalf("CleanTemp on a clean site = %d, %v; want 0, nil", n, err)
	}
}

// tempFiles returns the paths of the temp files of uploads of name.
func tempFiles(t *testing.T, dir, name string) []string {
	t.Helper()
	got, err := filepath.Glob(filepath.Join(dir, name[:2], ".tmp-"+name+"-*"))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestFSCheck(t *testing.T) {
	t.Parallel()
	f := newFS(t, "a", "SE")
	if err := f.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, f.Dir()); len(got) != 0 {
		t.Fatalf("Check left %q behind", got)
	}
	// Tests run as root, where a read-only mode does not stop writes: make
	// the failure real by putting a file where the directory was.
	breakDir(t, f.Dir())
	err := f.Check(t.Context())
	if err == nil || !strings.HasPrefix(err.Error(), "site a: check: ") {
		t.Fatalf("Check on a broken site = %v", err)
	}
}

// breakDir replaces the directory dir with a regular file.
func breakDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// restoreDir undoes breakDir, leaving an empty directory.
func restoreDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

func TestFSCommitFailsCleanly(t *testing.T) {
	t.Parallel()
	f := newFS(t, "a", "SE")
	name := sitetest.RandomName()
	up, err := f.Create(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write([]byte("ciphertext")); err != nil {
		t.Fatal(err)
	}
	fan := filepath.Join(f.Dir(), name[:2])
	if err := os.Rename(fan, fan+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(fan, 0o700); err != nil {
		t.Fatal(err)
	}
	err = up.Commit()
	if err == nil || errors.Is(err, site.ErrExists) {
		t.Fatalf("Commit after the temp file vanished = %v", err)
	}
	if err := up.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, fan); len(got) != 0 {
		t.Fatalf("failed Commit left %q", got)
	}
}

func TestFSErrorsNameOnlySiteAndID(t *testing.T) {
	t.Parallel()
	f := newFS(t, "a", "SE")
	name := sitetest.RandomName()
	_, err := f.Open(context.Background(), name)
	if want := "site a: open " + name + ": blob does not exist"; err == nil || err.Error() != want {
		t.Fatalf("Open = %v, want %q", err, want)
	}
	_, err = f.Stat(t.Context(), "0701234567")
	if want := "site a: stat: invalid blob name: length 10, want 32 lowercase hex characters"; err == nil || err.Error() != want {
		t.Fatalf("Stat = %v, want %q", err, want)
	}
}

// A site whose directory comes back empty (a remount, a replaced disk) is
// written to again without a restart: the cached fan-out directory is made anew.
func TestFSSiteReturnsEmpty(t *testing.T) {
	ctx := context.Background()
	f := newFS(t, "b", "SE")
	first := "ab" + strings.Repeat("0", 30)
	second := "ab" + strings.Repeat("1", 30)
	sitetest.Put(t, f, first, []byte("one"), 0)
	ents, err := os.ReadDir(f.Dir())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(f.Dir(), e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	sitetest.Put(t, f, second, []byte("two"), 0)
	if got := sitetest.Get(t, f, second); string(got) != "two" {
		t.Fatalf("got %q", got)
	}
	if _, err := f.Stat(ctx, first); !errors.Is(err, site.ErrNotExist) {
		t.Fatalf("the lost blob: %v", err)
	}
}

// A site whose Dir is unusable when NewFS runs (here a file in its place) is
// still made, so serve can start with one data centre down; it fails Check
// and uploads, naming the site, and works once the directory is back.
func TestFSUnavailableAtStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := site.NewFS(t.Context(), site.FSConfig{Name: "b", Dir: dir, Jurisdiction: "SE"})
	if err != nil {
		t.Fatalf("NewFS: %v", err)
	}
	if err := f.Check(t.Context()); err == nil || !strings.HasPrefix(err.Error(), "site b: check: ") {
		t.Fatalf("Check = %v, want a site b check error", err)
	}
	name := sitetest.RandomName()
	if _, err := f.Create(t.Context(), name); err == nil || !strings.HasPrefix(err.Error(), "site b: create "+name+": ") {
		t.Fatalf("Create = %v, want a site b create error", err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := f.Check(t.Context()); err != nil {
		t.Fatalf("Check after the directory is back: %v", err)
	}
	sitetest.Put(t, f, name, []byte("back"), 0)
	if got := sitetest.Get(t, f, name); string(got) != "back" {
		t.Fatalf("got %q", got)
	}
}
