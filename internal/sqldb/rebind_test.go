package sqldb

import (
	"fmt"
	"testing"
)

func TestRebind(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT * FROM t WHERE a = ? AND b = ?`, `SELECT * FROM t WHERE a = $1 AND b = $2`},
		{`INSERT INTO t (a, b, c) VALUES (?,?,?)`, `INSERT INTO t (a, b, c) VALUES ($1,$2,$3)`},
		// Literals, doubled quotes inside them, quoted identifiers.
		{`SELECT '?' , ? FROM t`, `SELECT '?' , $1 FROM t`},
		{`SELECT 'it''s ?', ?`, `SELECT 'it''s ?', $1`},
		{`SELECT "we?ird""?", ? FROM "user"`, `SELECT "we?ird""?", $1 FROM "user"`},
		{`SELECT ''?`, `SELECT ''$1`},
		// Comments.
		{"SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2"},
		{"SELECT ? -- trailing?", "SELECT $1 -- trailing?"},
		{`SELECT /* a? /* nested? */ b? */ ?`, `SELECT /* a? /* nested? */ b? */ $1`},
		{`SELECT 10/?`, `SELECT 10/$1`},
		{`SELECT 10-?`, `SELECT 10-$1`},
		// Dollar quoting, and what is not dollar quoting.
		{`DO $$ BEGIN PERFORM '?'; END $$; SELECT ?`, `DO $$ BEGIN PERFORM '?'; END $$; SELECT $1`},
		{`SELECT $tag$ a ? $ b $tag$, ?`, `SELECT $tag$ a ? $ b $tag$, $1`},
		{`SELECT a$b, ?`, `SELECT a$b, $1`},
		// $1 is not a dollar quote; mixing it with ? is not supported (?
		// counts from 1 regardless).
		{`SELECT $1, ?`, `SELECT $1, $1`},
		// Unterminated spans swallow the rest rather than guess.
		{`SELECT 'open ?`, `SELECT 'open ?`},
		{`SELECT /* open ?`, `SELECT /* open ?`},
		// Multi-byte text around placeholders.
		{`SELECT 'Vårdguiden?' || ?, "nåt?" = ?`, `SELECT 'Vårdguiden?' || $1, "nåt?" = $2`},
	} {
		if got := Rebind(c.in); got != c.want {
			t.Errorf("Rebind(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestRebindManyPlaceholders(t *testing.T) {
	in, want := "", ""
	for i := 1; i <= 12; i++ {
		in += "?,"
		want += fmt.Sprintf("$%d,", i)
	}
	if got := Rebind(in); got != want {
		t.Fatalf("Rebind = %q, want %q", got, want)
	}
}

// The cache returns what Rebind returns and stops growing at its bound.
func TestRebindCache(t *testing.T) {
	var c rebindCache
	for i := range rebindCacheMax + 10 {
		q := fmt.Sprintf("SELECT %d, ?", i)
		if got, want := c.get(q), fmt.Sprintf("SELECT %d, $1", i); got != want {
			t.Fatalf("get(%q) = %q, want %q", q, got, want)
		}
	}
	if got := c.get("SELECT 0, ?"); got != "SELECT 0, $1" {
		t.Fatalf("cached get = %q", got)
	}
	if n := c.n.Load(); n != rebindCacheMax {
		t.Fatalf("cache holds %d entries, want %d", n, rebindCacheMax)
	}
}
