#!/usr/bin/env bash
# bench/soak.sh (`make soak`; not part of `make test`): churns TOTAL tasks
# (1,000,000) through submit, claim, four progress heartbeats and complete,
# in rounds of ROUND (50,000) driven by build/loadgen's lifecycle workload
# (batched worker protocol, BATCH tasks a request, 16; BATCH=0: one call a
# task), against one server on one SQLite database with retention on:
# finished tasks deleted after KEEP seconds (10) and at most EVENTS events
# kept (200,000). After each round it prints the database's bytes (file and
# WAL), the server's RSS, the tasks the store still holds, and the round's
# rate and p50/p99 latency; at the end it compares the last round with the
# second (the first warms up) and says whether size, memory and latency
# stayed flat (within FLAT times: 1.5). Exit 0 when every round passed
# loadgen's checks and everything stayed flat, else 1.
#
# Env: TOTAL, ROUND, BATCH, KEEP, EVENTS, FLAT, C (8 submitters), W (8
# workers), TASKMILL_BIN, LOADGEN_BIN, TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."

TOTAL=${TOTAL:-1000000}
ROUND=${ROUND:-50000}
BATCH=${BATCH:-16}
KEEP=${KEEP:-10}
EVENTS=${EVENTS:-200000}
FLAT=${FLAT:-1.5}
C=${C:-8}
W=${W:-8}
TASKMILL=${TASKMILL_BIN:-build/taskmill}
LOADGEN=${LOADGEN_BIN:-build/loadgen}
for bin in "$TASKMILL" "$LOADGEN"; do
    [[ -x $bin ]] || { echo "soak.sh: '$bin' is missing (make soak builds it)" >&2; exit 1; }
done

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/taskmill-soak.XXXXXX")
# shellcheck source=bench/lib.sh
. bench/lib.sh
trap 'stop_server; rm -rf "$SCRATCH"' EXIT
DB="$SCRATCH/soak.db"

start_server "sqlite:$DB" --finished-max-age-seconds "$KEEP" --events-max-count "$EVENTS"
echo "soak: $TOTAL tasks in rounds of $ROUND (batch $BATCH), finished tasks kept ${KEEP}s," \
    "events kept $EVENTS; $(nproc) CPUs; commit $(git rev-parse --short HEAD 2>/dev/null || echo -)"
printf '%6s %10s %10s %9s %9s %9s %9s %9s\n' round done db_MiB rss_MiB stored tasks/s p50_ms p99_ms

rounds=$(((TOTAL + ROUND - 1) / ROUND))
declare -a SIZE RSS P99
ok=0
for ((i = 1; i <= rounds; i++)); do
    args=(--url "http://127.0.0.1:$SERVER_PORT" --workload lifecycle -n "$ROUND" -c "$C" -w "$W"
        --timeout 3600)
    ((BATCH > 0)) && args+=(--batch "$BATCH")
    if ! out=$("$LOADGEN" "${args[@]}" 2>&1); then
        echo "soak: round $i failed:" >&2
        tail -n 5 <<<"$out" >&2
        exit 1
    fi
    result=$(grep '^RESULT ' <<<"$out" | tail -n 1)
    # Let retention catch up with this round before measuring.
    sleep $((KEEP + 3))
    bytes=$(($(stat -c %s "$DB") + $(stat -c %s "$DB-wal" 2>/dev/null || echo 0)))
    # The tasks the store holds (loadgen uses one queue).
    stored=$(curl -s "http://127.0.0.1:$SERVER_PORT/v1/queues" | grep -o '"total":[0-9]*' |
        head -n 1 | cut -d: -f2)
    SIZE[i]=$bytes
    RSS[i]=$(server_rss_kib)
    P99[i]=$(json_field p99_ms "$result")
    printf '%6d %10d %10.1f %9.1f %9s %9.0f %9s %9s\n' "$i" $((i * ROUND)) \
        "$(awk "BEGIN { print $bytes / 1048576 }")" "$(awk "BEGIN { print ${RSS[i]} / 1024 }")" "${stored:-?}" \
        "$(json_field ops_per_s "$result")" "$(json_field p50_ms "$result")" "${P99[i]}"
done

# Flat: the last round within FLAT times the second (the first warms up).
first=$((rounds >= 2 ? 2 : 1))
verdict() { # name first last
    if awk "BEGIN { exit !($3 <= $2 * $FLAT) }"; then
        echo "soak: $1 flat: $2 -> $3"
    else
        echo "soak: $1 GREW: $2 -> $3 (more than ${FLAT}x)"
        ok=1
    fi
}
verdict "database bytes" "${SIZE[first]}" "${SIZE[rounds]}"
verdict "server RSS KiB" "${RSS[first]}" "${RSS[rounds]}"
verdict "p99 ms" "${P99[first]}" "${P99[rounds]}"
exit $ok
