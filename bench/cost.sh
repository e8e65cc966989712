#!/usr/bin/env bash
# bench/cost.sh - what one operation costs the server, counted rather than timed:
# instructions in user space (valgrind's cachegrind) and system calls (strace), for
# one or more taskmill binaries side by side.
#
#   bench/cost.sh [-w WORKLOADS] [-n N1,N2] [-c C] [-s] BIN [BIN...]
#
#   -w  workloads, comma-separated (default submit,lifecycle): submit, lifecycle, batch
#       (the lifecycle through the batched worker protocol, 16 a request)
#   -n  the two run sizes (default 200,1200): each figure is the difference between a run
#       of N2 operations and one of N1, divided by N2-N1, so start-up, migrations and
#       shut-down cancel out
#   -c  clients (and lifecycle workers) of loadgen (default 1: one request at a time, so
#       every run batches the same way and the counts repeat)
#   -s  also count system calls (strace -f over the N2 run without valgrind)
#
# Prints, per binary and workload: instructions per operation (a submit, or a whole
# task for lifecycle and batch) and, with -s, system calls per operation by name.
# Timings on a shared VM move by 20% from run to run; these counts repeat within about
# 1% (two runs of the same binary), so they show a change of a few percent in the
# server's own work. They do not count time in the kernel or waiting: a system call is
# one count here whatever it costs. docs/performance.md, "Counting instead of timing".
#
# Needs valgrind (and strace for -s) and build/loadgen (LOADGEN_BIN).
set -uo pipefail

WORKLOADS=submit,lifecycle
SIZES=200,1200
C=1
SYSCALLS=0
LOADGEN=${LOADGEN_BIN:-build/loadgen}

die() { echo "cost.sh: error: $*" >&2; exit 2; }
usage() { sed -n '2,24p' "$0"; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        -w) WORKLOADS=${2:?}; shift 2;;
        -n) SIZES=${2:?}; shift 2;;
        -c) C=${2:?}; shift 2;;
        -s) SYSCALLS=1; shift;;
        -h|--help) usage 0;;
        -*) die "unknown option $1";;
        *) break;;
    esac
done
[ $# -ge 1 ] || usage 2
IFS=, read -r N1 N2 <<<"$SIZES"
[[ "$N1" =~ ^[0-9]+$ && "$N2" =~ ^[0-9]+$ && "$N2" -gt "$N1" ]] || die "-n wants N1,N2 with N2 > N1"
[[ "$C" =~ ^[0-9]+$ && "$C" -ge 1 ]] || die "-c wants a number of clients"
command -v valgrind >/dev/null || die "valgrind not found (apt-get install valgrind)"
[ "$SYSCALLS" = 0 ] || command -v strace >/dev/null || die "strace not found"
[ -x "$LOADGEN" ] || die "loadgen not found at $LOADGEN (make build/loadgen)"
for b in "$@"; do [ -x "$b" ] || die "not an executable: $b"; done

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/taskmill-cost.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT

# loadgen's arguments for a workload of n operations.
load_args() {
    case "$1" in
        submit) echo "--workload submit -n $2 -c $C";;
        lifecycle) echo "--workload lifecycle -n $2 -c $C -w $C";;
        batch) echo "--workload lifecycle -n $2 -c $C -w $C --batch 16";;
        *) die "unknown workload $1";;
    esac
}

# start WRAPPER... BIN: starts the server on a fresh database under WRAPPER; sets PID, PORT.
start() {
    local d=$SCRATCH/run.$RANDOM$RANDOM
    mkdir -p "$d"
    "$@" serve --listen 127.0.0.1:0 --store "sqlite:$d/t.db" >"$d/out" 2>"$d/err" &
    PID=$!
    RUN=$d
    PORT=
    for _ in $(seq 600); do
        PORT=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\).*/\1/p' "$d/out" | head -1)
        [ -n "$PORT" ] && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    die "the server did not start: $(tail -3 "$d/err")"
}

stop() {
    kill -TERM "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
}

# A failure once the server runs: stop it first.
fail() {
    stop
    die "$@"
}

# Instructions of the server over one run of n operations.
instructions() {
    local bin=$1 wl=$2 n=$3
    start valgrind --tool=cachegrind --cache-sim=no \
        --cachegrind-out-file=/dev/null --log-file="$SCRATCH/vg.%p" "$bin"
    # shellcheck disable=SC2046
    "$LOADGEN" --url "http://127.0.0.1:$PORT" $(load_args "$wl" "$n") --timeout 900 \
        >"$RUN/load" 2>&1 || fail "loadgen failed under valgrind: $(tail -2 "$RUN/load")"
    stop
    local ir
    ir=$(sed -n 's/.*I *refs: *\([0-9,]*\).*/\1/p' "$SCRATCH/vg.$PID" | tr -d ,)
    rm -f "$SCRATCH/vg.$PID"
    [ -n "$ir" ] || die "no instruction count from valgrind"
    echo "$ir"
}

# System calls of the server over one run of n operations, as "name count" lines.
syscalls() {
    local bin=$1 wl=$2 n=$3
    start "$bin"
    strace -c -f -q -p "$PID" -o "$RUN/strace" 2>/dev/null &
    local tracer=$!
    sleep 0.5
    # shellcheck disable=SC2046
    "$LOADGEN" --url "http://127.0.0.1:$PORT" $(load_args "$wl" "$n") >"$RUN/load" 2>&1 ||
        fail "loadgen failed under strace: $(tail -2 "$RUN/load")"
    kill -INT "$tracer"
    wait "$tracer" 2>/dev/null
    stop
    awk '$NF != "total" && $1 ~ /^[0-9.]+$/ { print $NF, $4 }' \
        "$RUN/strace"
}

echo "cost.sh: ${SIZES/,/ and } operations a run, $C client(s); $(nproc) CPUs, $(uname -r)"
for wl in ${WORKLOADS//,/ }; do
    for bin in "$@"; do
        a=$(instructions "$bin" "$wl" "$N1") || exit 2
        b=$(instructions "$bin" "$wl" "$N2") || exit 2
        per=$(( (b - a) / (N2 - N1) ))
        line="$wl  $bin  instructions/op $per"
        if [ "$SYSCALLS" = 1 ]; then
            calls=$(syscalls "$bin" "$wl" "$N2" | sort -k2 -n -r |
                awk -v n="$N2" '{ printf "%s %.2f  ", $1, $2 / n; t += $2 } END { printf "(all %.2f)", t / n }')
            line="$line  syscalls/op: $calls"
        fi
        echo "$line"
    done
done
