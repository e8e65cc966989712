#!/usr/bin/env bash
# bench/scale/run.sh: grows one store and times every request at each size
# (bench/scale/scale.c; docs/performance.md, "At scale").
#
#   bench/scale/run.sh [--pg URL] [--sizes 10000,100000,1000000] [--samples 200]
#                      [--rate-tasks 30000]
#
# SQLite (the default) in a fresh temporary directory; with --pg, a
# PostgreSQL database URL that must be empty (scripts/pg.sh makes one).
# The server is built/h16's or TASKMILL_BIN's, in open mode on a free
# loopback port, with --max-rate 0 so the growth is not throttled. It runs
# one server, its own child, known by pid, and stops it at the end.
# Sizes of 10,000,000 are allowed ("--sizes 10000,1000000,10000000") and
# take hours on a small machine.
set -euo pipefail
TASKMILL=${TASKMILL_BIN:-build/h16/taskmill}
SCALE=${SCALE_BIN:-build/h16/scale}
PG=""
ARGS=()
while (($#)); do
    case $1 in
    --pg) PG=$2; shift 2 ;;
    --sizes | --samples | --rate-tasks) ARGS+=("$1" "$2"); shift 2 ;;
    *) echo "usage: $0 [--pg URL] [--sizes A,B,...] [--samples N] [--rate-tasks N]" >&2; exit 2 ;;
    esac
done
for bin in "$TASKMILL" "$SCALE"; do
    [[ -x $bin ]] || { echo "run.sh: '$bin' is missing: make B=build/h16 build/h16/taskmill build/h16/scale" >&2; exit 1; }
done
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/taskmill-scale.XXXXXX")
PID=""
cleanup() {
    if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [[ -n $PG ]]; then
    STORE=$PG
    WHERE=(--pg "$PG")
else
    STORE="sqlite:$SCRATCH/scale.db"
    WHERE=(--sqlite "$SCRATCH/scale.db")
fi
: >"$SCRATCH/out"
"$TASKMILL" serve --listen 127.0.0.1:0 --store "$STORE" --max-rate 0 </dev/null \
    >"$SCRATCH/out" 2>"$SCRATCH/err" &
PID=$!
line=""
for ((i = 0; i < 100; i++)); do
    if IFS= read -r line <"$SCRATCH/out" && [[ $line == "taskmill listening on http://"* ]]; then
        break
    fi
    line=""
    kill -0 "$PID" 2>/dev/null || { tail -n 20 "$SCRATCH/err" >&2; exit 1; }
    sleep 0.1
done
[[ -n $line ]] || { echo "run.sh: the server did not say where it listens" >&2; exit 1; }
URL=${line#taskmill listening on }
"$SCALE" --url "$URL" --pid "$PID" "${WHERE[@]}" "${ARGS[@]}"
