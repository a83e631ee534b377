package archive

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"callvault/internal/access"
	"callvault/internal/audio"
	"callvault/internal/audit"
	"callvault/internal/catalog"
	"callvault/internal/keys"
	"callvault/internal/recording"
	"callvault/internal/site"
)

const (
	prov  = "SE9999990001-VG01"
	unitA = "SE9999990001-VE0A"
)

var (
	capture = &access.Principal{HSAID: "SE9999990001-CAP1", CareProvider: prov, CareUnit: unitA, Roles: []access.Role{access.RoleCapture}}
	nurse   = &access.Principal{HSAID: "SE9999990001-N0A1", CareProvider: prov, CareUnit: unitA, Roles: []access.Role{access.RoleClinician}}
)

// fixture is a Service on real SQLite files and real filesystem sites.
type fixture struct {
	svc          *Service
	cat          *catalog.DB
	log          *audit.Log
	dir          string
	siteA, siteB string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{dir: t.TempDir()}
	kr, err := keys.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if f.cat, err = catalog.Open(ctx, filepath.Join(f.dir, "catalog.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.cat.Close() })
	d, err := access.OpenDirectory(ctx, filepath.Join(f.dir, "directory.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.AddUnit(ctx, access.Unit{HSAID: unitA, CareProvider: prov, Name: "A"}); err != nil {
		t.Fatal(err)
	}
	if f.log, err = audit.Open(ctx, filepath.Join(f.dir, "catalog.db"), kr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.log.Close() })
	f.siteA, f.siteB = filepath.Join(f.dir, "site-a"), filepath.Join(f.dir, "site-b")
	a, err := site.NewFS(ctx, site.FSConfig{Name: "a", Dir: f.siteA, Jurisdiction: "SE"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := site.NewFS(ctx, site.FSConfig{Name: "b", Dir: f.siteB, Jurisdiction: "SE"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := site.NewReplicator(a, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.svc, err = New(Config{Catalog: f.cat, Sites: rep, Keys: kr, Directory: d, Audit: f.log})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func md() recording.Metadata {
	start := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	return recording.Metadata{CallID: "c1", CareProvider: prov, CareUnit: unitA, Patient: "201701102384",
		Staff: []string{nurse.HSAID}, StartedAt: start, EndedAt: start.Add(time.Minute), Direction: recording.Inbound}
}

func wav(t *testing.T, seconds int) []byte {
	t.Helper()
	var buf bytes.Buffer
	n := 8000 * seconds
	if err := audio.WriteWAV(&buf, audio.MuLaw, 8000, [][]int16{audio.Tone(440, 8000, n, 9000), audio.Tone(550, 8000, n, 9000)}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestIngestAndPlay(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	w := wav(t, 5)
	id, err := f.svc.Ingest(ctx, Caller{Principal: capture}, md(), bytes.NewReader(w))
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.svc.OpenAudio(ctx, Caller{Principal: nurse}, Access{Purpose: "care"}, id, "range=full")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	got, err := io.ReadAll(io.NewSectionReader(a, 0, a.Size()))
	if err != nil || !bytes.Equal(got, w) {
		t.Fatalf("played back %d bytes (%v), want the %d uploaded", len(got), err, len(w))
	}
	// Audit: ingest, ingest.stored, play — in that order.
	var actions []string
	f.log.Read(ctx, 0, func(e *audit.Event) error { actions = append(actions, e.Action+"/"+e.Outcome); return nil })
	want := []string{"ingest/allowed", "ingest.stored/allowed", "play/allowed"}
	if len(actions) != 3 || actions[0] != want[0] || actions[1] != want[1] || actions[2] != want[2] {
		t.Fatalf("audit %v, want %v", actions, want)
	}
}

// When the audit log cannot be written, nothing is stored and nothing is served.
func TestFailsClosedWithoutAudit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, err := f.svc.Ingest(ctx, Caller{Principal: capture}, md(), bytes.NewReader(wav(t, 1)))
	if err != nil {
		t.Fatal(err)
	}
	f.log.Close() // the audit log is gone
	if _, err := f.svc.OpenAudio(ctx, Caller{Principal: nurse}, Access{Purpose: "care"}, id, ""); !errors.Is(err, ErrAuditUnavailable) {
		t.Fatalf("play without audit: %v", err)
	}
	if _, err := f.svc.Get(ctx, Caller{Principal: nurse}, Access{Purpose: "care"}, id); !errors.Is(err, ErrAuditUnavailable) {
		t.Fatalf("metadata without audit: %v", err)
	}
	if _, err := f.svc.Search(ctx, Caller{Principal: nurse}, Access{Purpose: "care"}, Query{Patient: "201701102384"}); !errors.Is(err, ErrAuditUnavailable) {
		t.Fatalf("search without audit: %v", err)
	}
	if _, err := f.svc.Ingest(ctx, Caller{Principal: capture}, md(), bytes.NewReader(wav(t, 1))); !errors.Is(err, ErrAuditUnavailable) {
		t.Fatalf("ingest without audit: %v", err)
	}
	if n, _ := f.cat.Count(ctx); n != 1 {
		t.Fatalf("%d recordings, want 1", n)
	}
}

// With site B broken, ingest is acknowledged with a durable pending entry;
// when B returns, repair copies the blob and clears the backlog.
func TestOneSiteDownThenRepair(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// Break site B for real: its directory becomes a file.
	if err := os.RemoveAll(f.siteB); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.siteB, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := wav(t, 3)
	var ids []string
	for range 3 {
		id, err := f.svc.Ingest(ctx, Caller{Principal: capture}, md(), bytes.NewReader(w))
		if err != nil {
			t.Fatalf("ingest with site B down: %v", err)
		}
		ids = append(ids, id)
	}
	st, err := f.svc.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.ReplicationPending != 3 || st.Sites[1].OK {
		t.Fatalf("status %+v, want 3 pending and site b not ok", st)
	}
	if n, left, _ := f.svc.RepairPending(ctx); n != 0 || left != 3 {
		t.Fatalf("repair while down: %d repaired, %d left", n, left)
	}
	// Site B returns.
	os.Remove(f.siteB)
	if err := os.MkdirAll(f.siteB, 0o700); err != nil {
		t.Fatal(err)
	}
	n, left, err := f.svc.RepairPending(ctx)
	if err != nil || n != 3 || left != 0 {
		t.Fatalf("repair: %d repaired, %d left, %v", n, left, err)
	}
	for _, id := range ids {
		a, _ := os.ReadFile(filepath.Join(f.siteA, id[:2], id+".blob"))
		b, err := os.ReadFile(filepath.Join(f.siteB, id[:2], id+".blob"))
		if err != nil || !bytes.Equal(a, b) || len(a) == 0 {
			t.Fatalf("site b copy of %s: %v", id, err)
		}
	}
}
