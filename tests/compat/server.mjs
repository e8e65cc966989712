// Starts a real taskmill server for the compatibility tests: port 0, a
// fresh SQLite database in a temporary directory, and an admin token made
// with `taskmill token create` before the server starts (so the server runs
// with authentication on, as it would in production).
//
//   const srv = await startServer();   // { url, token, tokenId, secret, bin, dir, db }
//   ...                                 // talk to srv.url with srv.token
//   await srv.stop();                   // SIGTERM, wait, remove the directory
//
// TASKMILL_BIN names the binary (tests/run.sh sets it to the sanitizer build).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const BIN = process.env.TASKMILL_BIN || new URL('../../build/taskmill', import.meta.url).pathname;

/** Creates a token; returns {id, secret, token} where token is the bearer string. */
export function createToken(db, role = 'admin', namespace = 'default', name = 'compat') {
  const out = execFileSync(BIN, ['token', 'create', '--store', `sqlite:${db}`, '--role', role,
    '--namespace', namespace, '--name', name, '--json'], { encoding: 'utf8' });
  const t = JSON.parse(out);
  return { id: t.id, secret: t.secret, token: t.token || t.secret };
}

export async function startServer({ role = 'admin', namespace = 'default', args = [] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'taskmill-compat-'));
  const db = join(dir, 't.db');
  const tok = createToken(db, role, namespace);
  const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--store', `sqlite:${db}`, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const line = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`taskmill exited ${code}: ${log}`)));
  });
  const m = /^taskmill listening on (http\S+)$/.exec(line);
  if (!m) throw new Error(`unexpected first line: ${line}`);
  return {
    url: m[1], dir, db, bin: BIN, token: tok.token, tokenId: tok.id, secret: tok.secret,
    log: () => log,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      if (/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(log)) {
        throw new Error(`sanitizer report in the server log:\n${log}`);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A v1 call with the server's token; returns {status, headers, body, json}. */
export async function v1(srv, method, path, body, token = srv.token) {
  const r = await fetch(srv.url + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, body: text, json };
}

/** Reads a golden file next to the tests. */
export function golden(name) {
  return readFileSync(new URL(`golden/${name}`, import.meta.url), 'utf8');
}
