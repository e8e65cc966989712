// The Livepeer view (src/compat/livepeer.c), driven by the real `livepeer`
// SDK (3.5.0): task.getAll and task.get through every phase, with the
// SDK's zod schemas as the strictest check of types and of absent keys.
// Paging, filters, order, count, retry and the error bodies are checked
// over plain HTTP (the SDK sends no query parameters and has no retry
// call). Tasks are driven through the v1 API, so each check is also a
// cross-view check: one record, two shapes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Livepeer } from 'livepeer';
import * as components from 'livepeer/models/components/index.js';
import { startServer, v1, golden, createToken } from './server.mjs';

let srv;
let lp;
let queueSeq = 0;

before(async () => {
  srv = await startServer();
  lp = new Livepeer({ apiKey: srv.token, serverURL: `${srv.url}/api` });
});

after(async () => {
  if (srv) await srv.stop();
});

// Keys the SDK's Task schema knows; the view must send no others.
const TASK_KEYS = new Set(['id', 'type', 'createdAt', 'scheduledAt', 'inputAssetId', 'outputAssetId',
  'projectId', 'requesterId', 'params', 'status', 'output']);
const STATUS_KEYS = new Set(['phase', 'updatedAt', 'progress', 'errorMessage', 'retries']);
const PHASES = new Set(['pending', 'waiting', 'running', 'failed', 'completed', 'cancelled']);

/** GET/POST on the Livepeer paths with the server's token; returns {status, headers, json}. */
async function api(method, path, token = srv.token) {
  const r = await fetch(srv.url + path, {
    method,
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, body: text, json };
}

function ms(rfc3339) {
  return rfc3339 === null ? null : Date.parse(rfc3339);
}

/** Checks a raw Task object: known keys only, no nulls, types right. */
function checkRawTask(t) {
  for (const [k, v] of Object.entries(t)) {
    assert.ok(TASK_KEYS.has(k), `unexpected key '${k}'`);
    assert.notEqual(v, null, `'${k}' is null`);
  }
  assert.equal(typeof t.id, 'string');
  assert.equal(typeof t.createdAt, 'number');
  assert.ok(Number.isInteger(t.createdAt));
  for (const [k, v] of Object.entries(t.status)) {
    assert.ok(STATUS_KEYS.has(k), `unexpected status key '${k}'`);
    assert.notEqual(v, null, `status.${k} is null`);
  }
  assert.ok(PHASES.has(t.status.phase));
  assert.ok(Number.isInteger(t.status.updatedAt));
}

/** Submits through v1; returns the v1 task. */
async function submit(extra = {}) {
  const queue = extra.queue || `lp${++queueSeq}`;
  const r = await v1(srv, 'POST', '/v1/tasks', { type: 'transcode-file', queue, ...extra });
  assert.equal(r.status, 201, r.body);
  return r.json;
}

/** Claims the task's queue; returns the lease token. */
async function claim(task) {
  const r = await v1(srv, 'POST', `/v1/queues/${task.queue}/claim`, { worker: 'w1', lease_seconds: 60 });
  assert.equal(r.status, 200, r.body);
  assert.equal(r.json.task.id, task.id);
  return r.json.lease_token;
}

async function v1get(id) {
  const r = await v1(srv, 'GET', `/v1/tasks/${id}`);
  assert.equal(r.status, 200, r.body);
  return r.json;
}

/** Reads one task through the SDK and the raw view; checks they agree with v1. */
async function viewOf(id) {
  const res = await lp.task.get(id);
  assert.equal(res.statusCode, 200);
  const raw = await api('GET', `/api/task/${id}`);
  assert.equal(raw.status, 200);
  checkRawTask(raw.json);
  const t = await v1get(id);
  assert.equal(raw.json.id, t.id);
  assert.equal(raw.json.createdAt, ms(t.created_at));
  assert.equal(raw.json.status.updatedAt, ms(t.updated_at));
  assert.equal(raw.json.projectId, t.namespace);
  return { sdk: res.task, raw: raw.json, v1: t };
}

test('pending: phase and updatedAt only', async () => {
  const t = await submit({ params: { 'transcode-file': { input: { url: 's3://in/a.mp4' } } } });
  const { sdk, raw } = await viewOf(t.id);
  assert.deepEqual(Object.keys(raw.status), ['phase', 'updatedAt']);
  assert.equal(sdk.status.phase, 'pending');
  assert.equal(sdk.type, 'transcode-file');
  assert.equal(sdk.id, t.id);
  assert.equal(sdk.createdAt, ms(t.created_at));
  assert.equal(sdk.scheduledAt, undefined);
  // The SDK renames "transcode-file" to transcodeFile when it parses params.
  assert.deepEqual(sdk.params, { transcodeFile: { input: { url: 's3://in/a.mp4' } } });
  assert.equal(sdk.output, undefined);
});

test('waiting (delayed start): retries 0 and scheduledAt', async () => {
  const at = new Date(Date.now() + 3600_000).toISOString();
  const t = await submit({ scheduled_at: at });
  const { sdk, raw, v1: v } = await viewOf(t.id);
  assert.equal(v.phase, 'waiting');
  assert.deepEqual(Object.keys(raw.status), ['phase', 'updatedAt', 'retries']);
  assert.equal(sdk.status.phase, 'waiting');
  assert.equal(sdk.status.retries, 0);
  assert.equal(sdk.scheduledAt, Date.parse(at));
});

test('running: retries and progress; a worker with no progress yet has no progress key', async () => {
  const t = await submit();
  const lease = await claim(t);
  let { sdk, raw } = await viewOf(t.id);
  assert.deepEqual(Object.keys(raw.status), ['phase', 'updatedAt', 'retries']);
  assert.equal(sdk.status.phase, 'running');
  const hb = await v1(srv, 'POST', `/v1/tasks/${t.id}/heartbeat`, { lease_token: lease, progress: { ratio: 0.5 } });
  assert.equal(hb.status, 200, hb.body);
  ({ sdk, raw } = await viewOf(t.id));
  assert.deepEqual(Object.keys(raw.status), ['phase', 'updatedAt', 'retries', 'progress']);
  assert.equal(sdk.status.progress, 0.5);
  assert.equal(sdk.status.retries, 0);
  // Progress from counts only: 1 of 4 done.
  await v1(srv, 'POST', `/v1/tasks/${t.id}/heartbeat`,
    { lease_token: lease, progress: { processed: 1, processing: 1, pending: 2 } });
  ({ sdk } = await viewOf(t.id));
  assert.ok(sdk.status.progress >= 0 && sdk.status.progress <= 1);
});

test('stopping shows as running; then cancelled with phase and updatedAt only', async () => {
  const t = await submit();
  const lease = await claim(t);
  await v1(srv, 'POST', `/v1/tasks/${t.id}/heartbeat`, { lease_token: lease, progress: { ratio: 0.25 } });
  const c = await v1(srv, 'POST', `/v1/tasks/${t.id}/cancel`);
  assert.equal(c.json.phase, 'stopping');
  let { sdk, raw } = await viewOf(t.id);
  assert.equal(sdk.status.phase, 'running');
  assert.equal(sdk.status.progress, 0.25);
  assert.deepEqual(Object.keys(raw.status), ['phase', 'updatedAt', 'retries', 'progress']);
  const f = await v1(srv, 'POST', `/v1/tasks/${t.id}/fail`, { lease_token: lease, error: 'stopped' });
  assert.equal(f.json.phase, 'cancelled', f.body);
  ({ sdk, raw } = await viewOf(t.id));
  assert.equal(sdk.status.phase, 'cancelled');
  assert.deepEqual(Object.keys(raw.status), ['phase', 'updatedAt']);
  // A pending task cancelled at once.
  const p = await submit();
  await v1(srv, 'POST', `/v1/tasks/${p.id}/cancel`);
  ({ sdk } = await viewOf(p.id));
  assert.equal(sdk.status.phase, 'cancelled');
});

test('waiting for a retry: retries counted and the error kept', async () => {
  const t = await submit({ max_retries: 2, backoff_ms: 600000 });
  const lease = await claim(t);
  const f = await v1(srv, 'POST', `/v1/tasks/${t.id}/fail`, { lease_token: lease, error: 'disk full', retryable: true });
  assert.equal(f.json.phase, 'waiting', f.body);
  const { sdk, raw } = await viewOf(t.id);
  assert.deepEqual(Object.keys(raw.status), ['phase', 'updatedAt', 'retries', 'errorMessage']);
  assert.equal(sdk.status.phase, 'waiting');
  assert.equal(sdk.status.retries, 1);
  assert.equal(sdk.status.errorMessage, 'disk full');
});

test('failed: errorMessage and retries', async () => {
  const t = await submit({ max_retries: 0 });
  const lease = await claim(t);
  const f = await v1(srv, 'POST', `/v1/tasks/${t.id}/fail`, { lease_token: lease, error: 'bad input', retryable: false });
  assert.equal(f.json.phase, 'failed', f.body);
  const { sdk, raw } = await viewOf(t.id);
  assert.deepEqual(Object.keys(raw.status), ['phase', 'updatedAt', 'errorMessage', 'retries']);
  assert.equal(sdk.status.phase, 'failed');
  assert.equal(sdk.status.errorMessage, 'bad input');
  assert.equal(sdk.status.retries, 0);
});

test('completed: no progress key; output from the result', async () => {
  const t = await submit({ type: 'export' });
  const lease = await claim(t);
  await v1(srv, 'POST', `/v1/tasks/${t.id}/heartbeat`, { lease_token: lease, progress: { ratio: 0.9 } });
  const result = { export: { ipfs: { videoFileCid: 'QmX', videoFileUrl: 'ipfs://QmX' } } };
  const c = await v1(srv, 'POST', `/v1/tasks/${t.id}/complete`, { lease_token: lease, result });
  assert.equal(c.json.phase, 'completed', c.body);
  const { sdk, raw } = await viewOf(t.id);
  assert.deepEqual(Object.keys(raw.status), ['phase', 'updatedAt']);
  assert.equal(sdk.status.phase, 'completed');
  assert.equal(sdk.status.progress, undefined);
  assert.equal(sdk.type, 'export');
  assert.deepEqual(sdk.output, result);
});

test('a type outside Livepeer\'s enum is left out, with its params and result', async () => {
  const t = await submit({ type: 'image.resize', params: { upload: 'not an object' } });
  const lease = await claim(t);
  await v1(srv, 'POST', `/v1/tasks/${t.id}/complete`, { lease_token: lease, result: { export: 5 } });
  const { sdk, raw } = await viewOf(t.id);
  assert.equal('type' in raw, false);
  assert.equal('params' in raw, false);
  assert.equal('output' in raw, false);
  assert.equal(sdk.type, undefined);
  // "transcode" was removed from Livepeer's enum: not shown either.
  const old = await submit({ type: 'transcode' });
  const r = await api('GET', `/api/task/${old.id}`);
  assert.equal('type' in r.json, false);
});

test('getAll: every task parses through the SDK, newest update first, same objects as get', async () => {
  const a = await submit();
  const b = await submit({ type: 'clip' });
  const res = await lp.task.getAll();
  assert.equal(res.statusCode, 200);
  assert.ok(Array.isArray(res.data));
  assert.ok(res.data.length >= 2);
  const raw = await api('GET', '/api/task?limit=1000');
  assert.equal(raw.json.length, res.data.length);
  for (const t of raw.json) checkRawTask(t);
  for (let i = 1; i < raw.json.length; i++) {
    const p = raw.json[i - 1], q = raw.json[i];
    assert.ok(p.status.updatedAt > q.status.updatedAt ||
      (p.status.updatedAt === q.status.updatedAt && p.createdAt >= q.createdAt), `order at ${i}`);
  }
  // The default limit is 20; the newest two lead.
  assert.ok(res.data.length <= 20);
  assert.deepEqual(res.data.slice(0, 2).map((t) => t.id), [b.id, a.id]);
  const one = await api('GET', `/api/task/${b.id}`);
  assert.deepEqual(raw.json.find((t) => t.id === b.id), one.json);
});

test('filters past the cost bound (9 substring terms) are a 400 before they run', async () => {
  const nine = Array.from({ length: 9 }, (_, i) => ({ id: 'name', value: `x${i}` }));
  const r = await api('GET', `/api/task?filters=${encodeURIComponent(JSON.stringify(nine))}`);
  assert.equal(r.status, 400, r.body);
  assert.match(r.body, /substring terms/);
  const eight = nine.slice(1);
  assert.equal((await api('GET', `/api/task?filters=${encodeURIComponent(JSON.stringify(eight))}`)).status, 200);
});

test('a query too long to link its next page is a 400, not a dropped reply', async () => {
  const ns = `longq${Date.now()}`;
  const tok = createToken(srv.db, 'client', ns, 'longq').token;
  for (let i = 0; i < 3; i++) {
    const r = await v1(srv, 'POST', '/v1/tasks', { type: 'upload', queue: 'lq' }, tok);
    assert.equal(r.status, 201, r.body);
  }
  // 16 conditions (the cap), padded with JSON whitespace: about 5 KB once encoded.
  const one = `{"id":"type",${' '.repeat(100)}"value":"upload"}`;
  const filters = encodeURIComponent(`[${Array.from({ length: 16 }, () => one).join(',')}]`);
  const long = await api('GET', `/api/task?limit=1&filters=${filters}`, tok);
  assert.equal(long.status, 400, long.body);
  assert.match(long.body, /too long to link its next page/);
  // The same filters on a page with nothing after it need no Link: 200.
  const all = await api('GET', `/api/task?limit=10&filters=${filters}`, tok);
  assert.equal(all.status, 200, all.body);
  assert.equal(all.json.length, 3);
});

test('a page is bounded in bytes: it ends early and its Link goes on', async () => {
  const ns = `bytes${Date.now()}`;
  const tok = createToken(srv.db, 'client', ns, 'bytes').token;
  const ids = [];
  for (let i = 0; i < 20; i++) {
    const r = await v1(srv, 'POST', '/v1/tasks', { type: 'upload', queue: 'bq', params: { pad: 'x'.repeat(600000) } }, tok);
    assert.equal(r.status, 201, r.body);
    ids.push(r.json.id);
  }
  const seen = [];
  let path = '/api/task?limit=100&order=createdAt-false';
  let pages = 0;
  while (path && pages < 30) {
    const r = await api('GET', path, tok);
    assert.equal(r.status, 200, r.body);
    assert.ok(r.body.length <= 8 * 1024 * 1024 + 700000, `a page of ${r.body.length} bytes`);
    seen.push(...r.json.map((t) => t.id));
    pages++;
    const link = r.headers.get('link');
    path = link ? new URL(/^<([^>]+)>/.exec(link)[1]).pathname + new URL(/^<([^>]+)>/.exec(link)[1]).search : null;
  }
  assert.ok(pages >= 2, `${pages} pages`);
  assert.deepEqual(seen, ids);
});

test('paging: limit, Link rel="next" with a skip cursor, count, the last page has no Link', async () => {
  const ns = `page${Date.now()}`;
  const tok = createToken(srv.db, 'client', ns, 'pager').token;
  const ids = [];
  for (let i = 0; i < 5; i++) {
    const r = await v1(srv, 'POST', '/v1/tasks', { type: 'upload', queue: 'pg' }, tok);
    assert.equal(r.status, 201, r.body);
    ids.push(r.json.id);
  }
  const seen = [];
  let path = '/api/task?limit=2&count=1&order=createdAt-false';
  let pages = 0;
  while (path) {
    const r = await api('GET', path, tok);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers.get('x-total-count'), '5');
    seen.push(...r.json.map((t) => t.id));
    const link = r.headers.get('link');
    pages++;
    if (!link) break;
    const m = /^<([^>]+)>; rel="next"$/.exec(link);
    assert.ok(m, link);
    const u = new URL(m[1]);
    assert.equal(u.origin, srv.url);
    assert.equal(u.searchParams.get('cursor'), `skip${seen.length}`);
    assert.equal(u.searchParams.get('limit'), '2');
    assert.equal(u.searchParams.get('order'), 'createdAt-false');
    path = u.pathname + u.search;
  }
  assert.equal(pages, 3);
  assert.deepEqual(seen, ids);
  // No count asked: no header. limit above 1000 is capped, not refused.
  const r = await api('GET', '/api/task?limit=5000', tok);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-total-count'), null);
  assert.equal(r.headers.get('link'), null);
  assert.equal(r.json.length, 5);
  // The SDK under this token sees exactly its namespace.
  const other = new Livepeer({ apiKey: tok, serverURL: `${srv.url}/api` });
  const all = await other.task.getAll();
  assert.deepEqual(all.data.map((t) => t.id).sort(), [...ids].sort());
  assert.ok(all.data.every((t) => t.projectId === ns));
  // A task of another namespace is unknown here.
  const outside = await submit();
  await assert.rejects(other.task.get(outside.id), (e) => e.statusCode === 404);
});

test('filters and order', async () => {
  const ns = `filt${Date.now()}`;
  const tok = createToken(srv.db, 'client', ns, 'filter').token;
  const mk = async (body) => (await v1(srv, 'POST', '/v1/tasks', { queue: 'f', ...body }, tok)).json;
  const a = await mk({ type: 'clip', name: 'Alpha clip' });
  const b = await mk({ type: 'upload', name: 'beta upload' });
  const c = await mk({ type: 'clip', name: 'gamma' });
  const q = async (filters, extra = '') => {
    const r = await api('GET', `/api/task?filters=${encodeURIComponent(JSON.stringify(filters))}${extra}`, tok);
    assert.equal(r.status, 200, r.body);
    return r.json.map((t) => t.id);
  };
  assert.deepEqual(await q([{ id: 'type', value: 'clip' }]), [c.id, a.id]);
  assert.deepEqual(await q([{ id: 'name', value: 'CLIP' }]), [a.id]); // substring, any case
  assert.deepEqual(await q([{ id: 'id', value: b.id }]), [b.id]);
  assert.deepEqual(await q([{ id: 'type', value: 'clip' }, { id: 'name', value: 'gam' }]), [c.id]);
  const cb = ms(b.created_at);
  assert.deepEqual(await q([{ id: 'createdAt', value: { gte: cb } }], '&order=createdAt-false'), [b.id, c.id]);
  assert.deepEqual(await q([{ id: 'createdAt', value: { lt: cb } }]), [a.id]);
  assert.deepEqual(await q([{ id: 'createdAt', value: cb }]), [b.id]);
  assert.deepEqual(await q([{ id: 'updatedAt', value: { gt: 0, lte: Date.now() + 1000 } }], '&order=name-false'),
    [a.id, b.id, c.id]);
  assert.deepEqual(await q([{ id: 'projectId', value: ns }], '&order=id-false'), [a.id, b.id, c.id]);
  assert.deepEqual(await q([{ id: 'projectId', value: 'someone-else' }]), []);
  assert.deepEqual(await q([], '&order=type-true,createdAt-false'), [b.id, a.id, c.id]);
  // Unknown order fields are skipped (Livepeer does the same).
  assert.deepEqual(await q([], '&order=user.email-true,createdAt-false'), [a.id, b.id, c.id]);
  // Count with filters counts the matches, not the namespace.
  const r = await api('GET', `/api/task?count=true&limit=1&filters=${encodeURIComponent('[{"id":"type","value":"clip"}]')}`, tok);
  assert.equal(r.headers.get('x-total-count'), '2');
  assert.equal(r.json.length, 1);
  assert.ok(r.headers.get('link').includes('cursor=skip1'));
});

test('retry through Livepeer shows in v1, and a task that cannot retry is refused with 400', async () => {
  const t = await submit({ max_retries: 0 });
  const lease = await claim(t);
  await v1(srv, 'POST', `/v1/tasks/${t.id}/fail`, { lease_token: lease, error: 'oops' });
  const r = await api('POST', `/api/task/${t.id}/retry`);
  assert.equal(r.status, 200, r.body);
  checkRawTask(r.json);
  assert.deepEqual(r.json.status, { phase: 'pending', updatedAt: r.json.status.updatedAt });
  const v = await v1get(t.id);
  assert.equal(v.phase, 'pending');
  assert.equal(v.error, null);
  assert.equal(r.json.status.updatedAt, ms(v.updated_at));
  const { sdk } = await viewOf(t.id);
  assert.equal(sdk.status.phase, 'pending');
  // A cancelled task may be retried too.
  const c = await submit();
  await v1(srv, 'POST', `/v1/tasks/${c.id}/cancel`);
  assert.equal((await api('POST', `/api/task/${c.id}/retry`)).json.status.phase, 'pending');
  // Pending (and so any non-failed, non-cancelled) task: 400, unchanged.
  const before = await v1get(t.id);
  const bad = await api('POST', `/api/task/${t.id}/retry`);
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.json, { errors: ['task is not in a retryable state'] });
  assert.deepEqual(await v1get(t.id), before);
  // A retry made through v1 shows in Livepeer.
  const l2 = await claim(t);
  await v1(srv, 'POST', `/v1/tasks/${t.id}/fail`, { lease_token: l2, error: 'again' });
  assert.equal((await viewOf(t.id)).sdk.status.errorMessage, 'again');
  await v1(srv, 'POST', `/v1/tasks/${t.id}/retry`);
  assert.equal((await viewOf(t.id)).sdk.status.phase, 'pending');
});

test('bad input: Livepeer error bodies, right statuses, nothing stored changes', async () => {
  const t = await submit();
  const snapshot = async () => (await v1(srv, 'GET', '/v1/tasks?limit=1000')).body;
  const before = await snapshot();
  const cases = [
    ['GET', '/api/task?limit=abc', 400, /^'limit' must be a positive integer/],
    ['GET', '/api/task?limit=0', 400, /^'limit' must be a positive integer/],
    ['GET', '/api/task?limit=-5', 400, /^'limit'/],
    ['GET', '/api/task?cursor=skipX', 400, /^error parsing cursor/],
    ['GET', '/api/task?cursor=undefined', 400, /^error parsing cursor/],
    ['GET', '/api/task?filters=notjson', 400, /^error parsing filters: not valid JSON/],
    ['GET', `/api/task?filters=${encodeURIComponent('{"id":"type"}')}`, 400, /^error parsing filters: must be an array/],
    ['GET', `/api/task?filters=${encodeURIComponent('[{"id":"colour","value":1}]')}`, 400, /^error parsing filters: unknown field: "colour"/],
    ['GET', `/api/task?filters=${encodeURIComponent('[{"id":"type"}]')}`, 400, /^error parsing filters: missing filter value/],
    ['GET', `/api/task?filters=${encodeURIComponent('[{"id":"createdAt","value":{"near":1}}]')}`, 400, /^error parsing filters: unknown comparison/],
    ['GET', `/api/task?filters=${encodeURIComponent('[{"id":"userId","value":"u"}]')}`, 400, /not supported/],
    ['GET', '/api/task/0123456789abcdef0123456789abcdef', 404, /^not found$/],
    ['GET', '/api/task/not-an-id', 404, /^not found$/],
    ['POST', '/api/task/0123456789abcdef0123456789abcdef/retry', 404, /^not found$/],
    ['POST', `/api/task/${t.id}/retry`, 400, /^task is not in a retryable state$/],
    ['DELETE', `/api/task/${t.id}`, 405, /./],
    ['PUT', '/api/task', 405, /./],
    ['GET', '/api/nothing', 404, /./],
  ];
  for (const [method, path, status, re] of cases) {
    const r = await api(method, path);
    assert.equal(r.status, status, `${method} ${path}: ${r.body}`);
    assert.match(r.headers.get('content-type'), /^application\/json/);
    assert.ok(r.json && Array.isArray(r.json.errors) && r.json.errors.length === 1, `${path}: ${r.body}`);
    assert.deepEqual(Object.keys(r.json), ['errors']);
    assert.match(r.json.errors[0], re, `${method} ${path}`);
  }
  // A message that quotes the request with "%.40s" cuts a two-byte character in two: the body
  // stays UTF-8 JSON (a strict decoder reads it), the cut byte a '?'.
  const cut = await fetch(`${srv.url}/api/task?cursor=skip${'1'.repeat(35)}%C3%A9`,
    { headers: { Authorization: `Bearer ${srv.token}` } });
  assert.equal(cut.status, 400);
  const cutJson = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await cut.arrayBuffer()));
  assert.match(cutJson.errors[0], /'skip1{35}\?' is not a cursor/);
  // Authentication refusals have Livepeer's shape too.
  const noAuth = await api('GET', '/api/task', null);
  assert.equal(noAuth.status, 401);
  assert.deepEqual(Object.keys(noAuth.json), ['errors']);
  const badKey = await api('GET', '/api/task', `tm_${'0'.repeat(16)}_${'1'.repeat(64)}`);
  assert.equal(badKey.status, 401);
  assert.deepEqual(Object.keys(badKey.json), ['errors']);
  const reader = createToken(srv.db, 'reader', 'default', 'reader').token;
  assert.equal((await api('GET', `/api/task/${t.id}`, reader)).status, 200);
  const denied = await api('POST', `/api/task/${t.id}/retry`, reader);
  assert.equal(denied.status, 403);
  assert.deepEqual(Object.keys(denied.json), ['errors']);
  assert.equal(await snapshot(), before);
  // The SDK surfaces these as errors with the status and the body.
  await assert.rejects(lp.task.get('0123456789abcdef0123456789abcdef'),
    (e) => e.statusCode === 404 && JSON.parse(e.body).errors[0] === 'not found');
  const anon = new Livepeer({ apiKey: 'nope', serverURL: `${srv.url}/api` });
  await assert.rejects(anon.task.getAll(), (e) => e.statusCode === 401);
});

test('golden: the exact JSON of each phase', async () => {
  const ns = `gold${Date.now()}`;
  const tok = createToken(srv.db, 'client', ns, 'golden').token;
  const wtok = createToken(srv.db, 'worker', ns, 'golden-worker').token;
  const call = async (m, p, b) => {
    const r = await v1(srv, m, p, b, p.startsWith('/v1/tasks') && !p.endsWith('/cancel') && m === 'POST' &&
      p !== '/v1/tasks' ? wtok : tok);
    assert.ok(r.status < 300, `${m} ${p}: ${r.body}`);
    return r;
  };
  const claimIn = async (queue) => {
    const r = await v1(srv, 'POST', `/v1/queues/${queue}/claim`, { worker: 'w', lease_seconds: 60 }, wtok);
    assert.equal(r.status, 200, r.body);
    return r.json.lease_token;
  };
  const names = [];
  const add = async (name, body) => {
    const r = await call('POST', '/v1/tasks', { queue: name, ...body });
    assert.equal(r.status, 201, r.body);
    names.push([name, r.json.id]);
    return r.json.id;
  };
  await add('pending', { type: 'upload', params: { upload: { url: 'https://example.com/a.mp4' } } });
  await add('delayed', { type: 'clip', scheduled_at: '2099-01-01T00:00:00.000Z' });
  let id = await add('running', { type: 'transcode-file' });
  let lease = await claimIn('running');
  await call('POST', `/v1/tasks/${id}/heartbeat`, { lease_token: lease, progress: { ratio: 0.375 } });
  id = await add('retrywait', { type: 'export', max_retries: 2, backoff_ms: 600000 });
  lease = await claimIn('retrywait');
  await call('POST', `/v1/tasks/${id}/fail`, { lease_token: lease, error: 'upload timed out', retryable: true });
  id = await add('failed', { type: 'export-data', max_retries: 0 });
  lease = await claimIn('failed');
  await call('POST', `/v1/tasks/${id}/fail`, { lease_token: lease, error: 'Failed to upload file' });
  id = await add('completed', { type: 'export' });
  lease = await claimIn('completed');
  await call('POST', `/v1/tasks/${id}/complete`, { lease_token: lease, result: { export: { ipfs: { videoFileCid: 'QmCid' } } } });
  id = await add('cancelled', { type: 'other.kind' });
  await call('POST', `/v1/tasks/${id}/cancel`);

  const r = await api('GET', '/api/task?order=createdAt-false', tok);
  assert.equal(r.status, 200);
  // Normalise: ids by name, times to 0 (scheduledAt of the retry backoff is a time too).
  const idName = new Map(names.map(([n, i]) => [i, `<${n}>`]));
  const norm = r.json.map((t) => {
    const o = { ...t, id: idName.get(t.id), createdAt: 0, status: { ...t.status, updatedAt: 0 }, projectId: '<ns>' };
    if ('scheduledAt' in o && o.scheduledAt !== Date.parse('2099-01-01T00:00:00.000Z')) o.scheduledAt = 0;
    return o;
  });
  const text = `${norm.map((t) => JSON.stringify(t)).join('\n')}\n`;
  if (process.env.UPDATE_GOLDEN) {
    const { writeFileSync, mkdirSync } = await import('node:fs');
    mkdirSync(new URL('golden/livepeer/', import.meta.url), { recursive: true });
    writeFileSync(new URL('golden/livepeer/phases.jsonl', import.meta.url), text);
  }
  assert.equal(text, golden('livepeer/phases.jsonl'));
  // And every one of them parses through the SDK unchanged in meaning.
  const other = new Livepeer({ apiKey: tok, serverURL: `${srv.url}/api` });
  const all = await other.task.getAll();
  assert.equal(all.data.length, names.length);
  const err = await api('GET', '/api/task/0123456789abcdef0123456789abcdef', tok);
  assert.equal(`${err.body}\n`, golden('livepeer/not_found.json'));
});

test('webhooks: a task too large for one event is sent as a valid Task without params', async () => {
  const { createServer } = await import('node:http');
  const components = await import('livepeer/models/components/index.js');
  const got = [];
  const recv = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => { got.push(body); res.end('ok'); });
  });
  await new Promise((r) => recv.listen(0, '127.0.0.1', r));
  const hook = await startServer({ args: ['--webhook-allow-private', '--events-task-max-bytes', '4096'] });
  try {
    const w = await v1(hook, 'POST', '/v1/webhooks',
      { url: `http://127.0.0.1:${recv.address().port}/hook`, events: ['task.spawned'] });
    assert.equal(w.status, 201, w.body);
    const url = `https://x/${'a'.repeat(10000)}.mp4`;
    const t = (await v1(hook, 'POST', '/v1/tasks', { type: 'upload', queue: 'big', params: { upload: { url } } })).json;
    const deadline = Date.now() + 15000;
    while (got.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(got.length, 1);
    assert.ok(got[0].length < 4096, `delivery of ${got[0].length} bytes`);
    const snap = JSON.parse(got[0]).payload.task.snapshot;
    checkRawTask(snap);
    components.Task$inboundSchema.parse(snap);
    assert.equal(snap.id, t.id);
    assert.equal(snap.type, 'upload');
    assert.equal(snap.params, undefined);
    assert.equal(snap.status.phase, 'pending');
    // The whole task is a GET away.
    const now = await fetch(`${hook.url}/api/task/${t.id}`, { headers: { Authorization: `Bearer ${hook.token}` } });
    assert.equal((await now.json()).params.upload.url, url);
  } finally {
    await hook.stop();
    recv.close();
  }
});

test('webhooks: each delivery\'s snapshot is the Livepeer Task, signed as Livepeer signs', async () => {
  const { createServer } = await import('node:http');
  const { createHmac } = await import('node:crypto');
  const components = await import('livepeer/models/components/index.js');
  const got = [];
  let wake = null;
  const recv = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.end('ok');
      if (wake) wake();
    });
  });
  await new Promise((r) => recv.listen(0, '127.0.0.1', r));
  const hook = await startServer({ args: ['--webhook-allow-private'] });
  try {
    const secret = 'lp-webhook-secret';
    const w = await v1(hook, 'POST', '/v1/webhooks',
      { url: `http://127.0.0.1:${recv.address().port}/hook`, secret });
    assert.equal(w.status, 201, w.body);
    const t = (await v1(hook, 'POST', '/v1/tasks', { type: 'upload', queue: 'wh', params: { upload: { url: 'https://x/y.mp4' } } })).json;
    const c = await v1(hook, 'POST', '/v1/queues/wh/claim', { worker: 'w', lease_seconds: 60 });
    const lease = c.json.lease_token;
    await v1(hook, 'POST', `/v1/tasks/${t.id}/heartbeat`, { lease_token: lease, progress: { ratio: 0.5 } });
    await v1(hook, 'POST', `/v1/tasks/${t.id}/complete`, { lease_token: lease });
    const deadline = Date.now() + 15000;
    while (!got.some((g) => JSON.parse(g.body).event === 'task.completed') && Date.now() < deadline) {
      await new Promise((r) => { wake = r; setTimeout(r, 200); });
    }
    const events = got.map((g) => JSON.parse(g.body));
    assert.deepEqual(events.map((e) => e.event),
      ['task.spawned', 'task.updated', 'task.updated', 'task.updated', 'task.completed']);
    for (const g of got) {
      const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(g.headers['livepeer-signature']);
      assert.ok(m, g.headers['livepeer-signature']);
      assert.equal(m[2], createHmac('sha256', secret).update(g.body).digest('hex'));
      const e = JSON.parse(g.body);
      assert.equal(Number(m[1]), e.timestamp);
      const snap = e.payload.task.snapshot;
      checkRawTask(snap);
      components.Task$inboundSchema.parse(snap); // throws on a wrong type or a null
      assert.equal(snap.id, t.id);
    }
    const phases = events.map((e) => e.payload.task.snapshot.status.phase);
    assert.deepEqual(phases, ['pending', 'running', 'running', 'completed', 'completed']);
    assert.equal(events[2].payload.task.snapshot.status.progress, 0.5);
    assert.equal(events[4].payload.success, true);
    // The last snapshot is what the view serves now.
    const now = await fetch(`${hook.url}/api/task/${t.id}`, { headers: { Authorization: `Bearer ${hook.token}` } });
    assert.deepEqual(events[4].payload.task.snapshot, await now.json());
  } finally {
    await hook.stop();
    recv.close();
  }
});

// ---- Params and results in shapes the SDK cannot parse (issue 15 item 13) ----

const PROFILE = { width: 1280, name: '720p', height: 720, bitrate: 3000000, quality: 23, fps: 30, fpsDen: 1,
  gop: '2.0', profile: 'H264High', encoder: 'H.264' };
const ASSET = {
  id: 'as1', type: 'video', playbackId: 'pb1', userId: 'u1', playbackUrl: 'https://p/1.m3u8',
  downloadUrl: 'https://d/1.mp4',
  playbackPolicy: { type: 'webhook', webhookId: 'wh1', webhookContext: { k: 'v' }, refreshInterval: 600,
    allowedOrigins: ['https://o'] },
  source: { type: 'url', url: 'https://s/1.mp4', gatewayUrl: 'https://g/1', encryption: { k: 1 } },
  creatorId: { type: 'unverified', value: 'me' },
  profiles: [PROFILE],
  storage: {
    ipfs: { spec: { nftMetadataTemplate: 'player', nftMetadata: { a: 1 } }, $ref: 'r',
      nftMetadata: { cid: 'bafy', url: 'ipfs://bafy', gatewayUrl: 'https://g/bafy' }, updatedAt: 1 },
    status: { phase: 'ready', progress: 1, errorMessage: 'none', tasks: { pending: 'p', last: 'l', failed: 'f' } },
  },
  status: { phase: 'ready', updatedAt: 1700000000000, progress: 1, errorMessage: 'none' },
  name: 'a.mp4', projectId: 'pr1', createdAt: 1700000000000, createdByTokenName: 'tok', size: 1024,
  hash: [{ hash: 'abc', algorithm: 'md5' }],
  videoSpec: { format: 'mp4', duration: 10.5, bitrate: 1000, tracks: [{ type: 'video', codec: 'h264',
    startTime: 0, duration: 10.5, bitrate: 1000, width: 1280, height: 720, pixelFormat: 'yuv420p', fps: 29.97,
    channels: 2, sampleRate: 44100, bitDepth: 8 }] },
};

// Members in the SDK's shapes with every key its schemas know, by part and key.
const SAMPLES = {
  params: {
    upload: [{ url: 'https://x/a.mp4', encryption: { encryptedKey: 'k' }, c2pa: true, profiles: [PROFILE],
      targetSegmentSizeSecs: 6 }],
    export: [
      { custom: { url: 'https://x/put', method: 'POST', headers: { 'x-a': 'b' } } },
      { ipfs: { $ref: 'r', pinata: { apiKey: 'k' } } },
    ],
    exportData: [{ content: { a: [1] }, ipfs: { $ref: 'r2', pinata: { apiKey: 'k2' } }, type: 'json', id: 'd1' }],
    'transcode-file': [
      { input: { url: 's3+https://in/a.mp4' }, storage: { url: 's3+https://out/' },
        outputs: { hls: { path: '/hls' }, mp4: { path: '/mp4' } }, profiles: [PROFILE], targetSegmentSizeSecs: 10,
        creatorId: { type: 'unverified', value: 'me' }, c2pa: false },
      { creatorId: 'me' },
    ],
    clip: [{ url: 'https://x/h.m3u8', clipStrategy: { startTime: 1000, endTime: 2000, playbackId: 'pb' },
      catalystPipelineStrategy: 'catalyst_ffmpeg', sessionId: 's1', inputId: 'i1' }],
  },
  output: {
    upload: [
      { assetSpec: ASSET, note: 'kept' },
      { assetSpec: { id: 'as2', name: 'r', source: { type: 'recording', sessionId: 's2' }, playbackPolicy: null,
        hash: null } },
      { assetSpec: { id: 'as3', name: 'c', source: { type: 'directUpload', encryption: {}, sourceId: 'so',
        sessionId: 'se', playbackId: 'pb', requesterId: 'rq', assetId: 'as' } } },
    ],
    export: [{ ipfs: { videoFileCid: 'Qm1', videoFileUrl: 'ipfs://Qm1', videoFileGatewayUrl: 'https://g/Qm1',
      nftMetadataCid: 'Qm2', nftMetadataUrl: 'ipfs://Qm2', nftMetadataGatewayUrl: 'https://g/Qm2' } }],
    exportData: [{ ipfs: { cid: 'bafy' } }],
  },
};

const SCHEMA = { params: components.Params$inboundSchema, output: components.Output$inboundSchema };

/** Whether the SDK parses v as member `key` of the part. */
function sdkTakes(part, key, v) {
  return SCHEMA[part].safeParse({ [key]: v }).success;
}

/** Every path in v: [] first, then each key and index, depth first. */
function paths(v, at = []) {
  const out = [at];
  if (Array.isArray(v)) v.forEach((e, i) => out.push(...paths(e, [...at, i])));
  else if (v && typeof v === 'object') for (const k of Object.keys(v)) out.push(...paths(v[k], [...at, k]));
  return out;
}

const DELETE = Symbol('delete');

/** JSON of v, cut to 60 characters. */
function brief(v) {
  const j = JSON.stringify(v);
  return j.length > 60 ? `${j.slice(0, 57)}...` : j;
}

/** A copy of root with the value at path replaced (or its key deleted). */
function replaced(root, path, value) {
  if (path.length === 0) return value;
  const copy = structuredClone(root);
  let p = copy;
  for (const k of path.slice(0, -1)) p = p[k];
  if (value === DELETE) delete p[path[path.length - 1]];
  else p[path[path.length - 1]] = value;
  return copy;
}

/** Wrong (and some right) values for a place holding v: wrong types, nulls, arrays for objects, ... */
function mutations(v, isKey) {
  const out = [null];
  if (typeof v === 'string') out.push(7, 'no-such-value', '');
  else if (typeof v === 'number') out.push(String(v), 1.5, 2 ** 53, -3);
  else if (typeof v === 'boolean') out.push(1, 'true');
  else if (Array.isArray(v)) out.push({}, [], [null], 'list');
  else if (v && typeof v === 'object') out.push([], {}, { ...v, junk: [null, { x: 1 }] }, 'text', [v]);
  if (isKey) out.push(DELETE);
  return out;
}

/** The object keys a zod schema knows, as dotted paths ("[]" for array elements). */
function schemaPaths(s, at = '', seen = new Set()) {
  const def = s._zod.def;
  switch (def.type) {
    case 'optional': case 'nullable': case 'default': return schemaPaths(def.innerType, at, seen);
    case 'lazy': return schemaPaths(def.getter(), at, seen);
    case 'pipe': return schemaPaths(def.in, at, seen);
    case 'array': return schemaPaths(def.element, `${at}[]`, seen);
    case 'union': return def.options.flatMap((o) => schemaPaths(o, at, seen));
    case 'object': return Object.entries(def.shape).flatMap(([k, v]) => [`${at}.${k}`, ...schemaPaths(v, `${at}.${k}`, seen)]);
    default: return [];
  }
}

function valuePaths(v, at = '') {
  if (Array.isArray(v)) return v.flatMap((e) => valuePaths(e, `${at}[]`));
  if (v && typeof v === 'object') return Object.entries(v).flatMap(([k, e]) => [`${at}.${k}`, ...valuePaths(e, `${at}.${k}`)]);
  return [];
}

/** Submits tasks through v1 in one batch and completes those with a result (the
 * others stay pending, in a queue of their own); returns their ids. */
async function storeTasks(tok, wtok, tasks, queue) {
  const b = await v1(srv, 'POST', '/v1/tasks/batch', {
    tasks: tasks.map((t) => ({ type: t.type, queue: t.result === undefined ? `${queue}-idle` : queue,
      ...(t.params !== undefined ? { params: t.params } : {}) })),
  }, tok);
  assert.equal(b.status, 201, b.body);
  const ids = b.json.tasks.map((t) => t.id);
  const result = new Map(ids.map((id, i) => [id, tasks[i].result]));
  const entries = [];
  for (;;) {
    const c = await v1(srv, 'POST', `/v1/queues/${queue}/claims`, { worker: 'w', max: 100, lease_seconds: 300 }, wtok);
    if (c.status === 204) break;
    assert.equal(c.status, 200, c.body);
    for (const { task, lease_token: lease } of c.json.claims) {
      if (result.get(task.id) !== undefined) entries.push({ id: task.id, lease_token: lease, result: result.get(task.id) });
    }
  }
  for (let i = 0; i < entries.length; i += 1000) {
    const done = await v1(srv, 'POST', '/v1/work/complete', { entries: entries.slice(i, i + 1000) }, wtok);
    assert.equal(done.status, 200, done.body);
    for (const r of done.json.results) assert.equal(r.phase, 'completed', JSON.stringify(r));
  }
  return ids;
}

test('params and results in wrong shapes: getAll and get parse every task, the bad members are left out, v1 keeps them', async () => {
  const ns = `shape${Date.now()}`;
  const tok = createToken(srv.db, 'client', ns, 'shapes').token;
  const wtok = createToken(srv.db, 'worker', ns, 'shapes-worker').token;
  const same = Symbol('same');
  // Each: type, params, result (the task is completed when there is one), then
  // the params and output the view serves: `same` as stored, undefined for none.
  const cases = [
    // In the SDK's shapes: served as stored.
    { type: 'upload', params: { upload: SAMPLES.params.upload[0] }, result: SAMPLES.output.upload[0], p: same, o: same },
    { type: 'export', params: { export: SAMPLES.params.export[0] }, result: SAMPLES.output.export[0], p: same, o: same },
    { type: 'export-data', params: { exportData: SAMPLES.params.exportData[0] }, result: SAMPLES.output.exportData[0],
      p: same, o: same },
    { type: 'transcode-file', params: { 'transcode-file': SAMPLES.params['transcode-file'][0] }, p: same },
    { type: 'clip', params: { clip: SAMPLES.params.clip[0], extra: { any: ['thing'] } }, p: same },
    // Wrong types.
    { type: 'upload', params: { upload: { url: 5 } }, result: { upload: { assetSpec: { ...ASSET, size: '1 KB' } } },
      p: undefined, o: undefined },
    { type: 'transcode-file', params: { 'transcode-file': { input: 's3://in/a.mp4' } }, p: undefined },
    { type: 'clip', params: { clip: { catalystPipelineStrategy: 'fastest' } }, p: undefined },
    // Missing required keys.
    { type: 'export', params: { export: { url: 'https://x/put' } }, result: { export: { ipfs: { videoFileUrl: 'ipfs://x' } } },
      p: undefined, o: undefined },
    { type: 'export-data', params: { exportData: { type: 'json' } }, result: { exportData: { ipfs: {} } },
      p: undefined, o: undefined },
    { type: 'transcode-file', params: { 'transcode-file': { profiles: [{ width: 1280, height: 720 }] } }, p: undefined },
    // Nulls, and arrays where objects go.
    { type: 'upload', params: { upload: null }, result: { upload: [] }, p: undefined, o: undefined },
    { type: 'export-data', params: { exportData: [] }, result: { exportData: { ipfs: { cid: null } } },
      p: undefined, o: undefined },
    { type: 'export', params: { export: { custom: { url: 'https://x', headers: ['a'] } } }, result: { export: null },
      p: undefined, o: undefined },
    // One bad member among good ones, and junk beside: only the bad member goes.
    { type: 'clip', params: { clip: { sessionId: 5 }, upload: { url: 'https://x/u.mp4' }, junk: [1, null] },
      p: { upload: { url: 'https://x/u.mp4' }, junk: [1, null] } },
    { type: 'upload', params: { upload: { c2pa: 'yes' } }, result: { upload: { assetSpec: { id: 'a', name: 'n' } },
      export: { ipfs: { videoFileCid: 'Qm' } }, note: 'worker notes' },
    p: undefined, o: { export: { ipfs: { videoFileCid: 'Qm' } }, note: 'worker notes' } },
  ];
  const ids = await storeTasks(tok, wtok, cases, 'shapes');
  assert.ok(cases.length <= 20); // one SDK page

  // Served whole, a bad case would fail the SDK's Task schema, and so the page.
  for (const c of cases) {
    const whole = { id: 'x', status: { phase: 'completed', updatedAt: 1 }, params: c.params, output: c.result };
    const good = c.p === same && (c.o === same || c.result === undefined);
    assert.equal(components.Task$inboundSchema.safeParse(whole).success, good, JSON.stringify(c));
  }

  const sdk = new Livepeer({ apiKey: tok, serverURL: `${srv.url}/api` });
  const all = await sdk.task.getAll();
  assert.equal(all.statusCode, 200);
  assert.deepEqual(all.data.map((t) => t.id).sort(), [...ids].sort());
  const raw = await api('GET', '/api/task?limit=100', tok);
  assert.equal(raw.status, 200);
  for (const [i, c] of cases.entries()) {
    const id = ids[i];
    const served = raw.json.find((t) => t.id === id);
    checkRawTask(served);
    const wantP = c.p === same ? c.params : c.p;
    const wantO = c.o === same ? c.result : c.o;
    assert.deepEqual(served.params, wantP, `case ${i} params`);
    assert.deepEqual(served.output, wantO, `case ${i} output`);
    assert.equal(served.type, c.type);
    assert.equal(served.status.phase, c.result === undefined ? 'pending' : 'completed');
    // get agrees with the page, and the SDK holds the data (with its own renames and defaults).
    const one = await api('GET', `/api/task/${id}`, tok);
    assert.deepEqual(one.json, served);
    const got = await sdk.task.get(id);
    assert.equal(got.statusCode, 200);
    assert.deepEqual(got.task, all.data.find((t) => t.id === id));
    assert.deepEqual(got.task.params, wantP === undefined ? undefined : components.Params$inboundSchema.parse(wantP));
    assert.deepEqual(got.task.output, wantO === undefined ? undefined : components.Output$inboundSchema.parse(wantO));
    // v1 still shows the task whole.
    const v = await v1(srv, 'GET', `/v1/tasks/${id}`, undefined, tok);
    assert.deepEqual(v.json.params, c.params, `case ${i} v1 params`);
    assert.deepEqual(v.json.result, c.result === undefined ? null : c.result, `case ${i} v1 result`);
  }
  // The transcode-file params came through the SDK's rename untouched.
  assert.deepEqual(all.data.find((t) => t.id === ids[3]).params,
    { transcodeFile: SAMPLES.params['transcode-file'][0] });
});

test('the view\'s schema check agrees with the SDK\'s zod schemas on every key they know', async () => {
  // The samples hold every key the SDK's schemas have, so each is varied below.
  for (const part of ['params', 'output']) {
    const def = SCHEMA[part]._zod.def; // Params is a pipe (its rename), Output an object
    const shape = (def.type === 'pipe' ? def.in._zod.def : def).shape;
    for (const [key, s] of Object.entries(shape)) {
      const have = new Set(SAMPLES[part][key].flatMap((v) => valuePaths(v)));
      for (const p of schemaPaths(s)) assert.ok(have.has(p), `no sample sets ${part}.${key}${p}`);
      for (const v of SAMPLES[part][key]) assert.ok(sdkTakes(part, key, v), `${part}.${key} sample`);
    }
  }
  // Variants: each place of each sample given wrong and right values, each
  // with a name saying what was done (`params.upload#0.profiles.0.gop := 7`).
  const variants = { params: {}, output: {} };
  for (const part of ['params', 'output']) {
    for (const [key, samples] of Object.entries(SAMPLES[part])) {
      variants[part][key] = samples.flatMap((sample, j) => paths(sample).flatMap((path) =>
        mutations(path.reduce((v, k) => v[k], sample), path.length > 0 && typeof path[path.length - 1] === 'string')
          .map((m) => ({
            name: `${part}.${key}#${j}${path.map((k) => `.${k}`).join('')} ${m === DELETE ? 'deleted' : `:= ${brief(m)}`}`,
            value: replaced(sample, path, m),
          }))));
    }
  }
  // Task i holds variant i of every member (members are checked one by one).
  const n = Math.max(...['params', 'output'].flatMap((part) => Object.values(variants[part]).map((a) => a.length)));
  const tasks = [];
  for (let i = 0; i < n; i++) {
    const pick = (part) => Object.entries(variants[part]).filter(([, a]) => i < a.length).map(([k, a]) => [k, a[i]]);
    const members = { params: pick('params'), output: pick('output') };
    tasks.push({ type: 'upload', members, params: Object.fromEntries(members.params.map(([k, m]) => [k, m.value])),
      result: Object.fromEntries(members.output.map(([k, m]) => [k, m.value])) });
  }
  const ns = `zod${Date.now()}`;
  const tok = createToken(srv.db, 'client', ns, 'zod').token;
  const wtok = createToken(srv.db, 'worker', ns, 'zod-worker').token;
  const ids = await storeTasks(tok, wtok, tasks, 'zod');
  const raw = await api('GET', '/api/task?limit=1000', tok);
  assert.equal(raw.status, 200);
  assert.equal(raw.json.length, n);
  const byId = new Map(raw.json.map((t) => [t.id, t]));
  const wrong = [];
  let kept = 0, dropped = 0;
  for (const [i, t] of tasks.entries()) {
    const served = byId.get(ids[i]);
    for (const part of ['params', 'output']) {
      const got = served[part] || {};
      for (const [key, { name, value }] of t.members[part]) {
        const want = sdkTakes(part, key, value);
        if (want !== key in got) wrong.push(`${name}: the SDK ${want ? 'takes' : 'refuses'} it, the view ${want ? 'left it out' : 'served it'}`);
        else if (want) assert.deepEqual(got[key], value, name);
        if (want) kept++; else dropped++;
      }
    }
  }
  assert.deepEqual(wrong, []);
  // And so the whole page parses, task by task.
  for (const t of raw.json) components.Task$inboundSchema.parse(t);
  assert.ok(kept > 100 && dropped > 300, `${kept} kept, ${dropped} dropped`);
});
