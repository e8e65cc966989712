# bench/lib.sh: what bench/soak.sh and bench/fault.sh share (sourced, not run).
# Each caller sets SCRATCH (its scratch dir) and TASKMILL (the binary) first.
# One server at a time, the caller's child, known by SERVER_PID.

SERVER_PID=""
SERVER_PORT=""

# Starts a server on store URL $1 with the extra args $2...; sets SERVER_PID
# and SERVER_PORT. Its stdout and stderr go to $SCRATCH/server.{out,err}.
start_server() {
    local store=$1 out="$SCRATCH/server.out" err="$SCRATCH/server.err" line="" i
    shift
    : >"$out"
    "$TASKMILL" serve --listen 127.0.0.1:0 --store "$store" "$@" </dev/null >"$out" 2>>"$err" &
    SERVER_PID=$!
    for ((i = 0; i < 200; i++)); do
        if IFS= read -r line <"$out" && [[ $line == "taskmill listening on http://"* ]]; then
            break
        fi
        line=""
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "${0##*/}: the server exited at start; its stderr:" >&2
            tail -n 20 "$err" >&2
            SERVER_PID=""
            return 1
        fi
        sleep 0.1
    done
    [[ -n $line ]] || { echo "${0##*/}: the server did not start in 20 s" >&2; return 1; }
    SERVER_PORT=${line##*:}
}

# Stops the server: TERM, then KILL after 10 s.
stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        local i
        for ((i = 0; i < 100; i++)); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# Kills the server at once (no shutdown at all).
kill9_server() {
    [[ -n $SERVER_PID ]] || return 0
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# The server's resident memory, in KiB.
server_rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0
}

# Prints the value of "key" in the one-line JSON object $2 (numbers and plain strings).
json_field() {
    sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$2"
}
