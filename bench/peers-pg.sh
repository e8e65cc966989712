#!/usr/bin/env bash
# bench/peers-pg.sh - taskmill on PostgreSQL (1 and 2 nodes) beside pg-boss on the same
# PostgreSQL, with taskmill on SQLite, the HTTP mock and BullMQ for reference, in one run of
# the peers harness (../shared/bench/peers), counting PostgreSQL's CPU with the server's.
#
#   bench/peers-pg.sh [-n N] [-d SECONDS] [-w W1,W2,W3] [-r REPS] [-s SYSTEMS] [-o OUT_DIR] [--no-probe]
#   bench/peers-pg.sh summary OUT_DIR        print the tables of a finished run again
#
# From the project root, after `make` and `../shared/bench/peers/setup.sh install`.
#   -n 10000 tasks, -d 10 s of W3 reads, -w W1,W2,W3, -r 1 repetition per (system, workload)
#   -s tm-sqlite,tm-pg1,tm-pg2,pgboss,http-mock,bullmq (the default: all of them)
#        tm-sqlite  taskmill on SQLite (one node)
#        tm-pg1     taskmill on PostgreSQL, one node
#        tm-pg2     taskmill on PostgreSQL, two nodes: two `taskmill serve --reuse-port`
#                   on one port and one database
#        tm-sqlite-batch, tm-pg1-batch, tm-pg2-batch
#                   the same servers driven by taskmill's batched worker protocol
#                   (bench/peers/taskmill_batch.js through bench/peers/run-batch.sh: W2's
#                   workers claim, heartbeat and complete 16 tasks a request; W1 and W3 are
#                   the harness's own)
#        pgboss     pg-boss (its logic runs in the client; its server is PostgreSQL)
#        http-mock  the harness's in-memory Node server (the HTTP client's ceiling)
#        bullmq     BullMQ on Redis
#   -o OUT_DIR  default /tmp/taskmill-bench/peers-pg-<UTC time>; results, logs and tables
#   --no-probe  skip the commit probe (pg_test_fsync and three pgbench runs, about 40 s)
# Env: TASKMILL_BIN (build/taskmill; TASKMILL_DESC says what it was built from),
#   PEERS_DIR (../shared/bench/peers), PB_BASE (/tmp/peers-bench), PG_PORT (25432),
#   PGBIN (/usr/lib/postgresql/15/bin), OTHER_MAX, STEAL_MAX, NOISE_RETRIES (the harness's).
#
# Every PostgreSQL-backed system uses the harness's PostgreSQL (setup.sh's `postgres` peer,
# 127.0.0.1:$PG_PORT, the one pg-boss runs on). taskmill gets a fresh database
# (taskmill_bench) every repetition: the server command (this script's `serve` mode, run by
# setup.sh) drops and creates it, migrates it with a throwaway node, checkpoints, and then
# starts the node(s) as its children, so the harness's server CPU counts every node.
#
# PostgreSQL's CPU: utime+stime of the postmaster and all its descendants, plus the
# postmaster's cutime+cstime (backends that exited), from /proc. It is read
#   - over the harness's timed window: a module preloaded into the driver (NODE_OPTIONS
#     --require) reads it whenever the harness's CPU meter starts and stops (its
#     process.cpuUsage() calls). This is the PG figure used per operation. For pg-boss it is
#     the same process tree the harness already measures as pg-boss's server (cross-check).
#   - over the whole run.sh invocation (reset, database creation, migrations, preload,
#     verify included), for the record.
# The harness's noise guard counts PostgreSQL's CPU as "other load" when the server is
# taskmill, so tm-pg runs turn it off in run.sh (OTHER_MAX=1000 NOISE_RETRIES=0) and this
# script applies it instead, with PostgreSQL's CPU not counted as other load: a noisy run
# (other > OTHER_MAX=25 %, steal > STEAL_MAX=15 %) is re-run up to NOISE_RETRIES=3 times,
# as the harness does for the other systems, and flagged in the table if kept noisy.
set -uo pipefail

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
ROOT=$(cd "$(dirname "$SELF")/.." && pwd)
PB_BASE=${PB_BASE:-/tmp/peers-bench}
PG_PORT=${PG_PORT:-25432}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_DB=taskmill_bench
OTHER_MAX_PG=${OTHER_MAX:-25}        # the harness's noise guard, applied here to taskmill on PG
NOISE_RETRIES_PG=${NOISE_RETRIES:-3}
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

die() { echo "peers-pg.sh: error: $*" >&2; exit 2; }
say() { echo "peers-pg.sh: $*" >&2; }
psql_pg() { # db args...: psql as the cluster's superuser over TCP (trust, as setup.sh sets it up)
    local db=$1; shift
    "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$db" -v ON_ERROR_STOP=1 -qAtX "$@"
}

# ---------------------------------------------------------------- serve mode
# The HTTP_SERVER_CMD of the taskmill systems. setup.sh runs it in the foreground with
# HTTP_PORT and HTTP_DATA_DIR, stops it with SIGTERM. On SIGTERM it scrapes /metrics from
# every node (new connections land on either node; nodes are told apart by their counters),
# notes each node's CPU, then stops the nodes.
# Scrape /metrics of every node listening on HTTP_PORT. With --reuse-port a new connection
# goes to any node, so each connection's server end is looked up (ss -p) to learn which node
# answers it; connections are opened until every node has answered once.
scrape_nodes() { # tag logdir instance pid...
    local tag=$1 logdir=$2 inst=$3; shift 3
    local -A done=()
    local k j lport owner resp t
    for ((k = 0; k < 100 && ${#done[@]} < $#; k++)); do
        exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT" || { sleep 0.05; continue; }
        lport=$(ss -tnpH state established "( dport = :$HTTP_PORT )" | awk -v me="pid=$$,fd=3)" 'index($0, me) { n = split($3, a, ":"); print a[n]; exit }')
        owner=""
        j=0
        while [ -n "$lport" ] && [ -z "$owner" ] && [ "$j" -lt 50 ]; do
            owner=$(ss -tnpH state established "( sport = :$HTTP_PORT and dport = :$lport )" | sed -n 's/.*pid=\([0-9]*\),.*/\1/p' | head -1)
            [ -n "$owner" ] || sleep 0.01
            j=$((j + 1))
        done
        if [ -z "$owner" ] || [ -n "${done[$owner]:-}" ]; then exec 3<&-; continue; fi
        printf 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
        resp=$(timeout 3 cat <&3)
        exec 3<&-
        done[$owner]=1
        t=$(sed 's/^.*) //' "/proc/$owner/stat" 2>/dev/null | awk '{print $12 + $13}')
        awk -v tag="$tag" -v inst="$inst" -v pid="$owner" -v ticks="${t:-null}" -v clk="$CLK_TCK" '
            /^taskmill_store_|^taskmill_feed_|^taskmill_events_appended_total|^taskmill_event_seq / { v[$1] = $2 }
            /^taskmill_http_replies_total/ { split($1, a, "\""); v["replies_" a[2]] = $2 }
            END { printf "{\"tag\":\"%s\",\"instance\":%s,\"pid\":%s,\"cpu_ticks\":%s,\"clk_tck\":%s", tag, inst, pid, ticks, clk
                  for (k in v) printf ",\"%s\":%s", k, v[k]; print "}" }' <<<"$resp" >>"$logdir/$tag.metrics.jsonl"
    done
    [ "${#done[@]}" = $# ] || echo "{\"tag\":\"$tag\",\"instance\":$inst,\"error\":\"/metrics scraped from ${#done[@]} of $# nodes\"}" >>"$logdir/$tag.metrics.jsonl"
}

serve_main() {
    local store=sqlite nodes=1 bin="" tag=serve logdir=/tmp
    while [ $# -gt 0 ]; do
        case "$1" in
            --store) store=$2; shift 2;;
            --nodes) nodes=$2; shift 2;;
            --bin) bin=$2; shift 2;;
            --tag) tag=$2; shift 2;;
            --log-dir) logdir=$2; shift 2;;
            *) die "serve: unknown argument '$1'";;
        esac
    done
    : "${HTTP_PORT:?serve needs HTTP_PORT}" "${HTTP_DATA_DIR:?serve needs HTTP_DATA_DIR}"
    [ -x "$bin" ] || die "serve: no taskmill binary at '$bin'"
    mkdir -p "$logdir"
    local stopping=0 rc=0 inst
    trap 'stopping=1' TERM INT
    # one set of logs per start (a run.sh invocation starts the server once per repetition)
    inst=$(($(find "$logdir" -maxdepth 1 -name "$tag.*.node1.log" | wc -l) + 1))
    local url extra=() i
    case "$store" in
        sqlite) url="sqlite:$HTTP_DATA_DIR/taskmill.db";;
        pg)
            url="postgres://postgres@127.0.0.1:$PG_PORT/$PG_DB"
            extra=(--reuse-port)
            psql_pg postgres -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" -c "CREATE DATABASE $PG_DB" \
                || die "serve: could not recreate database $PG_DB"
            # migrate with a throwaway node, so that every node starts at once on a migrated
            # database and all are listening before the harness connects
            local mlog="$logdir/$tag.$inst.migrate.log"
            "$bin" serve --listen 127.0.0.1:0 --store "$url" </dev/null >"$mlog" 2>&1 &
            local mpid=$!
            for ((i = 0; i < 300; i++)); do
                grep -q 'listening on' "$mlog" && break
                kill -0 "$mpid" 2>/dev/null || break
                sleep 0.1
            done
            grep -q 'listening on' "$mlog" || { cat "$mlog" >&2; die "serve: the migrating node did not start"; }
            kill -TERM "$mpid"; wait "$mpid"
            psql_pg postgres -c CHECKPOINT || die "serve: CHECKPOINT failed"
            ;;
        *) die "serve: --store sqlite|pg";;
    esac
    local pids=()
    for ((i = 1; i <= nodes; i++)); do
        "$bin" serve --listen "127.0.0.1:$HTTP_PORT" "${extra[@]}" --store "$url" \
            </dev/null >"$logdir/$tag.$inst.node$i.log" 2>&1 &
        pids+=($!)
    done
    # wait until every node listens (the port opens with the first one)
    for ((i = 1; i <= nodes; i++)); do
        local k
        for ((k = 0; k < 300; k++)); do
            grep -q 'listening on' "$logdir/$tag.$inst.node$i.log" 2>/dev/null && break
            sleep 0.05
        done
    done
    echo "peers-pg.sh serve: $nodes node(s) on 127.0.0.1:$HTTP_PORT, store ${url%%\?*}, pids ${pids[*]}"
    while [ "$stopping" = 0 ]; do
        wait -n "${pids[@]}"; rc=$?
        [ "$stopping" = 1 ] && break
        echo "peers-pg.sh serve: a node exited by itself (status $rc); stopping the others" >&2
        echo "{\"tag\":\"$tag\",\"instance\":$inst,\"error\":\"a node exited by itself with status $rc\"}" >>"$logdir/$tag.metrics.jsonl"
        break
    done
    # one JSON line per node: its counters (from its own /metrics) and its CPU ticks
    scrape_nodes "$tag" "$logdir" "$inst" "${pids[@]}"
    kill -TERM "${pids[@]}" 2>/dev/null
    wait "${pids[@]}" 2>/dev/null
    exit 0
}

# ----------------------------------------------------- helper JavaScript (written to OUT_DIR)
write_pgcpu_js() { cat >"$1" <<'EOF'
'use strict';
// PostgreSQL cluster CPU for bench/peers-pg.sh.
//   node pgcpu.js ticks PIDFILE  -> {"at":ms,"ticks":N,"procs":N}: utime+stime of the postmaster
//                                   and all its descendants, plus cutime+cstime (exited children)
//   NODE_OPTIONS="--require pgcpu.js" with PGCPU_PIDFILE and PGCPU_OUT set: inside a peers
//   driver (drivers/*.js, or bench/peers/taskmill_batch.js) every process.cpuUsage() without argument (the harness's
//   CpuMeter.start) and with one (CpuMeter.stop) also reads the cluster's ticks, and each
//   start/stop pair appends one JSON line to PGCPU_OUT. Nothing else in the driver changes.
const fs = require('fs');
function pgTicks(pidfile) {
  let root = 0;
  try { root = Number(fs.readFileSync(pidfile, 'utf8').split('\n')[0]) || 0; } catch { return null; }
  const kids = new Map(); const t = new Map();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let s;
    try { s = fs.readFileSync(`/proc/${e}/stat`, 'latin1'); } catch { continue; }
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    t.set(+e, +f[11] + +f[12] + +f[13] + +f[14]);
    if (!kids.has(+f[1])) kids.set(+f[1], []);
    kids.get(+f[1]).push(+e);
  }
  if (!root || !t.has(root)) return null;
  let ticks = 0; let procs = 0; const st = [root]; const seen = new Set();
  while (st.length) {
    const p = st.pop(); if (seen.has(p)) continue; seen.add(p);
    ticks += t.get(p) || 0; procs++;
    for (const c of kids.get(p) || []) st.push(c);
  }
  return { at: Date.now(), ticks, procs };
}
module.exports = { pgTicks };
if (process.argv[2] === 'ticks' && process.argv[1] && process.argv[1].endsWith('pgcpu.js')) {
  process.stdout.write(JSON.stringify(pgTicks(process.argv[3])) + '\n');
} else if (process.env.PGCPU_OUT && process.env.PGCPU_PIDFILE && /(drivers[/][^/]+|taskmill_batch)\.js$/.test(process.argv[1] || '')) {
  const out = process.env.PGCPU_OUT; const pidfile = process.env.PGCPU_PIDFILE;
  const orig = process.cpuUsage.bind(process);
  let start = null;
  process.cpuUsage = function (prev) {
    if (prev === undefined) start = pgTicks(pidfile);
    else if (start) {
      const end = pgTicks(pidfile);
      fs.appendFileSync(out, JSON.stringify({ start, end, driver: process.argv[1], args: process.argv.slice(2).join(' ') }) + '\n');
      start = null;
    }
    return orig(prev);
  };
}
EOF
}

write_summary_js() { cat >"$1" <<'EOF'
'use strict';
// Tables of a bench/peers-pg.sh run: node summary.js OUT_DIR
const fs = require('fs'); const path = require('path');
const dir = process.argv[2];
const lines = (f) => { try { return fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()).map((l) => { try { return JSON.parse(l); } catch { return null; } }).filter(Boolean); } catch { return []; } };
const runs = lines(path.join(dir, 'runs.jsonl'));
const results = lines(path.join(dir, 'harness', 'results.jsonl'));
const CLK = Number(process.env.CLK_TCK || 100);
const NAME = { 'tm-sqlite': 'taskmill SQLite', 'tm-pg1': 'taskmill PG, 1 node', 'tm-pg2': 'taskmill PG, 2 nodes', pgboss: 'pg-boss', 'http-mock': 'http-mock', bullmq: 'BullMQ (Redis)' };
for (const k of ['tm-sqlite', 'tm-pg1', 'tm-pg2']) NAME[`${k}-batch`] = `${NAME[k]}, batched`;
const PG_SYS = new Set(['tm-pg1', 'tm-pg2', 'tm-pg1-batch', 'tm-pg2-batch', 'pgboss']);
const median = (xs) => { const v = xs.filter(Number.isFinite).sort((a, b) => a - b); if (!v.length) return null; const m = v.length >> 1; return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2; };
const f0 = (x) => (x == null ? '-' : x >= 100 ? Math.round(x).toLocaleString('en-US') : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const rows = [];
for (const run of runs) {
  if (run.discarded) continue;
  const redone = runs.filter((x) => x.discarded && x.sys === run.sys && x.wl === run.wl).length;
  const recs = results.filter((r) => r.run_id === run.run_id);
  const hooks = lines(path.join(dir, 'pgcpu', `${run.sys}_${run.wl}.jsonl`));
  const metrics = lines(path.join(dir, 'servers', `${run.sys}_${run.wl}.metrics.jsonl`));
  const kept = recs.filter((r) => !r.error && !r.discarded);
  const per = kept.map((r) => {
    const el = r.elapsed_s; const ops = r.ops;
    const us = (pct) => (pct == null ? null : (pct / 100) * el / ops * 1e6);
    const o = { rate: r.value, ops, el, srv_us: us(r.server_cpu_pct), cli_us: us(r.client_cpu_pct), verify: r.verify, noisy: r.noisy, steal: r.steal_pct, p50: r.p50_ms ?? r.e2e_p50_ms, p99: r.p99_ms ?? r.e2e_p99_ms };
    let pgPct = 0;
    if (PG_SYS.has(run.sys)) {
      const t = Date.parse(r.ts);
      const h = hooks.filter((x) => x.end && x.start && x.end.at <= t + 1000).sort((a, b) => b.end.at - a.end.at)[0];
      if (h) { o.pg_ticks = h.end.ticks - h.start.ticks; o.pg_us = o.pg_ticks / CLK / ops * 1e6; pgPct = (o.pg_ticks / CLK / el) * 100; o.pg_procs = h.end.procs; }
    }
    if (run.sys === 'pgboss') { o.harness_pg_us = o.srv_us; o.srv_us = null; }
    o.total_us = (o.srv_us || 0) + (o.pg_us || 0);
    o.other = r.machine_cpu_pct != null ? r.machine_cpu_pct - (r.client_cpu_pct || 0) - (r.server_cpu_pct || 0) - (r.kernel_threads_cpu_pct || 0) - (run.sys.startsWith('tm-pg') ? pgPct : 0) : null;
    o.kthreads_us = us(r.kernel_threads_cpu_pct);
    return o;
  });
  const m = (k) => median(per.map((p) => p[k]));
  rows.push({
    sys: run.sys, wl: run.wl, reps: per.length, failed: recs.filter((r) => r.error).map((r) => r.error), discarded: recs.filter((r) => r.discarded).length + redone,
    rate: m('rate'), srv_us: m('srv_us'), pg_us: m('pg_us'), total_us: m('total_us'), cli_us: m('cli_us'), kthreads_us: m('kthreads_us'), harness_pg_us: m('harness_pg_us'),
    other: m('other'), steal: m('steal'), p50: m('p50'), p99: m('p99'), noisy: per.some((p) => p.noisy), verify: per.map((p) => p.verify).join('; '),
    // over the whole invocation, divided by the harness's attempts in it (its own noisy re-runs)
    pg_whole_s: run.pg_before && run.pg_after ? (run.pg_after.ticks - run.pg_before.ticks) / CLK / Math.max(1, recs.length) : null, wall_s: run.wall_s, metrics, rc: run.rc,
  });
}
const WL = { W1: 'W1 submit', W2: 'W2 lifecycle', W3: 'W3 reads' };
const UNIT = { W1: 'submits/s', W2: 'tasks/s', W3: 'reads/s' };
console.log('\n## Per system and workload (timed window of the harness; CPU in µs of one core per operation: a submit, a whole task, a read)\n');
console.log('| system | workload | ops/s | p50 / p99 ms | server µs/op | PostgreSQL µs/op | total µs/op | client µs/op | PG CPU s, whole run per attempt | other % | verify |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const wl of ['W1', 'W2', 'W3']) {
  for (const r of rows.filter((x) => x.wl === wl)) {
    const nm = NAME[r.sys] || r.sys;
    if (!r.reps) { console.log(`| ${nm} | ${WL[wl]} | FAILED: ${r.failed.join('; ').slice(0, 300)} |||||||||`); continue; }
    const srv = r.sys === 'pgboss' ? '(its server is PostgreSQL)' : f0(r.srv_us);
    const pg = PG_SYS.has(r.sys) ? f0(r.pg_us) : '-';
    const flag = `${r.noisy ? ' NOISY' : ''}${r.other != null && r.other > 25 ? ' (other>25%)' : ''}${r.discarded ? ` (${r.discarded} noisy re-run)` : ''}`;
    console.log(`| ${nm} | ${WL[wl]} | ${f0(r.rate)} ${UNIT[wl]} | ${f0(r.p50)} / ${f0(r.p99)} | ${srv} | ${pg} | ${f0(r.total_us)} | ${f0(r.cli_us)} | ${r.pg_whole_s == null ? '-' : r.pg_whole_s.toFixed(2)} | ${r.other == null ? '-' : r.other.toFixed(0)}${flag} | ${String(r.verify).slice(0, 40)} |`);
  }
}
console.log('\np50/p99: per request for W1 and W3, end to end (submit to completion, queueing included) for W2.');
const pgb = rows.filter((r) => r.sys === 'pgboss');
for (const r of pgb) if (r.harness_pg_us != null) console.log(`pg-boss ${r.wl}: PostgreSQL µs/op from the harness's server meter ${f0(r.harness_pg_us)}, from this script's window reading ${f0(r.pg_us)} (same process tree: a cross-check of the method)`);
console.log('\n## Against pg-boss (throughput ratio; total CPU per operation, taskmill including PostgreSQL, over pg-boss\'s PostgreSQL)\n');
console.log('| system | W1 throughput | W1 CPU/op | W2 throughput | W2 CPU/op | W3 throughput | W3 CPU/op |');
console.log('|---|---|---|---|---|---|---|');
const ratio = (a, b) => (a != null && b != null && b > 0 ? a / b : null);
for (const sys of ['tm-pg1', 'tm-pg1-batch', 'tm-pg2', 'tm-pg2-batch', 'tm-sqlite', 'tm-sqlite-batch']) {
  const cells = [];
  let any = false;
  for (const wl of ['W1', 'W2', 'W3']) {
    const r = rows.find((x) => x.sys === sys && x.wl === wl && x.reps); const b = pgb.find((x) => x.wl === wl && x.reps);
    const tr = r && b ? ratio(r.rate, b.rate) : null; const cr = r && b ? ratio(r.total_us, b.pg_us) : null;
    if (tr != null) any = true;
    cells.push(tr == null ? '-' : `${tr.toFixed(1)}×`, cr == null ? '-' : `${cr.toFixed(2)}×`);
  }
  if (any) console.log(`| ${NAME[sys]} | ${cells.join(' | ')} |`);
}
console.log('\nAims (issue 9): W2 throughput >= 10x pg-boss and W1 >= 5x, each at lower CPU per task (CPU ratio < 1).');
for (const sys of ['tm-pg1', 'tm-pg1-batch', 'tm-pg2', 'tm-pg2-batch']) {
  for (const [wl, aim] of [['W2', 10], ['W1', 5]]) {
    const r = rows.find((x) => x.sys === sys && x.wl === wl && x.reps); const b = pgb.find((x) => x.wl === wl && x.reps);
    if (!r || !b) continue;
    const tr = ratio(r.rate, b.rate); const cr = ratio(r.total_us, b.pg_us);
    console.log(`  ${NAME[sys]} ${wl}: ${tr.toFixed(1)}x pg-boss's rate (aim ${aim}x: ${tr >= aim ? 'met' : 'NOT met'}), ${cr.toFixed(2)}x its CPU per op (${cr < 1 ? 'lower: met' : 'NOT lower'})`);
  }
}
console.log('\n## taskmill\'s writer (/metrics of each node at the end of each run)\n');
console.log('| system | workload | node | batches | ops | ops/batch | retries | failed commits | feed events read | 5xx | node CPU s (its whole life) |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows.filter((x) => x.sys.startsWith('tm-'))) {
  const last = Math.max(0, ...r.metrics.map((m) => m.instance || 0));
  const nodes = r.metrics.filter((m) => m.taskmill_store_batches_total != null && (m.instance || 0) === last);
  nodes.forEach((m, i) => {
    const b = m.taskmill_store_batches_total; const o = m.taskmill_store_ops_total;
    console.log(`| ${NAME[r.sys]} | ${r.wl} | ${i + 1} (pid ${m.pid}) | ${b} | ${o} | ${b ? (o / b).toFixed(2) : '-'} | ${m.taskmill_store_batch_retries_total ?? '-'} | ${m.taskmill_store_commits_failed_total ?? '-'} | ${m.taskmill_feed_events_total ?? '-'} | ${m.replies_5xx ?? '-'} | ${m.cpu_ticks != null ? (m.cpu_ticks / (m.clk_tck || CLK)).toFixed(1) : '-'} |`);
  });
  if (nodes.length > 1) {
    const b = nodes.reduce((a, m) => a + m.taskmill_store_batches_total, 0); const o = nodes.reduce((a, m) => a + m.taskmill_store_ops_total, 0);
    console.log(`| ${NAME[r.sys]} | ${r.wl} | all | ${b} | ${o} | ${(o / b).toFixed(2)} ||||||`);
  }
  if (!nodes.length) console.log(`| ${NAME[r.sys]} | ${r.wl} | - | no /metrics scraped ||||||||`);
  for (const e of r.metrics.filter((m) => m.error)) console.log(`| ${NAME[r.sys]} | ${r.wl} | ERROR | ${e.error} ||||||||`);
}
console.log('\n(The last server start of each run, i.e. the kept attempt of the last repetition. ops counts every write op of the group-commit writer, W3\'s untimed preload and the server\'s own periodic ops included; node CPU: the whole life of each node.)');
const usual = /^(taskmill listening on |taskmill: no API token in the store|taskmill: store |taskmill: terminated, stopping)/;
const odd = [];
let logs = [];
try { logs = fs.readdirSync(path.join(dir, 'servers')).filter((f) => f.endsWith('.log')).sort(); } catch {}
for (const f of logs) {
  const ls = fs.readFileSync(path.join(dir, 'servers', f), 'utf8').split('\n').filter((l) => l.trim() && !usual.test(l));
  if (ls.length) odd.push(`${f}: ${ls.length} line(s), first: ${ls[0].slice(0, 200)}`);
}
console.log(`\nServer logs (${logs.length} files in servers/): ${odd.length ? 'lines beyond start-up and stop:\n  ' + odd.join('\n  ') : 'nothing beyond start-up and stop lines.'}`);
try { const p = fs.readFileSync(path.join(dir, 'probe.txt'), 'utf8'); console.log('\n## Commit probe (same PostgreSQL, after the runs)\n'); console.log(p); } catch {}
EOF
}

summary() { # OUT_DIR (the tables come from this script's summary code, written there again)
    [ -f "$1/runs.jsonl" ] || die "no runs.jsonl in '$1'"
    write_summary_js "$1/summary.js"
    { cat "$1/machine.txt" 2>/dev/null; CLK_TCK=$CLK_TCK node "$1/summary.js" "$1"; } | tee "$1/summary.md"
}

# ------------------------------------------------------------------ main
[ "${1:-}" = serve ] && { shift; serve_main "$@"; }
[ "${1:-}" = summary ] && { summary "${2:?summary OUT_DIR}"; exit $?; }

N=10000; D=10; WORKLOADS=W1,W2,W3; REPS=1; SYSTEMS=tm-sqlite,tm-pg1,tm-pg2,pgboss,http-mock,bullmq; OUT=""; PROBE=1
while [ $# -gt 0 ]; do
    case "$1" in
        -n) N=${2:?}; shift 2;;
        -w) WORKLOADS=${2:?}; shift 2;;
        -r) REPS=${2:?}; shift 2;;
        -d) D=${2:?}; shift 2;;
        -s) SYSTEMS=${2:?}; shift 2;;
        -o) OUT=${2:?}; shift 2;;
        --no-probe) PROBE=0; shift;;
        -h|--help) sed -n '2,/^set -uo pipefail/p' "$SELF" | sed '$d'; exit 0;;
        *) die "unknown argument '$1' (try --help)";;
    esac
done
PEERS=$(cd "${PEERS_DIR:-$ROOT/../shared/bench/peers}" 2>/dev/null && pwd) || die "peers harness not found (set PEERS_DIR)"
TASKMILL_BIN=$(realpath "${TASKMILL_BIN:-$ROOT/build/taskmill}" 2>/dev/null) || die "no taskmill binary (run make, or set TASKMILL_BIN)"
[ -x "$TASKMILL_BIN" ] || die "no taskmill binary at $TASKMILL_BIN (run make)"
[ -d "$PEERS/node_modules/pg-boss" ] || die "the harness's npm packages are missing: run $PEERS/setup.sh install"
[ -x "$PGBIN/psql" ] || die "PostgreSQL client not found in $PGBIN"
command -v curl >/dev/null || die "curl not found"
[[ "$PWD" == "$ROOT" ]] || die "run from the project root ($ROOT)"
IFS=, read -r -a SYS_LIST <<<"$SYSTEMS"
IFS=, read -r -a WL_LIST <<<"$WORKLOADS"
for s in "${SYS_LIST[@]}"; do case "$s" in tm-sqlite|tm-pg1|tm-pg2|tm-sqlite-batch|tm-pg1-batch|tm-pg2-batch|pgboss|http-mock|bullmq) ;; *) die "unknown system '$s'";; esac; done
OUT=${OUT:-/tmp/taskmill-bench/peers-pg-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT/harness" "$OUT/pgcpu" "$OUT/servers" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
write_pgcpu_js "$OUT/pgcpu.js"
write_summary_js "$OUT/summary.js"
PG_PIDFILE=$("$PEERS/setup.sh" pidfile postgres)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)

# PostgreSQL: started here unless it already runs; stopped at exit only if started here
PG_STARTED=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$PG_STARTED" = 1 ]; then "$PEERS/setup.sh" stop postgres || true; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT TERM
if ! "$PEERS/setup.sh" status postgres | grep -q ' running '; then
    "$PEERS/setup.sh" start postgres || die "could not start the harness's PostgreSQL"
    PG_STARTED=1
fi

{
    echo "# bench/peers-pg.sh run $STAMP: systems $SYSTEMS, workloads $WORKLOADS, N=$N, W3 ${D} s, reps $REPS"
    echo "- machine: $(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r), $(findmnt -no FSTYPE -T "$PB_BASE" 2>/dev/null || echo '?') under $PB_BASE"
    echo "- load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- taskmill: $TASKMILL_BIN (${TASKMILL_DESC:-tree at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD -- src include 2>/dev/null || echo ' with uncommitted changes in src/')}; binary built $(date -u -r "$TASKMILL_BIN" +%FT%TZ)); every write fsynced, group commit; on PostgreSQL COMMIT waits for the WAL flush (synchronous_commit as below)"
    echo "- PostgreSQL: $("$PEERS/setup.sh" config postgres)"
    echo "- PostgreSQL CPU: postmaster tree utime+stime (+ exited children), over the harness's timed window (and over each whole run.sh invocation); clock tick $CLK_TCK/s"
    echo "- harness: $PEERS ($(node -p "'pg-boss ' + require('$PEERS/node_modules/pg-boss/package.json').version + ', bullmq ' + require('$PEERS/node_modules/bullmq/package.json').version")), node $(node -v)"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt"

pg_ticks() { node "$OUT/pgcpu.js" ticks "$PG_PIDFILE"; }

# Why the kept record(s) of RUN_ID are noisy, or nothing: the harness's guard (steal >
# STEAL_MAX, other load > OTHER_MAX) for taskmill on PostgreSQL, where PostgreSQL's CPU over
# the timed window is not counted as other load.
pg_noise() { # run_id hookfile
    node -e '
        const fs = require("fs"); const [res, id, hookf, clk, omax, smax] = process.argv.slice(1);
        const L = (f) => { try { return fs.readFileSync(f, "utf8").split("\n").filter(Boolean).map((l) => { try { return JSON.parse(l); } catch { return null; } }).filter(Boolean); } catch { return []; } };
        const why = [];
        for (const r of L(res).filter((x) => x.run_id === id && !x.error && !x.discarded)) {
          const t = Date.parse(r.ts);
          const h = L(hookf).filter((x) => x.end && x.start && x.end.at <= t + 1000).sort((a, b) => b.end.at - a.end.at)[0];
          const pg = h ? (h.end.ticks - h.start.ticks) / clk / r.elapsed_s * 100 : 0;
          const o = r.machine_cpu_pct - (r.client_cpu_pct || 0) - (r.server_cpu_pct || 0) - (r.kernel_threads_cpu_pct || 0) - pg;
          if (o > +omax) why.push(`other load without PostgreSQL ${o.toFixed(0)}% > ${omax}%`);
          if (r.steal_pct > +smax) why.push(`steal ${r.steal_pct}% > ${smax}%`);
        }
        process.stdout.write(why.join(", "));' "$OUT/harness/results.jsonl" "$1" "$2" "$CLK_TCK" "$OTHER_MAX_PG" "${STEAL_MAX:-15}"
}

run_one() { # sys wl
    local sys=$1 wl=$2 runsys keep=() tag="$1_$2" run_id t0 before after rc attempt=0 other discard
    local -a envs=() runner=("$PEERS/run.sh")
    case "$sys" in
        tm-*)
            local store=sqlite nodes=1 cmd
            case "${sys%-batch}" in
                tm-pg1) store=pg;;
                tm-pg2) store=pg; nodes=2;;
            esac
            runsys=http-$sys
            cmd=$(printf '%q ' "$SELF" serve --store "$store" --nodes "$nodes" --bin "$TASKMILL_BIN" --tag "$tag" --log-dir "$OUT/servers")
            envs=(HTTP_API=taskmill "HTTP_SERVER_CMD=$cmd")
            # the batched driver, through run-batch.sh with this server command
            [[ "$sys" == *-batch ]] && { runsys=taskmill-batch; runner=("$ROOT/bench/peers/run-batch.sh"); envs+=("TASKMILL_SERVER_CMD=$cmd"); }
            # PostgreSQL's CPU is not "other load" here: the guard is applied below instead
            [ "$store" = pg ] && envs+=(OTHER_MAX=1000 NOISE_RETRIES=0);;
        pgboss) runsys=pgboss; keep=(--keep-running);;   # keep PostgreSQL up for the after reading
        http-mock) runsys=http-mock;;
        bullmq) runsys=bullmq;;
    esac
    case "$sys" in
        tm-pg1*|tm-pg2*|pgboss)
            envs+=("NODE_OPTIONS=--require $OUT/pgcpu.js" "PGCPU_PIDFILE=$PG_PIDFILE" "PGCPU_OUT=$OUT/pgcpu/$tag.jsonl");;
    esac
    while :; do
        attempt=$((attempt + 1)); run_id="$STAMP-$sys-$wl-a$attempt"; before=null; after=null; discard=""
        case "$sys" in
            tm-pg1*|tm-pg2*|pgboss) psql_pg postgres -c CHECKPOINT >/dev/null; before=$(pg_ticks);;
        esac
        say "$sys $wl (run.sh -s $runsys), attempt $attempt"
        t0=$EPOCHREALTIME
        env -u HTTP_API -u HTTP_SERVER_CMD "${envs[@]}" PB_RUN_ID="$run_id" \
            "${runner[@]}" -s "$runsys" -w "$wl" -r "$REPS" -n "$N" -d "$D" -o "$OUT/harness" "${keep[@]}" 2>&1 | tee -a "$OUT/run.log"
        rc=${PIPESTATUS[0]}
        case "$sys" in tm-pg1*|tm-pg2*|pgboss) after=$(pg_ticks);; esac
        if [[ "$sys" == tm-pg* ]]; then
            other=$(pg_noise "$run_id" "$OUT/pgcpu/$tag.jsonl")
            if [ -n "$other" ]; then
                if [ "$attempt" -le "$NOISE_RETRIES_PG" ]; then discard=$other
                else say "$sys $wl: noisy ($other); kept (retries exhausted)"; fi
            fi
        fi
        echo "{\"sys\":\"$sys\",\"runsys\":\"$runsys\",\"wl\":\"$wl\",\"run_id\":\"$run_id\",\"attempt\":$attempt,\"rc\":$rc,\"wall_s\":$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b - a}'),\"pg_before\":${before:-null},\"pg_after\":${after:-null}${discard:+,\"discarded\":\"$discard\"}}" >>"$OUT/runs.jsonl"
        # no database of an earlier run left for autovacuum to work on during the next one
        case "$sys" in
            tm-pg1*|tm-pg2*) psql_pg postgres -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null;;
            pgboss) psql_pg postgres -c "DROP DATABASE IF EXISTS bench WITH (FORCE)" >/dev/null;;
        esac
        [ -n "$discard" ] || break
        say "$sys $wl attempt $attempt discarded ($discard); re-running"
    done
}

for wl in "${WL_LIST[@]}"; do
    for sys in "${SYS_LIST[@]}"; do run_one "$sys" "$wl"; done
done

# The commit probe: how fast can commits go that each update one shared row and NOTIFY
# (what every taskmill batch does with event_meta 'head'), against commits that do not share.
if [ "$PROBE" = 1 ]; then
    say "commit probe"
    {
        psql_pg postgres -c "DROP DATABASE IF EXISTS probe WITH (FORCE)" -c "CREATE DATABASE probe"
        psql_pg probe -c "CREATE TABLE hot (id int PRIMARY KEY, v bigint NOT NULL)" -c "INSERT INTO hot SELECT g, 0 FROM generate_series(1, 64) g"
        printf 'BEGIN;\nUPDATE hot SET v = v + 1 WHERE id = 1;\nSELECT pg_notify(%s, %s);\nEND;\n' "'probe'" "'1'" >"$OUT/probe-hot.sql"
        printf 'UPDATE hot SET v = v + 1 WHERE id = :client_id + 1;\n' >"$OUT/probe-own.sql"
        echo "pg_test_fsync (the disk under $PB_BASE, 2 s per test):"
        "$PGBIN/pg_test_fsync" -s 2 -f "$PB_BASE/pg_test_fsync.tmp" 2>&1 \
            | awk '/using one 8kB write/{f=1} /using two 8kB writes/{f=0} f&&/ops\/sec/{print "    one 8kB write + " $0}' | sed 's/+  */+ /' 
        rm -f "$PB_BASE/pg_test_fsync.tmp"
        for spec in "1 hot" "8 hot" "8 own"; do
            set -- $spec
            echo "pgbench -c $1 -T 5, $([ "$2" = hot ] && echo 'each transaction: UPDATE the same row + pg_notify, COMMIT' || echo 'each client: UPDATE its own row, autocommit'):"
            "$PGBIN/pgbench" -n -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "$1" -j "$1" -T 5 -f "$OUT/probe-$2.sql" probe 2>&1 \
                | grep -E '^(number of transactions actually|latency average|tps)' | sed 's/^/    /'
        done
        psql_pg postgres -c "DROP DATABASE IF EXISTS probe WITH (FORCE)"
    } >"$OUT/probe.txt" 2>&1
    cat "$OUT/probe.txt"
fi

summary "$OUT"
echo "peers-pg.sh: results in $OUT (summary.md, run.log, harness/results.jsonl, servers/, pgcpu/)"
