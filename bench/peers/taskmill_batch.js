'use strict';
// taskmill through its batched worker protocol (docs/api.md section 7.8a), as a driver of the
// peers harness (../shared/bench/peers, whose lib/ it loads by path; nothing there changes).
//
// W2 (lifecycle): each of the W workers claims up to BATCH tasks in one request
// (POST /v1/queues/default/claims, long-poll 1 s as the harness's taskmill mode), then for
// each of the S progress steps sends ONE heartbeat request with an entry for every task it
// holds (POST /v1/work/heartbeat: its lease token, ratio and message "step k/S: p% done"),
// then completes them all in one request (POST /v1/work/complete, result {"ok":true,"seq"}).
// Every entry must succeed (no lease lost, no cancel); a task counts as done when the
// completion that carried it is acknowledged. The harness counts S progress updates per task,
// as for every other system. Submitters (W1, and W2's C clients) and status reads (W3) are the
// harness's taskmill mode of drivers/http.js: POST /v1/tasks {"type":"bench","params":...} and
// GET /v1/tasks/{id} -> "phase".
//
//   node bench/peers/taskmill_batch.js --workload W2 --n 500 [harness flags; --help]
// Env: HTTP_HOST (127.0.0.1), HTTP_PORT (28080): the taskmill server;
//      BATCH (16, 1..100): tasks per claim, and so per heartbeat and completion request;
//      PEERS_DIR: the harness (default: ../shared beside this checkout);
//      PEER_CONFIG: the server's configuration, printed with the results.
// bench/peers/run-batch.sh runs it with fresh state per repetition beside the harness's
// systems; bench/README.md describes both.

const path = require('path');

const PEERS = path.resolve(process.env.PEERS_DIR || path.join(__dirname, '../../../shared/bench/peers'));
const H = require(path.join(PEERS, 'lib/harness'));
const { HttpConn } = require(path.join(PEERS, 'lib/http'));

const HOST = process.env.HTTP_HOST || '127.0.0.1';
const PORT = Number(process.env.HTTP_PORT || 28080);
const BATCH = Number(process.env.BATCH || 16);
if (!Number.isInteger(BATCH) || BATCH < 1 || BATCH > 100) {
  console.error(`error: BATCH must be an integer from 1 to 100 (the server's cap on one claim), got '${process.env.BATCH}'`);
  process.exit(2);
}
const QUEUE = 'default';
const CLAIM_WAIT_S = 1;

async function call(conn, method, urlPath, body, okStatuses = [200]) {
  const r = await conn.request(method, urlPath, body);
  if (!okStatuses.includes(r.status)) throw new Error(`${method} ${urlPath} -> HTTP ${r.status}: ${r.body.slice(0, 300)}`);
  let json = null;
  if (r.body && r.body.length) {
    try { json = JSON.parse(r.body); } catch { throw new Error(`${method} ${urlPath} -> HTTP ${r.status} with non-JSON body: ${r.body.slice(0, 200)}`); }
  }
  return { status: r.status, json };
}

// One batched call for the tasks held; every entry must come back without an error.
async function workBatch(conn, verb, held, entryFor, check) {
  const { json } = await call(conn, 'POST', `/v1/work/${verb}`, { entries: held.map(entryFor) });
  const results = json && json.results;
  if (!Array.isArray(results) || results.length !== held.length) {
    throw new Error(`POST /v1/work/${verb}: ${held.length} entries, reply ${JSON.stringify(json).slice(0, 200)}`);
  }
  results.forEach((res, i) => {
    if (res.error || res.id !== held[i].id || !check(res)) {
      throw new Error(`POST /v1/work/${verb}: entry ${i} (task ${held[i].id}): ${JSON.stringify(res).slice(0, 300)}`);
    }
  });
}

const connect = () => HttpConn.connect(HOST, PORT);
const sample = (ids, k) => Array.from({ length: Math.min(k, ids.length) }, () => ids[(Math.random() * ids.length) | 0]);
const PENDING = new Set(['pending']);
const DONE = new Set(['completed']);

const adapter = {
  name: 'taskmill-batch',
  progressMode: `native: POST /v1/work/heartbeat, one request per step for all of a worker's leases (up to ${BATCH})`,
  describe: () => `taskmill v1 batched worker protocol @${HOST}:${PORT}: claims of up to ${BATCH} `
    + `(wait_seconds ${CLAIM_WAIT_S}), one heartbeat request per step and one complete request per claim; `
    + `${process.env.PEER_CONFIG || ''}`.trim(),

  async init() {
    this.admin = await connect();
  },

  async openClient() {
    const c = await connect();
    return {
      submit: async (obj) => {
        const { json } = await call(c, 'POST', '/v1/tasks', { type: 'bench', params: obj }, [201]);
        if (!json || typeof json.id !== 'string') throw new Error(`POST /v1/tasks returned no id: ${JSON.stringify(json)}`);
        return json.id;
      },
      status: async (id) => {
        const r = await c.request('GET', `/v1/tasks/${encodeURIComponent(id)}`);
        if (r.status === 404) return 'not_found';
        if (r.status !== 200) throw new Error(`GET status ${id} -> HTTP ${r.status}: ${r.body.slice(0, 200)}`);
        return String(JSON.parse(r.body).phase);
      },
      close: () => c.close(),
    };
  },

  // Push workers: each runs its own loop of claim, S heartbeats, complete, for all it holds.
  async startPushWorkers(W, { steps, progressFor, onProgress, onComplete, onError }) {
    let stopping = false;
    const conns = [];
    for (let i = 0; i < W; i++) conns.push(await connect());
    const loop = async (conn, i) => {
      const worker = `bench-batch-w${i}`;
      while (!stopping) {
        const { status, json } = await call(conn, 'POST', `/v1/queues/${QUEUE}/claims`,
          { worker, types: ['bench'], max: BATCH, lease_seconds: 60, wait_seconds: CLAIM_WAIT_S }, [200, 204]);
        if (status === 204) continue;
        const claims = json && json.claims;
        if (!Array.isArray(claims) || !claims.length) throw new Error(`claims reply without claims: ${JSON.stringify(json).slice(0, 200)}`);
        const held = claims.map((cl) => ({ id: cl.task.id, token: cl.lease_token, seq: cl.task.params && cl.task.params.seq }));
        for (let s = 1; s <= steps; s++) {
          const p = progressFor(s, steps);
          await workBatch(conn, 'heartbeat', held,
            (t) => ({ id: t.id, lease_token: t.token, progress: { ratio: p.pct / 100, message: p.msg } }),
            (res) => res.cancel_requested === false);
          for (let k = 0; k < held.length; k++) onProgress();
        }
        await workBatch(conn, 'complete', held,
          (t) => ({ id: t.id, lease_token: t.token, result: { ok: true, seq: t.seq } }),
          (res) => res.phase === 'completed');
        for (const t of held) onComplete(t.seq);
      }
    };
    const loops = conns.map((c, i) => loop(c, i).catch((e) => { if (!stopping) onError(e); }));
    return {
      stop: async () => {
        stopping = true;
        // a claim parked on the server returns within its wait; then the connections go
        await Promise.race([Promise.allSettled(loops), H.sleep((CLAIM_WAIT_S + 2) * 1000)]);
        for (const c of conns) c.close();
      },
    };
  },

  async verify(workload, o, ctx) {
    const ids = ctx.ids || [];
    const want = workload === 'W2' ? DONE : PENDING;
    const bad = {};
    for (const id of sample(ids, 200)) {
      const r = await this.admin.request('GET', `/v1/tasks/${encodeURIComponent(id)}`);
      const st = r.status === 200 ? String(JSON.parse(r.body).phase) : `HTTP ${r.status}`;
      if (!want.has(st)) bad[st] = (bad[st] || 0) + 1;
    }
    if (Object.keys(bad).length) throw new Error(`verify: sampled tasks in unexpected phases (want ${[...want].join('|')}): ${JSON.stringify(bad)}`);
    if (workload === 'W2') {
      // nothing left behind: no task still waiting or held
      for (const phase of ['pending', 'running']) {
        const r = await this.admin.request('GET', `/v1/tasks?queue=${QUEUE}&phase=${phase}&limit=1`);
        const left = r.status === 200 ? JSON.parse(r.body).tasks.length : -1;
        if (left !== 0) throw new Error(`verify: tasks left ${phase} after W2 (GET -> HTTP ${r.status})`);
      }
    }
    if (workload === 'W3') {
      const odd = Object.keys(ctx.states).filter((s) => !PENDING.has(s));
      if (odd.length) throw new Error(`verify: unexpected phases read during W3: ${JSON.stringify(ctx.states)}`);
    }
    return `ok (sampled ${Math.min(200, ids.length)} ids via GET, all ${workload === 'W2' ? 'completed, none left pending or running' : 'pending'})`;
  },

  async shutdown() { if (this.admin) this.admin.close(); },
};

H.main(adapter);
