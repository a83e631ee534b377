package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The commands serve --dev prints work as pasted (with the binary in place
// of `go run ./cmd/callvault`, and the search's first hit in place of ID).
func TestWelcomeCommandsWork(t *testing.T) {
	root := t.TempDir()
	srv := startServer(t, filepath.Join(root, "data"), filepath.Join(root, "server.log"))
	var cmds []string
	for _, l := range srv.welcome {
		if c, ok := strings.CutPrefix(l, "  "); ok {
			cmds = append(cmds, c)
		}
		if rest, ok := strings.CutPrefix(l, "Status and metrics:"); ok {
			for _, c := range strings.Split(rest, "·") {
				cmds = append(cmds, strings.TrimSpace(c))
			}
		}
	}
	if len(cmds) != 9 {
		t.Fatalf("%d commands in the welcome, want 9:\n%s", len(cmds), strings.Join(srv.welcome, "\n"))
	}
	work := t.TempDir()
	run := func(c string) string {
		t.Helper()
		c = strings.ReplaceAll(c, "go run ./cmd/callvault", binPath)
		cmd := exec.Command("sh", "-c", c)
		cmd.Dir = work
		var stderr strings.Builder
		cmd.Stderr = &stderr // curl's progress meter goes here
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s%s", c, err, out, stderr.String())
		}
		return string(out)
	}
	var search struct {
		Recordings []struct{ ID string } `json:"recordings"`
	}
	if err := json.Unmarshal([]byte(run(cmds[0])), &search); err != nil || len(search.Recordings) == 0 {
		t.Fatalf("search found nothing: %v", err)
	}
	run(strings.Replace(cmds[1], "/ID/", "/"+search.Recordings[0].ID+"/", 1))
	if b, err := os.ReadFile(filepath.Join(work, "call.wav")); err != nil || !strings.HasPrefix(string(b), "RIFF") {
		t.Fatalf("call.wav: %v", err)
	}
	if out := run(cmds[2]); !strings.Contains(out, `"id"`) {
		t.Fatalf("upload: %s", out)
	}
	run(cmds[3])
	if b, err := os.ReadFile(filepath.Join(work, "extract.html")); err != nil || !strings.Contains(string(b), `lang="sv"`) || !strings.Contains(string(b), "sökte efter dina samtal") {
		t.Fatalf("extract.html: %v\n%.300s", err, b)
	}
	if out := run(cmds[4]); !strings.HasPrefix(out, "audit log ok: ") {
		t.Fatalf("verify: %s", out)
	}
	if out := run(strings.Replace(cmds[5], "/ID/", "/"+search.Recordings[0].ID+"/", 1)); !strings.Contains(out, `"set_by": "SE9999990001-REC1"`) {
		t.Fatalf("hold: %s", out)
	}
	if out := run(cmds[6]); !strings.Contains(out, "repaired 0, lost 0, orphans removed 0") {
		t.Fatalf("scrub: %s", out)
	}
	if out := run(cmds[7]); !strings.Contains(out, "replication backlog:  0") {
		t.Fatalf("status: %s", out)
	}
	if out := run(cmds[8]); !strings.Contains(out, "callvault_ingest_total") {
		t.Fatalf("metrics: %.300s", out)
	}
}
