package catalog

// oldMigrations is the catalog's SQLite schema exactly as it shipped before
// package sqldb (git show 82ceb90:internal/catalog/*.go), applied in
// TestOpensOldSQLiteFile through sqlitedb.Migrate as the old binary did.
// Never edit it: it stands for data directories that exist.
var oldMigrations = []string{
	`CREATE TABLE recordings (
		id TEXT PRIMARY KEY,
		call_id TEXT NOT NULL,
		care_provider TEXT NOT NULL,
		care_unit TEXT NOT NULL,
		started_at INTEGER NOT NULL,
		ended_at INTEGER NOT NULL,
		direction TEXT NOT NULL,
		privacy_notice TEXT NOT NULL,
		patient_index BLOB,
		patient_sealed BLOB,
		caller_index BLOB,
		caller_sealed BLOB,
		format TEXT NOT NULL,
		content_type TEXT NOT NULL,
		audio_bytes INTEGER NOT NULL,
		blob_bytes INTEGER NOT NULL,
		blob_sha256 BLOB NOT NULL,
		key_epoch INTEGER NOT NULL,
		wrapped_key BLOB NOT NULL,
		created_at INTEGER NOT NULL
	);
	CREATE INDEX recordings_patient ON recordings (care_provider, patient_index, started_at) WHERE patient_index IS NOT NULL;
	CREATE INDEX recordings_caller ON recordings (care_provider, caller_index) WHERE caller_index IS NOT NULL;
	CREATE INDEX recordings_unit_time ON recordings (care_unit, started_at);
	CREATE INDEX recordings_time ON recordings (started_at);
	CREATE TABLE recording_staff (
		recording_id TEXT NOT NULL REFERENCES recordings(id),
		position INTEGER NOT NULL,
		staff TEXT NOT NULL,
		PRIMARY KEY (recording_id, position)
	);
	CREATE INDEX recording_staff_staff ON recording_staff (staff);
	CREATE TABLE pending_replication (
		recording_id TEXT NOT NULL REFERENCES recordings(id),
		site TEXT NOT NULL,
		since INTEGER NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0,
		last_error TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (recording_id, site)
	);`,
	`ALTER TABLE recordings ADD COLUMN retention_until INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX recordings_retention ON recordings (retention_until);
	CREATE TABLE legal_holds (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		recording_id TEXT NOT NULL,
		reference TEXT NOT NULL,
		set_by TEXT NOT NULL,
		set_at INTEGER NOT NULL,
		released_by TEXT NOT NULL DEFAULT '',
		released_at INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX legal_holds_recording ON legal_holds (recording_id);
	CREATE TABLE deletion_decisions (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		kind TEXT NOT NULL,
		care_provider TEXT NOT NULL,
		case_number TEXT NOT NULL,
		decided_on TEXT NOT NULL,
		document_sha256 BLOB,
		registered_by TEXT NOT NULL,
		registered_at INTEGER NOT NULL,
		approved_by TEXT NOT NULL DEFAULT '',
		approved_at INTEGER NOT NULL DEFAULT 0,
		state TEXT NOT NULL
	);
	CREATE TABLE deletion_items (
		decision_id INTEGER NOT NULL REFERENCES deletion_decisions(id),
		position INTEGER NOT NULL,
		recording_id TEXT NOT NULL,
		PRIMARY KEY (decision_id, position)
	);
	CREATE INDEX deletion_items_recording ON deletion_items (recording_id);
	CREATE TABLE tombstones (
		recording_id TEXT PRIMARY KEY,
		care_provider TEXT NOT NULL,
		decision_id INTEGER NOT NULL REFERENCES deletion_decisions(id),
		kind TEXT NOT NULL,
		case_number TEXT NOT NULL,
		registered_by TEXT NOT NULL,
		approved_by TEXT NOT NULL,
		deleted_at INTEGER NOT NULL
	);
	CREATE TABLE pending_deletion (
		recording_id TEXT NOT NULL,
		site TEXT NOT NULL,
		since INTEGER NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0,
		last_error TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (recording_id, site)
	);`,
	`CREATE TABLE lost_recordings (
		recording_id TEXT PRIMARY KEY REFERENCES recordings(id),
		since INTEGER NOT NULL,
		detail TEXT NOT NULL
	);`,
	`ALTER TABLE recordings ADD COLUMN source_index BLOB;
	CREATE UNIQUE INDEX recordings_source ON recordings (care_provider, source_index) WHERE source_index IS NOT NULL;
	ALTER TABLE tombstones ADD COLUMN source_index BLOB;
	CREATE INDEX tombstones_source ON tombstones (care_provider, source_index) WHERE source_index IS NOT NULL;`,
	`ALTER TABLE recordings ADD COLUMN incomplete INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE recordings ADD COLUMN capture_stats TEXT NOT NULL DEFAULT '';
	CREATE INDEX recordings_call ON recordings (care_provider, call_id);
	CREATE TABLE capture_sessions (
		recording_id TEXT PRIMARY KEY,
		care_provider TEXT NOT NULL,
		care_unit TEXT NOT NULL,
		started_at INTEGER NOT NULL,
		ended_at INTEGER NOT NULL DEFAULT 0,
		state TEXT NOT NULL,
		detail TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX capture_sessions_state ON capture_sessions (state, started_at);
	CREATE TABLE patient_links (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		recording_id TEXT NOT NULL REFERENCES recordings(id),
		linked_at INTEGER NOT NULL,
		linked_by TEXT NOT NULL,
		previous_index BLOB,
		previous_sealed BLOB
	);
	CREATE INDEX patient_links_recording ON patient_links (recording_id, id);`,
}
