#!/bin/sh
# bench/import.sh — the import benchmark of docs/benchmarks.md ("Import"):
# `callvault import` into a fresh `serve --dev` over mutual TLS, beside age
# encrypting the same tree in the same run, for 100 kB and 3.6 MB files,
# printed as markdown on stdout (progress on stderr).
#
# Self-contained: builds callvault and the driver into a temp dir on the
# disk of $TMPDIR, where the trees and data directories live (about 1 GB
# with the defaults), and removes it at the end. About 5 minutes on 2 cores.
#
# Usage: bench/import.sh   Environment: IMPORT_FLAGS (e.g. '-small 500 -large 30 -reps 1').
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d "${TMPDIR:-/tmp}/callvault-importrun-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
echo "# callvault import benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "- temp dir filesystem: $(df -T "$tmp" | awk 'NR==2 {print $2, $1}')"
echo "- $(go version)"
echo "- measured source (sha256/12):$(for f in internal/importer/importer.go internal/importer/sink.go internal/archive/ingest.go \
	internal/httpapi/routes.go internal/site/fs.go internal/seal/writer.go; do
	[ -f "$f" ] && printf ' %s %s;' "$f" "$(sha256sum "$f" | cut -c1-12)"
done)"
go build -o "$tmp/callvault" ./cmd/callvault
go build -o "$tmp/importbench" ./bench/importbench
# shellcheck disable=SC2086 # the flags are meant to be split
"$tmp/importbench" -tmp "$tmp" -bin "$tmp/callvault" ${IMPORT_FLAGS:-}
