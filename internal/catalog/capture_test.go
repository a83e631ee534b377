package catalog

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

func TestCaptureSessions(t *testing.T) { forEachEngine(t, testCaptureSessions) }

func testCaptureSessions(t *testing.T, db *DB) {
	ctx := context.Background()
	start := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	for i := 1; i <= 4; i++ {
		if err := db.BeginCapture(ctx, &CaptureSession{RecordingID: id(i), CareProvider: provA, CareUnit: unitA, StartedAt: start.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.BeginCapture(ctx, &CaptureSession{RecordingID: id(1), CareProvider: provA, CareUnit: unitA, StartedAt: start}); err == nil {
		t.Error("a session begun twice")
	}
	for i, state := range []string{CaptureStored, CaptureIncomplete, CaptureFailed} {
		if err := db.EndCapture(ctx, id(i+1), state, "", start.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.EndCapture(ctx, id(1), CaptureFailed, "", start); !errors.Is(err, ErrCaptureState) {
		t.Errorf("ending an ended session: %v", err)
	}
	if err := db.EndCapture(ctx, id(9), CaptureStored, "", start); !errors.Is(err, ErrCaptureState) {
		t.Errorf("ending an unknown session: %v", err)
	}
	if err := db.EndCapture(ctx, id(4), CaptureActive, "", start); err == nil {
		t.Error("active accepted as a final state")
	}
	counts, err := db.CaptureCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[CaptureActive] != 1 || counts[CaptureStored] != 1 || counts[CaptureIncomplete] != 1 || counts[CaptureFailed] != 1 || len(counts) != 4 {
		t.Errorf("counts %v", counts)
	}
	active, err := db.CaptureSessions(ctx, CaptureActive, 10)
	if err != nil || len(active) != 1 || active[0].RecordingID != id(4) || !active[0].StartedAt.Equal(start.Add(4*time.Second)) || !active[0].EndedAt.IsZero() {
		t.Errorf("active %+v %v", active, err)
	}
}

func TestLinkPatientHistory(t *testing.T) { forEachEngine(t, testLinkPatientHistory) }

func testLinkPatientHistory(t *testing.T, db *DB) {
	ctx := context.Background()
	rec := full(1)
	rec.PatientIndex, rec.PatientSealed = nil, nil
	rec.Incomplete, rec.CaptureStats = true, `{"streams":[]}`
	mustInsert(t, db, rec)
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	l1, err := db.LinkPatient(ctx, rec.ID, []byte{1}, []byte{0xa1}, "SE9999990001-CAP1", at)
	if err != nil || l1.PreviousIndex != nil || l1.PreviousSealed != nil {
		t.Fatalf("first link %+v %v", l1, err)
	}
	l2, err := db.LinkPatient(ctx, rec.ID, []byte{2}, []byte{0xa2}, "SE9999990001-CAP1", at.Add(time.Hour))
	if err != nil || !bytes.Equal(l2.PreviousIndex, []byte{1}) || !bytes.Equal(l2.PreviousSealed, []byte{0xa1}) {
		t.Fatalf("correction %+v %v", l2, err)
	}
	got, err := db.Get(ctx, rec.ID)
	if err != nil || !bytes.Equal(got.PatientIndex, []byte{2}) || !bytes.Equal(got.PatientSealed, []byte{0xa2}) || !got.Incomplete || got.CaptureStats != `{"streams":[]}` {
		t.Fatalf("after links %+v %v", got, err)
	}
	hist, err := db.PatientLinks(ctx, rec.ID)
	if err != nil || len(hist) != 2 || hist[0].ID != l1.ID || !hist[1].LinkedAt.Equal(at.Add(time.Hour)) {
		t.Fatalf("history %+v %v", hist, err)
	}
	if _, err := db.LinkPatient(ctx, id(99), []byte{1}, []byte{1}, "x", at); !errors.Is(err, ErrNotFound) {
		t.Errorf("link to unknown: %v", err)
	}
	ids, err := db.ByCallID(ctx, provA, rec.CallID)
	if err != nil || len(ids) != 1 || ids[0] != rec.ID {
		t.Errorf("by call id %v %v", ids, err)
	}
	if ids, _ := db.ByCallID(ctx, "SE9999990002-VG02", rec.CallID); len(ids) != 0 {
		t.Errorf("another provider finds %v", ids)
	}
}
