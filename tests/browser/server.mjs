// Helpers for the dashboard's browser tests: a real taskmill server on a
// free port with a fresh SQLite database in a temporary directory (open, or
// with an admin token made by `taskmill token create` before it starts),
// which can be stopped and started again on the same port and database;
// Debian's chromium driven by playwright-core; and a worker made of plain
// HTTP calls.
//
//   const srv = await startServer({ tokens: true });  // { url, port, db, token, tokenId }
//   await srv.stop(); await srv.start();             // the same port and database
//   await srv.close();                               // stop, check the log, remove the directory
//
// TASKMILL_BIN names the binary (tests/run.sh sets it to the sanitizer
// build); CHROMIUM names the browser (default /usr/bin/chromium).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

export const BIN = process.env.TASKMILL_BIN || new URL('../../build/taskmill', import.meta.url).pathname;
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** Creates a token in the database; returns {id, token} (token: the bearer string). */
export function createToken(db, role = 'admin', namespace = 'default', name = 'browser') {
  const out = execFileSync(BIN, ['token', 'create', '--store', `sqlite:${db}`, '--role', role,
    '--namespace', namespace, '--name', name, '--json'], { encoding: 'utf8' });
  const t = JSON.parse(out);
  return { id: t.id, token: t.token || t.secret };
}

export async function startServer({ tokens = false, args = [] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'taskmill-browser-'));
  const db = join(dir, 't.db');
  const admin = tokens ? createToken(db, 'admin', 'default', 'admin') : null;
  const srv = {
    dir, db, url: null, port: 0, child: null, log: '',
    token: admin ? admin.token : null, tokenId: admin ? admin.id : null,
    async start() {
      const child = spawn(BIN, ['serve', '--listen', `127.0.0.1:${srv.port}`, '--store', `sqlite:${db}`, ...args],
        { stdio: ['ignore', 'pipe', 'pipe'] });
      srv.child = child;
      child.stderr.on('data', (d) => { srv.log += d; });
      const line = await new Promise((resolve, reject) => {
        const rl = createInterface({ input: child.stdout });
        rl.once('line', resolve);
        child.once('exit', (code) => reject(new Error(`taskmill exited ${code}: ${srv.log}`)));
      });
      const m = /^taskmill listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
      if (!m) throw new Error(`unexpected first line: ${line}`);
      srv.url = m[1];
      srv.port = Number(m[2]);
      return srv;
    },
    async stop() {
      const child = srv.child;
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      srv.child = null;
    },
    async close() {
      await srv.stop();
      if (/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(srv.log)) {
        throw new Error(`sanitizer report in the server log:\n${srv.log}`);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return srv.start();
}

/** A v1 call; returns {status, json}. token: the server's admin token by default (none in open mode). */
export async function v1(srv, method, path, body, token = srv.token) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(srv.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: r.status, json, headers: r.headers, text };
}

/** v1 that must answer 2xx; returns the JSON. */
export async function ok(srv, method, path, body, token) {
  const r = await v1(srv, method, path, body, token);
  if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
  return r.json;
}

export async function submit(srv, task, token) {
  return ok(srv, 'POST', '/v1/tasks', { type: 'job', ...task }, token);
}

/** Claims the next task of a queue as a worker; returns {task, lease_token} or null. */
export async function claim(srv, queue = 'default', worker = 'w1', token) {
  const r = await v1(srv, 'POST', `/v1/queues/${queue}/claim`, { worker, lease_seconds: 300 }, token);
  if (r.status === 204) return null;
  if (r.status !== 200) throw new Error(`claim: ${r.status} ${r.text}`);
  return r.json;
}

export async function heartbeat(srv, c, body = {}, token) {
  return ok(srv, 'POST', `/v1/tasks/${c.task.id}/heartbeat`, { lease_token: c.lease_token, ...body }, token);
}

export async function finish(srv, c, verb, body = {}, token) {
  return ok(srv, 'POST', `/v1/tasks/${c.task.id}/${verb}`, { lease_token: c.lease_token, ...body }, token);
}

/** Waits until fn() returns something truthy (polls every 50 ms); returns it. */
export async function until(fn, what = 'condition', ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function launch(args = []) {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', ...args] });
}

/**
 * A fresh browser context and page on the dashboard. With `token`, the
 * page starts signed in (the token in sessionStorage, as the login form
 * leaves it). page.errors collects uncaught errors and console errors;
 * page.apiCalls every /v1/ request it sent ('GET /v1/whoami'). setup(page)
 * runs before the page is loaded.
 */
export async function openPage(browser, srv, { token = null, hash = '#/queues', width = 1280, height = 800, setup = null } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  if (token) await context.addInitScript((t) => sessionStorage.setItem('taskmill.token', t), token);
  const page = await context.newPage();
  page.errors = [];
  // Every API call the page makes, from its first: 'GET /v1/whoami'.
  page.apiCalls = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/v1/')) page.apiCalls.push(`${r.method()} ${u.pathname}`);
  });
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => {
    // A stopped server makes the browser log failed fetches; those are expected.
    if (m.type() === 'error' && !/Failed to load resource|ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|net::/.test(m.text())) page.errors.push(m.text());
  });
  page.closeAll = () => context.close();
  if (setup) await setup(page); // before the page loads: page.route(), say
  await page.goto(`${srv.url}/${hash}`);
  return page;
}

/** Waits for the page's live stream (the app's /v1/events) to be subscribed. */
export async function live(page) {
  await page.locator('[data-testid="live-state"][data-state="live"]').waitFor({ timeout: 10000 });
}
