package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"callvault/internal/access"
	"callvault/internal/audio"
	"callvault/internal/audit"
	"callvault/internal/catalog"
	"callvault/internal/recording"
	"callvault/internal/seal"
)

// Labels of the recording fields sealed under the file key (docs/format.md).
const (
	fieldPatient = "catalog/patient"
	fieldCaller  = "catalog/caller-number"
	indexPatient = "patient"
	indexCaller  = "caller"
	indexSource  = "source"
)

// DuplicateError is Ingest's answer to a migrated file (metadata with
// SourceSHA256) that the care provider's archive holds already: nothing
// new was stored, and ID is the recording that holds it.
type DuplicateError struct {
	ID string
}

func (e *DuplicateError) Error() string {
	return "archive: the source file is stored already as recording " + e.ID
}

// Ingest validates meta, decides, audits, and stores the audio read from
// audioSrc: it is probed and validated while it streams into a seal writer
// under a fresh file key, the ciphertext goes to both sites at once, and
// the catalog row (with the wrapped key and a pending-replication entry for
// a site that failed) is committed only after the sites have committed.
// It returns the new recording's ID only when all of that is durable.
//
// Bad metadata is an *InvalidError; audio that is not WAV/MP3 wraps
// audio.ErrUnsupported, broken or truncated audio audio.ErrMalformed or
// audio.ErrTruncated; a read error of audioSrc (e.g. a body over the size
// limit) is returned wrapped. In every such case nothing is stored.
//
// Metadata with SourceSHA256 (a migration, docs/import.md) is checked
// against the audio (a mismatch is an *InvalidError for source_sha256) and
// stored at most once per care provider: a source the archive holds
// already is a *DuplicateError naming the recording, one whose recording
// was deleted by a decision a *ConflictError with reason
// "source-deleted". Either way nothing new is stored and the audio need
// not be read.
func (s *Service) Ingest(ctx context.Context, c Caller, meta recording.Metadata, audioSrc io.Reader) (string, error) {
	id, err := recording.NewID()
	if err != nil {
		return "", err
	}
	return s.ingest(ctx, c, id, meta, audioSrc, nil)
}

// ingest is Ingest under a given recording ID; capture, if not nil, marks
// the recording's completeness and carries its capture statistics.
func (s *Service) ingest(ctx context.Context, c Caller, id string, meta recording.Metadata, audioSrc io.Reader, capture *Capture) (string, error) {
	ev := &audit.Event{Action: string(access.ActionIngest), RecordingID: id}
	v, err := meta.Validate(s.now())
	if err != nil {
		var fe *recording.FieldError
		if errors.As(err, &fe) {
			ev.Reason, ev.Detail = "invalid-metadata", "field="+fe.Field
			return "", s.deny(ctx, c, ev, &InvalidError{Field: fe.Field, Msg: fe.Msg, Err: err})
		}
		return "", err
	}
	ev.Patient = v.Patient
	known, err := s.dir.UnitKnown(ctx, v.CareProvider, v.CareUnit)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrStorage, err)
	}
	d := access.Decide(access.Request{Action: access.ActionIngest, Principal: c.Principal,
		Facts: access.Facts{CareProvider: v.CareProvider, CareUnit: v.CareUnit, UnitKnown: known}})
	ev.Reason = d.Reason
	if !d.Allowed {
		if d.Reason == access.ReasonUnknownUnit {
			return "", s.deny(ctx, c, ev, &InvalidError{Field: "care_unit", Msg: "care unit is not registered for this care provider"})
		}
		return "", s.deny(ctx, c, ev, nil)
	}
	ev.Outcome = audit.Allowed
	if err := s.record(ctx, c, ev); err != nil {
		return "", err
	}
	var sourceIndex []byte
	if v.SourceSHA256 != "" {
		sourceIndex = s.keys.BlindIndex(indexSource, v.SourceSHA256)
		if err := s.cat.BySource(ctx, v.CareProvider, sourceIndex); err != nil {
			return "", s.sourceExists(ctx, c, id, err)
		}
	}

	rec, held, missing, err := s.store(ctx, id, v, audioSrc)
	if err == nil {
		rec.SourceIndex = sourceIndex
		if capture != nil {
			rec.Incomplete, rec.CaptureStats = capture.Incomplete, capture.Stats
		}
	}
	if err == nil {
		err = s.recoveryRecord(ctx, rec)
	}
	if err != nil {
		s.metrics.ingest("failed", 0)
		// The decision is on record; record that nothing was stored, too.
		_ = s.record(ctx, c, &audit.Event{Action: "ingest.aborted", Outcome: audit.Allowed, RecordingID: id, Reason: abortReason(err)})
		return "", err
	}
	if err := s.cat.Insert(ctx, rec, missing); err != nil {
		// The blobs are orphans now; the scrubber removes them. Try at once.
		_ = s.sites.Delete(context.WithoutCancel(ctx), id)
		var exists *catalog.SourceExistsError
		if errors.As(err, &exists) {
			// The same source, stored by a concurrent upload.
			return "", s.sourceExists(ctx, c, id, err)
		}
		s.metrics.ingest("failed", 0)
		return "", fmt.Errorf("%w: catalog: %w", ErrStorage, err)
	}
	if len(missing) > 0 {
		s.log.WarnContext(ctx, "recording held by one site only; queued for repair", "recording", id, "held", held, "missing", missing)
		s.metrics.pendingAdded(len(missing))
	}
	s.metrics.ingest("stored", rec.AudioBytes)
	if err := s.record(ctx, c, &audit.Event{Action: "ingest.stored", Outcome: audit.Allowed, RecordingID: id,
		Patient: v.Patient, Detail: fmt.Sprintf("bytes=%d sites=%d", rec.AudioBytes, len(held))}); err != nil {
		// Stored and durable, but the completion event is missing: still
		// report success, the decision event is on record.
		s.log.ErrorContext(ctx, "ingest stored but completion not audited", "recording", id)
	}
	s.log.InfoContext(ctx, "recording stored", "recording", id, "bytes", rec.AudioBytes, "sites", len(held))
	return id, nil
}

// sourceExists audits and answers an ingest whose source file the
// catalog holds already (err from BySource or Insert).
func (s *Service) sourceExists(ctx context.Context, c Caller, id string, err error) error {
	var exists *catalog.SourceExistsError
	if !errors.As(err, &exists) {
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	reason, answer := "duplicate-source", error(&DuplicateError{ID: exists.ID})
	if exists.Deleted {
		reason = "source-deleted"
		answer = &ConflictError{Reason: reason, RecordingID: exists.ID,
			Msg: "the source file's recording was deleted by a decision; it is not stored again"}
	}
	s.metrics.ingest("duplicate", 0)
	if err := s.record(ctx, c, &audit.Event{Action: "ingest.aborted", Outcome: audit.Allowed, RecordingID: id,
		Reason: reason, Detail: "existing=" + exists.ID}); err != nil {
		return err
	}
	return answer
}

func abortReason(err error) string {
	switch {
	case errors.Is(err, audio.ErrUnsupported):
		return "unsupported-audio"
	case errors.Is(err, audio.ErrMalformed):
		return "malformed-audio"
	case errors.Is(err, audio.ErrTruncated):
		return "truncated-audio"
	case errors.Is(err, ErrStorage):
		return "storage"
	}
	return "input"
}

// recoveryRecord writes rec's recovery record; on failure the blobs go too.
func (s *Service) recoveryRecord(ctx context.Context, rec *catalog.Recording) error {
	fk, err := s.fileKey(rec)
	if err == nil {
		err = s.writeRecovery(ctx, rec, fk)
	}
	if err != nil {
		_ = s.sites.Delete(context.WithoutCancel(ctx), rec.ID)
		return fmt.Errorf("%w: recovery record: %w", ErrStorage, err)
	}
	return nil
}

// store streams the audio into both sites and returns the catalog row.
func (s *Service) store(ctx context.Context, id string, v *recording.Valid, src io.Reader) (*catalog.Recording, []string, []string, error) {
	info, probed, err := audio.Probe(src)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("archive: audio: %w", err)
	}
	if info.Container == "wav" && info.DataBytes == 0 {
		return nil, nil, nil, &InvalidError{Field: "audio", Msg: "the WAV file holds no samples"}
	}
	fk, err := seal.NewFileKey()
	if err != nil {
		return nil, nil, nil, err
	}
	up, err := s.sites.Create(ctx, id)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	// Where a site can lock blobs (S3 Object Lock), the audio is locked
	// for its retention period. Recovery records are not: they hold the
	// wrapped file key, and an IVO deletion must be able to destroy it.
	retainUntil := v.EndedAt.UTC().AddDate(s.retention.Years, 0, 0)
	up.LockUntil(retainUntil)
	committed := false
	defer func() {
		if !committed {
			up.Abort()
		}
	}()
	blob := &countingHash{w: up, h: sha256.New()}
	sw, err := seal.NewWriter(blob, fk, id)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	var dst io.Writer = sw
	plain := sha256.New()
	if v.SourceSHA256 != "" {
		dst = io.MultiWriter(sw, plain)
	}
	n, err := io.Copy(dst, probed)
	if err != nil {
		if errors.Is(err, audio.ErrTruncated) || errors.Is(err, audio.ErrMalformed) {
			return nil, nil, nil, fmt.Errorf("archive: audio: %w", err)
		}
		if blob.err != nil {
			return nil, nil, nil, fmt.Errorf("%w: %w", ErrStorage, err)
		}
		return nil, nil, nil, fmt.Errorf("archive: reading audio: %w", err)
	}
	if err := sw.Close(); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if v.SourceSHA256 != "" && hex.EncodeToString(plain.Sum(nil)) != v.SourceSHA256 {
		return nil, nil, nil, &InvalidError{Field: "source_sha256", Msg: "does not match the SHA-256 of the audio"}
	}
	held, missing, err := up.Commit()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	committed = true

	epoch := s.keys.Current()
	wrapped, err := seal.Wrap(fk, epoch.Recipient)
	if err != nil {
		_ = s.sites.Delete(context.WithoutCancel(ctx), id)
		return nil, nil, nil, fmt.Errorf("%w: wrap: %w", ErrStorage, err)
	}
	rec := &catalog.Recording{
		ID: id, CallID: v.CallID, CareProvider: v.CareProvider, CareUnit: v.CareUnit,
		Staff: v.Staff, StartedAt: v.StartedAt, EndedAt: v.EndedAt, Direction: v.Direction,
		PrivacyNotice: v.PrivacyNotice, Format: info.Container, ContentType: info.ContentType(),
		AudioBytes: n, BlobBytes: blob.n, BlobSHA256: blob.h.Sum(nil),
		KeyEpoch: epoch.ID, WrappedKey: wrapped, CreatedAt: s.now().UTC(),
		RetentionUntil: retainUntil,
	}
	if v.Patient != "" {
		rec.PatientIndex = s.keys.BlindIndex(indexPatient, v.Patient)
		if rec.PatientSealed, err = fk.SealField(fieldPatient, []byte(v.Patient)); err != nil {
			_ = s.sites.Delete(context.WithoutCancel(ctx), id)
			return nil, nil, nil, fmt.Errorf("%w: %w", ErrStorage, err)
		}
	}
	if v.CallerNumber != "" {
		rec.CallerIndex = s.keys.BlindIndex(indexCaller, v.CallerNumber)
		if rec.CallerSealed, err = fk.SealField(fieldCaller, []byte(v.CallerNumber)); err != nil {
			_ = s.sites.Delete(context.WithoutCancel(ctx), id)
			return nil, nil, nil, fmt.Errorf("%w: %w", ErrStorage, err)
		}
	}
	return rec, held, missing, nil
}

// countingHash passes writes through to w while counting and hashing them.
type countingHash struct {
	w   io.Writer
	h   hash.Hash
	n   int64
	err error
}

func (c *countingHash) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}
