#!/bin/sh
# bench/run.sh — runs the benchmarks of docs/benchmarks.md and prints their
# results as markdown on stdout (progress on stderr):
#
#   1. seal: encrypt and seekable decrypt MB/s beside raw AES-256-GCM and
#      ChaCha20-Poly1305 (go test -bench, internal/seal/bench_test.go);
#   2. upload of N recordings beside the age CLI encrypting the same files
#      to two directories;
#   3. playback time to first byte with 50 concurrent clients beside a plain
#      net/http file server with the same mutual-TLS configuration.
#
# Self-contained and loopback only: it builds callvault and the driver, and
# installs the age CLI v1.3.2 (through the Go module proxy), into a temp
# dir that is removed at the end, as are the synthetic calls and every data
# dir. About 5 minutes on 2 cores. Extra arguments go to archivebench
# (e.g. -reps 1 -n 50 for a quick run).
#
# Environment: AGE_DIR=DIR uses the age and age-keygen binaries in DIR;
# BENCHSTAT=0 skips benchstat (which `go run`s golang.org/x/perf).
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d "${TMPDIR:-/tmp}/callvault-benchrun-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

log() { echo "$(date +%H:%M:%S) $*" >&2; }

echo "# callvault benchmarks, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "- nproc: $(nproc); CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "- uptime at start: $(uptime)"
echo "- temp dir filesystem: $(df -T "$tmp" | awk 'NR==2 {print $2, $1}')"
echo "- $(go version); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
echo

log "building callvault and archivebench"
go build -o "$tmp/callvault" ./cmd/callvault
go build -o "$tmp/archivebench" ./bench/archivebench
if [ -n "${AGE_DIR:-}" ]; then
	agedir=$AGE_DIR
else
	log "installing the age CLI v1.3.2 into the temp dir"
	agedir=$tmp/age-bin
	(cd "$tmp" && GOBIN=$agedir GOFLAGS= go install filippo.io/age/cmd/...@v1.3.2)
fi
echo "- age: $("$agedir/age" --version)"
echo

log "1/3 seal benchmarks"
echo "## 1. seal"
echo
echo '`go test ./internal/seal -run '"'^\$'"' -bench . -count 6`'
echo
go test ./internal/seal -run '^$' -bench . -count 6 -timeout 5m >"$tmp/seal.txt"
"$tmp/archivebench" sealstat <"$tmp/seal.txt"
if [ "${BENCHSTAT:-1}" != 0 ]; then
	echo
	echo '```'
	(cd "$tmp" && go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da seal.txt) || echo "(benchstat unavailable)"
	echo '```'
fi
echo

log "2/3 and 3/3 upload and playback"
echo "## 2. and 3. upload and playback"
echo
echo "\`archivebench -callvault \$tmp/callvault -age-dir \$agedir -tmp \$tmp${*:+ $*}\`"
echo
"$tmp/archivebench" -callvault "$tmp/callvault" -age-dir "$agedir" -tmp "$tmp" "$@" | sed 's/^## /### /'
echo
echo "- uptime at end: $(uptime)"
