#!/usr/bin/env bash
# bench/peers/run-batch.sh - taskmill through its batched worker protocol
# (bench/peers/taskmill_batch.js, system "taskmill-batch") in the peers harness
# (../shared/bench/peers), beside the harness's own systems, in one run: one run id, one
# results file, one summary.
#
#   bench/peers/run-batch.sh [-s SYSTEMS] [-w WORKLOADS] [-r REPS] [-n N] [-c C] [-W W]
#                            [--steps S] [-d SECONDS] [-b BATCH] [-t RUN_TIMEOUT] [-o OUT_DIR]
#
# From the project root, after `make` (and `../shared/bench/peers/setup.sh install` for the
# harness's systems).
#   -s  systems in the order they run (default taskmill,taskmill-batch,http-mock,beanstalkd,bullmq):
#       taskmill-batch is this driver; every other name goes to the harness's run.sh, one
#       system per call, with this run's id and results file
#   -w  workloads (default W2, the one the batched calls change; W1 and W3 run too)
#   -b  BATCH: tasks per claim, and so per heartbeat and complete request (default 16, 1..100)
#   -r 3, -n 20000, -c 8, -W 8, --steps 4, -d 10, -t 600, -o /tmp/taskmill-bench/results:
#       as the harness's run.sh
# Env: TASKMILL_BIN (build/taskmill), TASKMILL_SERVE_ARGS (more `serve` flags for both
#   taskmill systems, e.g. --sqlite-exclusive), PEERS_DIR (../shared/bench/peers), and the harness's
#   BENCH_LOCK, LOCK_WAIT, STEAL_MAX, OTHER_MAX, NOISE_RETRIES, PB_BASE, HTTP_PORT, PB_RUN_ID.
#   TASKMILL_SERVER_CMD, when set, replaces the server command line (bench/peers-pg.sh sets it
#   to start taskmill on PostgreSQL); it receives HTTP_PORT and HTTP_DATA_DIR as run.sh's does.
#
# A taskmill-batch repetition is what run.sh does for a system: under `flock` on BENCH_LOCK,
# `setup.sh reset http` starts `taskmill serve` on a fresh SQLite store (the harness's
# taskmill command line), then the driver runs with --server-pidfile, so the server's CPU is
# counted the same way; a noisy repetition (steal > STEAL_MAX, other load > OTHER_MAX) is
# kept as discarded and run again up to NOISE_RETRIES times. Do not wrap this script in
# flock on BENCH_LOCK (it takes the lock for each repetition, as run.sh does).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PEERS=$(cd "${PEERS_DIR:-$HERE/../../../shared/bench/peers}" 2>/dev/null && pwd) || {
    echo "run-batch.sh: error: the peers harness is not at ${PEERS_DIR:-$HERE/../../../shared/bench/peers} (set PEERS_DIR)" >&2
    exit 2
}
DRIVER=$HERE/taskmill_batch.js
SYSTEMS=taskmill,taskmill-batch,http-mock,beanstalkd,bullmq
WORKLOADS=W2
REPS=3; N=20000; C=8; W=8; D=10; STEPS=4; RUN_TIMEOUT=600; BATCH=16
OUT_DIR=${OUT_DIR:-/tmp/taskmill-bench/results}
BENCH_LOCK=${BENCH_LOCK:-/tmp/taskmill-bench/bench.lock}
LOCK_WAIT=${LOCK_WAIT:-3600}
STEAL_MAX=${STEAL_MAX:-15}
OTHER_MAX=${OTHER_MAX:-25}
NOISE_RETRIES=${NOISE_RETRIES:-3}

die() { echo "run-batch.sh: error: $*" >&2; exit 2; }
usage() { sed -n '2,26p' "$0"; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        -s) SYSTEMS=${2:?}; shift 2;;
        -w) WORKLOADS=${2:?}; shift 2;;
        -r) REPS=${2:?}; shift 2;;
        -n) N=${2:?}; shift 2;;
        -c) C=${2:?}; shift 2;;
        -W) W=${2:?}; shift 2;;
        -d) D=${2:?}; shift 2;;
        -b) BATCH=${2:?}; shift 2;;
        --steps) STEPS=${2:?}; shift 2;;
        -t) RUN_TIMEOUT=${2:?}; shift 2;;
        -o) OUT_DIR=${2:?}; shift 2;;
        -h|--help) usage 0;;
        *) echo "run-batch.sh: unknown argument '$1'" >&2; usage 2;;
    esac
done
[[ "$STEPS" =~ ^[0-9]+$ ]] || die "--steps must be an integer >= 0"
for v in REPS N C W D RUN_TIMEOUT BATCH; do
    [[ "${!v}" =~ ^[0-9]+$ ]] && [ "${!v}" -gt 0 ] || die "$v must be a positive integer"
done
[ "$BATCH" -le 100 ] || die "-b (BATCH) must be at most 100, the server's cap on one claim"
[ "$RUN_TIMEOUT" -ge 30 ] || die "-t must be at least 30 seconds"
IFS=, read -r -a SYS_LIST <<<"$SYSTEMS"
IFS=, read -r -a WL_LIST <<<"$WORKLOADS"
for w in "${WL_LIST[@]}"; do case "$w" in W1|W2|W3) ;; *) die "unknown workload '$w' (W1, W2, W3)";; esac; done
command -v node >/dev/null || die "node not found"
command -v flock >/dev/null || die "flock not found (util-linux)"
TASKMILL_BIN=${TASKMILL_BIN:-$PWD/build/taskmill}
[ -x "$TASKMILL_BIN" ] || die "taskmill binary not found at $TASKMILL_BIN (set TASKMILL_BIN, or run from the project root after make)"
export TASKMILL_BIN
# the harness's taskmill server command (run.sh), so both taskmill systems run the same server
export TASKMILL_SERVER_CMD=${TASKMILL_SERVER_CMD:-"$TASKMILL_BIN serve --listen 127.0.0.1:\$HTTP_PORT --store sqlite:\$HTTP_DATA_DIR/taskmill.db${TASKMILL_SERVE_ARGS:+ $TASKMILL_SERVE_ARGS}"}
mkdir -p "$OUT_DIR/logs" "$(dirname "$BENCH_LOCK")" || die "cannot create $OUT_DIR"
RESULTS=$OUT_DIR/results.jsonl
RUN_ID=${PB_RUN_ID:-$(date -u +%Y%m%dT%H%M%SZ)-$$}
STARTED=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ "$STARTED" = 1 ] && HTTP_SERVER_CMD="$TASKMILL_SERVER_CMD" "$PEERS/setup.sh" stop http 2>/dev/null
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "run-batch.sh: interrupted" >&2; exit 130' INT TERM

echo "# run $RUN_ID  systems=$SYSTEMS workloads=$WORKLOADS reps=$REPS N=$N clients=$C workers=$W steps=$STEPS W3=${D}s batch=$BATCH"
echo "# host: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); taskmill $TASKMILL_BIN; results $RESULTS"

# the harness's noise rule (run.sh): "" when the record is clean, else why not
noise_verdict() {
    node -e '
      const r = JSON.parse(process.argv[1]); const sm = +process.argv[2], om = +process.argv[3];
      const other = (r.machine_cpu_pct ?? 0) - (r.client_cpu_pct ?? 0) - (r.server_cpu_pct ?? 0) - (r.kernel_threads_cpu_pct ?? 0);
      const why = [];
      if (r.steal_pct != null && r.steal_pct > sm) why.push(`steal ${r.steal_pct}% > ${sm}%`);
      if (r.machine_cpu_pct != null && other > om) why.push(`other load ${other.toFixed(0)}% > ${om}%`);
      process.stdout.write(why.join(", "));' "$1" "$STEAL_MAX" "$OTHER_MAX"
}
add_field() { # json key value(json)
    node -e 'const r=JSON.parse(process.argv[1]); r[process.argv[2]]=JSON.parse(process.argv[3]); process.stdout.write(JSON.stringify(r))' "$1" "$2" "$3"
}
json_str() { node -e 'process.stdout.write(JSON.stringify(process.argv[1]))' "$1"; }

batch_one() { # workload rep
    local wl=$1 rep=$2 attempt=0 out logf rc res verdict pidfile
    pidfile=$(HTTP_SERVER_CMD="$TASKMILL_SERVER_CMD" "$PEERS/setup.sh" pidfile http)
    STARTED=1
    while :; do
        attempt=$((attempt + 1))
        out=$(mktemp)
        logf="$OUT_DIR/logs/${RUN_ID}_taskmill-batch_${wl}_r${rep}_a${attempt}.log"
        # -o: servers started by the reset must not inherit the lock descriptor
        HTTP_SERVER_CMD="$TASKMILL_SERVER_CMD" BATCH="$BATCH" flock -o -w "$LOCK_WAIT" -E 75 "$BENCH_LOCK" \
            timeout -k 10 "$RUN_TIMEOUT" bash -c '
                set -e
                peers=$1 driver=$2; shift 2
                "$peers/setup.sh" reset http
                PEER_CONFIG=$("$peers/setup.sh" config http) exec node "$driver" "$@"' \
            _ "$PEERS" "$DRIVER" --workload "$wl" --n "$N" --clients "$C" --workers "$W" \
            --steps "$STEPS" --duration "$D" --timeout "$((RUN_TIMEOUT - 15))" \
            --server-pidfile "$pidfile" --label taskmill-batch >"$out" 2>"$logf"
        rc=$?
        res=$(grep -m1 '^RESULT {' "$out" | sed "s/^RESULT {/{\"run_id\":\"$RUN_ID\",\"rep\":$rep,\"attempt\":$attempt,\"batch\":$BATCH,/")
        cat "$out" >>"$logf"
        rm -f "$out"
        if [ "$rc" = 0 ] && [ -n "$res" ]; then
            verdict=$(noise_verdict "$res")
            if [ -n "$verdict" ] && [ "$attempt" -le "$NOISE_RETRIES" ]; then
                add_field "$res" discarded "$(json_str "$verdict")" >>"$RESULTS"
                echo >>"$RESULTS"
                echo "  taskmill-batch $wl rep $rep attempt $attempt discarded ($verdict); re-running" >&2
                continue
            fi
            [ -n "$verdict" ] && res=$(add_field "$res" noisy "$(json_str "$verdict (kept: retries exhausted)")")
            echo "$res" >>"$RESULTS"
            node -e 'const r=JSON.parse(process.argv[1]);console.error(`  ${r.system} ${r.workload} rep ${r.rep}: ${r.value} ${r.metric}  (${r.elapsed_s}s, steal ${r.steal_pct}%, verify ${r.verify})${r.noisy ? "  NOISY: " + r.noisy : ""}`)' "$res"
        else
            local why="driver exit code $rc" last
            [ "$rc" = 75 ] && why="could not take $BENCH_LOCK within ${LOCK_WAIT}s"
            { [ "$rc" = 124 ] || [ "$rc" = 137 ]; } && why="timed out after ${RUN_TIMEOUT}s"
            last=$(grep -E 'ERROR|error' "$logf" | tail -1)
            [ -n "$last" ] || last=$(tail -1 "$logf")
            echo "  taskmill-batch $wl rep $rep FAILED: $why; $last (log: $logf)" >&2
            echo "{\"run_id\":\"$RUN_ID\",\"rep\":$rep,\"attempt\":$attempt,\"system\":\"taskmill-batch\",\"workload\":\"$wl\",\"error\":$(json_str "$why: $last")}" >>"$RESULTS"
        fi
        break
    done
}

for sys in "${SYS_LIST[@]}"; do
    if [ "$sys" = taskmill-batch ]; then
        for wl in "${WL_LIST[@]}"; do
            for ((rep = 1; rep <= REPS; rep++)); do batch_one "$wl" "$rep"; done
        done
        HTTP_SERVER_CMD="$TASKMILL_SERVER_CMD" "$PEERS/setup.sh" stop http 2>/dev/null
        STARTED=0
    else
        PB_RUN_ID=$RUN_ID "$PEERS/run.sh" -s "$sys" -w "$WORKLOADS" -r "$REPS" -n "$N" -c "$C" -W "$W" \
            -d "$D" --steps "$STEPS" -t "$RUN_TIMEOUT" -o "$OUT_DIR"
    fi
done

echo "# results of run $RUN_ID (median of $REPS kept reps; cpu 100% = one core; taskmill-batch: $BATCH tasks per worker request)"
node "$PEERS/lib/summarize.js" "$RESULTS" --run "$RUN_ID"
