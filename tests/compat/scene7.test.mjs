// The Scene7 IPS view (src/compat/scene7.c), driven by the `soap` package
// (1.13.0) reading the WSDL taskmill serves: every job operation through
// every phase, every ActiveJob / TaskProgress / TaskItemProgress field, the
// ipsApiFault codes, authentication (authHeader, HTTP Basic, tokens of
// other roles and namespaces), hostile XML, and golden files for the exact
// XML. Tasks are also driven through v1 (claims, heartbeats, completion),
// so each check is a cross-view check: one record, two shapes.
//
// UPDATE_GOLDEN=1 rewrites tests/compat/golden/scene7/*.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync } from 'node:fs';
import soap from 'soap';
import { startServer, v1, golden, createToken } from './server.mjs';

const NS = 'http://www.scene7.com/IpsApi/xsd/2014-04-03';
const OPS = ['submitJob', 'getActiveJobs', 'stopJob', 'pauseJob', 'resumeJob', 'executeJob', 'deleteJob',
  'getScheduledJobs', 'getJobLogs', 'getJobLogDetails'];
const ACTIVE_JOB_ORDER = ['companyHandle', 'jobHandle', 'name', 'originalName', 'type', 'state',
  'submitUserEmail', 'serverName', 'startDate', 'triggerTime', 'totalSize', 'progress', 'progressMessage',
  'lastProgressUpdate', 'taskProgressArray'];
const TASK_PROGRESS_ORDER = ['taskType', 'taskState', 'numProcessed', 'numProcessing', 'numPending', 'progress',
  'progressMessage', 'lastProgressUpdate', 'taskItemProgressArray'];
const ITEM_ORDER = ['itemName', 'progress', 'progressMessage', 'lastProgressUpdate'];

let srv;
let client;
let queueSeq = 0;

/** A soap client from the served WSDL, pointed at the service, with an authHeader. */
async function makeClient(user, password) {
  const c = await soap.createClientAsync(`${srv.url}/scene7/webservice/IpsApi.wsdl`);
  c.setEndpoint(`${srv.url}/scene7/services/IpsApiService`);
  if (user !== undefined) c.addSoapHeader({ authHeader: { user, password } }, '', 'types', NS);
  return c;
}

before(async () => {
  srv = await startServer();
  client = await makeClient(srv.tokenId, srv.token);
});

after(async () => {
  if (srv) await srv.stop();
});

/** Calls an operation; returns [result, rawXml]. */
async function call(op, args, c = client) {
  const [result, raw] = await c[`${op}Async`](args);
  return [result, raw];
}

/** Calls an operation that must fail; returns the fault {element, code, reason, status, body}. */
async function fault(op, args, c = client) {
  try {
    await c[`${op}Async`](args);
  } catch (err) {
    const detail = err.root?.Envelope?.Body?.Fault?.detail;
    assert.ok(detail, `no SOAP fault: ${err.message}`);
    const [element] = Object.keys(detail);
    return { element, code: Number(detail[element].code), reason: detail[element].reason,
      status: err.response?.status, body: err.body };
  }
  assert.fail(`${op} did not fail`);
}

/** POSTs raw XML to the service; returns {status, type, body}. */
async function raw(body, headers = {}) {
  const r = await fetch(`${srv.url}/scene7/services/IpsApiService`, {
    method: 'POST', headers: { 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: '""', ...headers }, body,
  });
  return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
}

function envelope(param, header = authXml()) {
  return `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="${NS}">
<soapenv:Header>${header}</soapenv:Header><soapenv:Body>${param}</soapenv:Body></soapenv:Envelope>`;
}

function authXml(user = srv.tokenId, password = srv.token, extra = '') {
  return `<t:authHeader><t:user>${user}</t:user><t:password>${password}</t:password>${extra}</t:authHeader>`;
}

/** The ipsApiFault code in a raw fault body. */
function rawFault(body) {
  const m = /<(ipsApiFault|authenticationFault|authorizationFault) xmlns="[^"]+"><code>(\d+)<\/code><reason>([^<]*)<\/reason>/.exec(body);
  assert.ok(m, `not a fault: ${body}`);
  return { element: m[1], code: Number(m[2]), reason: m[3] };
}

async function v1get(id) {
  const r = await v1(srv, 'GET', `/v1/tasks/${id}`);
  assert.equal(r.status, 200, r.body);
  return r.json;
}

async function v1count() {
  const r = await v1(srv, 'GET', '/v1/tasks?limit=1000');
  return r.json.tasks.length;
}

/** Submits through Scene7; returns the jobHandle. */
async function submitJob(extra = {}) {
  const hasDetail = Object.keys(extra).some((k) => k.endsWith('Job'));
  const [res, xml] = await call('submitJob', {
    companyHandle: 'default', jobName: `job ${++queueSeq}`,
    ...(hasDetail ? {} : { uploadUrlsJob: { destFolder: 'photos/', urlArray: { items: [{ sourceUrl: 'http://example.com/a.jpg' }] } } }),
    ...extra,
  });
  assert.match(res.jobHandle, /^[0-9a-f]{32}$/);
  assert.match(xml, new RegExp(`<submitJobReturn xmlns="${NS}"><jobHandle>${res.jobHandle}</jobHandle></submitJobReturn>`));
  return res.jobHandle;
}

/** Reads one job through getActiveJobs by jobHandle; returns [activeJob, rawXml]. */
async function activeJob(jobHandle, companyHandle = 'default') {
  const [res, xml] = await call('getActiveJobs', { companyHandle, jobHandle });
  const items = res?.jobArray?.items || [];
  assert.equal(items.length, 1, xml);
  return [items[0], xml];
}

/** Checks the element order and types of an ActiveJob in raw XML. */
function checkOrder(xml) {
  const job = /<items><companyHandle>[\s\S]*?<\/taskProgressArray>/.exec(xml)[0];
  const top = [...job.replace(/<taskProgressArray>[\s\S]*<\/taskProgressArray>/, '<taskProgressArray/>')
    .replace(/^<items>/, '').matchAll(/<([A-Za-z]+)(?:\/)?>/g)].map((m) => m[1]);
  assert.deepEqual(top, ACTIVE_JOB_ORDER);
  const tp = /<taskProgressArray><items>([\s\S]*?)<taskItemProgressArray>/.exec(job)[1];
  const tpNames = [...tp.matchAll(/<([A-Za-z]+)>/g)].map((m) => m[1]);
  assert.deepEqual([...tpNames, 'taskItemProgressArray'], TASK_PROGRESS_ORDER);
  const items = /<taskItemProgressArray>([\s\S]*?)<\/taskItemProgressArray>/.exec(job)[1];
  for (const it of items.matchAll(/<items>([\s\S]*?)<\/items>/g))
    assert.deepEqual([...it[1].matchAll(/<([A-Za-z]+)>/g)].map((m) => m[1]), ITEM_ORDER);
}

const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
/** The soap client reads xsd:dateTime into a Date; back to RFC 3339 text. */
const iso = (v) => (v instanceof Date ? v.toISOString() : v);

/** Checks every field of an ActiveJob against the v1 record. */
function checkJob(job, t, want) {
  assert.equal(job.companyHandle, t.namespace);
  assert.equal(job.jobHandle, t.id);
  assert.equal(job.name, t.name ?? t.id);
  assert.equal(job.originalName, t.name ?? t.id);
  assert.equal(job.type, t.type);
  assert.equal(job.state, want.state);
  assert.equal(job.submitUserEmail, t.launcher ?? '');
  assert.equal(job.serverName, t.lease?.worker ?? 'taskmill');
  for (const k of ['startDate', 'triggerTime', 'lastProgressUpdate']) {
    assert.ok(job[k] instanceof Date, k);
    assert.match(iso(job[k]), TIME, k);
  }
  assert.equal(iso(job.startDate), t.started_at ?? t.scheduled_at ?? t.created_at);
  assert.equal(iso(job.triggerTime), t.scheduled_at ?? t.created_at);
  const p = t.progress;
  assert.equal(job.totalSize, p.processed + p.processing + p.pending);
  assert.equal(job.progress, p.percent);
  assert.equal(job.progressMessage, want.message ?? p.message ?? '');
  assert.equal(iso(job.lastProgressUpdate), p.updated_at ?? t.updated_at);
  const tps = job.taskProgressArray.items;
  assert.equal(tps.length, 1);
  const tp = tps[0];
  assert.equal(tp.taskType, t.type);
  assert.equal(tp.taskState, want.taskState);
  assert.equal(tp.numProcessed, p.processed);
  assert.equal(tp.numProcessing, p.processing);
  assert.equal(tp.numPending, p.pending);
  assert.equal(Number(tp.progress), p.ratio); // one number writer for both views
  assert.equal(tp.progressMessage, job.progressMessage);
  assert.equal(iso(tp.lastProgressUpdate), iso(job.lastProgressUpdate));
  const items = tp.taskItemProgressArray?.items || [];
  assert.equal(items.length, (t.items || []).length);
  items.forEach((it, i) => {
    assert.equal(it.itemName, t.items[i].name);
    assert.equal(Number(it.progress), t.items[i].progress);
    assert.equal(it.progressMessage, t.items[i].message ?? '');
    assert.equal(iso(it.lastProgressUpdate), t.items[i].updated_at);
  });
}

/** The exact XML with ids and times replaced, for golden files. */
function normalise(xml) {
  return xml.replace(/[0-9a-f]{32}/g, '<ID>').replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, '<TIME>')
    .replace(/job \d+/g, 'job N').replace(/s7q\d+/g, 's7qN');
}

const goldenOut = [];
function record(label, xml) {
  goldenOut.push(`== ${label}\n${normalise(xml)}`);
}

async function claim(queue, worker = 'w1') {
  const r = await v1(srv, 'POST', `/v1/queues/${queue}/claim`, { worker, lease_seconds: 60 });
  assert.equal(r.status, 200, r.body);
  return r.json;
}

test('the WSDL is served and the soap client knows every operation', async () => {
  for (const path of ['/scene7/webservice/IpsApi.wsdl', '/scene7/services/IpsApiService?wsdl']) {
    const r = await fetch(srv.url + path);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/xml/);
    const text = await r.text();
    assert.match(text, new RegExp(`targetNamespace="${NS}"`));
    assert.match(text, /<soap:address location="http:\/\/127\.0\.0\.1:\d+\/scene7\/services\/IpsApiService"\/>/);
  }
  const d = client.describe();
  const ops = Object.keys(d.IpsApiService.IpsApiSoapPort);
  assert.deepEqual(ops.sort(), [...OPS].sort());
  // The WSDL's own address works without setEndpoint.
  const c = await soap.createClientAsync(`${srv.url}/scene7/webservice/IpsApi.wsdl`);
  c.addSoapHeader({ authHeader: { user: srv.tokenId, password: srv.token } }, '', 'types', NS);
  const [res] = await c.getActiveJobsAsync({ companyHandle: 'nobody' });
  assert.equal(res.jobArray, null);
});

test('submitJob with execTime waits; executeJob runs it now; pause and resume', async () => {
  const at = new Date(Date.now() + 3600e3).toISOString();
  const h = await submitJob({ userHandle: 'ann@example.com', description: 'nightly import', locale: 'en-US',
    execTime: at });
  let t = await v1get(h);
  assert.equal(t.phase, 'waiting');
  assert.equal(t.scheduled_at, at);
  assert.equal(t.type, 'UrlUpload');
  assert.equal(t.launcher, 'ann@example.com');
  assert.equal(t.description, 'nightly import');
  assert.deepEqual(t.params, { uploadUrlsJob: { destFolder: 'photos/', urlArray: { items: { sourceUrl: 'http://example.com/a.jpg' } } }, locale: 'en-US' });
  let [job, xml] = await activeJob(h);
  checkOrder(xml);
  checkJob(job, t, { state: 'WaitingCoordinator', taskState: 'New' });
  record('waiting (execTime in the future)', xml);

  let [res, rawXml] = await call('pauseJob', { companyHandle: 'default', jobHandle: h });
  assert.equal(res, null);
  assert.match(rawXml, new RegExp(`<pauseJobReturn xmlns="${NS}"/>`));
  t = await v1get(h);
  assert.equal(t.paused, true);
  [job, xml] = await activeJob(h);
  checkJob(job, t, { state: 'WaitingClient', taskState: 'New' });
  record('waiting, paused', xml);

  [res, rawXml] = await call('resumeJob', { companyHandle: 'default', jobHandle: h });
  assert.match(rawXml, /<resumeJobReturn xmlns="[^"]+"\/>/);
  assert.equal((await v1get(h)).paused, false);

  [res, rawXml] = await call('executeJob', { companyHandle: 'default', jobHandle: h });
  assert.match(rawXml, /<executeJobReturn xmlns="[^"]+"\/>/);
  t = await v1get(h);
  assert.equal(t.phase, 'pending');
  [job, xml] = await activeJob(h);
  checkJob(job, t, { state: 'New', taskState: 'New' });
  record('pending (after executeJob)', xml);
  // executeJob on a job that is already due changes nothing.
  await call('executeJob', { companyHandle: 'default', jobHandle: h });
  assert.equal((await v1get(h)).version, t.version);
  await call('deleteJob', { companyHandle: 'default', jobHandle: h });
});

test('a v1 task through running, progress with items, stop: every field', async () => {
  const queue = `s7q${++queueSeq}`;
  const sub = await v1(srv, 'POST', '/v1/tasks', { type: 'ImageServingPublish', name: 'publish <all> & more', queue,
    launcher: 'bob@example.com' });
  assert.equal(sub.status, 201);
  const id = sub.json.id;
  const { lease_token: lease } = await claim(queue);
  let t = await v1get(id);
  let [job, xml] = await activeJob(id);
  checkOrder(xml);
  checkJob(job, t, { state: 'Running', taskState: 'Processing' });
  assert.match(xml, /<name>publish &lt;all&gt; &amp; more<\/name>/);

  const hb = await v1(srv, 'POST', `/v1/tasks/${id}/heartbeat`, {
    lease_token: lease,
    progress: { processed: 1, processing: 2, pending: 1, message: 'publishing 3 of 4' },
    items: [{ name: 'a.jpg', progress: 1, message: 'done' }, { name: 'b.jpg', progress: 0.25 }],
  });
  assert.equal(hb.status, 200, hb.body);
  t = await v1get(id);
  [job, xml] = await activeJob(id);
  checkOrder(xml);
  checkJob(job, t, { state: 'Running', taskState: 'Processing' });
  assert.equal(job.progress, 25);
  assert.equal(job.taskProgressArray.items[0].numProcessing, 2);
  assert.equal(job.taskProgressArray.items[0].taskItemProgressArray.items.length, 2);
  record('running with counts and items', xml);

  // Scene7 pause of a running job shows in v1 and back.
  await call('pauseJob', { companyHandle: 'default', jobHandle: id });
  assert.equal((await v1get(id)).paused, true);
  [job] = await activeJob(id);
  assert.equal(job.state, 'WaitingClient');
  assert.equal(job.taskProgressArray.items[0].taskState, 'Processing');
  await call('resumeJob', { companyHandle: 'default', jobHandle: id });

  // Scene7 stop: v1 sees stopping, the worker hears it, then cancelled.
  await call('stopJob', { companyHandle: 'default', jobHandle: id });
  t = await v1get(id);
  assert.equal(t.phase, 'stopping');
  [job, xml] = await activeJob(id);
  checkJob(job, t, { state: 'Stopping', taskState: 'Stopping' });
  record('stopping (after stopJob)', xml);
  const hb2 = await v1(srv, 'POST', `/v1/tasks/${id}/heartbeat`, { lease_token: lease });
  assert.equal(hb2.json.cancel_requested, true);
  await v1(srv, 'POST', `/v1/tasks/${id}/fail`, { lease_token: lease, error: 'stopped' });
  t = await v1get(id);
  assert.equal(t.phase, 'cancelled');
  [job, xml] = await activeJob(id);
  checkJob(job, t, { state: 'Done', taskState: 'Done' });
  record('cancelled', xml);
  // A repeated stop is not an error; a pause of a finished job is.
  await call('stopJob', { companyHandle: 'default', jobHandle: id });
  const f = await fault('pauseJob', { companyHandle: 'default', jobHandle: id });
  assert.equal(f.code, 30001);
  assert.match(f.reason, /cannot be paused/);
  // executeJob runs a stopped job again.
  await call('executeJob', { companyHandle: 'default', jobHandle: id });
  assert.equal((await v1get(id)).phase, 'pending');
});

test('completed and failed jobs', async () => {
  const queue = `s7q${++queueSeq}`;
  const h = await submitJob({ jobName: 'to complete', imageServingPublishJob: { publishType: 'Full' } });
  const h2 = await submitJob({ jobName: 'to fail', optimizeImagesJob: {} });
  // Scene7 jobs run on the queue 'default'; claim them by id order.
  const done = new Set();
  for (let i = 0; i < 2; i++) {
    const c = await v1(srv, 'POST', '/v1/queues/default/claim', { worker: 'w2', lease_seconds: 60,
      types: ['ImageServingPublish', 'ImageOptimization'] });
    assert.equal(c.status, 200, c.body);
    const { task, lease_token: lease } = c.json;
    done.add(task.id);
    if (task.id === h) {
      await v1(srv, 'POST', `/v1/tasks/${h}/complete`, { lease_token: lease });
    } else {
      await v1(srv, 'POST', `/v1/tasks/${h2}/fail`, { lease_token: lease, error: 'bad pdf', retryable: false });
    }
  }
  assert.deepEqual([...done].sort(), [h, h2].sort());
  let t = await v1get(h);
  assert.equal(t.phase, 'completed');
  let [job, xml] = await activeJob(h);
  checkJob(job, t, { state: 'Done', taskState: 'Done' });
  assert.equal(job.progress, 100);
  assert.equal(Number(job.taskProgressArray.items[0].progress), 1);
  assert.equal(job.type, 'ImageServingPublish');
  record('completed', xml);

  t = await v1get(h2);
  assert.equal(t.phase, 'failed');
  [job, xml] = await activeJob(h2);
  checkJob(job, t, { state: 'Done', taskState: 'Failed', message: 'bad pdf' });
  record('failed', xml);

  // executeJob: a completed job cannot run again, a failed one can.
  const f = await fault('executeJob', { companyHandle: 'default', jobHandle: h });
  assert.equal(f.code, 30001);
  await call('executeJob', { companyHandle: 'default', jobHandle: h2 });
  assert.equal((await v1get(h2)).phase, 'pending');
  void queue;
});

test('deleteJob removes finished and waiting jobs, stops running ones', async () => {
  const h = await submitJob({ execTime: new Date(Date.now() + 3600e3).toISOString() });
  const [, xml] = await call('deleteJob', { companyHandle: 'default', jobHandle: h });
  assert.match(xml, /<deleteJobReturn xmlns="[^"]+"\/>/);
  assert.equal((await v1(srv, 'GET', `/v1/tasks/${h}`)).status, 404);

  const queue = `s7q${++queueSeq}`;
  const id = (await v1(srv, 'POST', '/v1/tasks', { type: 'x', queue })).json.id;
  const { lease_token: lease } = await claim(queue);
  await call('deleteJob', { companyHandle: 'default', jobHandle: id });
  assert.equal((await v1get(id)).phase, 'stopping');
  await v1(srv, 'POST', `/v1/tasks/${id}/release`, { lease_token: lease });
  assert.equal((await v1get(id)).phase, 'cancelled');
  await call('deleteJob', { companyHandle: 'default', jobHandle: id });
  assert.equal((await v1(srv, 'GET', `/v1/tasks/${id}`)).status, 404);
  const f = await fault('deleteJob', { companyHandle: 'default', jobHandle: id });
  assert.equal(f.code, 30001);
  assert.match(f.reason, /not found/);
});

test('getActiveJobs filters by companyHandle, jobHandle and originalName', async () => {
  const a = await submitJob({ jobName: 'filter-me', execTime: new Date(Date.now() + 3600e3).toISOString() });
  const other = await v1(srv, 'POST', '/v1/tasks', { type: 'VideoPublish', name: 'filter-me', namespace: 'acme',
    scheduled_at: new Date(Date.now() + 3600e3).toISOString() });
  assert.equal(other.status, 201, other.body);
  let [res] = await call('getActiveJobs', { originalName: 'filter-me' });
  assert.deepEqual(res.jobArray.items.map((j) => j.jobHandle).sort(), [a, other.json.id].sort());
  [res] = await call('getActiveJobs', { companyHandle: 'acme', originalName: 'filter-me' });
  assert.deepEqual(res.jobArray.items.map((j) => j.jobHandle), [other.json.id]);
  assert.equal(res.jobArray.items[0].companyHandle, 'acme');
  [res] = await call('getActiveJobs', { companyHandle: 'acme', jobHandle: a });
  assert.equal(res.jobArray, null);
  [res] = await call('getActiveJobs', { companyHandle: 'default', originalName: 'filter-m' });
  assert.equal(res.jobArray, null);
  [res] = await call('getActiveJobs', { jobHandle: 'not-a-job' });
  assert.equal(res.jobArray, null);
  [res] = await call('getActiveJobs', { companyHandle: 'default' });
  assert.ok(res.jobArray.items.every((j) => j.companyHandle === 'default'));
  assert.ok(res.jobArray.items.some((j) => j.jobHandle === a));
  const [, xml] = await call('getActiveJobs', { companyHandle: 'nobody' });
  record('getActiveJobs with no match', xml);
  await call('deleteJob', { companyHandle: 'default', jobHandle: a });
  await call('deleteJob', { companyHandle: 'acme', jobHandle: other.json.id });
});

test('originalName finds a job with no name of its own by the id it shows as its name', async () => {
  // A v1 task without a name shows its id as name and originalName; a
  // filter on that value finds it, beside a named job whose name is that id.
  const later = new Date(Date.now() + 3600e3).toISOString();
  const t1 = await v1(srv, 'POST', '/v1/tasks', { type: 'VideoPublish', namespace: 'noname', scheduled_at: later });
  assert.equal(t1.status, 201, t1.body);
  const id = t1.json.id;
  const t2 = await v1(srv, 'POST', '/v1/tasks', { type: 'VideoPublish', namespace: 'noname', name: id,
    scheduled_at: later });
  assert.equal(t2.status, 201, t2.body);
  let [res] = await call('getActiveJobs', { companyHandle: 'noname', originalName: id });
  assert.deepEqual(res.jobArray.items.map((j) => j.jobHandle), [t2.json.id, id]);
  assert.ok(res.jobArray.items.every((j) => j.originalName === id));
  [res] = await call('getActiveJobs', { originalName: id });
  assert.deepEqual(res.jobArray.items.map((j) => j.jobHandle), [t2.json.id, id]);
  [res] = await call('getActiveJobs', { companyHandle: 'default', originalName: id });
  assert.equal(res.jobArray, null);
  // Its log: one that ran (claimed and completed).
  const t3 = await v1(srv, 'POST', '/v1/tasks', { type: 'VideoPublish', namespace: 'noname', queue: 'nonameq' });
  const c = await claim('nonameq');
  assert.equal(c.task.id, t3.json.id);
  assert.equal((await v1(srv, 'POST', `/v1/tasks/${c.task.id}/complete`, { lease_token: c.lease_token })).status, 200);
  [res] = await call('getJobLogDetails', { companyHandle: 'noname', originalName: t3.json.id });
  assert.deepEqual(res.jobLogArray.items.map((l) => l.jobHandle), [t3.json.id]);
  [res] = await call('getJobLogs', { companyHandle: 'noname' });
  assert.ok(res.jobLogArray.items.some((l) => l.jobHandle === t3.json.id));
  for (const t of [id, t2.json.id]) assert.equal((await v1(srv, 'POST', `/v1/tasks/${t}/cancel`)).status, 200);
});

test('replies are well-formed UTF-8 XML: U+FFFF in a name, a fault that quotes half a character', async () => {
  // jansson, so v1, takes U+FFFE and U+FFFF in a name; XML 1.0 does not. One such task made the
  // company's whole getActiveJobs reply not well-formed for every strict XML client.
  const t = await v1(srv, 'POST', '/v1/tasks', { type: 'VideoPublish', name: 'odd\uffffname\ufffe\u00e9', namespace: 'utf8co' });
  assert.equal(t.status, 201, t.body);
  const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
  let r = await fetch(`${srv.url}/scene7/services/IpsApiService`, { method: 'POST',
    headers: { 'Content-Type': 'text/xml; charset=utf-8' },
    body: envelope(`<t:getActiveJobsParam><t:companyHandle>utf8co</t:companyHandle></t:getActiveJobsParam>`) });
  let text = strictUtf8.decode(await r.arrayBuffer());
  assert.equal(r.status, 200, text);
  assert.ok(!/[\ufffe\uffff]/.test(text), text);
  assert.match(text, /<name>odd\?name\?\u00e9<\/name>/);
  // A fault's reason quotes the jobHandle with "%.64s": 63 ASCII bytes and a two-byte character.
  r = await fetch(`${srv.url}/scene7/services/IpsApiService`, { method: 'POST',
    headers: { 'Content-Type': 'text/xml; charset=utf-8' },
    body: envelope(`<t:stopJobParam><t:companyHandle>utf8co</t:companyHandle><t:jobHandle>${'a'.repeat(63)}\u00e9</t:jobHandle></t:stopJobParam>`) });
  text = strictUtf8.decode(await r.arrayBuffer());
  assert.equal(r.status, 500);
  assert.match(text, /<reason>jobHandle 'a{63}\?' not found<\/reason>/);
  assert.equal((await v1(srv, 'POST', `/v1/tasks/${t.json.id}/cancel`)).status, 200);
  assert.equal((await v1(srv, 'DELETE', `/v1/tasks/${t.json.id}`)).status, 204);
});

test('bad or missing parameters and unknown jobs are ipsApiFaults; nothing changes', async () => {
  const before = await v1count();
  let f = await fault('stopJob', { jobHandle: '0123' });
  assert.deepEqual([f.element, f.code, f.status], ['ipsApiFault', 30002, 500]);
  assert.match(f.reason, /companyHandle/);
  f = await fault('pauseJob', { companyHandle: 'default' });
  assert.equal(f.code, 30002);
  f = await fault('resumeJob', { companyHandle: 'default', jobHandle: '0'.repeat(32) });
  assert.equal(f.code, 30001);
  assert.match(f.reason, /not found/);
  f = await fault('submitJob', { companyHandle: 'default', jobName: 'x' });
  assert.equal(f.code, 30002);
  assert.match(f.reason, /job-detail/);
  f = await fault('submitJob', { companyHandle: 'default', uploadUrlsJob: {} });
  assert.equal(f.code, 30002);
  f = await fault('submitJob', { companyHandle: 'default', jobName: 'x', execTime: 'tomorrow', uploadUrlsJob: {} });
  assert.equal(f.code, 30001);
  f = await fault('submitJob', { companyHandle: 'default', jobName: 'x', execSchedule: '0 0 * *', uploadUrlsJob: {} });
  assert.equal(f.code, 30001);
  f = await fault('submitJob', { companyHandle: 'no spaces', jobName: 'x', uploadUrlsJob: {} });
  assert.equal(f.code, 30001);
  record('fault: invalid parameter', f.body);
  const r = await raw(envelope(`<t:submitJobParam><t:companyHandle>default</t:companyHandle><t:jobName>x</t:jobName>
    <t:uploadUrlsJob/><t:exportJob/></t:submitJobParam>`));
  assert.equal(rawFault(r.body).code, 30001);
  const r2 = await raw(envelope('<t:stopJobParam><t:companyHandle>default</t:companyHandle><t:jobHandle>x</t:jobHandle><t:bogus/></t:stopJobParam>'));
  assert.equal(rawFault(r2.body).code, 30001);
  const r3 = await raw(envelope('<t:getAssetJobLogsParam/>'));
  assert.equal(rawFault(r3.body).code, 30003);
  f = await fault('getScheduledJobs', {});
  assert.deepEqual([f.code, f.reason], [30002, "'getScheduledJobs' needs 'companyHandle'"]);
  f = await fault('getJobLogDetails', { jobHandle: '0'.repeat(32) });
  assert.equal(f.code, 30002);
  f = await fault('getJobLogs', { sortBy: 'Size' });
  assert.equal(f.code, 30001);
  assert.match(f.reason, /Job Log Sort Field/);
  f = await fault('getJobLogs', { numRows: 0 });
  assert.equal(f.code, 30001);
  f = await fault('getJobLogs', { sortDirection: 'up' });
  assert.equal(f.code, 30001);
  f = await fault('getJobLogs', { startDate: '2026-01-02T00:00:00Z', endDate: '2026-01-01T00:00:00Z' });
  assert.match(f.reason, /endDate/);
  f = await fault('getJobLogDetails', { companyHandle: 'default', sortBy: 'StartDate' });
  assert.match(f.reason, /Date or LogType/);
  f = await fault('getJobLogDetails', { companyHandle: 'default', resultsPage: -1 });
  assert.equal(f.code, 30001);
  assert.equal(await v1count(), before);
});

test('Content-Type: a SOAP 1.1 request is text/xml; any other, or none, is 415 with a fault naming it, nothing stored', async () => {
  // What the soap client sends, which the rest of this suite shows is taken.
  await call('getActiveJobs', { companyHandle: 'default' });
  assert.equal(client.lastRequestHeaders['Content-Type'], 'text/xml; charset=utf-8');
  const before = await v1count();
  // faultHttpStatusCode does not apply: the body is not read.
  const body = envelope('<t:submitJobParam><t:companyHandle>default</t:companyHandle><t:jobName>ct job</t:jobName>'
    + '<t:uploadUrlsJob/></t:submitJobParam>', authXml(srv.tokenId, srv.token,
    '<t:faultHttpStatusCode>200</t:faultHttpStatusCode>'));
  const refused = [
    [undefined, /^'Content-Type' is missing: a SOAP 1\.1 request is sent as 'text\/xml'$/],
    ['application/json', /^'Content-Type' must be 'text\/xml' \(SOAP 1\.1, charset UTF-8 or US-ASCII\), not 'application\/json'$/],
    ['text/plain;charset=UTF-8', /not 'text\/plain;charset=UTF-8'$/],
    ['application/xml', /not 'application\/xml'$/],
    ['text/xml; charset=iso-8859-1', /not 'text\/xml; charset=iso-8859-1'$/],
    ['application/soap+xml; charset=utf-8', /'application\/soap\+xml' is SOAP 1\.2; this service speaks SOAP 1\.1/],
  ];
  for (const [ct, why] of refused) {
    // A byte body: fetch adds no Content-Type of its own to it.
    const r = await fetch(`${srv.url}/scene7/services/IpsApiService`, { method: 'POST',
      headers: { SOAPAction: '""', ...(ct ? { 'Content-Type': ct } : {}) }, body: Buffer.from(body) });
    const text = await r.text();
    assert.equal(r.status, 415, `${ct}: ${text}`);
    assert.equal(r.headers.get('content-type'), 'text/xml; charset=utf-8');
    assert.match(text, /<faultcode>soapenv:Client<\/faultcode>/);
    const f = rawFault(text);
    assert.deepEqual([f.element, f.code], ['ipsApiFault', 30003], ct);
    assert.match(f.reason, why, ct);
  }
  assert.equal(await v1count(), before);
  for (const ct of ['text/xml', 'Text/XML; charset="UTF-8"', 'text/xml; charset=us-ascii']) {
    const r = await raw(body, { 'Content-Type': ct });
    assert.equal(r.status, 200, `${ct}: ${r.body}`);
    const h = /<jobHandle>([0-9a-f]{32})<\/jobHandle>/.exec(r.body)?.[1];
    assert.ok(h, r.body);
    assert.equal((await v1get(h)).name, 'ct job');
    await call('deleteJob', { companyHandle: 'default', jobHandle: h });
  }
  assert.equal(await v1count(), before);
});

test('hostile and malformed XML: INVALID_REQUEST_XML, nothing stored', async () => {
  const before = await v1count();
  const submit = '<t:submitJobParam><t:companyHandle>default</t:companyHandle><t:jobName>&lol9;</t:jobName><t:uploadUrlsJob/></t:submitJobParam>';
  const laughs = `<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
${envelope(submit).replace(/^<\?xml[^>]*>\n/, '')}`;
  const external = `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
${envelope(submit.replace('&lol9;', '&xxe;')).replace(/^<\?xml[^>]*>\n/, '')}`;
  const bodies = {
    laughs, external,
    undefinedEntity: envelope(submit),
    notXml: 'hello',
    truncated: envelope(submit).slice(0, 120),
    empty: '',
    wrongRoot: `<t:submitJobParam xmlns:t="${NS}"/>`,
    soap12: envelope(submit).replace('http://schemas.xmlsoap.org/soap/envelope/', 'http://www.w3.org/2003/05/soap-envelope'),
    twoBodies: envelope(`${submit}${submit}`),
    wrongNamespace: envelope(submit.replace(/t:/g, 'u:').replace('<u:submitJobParam>', '<u:submitJobParam xmlns:u="urn:other">')),
    utf16: Buffer.from(`\ufeff${envelope('<t:getActiveJobsParam/>')}`, 'utf16le'),
  };
  // A caller with credentials (the bearer header where the body has no
  // authHeader the server can find before parsing) gets INVALID_REQUEST_XML;
  // one without gets authenticationFault before any parse.
  for (const [name, body] of Object.entries(bodies)) {
    const r = await raw(body, { Authorization: `Bearer ${srv.token}` });
    assert.equal(r.status, 500, name);
    assert.match(r.type, /^text\/xml/, name);
    const f = rawFault(r.body);
    assert.equal(f.code, 30003, `${name}: ${r.body}`);
    if (name === 'laughs') record('fault: billion laughs', r.body);
  }
  for (const name of ['notXml', 'truncated', 'empty', 'wrongRoot', 'utf16']) {
    const r = await raw(bodies[name]);
    assert.equal(rawFault(r.body).element, 'authenticationFault', name);
  }
  assert.equal(await v1count(), before);
});

test('credentials before the parse; elements and attributes capped', async () => {
  const before = await v1count();
  const attrs = Array.from({ length: 20000 }, (_, i) => `a${i}="x"`).join(' ');
  const wide = (header) => envelope(`<t:getActiveJobsParam ${attrs}/>`, header);
  // No credentials, or wrong ones: refused before the body is parsed.
  let r = await raw(wide(''));
  assert.equal(rawFault(r.body).element, 'authenticationFault');
  r = await raw(wide(authXml(srv.tokenId, 'c'.repeat(64))));
  assert.equal(rawFault(r.body).element, 'authenticationFault');
  // With them: the caps, by a linear scan, before libxml2.
  r = await raw(wide(authXml()));
  let f = rawFault(r.body);
  assert.deepEqual([r.status, f.element, f.code], [500, 'ipsApiFault', 30003]);
  assert.match(f.reason, /more than 64 attributes/);
  const many = Array.from({ length: 170 }, () => `<x ${Array.from({ length: 60 }, (_, i) => `b${i}="y"`).join(' ')}/>`).join('');
  r = await raw(envelope(`<t:getActiveJobsParam>${many}</t:getActiveJobsParam>`));
  f = rawFault(r.body);
  assert.equal(f.code, 30003);
  assert.match(f.reason, /more than 10000 attributes/);
  r = await raw(envelope(`<t:getActiveJobsParam>${'<e/>'.repeat(10001)}</t:getActiveJobsParam>`));
  f = rawFault(r.body);
  assert.equal(f.code, 30003);
  assert.match(f.reason, /more than 10000 elements/);
  // Attribute-like text inside comments, CDATA and quoted values is not counted.
  const quiet = `<!-- ${'<z a="1" b="2">'.repeat(5000)} --><t:companyHandle>nobody</t:companyHandle>`;
  r = await raw(envelope(`<t:getActiveJobsParam>${quiet}</t:getActiveJobsParam>`));
  assert.equal(r.status, 200, r.body);
  assert.equal(await v1count(), before);
});

test('authentication: authHeader, HTTP Basic, bearer, roles and companies', async () => {
  // No credentials, a wrong secret, a malformed user.
  let f = await fault('getActiveJobs', {}, await makeClient());
  assert.deepEqual([f.element, f.status], ['authenticationFault', 500]);
  f = await fault('getActiveJobs', {}, await makeClient(srv.tokenId, 'a'.repeat(64)));
  assert.equal(f.element, 'authenticationFault');
  f = await fault('getActiveJobs', {}, await makeClient('someone', 'secret'));
  assert.equal(f.element, 'authenticationFault');
  record('fault: authentication', f.body);
  // The password may be the 64-hex secret alone.
  const secret = srv.token.slice(srv.token.lastIndexOf('_') + 1);
  await call('getActiveJobs', { companyHandle: 'nobody' }, await makeClient(srv.tokenId, secret));
  // HTTP Basic instead of the header.
  const basic = await makeClient();
  basic.setSecurity(new soap.BasicAuthSecurity(srv.tokenId, secret));
  await call('getActiveJobs', { companyHandle: 'nobody' }, basic);
  const badBasic = await makeClient();
  badBasic.setSecurity(new soap.BasicAuthSecurity(srv.tokenId, 'b'.repeat(64)));
  assert.equal((await fault('getActiveJobs', {}, badBasic)).element, 'authenticationFault');
  // A bearer header works too.
  const r = await raw(envelope('<t:getActiveJobsParam><t:companyHandle>nobody</t:companyHandle></t:getActiveJobsParam>', ''),
    { Authorization: `Bearer ${srv.token}` });
  assert.equal(r.status, 200, r.body);
  // faultHttpStatusCode changes the status of faults.
  const r2 = await raw(envelope('<t:stopJobParam/>', authXml(srv.tokenId, srv.token,
    '<t:faultHttpStatusCode>200</t:faultHttpStatusCode>')));
  assert.equal(r2.status, 200);
  assert.equal(rawFault(r2.body).code, 30002);
  // ... but only for a caller it could authenticate: a stranger gets the default 500.
  const r3 = await raw(envelope('<t:getActiveJobsParam/>', authXml(srv.tokenId, 'c'.repeat(64),
    '<t:faultHttpStatusCode>200</t:faultHttpStatusCode>')));
  assert.equal(r3.status, 500);
  assert.match(r3.body, /authenticationFault/);

  // A reader may read but not submit; a client of 'acme' sees only 'acme'.
  const reader = createToken(srv.db, 'reader', 'default', 'r');
  const rc = await makeClient(reader.id, reader.token);
  await call('getActiveJobs', {}, rc);
  f = await fault('submitJob', { companyHandle: 'default', jobName: 'x', uploadUrlsJob: {} }, rc);
  assert.equal(f.element, 'authorizationFault');
  const acme = createToken(srv.db, 'client', 'acme', 'a');
  const ac = await makeClient(acme.id, acme.token);
  const h = await submitJob();
  f = await fault('stopJob', { companyHandle: 'default', jobHandle: h }, ac);
  assert.equal(f.code, 30001);
  f = await fault('stopJob', { companyHandle: 'acme', jobHandle: h }, ac);
  assert.equal(f.code, 30001);
  assert.match(f.reason, /not found/);
  const [res] = await call('getActiveJobs', {}, ac);
  assert.ok((res.jobArray?.items || []).every((j) => j.companyHandle === 'acme'));
  assert.equal((await v1get(h)).phase, 'pending');
  // deleteJob needs an admin token, as v1's DELETE does.
  f = await fault('deleteJob', { companyHandle: 'acme', jobHandle: h }, ac);
  assert.equal(f.element, 'authorizationFault');
  await call('stopJob', { companyHandle: 'default', jobHandle: h });
});

// ---- Recurring jobs (execSchedule), getScheduledJobs, job logs ----

const SCHEDULED_JOB_ORDER = ['companyHandle', 'jobHandle', 'name', 'originalName', 'type', 'submitUserEmail',
  'locale', 'description', 'execSchedule', 'nextFireTime', 'timeZone', 'triggerState'];
const JOB_LOG_ORDER = ['companyHandle', 'jobHandle', 'jobName', 'originalJobName', 'submitUserEmail', 'logType',
  'startDate', 'endDate', 'description', 'fileSuccessCount', 'fileErrorCount', 'fileWarningCount',
  'fileDuplicateCount', 'fileUpdateCount', 'totalFileCount', 'fatalError', 'detailTotalRows', 'detailArray'];

const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

/** Polls fn until it returns something truthy. */
async function until(fn, what, ms = 8000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Checks that the elements of each <items> in xml come in `order` (absent ones skipped). */
function checkItemsOrder(xml, order, first) {
  const re = new RegExp(`<items><${first}>([\\s\\S]*?)</items>(?=<items><${first}>|</jobArray>|</jobLogArray>)`, 'g');
  let seen = 0;
  for (const m of xml.matchAll(re)) {
    const body = `<${first}>${m[1]}`.replace(/<detailArray>[\s\S]*<\/detailArray>/, '<detailArray/>');
    const names = [...body.matchAll(/<([A-Za-z]+)\/?>/g)].map((x) => x[1]);
    assert.deepEqual(names, order.filter((n) => names.includes(n)), xml);
    seen++;
  }
  assert.ok(seen > 0, xml);
}

async function scheduledJobs(args) {
  const [res, xml] = await call('getScheduledJobs', args);
  return [res?.jobArray?.items || [], xml];
}

async function v1schedule(id) {
  const r = await v1(srv, 'GET', `/v1/schedules/${id}`);
  assert.equal(r.status, 200, r.body);
  return r.json;
}

/** Claims the next task of `type` from the queue 'default'. */
async function claimType(type, worker) {
  const r = await v1(srv, 'POST', '/v1/queues/default/claim', { worker, lease_seconds: 60, types: [type],
    wait_seconds: 5 });
  assert.equal(r.status, 200, r.body);
  return r.json;
}

async function worker(path, body) {
  const r = await v1(srv, 'POST', path, body);
  assert.equal(r.status, 200, r.body);
  return r.json;
}

const rowsOf = (log) => (log.detailArray?.items || []).map((d) => [d.logType, d.logMessage]);

test('submitJob with execSchedule: a recurring job that fires; getScheduledJobs, job logs and control', async () => {
  const nsched = (await v1(srv, 'GET', '/v1/schedules')).json.schedules.length;
  const exec = '* * * * * ?';
  const h = await submitJob({ jobName: 'every second', userHandle: 'ann@example.com', description: 'sync the catalogue',
    locale: 'en-US', execSchedule: exec, videoPublishJob: { videoFolder: 'v/' } });
  // The jobHandle is a taskmill schedule's id; its inline task is the job an immediate submit makes.
  let sc = await v1schedule(h);
  assert.equal(sc.name, 'every second');
  assert.equal(sc.cron, '* * * * * ?');
  assert.equal(sc.timezone, 'UTC');
  assert.equal(sc.description, 'sync the catalogue');
  assert.deepEqual(sc.task, { type: 'VideoPublish', name: 'every second', description: 'sync the catalogue',
    queue: 'default', launcher: 'ann@example.com',
    params: { videoPublishJob: { videoFolder: 'v/' }, locale: 'en-US', execSchedule: exec } });
  assert.equal((await v1(srv, 'GET', '/v1/schedules')).json.schedules.length, nsched + 1);

  let [items, xml] = await scheduledJobs({ companyHandle: 'default', jobHandle: h });
  assert.equal(items.length, 1, xml);
  checkItemsOrder(xml, SCHEDULED_JOB_ORDER, 'companyHandle');
  const j = items[0];
  assert.deepEqual([j.companyHandle, j.jobHandle, j.name, j.originalName, j.type, j.submitUserEmail, j.locale,
    j.description, j.execSchedule, j.timeZone],
  ['default', h, 'every second', 'every second', 'VideoPublish', 'ann@example.com', 'en-US', 'sync the catalogue',
    exec, 'UTC']);
  assert.ok(j.nextFireTime instanceof Date);
  assert.ok(['Normal', 'Blocked'].includes(j.triggerState), j.triggerState);
  [items] = await scheduledJobs({ companyHandle: 'default', originalName: 'every second' });
  assert.deepEqual(items.map((x) => x.jobHandle), [h]);
  [items] = await scheduledJobs({ companyHandle: 'acme', jobHandle: h });
  assert.equal(items.length, 0);

  // It fires every second; with the default overlap (skip) one run at a time.
  const run1 = await until(async () => (await v1schedule(h)).last_task_id, 'the first run');
  const t1 = await v1get(run1);
  assert.equal(t1.launcher, 'schedule:every second');
  assert.equal(t1.name, 'every second');
  assert.deepEqual(t1.params, sc.task.params);
  [items] = await scheduledJobs({ companyHandle: 'default', jobHandle: h });
  assert.equal(items[0].triggerState, 'Blocked');
  // getActiveJobs shows a run by its own handle.
  const [aj] = await activeJob(run1);
  assert.equal(aj.submitUserEmail, 'schedule:every second');

  // Run 1 completes with messages, run 2 fails.
  let c = await claimType('VideoPublish', 'w7');
  assert.equal(c.task.id, run1);
  await worker(`/v1/tasks/${run1}/heartbeat`, { lease_token: c.lease_token, progress: { processed: 2, pending: 0 },
    messages: [{ level: 'INFO', text: 'a.mp4 published' }, { level: 'WARN', text: 'b.mp4 has no poster' }] });
  await worker(`/v1/tasks/${run1}/complete`, { lease_token: c.lease_token });
  const run2 = await until(async () => { const id = (await v1schedule(h)).last_task_id; return id !== run1 && id; },
    'the second run');
  c = await claimType('VideoPublish', 'w7');
  assert.equal(c.task.id, run2);
  await worker(`/v1/tasks/${run2}/fail`, { lease_token: c.lease_token, error: 'disk full', retryable: false });
  const run3 = await until(async () => { const id = (await v1schedule(h)).last_task_id; return id !== run2 && id; },
    'the third run');

  // getJobLogs: the runs that started, newest first; the pending third has no log yet.
  let [res] = await call('getJobLogs', { companyHandle: 'default', userHandle: 'schedule:every second' });
  const logs = res.jobLogArray.items;
  assert.deepEqual(logs.map((l) => l.jobHandle), [run2, run1]);
  assert.equal(logs[1].detailArray, undefined);
  assert.deepEqual([logs[1].jobName, logs[1].logType, logs[1].fileSuccessCount, logs[1].fileWarningCount,
    logs[1].fileErrorCount, logs[1].totalFileCount, logs[1].fatalError],
  ['every second', 'VideoPublishSuccess', 2, 1, 0, 2, false]);
  assert.equal(iso(logs[1].endDate), (await v1get(run1)).completed_at);
  assert.deepEqual([logs[0].logType, logs[0].fatalError], ['VideoPublishError', true]);

  // getJobLogDetails of the schedule's handle: each run's log with its rows.
  [res, xml] = await call('getJobLogDetails', { companyHandle: 'default', jobHandle: h });
  const det = res.jobLogArray.items;
  checkItemsOrder(xml, JOB_LOG_ORDER, 'companyHandle');
  assert.deepEqual(det.map((l) => l.jobHandle), [run2, run1]);
  assert.deepEqual(rowsOf(det[1]), [
    ['OriginalJobName', 'every second'], ['JobType', 'VideoPublish'], ['InitiatingJobName', 'every second'],
    ['BeginVideoPublish', "attempt 1 started on worker 'w7'"], ['FileProgress', 'a.mp4 published'],
    ['VideoPublishWarning', 'b.mp4 has no poster'], ['VideoPublishSuccess', 'job completed with warnings'],
    ['EndVideoPublish', 'job ended']]);
  assert.equal(det[1].detailTotalRows, 8);
  assert.deepEqual(rowsOf(det[0]).slice(3), [['BeginVideoPublish', "attempt 1 started on worker 'w7'"],
    ['FatalError', 'disk full'], ['EndVideoPublish', 'job ended']]);

  // pauseJob: Paused, the next slot still shown; stopJob stops its runs in progress.
  await call('pauseJob', { companyHandle: 'default', jobHandle: h });
  assert.equal((await v1schedule(h)).paused, true);
  [items] = await scheduledJobs({ companyHandle: 'default', jobHandle: h });
  assert.equal(items[0].triggerState, 'Paused');
  assert.ok(items[0].nextFireTime instanceof Date);
  const [, sxml] = await call('stopJob', { companyHandle: 'default', jobHandle: h });
  assert.match(sxml, /<stopJobReturn xmlns="[^"]+"\/>/);
  assert.equal((await v1get(run3)).phase, 'cancelled');
  assert.equal((await v1get(run1)).phase, 'completed');
  // resumeJob, executeJob (a run now, whatever the slots say), then delete.
  await call('resumeJob', { companyHandle: 'default', jobHandle: h });
  assert.equal((await v1schedule(h)).paused, false);
  await call('pauseJob', { companyHandle: 'default', jobHandle: h });
  await call('executeJob', { companyHandle: 'default', jobHandle: h });
  sc = await v1schedule(h);
  const fires = (await v1(srv, 'GET', `/v1/schedules/${h}/fires?limit=1`)).json.fires;
  assert.deepEqual([fires[0].kind, fires[0].task_id], ['trigger', sc.last_task_id]);
  assert.equal((await v1get(sc.last_task_id)).phase, 'pending');
  await call('stopJob', { companyHandle: 'default', jobHandle: h });
  assert.equal((await v1get(sc.last_task_id)).phase, 'cancelled');
  const [, dxml] = await call('deleteJob', { companyHandle: 'default', jobHandle: h });
  assert.match(dxml, /<deleteJobReturn xmlns="[^"]+"\/>/);
  assert.equal((await v1(srv, 'GET', `/v1/schedules/${h}`)).status, 404);
  [items] = await scheduledJobs({ companyHandle: 'default', jobHandle: h });
  assert.equal(items.length, 0);
  // Its runs stay, each a job of its own.
  assert.equal((await v1get(run1)).phase, 'completed');
  const f = await fault('pauseJob', { companyHandle: 'default', jobHandle: h });
  assert.match(f.reason, /not found/);
});

test('getScheduledJobs and stopJob see every unfinished run, not the last 8 the schedule remembers', async () => {
  // Ten runs by executeJob; the 8 newest cancelled through v1: the 2 left are older than
  // the 8 runs the schedule's state remembers. triggerState said Normal and stopJob
  // cancelled none of them.
  const h = await submitJob({ jobName: 'ten runs', execSchedule: '0 0 12 1 1 ?' });
  await call('pauseJob', { companyHandle: 'default', jobHandle: h });
  const runs = [];
  for (let i = 0; i < 10; i++) {
    await call('executeJob', { companyHandle: 'default', jobHandle: h });
    runs.push((await v1schedule(h)).last_task_id);
  }
  assert.equal(new Set(runs).size, 10);
  for (const id of runs.slice(2)) {
    const r = await v1(srv, 'POST', `/v1/tasks/${id}/cancel`, {});
    assert.equal(r.status, 200, r.body);
  }
  await call('resumeJob', { companyHandle: 'default', jobHandle: h });
  const [items] = await scheduledJobs({ companyHandle: 'default', jobHandle: h });
  assert.equal(items[0].triggerState, 'Blocked');
  await call('stopJob', { companyHandle: 'default', jobHandle: h });
  assert.deepEqual([(await v1get(runs[0])).phase, (await v1get(runs[1])).phase], ['cancelled', 'cancelled']);
  await call('deleteJob', { companyHandle: 'default', jobHandle: h });
});

test('execSchedule: Quartz fields mapped onto cron; what cannot be mapped is refused, nothing stored', async () => {
  const counts = async () => [(await v1(srv, 'GET', '/v1/schedules')).json.schedules.length, await v1count()];
  const before = await counts();
  const bad = [
    ['every day', /5 to 7 fields/],
    ['0 0 12 L * ?', /'L' and 'W'/],
    ['0 0 12 15W * ?', /'L' and 'W'/],
    ['0 0 12 ? * 6#3', /'L' and '#'/],
    ['0 0 12 ? * 6L', /'L' and '#'/],
    ['0 0 12 1 * 2', /day of the month and the day of the week/],
    ['0 61 * * * ?', /minute/],
    ['0 0 12 ? * 8', /day-of-week '8' is out of range 1-7/],
    ['0 0 12 ? * 0', /out of range 1-7/],
    ['0 0 12 * * ? 2030', /year/],
    ['0 0 0 30 2 ?', /./],
    ['0 0 12 ? JANUARY *', /month/],
  ];
  for (const [exec, why] of bad) {
    const f = await fault('submitJob', { companyHandle: 'default', jobName: 'bad', execSchedule: exec, uploadUrlsJob: {} });
    assert.equal(f.code, 30001, exec);
    assert.match(f.reason, /^'execSchedule' /, exec);
    assert.match(f.reason, why, `${exec}: ${f.reason}`);
  }
  let f = await fault('submitJob', { companyHandle: 'default', jobName: 'bad', execSchedule: '0 0 12 * * ?',
    execTime: new Date(Date.now() + 3600e3).toISOString(), uploadUrlsJob: {} });
  assert.match(f.reason, /exclude each other/);
  f = await fault('submitJob', { companyHandle: 'default', jobName: 'n'.repeat(129), execSchedule: '0 0 12 * * ?',
    uploadUrlsJob: {} });
  assert.match(f.reason, /at most 128 bytes/);
  assert.deepEqual(await counts(), before);

  const good = [
    // The IPS example (getScheduledJobs): five fields, no day-of-week.
    ['00 00 00 * * ', '00 00 00 * * ?', (d) => d.getUTCHours() === 0 && d.getUTCMinutes() === 0],
    ['0 0 12 ? * 2', '0 0 12 ? * 1', (d) => d.getUTCDay() === 1 && d.getUTCHours() === 12],
    ['0 30 9 ? * MON-FRI *', '0 30 9 ? * MON-FRI', (d) => d.getUTCDay() >= 1 && d.getUTCDay() <= 5],
    ['0 0 8 ? * 1,7', '0 0 8 ? * 0,6', (d) => d.getUTCDay() === 0 || d.getUTCDay() === 6],
    ['0 0 6 ? * 2-6/2', '0 0 6 ? * 1-5/2', (d) => [1, 3, 5].includes(d.getUTCDay())],
    ['0 0/15 * * * ?', '0 0/15 * * * ?', (d) => d.getUTCMinutes() % 15 === 0 && d.getUTCSeconds() === 0],
    ['30 0 0 1 JAN ?', '30 0 0 1 JAN ?', (d) => d.getUTCMonth() === 0 && d.getUTCDate() === 1],
  ];
  for (const [i, [exec, cron, ok]] of good.entries()) {
    const h = await submitJob({ jobName: `quartz ${i}`, execSchedule: exec });
    assert.equal((await v1schedule(h)).cron, cron, exec);
    const [items] = await scheduledJobs({ companyHandle: 'default', jobHandle: h });
    assert.equal(items[0].execSchedule, exec.trim());
    assert.ok(ok(items[0].nextFireTime), `${exec}: ${iso(items[0].nextFireTime)}`);
    if (i === 0) {
      const [, xml] = await call('getScheduledJobs', { companyHandle: 'default', jobHandle: h });
      record('getScheduledJobs (the IPS example schedule)', xml.replace(/quartz 0/g, 'quartz N'));
    }
    await call('deleteJob', { companyHandle: 'default', jobHandle: h });
  }
  // A jobName a scheduled job has already.
  const h = await submitJob({ jobName: 'twice', execSchedule: '0 0 12 * * ?' });
  f = await fault('submitJob', { companyHandle: 'default', jobName: 'twice', execSchedule: '0 0 13 * * ?',
    uploadUrlsJob: {} });
  assert.equal(f.code, 30001);
  assert.match(f.reason, /a scheduled job named 'twice' exists/);
  await call('deleteJob', { companyHandle: 'default', jobHandle: h });
  assert.deepEqual(await counts(), before);
});

test('execSchedule: a wrap-around range (FRI-MON, 6-2, NOV-FEB) fires on the days Quartz reads it as', async () => {
  const counts = async () => [(await v1(srv, 'GET', '/v1/schedules')).json.schedules.length, await v1count()];
  const before = await counts();
  const preview = async (h, n) => {
    const r = await v1(srv, 'GET', `/v1/schedules/${h}/preview?count=${n}&after=2026-12-07T00:00:00Z`);
    assert.equal(r.status, 200, r.body);
    return r.json.fires.map((x) => x.at);
  };
  // Monday 7 December 2026, then Friday to Monday each week.
  const friToMon = ['2026-12-07', '2026-12-11', '2026-12-12', '2026-12-13', '2026-12-14', '2026-12-18',
    '2026-12-19', '2026-12-20'].map((d) => `${d}T12:00:00.000Z`);
  for (const exec of ['0 0 12 ? * FRI-MON', '0 0 12 ? * 6-2', '0 0 12 ? * fri-mon *']) {
    const h = await submitJob({ jobName: `wrap ${exec}`, execSchedule: exec });
    assert.equal((await v1schedule(h)).cron, '0 0 12 ? * 5-6,0-1', exec);
    assert.deepEqual(await preview(h, 8), friToMon, exec);
    const [items] = await scheduledJobs({ companyHandle: 'default', jobHandle: h });
    assert.equal(items[0].execSchedule, exec);
    assert.ok([5, 6, 0, 1].includes(items[0].nextFireTime.getUTCDay()), iso(items[0].nextFireTime));
    await call('deleteJob', { companyHandle: 'default', jobHandle: h });
  }
  // With a step after numbers: Friday and Sunday.
  let h = await submitJob({ jobName: 'wrap step', execSchedule: '0 0 12 ? * 6-2/2' });
  assert.deepEqual(await preview(h, 4), ['2026-12-11', '2026-12-13', '2026-12-18', '2026-12-20']
    .map((d) => `${d}T12:00:00.000Z`));
  await call('deleteJob', { companyHandle: 'default', jobHandle: h });
  // After names Quartz drops the step: every day Friday to Monday.
  h = await submitJob({ jobName: 'wrap name step', execSchedule: '0 0 12 ? * FRI-MON/2' });
  assert.equal((await v1schedule(h)).cron, '0 0 12 ? * 5-6,0-1');
  assert.deepEqual(await preview(h, 8), friToMon);
  await call('deleteJob', { companyHandle: 'default', jobHandle: h });
  // Months: November to February.
  h = await submitJob({ jobName: 'wrap months', execSchedule: '0 0 0 1 NOV-FEB ?' });
  assert.equal((await v1schedule(h)).cron, '0 0 0 1 11-12,1-2 ?');
  assert.deepEqual(await preview(h, 5), ['2027-01-01', '2027-02-01', '2027-11-01', '2027-12-01', '2028-01-01']
    .map((d) => `${d}T00:00:00.000Z`));
  await call('deleteJob', { companyHandle: 'default', jobHandle: h });
  assert.deepEqual(await counts(), before);

  // What Quartz refuses stays refused, and nothing is stored.
  const bad = [
    ['0 0 12 ? * FRI-', /day-of-week field range 'FRI-' is missing a bound/],
    ['0 0 12 ? * FRI-XYZ', /day-of-week field 'XYZ' is not a number or a day name/],
    ['0 0 12 ? * 8-2', /day-of-week '8-2' is out of range 1-7/],
    ['0 0 12 ? 13-2 *', /month field '13' is out of range 1-12/],
    ['0 0 12 ? 11-2/0 *', /month step '0' is not a number in 1-12/],
    ['0 0 12 ? * FRI-2', /day-of-week range 'FRI-2' mixes a name and a number/],
  ];
  for (const [exec, why] of bad) {
    const f = await fault('submitJob', { companyHandle: 'default', jobName: 'bad wrap', execSchedule: exec,
      uploadUrlsJob: {} });
    assert.equal(f.code, 30001, exec);
    assert.equal(f.status, 500, exec);
    assert.match(f.reason, /^'execSchedule' /, exec);
    assert.match(f.reason, why, `${exec}: ${f.reason}`);
  }
  assert.deepEqual(await counts(), before);

  // v1's cron (Vixie cron's syntax) is unchanged: a reversed range is refused there.
  const r = await v1(srv, 'POST', '/v1/schedules', { name: 'v1 wrap', cron: '0 0 12 * * FRI-MON',
    task: { type: 'x' } });
  assert.equal(r.status, 400, r.body);
  assert.equal(r.json.error.field, 'cron');
  assert.match(r.json.error.message, /day-of-week field range 'FRI-MON' is reversed/);
  assert.deepEqual(await counts(), before);
});

test('getScheduledJobs lists jobs waiting for their execTime as one-off schedules', async () => {
  const at = new Date(Date.now() + 7200e3).toISOString();
  const w = await submitJob({ jobName: 'later', execTime: at, locale: 'fr-FR', description: 'once', userHandle: 'bo@example.com' });
  let [items, xml] = await scheduledJobs({ companyHandle: 'default', originalName: 'later' });
  assert.equal(items.length, 1, xml);
  checkItemsOrder(xml, SCHEDULED_JOB_ORDER, 'companyHandle');
  const j = items[0];
  assert.deepEqual([j.jobHandle, j.name, j.originalName, j.type, j.submitUserEmail, j.locale, j.description,
    j.execSchedule, iso(j.nextFireTime), j.timeZone, j.triggerState],
  [w, 'later', 'later', 'UrlUpload', 'bo@example.com', 'fr-FR', 'once', '', at, 'UTC', 'Normal']);
  await call('pauseJob', { companyHandle: 'default', jobHandle: w });
  [items] = await scheduledJobs({ companyHandle: 'default', jobHandle: w });
  assert.equal(items[0].triggerState, 'Paused');
  // Once due it is no longer scheduled.
  await call('executeJob', { companyHandle: 'default', jobHandle: w });
  [items] = await scheduledJobs({ companyHandle: 'default', jobHandle: w });
  assert.equal(items.length, 0);
  // A job that has not started has no log yet.
  const [res] = await call('getJobLogDetails', { companyHandle: 'default', jobHandle: w });
  assert.equal(res.jobLogArray, null);
  await call('deleteJob', { companyHandle: 'default', jobHandle: w });
});

test('getJobLogDetails: the owner\'s pause, resume and stop, from the event log, with the token that asked', async () => {
  const h = await submitJob({ jobName: 'controlled job' });
  await call('pauseJob', { companyHandle: 'default', jobHandle: h });
  await call('resumeJob', { companyHandle: 'default', jobHandle: h });
  const c = await claimType('UrlUpload', 'w9');
  assert.equal(c.task.id, h);
  await call('stopJob', { companyHandle: 'default', jobHandle: h });
  await worker(`/v1/tasks/${h}/release`, { lease_token: c.lease_token });
  const [res] = await call('getJobLogDetails', { companyHandle: 'default', jobHandle: h });
  const rows = rowsOf(res.jobLogArray.items[0]);
  for (const [type, text] of [['PauseJob', `job paused by '${srv.tokenId}'`],
    ['ResumeJob', `job resumed by '${srv.tokenId}'`], ['StopJob', `job stop requested by '${srv.tokenId}'`]])
    assert.ok(rows.some(([k, m]) => k === type && m === text), `${type} in ${JSON.stringify(rows)}`);
  // The rows keep the order in which things happened.
  const order = rows.map(([k]) => k).filter((k) => ['PauseJob', 'ResumeJob', 'BeginUpload', 'StopJob'].includes(k));
  assert.deepEqual(order, ['PauseJob', 'ResumeJob', 'BeginUpload', 'StopJob']);
});

test('getJobLogDetails of a finished job: its attempts and messages, filtered, sorted and paged', async () => {
  const h = await submitJob({ jobName: 'logged job', userHandle: 'cy@example.com', description: 'three files',
    serverDirectoryPublishJob: { publishType: 'Full' } });
  // Attempt 1 logs an error and fails for now; attempt 2 does the work.
  let c = await claimType('ServerDirectoryPublish', 'w8');
  assert.equal(c.task.id, h);
  await worker(`/v1/tasks/${h}/heartbeat`, { lease_token: c.lease_token,
    messages: [{ level: 'ERROR', text: 'c.tif is corrupt' }] });
  await worker(`/v1/tasks/${h}/fail`, { lease_token: c.lease_token, error: 'network down', retryable: true });
  c = await claimType('ServerDirectoryPublish', 'w8');
  assert.equal(c.task.id, h);
  await worker(`/v1/tasks/${h}/heartbeat`, { lease_token: c.lease_token, progress: { processed: 3, pending: 0 },
    messages: [{ level: 'INFO', text: 'a.tif' }, { level: 'INFO', text: 'b.tif' }] });
  await worker(`/v1/tasks/${h}/complete`, { lease_token: c.lease_token });
  const t = await v1get(h);

  let [res, xml] = await call('getJobLogDetails', { companyHandle: 'default', jobHandle: h });
  checkItemsOrder(xml, JOB_LOG_ORDER, 'companyHandle');
  record('getJobLogDetails of a job retried once, then completed', xml);
  assert.equal(res.jobLogArray.items.length, 1);
  const log = res.jobLogArray.items[0];
  assert.deepEqual([log.companyHandle, log.jobHandle, log.jobName, log.originalJobName, log.submitUserEmail,
    log.logType, iso(log.startDate), iso(log.endDate), log.description, log.fileSuccessCount, log.fileErrorCount,
    log.fileWarningCount, log.fileDuplicateCount, log.fileUpdateCount, log.totalFileCount, log.fatalError],
  ['default', h, 'logged job', 'logged job', 'cy@example.com', 'ServerDirectoryPublishSuccess', t.started_at,
    t.completed_at, 'three files', 3, 1, 0, 0, 0, 3, false]);
  const all = [
    ['OriginalJobName', 'logged job'], ['JobType', 'ServerDirectoryPublish'],
    ['BeginServerDirectoryPublish', "attempt 1 started on worker 'w8'"],
    ['ServerDirectoryPublishError', 'c.tif is corrupt'],
    ['ServerDirectoryPublishError', 'attempt 1 failed: network down'],
    ['BeginServerDirectoryPublish', "attempt 2 started on worker 'w8'"],
    ['FileProgress', 'a.tif'], ['FileProgress', 'b.tif'],
    ['ServerDirectoryPublishSuccess', 'job completed'], ['EndServerDirectoryPublish', 'job ended']];
  assert.deepEqual(rowsOf(log), all);
  assert.equal(log.detailTotalRows, all.length);

  const details = async (args) => {
    const [r] = await call('getJobLogDetails', { companyHandle: 'default', jobHandle: h, ...args });
    return r.jobLogArray.items[0];
  };
  let l = await details({ logTypeArray: { items: ['FileProgress', 'serverdirectorypublisherror'] } });
  assert.deepEqual(rowsOf(l), all.filter(([k]) => k === 'FileProgress' || k === 'ServerDirectoryPublishError'));
  assert.equal(l.detailTotalRows, 4);
  l = await details({ recordsPerPage: 3, resultsPage: 2 });
  assert.deepEqual(rowsOf(l), all.slice(3, 6));
  assert.equal(l.detailTotalRows, all.length);
  l = await details({ resultsPage: 99 });
  assert.deepEqual(rowsOf(l), []);
  l = await details({ recordsPerPage: 5000 }); // past the maximum: the maximum
  assert.equal(rowsOf(l).length, all.length);
  l = await details({ sortDirection: 'Descending' });
  assert.deepEqual(rowsOf(l), [...all].reverse());
  l = await details({ sortBy: 'LogType' });
  assert.deepEqual(rowsOf(l).map(([k]) => k), all.map(([k]) => k).sort());
  // By originalName instead of jobHandle; unknown handles are empty, as getActiveJobs.
  [res] = await call('getJobLogDetails', { companyHandle: 'default', originalName: 'logged job' });
  assert.deepEqual(res.jobLogArray.items.map((x) => x.jobHandle), [h]);
  for (const jobHandle of ['0'.repeat(32), 'nope']) {
    [res] = await call('getJobLogDetails', { companyHandle: 'default', jobHandle });
    assert.equal(res.jobLogArray, null);
  }
  [res] = await call('getJobLogDetails', { companyHandle: 'acme', jobHandle: h });
  assert.equal(res.jobLogArray, null);

  // getJobLogs: no details; filters, sort, numRows.
  [res, xml] = await call('getJobLogs', { companyHandle: 'default', userHandle: 'cy@example.com' });
  assert.deepEqual(res.jobLogArray.items.map((x) => x.jobHandle), [h]);
  assert.doesNotMatch(xml, /detailArray|detailTotalRows/);
  [res] = await call('getJobLogs', { companyHandle: 'default', sortBy: 'FileErrorCount', sortDirection: 'Descending',
    numRows: 1 });
  assert.deepEqual(res.jobLogArray.items.map((x) => x.jobHandle), [h]);
  [res] = await call('getJobLogs', { companyHandle: 'default', sortBy: 'JobName' });
  const names = res.jobLogArray.items.map((x) => x.jobName);
  assert.deepEqual(names, [...names].sort());
  assert.ok(res.jobLogArray.items.length > 3);
  [res] = await call('getJobLogs', { companyHandle: 'default', startDate: t.started_at, endDate: t.started_at });
  assert.deepEqual(res.jobLogArray.items.map((x) => x.jobHandle), [h]);
  [res] = await call('getJobLogs', { startDate: new Date(Date.now() + 60e3).toISOString() });
  assert.equal(res.jobLogArray, null);
  // A reader may read logs and schedules.
  const reader = createToken(srv.db, 'reader', 'default', 'r2');
  const rc = await makeClient(reader.id, reader.token);
  [res] = await call('getJobLogs', { userHandle: 'cy@example.com' }, rc);
  assert.equal(res.jobLogArray.items.length, 1);
  await call('getScheduledJobs', { companyHandle: 'default' }, rc);
});

test('golden XML', () => {
  const text = `${goldenOut.join('\n')}\n`;
  if (process.env.UPDATE_GOLDEN) {
    mkdirSync(new URL('golden/scene7/', import.meta.url), { recursive: true });
    writeFileSync(new URL('golden/scene7/responses.txt', import.meta.url), text);
  }
  assert.equal(text, golden('scene7/responses.txt'));
});
