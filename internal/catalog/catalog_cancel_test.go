package catalog

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// cancelRecording is a complete, valid recording for the tests in this
// file (kept apart from catalog_test.go's helpers).
func cancelRecording(id string) *Recording {
	start := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	return &Recording{
		ID:           id,
		CallID:       "call-" + id[:8],
		CareProvider: "SE2321000016-0001",
		CareUnit:     "SE2321000016-1001",
		Staff:        []string{"SE2321000016-N002", "SE2321000016-N001"},
		StartedAt:    start,
		EndedAt:      start.Add(3 * time.Minute),
		Direction:    "inbound",
		PatientIndex: []byte{1, 2, 3},
		Format:       "wav",
		ContentType:  "audio/wav",
		BlobSHA256:   make([]byte, 32),
		KeyEpoch:     1,
		WrappedKey:   []byte("wrapped"),
		CreatedAt:    start.Add(4 * time.Minute),
	}
}

// tableCounts returns the number of rows in each of the catalog's tables.
func tableCounts(t *testing.T, db *DB) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range []string{"recordings", "recording_staff", "pending_replication"} {
		var n int
		if err := db.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

func TestInsertCancelledContextStoresNothing(t *testing.T) {
	forEachEngine(t, testInsertCancelledContextStoresNothing)
}

func testInsertCancelledContextStoresNothing(t *testing.T, db *DB) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := cancelRecording("0123456789abcdef0123456789abcdef")
	err := db.Insert(ctx, rec, []string{"site-b"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Insert with a cancelled context = %v, want context.Canceled", err)
	}
	want := map[string]int{"recordings": 0, "recording_staff": 0, "pending_replication": 0}
	if got := tableCounts(t, db); !reflect.DeepEqual(got, want) {
		t.Errorf("rows after cancelled Insert = %v, want %v", got, want)
	}
	if _, err := db.Get(context.Background(), rec.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after cancelled Insert = %v, want ErrNotFound", err)
	}
	// The same recording goes in afterwards: the cancelled attempt left no
	// lock or half-open transaction behind.
	if err := db.Insert(context.Background(), rec, []string{"site-b"}); err != nil {
		t.Fatalf("Insert after the cancelled one: %v", err)
	}
	want = map[string]int{"recordings": 1, "recording_staff": 2, "pending_replication": 1}
	if got := tableCounts(t, db); !reflect.DeepEqual(got, want) {
		t.Errorf("rows after Insert = %v, want %v", got, want)
	}
}

// A refused duplicate leaves exactly the first insert's staff rows, in
// their positions, and its pending entries.
func TestInsertExistsAddsNoStaffRows(t *testing.T) {
	forEachEngine(t, testInsertExistsAddsNoStaffRows)
}

func testInsertExistsAddsNoStaffRows(t *testing.T, db *DB) {
	ctx := context.Background()
	id := "fedcba9876543210fedcba9876543210"
	if err := db.Insert(ctx, cancelRecording(id), []string{"site-b"}); err != nil {
		t.Fatal(err)
	}
	dup := cancelRecording(id)
	dup.Staff = []string{"SE2321000016-X009", "SE2321000016-X008", "SE2321000016-X007"}
	if err := db.Insert(ctx, dup, []string{"site-a"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate Insert = %v, want ErrExists", err)
	}
	rows, err := db.db.QueryContext(ctx, `SELECT position, staff FROM recording_staff WHERE recording_id = ? ORDER BY position`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var pos int
		var s string
		if err := rows.Scan(&pos, &s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
		if pos != len(got)-1 {
			t.Errorf("staff %q at position %d, want %d", s, pos, len(got)-1)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"SE2321000016-N002", "SE2321000016-N001"}; !reflect.DeepEqual(got, want) {
		t.Errorf("staff rows = %q, want %q", got, want)
	}
	want := map[string]int{"recordings": 1, "recording_staff": 2, "pending_replication": 1}
	if got := tableCounts(t, db); !reflect.DeepEqual(got, want) {
		t.Errorf("rows after the refused duplicate = %v, want %v", got, want)
	}
}
