package access

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"callvault/internal/sqldb"
	"callvault/internal/sqldb/pgtest"
	"callvault/internal/sqlitedb"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The directory conformance suite: every test runs on a fresh directory
// of each engine. None may be skipped.

const (
	provA = "SE9999990001-VG01"
	provB = "SE9999990002-VG02"
	unitA = "SE9999990001-VE0A"
	unitB = "SE9999990001-VE0B"
	nurse = "SE9999990001-N0A1"
	admin = "SE9999990001-ADM1"
)

// forEachEngine runs f as a parallel subtest per engine, on a new
// directory with units A and B of provider A registered.
func forEachEngine(t *testing.T, f func(t *testing.T, d *Directory)) {
	t.Helper()
	run := func(t *testing.T, dsn string) {
		d := openDirectory(t, dsn)
		ctx := context.Background()
		for _, u := range []Unit{{unitA, provA, "Unit A"}, {unitB, provA, "Unit B"}} {
			if err := d.AddUnit(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		f(t, d)
	}
	pgtest.ForEachEngine(t, "directory.db", run)
}

func openDirectory(t *testing.T, dsn string) *Directory {
	t.Helper()
	d, err := OpenDirectory(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestDirectoryUnits(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d *Directory) {
		ctx := context.Background()
		err := d.AddUnit(ctx, Unit{unitA, provA, "Again"})
		if !errors.Is(err, ErrExists) {
			t.Errorf("AddUnit of a registered unit = %v, want ErrExists", err)
		}
		for _, u := range []Unit{{"not-an-id", provA, "X"}, {"SE9999990001-VE0C", "nope", "X"}, {"SE9999990001-VE0C", provA, "  "}} {
			if err := d.AddUnit(ctx, u); err == nil || errors.Is(err, ErrExists) {
				t.Errorf("AddUnit(%+v) = %v, want a validation error", u, err)
			}
		}
		for _, c := range []struct {
			prov, unit string
			want       bool
		}{{provA, unitA, true}, {provA, unitB, true}, {provB, unitA, false}, {provA, "SE9999990001-VE0C", false}} {
			got, err := d.UnitKnown(ctx, c.prov, c.unit)
			if err != nil || got != c.want {
				t.Errorf("UnitKnown(%s, %s) = %v, %v; want %v", c.prov, c.unit, got, err, c.want)
			}
		}
		if err := d.AddUnit(ctx, Unit{"SE9999990002-VE01", provB, "Vårdcentral Å"}); err != nil {
			t.Fatal(err)
		}
		units, err := d.Units(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []Unit{{unitA, provA, "Unit A"}, {unitB, provA, "Unit B"}, {"SE9999990002-VE01", provB, "Vårdcentral Å"}}
		if !reflect.DeepEqual(units, want) {
			t.Errorf("Units = %+v, want %+v", units, want)
		}
	})
}

func TestDirectoryPrincipals(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d *Directory) {
		ctx := context.Background()
		n := Entry{HSAID: nurse, DisplayName: "Sköterska Ett", CareProvider: provA, CareUnit: unitA, Roles: []Role{RoleClinician, RoleAuditor}}
		a := Entry{HSAID: admin, DisplayName: "Admin", CareProvider: provA, CareUnit: unitB, Roles: []Role{RoleAdmin}, Disabled: true}
		for _, e := range []Entry{n, a} {
			if err := d.Add(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		got, err := d.Lookup(ctx, nurse)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*got, n) {
			t.Errorf("Lookup = %+v, want %+v", *got, n)
		}
		if got, err := d.Lookup(ctx, admin); err != nil || !got.Disabled {
			t.Errorf("Lookup of a principal added disabled = %+v, %v", got, err)
		}
		if err := d.Add(ctx, n); !errors.Is(err, ErrExists) {
			t.Errorf("Add of a registered principal = %v, want ErrExists", err)
		}
		for name, e := range map[string]Entry{
			"unknown unit":           {HSAID: "SE9999990001-X001", CareProvider: provA, CareUnit: "SE9999990001-VE0Z", Roles: []Role{RoleClinician}},
			"unit of other provider": {HSAID: "SE9999990001-X002", CareProvider: provB, CareUnit: unitA, Roles: []Role{RoleClinician}},
		} {
			if err := d.Add(ctx, e); !errors.Is(err, ErrNotFound) {
				t.Errorf("Add with %s = %v, want ErrNotFound", name, err)
			}
		}
		for name, e := range map[string]Entry{
			"no roles":   {HSAID: "SE9999990001-X003", CareProvider: provA, CareUnit: unitA},
			"bad role":   {HSAID: "SE9999990001-X004", CareProvider: provA, CareUnit: unitA, Roles: []Role{"root"}},
			"bad HSA-ID": {HSAID: "x", CareProvider: provA, CareUnit: unitA, Roles: []Role{RoleClinician}},
		} {
			if err := d.Add(ctx, e); err == nil || errors.Is(err, ErrExists) || errors.Is(err, ErrNotFound) {
				t.Errorf("Add with %s = %v, want a validation error", name, err)
			}
		}
		if _, err := d.Lookup(ctx, "SE9999990001-X001"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Lookup of an unregistered principal = %v, want ErrNotFound", err)
		}

		// SetDisabled both ways; unknown is ErrNotFound.
		for _, off := range []bool{true, false, true} {
			if err := d.SetDisabled(ctx, nurse, off); err != nil {
				t.Fatal(err)
			}
			if got, err := d.Lookup(ctx, nurse); err != nil || got.Disabled != off {
				t.Fatalf("after SetDisabled(%v): %+v, %v", off, got, err)
			}
		}
		if err := d.SetDisabled(ctx, "SE9999990001-X001", true); !errors.Is(err, ErrNotFound) {
			t.Errorf("SetDisabled of an unregistered principal = %v, want ErrNotFound", err)
		}

		list, err := d.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range list {
			ids = append(ids, e.HSAID)
		}
		if want := []string{admin, nurse}; !reflect.DeepEqual(ids, want) {
			t.Errorf("List = %v, want %v", ids, want)
		}
	})
}

func cert(hsaID string) *x509.Certificate {
	return &x509.Certificate{Subject: pkix.Name{SerialNumber: hsaID}, Raw: []byte("der of " + hsaID)}
}

func TestDirectoryPrincipalFromCertificate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d *Directory) {
		ctx := context.Background()
		if err := d.Add(ctx, Entry{HSAID: nurse, DisplayName: "N", CareProvider: provA, CareUnit: unitA, Roles: []Role{RoleClinician}}); err != nil {
			t.Fatal(err)
		}
		c := cert(nurse)
		p, err := d.Principal(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		want := &Principal{HSAID: nurse, CareProvider: provA, CareUnit: unitA, Roles: []Role{RoleClinician}, CertFingerprint: Fingerprint(c)}
		if !reflect.DeepEqual(p, want) {
			t.Errorf("Principal = %+v, want %+v", p, want)
		}
		if _, err := d.Principal(ctx, cert("SE9999990001-X001")); !errors.Is(err, ErrUnknownUser) {
			t.Errorf("Principal of an unregistered HSA-ID = %v, want ErrUnknownUser", err)
		}
		if _, err := d.Principal(ctx, cert(" ")); !errors.Is(err, ErrNoIdentity) {
			t.Errorf("Principal without HSA-ID = %v, want ErrNoIdentity", err)
		}
		if err := d.SetDisabled(ctx, nurse, true); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Principal(ctx, c); !errors.Is(err, ErrUnknownUser) {
			t.Errorf("Principal of a disabled HSA-ID = %v, want ErrUnknownUser", err)
		}
	})
}

// Blind indexes are arbitrary bytes: NUL and invalid UTF-8 included.
var (
	patient1 = []byte{0x00, 0xff, 0xfe, 'p', '1', 0x00}
	patient2 = []byte{0x80, 0x81, 'p', '2'}
)

func TestDirectoryBlocks(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d *Directory) {
		ctx := context.Background()
		blocked := func(idx []byte, unit string) bool {
			t.Helper()
			b, err := d.Blocked(ctx, idx, unit)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		for range 2 { // adding an existing block is not an error
			if err := d.AddBlock(ctx, patient1, unitA); err != nil {
				t.Fatal(err)
			}
		}
		if !blocked(patient1, unitA) || blocked(patient1, unitB) || blocked(patient2, unitA) {
			t.Fatal("block not where it was put, or elsewhere too")
		}
		if blocked(nil, unitA) || blocked([]byte{}, unitA) {
			t.Error("an empty index is blocked")
		}
		if err := d.RemoveBlock(ctx, patient1, unitA); err != nil {
			t.Fatal(err)
		}
		if blocked(patient1, unitA) {
			t.Error("block still there after RemoveBlock")
		}
		if err := d.RemoveBlock(ctx, patient1, unitA); err != nil {
			t.Errorf("RemoveBlock of an absent block = %v", err)
		}
	})
}

func TestDirectoryProtected(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d *Directory) {
		ctx := context.Background()
		protected := func(idx []byte) bool {
			t.Helper()
			p, err := d.Protected(ctx, idx)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		for range 2 { // setting what is set is not an error
			if err := d.SetProtected(ctx, patient1, true); err != nil {
				t.Fatal(err)
			}
		}
		if !protected(patient1) || protected(patient2) {
			t.Fatal("protected identity not where it was put, or elsewhere too")
		}
		for range 2 {
			if err := d.SetProtected(ctx, patient1, false); err != nil {
				t.Fatal(err)
			}
		}
		if protected(patient1) {
			t.Error("still protected after SetProtected(false)")
		}
	})
}

func TestDirectoryAORs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d *Directory) {
		ctx := context.Background()
		if err := d.Add(ctx, Entry{HSAID: nurse, DisplayName: "N", CareProvider: provA, CareUnit: unitA, Roles: []Role{RoleClinician}}); err != nil {
			t.Fatal(err)
		}
		if err := d.AddAOR(ctx, `"Nurse" <SIP:nurse1@Example.SE;transport=tls>`, nurse); err != nil {
			t.Fatal(err)
		}
		for _, aor := range []string{"sip:nurse1@example.se", "<sip:nurse1@EXAMPLE.se>", "Sip:nurse1@example.se;user=phone"} {
			id, err := d.ByAOR(ctx, aor)
			if err != nil || id != nurse {
				t.Errorf("ByAOR(%q) = %q, %v; want %s", aor, id, err, nurse)
			}
		}
		if _, err := d.ByAOR(ctx, "sip:Nurse1@example.se"); !errors.Is(err, ErrNotFound) {
			t.Errorf("ByAOR with the user part in another case = %v, want ErrNotFound", err)
		}
		if err := d.AddAOR(ctx, "sip:nurse1@example.se", nurse); !errors.Is(err, ErrExists) {
			t.Errorf("AddAOR of a registered AOR = %v, want ErrExists", err)
		}
		if err := d.AddAOR(ctx, "tel:+46701234567", "SE9999990001-X001"); !errors.Is(err, ErrNotFound) {
			t.Errorf("AddAOR for an unregistered principal = %v, want ErrNotFound", err)
		}
		if err := d.AddAOR(ctx, "mailto:nurse1@example.se", nurse); err == nil || errors.Is(err, ErrExists) {
			t.Errorf("AddAOR of a mailto: URI = %v, want a validation error", err)
		}
		if err := d.AddAOR(ctx, "tel:+46701234567", nurse); err != nil {
			t.Fatal(err)
		}
		if err := d.SetDisabled(ctx, nurse, true); err != nil {
			t.Fatal(err)
		}
		if _, err := d.ByAOR(ctx, "tel:+46701234567"); !errors.Is(err, ErrNotFound) {
			t.Errorf("ByAOR of a disabled principal = %v, want ErrNotFound", err)
		}
		if _, err := d.ByAOR(ctx, "sip:nobody@example.se"); !errors.Is(err, ErrNotFound) {
			t.Errorf("ByAOR of an unknown AOR = %v, want ErrNotFound", err)
		}
	})
}

func TestNormalizeAOR(t *testing.T) {
	for in, want := range map[string]string{
		`"Nurse" <SIP:Nurse@Example.SE;transport=tls>`: "sip:Nurse@example.se",
		"sips:Agent@HOST.example":                      "sips:Agent@host.example",
		"TEL:+46701234567;phone-context=x":             "tel:+46701234567",
		"sip:Example.SE?subject=x":                     "sip:example.se",
		"  no-scheme  ":                                "no-scheme",
	} {
		if got := NormalizeAOR(in); got != want {
			t.Errorf("NormalizeAOR(%q) = %q, want %q", in, got, want)
		}
	}
}

// The database's own constraints back the checks in Go: were a unit or
// principal to vanish between the check and the insert, the foreign key
// failure is ErrNotFound, a duplicate ErrExists, on both engines.
func TestDirectoryInsertErrors(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d *Directory) {
		ctx := context.Background()
		_, fk := d.db.ExecContext(ctx, `INSERT INTO principals (hsa_id, display_name, care_provider, care_unit, roles, disabled, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, nurse, "N", provA, "SE9999990001-VE0Z", "clinician", false, 1)
		if err := insertError(fk, "add principal", nurse, "care unit SE9999990001-VE0Z"); !errors.Is(err, ErrNotFound) {
			t.Errorf("foreign key failure (%v) maps to %v, want ErrNotFound", fk, err)
		}
		_, fk = d.db.ExecContext(ctx, `INSERT INTO aors (aor, hsa_id, created_at) VALUES (?, ?, ?)`, "sip:x@example.se", "SE9999990001-X001", 1)
		if err := insertError(fk, "add aor", "", "SE9999990001-X001"); !errors.Is(err, ErrNotFound) {
			t.Errorf("foreign key failure (%v) maps to %v, want ErrNotFound", fk, err)
		}
		_, dup := d.db.ExecContext(ctx, `INSERT INTO units (hsa_id, care_provider, name, created_at) VALUES (?, ?, ?, ?)`, unitA, provA, "A", 1)
		if err := insertError(dup, "add unit", "unit "+unitA, ""); !errors.Is(err, ErrExists) {
			t.Errorf("duplicate (%v) maps to %v, want ErrExists", dup, err)
		}
		other := errors.New("disk on fire")
		if err := insertError(other, "add unit", "x", "y"); errors.Is(err, ErrExists) || errors.Is(err, ErrNotFound) || !errors.Is(err, other) {
			t.Errorf("other error maps to %v", err)
		}
	})
}

func TestDirectorySnapshot(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d *Directory) {
		ctx := context.Background()
		if err := d.Add(ctx, Entry{HSAID: nurse, DisplayName: "N", CareProvider: provA, CareUnit: unitA, Roles: []Role{RoleClinician}}); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "snap.db")
		err := d.Snapshot(ctx, path)
		if d.db.Engine() == sqldb.Postgres {
			if !errors.Is(err, sqldb.ErrSnapshotUnsupported) {
				t.Fatalf("Snapshot on PostgreSQL = %v, want ErrSnapshotUnsupported", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		snap := openDirectory(t, path)
		if e, err := snap.Lookup(ctx, nurse); err != nil || e.CareUnit != unitA {
			t.Fatalf("Lookup in the snapshot = %+v, %v", e, err)
		}
	})
}

// Several servers opening one PostgreSQL directory at once migrate it
// once and all work.
func TestDirectoryConcurrentOpen(t *testing.T) {
	dsn := pgtest.New(t)
	const n = 4
	dirs := make([]*Directory, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dirs[i], errs[i] = OpenDirectory(context.Background(), dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer dirs[i].Close()
	}
	if err := dirs[0].AddUnit(context.Background(), Unit{unitA, provA, "A"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := dirs[n-1].UnitKnown(context.Background(), provA, unitA); err != nil || !ok {
		t.Fatalf("UnitKnown on another handle = %v, %v", ok, err)
	}
}

// oldDirectoryMigrations is the SQLite schema as it shipped before sqldb,
// applied here through sqlitedb.Migrate as the old binary did.
var oldDirectoryMigrations = []string{
	`CREATE TABLE units (
		hsa_id TEXT PRIMARY KEY,
		care_provider TEXT NOT NULL,
		name TEXT NOT NULL,
		created_at INTEGER NOT NULL
	);
	CREATE TABLE principals (
		hsa_id TEXT PRIMARY KEY,
		display_name TEXT NOT NULL,
		care_provider TEXT NOT NULL,
		care_unit TEXT NOT NULL REFERENCES units(hsa_id),
		roles TEXT NOT NULL,
		disabled INTEGER NOT NULL DEFAULT 0,
		created_at INTEGER NOT NULL
	);
	CREATE TABLE blocks (
		patient_index BLOB NOT NULL,
		care_unit TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		PRIMARY KEY (patient_index, care_unit)
	);`,
	`CREATE TABLE protected_patients (
		patient_index BLOB PRIMARY KEY,
		created_at INTEGER NOT NULL
	);`,
	`CREATE TABLE aors (
		aor TEXT PRIMARY KEY,
		hsa_id TEXT NOT NULL REFERENCES principals(hsa_id),
		created_at INTEGER NOT NULL
	);`,
}

// A directory.db made by the old code opens with the new and keeps its
// data; the SQLite migrations are unchanged.
func TestDirectoryOpensOldSQLiteFile(t *testing.T) {
	for i, m := range directoryMigrations {
		if m.SQLite != oldDirectoryMigrations[i] {
			t.Errorf("SQLite text of shipped version %d changed", i+1)
		}
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "directory.db")
	old, err := sqlitedb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitedb.Migrate(ctx, old, "directory", oldDirectoryMigrations); err != nil {
		t.Fatal(err)
	}
	// Rows as the old code wrote them (it passed the Go bool to modernc).
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO units (hsa_id, care_provider, name, created_at) VALUES (?, ?, ?, ?)`, []any{unitA, provA, "Unit A", 1}},
		{`INSERT INTO principals (hsa_id, display_name, care_provider, care_unit, roles, disabled, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			[]any{nurse, "N", provA, unitA, "clinician,auditor", false, 2}},
		{`INSERT INTO principals (hsa_id, display_name, care_provider, care_unit, roles, disabled, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			[]any{admin, "A", provA, unitA, "admin", true, 3}},
		{`INSERT OR IGNORE INTO blocks (patient_index, care_unit, created_at) VALUES (?, ?, ?)`, []any{patient1, unitA, 4}},
		{`INSERT OR IGNORE INTO protected_patients (patient_index, created_at) VALUES (?, ?)`, []any{patient2, 5}},
		{`INSERT INTO aors (aor, hsa_id, created_at) VALUES (?, ?, ?)`, []any{"sip:nurse1@example.se", nurse, 6}},
	} {
		if _, err := old.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	d := openDirectory(t, path)
	e, err := d.Lookup(ctx, nurse)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Entry{HSAID: nurse, DisplayName: "N", CareProvider: provA, CareUnit: unitA, Roles: []Role{RoleClinician, RoleAuditor}}); !reflect.DeepEqual(*e, want) {
		t.Errorf("Lookup = %+v, want %+v", *e, want)
	}
	if e, err := d.Lookup(ctx, admin); err != nil || !e.Disabled {
		t.Errorf("Lookup of the disabled admin = %+v, %v", e, err)
	}
	if b, err := d.Blocked(ctx, patient1, unitA); err != nil || !b {
		t.Errorf("Blocked = %v, %v; want true", b, err)
	}
	if p, err := d.Protected(ctx, patient2); err != nil || !p {
		t.Errorf("Protected = %v, %v; want true", p, err)
	}
	if id, err := d.ByAOR(ctx, "sip:nurse1@example.se"); err != nil || id != nurse {
		t.Errorf("ByAOR = %q, %v", id, err)
	}
	// Nothing re-applied, and the new code writes as before.
	var n int
	if err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE name = 'directory'`).Scan(&n); err != nil || n != 3 {
		t.Errorf("directory versions = %d, %v; want 3", n, err)
	}
	if err := d.AddBlock(ctx, patient1, unitA); err != nil {
		t.Errorf("AddBlock of the existing block: %v", err)
	}
	if err := d.Add(ctx, Entry{HSAID: "SE9999990001-N0A2", DisplayName: "N2", CareProvider: provA, CareUnit: unitA, Roles: []Role{RoleClinician}}); err != nil {
		t.Error(err)
	}
}
