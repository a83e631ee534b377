package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"callvault/internal/catalog"
	"callvault/internal/recording"
	"callvault/internal/seal"
	"callvault/internal/site"
)

// Recovery records (docs/format.md, "Recovery record"): beside each blob,
// both sites hold a small object from which the recording's catalog row
// can be rebuilt with the archive key, so a lost catalog is recoverable
// from the sites alone.

const (
	recoveryMagic = "CVREC1\n"
	recoveryLabel = "recovery/catalog-row"
	// maxRecovery bounds a recovery record read back from a site.
	maxRecovery = 1 << 20
)

// RecoveryName is the object name of recording id's recovery record for
// key epoch epoch: the first 16 bytes of SHA-256("callvault recovery v1\x00"
// || id || "\x00" || epoch in decimal), in hex. It is a valid blob name
// that reveals nothing about the recording.
func RecoveryName(id string, epoch int) string {
	h := sha256.New()
	h.Write([]byte("callvault recovery v1\x00"))
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(epoch)))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// recoveryRow is the sealed part of a recovery record: the catalog row
// without its wrapped key and epoch, which precede it in the clear.
type recoveryRow struct {
	ID             string    `json:"id"`
	CallID         string    `json:"call_id"`
	CareProvider   string    `json:"care_provider"`
	CareUnit       string    `json:"care_unit"`
	Staff          []string  `json:"staff"`
	StartedAt      time.Time `json:"started_at"`
	EndedAt        time.Time `json:"ended_at"`
	Direction      string    `json:"direction"`
	PrivacyNotice  string    `json:"privacy_notice"`
	PatientIndex   []byte    `json:"patient_index"`
	PatientSealed  []byte    `json:"patient_sealed"`
	CallerIndex    []byte    `json:"caller_index"`
	CallerSealed   []byte    `json:"caller_sealed"`
	Format         string    `json:"format"`
	ContentType    string    `json:"content_type"`
	AudioBytes     int64     `json:"audio_bytes"`
	BlobBytes      int64     `json:"blob_bytes"`
	BlobSHA256     []byte    `json:"blob_sha256"`
	CreatedAt      time.Time `json:"created_at"`
	RetentionUntil time.Time `json:"retention_until"`
	SourceIndex    []byte    `json:"source_index,omitempty"`
	Incomplete     bool      `json:"incomplete,omitempty"`
	CaptureStats   string    `json:"capture_stats,omitempty"`
}

// encodeRecovery returns rec's recovery record, the row sealed under fk.
func encodeRecovery(rec *catalog.Recording, fk *seal.FileKey) ([]byte, error) {
	row := recoveryRow{rec.ID, rec.CallID, rec.CareProvider, rec.CareUnit, rec.Staff, rec.StartedAt, rec.EndedAt, rec.Direction,
		rec.PrivacyNotice, rec.PatientIndex, rec.PatientSealed, rec.CallerIndex, rec.CallerSealed, rec.Format, rec.ContentType,
		rec.AudioBytes, rec.BlobBytes, rec.BlobSHA256, rec.CreatedAt, rec.RetentionUntil, rec.SourceIndex,
		rec.Incomplete, rec.CaptureStats}
	plain, err := json.Marshal(row)
	if err != nil {
		return nil, err
	}
	sealed, err := fk.SealField(recoveryLabel, plain)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(recoveryMagic)
	b.WriteString(rec.ID)
	binary.Write(&b, binary.BigEndian, uint32(rec.KeyEpoch))
	binary.Write(&b, binary.BigEndian, uint32(len(rec.WrappedKey)))
	b.Write(rec.WrappedKey)
	b.Write(sealed)
	return b.Bytes(), nil
}

// recoveryHeader is the clear part of a recovery record.
type recoveryHeader struct {
	ID      string
	Epoch   int
	Wrapped []byte
	Sealed  []byte
}

var errRecoveryFormat = errors.New("archive: not a valid recovery record")

// recoveryFixed is the size of a recovery record's fixed header: magic,
// recording ID, epoch, wrapped key length.
const recoveryFixed = len(recoveryMagic) + 32 + 8

// parseRecoveryHeader reads the fixed header at the start of b.
func parseRecoveryHeader(b []byte) (id string, epoch, wrappedLen int, err error) {
	if len(b) < recoveryFixed || string(b[:len(recoveryMagic)]) != recoveryMagic {
		return "", 0, 0, errRecoveryFormat
	}
	id = string(b[len(recoveryMagic) : len(recoveryMagic)+32])
	if !recording.ValidID(id) {
		return "", 0, 0, errRecoveryFormat
	}
	return id, int(binary.BigEndian.Uint32(b[recoveryFixed-8:])), int(binary.BigEndian.Uint32(b[recoveryFixed-4:])), nil
}

func parseRecovery(b []byte) (*recoveryHeader, error) {
	id, epoch, n, err := parseRecoveryHeader(b)
	if err != nil {
		return nil, err
	}
	if n > len(b)-recoveryFixed {
		return nil, errRecoveryFormat
	}
	return &recoveryHeader{ID: id, Epoch: epoch, Wrapped: b[recoveryFixed : recoveryFixed+n], Sealed: b[recoveryFixed+n:]}, nil
}

// putObject writes data under name to both sites; a site that already
// holds it is fine. It fails only if no site holds it afterwards.
func (s *Service) putObject(ctx context.Context, name string, data []byte) error {
	up, err := s.sites.Create(ctx, name)
	if errors.Is(err, site.ErrExists) {
		return nil // written before an interruption
	}
	if err != nil {
		return err
	}
	defer up.Abort()
	if _, err := up.Write(data); err != nil {
		return err
	}
	_, missing, err := up.Commit()
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		// The scrubber copies it from the other site later.
		s.log.WarnContext(ctx, "recovery record held by one site only", "missing", missing)
	}
	return nil
}

// writeRecovery stores rec's recovery record on both sites.
func (s *Service) writeRecovery(ctx context.Context, rec *catalog.Recording, fk *seal.FileKey) error {
	data, err := encodeRecovery(rec, fk)
	if err != nil {
		return err
	}
	return s.putObject(ctx, RecoveryName(rec.ID, rec.KeyEpoch), data)
}

// RecoverReport says what RecoverCatalog found.
type RecoverReport struct {
	Records    int      `json:"records_read"`
	Recordings int      `json:"recordings_restored"`
	Pending    int      `json:"copies_queued_for_repair"`
	Failed     []string `json:"unreadable_objects,omitempty"` // site:name, at most 100
}

// RecoverCatalog rebuilds the catalog's recording rows from the recovery
// records on the sites: each is unwrapped with the keyring, its sealed row
// opened and checked against its header, and inserted (the newest epoch's
// record where several exist). A site whose blob is missing gets a
// pending-replication entry. Recordings already in the catalog are left
// as they are. Legal holds, deletion decisions and tombstones are not on
// the sites; they come back only from a backup. Deleted recordings have no
// recovery record and stay deleted.
func (s *Service) RecoverCatalog(ctx context.Context) (*RecoverReport, error) {
	rep := &RecoverReport{}
	best := map[string]*catalog.Recording{}
	for _, st := range s.sites.Sites() {
		var names []string
		if err := st.List(ctx, func(b site.BlobInfo) error {
			if b.Size <= maxRecovery {
				names = append(names, b.Name)
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStorage, err)
		}
		for _, name := range names {
			rec, err := s.readRecovery(ctx, st, name)
			if errors.Is(err, errRecoveryFormat) {
				continue // a blob, not a record
			}
			if err != nil {
				if len(rep.Failed) < 100 {
					rep.Failed = append(rep.Failed, st.Name()+":"+name)
				}
				s.log.WarnContext(ctx, "recovery record unreadable", "site", st.Name(), "object", name, "err", err)
				continue
			}
			rep.Records++
			if b := best[rec.ID]; b == nil || rec.KeyEpoch > b.KeyEpoch {
				best[rec.ID] = rec
			}
		}
	}
	for id, rec := range best {
		var pending []string
		for _, st := range s.sites.Sites() {
			if n, err := st.Stat(ctx, id); err != nil || n != rec.BlobBytes {
				pending = append(pending, st.Name())
			}
		}
		if len(pending) == len(s.sites.Sites()) {
			s.log.ErrorContext(ctx, "recovery record without a blob on any site; not restored", "recording", id)
			continue
		}
		err := s.cat.Insert(ctx, rec, pending)
		if errors.Is(err, catalog.ErrExists) {
			continue
		}
		if err != nil {
			return rep, fmt.Errorf("%w: %w", ErrStorage, err)
		}
		rep.Recordings++
		rep.Pending += len(pending)
	}
	return rep, nil
}

// readRecovery reads and opens the recovery record name on st.
func (s *Service) readRecovery(ctx context.Context, st site.Store, name string) (*catalog.Recording, error) {
	b, err := st.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	head := make([]byte, len(recoveryMagic))
	if _, err := b.ReadAt(head, 0); err != nil || string(head) != recoveryMagic {
		return nil, errRecoveryFormat
	}
	data, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
	if err != nil {
		return nil, err
	}
	h, err := parseRecovery(data)
	if err != nil {
		return nil, err
	}
	if RecoveryName(h.ID, h.Epoch) != name {
		return nil, fmt.Errorf("recovery record %s names another recording or epoch", name)
	}
	id, err := s.keys.Identity(h.Epoch)
	if err != nil {
		return nil, err
	}
	fk, err := seal.Unwrap(h.Wrapped, id)
	if err != nil {
		return nil, err
	}
	plain, err := fk.OpenField(recoveryLabel, h.Sealed)
	if err != nil {
		return nil, err
	}
	var row recoveryRow
	if err := json.Unmarshal(plain, &row); err != nil {
		return nil, err
	}
	if row.ID != h.ID {
		return nil, fmt.Errorf("recovery record %s: sealed row belongs to another recording", name)
	}
	return &catalog.Recording{ID: h.ID, CallID: row.CallID, CareProvider: row.CareProvider, CareUnit: row.CareUnit,
		Staff: row.Staff, StartedAt: row.StartedAt, EndedAt: row.EndedAt, Direction: row.Direction, PrivacyNotice: row.PrivacyNotice,
		PatientIndex: row.PatientIndex, PatientSealed: row.PatientSealed, CallerIndex: row.CallerIndex, CallerSealed: row.CallerSealed,
		Format: row.Format, ContentType: row.ContentType, AudioBytes: row.AudioBytes, BlobBytes: row.BlobBytes, BlobSHA256: row.BlobSHA256,
		KeyEpoch: h.Epoch, WrappedKey: h.Wrapped, CreatedAt: row.CreatedAt, RetentionUntil: row.RetentionUntil,
		SourceIndex: row.SourceIndex, Incomplete: row.Incomplete, CaptureStats: row.CaptureStats}, nil
}

// recoveryNames lists the names recording id's recovery records can have,
// one per epoch up to the current one.
func (s *Service) recoveryNames(id string) []string {
	var out []string
	for e := 1; e <= s.keys.Current().ID; e++ {
		out = append(out, RecoveryName(id, e))
	}
	return out
}

// ensureRecovery makes site to hold rec's current recovery record, copied
// from another site that has it (byte for byte, verified by digest).
func (s *Service) ensureRecovery(ctx context.Context, rec *catalog.Recording, to string) error {
	name := RecoveryName(rec.ID, rec.KeyEpoch)
	for _, st := range s.sites.Sites() {
		if st.Name() == to {
			continue
		}
		sum, err := objectDigest(ctx, st, name)
		if err != nil {
			continue
		}
		return s.sites.Repair(ctx, name, to, sum)
	}
	return fmt.Errorf("recovery record of %s: no other site holds it", rec.ID)
}
