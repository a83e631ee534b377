#!/bin/sh
# bench/s3.sh — the S3 benchmark of docs/benchmarks.md ("S3 sites: upload to
# two MinIO servers"): recordings/s uploaded through callvault's API to two
# S3 sites, beside the same MinIO servers' own PUT throughput for the same
# plaintext files with SSE-S3 (and without), measured in the same run.
# Markdown on stdout, progress on stderr.
#
# Self-contained and loopback only: it builds callvault and bench/s3bench,
# and installs MinIO (pinned below, through the Go module proxy, from outside
# the module so that go.mod and go.sum are not touched) into a temp dir on
# the disk of $TMPDIR, where the synthetic calls and every data dir live
# (about 5 GB per repetition with the defaults), and removes it at the end.
# Building MinIO takes about 3 minutes on 2 cores with a cold cache; the
# measurements about 2 minutes.
#
# Usage: bench/s3.sh [s3bench flags]   (e.g. -reps 1 -n 50 for a quick run)
# Environment: MINIO_BIN=PATH uses that MinIO binary instead of building one.
set -eu
cd "$(dirname "$0")/.."

# The newest MinIO at the time of writing (`go list -m github.com/minio/minio@latest`;
# the module has no semantic-version tags, only pseudo-versions).
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

t0=$(date +%s)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/callvault-s3run-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

log() { echo "$(date +%H:%M:%S) $*" >&2; }

echo "# callvault S3 benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "- nproc: $(nproc); CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "- uptime at start: $(uptime)"
echo "- temp dir filesystem: $(df -T "$tmp" | awk 'NR==2 {print $2, $1}')"
echo "- $(go version); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"

log "building callvault and s3bench"
go build -o "$tmp/callvault" ./cmd/callvault
go build -o "$tmp/s3bench" ./bench/s3bench
if [ -n "${MINIO_BIN:-}" ]; then
	minio=$MINIO_BIN
	echo "- MinIO: $minio (MINIO_BIN)"
else
	minio=$tmp/bin/minio
	cached=downloaded
	[ -d "$(go env GOMODCACHE)/github.com/minio/minio@$MINIO_VERSION" ] && cached="source already in the module cache"
	log "installing MinIO $MINIO_VERSION into the temp dir (about 3 minutes with a cold cache)"
	b0=$(date +%s)
	if ! (cd / && GOFLAGS= GOBIN=$tmp/bin go install "github.com/minio/minio@$MINIO_VERSION") >"$tmp/minio-build.log" 2>&1; then
		cat "$tmp/minio-build.log" >&2
		echo "bench/s3.sh: MinIO $MINIO_VERSION could not be built (log above)" >&2
		exit 1
	fi
	echo "- MinIO: github.com/minio/minio@$MINIO_VERSION, \`go install\` in $(($(date +%s) - b0)) s ($cached)"
fi
echo

log "running s3bench"
echo "\`s3bench -callvault \$tmp/callvault -minio \$minio -tmp \$tmp${*:+ $*}\`"
echo
"$tmp/s3bench" -callvault "$tmp/callvault" -minio "$minio" -tmp "$tmp" "$@" | sed 's/^## /### /'
echo
echo "- uptime at end: $(uptime)"
echo "- bench/s3.sh took $(($(date +%s) - t0)) s end to end"
