#!/bin/sh
# bench/audit.sh — runs the audit-log benchmarks of docs/benchmarks.md
# ("Audit log") and prints their results as markdown on stdout (progress on
# stderr):
#
#   1. durable appends/s with 1, 16 and 256 concurrent writers beside raw
#      SQLite INSERT transactions and raw fsyncs on the same disk, and Verify
#      of a small log beside raw SHA-256 (go test -bench,
#      internal/audit/bench_test.go);
#   2. a log of 10 million entries appended through audit.Log.Append by
#      1024 goroutines (group commit), then Verify of the whole log beside
#      raw SHA-256 and the bare SELECT, and per-patient reads (ForPatient,
#      auditreport.Extract) beside the bare indexed query (bench/auditbench).
#
# Self-contained: the logs live in a temp dir on the disk of $TMPDIR (several
# GB for 10 million entries), removed at the end. About 30 minutes on 2
# cores; generation stops after 25 minutes (auditbench -gen-limit) and the
# rest is then measured at the size reached. Extra arguments go to auditbench
# (e.g. -n 1000000 for a quick run).
#
# Environment: COUNT=N runs of each go test benchmark (default 6);
# BENCHSTAT=0 skips benchstat (which `go run`s golang.org/x/perf).
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d "${TMPDIR:-/tmp}/callvault-auditrun-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

log() { echo "$(date +%H:%M:%S) $*" >&2; }
count=${COUNT:-6}

echo "# callvault audit-log benchmarks, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "- nproc: $(nproc); CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "- uptime at start: $(uptime)"
echo "- temp dir filesystem: $(df -T "$tmp" | awk 'NR==2 {print $2, $1}')"
echo "- $(go version); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
echo

log "building auditbench"
go build -o "$tmp/auditbench" ./bench/auditbench

log "1/2 go test benchmarks of internal/audit"
echo "## 1. Appends and a small Verify"
echo
echo '`go test ./internal/audit -run '"'^\$'"' -bench . -count '"$count"'`'
echo
TMPDIR=$tmp go test ./internal/audit -run '^$' -bench . -count "$count" -timeout 20m >"$tmp/audit.txt"
"$tmp/auditbench" benchstat <"$tmp/audit.txt"
if [ "${BENCHSTAT:-1}" != 0 ]; then
	echo
	echo '```'
	(cd "$tmp" && go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da audit.txt) || echo "(benchstat unavailable)"
	echo '```'
fi
echo

log "2/2 auditbench"
echo "## 2. The log at scale"
echo
echo "\`auditbench -tmp \$tmp${*:+ $*}\`"
echo
"$tmp/auditbench" -tmp "$tmp" "$@"
echo
echo "- uptime at end: $(uptime)"
