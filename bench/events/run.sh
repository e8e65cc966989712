#!/usr/bin/env bash
# bench/events/run.sh [BUILD_DIR]: the SSE fan-out benchmark. For 100 and
# 1,000 subscribers it starts BUILD_DIR/taskmill on a fresh SQLite database
# (durable: synchronous=FULL, group commit) on a free loopback port, runs
# BUILD_DIR/sse_bench against it, stops it, and prints the machine.
# The per-token rate limit is off (--max-rate 0): the writers are the load.
# Env: EVENTS heartbeats per run (20000), WRITERS (4), SUBS ("100 1000"),
# BUFFER the server's --events-buffer (65536: a burst must not cut readers off).
# Ownership: one server at a time, its own child, known by pid; the EXIT
# trap stops it and removes the scratch directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build}
EVENTS=${EVENTS:-20000}
WRITERS=${WRITERS:-4}
SUBS=${SUBS:-100 1000}
BUFFER=${BUFFER:-65536}
dir=$(mktemp -d "${TMPDIR:-/tmp}/taskmill-sse-bench-XXXXXX")
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT
for n in $SUBS; do
    rm -f "$dir"/t.db*
    "$B/taskmill" serve --listen 127.0.0.1:0 --store "sqlite:$dir/t.db" --max-rate 0 --events-buffer "$BUFFER" >"$dir/out" 2>"$dir/err" &
    pid=$!
    for _ in $(seq 50); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
    url=$(sed -n 's/^taskmill listening on //p' "$dir/out")
    [ -n "$url" ] || { echo "run.sh: the server did not start" >&2; cat "$dir/err" >&2; exit 1; }
    "$B/sse_bench" "$url" "$n" "$EVENTS" "$WRITERS"
    kill "$pid"; wait "$pid" || true; pid=""
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
