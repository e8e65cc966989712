// SailPoint's task-status API (/beta, /v2024, /v2025) driven by SailPoint's
// own SDK, sailpoint-api-client, configured as its users configure it: a
// base URL and a client id and secret, from which the SDK fetches a token
// at {baseurl}/oauth/token. Tasks are driven through their phases with the
// v1 API and read back through the SDK; PATCH made through the SDK is read
// back through v1. Golden files hold the exact JSON (ids and times
// normalised). UPDATE_GOLDEN=1 rewrites them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import sp from 'sailpoint-api-client';
import { startServer, v1, golden } from './server.mjs';

const { Configuration, TaskManagementBetaApi, TaskManagementV2024Api } = sp;

let srv;
let api;

before(async () => {
  srv = await startServer();
  // As users do: SAIL_BASE_URL / SAIL_CLIENT_ID / SAIL_CLIENT_SECRET and new Configuration().
  process.env.SAIL_BASE_URL = srv.url;
  process.env.SAIL_CLIENT_ID = srv.tokenId;
  process.env.SAIL_CLIENT_SECRET = srv.secret;
  const config = new Configuration();
  config.retriesConfig = { retries: 0 };
  api = new TaskManagementBetaApi(config);
});

after(async () => { await srv?.stop(); });

const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

async function submit(body) {
  const r = await v1(srv, 'POST', '/v1/tasks', { type: 'CLOUD_ACCOUNT_AGGREGATION', ...body });
  assert.equal(r.status, 201, r.body);
  return r.json;
}

async function claim(queue = 'default') {
  const r = await v1(srv, 'POST', `/v1/queues/${queue}/claim`, { worker: 'w1' });
  assert.equal(r.status, 200, r.body);
  return r.json;
}

/** Every field of TaskStatus that the SDK's model declares, with its type. */
function checkShape(ts) {
  assert.equal(typeof ts.id, 'string');
  assert.ok(['QUARTZ', 'QPOC', 'QUEUED_TASK'].includes(ts.type), ts.type);
  assert.equal(typeof ts.uniqueName, 'string');
  assert.equal(typeof ts.description, 'string');
  assert.ok('parentName' in ts && (ts.parentName === null || typeof ts.parentName === 'string'));
  assert.equal(typeof ts.launcher, 'string');
  assert.match(ts.created, TIME);
  for (const k of ['modified', 'launched', 'completed']) {
    assert.ok(k in ts, k);
    if (ts[k] !== null) assert.match(ts[k], TIME);
  }
  assert.ok('completionStatus' in ts);
  assert.ok(ts.completionStatus === null ||
    ['SUCCESS', 'WARNING', 'ERROR', 'TERMINATED', 'TEMPERROR'].includes(ts.completionStatus));
  assert.ok(Array.isArray(ts.messages));
  for (const m of ts.messages) {
    assert.ok(['INFO', 'WARN', 'ERROR'].includes(m.type));
    assert.equal(typeof m.key, 'string');
    assert.equal(typeof m.localizedText.locale, 'string');
    assert.equal(typeof m.localizedText.message, 'string');
    assert.ok(Array.isArray(m.parameters));
  }
  assert.ok(Array.isArray(ts.returns));
  for (const r of ts.returns) {
    assert.equal(typeof r.name, 'string');
    assert.equal(typeof r.attributeName, 'string');
  }
  assert.equal(typeof ts.attributes, 'object');
  assert.ok(ts.attributes !== null && !Array.isArray(ts.attributes));
  assert.ok('progress' in ts);
  assert.ok(Number.isInteger(ts.percentComplete) && ts.percentComplete >= 0 && ts.percentComplete <= 100);
  if (ts.target !== undefined && ts.target !== null) {
    assert.equal(typeof ts.target.id, 'string');
    assert.equal(typeof ts.target.name, 'string');
  }
  if (ts.taskDefinitionSummary !== undefined) {
    const d = ts.taskDefinitionSummary;
    for (const k of ['id', 'uniqueName', 'parentName']) assert.equal(typeof d[k], 'string');
    assert.equal(typeof d.arguments, 'object');
  }
}

/** Ids and times replaced by placeholders, for the golden files. */
function normalise(text, ids = []) {
  let s = text;
  ids.forEach((id, i) => { s = s.split(id).join(`<id${i}>`); });
  return s.replace(/"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"/g, (m) =>
    (m === '"2024-05-17T19:33:16.470Z"' ? m : '"<time>"'))
    .replace(/"trackingId":"[0-9a-f]{32}"/g, '"trackingId":"<tracking>"');
}

function checkGolden(name, text, ids) {
  const got = normalise(text, ids);
  if (process.env.UPDATE_GOLDEN) writeFileSync(new URL(`golden/sailpoint/${name}`, import.meta.url), got + '\n');
  assert.equal(got, golden(`sailpoint/${name}`).trimEnd());
}

async function raw(method, path, { body, type, token = srv.token } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (type) headers['Content-Type'] = type;
  const r = await fetch(srv.url + path, { method, headers, body });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, json: text ? JSON.parse(text) : null };
}

function checkErrorBody(r, status, detail, needle) {
  assert.equal(r.status, status, r.text);
  assert.deepEqual(Object.keys(r.json), ['detailCode', 'trackingId', 'messages', 'causes']);
  assert.equal(r.json.detailCode, detail);
  assert.match(r.json.trackingId, /^[0-9a-f]{32}$/);
  assert.equal(r.json.messages.length, 1);
  assert.equal(r.json.messages[0].locale, 'en-US');
  assert.equal(r.json.messages[0].localeOrigin, 'DEFAULT');
  if (needle) assert.match(r.json.messages[0].text, needle);
  assert.deepEqual(r.json.causes, []);
}

test('oauth/token: client credentials give a bearer usable on the SailPoint routes', async () => {
  for (const secret of [srv.secret, srv.secret.slice(-64)]) {
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: srv.tokenId, client_secret: secret });
    const r = await fetch(`${srv.url}/oauth/token`, { method: 'POST', body: form });
    assert.equal(r.status, 200);
    const j = await r.json();
    assert.equal(j.token_type, 'bearer');
    assert.ok(j.expires_in > 0);
    const list = await raw('GET', '/beta/task-status', { token: j.access_token });
    assert.equal(list.status, 200);
  }
  const bad = await fetch(`${srv.url}/oauth/token`, { method: 'POST',
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: srv.tokenId, client_secret: '0'.repeat(64) }) });
  assert.equal(bad.status, 401);
  assert.equal((await bad.json()).error, 'invalid_client');
  const grant = await fetch(`${srv.url}/oauth/token`, { method: 'POST',
    body: new URLSearchParams({ grant_type: 'password', client_id: srv.tokenId, client_secret: srv.secret }) });
  assert.equal(grant.status, 400);
  assert.equal((await grant.json()).error, 'unsupported_grant_type');
});

test('getTaskStatus through every phase, driven by v1', async () => {
  const parent = await submit({ name: 'Parent Job', queue: 'parents' });
  const t = await submit({
    name: 'Big Task', description: 'A Really Big Task', launcher: 'sweep', parent_id: parent.id,
    target: { id: 'c6dc37bf508149b28ce5b7d90ca4bbf9', type: 'APPLICATION', name: 'Active Directory [source]' },
    definition: { id: '2c91808475b4334b0175e1dff64b63c5', name: 'Cloud Account Aggregation',
      description: 'Aggregates from the specified application.', executor: 'sailpoint.task.ServiceTaskExecutor',
      arguments: { serviceMethod: 'accountAggregationTask' } },
  });
  // pending
  let { data, status } = await api.getTaskStatus({ id: t.id });
  assert.equal(status, 200);
  checkShape(data);
  assert.equal(data.id, t.id);
  assert.equal(data.type, 'QUEUED_TASK');
  assert.equal(data.uniqueName, 'Big Task');
  assert.equal(data.parentName, 'Parent Job');
  assert.equal(data.launcher, 'sweep');
  assert.equal(data.completionStatus, null);
  assert.equal(data.launched, null);
  assert.equal(data.completed, null);
  assert.equal(data.progress, 'Pending');
  assert.equal(data.percentComplete, 0);
  checkGolden('pending.json', JSON.stringify(data), [t.id]);

  // running, with progress, a message and attributes
  const c = await claim();
  assert.equal(c.task.id, t.id);
  let r = await v1(srv, 'POST', `/v1/tasks/${t.id}/heartbeat`, {
    lease_token: c.lease_token, progress: { ratio: 0.42, message: 'Aggregating' },
    messages: [{ level: 'WARN', key: 'agg.slow', text: 'source is slow', locale: 'en-US', parameters: [{ name: 'value' }] }],
    attributes: { identityCount: 7 },
  });
  assert.equal(r.status, 200, r.body);
  ({ data } = await api.getTaskStatus({ id: t.id }));
  checkShape(data);
  assert.match(data.launched, TIME);
  assert.equal(data.completionStatus, null);
  assert.equal(data.progress, 'Aggregating');
  assert.equal(data.percentComplete, 42);
  assert.deepEqual(data.attributes, { identityCount: 7 });
  assert.deepEqual(data.messages, [{ type: 'WARN', localizedText: { locale: 'en-US', message: 'source is slow' },
    key: 'agg.slow', parameters: [{ name: 'value' }] }]);

  // completed (WARNING, since a WARN was logged) with returns
  r = await v1(srv, 'POST', `/v1/tasks/${t.id}/complete`, {
    lease_token: c.lease_token, returns: [{ name: 'label', attribute: 'identityCount' }] });
  assert.equal(r.status, 200, r.body);
  ({ data } = await api.getTaskStatus({ id: t.id }));
  checkShape(data);
  assert.equal(data.completionStatus, 'WARNING');
  assert.match(data.completed, TIME);
  assert.equal(data.percentComplete, 100);
  assert.deepEqual(data.returns, [{ name: 'label', attributeName: 'identityCount' }]);
  const rawGet = await raw('GET', `/beta/task-status/${t.id}`);
  checkGolden('completed.json', rawGet.text, [t.id]);
});

test('failed, temporary failure, cancelled and stopping map onto completionStatus', async () => {
  const f = await submit({ name: 'will fail', queue: 'f1' });
  let c = await claim('f1');
  await v1(srv, 'POST', `/v1/tasks/${f.id}/fail`, { lease_token: c.lease_token, error: 'boom', retryable: false });
  let { data } = await api.getTaskStatus({ id: f.id });
  assert.equal(data.completionStatus, 'ERROR');
  assert.equal(data.progress, 'Failed');
  // The v1 error is served as the last message, an ERROR.
  const last = data.messages[data.messages.length - 1];
  assert.deepEqual([last.type, last.localizedText.message, last.key], ['ERROR', 'boom', 'taskmill.error']);

  // Message parameters come in the seed's type (a list of objects or strings),
  // whatever the worker sent.
  const pm = await submit({ name: 'params', queue: 'f5' });
  c = await claim('f5');
  const sent = [{ a: 1 }, 'text', 7, [1, 2], null];
  await v1(srv, 'POST', `/v1/tasks/${pm.id}/heartbeat`, { lease_token: c.lease_token, messages: [
    { level: 'INFO', text: 'object', parameters: { k: 'v' } },
    { level: 'INFO', text: 'list', parameters: sent },
  ] });
  ({ data } = await api.getTaskStatus({ id: pm.id }));
  assert.deepEqual(data.messages[0].parameters, [{ k: 'v' }]);
  assert.deepEqual(data.messages[1].parameters, [{ a: 1 }, 'text', '7', '[1,2]', 'null']);
  for (const m of data.messages) for (const x of m.parameters) assert.ok(typeof x === 'string' || (x && typeof x === 'object' && !Array.isArray(x)));

  const w = await submit({ name: 'will retry', queue: 'f2', max_retries: 1, backoff_ms: 60000 });
  c = await claim('f2');
  await v1(srv, 'POST', `/v1/tasks/${w.id}/fail`, { lease_token: c.lease_token, error: 'flaky' });
  ({ data } = await api.getTaskStatus({ id: w.id }));
  assert.equal(data.completionStatus, null, 'waiting to retry is not finished');
  assert.equal(data.progress, 'Waiting');

  const s = await submit({ name: 'will stop', queue: 'f3' });
  c = await claim('f3');
  await v1(srv, 'POST', `/v1/tasks/${s.id}/cancel`);
  ({ data } = await api.getTaskStatus({ id: s.id }));
  assert.equal(data.completionStatus, null);
  assert.equal(data.progress, 'Stopping');
  await v1(srv, 'POST', `/v1/tasks/${s.id}/fail`, { lease_token: c.lease_token, error: 'stopped' });
  ({ data } = await api.getTaskStatus({ id: s.id }));
  assert.equal(data.completionStatus, 'TERMINATED');

  const p = await submit({ name: 'paused', queue: 'f4', paused: true });
  ({ data } = await api.getTaskStatus({ id: p.id }));
  assert.equal(data.progress, 'Paused');
  const q = await submit({ type: 'QPOC', queue: 'f4' });
  ({ data } = await api.getTaskStatus({ id: q.id }));
  assert.equal(data.type, 'QPOC');
  assert.equal(data.uniqueName, 'QPOC', 'uniqueName falls back to the type');
  assert.equal(data.target, null);
  assert.equal(data.taskDefinitionSummary, undefined);
  checkShape(data);
});

test('getTaskStatusList: limit, offset, count, filters and sorters', async () => {
  // A namespace of its own, so earlier tests do not count.
  const ns = `list${Date.now()}`;
  const tok = await v1(srv, 'POST', '/v1/tokens', { role: 'client', namespace: ns });
  assert.equal(tok.status, 201, tok.body);
  const auth = { headers: { Authorization: `Bearer ${tok.json.secret || tok.json.token}` } };
  const mk = async (body) => {
    const r = await fetch(`${srv.url}/v1/tasks`, { method: 'POST', headers: { ...auth.headers, 'Content-Type': 'application/json' },
      body: JSON.stringify({ type: 'CLOUD_ACCOUNT_AGGREGATION', queue: ns, ...body }) });
    assert.equal(r.status, 201);
    return (await r.json()).id;
  };
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push(await mk({ name: `job ${i}`, target: { id: `src${i % 2}`, name: 's' } }));
  // finish two through SailPoint's PATCH
  const patchOpts = { headers: { ...auth.headers } };
  await api.updateTaskStatus({ id: ids[0], jsonPatchOperationBeta: [{ op: 'replace', path: '/completionStatus', value: 'Success' }] }, patchOpts);
  await api.updateTaskStatus({ id: ids[1], jsonPatchOperationBeta: [{ op: 'replace', path: '/completionStatus', value: 'error' }] }, patchOpts);

  let r = await api.getTaskStatusList({ count: true }, auth);
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-total-count'], '5');
  assert.deepEqual(r.data.map((x) => x.id), ids, 'default order: oldest first');
  r.data.forEach(checkShape);

  r = await api.getTaskStatusList({ sorters: '-created', limit: 2, offset: 1, count: true }, auth);
  assert.deepEqual(r.data.map((x) => x.id), [ids[3], ids[2]]);
  assert.equal(r.headers['x-total-count'], '5');

  r = await api.getTaskStatusList({ filters: 'completionStatus eq "Success"' }, auth);
  assert.deepEqual(r.data.map((x) => x.id), [ids[0]]);
  r = await api.getTaskStatusList({ filters: 'completionStatus in ("SUCCESS","error")', count: true }, auth);
  assert.deepEqual(r.data.map((x) => x.id), [ids[0], ids[1]]);
  assert.equal(r.headers['x-total-count'], '2');
  r = await api.getTaskStatusList({ filters: 'completionStatus isnull', count: true }, auth);
  assert.deepEqual(r.data.map((x) => x.id), ids.slice(2));
  r = await api.getTaskStatusList({ filters: `id eq "${ids[3]}" or (sourceId eq "src0" and not completionStatus pr)` }, auth);
  assert.deepEqual(r.data.map((x) => x.id), [ids[2], ids[3], ids[4]]);
  r = await api.getTaskStatusList({ filters: 'type eq "cloud_account_aggregation" and uniqueName sw "job 4"' }, auth);
  assert.deepEqual(r.data.map((x) => x.id), [ids[4]]);
  r = await api.getTaskStatusList({ filters: 'uniqueName co "OB 3"' }, auth);
  assert.deepEqual(r.data.map((x) => x.id), [ids[3]]);
  r = await api.getTaskStatusList({ filters: 'created gt 2000-01-01T00:00:00Z and created lt 2999-01-01T00:00:00.000Z and completed isnull' }, auth);
  assert.equal(r.data.length, 3);
  r = await api.getTaskStatusList({ filters: 'completed ge 2000-01-01T00:00:00Z' }, auth);
  assert.deepEqual(r.data.map((x) => x.id), [ids[0], ids[1]]);
  r = await api.getTaskStatusList({ filters: 'completionStatus ne "SUCCESS"', limit: 0, count: true }, auth);
  assert.deepEqual(r.data, []);
  assert.equal(r.headers['x-total-count'], '4');
  r = await api.getTaskStatusList({ filters: 'id eq "none"' }, auth);
  assert.deepEqual(r.data, []);

  // The same list under /v2024 and /v2025.
  for (const v of ['v2024', 'v2025']) {
    const x = await fetch(`${srv.url}/${v}/task-status?limit=1&count=true&sorters=-created`, auth);
    assert.equal(x.status, 200);
    assert.equal(x.headers.get('x-total-count'), '5');
    assert.deepEqual((await x.json()).map((y) => y.id), [ids[4]]);
  }
  // The v2024 SDK sends X-SailPoint-Experimental: true, and wants it enabled first.
  const cfg24 = new Configuration();
  cfg24.experimental = true;
  cfg24.retriesConfig = { retries: 0 };
  const v24 = new TaskManagementV2024Api(cfg24);
  const g = await v24.getTaskStatus({ id: ids[0] }, auth);
  assert.equal(g.data.completionStatus, 'SUCCESS');
});

test('a filter on a field finds the value the view serves for it (issue 15 item 11)', async () => {
  const ns = `proj${Date.now()}`;
  const tok = await v1(srv, 'POST', '/v1/tokens', { role: 'client', namespace: ns });
  assert.equal(tok.status, 201, tok.body);
  const auth = { headers: { Authorization: `Bearer ${tok.json.secret || tok.json.token}` } };
  const mk = async (body) => {
    const r = await fetch(`${srv.url}/v1/tasks`, { method: 'POST', headers: { ...auth.headers, 'Content-Type': 'application/json' },
      body: JSON.stringify({ type: 'CLOUD_ACCOUNT_AGGREGATION', queue: ns, ...body }) });
    assert.equal(r.status, 201);
    return (await r.json()).id;
  };
  // a: name, launcher and description of its own; b: none of them; c: paused
  const a = await mk({ name: 'Nightly', launcher: 'alice', description: 'the nightly run' });
  const b = await mk({});
  const c = await mk({ name: 'held' });
  const p = await fetch(`${srv.url}/v1/tasks/${c}/pause`, { method: 'POST', headers: auth.headers });
  assert.equal(p.status, 200);
  const served = async (id) => (await api.getTaskStatus({ id }, auth)).data;
  const sb = await served(b);
  assert.equal(sb.progress, 'Pending');
  assert.equal(sb.launcher, ns, 'the launcher falls back to the queue');
  assert.equal(sb.uniqueName, 'CLOUD_ACCOUNT_AGGREGATION', 'uniqueName falls back to the type');
  assert.equal(sb.description, '');
  assert.equal((await served(c)).progress, 'Paused');
  const ids = async (filters) => (await api.getTaskStatusList({ filters, count: true }, auth)).data.map((x) => x.id);
  assert.deepEqual(await ids('progress eq "Pending"'), [a, b]);
  assert.deepEqual(await ids('progress eq "paused"'), [c], 'case-insensitive, as every SailPoint filter');
  assert.deepEqual(await ids(`launcher eq "${ns}"`), [b, c]);
  assert.deepEqual(await ids('launcher eq "alice"'), [a]);
  assert.deepEqual(await ids('uniqueName eq "cloud_account_aggregation"'), [b]);
  assert.deepEqual(await ids('uniqueName sw "CLOUD_"'), [b]);
  assert.deepEqual(await ids('uniqueName in ("nightly","held")'), [a, c]);
  assert.deepEqual(await ids('description eq ""'), [b, c]);
  assert.deepEqual(await ids('not (progress eq "Pending")'), [c]);
  // every row a filter returns serves the value it was filtered on
  for (const x of (await api.getTaskStatusList({ filters: 'progress eq "Pending"' }, auth)).data) assert.equal(x.progress, 'Pending');
});

test('pending tasks: GET and HEAD, 204 when none', async () => {
  const ns = `pend${Date.now()}`;
  const tok = await v1(srv, 'POST', '/v1/tokens', { role: 'client', namespace: ns });
  const bearer = tok.json.secret || tok.json.token;
  const auth = { headers: { Authorization: `Bearer ${bearer}` } };
  let r = await api.getPendingTasks({ count: true }, auth);
  assert.equal(r.status, 204);
  assert.equal(r.headers['x-total-count'], '0');
  r = await api.getPendingTaskHeaders({ count: true }, auth);
  assert.equal(r.status, 204);
  const ids = [];
  for (let i = 0; i < 3; i++) {
    const x = await fetch(`${srv.url}/v1/tasks`, { method: 'POST', headers: { ...auth.headers, 'Content-Type': 'application/json' },
      body: JSON.stringify({ type: 'QUARTZ', name: `p${i}`, queue: ns }) });
    ids.push((await x.json()).id);
  }
  await api.updateTaskStatus({ id: ids[1], jsonPatchOperationBeta: [{ op: 'replace', path: '/completionStatus', value: 'TERMINATED' }] }, auth);
  r = await api.getPendingTasks({ count: true, limit: 1, offset: 1 }, auth);
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-total-count'], '2');
  assert.deepEqual(r.data.map((x) => x.id), [ids[2]]);
  assert.equal(r.data[0].type, 'QUARTZ');
  r = await api.getPendingTaskHeaders({ count: true }, auth);
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-total-count'], '2');
  assert.equal(r.data, '');
  // A page past the last is empty, so 204 too (the spec's 204 is "no content to be
  // returned"); with count=true its X-Total-Count still tells that tasks exist.
  r = await api.getPendingTasks({ count: true, limit: 1, offset: 2 }, auth);
  assert.equal(r.status, 204);
  assert.equal(r.headers['x-total-count'], '2');
  assert.equal(r.data, '');
});

test('updateTaskStatus: progress, then finish; shows in v1; worker is fenced off', async () => {
  const t = await submit({ name: 'patch me', queue: 'pq' });
  const c = await claim('pq');
  let r = await api.updateTaskStatus({ id: t.id, jsonPatchOperationBeta: [
    { op: 'replace', path: '/progress', value: 'Halfway there' },
    { op: 'replace', path: '/percentComplete', value: 50 }] });
  assert.equal(r.status, 200);
  checkShape(r.data);
  assert.equal(r.data.progress, 'Halfway there');
  assert.equal(r.data.percentComplete, 50);
  let v = await v1(srv, 'GET', `/v1/tasks/${t.id}`);
  assert.equal(v.json.progress.ratio, 0.5);
  assert.equal(v.json.progress.message, 'Halfway there');
  assert.equal(v.json.phase, 'running');

  // SailPoint's documented example, "Error" in mixed case.
  r = await api.updateTaskStatus({ id: t.id, jsonPatchOperationBeta: [
    { op: 'replace', path: '/completionStatus', value: 'Error' },
    { op: 'replace', path: '/completed', value: '2024-05-17T19:33:16.470Z' }] });
  assert.equal(r.data.completionStatus, 'ERROR');
  assert.equal(r.data.completed, '2024-05-17T19:33:16.470Z');
  checkGolden('patched.json', JSON.stringify(r.data), [t.id]);
  v = await v1(srv, 'GET', `/v1/tasks/${t.id}`);
  assert.equal(v.json.phase, 'failed');
  assert.equal(v.json.completion_status, 'ERROR');
  assert.equal(v.json.completed_at, '2024-05-17T19:33:16.470Z');
  assert.equal(v.json.lease, null);
  // The worker that held the lease can no longer report.
  const hb = await v1(srv, 'POST', `/v1/tasks/${t.id}/heartbeat`, { lease_token: c.lease_token });
  assert.equal(hb.status, 409);

  // Every finishing value, in any case.
  for (const [value, phase, status] of [['success', 'completed', 'SUCCESS'], ['Warning', 'completed', 'WARNING'],
    ['TEMPERROR', 'failed', 'TEMPERROR'], ['terminated', 'cancelled', 'TERMINATED']]) {
    const x = await submit({ name: value, queue: 'pq2' });
    const u = await api.updateTaskStatus({ id: x.id, jsonPatchOperationBeta: [{ op: 'replace', path: '/completionStatus', value }] });
    assert.equal(u.data.completionStatus, status);
    assert.match(u.data.completed, TIME);
    const y = await v1(srv, 'GET', `/v1/tasks/${x.id}`);
    assert.equal(y.json.phase, phase);
  }
});

test('errors: SailPoint ErrorResponseDto with the right status, and nothing changes', async () => {
  const t = await submit({ name: 'untouched', queue: 'eq' });
  const before = (await v1(srv, 'GET', `/v1/tasks/${t.id}`)).json;
  const P = 'application/json-patch+json';
  const bad = [
    [[{ op: 'replace', path: '/launched', value: '2024-01-01T00:00:00Z' }], /cannot be patched/],
    [[{ op: 'remove', path: '/completionStatus' }], /not supported/],
    [[{ op: 'replace', path: '/completionStatus', value: 'DONE' }], /must be SUCCESS/],
    [[{ op: 'replace', path: '/completed', value: 'yesterday' }], /RFC 3339/],
    [[{ op: 'replace', path: '/percentComplete', value: 140 }], /0 to 100/],
    [[{ op: 'replace', path: '/progress', value: 'ok' }, { op: 'replace', path: '/uniqueName', value: 'x' }], /cannot be patched/],
    [[{ op: 'replace', path: '/completed', value: '2024-05-17T19:33:16.470Z' }], /not finished/],
    [{ op: 'replace' }, /array/],
  ];
  for (const [body, needle] of bad) {
    const r = await raw('PATCH', `/beta/task-status/${t.id}`, { body: JSON.stringify(body), type: P });
    checkErrorBody(r, 400, '400.1 Bad Request Content', needle);
  }
  checkErrorBody(await raw('PATCH', `/beta/task-status/${t.id}`, { body: '[{', type: P }), 400, '400.1 Bad Request Content');
  checkErrorBody(await raw('PATCH', `/beta/task-status/${t.id}`, { body: '[]', type: 'text/xml' }), 415, '415 Unsupported Media Type');
  const after = (await v1(srv, 'GET', `/v1/tasks/${t.id}`)).json;
  assert.deepEqual(after, before, 'refused patches change nothing');

  // The SDK surfaces the same body.
  await assert.rejects(api.updateTaskStatus({ id: t.id, jsonPatchOperationBeta: [{ op: 'move', from: '/a', path: '/progress' }] }),
    (err) => err.response.status === 400 && err.response.data.detailCode === '400.1 Bad Request Content');
  await assert.rejects(api.getTaskStatus({ id: '0'.repeat(32) }),
    (err) => err.response.status === 404 && err.response.data.detailCode === '404 Not found');

  for (const q of ['limit=251', 'limit=-1', 'limit=ten', 'limit=%205', 'limit=5%20', 'offset=%0A3', 'offset=-3',
    'offset=1.5', 'count=maybe',
    'sorters=name', 'sorters=created,-modified', 'filters=', 'filters=' + encodeURIComponent('id eq x'),
    'filters=' + encodeURIComponent('foo eq "x"'), 'filters=' + encodeURIComponent('id eq "a" and'),
    'filters=' + encodeURIComponent('created sw "2020"'), 'filters=' + encodeURIComponent('created gt "soon"'),
    'filters=' + encodeURIComponent('completionStatus eq "DONE"'), 'filters=' + encodeURIComponent('id ca ("a")'),
    'filters=' + encodeURIComponent('id eq 5')]) {
    checkErrorBody(await raw('GET', `/beta/task-status?${q}`), 400, '400.1 Bad Request Content');
  }
  assert.equal((await raw('GET', '/beta/task-status?limit=%2B2')).status, 200); // as Java's parseInt
  checkErrorBody(await raw('GET', `/v2025/task-status/pending-tasks?limit=300`), 400, '400.1 Bad Request Content');
  // Auth refusals, routing errors.
  checkErrorBody(await raw('GET', '/beta/task-status', { token: null }), 401, '401 Unauthorized');
  checkErrorBody(await raw('GET', '/beta/task-status', { token: 'tm_0000000000000000_' + '0'.repeat(64) }), 401, '401 Unauthorized');
  const reader = await v1(srv, 'POST', '/v1/tokens', { role: 'reader', namespace: 'default' });
  const rt = reader.json.secret || reader.json.token;
  checkErrorBody(await raw('PATCH', `/beta/task-status/${t.id}`, { body: '[]', type: P, token: rt }), 403, '403 Forbidden');
  assert.equal((await raw('GET', `/beta/task-status/${t.id}`, { token: rt })).status, 200);
  checkErrorBody(await raw('DELETE', `/beta/task-status/${t.id}`), 405, '405 Method Not Allowed');
  checkErrorBody(await raw('GET', '/beta/task-status/a/b'), 404, '404 Not found');
  checkErrorBody(await raw('GET', '/v2025/task-status/nope'), 404, '404 Not found');
  const e404 = await raw('GET', `/beta/task-status/${'f'.repeat(32)}`);
  checkGolden('error_404.json', e404.text, ['f'.repeat(32)]);
  // v1 keeps its own shape.
  const v = await raw('GET', '/v1/tasks/nope');
  assert.ok(v.json.error);
});

test('error bodies are UTF-8 JSON when a message quotes half a character of the request', async () => {
  // The messages quote the client with "%.64s", which cut a two-byte character in two: the body was
  // not UTF-8 (RFC 8259 8.1), and strict JSON readers (Python's SDK, Java's) refused it whole.
  const strict = new TextDecoder('utf-8', { fatal: true });
  const get = async (path, init = {}) => {
    const r = await fetch(srv.url + path, { ...init, headers: { Authorization: `Bearer ${srv.token}`, ...init.headers } });
    return { status: r.status, json: JSON.parse(strict.decode(await r.arrayBuffer())) };
  };
  let r = await get(`/beta/task-status/${'a'.repeat(63)}%C3%A9`);
  assert.equal(r.status, 404);
  assert.match(r.json.messages[0].text, /'a{63}\?' was not found/);
  const t = await submit({ name: 'utf8' });
  r = await get(`/beta/task-status/${t.id}`, { method: 'PATCH', headers: { 'Content-Type': 'application/json-patch+json' },
    body: JSON.stringify([{ op: 'replace', path: `/${'p'.repeat(62)}\u00e9`, value: 1 }]) });
  assert.equal(r.status, 400);
  assert.match(r.json.messages[0].text, /path '\/p{62}\?' cannot be patched/);
});

test('another namespace\'s task is 404 through SailPoint', async () => {
  const t = await submit({ name: 'mine' });
  const tok = await v1(srv, 'POST', '/v1/tokens', { role: 'client', namespace: 'other' });
  const r = await raw('GET', `/beta/task-status/${t.id}`, { token: tok.json.secret || tok.json.token });
  checkErrorBody(r, 404, '404 Not found');
  const p = await raw('PATCH', `/beta/task-status/${t.id}`, { token: tok.json.secret || tok.json.token,
    type: 'application/json-patch+json', body: JSON.stringify([{ op: 'replace', path: '/completionStatus', value: 'SUCCESS' }]) });
  checkErrorBody(p, 404, '404 Not found');
  assert.equal((await v1(srv, 'GET', `/v1/tasks/${t.id}`)).json.phase, 'pending');
});

test('a task a schedule launched is QUARTZ, with its definition as taskDefinitionSummary', async () => {
  const def = await v1(srv, 'POST', '/v1/definitions', { name: 'Nightly Aggregation', type: 'CLOUD_ACCOUNT_AGGREGATION',
    description: 'Aggregates every source.', queue: 'sp-quartz', executor: 'sailpoint.task.ServiceTaskExecutor',
    arguments: { serviceMethod: 'accountAggregationTask' } });
  assert.equal(def.status, 201, def.body);
  const sch = await v1(srv, 'POST', '/v1/schedules', { name: 'nightly', cron: '0 2 * * *', timezone: 'Europe/Paris',
    definition: 'Nightly Aggregation' });
  assert.equal(sch.status, 201, sch.body);
  const fired = await v1(srv, 'POST', `/v1/schedules/${sch.json.id}/trigger`);
  assert.equal(fired.status, 201, fired.body);
  const id = fired.json.task.id;
  const summary = { id: def.json.id, uniqueName: 'Nightly Aggregation', description: 'Aggregates every source.',
    parentName: 'Nightly Aggregation', executor: 'sailpoint.task.ServiceTaskExecutor',
    arguments: { serviceMethod: 'accountAggregationTask' } };

  let { data } = await api.getTaskStatus({ id });
  checkShape(data);
  assert.equal(data.type, 'QUARTZ');
  assert.equal(data.launcher, 'schedule:nightly');
  assert.deepEqual(data.taskDefinitionSummary, summary);
  // The list shows it the same way.
  ({ data } = await api.getTaskStatusList({ filters: `id eq "${id}"` }));
  assert.equal(data.length, 1);
  assert.equal(data[0].type, 'QUARTZ');
  assert.deepEqual(data[0].taskDefinitionSummary, summary);
  // Through a run: still QUARTZ once it has finished.
  const c = await claim('sp-quartz');
  assert.equal(c.task.id, id);
  await v1(srv, 'POST', `/v1/tasks/${id}/complete`, { lease_token: c.lease_token });
  ({ data } = await api.getTaskStatus({ id }));
  assert.deepEqual([data.type, data.completionStatus], ['QUARTZ', 'SUCCESS']);

  // The same definition launched by hand is not a scheduled task.
  const manual = await v1(srv, 'POST', `/v1/definitions/${def.json.id}/launch`, {});
  assert.equal(manual.status, 201, manual.body);
  ({ data } = await api.getTaskStatus({ id: manual.json.id }));
  assert.equal(data.type, 'QUEUED_TASK');
  assert.deepEqual(data.taskDefinitionSummary, summary);
  assert.equal((await v1(srv, 'DELETE', `/v1/schedules/${sch.json.id}`)).status, 204);
});
