#!/bin/sh
# bench/search.sh — runs the patient search benchmark of docs/benchmarks.md
# ("Patient search at 10 million recordings") and prints its results as
# markdown on stdout (progress on stderr): bench/searchbench on SQLite,
# then on PostgreSQL, one after the other, never in parallel. Each run
# builds a catalog of 10 million synthetic recordings (SQLite ~41 GB,
# PostgreSQL ~31 GB, so the two never exist at once), times
# catalog.DB.ByPatient beside its indexed query alone, and removes its data.
#
# Self-contained: it builds the driver into a temp dir on the disk of
# $TMPDIR, where all data lives. Run it as root so that the cold phase
# can drop the page cache. About 45 minutes on 2 cores.
#
# Usage: bench/search.sh [sqlite|postgres|all]   (default all)
# Environment: SEARCH_FLAGS is passed to both runs (e.g. SEARCH_FLAGS='-n
# 1000000 -bulk-patients 200000' for a quicker run).
set -eu
cd "$(dirname "$0")/.."
which=${1:-all}
case $which in
sqlite | postgres | all) ;;
*)
	echo "usage: $0 [sqlite|postgres|all]" >&2
	exit 2
	;;
esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/callvault-searchrun-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
# The PostgreSQL cluster lives under it and runs as the postgres user, who
# must pass through.
chmod 711 "$tmp"

log() { echo "$(date +%H:%M:%S) $*" >&2; }

echo "# callvault patient search benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "- nproc: $(nproc); CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "- temp dir filesystem: $(df -T "$tmp" | awk 'NR==2 {print $2, $1}')"
echo "- $(go version); PostgreSQL: $(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)"
# The measured code, identified without version control: SHA-256 (first 12
# hex digits) of the files that implement what is timed.
echo "- measured source (sha256/12):$(for f in internal/catalog/catalog.go internal/sqldb/sqldb.go internal/sqldb/rebind.go internal/sqlitedb/sqlitedb.go; do
	[ -f "$f" ] && printf ' %s %s;' "$f" "$(sha256sum "$f" | cut -c1-12)"
done)"
echo

log "building searchbench"
go build -o "$tmp/searchbench" ./bench/searchbench

for engine in sqlite postgres; do
	if [ "$which" != all ] && [ "$which" != "$engine" ]; then
		continue
	fi
	log "$engine"
	echo "\`searchbench -engine $engine -tmp \$tmp${SEARCH_FLAGS:+ $SEARCH_FLAGS}\`"
	echo
	# shellcheck disable=SC2086 # the flags are meant to be split
	"$tmp/searchbench" -engine "$engine" -tmp "$tmp" ${SEARCH_FLAGS:-}
	echo
done
echo "- uptime at end: $(uptime)"
