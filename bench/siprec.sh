#!/bin/sh
# bench/siprec.sh — the SIPREC benchmark of docs/benchmarks.md ("SIPREC"):
# N concurrent two-leg calls of 20 s from sipp on this machine into a fresh
# `serve --dev`, N rising until the recorder loses 0.1 % of the packets;
# per N the recorder's loss (from each stored recording's capture
# statistics), its CPU and memory per call, and sipp's CPU for the same
# packets. Also the timeline assembler beside raw G.711 decoding
# (go test -bench, internal/rtpmix). Markdown on stdout, progress on stderr.
#
# Needs sipp (Debian's sip-tester; scripts/deps.sh installs it) and root
# (sipp plays RTP through a raw socket). About 5 minutes on 2 cores.
# Environment: CALLS (default 10,25,50,100,150,200), SECONDS_PER_CALL (20).
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d "${TMPDIR:-/tmp}/callvault-siprun-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
echo "# callvault SIPREC benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(sipp -v 2>/dev/null | grep -o 'SIPp v[0-9.]*' | head -1)"
echo
go build -o "$tmp/callvault" ./cmd/callvault
go build -o "$tmp/sipbench" ./bench/sipbench
"$tmp/sipbench" -bin "$tmp/callvault" -dir "$tmp" -calls "${CALLS:-10,25,50,100,150,200}" -seconds "${SECONDS_PER_CALL:-20}"
echo
echo '```'
go test -run '^$' -bench 'BenchmarkTimeline|BenchmarkDecodeReference' -benchtime 20x -count 6 ./internal/rtpmix | grep -E '^Benchmark'
echo '```'
