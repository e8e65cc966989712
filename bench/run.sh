#!/usr/bin/env bash
# bench/run.sh: taskmill's benchmark. For each workload (submit, lifecycle,
# read) it starts build/taskmill on a fresh SQLite database on a free loopback
# port, drives it with build/loadgen, measures the server's CPU time from
# /proc/PID/stat, stops it, and at the end prints every figure next to the
# machine it was measured on. `make bench` runs it after building both.
#
# Env: N tasks (20000), C clients (8), DURATION read seconds (10), WORKERS
# lifecycle workers (8), WORKLOADS ("submit lifecycle read"; also "batch": the
# lifecycle through the batched worker protocol, BATCH tasks a request, 16), TIMEOUT loadgen
# watchdog per workload (60), TASKMILL_BIN, LOADGEN_BIN, TMPDIR.
# Ownership: it runs one server at a time, its own child, known by pid
# (bench/lib.sh starts and stops it); the EXIT trap stops it (TERM, then KILL
# after 10 s) and removes the scratch dir.
# Exit status: 0 when every workload passed loadgen's checks, else 1.
set -euo pipefail

cd "$(dirname "$0")/.."

N=${N:-20000}
C=${C:-8}
DURATION=${DURATION:-10}
WORKERS=${WORKERS:-8}
BATCH=${BATCH:-16}
WORKLOADS=${WORKLOADS:-submit lifecycle read}
TIMEOUT=${TIMEOUT:-60}
TASKMILL=${TASKMILL_BIN:-build/taskmill}
LOADGEN=${LOADGEN_BIN:-build/loadgen}
DURABILITY="synchronous=FULL, WAL, group commit"

die() {
    echo "run.sh: $*" >&2
    exit 1
}

for var in N C DURATION WORKERS TIMEOUT BATCH; do
    [[ ${!var} =~ ^[1-9][0-9]*$ ]] || die "'$var' must be a positive integer, not '${!var}'"
done
for w in $WORKLOADS; do
    [[ $w == submit || $w == lifecycle || $w == read || $w == batch ]] || die "unknown workload '$w'"
done
for bin in "$TASKMILL" "$LOADGEN"; do
    [[ -x $bin ]] || die "'$bin' is missing: build it first (make bench builds both)"
done

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/taskmill-bench.XXXXXX")
# shellcheck source=bench/lib.sh
. bench/lib.sh
CLK_TCK=$(getconf CLK_TCK)

cleanup() {
    stop_server
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# utime + stime of process $1, in clock ticks.
proc_cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat") || return 1
    stat=${stat##*) } # drop "pid (comm) ": comm may hold spaces
    local -a f
    read -r -a f <<<"$stat"
    echo $((f[11] + f[12])) # fields 14 and 15; f[0] is field 3
}

machine_lines() {
    local model mem
    model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
    [[ -n $model ]] || model=$(uname -m)
    mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    echo "machine   : $(nproc) CPUs ($model), $mem memory, $(uname -sr)"
    echo "taskmill  : $TASKMILL, store sqlite ($DURABILITY)$(git rev-parse --short HEAD 2>/dev/null | sed 's/^/, commit /')"
    echo "load      : loadgen on the same machine, N=$N C=$C workers=$WORKERS duration=${DURATION}s"
}

SUMMARY=()
FAILED=()

# Runs workload $1 on a fresh server and database; appends to SUMMARY or FAILED.
run_workload() {
    local w=$1
    local out="$SCRATCH/$w.out" rc=0
    if ! start_server "sqlite:$SCRATCH/bench-$w.db"; then
        FAILED+=("$w (server did not start)")
        return 0
    fi
    echo "== $w: server pid $SERVER_PID on 127.0.0.1:$SERVER_PORT, database $SCRATCH/bench-$w.db"
    local lw=$w
    [[ $w != batch ]] || lw=lifecycle
    local -a args=(--url "http://127.0.0.1:$SERVER_PORT" --workload "$lw" -n "$N" -c "$C"
        --timeout "$TIMEOUT" --server-pid "$SERVER_PID")
    [[ $lw != lifecycle ]] || args+=(-w "$WORKERS")
    [[ $w != batch ]] || args+=(--batch "$BATCH")
    [[ $w != read ]] || args+=(--duration "$DURATION")

    local cpu0 cpu1 t0 t1
    cpu0=$(proc_cpu_ticks "$SERVER_PID") || cpu0=0
    t0=$(date +%s.%N)
    # In the background, so that a signal's trap runs at once rather than after loadgen;
    # stopping the server then ends loadgen too.
    ("$LOADGEN" "${args[@]}" | tee "$out") &
    wait $! || rc=$?
    t1=$(date +%s.%N)
    if ! cpu1=$(proc_cpu_ticks "$SERVER_PID") || ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "run.sh: the server died during '$w'; its stderr:" >&2
        tail -n 20 "$SCRATCH/server.err" >&2
        cpu1=$cpu0
        rc=1
    fi
    stop_server

    local result
    result=$(grep '^RESULT ' "$out" | tail -n 1 || true)
    if ((rc != 0)) || [[ -z $result ]]; then
        echo "run.sh: '$w' failed; the server's last stderr lines:" >&2
        tail -n 20 "$SCRATCH/server.err" >&2
        FAILED+=("$w (loadgen exit $rc)")
        return 0
    fi
    local ops ops_s p50 p99 max win_us steal other extra=""
    ops=$(json_field ops "$result")
    ops_s=$(json_field ops_per_s "$result")
    p50=$(json_field p50_ms "$result")
    p99=$(json_field p99_ms "$result")
    max=$(json_field max_ms "$result")
    win_us=$(json_field server_cpu_us_per_op "$result")
    steal=$(json_field steal_pct "$result")
    other=$(json_field other_cpu_pct "$result")
    [[ $lw != lifecycle ]] || extra="$(json_field heartbeats_per_s "$result") heartbeats/s; latency is end to end"
    [[ $w != batch ]] || extra="$extra; $BATCH tasks a worker request"
    SUMMARY+=("$(awk -v w="$w" -v ops="$ops" -v ops_s="$ops_s" -v p50="$p50" -v p99="$p99" \
        -v max="$max" -v win="${win_us:--}" -v c0="$cpu0" -v c1="$cpu1" -v tck="$CLK_TCK" \
        -v steal="${steal:--}" -v other="${other:--}" -v wall0="$t0" -v wall1="$t1" \
        -v extra="$extra" 'BEGIN {
            cpu = (c1 - c0) / tck
            printf "%-10s %7d %10.1f %8.3f %8.3f %8.3f %10s %12.1f %7.1f s %6s%% %6s%%", w, ops,
                ops_s, p50, p99, max, win, cpu * 1e6 / ops, wall1 - wall0, steal, other
            if (extra != "") printf "   (%s)", extra
        }')")
}

echo "taskmill benchmark: workloads '$WORKLOADS', scratch $SCRATCH"
machine_lines
for w in $WORKLOADS; do
    run_workload "$w"
done

echo
echo "== taskmill benchmark results"
machine_lines
echo "server CPU µs/op: 'window' over the timed window only (loadgen, from /proc/PID/stat);"
echo "'whole' over the whole loadgen run, including connection setup and the read preload."
echo "steal, other: CPU the hypervisor gave to other guests, and CPU used by processes other"
echo "than loadgen and the server, over the timed window, in % of all CPUs: high means noise."
# A literal header: printf pads by bytes, and 'µ' is two of them.
echo "workload       ops      ops/s   p50 ms   p99 ms   max ms  window µs  whole µs/op       run   steal   other"
for line in "${SUMMARY[@]}"; do
    echo "$line"
done
if ((${#FAILED[@]})); then
    for f in "${FAILED[@]}"; do
        echo "FAILED: $f"
    done
    exit 1
fi
