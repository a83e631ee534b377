package pgtest

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Each New is its own empty database, owned by a plain (not super) user,
// on a server configured as the package doc says.
func TestNewIsFreshDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := New(t), New(t)
	if a == b {
		t.Fatalf("two New calls returned the same DSN %q", a)
	}
	u, err := url.Parse(a)
	if err != nil {
		t.Fatal(err)
	}
	if u.Hostname() != "127.0.0.1" || u.Query().Get("sslmode") != "disable" {
		t.Errorf("DSN %q: want host 127.0.0.1 and sslmode=disable", a)
	}
	ca, cb := connect(t, a), connect(t, b)
	if _, err := ca.Exec(ctx, `CREATE TABLE only_in_a (x BIGINT)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := cb.QueryRow(ctx, `SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'only_in_a'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Error("a table made in one database is visible in the other")
	}
	for _, c := range []struct{ setting, want string }{
		{"fsync", "on"},
		{"listen_addresses", "127.0.0.1"},
		{"password_encryption", "scram-sha-256"},
		{"max_connections", "200"},
		{"server_encoding", "UTF8"},
		{"is_superuser", "off"},
	} {
		var got string
		if err := ca.QueryRow(ctx, `SELECT current_setting($1)`, c.setting).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s = %q, want %q", c.setting, got, c.want)
		}
	}
}

// A server of its own survives a kill -9: what was committed before is
// there after Start, on the same port.
func TestStopStartKeepsCommittedData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := Start(t)
	dsn := s.NewDatabase(t)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `CREATE TABLE t (x BIGINT); INSERT INTO t VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	port := s.Port()

	start := time.Now()
	s.Stop()
	t.Logf("stop (SIGKILL) took %v", time.Since(start).Round(time.Millisecond))
	if err := c.Ping(ctx); err == nil {
		t.Fatal("a connection to a stopped server still works")
	}
	c.Close(ctx)
	ctx2, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if c, err := pgx.Connect(ctx2, dsn); err == nil {
		c.Close(ctx)
		t.Fatal("connected to a stopped server")
	}

	start = time.Now()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("start after the kill (crash recovery) took %v", time.Since(start).Round(time.Millisecond))
	if s.Port() != port {
		t.Fatalf("port changed from %d to %d", port, s.Port())
	}
	c2 := connect(t, dsn)
	var x int64
	if err := c2.QueryRow(ctx, `SELECT x FROM t`).Scan(&x); err != nil {
		t.Fatal(err)
	}
	if x != 42 {
		t.Fatalf("x = %d after the restart, want 42", x)
	}
	if err := s.Start(); err == nil {
		t.Fatal("Start of a running server succeeded")
	}
}
