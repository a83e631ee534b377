package sqlitedb

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func openTemp(t *testing.T) (*sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// versions returns the versions recorded for name, ascending.
func versions(t *testing.T, db *sql.DB, name string) []int {
	t.Helper()
	rows, err := db.Query(`SELECT version FROM schema_migrations WHERE name = ? ORDER BY version`, name)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// steps returns the values in table steps, in insertion order.
func steps(t *testing.T, db *sql.DB) []int {
	t.Helper()
	rows, err := db.Query(`SELECT v FROM steps ORDER BY rowid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func tableExists(t *testing.T, db *sql.DB, name string) bool {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestOpenPragmasOnEveryConnection(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	// Hold two connections at once so the pool must have opened both with
	// the DSN's pragmas, not just the first.
	conns := make([]*sql.Conn, 2)
	for i := range conns {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	for i, c := range conns {
		var mode string
		if err := c.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" {
			t.Errorf("conn %d: journal_mode = %q, want %q", i, mode, "wal")
		}
		for _, p := range []struct {
			pragma string
			want   int
		}{
			{"synchronous", 2}, // FULL
			{"foreign_keys", 1},
			{"busy_timeout", 10000},
		} {
			var got int
			if err := c.QueryRowContext(ctx, `PRAGMA `+p.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != p.want {
				t.Errorf("conn %d: %s = %d, want %d", i, p.pragma, got, p.want)
			}
		}
	}
}

func TestOpenEnforcesForeignKeys(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	if _, err := db.ExecContext(ctx, `CREATE TABLE p (id INTEGER PRIMARY KEY);
		CREATE TABLE c (p INTEGER NOT NULL REFERENCES p(id))`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO c (p) VALUES (7)`); err == nil {
		t.Fatal("insert of a dangling reference succeeded; foreign keys are off")
	}
}

func TestOpenBadPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-dir", "x.db")
	db, err := Open(context.Background(), path)
	if err == nil {
		db.Close()
		t.Fatal("Open in a missing directory succeeded")
	}
	if !strings.HasPrefix(err.Error(), "sqlitedb: open: ") {
		t.Errorf("error = %q, want prefix %q", err, "sqlitedb: open: ")
	}
}

func TestMigrateAppliesInOrderOnce(t *testing.T) {
	ctx := context.Background()
	db, path := openTemp(t)
	migs := []string{
		`CREATE TABLE steps (v INTEGER NOT NULL)`,
		`INSERT INTO steps (v) VALUES (2)`,
		`INSERT INTO steps (v) VALUES (3)`,
	}
	if err := Migrate(ctx, db, "one", migs); err != nil {
		t.Fatal(err)
	}
	if got, want := steps(t, db), []int{2, 3}; !reflect.DeepEqual(got, want) {
		t.Fatalf("steps after first Migrate = %v, want %v", got, want)
	}
	if got, want := versions(t, db, "one"), []int{1, 2, 3}; !reflect.DeepEqual(got, want) {
		t.Fatalf("versions = %v, want %v", got, want)
	}

	// Again, same list: nothing is re-applied.
	if err := Migrate(ctx, db, "one", migs); err != nil {
		t.Fatal(err)
	}
	if got, want := steps(t, db), []int{2, 3}; !reflect.DeepEqual(got, want) {
		t.Fatalf("steps after second Migrate = %v, want %v", got, want)
	}

	// After a reopen, one appended migration: only it runs.
	db.Close()
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	migs = append(migs, `INSERT INTO steps (v) VALUES (4)`)
	if err := Migrate(ctx, db, "one", migs); err != nil {
		t.Fatal(err)
	}
	if got, want := steps(t, db), []int{2, 3, 4}; !reflect.DeepEqual(got, want) {
		t.Fatalf("steps after appending = %v, want %v", got, want)
	}
	if got, want := versions(t, db, "one"), []int{1, 2, 3, 4}; !reflect.DeepEqual(got, want) {
		t.Fatalf("versions = %v, want %v", got, want)
	}

	// Another schema name in the same file has its own versions.
	if err := Migrate(ctx, db, "two", []string{`INSERT INTO steps (v) VALUES (20)`}); err != nil {
		t.Fatal(err)
	}
	if got, want := versions(t, db, "two"), []int{1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("versions of two = %v, want %v", got, want)
	}
	if got, want := steps(t, db), []int{2, 3, 4, 20}; !reflect.DeepEqual(got, want) {
		t.Fatalf("steps = %v, want %v", got, want)
	}

	// No migrations at all is a no-op, also on a fresh name.
	if err := Migrate(ctx, db, "three", nil); err != nil {
		t.Fatal(err)
	}
	if got := versions(t, db, "three"); got != nil {
		t.Fatalf("versions of three = %v, want none", got)
	}
}

func TestMigrateFailureKeepsPreviousWholeVersion(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	good := []string{
		`CREATE TABLE steps (v INTEGER NOT NULL)`,
		`INSERT INTO steps (v) VALUES (2)`,
	}
	// Version 3 creates a table and writes a row, then fails: all of it
	// must be rolled back, and version 4 never attempted.
	broken := append(append([]string{}, good...),
		`CREATE TABLE half (x INTEGER); INSERT INTO steps (v) VALUES (3); INSERT INTO no_such_table VALUES (1)`,
		`INSERT INTO steps (v) VALUES (4)`,
	)
	err := Migrate(ctx, db, "s", broken)
	if err == nil {
		t.Fatal("Migrate with a broken version 3 succeeded")
	}
	if want := "sqlitedb: migrate s to 3: "; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error = %q, want prefix %q", err, want)
	}
	if got, want := versions(t, db, "s"), []int{1, 2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("versions after failure = %v, want %v", got, want)
	}
	if got, want := steps(t, db), []int{2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("steps after failure = %v, want %v", got, want)
	}
	if tableExists(t, db, "half") {
		t.Fatal("table of the failed version exists")
	}

	fixed := append(append([]string{}, good...),
		`CREATE TABLE half (x INTEGER); INSERT INTO steps (v) VALUES (3)`,
		`INSERT INTO steps (v) VALUES (4)`,
	)
	if err := Migrate(ctx, db, "s", fixed); err != nil {
		t.Fatalf("Migrate with the fixed list: %v", err)
	}
	if got, want := versions(t, db, "s"), []int{1, 2, 3, 4}; !reflect.DeepEqual(got, want) {
		t.Fatalf("versions after fix = %v, want %v", got, want)
	}
	if got, want := steps(t, db), []int{2, 3, 4}; !reflect.DeepEqual(got, want) {
		t.Fatalf("steps after fix = %v, want %v", got, want)
	}
	if !tableExists(t, db, "half") {
		t.Fatal("table of version 3 missing after the fix")
	}
}

func TestMigrateRefusesNewerDatabase(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	migs := []string{
		`CREATE TABLE steps (v INTEGER NOT NULL)`,
		`INSERT INTO steps (v) VALUES (2)`,
		`INSERT INTO steps (v) VALUES (3)`,
	}
	if err := Migrate(ctx, db, "s", migs); err != nil {
		t.Fatal(err)
	}
	err := Migrate(ctx, db, "s", migs[:2])
	if err == nil {
		t.Fatal("Migrate of a database newer than the binary succeeded")
	}
	if got, want := err.Error(), "sqlitedb: migrate s: database is at version 3, this binary knows only 2"; got != want {
		t.Fatalf("error = %q, want %q", got, want)
	}
	if got, want := versions(t, db, "s"), []int{1, 2, 3}; !reflect.DeepEqual(got, want) {
		t.Fatalf("versions = %v, want %v", got, want)
	}
	if got, want := steps(t, db), []int{2, 3}; !reflect.DeepEqual(got, want) {
		t.Fatalf("steps = %v, want %v", got, want)
	}
}

func TestMigrateCancelledContext(t *testing.T) {
	db, _ := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Migrate(ctx, db, "s", []string{`CREATE TABLE steps (v INTEGER)`}); err == nil {
		t.Fatal("Migrate with a cancelled context succeeded")
	}
	if tableExists(t, db, "steps") {
		t.Fatal("a cancelled Migrate created the table")
	}
}

// A path is a file name, not a URI: characters that mean something in a
// URI ('?', '#', '%') must still name exactly that file.
func TestOpenPathWithURICharacters(t *testing.T) {
	for _, c := range []struct{ name, dir string }{
		{"question-mark", "a?b"},
		{"hash", "x#y"},
		{"percent", "100%25"},
	} {
		// The subtest name is ASCII letters only: t.TempDir derives its
		// path from it, and it must not itself hold these characters.
		dir := c.dir
		t.Run(c.name, func(t *testing.T) {
			parent := t.TempDir()
			if err := os.Mkdir(filepath.Join(parent, dir), 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(parent, dir, "t.db")
			db, err := Open(context.Background(), path)
			if err != nil {
				t.Fatalf("Open(%q): %v", path, err)
			}
			defer db.Close()
			if _, err := db.Exec(`CREATE TABLE x (a INTEGER)`); err != nil {
				t.Fatal(err)
			}
			var file string
			if err := db.QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
				t.Fatal(err)
			}
			if file != path {
				t.Errorf("database file = %q, want %q", file, path)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("database not at its path: %v", err)
			}
			var mode string
			var fk int
			if err := db.QueryRow(`SELECT journal_mode FROM pragma_journal_mode`).Scan(&mode); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil {
				t.Fatal(err)
			}
			if mode != "wal" || fk != 1 {
				t.Errorf("journal_mode = %q, foreign_keys = %d; want wal, 1", mode, fk)
			}
		})
	}
}
