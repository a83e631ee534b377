#!/bin/sh
# bench/lifecycle.sh — runs the lifecycle benchmarks of docs/benchmarks.md
# ("Lifecycle: scrub and rewrap") and prints their results as markdown on
# stdout (progress on stderr), one after the other, never in parallel:
#
#   1. scrub: archive.Service.Scrub MB/s over N ingested recordings (both
#      sites), beside a plain Go loop reading the same blob files with a
#      1 MiB buffer and SHA-256ing them; warm, and (as root) cold, with the
#      page cache dropped before each pass (bench/lifecyclebench scrub);
#   2. rewrap: archive.Service.Rewrap recordings/s over a catalog of 1
#      million synthetic rows, beside seal.Unwrap + seal.Wrap alone on the
#      same keys (bench/lifecyclebench rewrap).
#
# Self-contained: it builds the driver into a temp dir on the disk of
# $TMPDIR, where all data lives (several GB for the rewrap catalog and its
# recovery records), and removes it at the end. The scrub takes about 2
# minutes; the rewrap, on 2 cores, about an hour: if one Rewrap of 1 million
# rows takes longer than 4 minutes, the driver runs that one and then 3 on a
# catalog of 100,000 rows.
#
# Usage: bench/lifecycle.sh [scrub|rewrap|all]   (default all)
# Environment: SCRUB_FLAGS and REWRAP_FLAGS are passed to the two
# subcommands (e.g. REWRAP_FLAGS='-n 100000' for a quicker run).
set -eu
cd "$(dirname "$0")/.."
which=${1:-all}
case $which in
scrub | rewrap | all) ;;
*)
	echo "usage: $0 [scrub|rewrap|all]" >&2
	exit 2
	;;
esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/callvault-lifecyclerun-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

log() { echo "$(date +%H:%M:%S) $*" >&2; }

echo "# callvault lifecycle benchmarks, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "- nproc: $(nproc); CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "- uptime at start: $(uptime)"
echo "- temp dir filesystem: $(df -T "$tmp" | awk 'NR==2 {print $2, $1}')"
echo "- $(go version)"
# The measured code, identified without version control: SHA-256 (first 12
# hex digits) of the files that implement what is timed.
echo "- measured source (sha256/12):$(for f in internal/archive/scrub.go internal/archive/rekey.go internal/archive/recovery.go \
	internal/archive/ingest.go internal/catalog/keys.go internal/site/fs.go internal/site/replicator.go internal/seal/wrap.go; do
	[ -f "$f" ] && printf ' %s %s;' "$f" "$(sha256sum "$f" | cut -c1-12)"
done)"
echo

log "building lifecyclebench"
go build -o "$tmp/lifecyclebench" ./bench/lifecyclebench

if [ "$which" != rewrap ]; then
	log "1/2 scrub"
	echo "\`lifecyclebench scrub -tmp \$tmp${SCRUB_FLAGS:+ $SCRUB_FLAGS}\`"
	echo
	# shellcheck disable=SC2086 # the flags are meant to be split
	"$tmp/lifecyclebench" scrub -tmp "$tmp" ${SCRUB_FLAGS:-}
	echo
fi
if [ "$which" != scrub ]; then
	log "2/2 rewrap"
	echo "\`lifecyclebench rewrap -tmp \$tmp${REWRAP_FLAGS:+ $REWRAP_FLAGS}\`"
	echo
	# shellcheck disable=SC2086
	"$tmp/lifecyclebench" rewrap -tmp "$tmp" ${REWRAP_FLAGS:-}
	echo
fi
echo "- uptime at end: $(uptime)"
