package audit

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Checkpoints are cut every Entries appends and reach a directory outbox
// and an HTTPS outbox; an outbox that fails gets the latest checkpoint once
// it works again.
func TestRunCheckpointsPushesToWitnesses(t *testing.T) {
	forEachEngine(t, func(t *testing.T, dsn string) {
		l, _ := newTestLog(t, dsn)
		dir := filepath.Join(t.TempDir(), "witness")
		var mu sync.Mutex
		var got [][]byte
		failing := true
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			defer mu.Unlock()
			if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			if failing {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			got = append(got, b)
		}))
		defer srv.Close()
		outboxes := []Outbox{DirOutbox{Dir: dir}, HTTPOutbox{URL: srv.URL + "/witness/add-checkpoint", Client: srv.Client()}}

		// Five entries before the checkpointer starts: its first round cuts
		// them (and pushes whatever is pending after a restart).
		appendN(t, l, 0, 5)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		var cuts []int64
		var cutsMu sync.Mutex
		go func() {
			defer close(done)
			l.RunCheckpoints(ctx, CheckpointPolicy{Interval: time.Hour, Entries: 5}, outboxes,
				slog.New(slog.DiscardHandler), func(n int64) { cutsMu.Lock(); cuts = append(cuts, n); cutsMu.Unlock() })
		}()
		waitFor(t, func() bool { b, _ := os.ReadFile(filepath.Join(dir, "checkpoints", "5")); return len(b) > 0 })
		latest, err := l.LatestCheckpoint(t.Context())
		if err != nil || latest.Size != 5 {
			t.Fatalf("latest checkpoint: %+v %v", latest, err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "checkpoint"))
		if !bytes.Equal(b, latest.Note) {
			t.Fatalf("dir outbox checkpoint:\n%s\nwant\n%s", b, latest.Note)
		}
		// Four more entries: no new cut (fewer than 5 since the last).
		appendN(t, l, 5, 4)
		time.Sleep(200 * time.Millisecond)
		if c, _ := l.LatestCheckpoint(t.Context()); c.Size != 5 {
			t.Fatalf("cut at %d after 4 entries", c.Size)
		}
		mu.Lock()
		failing = false
		mu.Unlock()
		appendN(t, l, 9, 1)
		waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		c, err := l.ParseCheckpoint(got[0])
		if err != nil || c.Size != 10 {
			t.Fatalf("HTTPS witness got size %v (%v), want the latest, 10", c, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "checkpoints", "10")); err != nil {
			t.Fatal(err)
		}
		cutsMu.Lock()
		defer cutsMu.Unlock()
		if len(cuts) != 2 || cuts[0] != 5 || cuts[1] != 10 {
			t.Fatalf("cuts %v, want [5 10]", cuts)
		}
		if name := (HTTPOutbox{URL: "https://user:secret@witness.example/add?token=x"}).Name(); name != "https://witness.example/add" {
			t.Fatalf("outbox name %q leaks credentials", name)
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
