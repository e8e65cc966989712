#!/usr/bin/env bash
# bench/fault.sh (`make fault`; not part of `make test`): kill -9 under load,
# RUNS times (5), and check every acknowledged write. Each run starts the
# server on the same SQLite database, runs SUBMITTERS (4) loops that submit
# tasks and WORKERS (2) loops that claim and complete them (curl, one
# request at a time each), kills the server with SIGKILL at a random moment
# 1 to 4 s in, restarts it, and checks that every task whose submit got 201
# is stored and every task whose complete got 200 is completed. Exit 0 when
# nothing acknowledged was lost, else 1 (the lost ids are printed).
#
# Env: RUNS, SUBMITTERS, WORKERS, TASKMILL_BIN, TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
SUBMITTERS=${SUBMITTERS:-4}
WORKERS=${WORKERS:-2}
TASKMILL=${TASKMILL_BIN:-build/taskmill}
[[ -x $TASKMILL ]] || { echo "fault.sh: '$TASKMILL' is missing (make fault builds it)" >&2; exit 1; }

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/taskmill-fault.XXXXXX")
# shellcheck source=bench/lib.sh
. bench/lib.sh
LOOPS=()
stop_loops() {
    local p
    for p in "${LOOPS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${LOOPS[@]}"; do wait "$p" 2>/dev/null || true; done
    LOOPS=()
}
trap 'stop_loops; stop_server; rm -rf "$SCRATCH"' EXIT
DB="$SCRATCH/fault.db"
JSON='Content-Type: application/json'

# submitter K RUN: appends the id of every acknowledged submit to acked.submit.
submitter() {
    local url=$1 k=$2 run=$3 i=0 out
    while :; do
        out=$(curl -s -m 5 -w '\n%{http_code}' -H "$JSON" \
            -d "{\"type\":\"fault\",\"queue\":\"fq\",\"params\":{\"run\":$run,\"k\":$k,\"i\":$i}}" \
            "$url/v1/tasks") || { sleep 0.05; continue; }
        if [[ ${out##*$'\n'} == 201 ]]; then
            grep -o '"id":"[0-9a-f]\{32\}"' <<<"$out" | head -n 1 | cut -d'"' -f4 >>"$SCRATCH/acked.submit"
        fi
        i=$((i + 1))
    done
}

# worker: claims and completes; appends each acknowledged complete's id to acked.complete.
worker() {
    local url=$1 out id token
    while :; do
        out=$(curl -s -m 5 -w '\n%{http_code}' -H "$JSON" -d '{"worker":"fault"}' \
            "$url/v1/queues/fq/claim") || { sleep 0.05; continue; }
        [[ ${out##*$'\n'} == 200 ]] || { sleep 0.02; continue; }
        id=$(grep -o '"id":"[0-9a-f]\{32\}"' <<<"$out" | head -n 1 | cut -d'"' -f4)
        token=$(grep -o '"lease_token":"[0-9a-f]*"' <<<"$out" | head -n 1 | cut -d'"' -f4)
        out=$(curl -s -m 5 -w '\n%{http_code}' -H "$JSON" -d "{\"lease_token\":\"$token\"}" \
            "$url/v1/tasks/$id/complete") || continue
        [[ ${out##*$'\n'} == 200 ]] && echo "$id" >>"$SCRATCH/acked.complete"
    done
}

# Every id of the tasks in queue fq with the given phase ("" = any), sorted.
stored_ids() {
    local url=$1 phase=$2 cursor="" page
    while :; do
        page=$(curl -s -m 30 "$url/v1/tasks?queue=fq&limit=1000${phase:+&phase=$phase}${cursor:+&cursor=$cursor}")
        grep -o '{"id":"[0-9a-f]\{32\}"' <<<"$page" | cut -d'"' -f4
        cursor=$(grep -o '"next_cursor":"[0-9a-f]*"' <<<"$page" | cut -d'"' -f4 || true)
        [[ -n $cursor ]] || break
    done | sort -u
}

: >"$SCRATCH/acked.submit"
: >"$SCRATCH/acked.complete"
lost=0
echo "fault: $RUNS runs of kill -9 under $SUBMITTERS submitters and $WORKERS workers" \
    "(commit $(git rev-parse --short HEAD 2>/dev/null || echo -))"
for ((run = 1; run <= RUNS; run++)); do
    start_server "sqlite:$DB"
    url="http://127.0.0.1:$SERVER_PORT"
    for ((k = 0; k < SUBMITTERS; k++)); do
        submitter "$url" "$k" "$run" &
        LOOPS+=($!)
    done
    for ((k = 0; k < WORKERS; k++)); do
        worker "$url" &
        LOOPS+=($!)
    done
    sleep "$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 1 + 3 * rand() }')"
    kill9_server
    stop_loops
    start_server "sqlite:$DB"
    url="http://127.0.0.1:$SERVER_PORT"
    stored_ids "$url" "" >"$SCRATCH/stored.all"
    stored_ids "$url" completed >"$SCRATCH/stored.completed"
    sort -u "$SCRATCH/acked.submit" >"$SCRATCH/acked.submit.sorted"
    sort -u "$SCRATCH/acked.complete" >"$SCRATCH/acked.complete.sorted"
    miss_s=$(comm -23 "$SCRATCH/acked.submit.sorted" "$SCRATCH/stored.all" | wc -l)
    miss_c=$(comm -23 "$SCRATCH/acked.complete.sorted" "$SCRATCH/stored.completed" | wc -l)
    printf 'fault: run %d: %d submits and %d completes acknowledged so far; lost %d and %d\n' \
        "$run" "$(wc -l <"$SCRATCH/acked.submit.sorted")" \
        "$(wc -l <"$SCRATCH/acked.complete.sorted")" "$miss_s" "$miss_c"
    if ((miss_s + miss_c)); then
        comm -23 "$SCRATCH/acked.submit.sorted" "$SCRATCH/stored.all" | head -n 5 | sed 's/^/  lost submit: /'
        comm -23 "$SCRATCH/acked.complete.sorted" "$SCRATCH/stored.completed" | head -n 5 |
            sed 's/^/  lost complete: /'
        lost=1
    fi
    stop_server
done
((lost)) && echo "fault: acknowledged writes were LOST" || echo "fault: nothing acknowledged was lost"
exit $lost
