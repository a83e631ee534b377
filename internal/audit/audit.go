// Package audit is callvault's access log. Every decision the archive makes
// — allowed or denied — is appended here, and the archive acts only after
// Append has returned, i.e. after the entry is durable.
//
// The log is a Merkle tree (RFC 6962 hashing, golang.org/x/mod/sumdb/tlog)
// over the stored entry bytes, kept in the catalog database, with signed
// checkpoints (C2SP tlog-checkpoint) that are pushed to witness outboxes
// and served, with the tree, in the C2SP tlog-tiles layout. Changing,
// removing, reordering or cutting off entries is found by Verify, which
// names the first bad index. docs/audit-log.md is the format's spec.
//
// Personal data inside an event (the patient, the free-text emergency
// reason, a reviewer's note) is stored encrypted under the keyring's data
// key; the patient also gets a keyed blind index so per-patient extracts
// need no decryption scan. The tree commits to the encrypted form, so
// outside verifiers check integrity without seeing any patient.
//
// # Storage and durability
//
// The log is stored through package sqldb, in SQLite (the embedded
// default: the catalog's database file) or PostgreSQL; the tree, entries
// and checkpoints are the same bytes on both. Append returns nil only after
// the transaction holding the entry has committed, and a commit is durable:
//
//   - SQLite runs in WAL mode with synchronous=FULL (sqlitedb.Open): COMMIT
//     fsyncs the write-ahead log before it returns.
//   - PostgreSQL's COMMIT returns after its WAL record is flushed to disk as
//     long as synchronous_commit is not off (its default is on). Nothing in
//     callvault turns it off, and the append transaction sets it on for
//     itself (SET LOCAL) should the connection have it off — from the
//     server's, database's or role's settings or a DSN parameter — so an
//     acknowledged entry survives a crash of the server. Values stronger
//     than on (remote_apply for a synchronous standby) are kept. The server
//     MUST run with fsync on (its default): Open refuses one that does not.
//
// With several serve replicas on one PostgreSQL database, every append
// transaction holds the store's writer lock (an advisory lock) from reading
// the next index to its commit, so indexes stay dense and unique.
package audit

import (
	"context"
	"errors"
	"time"
)

// Outcomes of a decision.
const (
	Allowed = "allowed"
	Denied  = "denied"
)

// Event is one audited decision or act, with the fields HSLF-FS 2016:40
// 4 kap. 9 § asks for: the action, the care unit, the time, the user and the
// patient.
type Event struct {
	Index   int64     // position in the log, from 0; assigned by Append
	Time    time.Time // set by Append if zero
	Action  string    // e.g. "ingest", "search", "read-metadata", "play", "ingest.stored"
	Outcome string    // Allowed or Denied
	Reason  string    // a policy reason code; never personal data
	Flagged bool      // for log follow-up, e.g. emergency access

	User         string // HSA-ID of the principal ("" when unauthenticated)
	CareProvider string // the user's care provider
	CareUnit     string // the user's care unit

	Patient         string // 12-digit personnummer, "" if none; stored encrypted
	RecordingID     string
	Purpose         string
	EmergencyReason string // free text; stored encrypted
	ClientAddr      string // the client's IP address, without port
	CertFingerprint string // SHA-256 of the client certificate (DER), lower-case hex; "" if none
	RequestID       string
	Detail          string // e.g. a byte range or a result count; never personal data
	Note            string // free text of a reviewer (log follow-up); stored encrypted
}

// Appender is the one thing the archive needs of the audit log.
type Appender interface {
	// Append makes e durable. It MUST NOT return nil before the entry is
	// on stable storage; callers act on a request only after a nil return,
	// and deny it otherwise.
	Append(ctx context.Context, e *Event) error
}

// ErrUnavailable wraps every failure to make an entry durable.
var ErrUnavailable = errors.New("audit: log unavailable")

// ErrCorrupt is returned by Verify; the error text names the first bad entry.
var ErrCorrupt = errors.New("audit: log verification failed")

// Protector encrypts personal data and computes blind indexes; the keyring
// (keys.Keyring) implements it.
type Protector interface {
	BlindIndex(kind, value string) []byte
	SealData(label string, plaintext []byte) ([]byte, error)
	OpenData(label string, sealed []byte) ([]byte, error)
}
