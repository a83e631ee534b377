package access

import (
	"context"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"callvault/internal/recording"
	"callvault/internal/sqldb"
)

// Directory is the register of care units, users and systems, and patient
// blocks, kept in SQLite or PostgreSQL (package sqldb). It is the only
// source of roles: a certificate proves who someone is, the directory says
// what they may do.
type Directory struct {
	db *sqldb.DB
}

// directoryMigrations is the schema, append-only. The SQLite text of each
// version is exactly what shipped before the PostgreSQL variants existed.
var directoryMigrations = []sqldb.Migration{{
	SQLite: `CREATE TABLE units (
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
	Postgres: `CREATE TABLE units (
		hsa_id TEXT PRIMARY KEY,
		care_provider TEXT NOT NULL,
		name TEXT NOT NULL,
		created_at BIGINT NOT NULL
	);
	CREATE TABLE principals (
		hsa_id TEXT PRIMARY KEY,
		display_name TEXT NOT NULL,
		care_provider TEXT NOT NULL,
		care_unit TEXT NOT NULL REFERENCES units(hsa_id),
		roles TEXT NOT NULL,
		disabled BIGINT NOT NULL DEFAULT 0,
		created_at BIGINT NOT NULL
	);
	CREATE TABLE blocks (
		patient_index BYTEA NOT NULL,
		care_unit TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		PRIMARY KEY (patient_index, care_unit)
	);`,
}, {
	// v2: patients with protected identity (skyddad identitet), for log
	// follow-up.
	SQLite: `CREATE TABLE protected_patients (
		patient_index BLOB PRIMARY KEY,
		created_at INTEGER NOT NULL
	);`,
	Postgres: `CREATE TABLE protected_patients (
		patient_index BYTEA PRIMARY KEY,
		created_at BIGINT NOT NULL
	);`,
}, {
	// v3: SIP addresses of record of staff, so that a recorded call's
	// agent (docs/siprec.md) is known by HSA-ID.
	SQLite: `CREATE TABLE aors (
		aor TEXT PRIMARY KEY,
		hsa_id TEXT NOT NULL REFERENCES principals(hsa_id),
		created_at INTEGER NOT NULL
	);`,
	Postgres: `CREATE TABLE aors (
		aor TEXT PRIMARY KEY,
		hsa_id TEXT NOT NULL REFERENCES principals(hsa_id),
		created_at BIGINT NOT NULL
	);`,
}}

// ErrExists is returned when adding a unit or principal that is already registered.
var ErrExists = errors.New("access: already registered")

// ErrNotFound is returned for an unregistered unit or principal: looked
// up, changed, or named by a new principal (its care unit) or AOR (its
// principal).
var ErrNotFound = errors.New("access: not registered")

// OpenDirectory opens (creating and migrating) the directory database:
// dsnOrPath is the path of a SQLite file or a postgres:// URL (sqldb.Open).
func OpenDirectory(ctx context.Context, dsnOrPath string) (*Directory, error) {
	db, err := sqldb.Open(ctx, dsnOrPath, "directory")
	if err != nil {
		return nil, fmt.Errorf("access: directory: %w", err)
	}
	if err := sqldb.Migrate(ctx, db, "directory", directoryMigrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("access: directory: %w", err)
	}
	return &Directory{db: db}, nil
}

// Close closes the database.
func (d *Directory) Close() error { return d.db.Close() }

// Snapshot writes a consistent copy of a SQLite directory database to
// path, which must not exist. On PostgreSQL it returns an error wrapping
// sqldb.ErrSnapshotUnsupported: back the database up with its own tools.
func (d *Directory) Snapshot(ctx context.Context, path string) error {
	return d.db.Snapshot(ctx, path)
}

// Unit is a registered care unit (vårdenhet).
type Unit struct {
	HSAID        string
	CareProvider string
	Name         string
}

// Entry is a registered user or system.
type Entry struct {
	HSAID        string
	DisplayName  string
	CareProvider string
	CareUnit     string
	Roles        []Role
	Disabled     bool
}

// AddUnit registers a care unit under a care provider; a unit already
// registered is ErrExists.
func (d *Directory) AddUnit(ctx context.Context, u Unit) error {
	if !recording.ValidHSAID(u.HSAID) || !recording.ValidHSAID(u.CareProvider) {
		return errors.New("access: unit and care provider must be HSA-IDs")
	}
	if strings.TrimSpace(u.Name) == "" {
		return errors.New("access: unit name is required")
	}
	_, err := d.db.ExecContext(ctx, `INSERT INTO units (hsa_id, care_provider, name, created_at) VALUES (?, ?, ?, ?)`,
		u.HSAID, u.CareProvider, u.Name, time.Now().UnixNano())
	return insertError(err, "add unit", "unit "+u.HSAID, "")
}

// UnitKnown reports whether unit is registered under careProvider.
func (d *Directory) UnitKnown(ctx context.Context, careProvider, unit string) (bool, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM units WHERE hsa_id = ? AND care_provider = ?`, unit, careProvider).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("access: look up unit: %w", err)
	}
	return n == 1, nil
}

// Add registers a user or system. Its unit must be registered under its
// care provider (else ErrNotFound), and it needs at least one role. An
// HSA-ID already registered is ErrExists.
func (d *Directory) Add(ctx context.Context, e Entry) error {
	if !recording.ValidHSAID(e.HSAID) {
		return errors.New("access: not an HSA-ID")
	}
	if len(e.Roles) == 0 {
		return errors.New("access: at least one role is required")
	}
	ok, err := d.UnitKnown(ctx, e.CareProvider, e.CareUnit)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: care unit %s under care provider %s", ErrNotFound, e.CareUnit, e.CareProvider)
	}
	roles := make([]string, len(e.Roles))
	for i, r := range e.Roles {
		if _, err := ParseRole(string(r)); err != nil {
			return err
		}
		roles[i] = string(r)
	}
	_, err = d.db.ExecContext(ctx, `INSERT INTO principals (hsa_id, display_name, care_provider, care_unit, roles, disabled, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, e.HSAID, e.DisplayName, e.CareProvider, e.CareUnit, strings.Join(roles, ","), e.Disabled, time.Now().UnixNano())
	return insertError(err, "add principal", e.HSAID, "care unit "+e.CareUnit)
}

// SetDisabled disables or re-enables a principal. A disabled principal is
// refused as if unregistered.
func (d *Directory) SetDisabled(ctx context.Context, hsaID string, disabled bool) error {
	res, err := d.db.ExecContext(ctx, `UPDATE principals SET disabled = ? WHERE hsa_id = ?`, disabled, hsaID)
	if err != nil {
		return fmt.Errorf("access: disable: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, hsaID)
	}
	return nil
}

// Lookup returns the entry for hsaID, ErrNotFound if there is none.
func (d *Directory) Lookup(ctx context.Context, hsaID string) (*Entry, error) {
	var e Entry
	var roles string
	err := d.db.QueryRowContext(ctx, `SELECT hsa_id, display_name, care_provider, care_unit, roles, disabled FROM principals WHERE hsa_id = ?`, hsaID).
		Scan(&e.HSAID, &e.DisplayName, &e.CareProvider, &e.CareUnit, &roles, &e.Disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, hsaID)
	}
	if err != nil {
		return nil, fmt.Errorf("access: look up principal: %w", err)
	}
	for _, r := range strings.Split(roles, ",") {
		e.Roles = append(e.Roles, Role(r))
	}
	return &e, nil
}

// List returns every registered principal, ordered by HSA-ID.
func (d *Directory) List(ctx context.Context) ([]*Entry, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT hsa_id FROM principals ORDER BY hsa_id`)
	if err != nil {
		return nil, fmt.Errorf("access: list: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("access: list: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("access: list: %w", err)
	}
	out := make([]*Entry, 0, len(ids))
	for _, id := range ids {
		e, err := d.Lookup(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Units returns every registered unit, ordered by HSA-ID.
func (d *Directory) Units(ctx context.Context) ([]Unit, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT hsa_id, care_provider, name FROM units ORDER BY hsa_id`)
	if err != nil {
		return nil, fmt.Errorf("access: units: %w", err)
	}
	defer rows.Close()
	var out []Unit
	for rows.Next() {
		var u Unit
		if err := rows.Scan(&u.HSAID, &u.CareProvider, &u.Name); err != nil {
			return nil, fmt.Errorf("access: units: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// Principal authenticates a verified client certificate: it reads the
// HSA-ID and returns the registered, enabled principal.
func (d *Directory) Principal(ctx context.Context, cert *x509.Certificate) (*Principal, error) {
	id, err := HSAIDFromCertificate(cert)
	if err != nil {
		return nil, err
	}
	e, err := d.Lookup(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrUnknownUser
	}
	if err != nil {
		return nil, err
	}
	if e.Disabled {
		return nil, ErrUnknownUser
	}
	return &Principal{HSAID: e.HSAID, CareProvider: e.CareProvider, CareUnit: e.CareUnit, Roles: e.Roles, CertFingerprint: Fingerprint(cert)}, nil
}

// AddBlock records that the patient (by blind index) blocks access from
// careUnit. Adding an existing block is not an error.
func (d *Directory) AddBlock(ctx context.Context, patientIndex []byte, careUnit string) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO blocks (patient_index, care_unit, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		patientIndex, careUnit, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("access: add block: %w", err)
	}
	return nil
}

// RemoveBlock lifts a block.
func (d *Directory) RemoveBlock(ctx context.Context, patientIndex []byte, careUnit string) error {
	if _, err := d.db.ExecContext(ctx, `DELETE FROM blocks WHERE patient_index = ? AND care_unit = ?`, patientIndex, careUnit); err != nil {
		return fmt.Errorf("access: remove block: %w", err)
	}
	return nil
}

// Blocked reports whether the patient blocks access from careUnit.
func (d *Directory) Blocked(ctx context.Context, patientIndex []byte, careUnit string) (bool, error) {
	if len(patientIndex) == 0 {
		return false, nil
	}
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM blocks WHERE patient_index = ? AND care_unit = ?`, patientIndex, careUnit).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("access: look up block: %w", err)
	}
	return n > 0, nil
}

// SetProtected records (on) or removes (off) that the patient (by blind
// index) has a protected identity: every access to them is a finding in the
// log follow-up. Setting what is already set is not an error.
func (d *Directory) SetProtected(ctx context.Context, patientIndex []byte, on bool) error {
	var err error
	if on {
		_, err = d.db.ExecContext(ctx, `INSERT INTO protected_patients (patient_index, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING`,
			patientIndex, time.Now().UnixNano())
	} else {
		_, err = d.db.ExecContext(ctx, `DELETE FROM protected_patients WHERE patient_index = ?`, patientIndex)
	}
	if err != nil {
		return fmt.Errorf("access: set protected identity: %w", err)
	}
	return nil
}

// Protected reports whether the patient has a protected identity.
func (d *Directory) Protected(ctx context.Context, patientIndex []byte) (bool, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM protected_patients WHERE patient_index = ?`, patientIndex).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("access: look up protected identity: %w", err)
	}
	return n > 0, nil
}

// insertError maps the error of an INSERT: a duplicate key is ErrExists
// (naming exists), a reference to a missing row ErrNotFound (naming
// missing, the referenced unit or principal), anything else an error of
// op.
func insertError(err error, op, exists, missing string) error {
	switch {
	case err == nil:
		return nil
	case sqldb.IsUniqueViolation(err):
		if exists == "" {
			return ErrExists
		}
		return fmt.Errorf("%w: %s", ErrExists, exists)
	case sqldb.IsForeignKeyViolation(err):
		if missing == "" {
			return ErrNotFound
		}
		return fmt.Errorf("%w: %s", ErrNotFound, missing)
	}
	return fmt.Errorf("access: %s: %w", op, err)
}

// NormalizeAOR returns the comparable form of a SIP address of record:
// scheme and host lower-cased, URI parameters, headers and a display name's
// angle brackets dropped ("<sip:Nurse@Example.SE;transport=tls>" →
// "sip:Nurse@example.se"). The user part keeps its case, as RFC 3261 asks.
func NormalizeAOR(aor string) string {
	s := strings.TrimSpace(aor)
	if i := strings.IndexByte(s, '<'); i >= 0 {
		s = s[i+1:]
		if j := strings.IndexByte(s, '>'); j >= 0 {
			s = s[:j]
		}
	}
	if i := strings.IndexAny(s, ";?"); i >= 0 {
		s = s[:i]
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok {
		return s
	}
	user, host, hasUser := strings.Cut(rest, "@")
	if !hasUser {
		return strings.ToLower(scheme) + ":" + strings.ToLower(rest)
	}
	return strings.ToLower(scheme) + ":" + user + "@" + strings.ToLower(host)
}

// AddAOR registers aor (normalized by NormalizeAOR) as the SIP address of
// record of the principal hsaID, who must be registered (else
// ErrNotFound). An AOR already registered is ErrExists.
func (d *Directory) AddAOR(ctx context.Context, aor, hsaID string) error {
	n := NormalizeAOR(aor)
	if !strings.HasPrefix(n, "sip:") && !strings.HasPrefix(n, "sips:") && !strings.HasPrefix(n, "tel:") {
		return fmt.Errorf("access: add aor: not a sip:, sips: or tel: URI")
	}
	if _, err := d.Lookup(ctx, hsaID); err != nil {
		return err
	}
	_, err := d.db.ExecContext(ctx, `INSERT INTO aors (aor, hsa_id, created_at) VALUES (?, ?, ?)`, n, hsaID, time.Now().UnixNano())
	// The AOR is not named in errors: it may hold a phone number.
	return insertError(err, "add aor", "", hsaID)
}

// ByAOR returns the HSA-ID of the enabled principal whose address of record
// is aor (compared after NormalizeAOR), or ErrNotFound.
func (d *Directory) ByAOR(ctx context.Context, aor string) (string, error) {
	var id string
	err := d.db.QueryRowContext(ctx, `SELECT a.hsa_id FROM aors a JOIN principals p ON p.hsa_id = a.hsa_id
		WHERE a.aor = ? AND p.disabled = 0`, NormalizeAOR(aor)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("access: aor lookup: %w", err)
	}
	return id, nil
}
