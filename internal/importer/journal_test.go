package importer

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
)

func TestJournal(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := OpenJournal(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.List(ctx, []string{"a.wav", "b.wav", "a.wav"}, []int{2, 3, 4}, true); err != nil {
		t.Fatal(err)
	}
	if l, _ := j.FirstLine(ctx, "a.wav"); l != 2 {
		t.Fatalf("first line of a.wav: %d", l)
	}
	if l, _ := j.FirstLine(ctx, "c.wav"); l != 0 {
		t.Fatalf("unlisted file has line %d", l)
	}
	for _, e := range []Entry{
		{Path: "a.wav", Line: 2, Size: 100, SHA256: "aa", Outcome: OutcomeImported, RecordingID: "id1"},
		{Path: "b.wav", Line: 3, Size: 100, SHA256: "aa", Outcome: OutcomeDuplicate, RecordingID: "id1"},
		{Path: "a.wav", Line: 4, Outcome: OutcomeRejected, Reason: "file listed twice (first on line 2)"},
		{Path: "c.wav", Line: 0, Size: 7, Outcome: OutcomeUnlisted, Reason: "no manifest row"},
	} {
		if err := j.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	// Reopened, as a re-run does.
	if j, err = OpenJournal(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if id, _ := j.Primary(ctx, "aa"); id != "id1" {
		t.Fatalf("primary: %q", id)
	}
	if e, _ := j.Done(ctx, "b.wav"); e == nil || e.Outcome != OutcomeDuplicate {
		t.Fatalf("done b.wav: %+v", e)
	}
	s, err := summarize(ctx, j, 3)
	if err != nil {
		t.Fatal(err)
	}
	if s.Outcomes[OutcomeImported] != 1 || s.Outcomes[OutcomeDuplicate] != 1 || s.Outcomes[OutcomeRejected] != 1 ||
		s.Outcomes[OutcomeUnlisted] != 1 || s.Bytes[OutcomeImported] != 100 || s.Bytes[OutcomeUnlisted] != 7 ||
		s.Reasons["no manifest row"] != 1 || len(s.Reasons) != 2 {
		t.Fatalf("summary: %+v", s)
	}
	if err := j.ForgetRetryable(ctx); err != nil {
		t.Fatal(err)
	}
	if es, _ := j.Entries(ctx); len(es) != 2 {
		t.Fatalf("after forgetting rejects: %d entries", len(es))
	}
}

// Off a terminal, progress is a log line with files, bytes, rate and ETA.
func TestProgressLogLines(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, slog.New(slog.NewJSONHandler(&buf, nil)), "import")
	p.interval = 0
	p.start(10)
	p.add(4, 2_000_000)
	var line map[string]any
	if err := json.Unmarshal(bytes.SplitN(buf.Bytes(), []byte("\n"), 2)[0], &line); err != nil {
		t.Fatalf("%v: %s", err, buf.Bytes())
	}
	if line["msg"] != "import progress" || line["files"] != 4.0 || line["total"] != 10.0 || line["mb"] != 2.0 ||
		line["files_per_s"] == nil || line["eta_s"] == nil {
		t.Fatalf("progress line: %v", line)
	}
}
