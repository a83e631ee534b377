package catalog

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// Rewrapping walks the stale keys in ID pages (LIMIT) and stores new ones
// through a statement prepared in the transaction, skipping rows that
// changed meanwhile.
func TestRewrapKeys(t *testing.T) { forEachEngine(t, testRewrapKeys) }

func testRewrapKeys(t *testing.T, db *DB) {
	ctx := context.Background()
	for n, epoch := range map[int]int{1: 1, 2: 2, 3: 1, 4: 3, 5: 1} {
		r := full(n)
		r.KeyEpoch = epoch
		r.WrappedKey = []byte{byte(n), 0x00, 0xff}
		mustInsert(t, db, r)
	}
	page, err := db.Stale(ctx, 3, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []WrappedRef{{id(1), 1, []byte{1, 0, 0xff}}, {id(2), 2, []byte{2, 0, 0xff}}}
	if !reflect.DeepEqual(page, want) {
		t.Errorf("Stale first page = %+v, want %+v", page, want)
	}
	page, err = db.Stale(ctx, 3, id(2), -1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []WrappedRef{{id(3), 1, []byte{3, 0, 0xff}}, {id(5), 1, []byte{5, 0, 0xff}}}; !reflect.DeepEqual(page, want) {
		t.Errorf("Stale rest (no limit) = %+v, want %+v", page, want)
	}

	n, err := db.UpdateWrapped(ctx, []Rewrapped{
		{ID: id(1), From: 1, To: 3, WrappedKey: []byte("new-1")},
		{ID: id(2), From: 1, To: 3, WrappedKey: []byte("new-2")}, // wrapped to 2, not 1: skipped
		{ID: id(9), From: 1, To: 3, WrappedKey: []byte("new-9")}, // no such row
		{ID: id(3), From: 1, To: 3, WrappedKey: []byte{}},
	})
	if err != nil || n != 2 {
		t.Fatalf("UpdateWrapped = %d, %v; want 2", n, err)
	}
	for _, c := range []struct {
		n     int
		epoch int
		key   []byte
	}{{1, 3, []byte("new-1")}, {2, 2, []byte{2, 0, 0xff}}, {3, 3, []byte{}}} {
		r, err := db.Get(ctx, id(c.n))
		if err != nil {
			t.Fatal(err)
		}
		if r.KeyEpoch != c.epoch || !reflect.DeepEqual(r.WrappedKey, c.key) {
			t.Errorf("recording %d: epoch %d key %#v; want %d %#v", c.n, r.KeyEpoch, r.WrappedKey, c.epoch, c.key)
		}
	}
	counts, err := db.EpochCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int]int{1: 1, 2: 1, 3: 3}; !reflect.DeepEqual(counts, want) {
		t.Errorf("EpochCounts = %v, want %v", counts, want)
	}
	if n, err := db.UpdateWrapped(ctx, nil); err != nil || n != 0 {
		t.Errorf("UpdateWrapped(nil) = %d, %v", n, err)
	}
}

// The scrubber's view: pages of blobs, whether a name is a recording, and
// the lost list.
func TestBlobsKnownLost(t *testing.T) { forEachEngine(t, testBlobsKnownLost) }

func testBlobsKnownLost(t *testing.T, db *DB) {
	ctx := context.Background()
	for n := 1; n <= 5; n++ {
		mustInsert(t, db, full(n))
	}
	var walked []string
	for after := ""; ; {
		page, err := db.Blobs(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, b := range page {
			if b.BlobBytes != full(1).BlobBytes || len(b.BlobSHA256) != 32 || b.KeyEpoch != 7 {
				t.Errorf("blob %+v", b)
			}
			walked = append(walked, b.ID)
		}
		after = page[len(page)-1].ID
	}
	if want := []string{id(1), id(2), id(3), id(4), id(5)}; !reflect.DeepEqual(walked, want) {
		t.Errorf("Blobs walked %v, want %v", walked, want)
	}
	if all, err := db.Blobs(ctx, "", -1); err != nil || len(all) != 5 {
		t.Errorf("Blobs(no limit) = %d, %v; want 5", len(all), err)
	}
	for name, want := range map[string]bool{id(3): true, id(6): false, id(3) + ".recovery": false, "\xff\xfe": false, "a\x00": false, "": false} {
		live, deleted, err := db.Known(ctx, name)
		if err != nil || live != want || deleted {
			t.Errorf("Known(%q) = %v, %v, %v; want %v, false", name, live, deleted, err, want)
		}
	}

	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	if err := db.MarkLost(ctx, id(2), "site-a: digest; site-b: \xff\x00missing", at); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkLost(ctx, id(2), "again", at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkLost(ctx, id(9), "x", at); err == nil {
		t.Error("MarkLost of an unknown recording succeeded")
	}
	var since int64
	var detail string
	if err := db.db.QueryRowContext(ctx, `SELECT since, detail FROM lost_recordings WHERE recording_id = ?`, id(2)).Scan(&since, &detail); err != nil {
		t.Fatal(err)
	}
	if since != at.UnixNano() || detail != "again" {
		t.Errorf("lost row since %d detail %q; want the first time and the last detail", since, detail)
	}
	for name, want := range map[string]bool{id(2): true, id(3): false, "\xff": false} {
		if lost, err := db.Lost(ctx, name); err != nil || lost != want {
			t.Errorf("Lost(%q) = %v, %v; want %v", name, lost, err, want)
		}
	}
	if n, err := db.LostCount(ctx); err != nil || n != 1 {
		t.Errorf("LostCount = %d, %v; want 1", n, err)
	}
	if err := db.ClearLost(ctx, id(2)); err != nil {
		t.Fatal(err)
	}
	if n, err := db.LostCount(ctx); err != nil || n != 0 {
		t.Errorf("LostCount after ClearLost = %d, %v; want 0", n, err)
	}
}
