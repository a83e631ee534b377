#!/bin/sh
# bench/partition.sh — runs the audit-log partitioning benchmark of
# docs/benchmarks.md ("Audit log on PostgreSQL: one table or monthly
# partitions") and prints its results as markdown on stdout (progress on
# stderr): bench/partitionbench loads the same 10 million synthetic entries
# into audit_log and into a twin partitioned by month on a throwaway
# PostgreSQL, and times the audit package's own queries on both in the
# same run.
#
# Self-contained: it builds the driver into a temp dir on the disk of
# $TMPDIR, where all data lives (~16 GB), and removes it at the end. Run it
# as root so that the cold phase can drop the page cache. About 15 minutes
# on 2 cores.
#
# Usage: bench/partition.sh
# Environment: PARTITION_FLAGS is passed to the driver (e.g.
# PARTITION_FLAGS='-n 1000000' for a quicker run).
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d "${TMPDIR:-/tmp}/callvault-partitionrun-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
# The PostgreSQL cluster lives under it and runs as the postgres user, who
# must pass through.
chmod 711 "$tmp"

echo "# callvault audit-log partitioning benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "- nproc: $(nproc); CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "- temp dir filesystem: $(df -T "$tmp" | awk 'NR==2 {print $2, $1}')"
echo "- $(go version); PostgreSQL: $(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)"
echo "- measured source (sha256/12):$(for f in internal/audit/log.go internal/sqldb/sqldb.go; do
	[ -f "$f" ] && printf ' %s %s;' "$f" "$(sha256sum "$f" | cut -c1-12)"
done)"
echo

echo "$(date +%H:%M:%S) building partitionbench" >&2
go build -o "$tmp/partitionbench" ./bench/partitionbench
echo "\`partitionbench -tmp \$tmp${PARTITION_FLAGS:+ $PARTITION_FLAGS}\`"
echo
# shellcheck disable=SC2086 # the flags are meant to be split
"$tmp/partitionbench" -tmp "$tmp" ${PARTITION_FLAGS:-}
echo "- uptime at end: $(uptime)"
