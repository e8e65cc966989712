// The web dashboard (issue 10) in Debian's headless chromium, against a real
// server: live progress, a cancel that reaches the worker, filters and a
// bulk retry, the disconnected banner and the recovery, what a reader token
// sees, sign-in, the keyboard, and a phone-width page.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import {
  startServer, v1, ok, submit, claim, heartbeat, finish, until, launch, openPage, live,
} from './server.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser.close(); });

const tid = (id) => `[data-testid="${id}"]`;

/** Waits until the element's attribute has the value. */
async function attrIs(page, sel, attr, value, timeout = 10000) {
  await page.waitForFunction(([s, a, v]) => {
    const el = document.querySelector(s);
    return el && el.getAttribute(a) === v;
  }, [sel, attr, value], { timeout });
}

async function textIs(page, sel, re, timeout = 10000) {
  await page.waitForFunction(([s, src]) => {
    const el = document.querySelector(s);
    return el && new RegExp(src).test(el.textContent);
  }, [sel, re.source], { timeout });
}

describe('served by the binary', () => {
  test('/ and /ui/ files, with types, ETag and 304; an unknown file is a JSON 404', async () => {
    const srv = await startServer();
    try {
      const index = await fetch(`${srv.url}/`);
      assert.equal(index.status, 200);
      assert.match(index.headers.get('content-type'), /^text\/html/);
      assert.match(index.headers.get('content-security-policy'), /default-src 'none'/);
      const html = await index.text();
      assert.match(html, /<script type="module" src="\/ui\/app.js">/);
      assert.doesNotMatch(html, /https?:\/\//, 'no external resource');
      for (const [f, type] of [['app.js', /^text\/javascript/], ['app.css', /^text\/css/], ['live.js', /^text\/javascript/]]) {
        const r = await fetch(`${srv.url}/ui/${f}`);
        assert.equal(r.status, 200, f);
        assert.match(r.headers.get('content-type'), type, f);
        assert.equal(r.headers.get('cache-control'), 'no-cache');
        const etag = r.headers.get('etag');
        assert.match(etag, /^"[0-9a-f]{16}"$/);
        const again = await fetch(`${srv.url}/ui/${f}`, { headers: { 'If-None-Match': etag } });
        assert.equal(again.status, 304, `${f} revalidated`);
        const other = await fetch(`${srv.url}/ui/${f}`, { headers: { 'If-None-Match': '"0000000000000000"' } });
        assert.equal(other.status, 200);
      }
      const missing = await v1(srv, 'GET', '/ui/nothing.js');
      assert.equal(missing.status, 404);
      assert.equal(missing.json.error.code, 'not_found');
      // The page is public even with tokens; its API calls are not.
      const s2 = await startServer({ tokens: true });
      try {
        assert.equal((await fetch(`${s2.url}/`)).status, 200);
        assert.equal((await fetch(`${s2.url}/v1/tasks`)).status, 401);
      } finally {
        await s2.close();
      }
    } finally {
      await srv.close();
    }
  });
});

describe('live', () => {
  test('a worker heartbeats and the progress bar moves without a reload', async () => {
    const srv = await startServer();
    try {
      const t = await submit(srv, { name: 'encode-1', queue: 'media' });
      const c = await claim(srv, 'media');
      const page = await openPage(browser, srv, { hash: `#/tasks/${t.id}` });
      await live(page);
      await attrIs(page, tid('progress-bar'), 'aria-valuenow', '0');
      await page.evaluate(() => { window.__noReload = true; });
      await heartbeat(srv, c, { progress: { ratio: 0.25, message: 'pass 1' } });
      await attrIs(page, tid('progress-bar'), 'aria-valuenow', '25');
      await textIs(page, tid('progress-message'), /pass 1/);
      await heartbeat(srv, c, {
        progress: { processed: 3, processing: 1, pending: 1, message: 'pass 2' },
        items: [{ name: 'a.mp4', progress: 0.5 }],
        messages: [{ level: 'WARN', text: 'slow disk' }],
      });
      await attrIs(page, tid('progress-bar'), 'aria-valuenow', '60');
      await textIs(page, tid('progress-counts'), /processed 3 · processing 1 · pending 1/);
      await page.locator(tid('items-table')).getByText('a.mp4').waitFor();
      await page.locator(`${tid('message')}[data-level="WARN"]`).getByText('slow disk').waitFor();
      assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was not reloaded');

      // The list moves too.
      await page.click(tid('nav-tasks'));
      const row = `${tid(`task-row-${t.id}`)} ${tid('row-progress')}`;
      await attrIs(page, row, 'aria-valuenow', '60');
      await heartbeat(srv, c, { progress: { ratio: 0.9 } });
      await attrIs(page, row, 'aria-valuenow', '90');
      await finish(srv, c, 'complete');
      await attrIs(page, `${tid(`task-row-${t.id}`)} .badge`, 'data-phase', 'completed');
      assert.equal(await page.evaluate(() => window.__noReload), true);
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('a cancel clicked in the page reaches the worker in its next heartbeat reply', async () => {
    const srv = await startServer();
    try {
      const t = await submit(srv, { name: 'long-1' });
      const c = await claim(srv);
      assert.equal((await heartbeat(srv, c)).cancel_requested, false);
      const page = await openPage(browser, srv, { hash: `#/tasks/${t.id}` });
      await live(page);
      await attrIs(page, tid('task-phase'), 'data-phase', 'running');
      await page.click(tid('action-cancel'));
      await attrIs(page, tid('task-phase'), 'data-phase', 'stopping');
      const hb = await heartbeat(srv, c);
      assert.equal(hb.cancel_requested, true, 'the worker learns of the cancel');
      await finish(srv, c, 'fail', { error: 'stopped on request' });
      await attrIs(page, tid('task-phase'), 'data-phase', 'cancelled');
      // The timeline says who asked: open mode, here.
      const stopping = page.locator(`${tid('timeline-entry')}[data-kind="task.stopping"] ${tid('timeline-actor')}`);
      await stopping.waitFor();
      assert.equal(await stopping.getAttribute('data-actor'), 'open');
      // Retry is possible now, cancel is not.
      assert.equal(await page.locator(tid('action-cancel')).isDisabled(), true);
      assert.equal(await page.locator(tid('action-retry')).isEnabled(), true);
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('the disconnected banner shows while the server is down, and goes when it is back', async () => {
    const srv = await startServer();
    try {
      const t = await submit(srv, { name: 'survivor', queue: 'q1' });
      const c = await claim(srv, 'q1');
      const page = await openPage(browser, srv, { hash: `#/tasks/${t.id}` });
      await live(page);
      assert.equal(await page.locator(tid('banner-disconnected')).isVisible(), false);
      await srv.stop();
      await page.locator(tid('banner-disconnected')).waitFor({ state: 'visible', timeout: 10000 });
      assert.equal(await page.locator(tid('live-state')).getAttribute('data-state'), 'down');
      await srv.start(); // the same port and database
      // A change made before the page is back still reaches it.
      await heartbeat(srv, c, { progress: { ratio: 0.5, message: 'after the restart' } });
      await page.locator(tid('banner-disconnected')).waitFor({ state: 'hidden', timeout: 20000 });
      await attrIs(page, tid('progress-bar'), 'aria-valuenow', '50');
      await textIs(page, tid('progress-message'), /after the restart/);
      // And it is live again.
      await heartbeat(srv, c, { progress: { ratio: 0.7 } });
      await attrIs(page, tid('progress-bar'), 'aria-valuenow', '70');
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });
  test('a restored store: a page whose resume point is past its log starts again from now', async () => {
    const srv = await startServer();
    try {
      await submit(srv, { name: 'before', queue: 'qbefore' });
      const page = await openPage(browser, srv, { hash: '#/queues' });
      await live(page);
      await submit(srv, { name: 'seen', queue: 'qseen' }); // an event with an id
      await attrIs(page, tid('queue-state-qseen'), 'data-state', 'active');
      await srv.stop();
      // The store put back as it was before any event: the page's Last-Event-ID
      // is past its log. The server refuses it (400 naming Last-Event-ID); the
      // page retried the same point and stayed down.
      for (const f of ['', '-wal', '-shm']) rmSync(srv.db + f, { force: true });
      await srv.start();
      await until(async () => (await page.getAttribute(tid('live-state'), 'data-state')) === 'live',
        'the page live again', 20000);
      await submit(srv, { name: 'after', queue: 'qafter' });
      await attrIs(page, tid('queue-state-qafter'), 'data-state', 'active');
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });
  test('a task deleted elsewhere while its page is open: the page says so and offers no action', async () => {
    const srv = await startServer();
    try {
      const t = await submit(srv, { name: 'deleted-elsewhere' });
      await ok(srv, 'POST', `/v1/tasks/${t.id}/cancel`);
      const page = await openPage(browser, srv, { hash: `#/tasks/${t.id}` });
      await live(page);
      await page.locator(`${tid('action-delete')}:not([disabled])`).waitFor();
      assert.equal(await page.locator(tid('action-retry')).isEnabled(), true);
      assert.equal((await v1(srv, 'DELETE', `/v1/tasks/${t.id}`)).status, 204);
      await textIs(page, tid('task-note'), /deleted/);
      for (const a of ['cancel', 'retry', 'pause', 'resume', 'delete']) {
        await page.locator(`${tid(`action-${a}`)}[disabled]`).waitFor({ timeout: 5000 });
      }
      // A read again (the stream back after a drop) keeps the page as it is.
      await srv.stop();
      await page.locator(tid('banner-disconnected')).waitFor({ state: 'visible' });
      await srv.start();
      await page.locator(tid('banner-disconnected')).waitFor({ state: 'hidden', timeout: 20000 });
      await page.waitForTimeout(500);
      assert.match(await page.textContent(tid('task-note')), /deleted/);
      assert.equal(await page.locator(tid('task-missing')).count(), 0);
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });
  test('a read of the task that failed once stops being reported once the task is shown', async () => {
    const srv = await startServer();
    try {
      const t = await submit(srv, { name: 'flaky-read' });
      const c = await claim(srv);
      const context = await browser.newContext();
      let failed = 0;
      // The first read of the task fails as a storage hiccup would.
      await context.route(`**/v1/tasks/${t.id}`, (route) => {
        if (failed++) return route.continue();
        return route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unavailable', message: 'storage unavailable; try again' } }) });
      });
      const page = await context.newPage();
      await page.goto(`${srv.url}/#/tasks/${t.id}`);
      await textIs(page, tid('task-note'), /storage unavailable; try again/);
      // The task's stream still brings it: the page shows it, and the error goes.
      await heartbeat(srv, c, { progress: { ratio: 0.4 } });
      await attrIs(page, tid('progress-bar'), 'aria-valuenow', '40');
      await page.locator(tid('task-note')).waitFor({ state: 'hidden', timeout: 5000 });
      await context.close();
    } finally {
      await srv.close();
    }
  });
});

describe('retention', () => {
  test('a timeline whose oldest events were pruned says so and still shows the task', async () => {
    const srv = await startServer({ args: ['--events-max-count', '3'] });
    try {
      const t = await submit(srv, { name: 'pruned' });
      const c = await claim(srv);
      for (let i = 1; i <= 8; i++) await heartbeat(srv, c, { progress: { ratio: i / 10 } });
      await until(async () => {
        const m = await (await fetch(`${srv.url}/metrics`)).text();
        return Number((/^taskmill_events_pruned_through (\d+)$/m.exec(m) || [])[1]) > 0;
      }, 'the retention pass');
      // The server's memory still holds them until a restart; then only the log counts.
      await srv.stop();
      await srv.start();
      const page = await openPage(browser, srv, { hash: `#/tasks/${t.id}` });
      await live(page);
      await textIs(page, tid('timeline-note'), /retention/);
      await attrIs(page, tid('progress-bar'), 'aria-valuenow', '80');
      await heartbeat(srv, c, { progress: { ratio: 0.9 } });
      await attrIs(page, tid('progress-bar'), 'aria-valuenow', '90');
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });
});

describe('tasks', () => {
  test('a filter, search, paging and a bulk retry with its count confirmed', async () => {
    const srv = await startServer();
    try {
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push((await submit(srv, { name: `bq-${i}`, queue: 'bq', params: { album: i === 1 ? 'holiday' : 'work' } })).id);
      const other = (await submit(srv, { name: 'other-0', queue: 'oq' })).id;
      await submit(srv, { name: 'bq-pending', queue: 'bq' });
      for (let i = 0; i < 3; i++) await finish(srv, await claim(srv, 'bq'), 'fail', { error: 'disk full', retryable: false });
      await finish(srv, await claim(srv, 'oq'), 'fail', { error: 'disk full', retryable: false });

      const page = await openPage(browser, srv, { hash: '#/tasks' });
      await live(page);
      await page.locator(tid('tasks-table')).waitFor();
      await page.check(tid('filter-phase-failed'));
      await page.fill(tid('filter-queue'), 'bq');
      await page.click(tid('filter-apply'));
      await until(async () => page.url().includes('phase=failed') && page.url().includes('queue=bq'), 'the filter in the hash');
      await until(async () => (await page.locator('tbody tr[data-task-id]').count()) === 3, 'three failed tasks of bq');
      for (const id of ids) await page.locator(tid(`task-row-${id}`)).waitFor();
      assert.equal(await page.locator(tid(`task-row-${other}`)).count(), 0);

      // Server-side search over params.
      await page.fill(tid('filter-q'), 'holiday');
      await page.click(tid('filter-apply'));
      await until(async () => (await page.locator('tbody tr[data-task-id]').count()) === 1, 'one task matching the search');
      await page.locator(tid(`task-row-${ids[1]}`)).waitFor();
      await page.fill(tid('filter-q'), '');
      await page.click(tid('filter-apply'));
      await until(async () => (await page.locator('tbody tr[data-task-id]').count()) === 3, 'the search cleared');

      // Bulk retry: counted, confirmed, applied.
      await page.selectOption(tid('bulk-action'), 'retry');
      await page.click(tid('bulk-apply'));
      await page.locator(tid('confirm-dialog')).waitFor({ state: 'visible' });
      assert.match(await page.textContent(tid('confirm-message')), /That is 3 tasks/);
      await page.click(tid('confirm-ok'));
      await textIs(page, tid('bulk-result'), /retried 3 of 3/);
      for (const id of ids) assert.equal((await ok(srv, 'GET', `/v1/tasks/${id}`)).phase, 'pending');
      assert.equal((await ok(srv, 'GET', `/v1/tasks/${other}`)).phase, 'failed', 'outside the filter: untouched');
      // The list re-read: none of them is failed now.
      await until(async () => (await page.locator('tbody tr[data-task-id]').count()) === 0, 'the retried tasks leave the failed filter');

      // A bulk action cancelled in the dialog does nothing.
      await page.click(tid('filter-clear'));
      await page.locator(tid('tasks-table')).waitFor();
      await page.selectOption(tid('bulk-action'), 'cancel');
      await page.click(tid('bulk-apply'));
      await page.locator(tid('confirm-dialog')).waitFor({ state: 'visible' });
      await page.click(tid('confirm-cancel'));
      assert.equal((await ok(srv, 'GET', `/v1/tasks/${ids[0]}`)).phase, 'pending');

      // Paging: 50 a page.
      await ok(srv, 'POST', '/v1/tasks/batch', { tasks: Array.from({ length: 55 }, (_, i) => ({ type: 'page', name: `p-${i}`, queue: 'pq' })) });
      await page.goto(`${srv.url}/#/tasks?queue=pq`);
      await until(async () => (await page.locator('tbody tr[data-task-id]').count()) === 50, 'a first page of 50');
      await page.click(tid('next-page'));
      await until(async () => (await page.locator('tbody tr[data-task-id]').count()) === 5, 'a second page of 5');
      assert.equal(await page.locator(tid('next-page')).count(), 0);
      await page.click(tid('first-page'));
      await until(async () => (await page.locator('tbody tr[data-task-id]').count()) === 50, 'back to the first page');
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('a paused task is marked paused, and the children are a tree with their progress', async () => {
    const srv = await startServer();
    try {
      const parent = await submit(srv, { name: 'album' });
      const kids = [];
      for (let i = 0; i < 3; i++) kids.push(await submit(srv, { name: `photo-${i}`, parent_id: parent.id, queue: 'photos' }));
      await ok(srv, 'POST', `/v1/tasks/${kids[2].id}/pause`);
      const page = await openPage(browser, srv, { hash: `#/tasks/${parent.id}` });
      await live(page);
      for (const k of kids) await page.locator(tid(`child-${k.id}`)).waitFor();
      assert.equal(await page.locator(`${tid(`child-${kids[2].id}`)} .badge.paused`).count(), 1);
      await textIs(page, tid('children-summary'), /0 processed, 0 processing, 3 pending/);
      const c = await claim(srv, 'photos');
      await heartbeat(srv, c, { progress: { ratio: 0.5 } });
      await attrIs(page, `${tid(`child-${c.task.id}`)} [role="progressbar"]`, 'aria-valuenow', '50');
      await finish(srv, c, 'complete');
      await textIs(page, tid('children-summary'), /1 processed, 0 processing, 2 pending/);
      await attrIs(page, tid('progress-bar'), 'aria-valuenow', '33');
      // A new child shows up live.
      const late = await submit(srv, { name: 'photo-late', parent_id: parent.id, queue: 'photos' });
      await page.locator(tid(`child-${late.id}`)).waitFor();
      // The list marks the paused task.
      await page.goto(`${srv.url}/#/tasks?queue=photos`);
      await page.locator(`${tid(`task-row-${kids[2].id}`)} ${tid('task-paused')}`).waitFor();
      assert.equal(await page.locator(`${tid(`task-row-${kids[1].id}`)} ${tid('task-paused')}`).count(), 0);
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });
});

describe('queues', () => {
  test('counts per phase, a queue paused and resumed from the page, and the charts', async () => {
    const srv = await startServer();
    try {
      for (let i = 0; i < 3; i++) await submit(srv, { queue: 'qa' });
      await finish(srv, await claim(srv, 'qa'), 'complete');
      const page = await openPage(browser, srv, { hash: '#/queues' });
      await live(page);
      await textIs(page, tid('queue-count-qa-completed'), /^1$/);
      await textIs(page, tid('queue-count-qa-pending'), /^2$/);
      // Counts follow the events.
      await submit(srv, { queue: 'qa' });
      await textIs(page, tid('queue-count-qa-pending'), /^3$/);

      await page.click(tid('queue-pause-qa'));
      await attrIs(page, tid('queue-state-qa'), 'data-state', 'paused');
      const q = (await ok(srv, 'GET', '/v1/queues')).queues.find((x) => x.name === 'qa');
      assert.equal(q.state, 'paused');
      assert.equal(await claim(srv, 'qa'), null, 'a paused queue hands out nothing');
      await page.click(tid('queue-resume-qa'));
      await attrIs(page, tid('queue-state-qa'), 'data-state', 'active');
      assert.notEqual(await claim(srv, 'qa'), null);

      await page.selectOption(tid('stats-queue'), 'qa');
      await page.locator(tid('chart-throughput')).waitFor();
      await page.locator(tid('chart-failures')).waitFor();
      await page.locator(tid('chart-latency')).waitFor();
      await textIs(page, tid('stats-note'), /1 completed/);
      await page.click(tid('stats-range-day'));
      await textIs(page, tid('stats-note'), /last day, in 15 min buckets: 1 completed/);
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });
  test('a slow answer for the range left is not drawn over the range chosen', async () => {
    const srv = await startServer();
    try {
      await submit(srv, { queue: 'slow' });
      await finish(srv, await claim(srv, 'slow'), 'complete');
      const context = await browser.newContext();
      // The last hour's statistics answer late; the last day's at once.
      await context.route('**/v1/queues/slow/stats?range=hour', async (route) => {
        await new Promise((r) => setTimeout(r, 1500));
        await route.continue().catch(() => {});
      });
      const page = await context.newPage();
      await page.goto(`${srv.url}/#/queues`);
      await page.locator(tid('queues-table')).waitFor();
      await page.click(tid('stats-range-day'));
      await textIs(page, tid('stats-note'), /last day, in 15 min buckets/);
      await page.waitForTimeout(2500); // the hour's answer has come by now
      assert.match(await page.textContent(tid('stats-note')), /last day, in 15 min buckets/);
      assert.equal(await page.getAttribute(tid('stats-range-day'), 'aria-pressed'), 'true');
      await context.close();
    } finally {
      await srv.close();
    }
  });
});

describe('auth', () => {
  test('the page asks for a token, keeps it in sessionStorage only, and shows its role', async () => {
    const srv = await startServer({ tokens: true });
    try {
      const page = await openPage(browser, srv, { hash: '#/queues' });
      await page.locator(tid('login')).waitFor();
      // Masked, and marked so that a password manager does not offer to
      // save it (autocomplete=off, as before, is ignored by them).
      assert.equal(await page.getAttribute(tid('login-token'), 'type'), 'password');
      assert.equal(await page.getAttribute(tid('login-token'), 'autocomplete'), 'one-time-code');
      await page.fill(tid('login-token'), 'tm_0000000000000000_' + '0'.repeat(64));
      await page.click(tid('login-submit'));
      await textIs(page, tid('login-error'), /refused/);
      await page.fill(tid('login-token'), srv.token);
      await page.click(tid('login-submit'));
      await live(page);
      await textIs(page, tid('identity'), /admin/);
      assert.equal(await page.evaluate(() => sessionStorage.getItem('taskmill.token')), srv.token);
      assert.equal(await page.evaluate(() => localStorage.length), 0);
      await page.locator(tid('queues-table')).waitFor();
      await page.click(tid('signout'));
      await page.locator(tid('login')).waitFor();
      assert.equal(await page.evaluate(() => sessionStorage.getItem('taskmill.token')), null);
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('a reader token sees no action buttons', async () => {
    const srv = await startServer({ tokens: true });
    try {
      const reader = await ok(srv, 'POST', '/v1/tokens', { role: 'reader', namespace: 'default', name: 'watcher' });
      const t = await submit(srv, { name: 'seen-not-touched' });
      const page = await openPage(browser, srv, { token: reader.secret, hash: `#/tasks/${t.id}` });
      await live(page);
      await textIs(page, tid('identity'), /reader · namespace default/);
      await attrIs(page, tid('task-phase'), 'data-phase', 'pending');
      assert.equal(await page.locator('[data-testid^="action-"]').count(), 0, 'no task actions');
      await page.click(tid('nav-tasks'));
      await page.locator(tid(`task-row-${t.id}`)).waitFor();
      assert.equal(await page.locator(tid('bulk-apply')).count(), 0, 'no bulk action');
      await page.click(tid('nav-queues'));
      await page.locator(tid('queues-table')).waitFor();
      assert.equal(await page.locator('[data-testid^="queue-pause-"], [data-testid^="queue-resume-"]').count(), 0, 'no queue pause');
      assert.equal(await page.locator(tid('nav-tokens')).isVisible(), false);
      assert.equal(await page.locator(tid('nav-webhooks')).isVisible(), false);
      assert.equal(await page.locator('main button.danger').count(), 0);
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('a worker token opens a task by its id and has nothing to act with', async () => {
    const srv = await startServer({ tokens: true });
    try {
      const worker = await ok(srv, 'POST', '/v1/tokens', { role: 'worker', namespace: 'default', name: 'farm' });
      const t = await submit(srv, { name: 'for-the-worker' });
      const page = await openPage(browser, srv, { token: worker.secret, hash: '#/queues' });
      await textIs(page, tid('identity'), /worker · namespace default/);
      await page.fill(tid('task-id-input'), t.id);
      await page.keyboard.press('Enter');
      await attrIs(page, tid('task-phase'), 'data-phase', 'pending');
      assert.equal(await page.locator('[data-testid^="action-"]').count(), 0);
      assert.equal(await page.locator(tid('nav-tasks')).isVisible(), false);
      assert.equal(await page.locator(tid('banner-disconnected')).isVisible(), false, 'no stream to lose');
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('the timeline names the token that acted; an admin creates and revokes a token', async () => {
    const srv = await startServer({ tokens: true });
    try {
      const t = await submit(srv, { name: 'to-cancel' });
      const page = await openPage(browser, srv, { token: srv.token, hash: `#/tasks/${t.id}` });
      await live(page);
      await page.click(tid('action-cancel'));
      await attrIs(page, tid('task-phase'), 'data-phase', 'cancelled');
      const actor = page.locator(`${tid('timeline-entry')}[data-kind="task.cancelled"] ${tid('timeline-actor')}`);
      await actor.waitFor();
      assert.equal(await actor.getAttribute('data-actor'), srv.tokenId);
      assert.match(await actor.textContent(), /admin/, 'by the token\'s name');

      await page.click(tid('nav-tokens'));
      await page.selectOption(tid('token-role'), 'reader');
      await page.fill(tid('token-name'), 'made-in-the-page');
      await page.click(tid('token-create'));
      const secret = (await page.locator(tid('token-secret')).textContent()).trim();
      assert.match(secret, /^tm_[0-9a-f]{16}_[0-9a-f]{64}$/);
      assert.equal((await v1(srv, 'GET', '/v1/tasks', undefined, secret)).status, 200);
      const id = secret.split('_')[1];
      await page.click(tid(`token-revoke-${id}`));
      await page.click(tid('confirm-ok'));
      await textIs(page, `${tid(`token-row-${id}`)} ${tid('token-status')}`, /revoked/);
      assert.equal((await v1(srv, 'GET', '/v1/tasks', undefined, secret)).status, 401);
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('the first token made in open mode stays on the page when open mode ends, until the viewer moves on', async () => {
    const srv = await startServer();
    try {
      const page = await openPage(browser, srv, { hash: '#/tokens' });
      await live(page);
      await textIs(page, tid('tokens'), /No tokens/);
      await page.selectOption(tid('token-role'), 'admin');
      await page.fill(tid('token-name'), 'first');
      await page.click(tid('token-create'));
      const secret = (await page.locator(tid('token-secret')).textContent()).trim();
      assert.match(secret, /^tm_[0-9a-f]{16}_[0-9a-f]{64}$/);
      // The server notices the new token at its next request a second on
      // (any client's), and then cuts the streams opened without one.
      await until(async () => (await v1(srv, 'GET', '/v1/tasks', undefined, null)).status === 401, 'the server closed', 5000);
      await page.locator(tid('signin-needed')).waitFor({ timeout: 10000 });
      assert.match(await page.textContent(tid('signin-needed')), /open mode/);
      assert.equal((await page.locator(tid('token-secret')).textContent()).trim(), secret, 'the one-time secret is still there');
      await page.waitForTimeout(1500);
      assert.equal(await page.locator(tid('token-secret')).count(), 1, 'and stays');
      assert.equal(await page.locator(tid('login')).count(), 0);
      // Then the viewer signs in with it.
      await page.click(tid('signin-now'));
      await page.fill(tid('login-token'), secret);
      await page.click(tid('login-submit'));
      await live(page);
      await textIs(page, tid('identity'), /admin · all namespaces · token "first"/);
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });
});

describe('accessible and plain', () => {
  test('keyboard: skip link, navigation, an action and the confirm dialog without a mouse', async () => {
    const srv = await startServer();
    try {
      const t = await submit(srv, { name: 'by-keyboard' });
      const page = await openPage(browser, srv, { hash: '#/queues' });
      await live(page);
      await page.locator(tid('queues-table')).waitFor();
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'skip-link');
      await page.keyboard.press('Enter');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'main', 'the skip link moves the focus');
      assert.match(page.url(), /#\/queues$/, 'and not the route');
      await page.locator(tid('queues-table')).waitFor();
      await page.focus(tid('skip-link'));
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'nav-queues');
      await page.keyboard.press('Tab');
      await page.keyboard.press('Enter');
      await page.locator(tid('tasks-table')).waitFor();
      assert.match(page.url(), /#\/tasks$/);
      // Every control has a name a screen reader can say.
      const unnamed = await page.evaluate(() => [...document.querySelectorAll('main input, main select, main button, main a')]
        .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
        .map((el) => el.outerHTML.slice(0, 80)));
      assert.deepEqual(unnamed, []);
      // Tab to the task's link and open it.
      await page.locator(tid(`task-row-${t.id}`)).waitFor();
      await page.focus(`${tid(`task-row-${t.id}`)} a`);
      await page.keyboard.press('Enter');
      await attrIs(page, tid('task-phase'), 'data-phase', 'pending');
      // Pause with the keyboard; the focus moves to Resume.
      await page.focus(tid('action-pause'));
      await page.keyboard.press('Enter');
      await page.locator(tid('task-paused')).waitFor();
      // The event stream can show the pause before the action's own answer
      // comes back and gives the focus on: waited for, not looked at once.
      await until(async () => (await page.evaluate(() => document.activeElement.dataset.testid)) === 'action-resume', 'the focus on Resume');
      // A dialog: Escape closes it and gives the focus back.
      await ok(srv, 'POST', `/v1/tasks/${t.id}/cancel`);
      await page.locator(`${tid('action-delete')}:not([disabled])`).waitFor();
      await page.focus(tid('action-delete'));
      await page.keyboard.press('Enter');
      await page.locator(tid('confirm-dialog')).waitFor({ state: 'visible' });
      assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'confirm-cancel', 'the safe choice has the focus');
      await page.keyboard.press('Escape');
      await page.locator(tid('confirm-dialog')).waitFor({ state: 'hidden' });
      assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'action-delete');
      assert.equal((await v1(srv, 'GET', `/v1/tasks/${t.id}`)).status, 200, 'not deleted');
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('every view fits a 390 px phone without sideways scrolling; times show UTC on hover', async () => {
    const srv = await startServer();
    try {
      const t = await submit(srv, { name: 'a-task-with-a-rather-long-name-for-a-phone', params: { path: '/a/very/long/path/'.repeat(8) } });
      const c = await claim(srv);
      await heartbeat(srv, c, { progress: { ratio: 0.3, message: 'working' }, items: [{ name: 'item-1', progress: 0.3 }] });
      const page = await openPage(browser, srv, { hash: '#/queues', width: 390, height: 844 });
      await live(page);
      for (const hash of ['#/queues', '#/tasks', `#/tasks/${t.id}`, '#/webhooks', '#/tokens']) {
        await page.goto(`${srv.url}/${hash}`);
        await page.locator('main h1').waitFor();
        await page.waitForTimeout(300);
        const w = await page.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(w <= 391, `${hash} is ${w} px wide`);
      }
      await page.goto(`${srv.url}/#/tasks/${t.id}`);
      const title = await page.locator(`${tid('timings')} time`).first().getAttribute('title');
      assert.match(title, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC$/);
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('a burst of 3,000 events keeps the page responsive (rendering is batched)', async () => {
    const srv = await startServer();
    try {
      const page = await openPage(browser, srv, { hash: '#/tasks?queue=burst' });
      await live(page);
      await page.locator(tid('tasks-table')).waitFor();
      // Batched: the page is redrawn a few times for the burst, not once
      // an event. Counted in redraws (the DOM's mutation deliveries), not
      // timed: speed is measured in benchmarks, never asserted here.
      await page.evaluate(() => {
        window.__redraws = 0;
        new MutationObserver(() => { window.__redraws++; })
          .observe(document.body, { childList: true, subtree: true, characterData: true, attributes: true });
      });
      for (let b = 0; b < 3; b++) {
        await ok(srv, 'POST', '/v1/tasks/batch', { tasks: Array.from({ length: 1000 }, (_, i) => ({ type: 'burst', queue: 'burst', name: `b${b}-${i}` })) });
      }
      await page.locator(tid('new-tasks')).waitFor({ state: 'visible' });
      await textIs(page, tid('new-tasks'), /3,000 new tasks/);
      assert.equal(await page.evaluate(() => 1), 1, 'the page answers');
      const redraws = await page.evaluate(() => window.__redraws);
      assert.ok(redraws < 300, `the page was redrawn ${redraws} times for 3,000 events`);
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });
});

describe('refusals and busy controls', () => {
  test('a role refused says so with the server\'s message; pages and reads the role may not have say so up front', async () => {
    const srv = await startServer({ tokens: true });
    try {
      const reader = await ok(srv, 'POST', '/v1/tokens', { role: 'reader', namespace: 'default', name: 'watcher' });
      const client = await ok(srv, 'POST', '/v1/tokens', { role: 'client', namespace: 'default', name: 'app' });
      const worker = await ok(srv, 'POST', '/v1/tokens', { role: 'worker', namespace: 'default', name: 'farm' });
      const t = await submit(srv, { name: 'refused-cancel' });

      // Pages the role may not see say so, and ask the server nothing for them.
      for (const [who, hash, re] of [
        [reader, '#/tokens', /A 'reader' token may not see or make tokens/],
        [reader, '#/webhooks', /A 'reader' token may not see or change webhooks/],
        [client, '#/tokens', /A 'client' token may not see or make tokens/],
      ]) {
        const page = await openPage(browser, srv, { token: who.secret, hash });
        const asked = [];
        page.on('request', (r) => { if (/\/v1\/(tokens|webhooks)/.test(r.url())) asked.push(r.url()); });
        await textIs(page, tid('role-refused'), re);
        await page.waitForTimeout(300);
        assert.equal(await page.locator(`${tid('token-form')}, ${tid('webhook-form')}`).count(), 0, `${hash}: no form`);
        assert.deepEqual(asked, [], `${hash}: nothing asked`);
        assert.deepEqual(page.errors, []);
        await page.closeAll();
      }
      // A client still has its webhooks.
      const cp = await openPage(browser, srv, { token: client.secret, hash: '#/webhooks' });
      await cp.locator(tid('webhook-form')).waitFor();
      assert.equal(await cp.locator(tid('role-refused')).count(), 0);
      await cp.closeAll();

      // A worker's task page does not ask for the attempts it may not read.
      const wp = await openPage(browser, srv, { token: worker.secret, hash: `#/tasks/${t.id}` });
      const attemptsAsked = [];
      wp.on('request', (r) => { if (r.url().includes('/attempts')) attemptsAsked.push(r.url()); });
      await attrIs(wp, tid('task-phase'), 'data-phase', 'pending');
      await textIs(wp, tid('attempts'), /A 'worker' token may not read the attempt history/);
      assert.deepEqual(attemptsAsked, []);
      await wp.closeAll();

      // A 403 the page did not foresee (the cancel goes out with the
      // reader's token): the page says the role may not, in the server's words.
      const page = await openPage(browser, srv, { token: srv.token, hash: `#/tasks/${t.id}` });
      await live(page);
      await page.route(`**/v1/tasks/${t.id}/cancel`, (route) => route.continue({
        headers: { ...route.request().headers(), authorization: `Bearer ${reader.secret}` },
      }));
      await page.locator(`${tid('action-cancel')}:not([disabled])`).click();
      await textIs(page, tid('toast'), /Could not cancel the task: this token's role may not do that/);
      assert.match(await page.textContent(tid('toast')), /a 'reader' token may not call 'POST \/v1\/tasks\/[0-9a-f]+\/cancel'/);
      assert.equal((await ok(srv, 'GET', `/v1/tasks/${t.id}`)).phase, 'pending', 'nothing changed');
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('a bulk action double-clicked is sent once; its button is disabled while it runs', async () => {
    const srv = await startServer();
    try {
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push((await submit(srv, { name: `dbl-${i}`, queue: 'dbl' })).id);
      for (let i = 0; i < 3; i++) await finish(srv, await claim(srv, 'dbl'), 'fail', { error: 'disk full', retryable: false });
      const page = await openPage(browser, srv, { hash: '#/tasks?queue=dbl&phase=failed' });
      await live(page);
      await until(async () => (await page.locator('tbody tr[data-task-id]').count()) === 3, 'three failed tasks');
      const sent = [];
      page.on('request', (r) => {
        if (r.url().endsWith('/v1/tasks/bulk')) sent.push(JSON.parse(r.postData()).dry_run ? 'count' : 'apply');
      });
      await page.selectOption(tid('bulk-action'), 'retry');
      await page.dblclick(tid('bulk-apply'));
      await page.locator(tid('confirm-dialog')).waitFor({ state: 'visible' });
      assert.equal(await page.locator(tid('bulk-apply')).isDisabled(), true, 'disabled while the action runs');
      await page.click(tid('confirm-ok'));
      await textIs(page, tid('bulk-result'), /retried 3 of 3/);
      await page.locator(`${tid('bulk-apply')}:not([disabled])`).waitFor();
      await page.waitForTimeout(500);
      assert.deepEqual(sent, ['count', 'apply']);
      assert.equal(await page.locator(tid('bulk-result')).textContent(), 'retried 3 of 3 matching tasks.');
      for (const id of ids) assert.equal((await ok(srv, 'GET', `/v1/tasks/${id}`)).phase, 'pending');
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('a task action double-clicked is sent once; the actions wait for its answer', async () => {
    const srv = await startServer();
    try {
      const t = await submit(srv, { name: 'dbl-retry' });
      await ok(srv, 'POST', `/v1/tasks/${t.id}/cancel`);
      const page = await openPage(browser, srv, { hash: `#/tasks/${t.id}` });
      await live(page);
      await page.locator(`${tid('action-retry')}:not([disabled])`).waitFor();
      let sent = 0;
      // The answer comes late, so the second click lands while the first waits.
      await page.route(`**/v1/tasks/${t.id}/retry`, async (route) => {
        sent++;
        await new Promise((r) => setTimeout(r, 700));
        await route.continue().catch(() => {});
      });
      await page.dblclick(tid('action-retry'));
      for (const a of ['cancel', 'retry', 'pause', 'resume', 'delete']) {
        assert.equal(await page.locator(tid(`action-${a}`)).isDisabled(), true, `${a} waits`);
      }
      await attrIs(page, tid('task-phase'), 'data-phase', 'pending');
      await page.locator(`${tid('action-cancel')}:not([disabled])`).waitFor();
      await page.waitForTimeout(1000);
      assert.equal(sent, 1, 'one retry sent');
      assert.match(await page.textContent(tid('toast')), /Task queued again/);
      assert.equal(await page.locator(`${tid('toast')}.bad`).count(), 0, 'no error');
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('a token create double-clicked makes one token', async () => {
    const srv = await startServer({ tokens: true });
    try {
      const page = await openPage(browser, srv, { token: srv.token, hash: '#/tokens' });
      await live(page);
      await page.locator(tid('tokens-table')).waitFor();
      await page.selectOption(tid('token-role'), 'reader');
      await page.fill(tid('token-name'), 'dbl');
      await page.dblclick(tid('token-create'));
      const secret = (await page.locator(tid('token-secret')).textContent()).trim();
      await page.locator(`${tid('token-create')}:not([disabled])`).waitFor();
      await page.waitForTimeout(500);
      const made = (await ok(srv, 'GET', '/v1/tokens')).tokens.filter((x) => x.name === 'dbl');
      assert.equal(made.length, 1, 'one token');
      assert.equal(made[0].id, secret.split('_')[1], 'the one whose secret is shown');
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('a webhook add double-clicked adds one webhook', async () => {
    const srv = await startServer();
    try {
      const page = await openPage(browser, srv, { hash: '#/webhooks' });
      await live(page);
      await page.locator(tid('webhook-form')).waitFor();
      await page.fill(tid('webhook-url'), 'https://hooks.example.com/taskmill');
      await page.fill(tid('webhook-name'), 'dbl');
      await page.dblclick(tid('webhook-create'));
      await page.locator(tid('webhook-secret')).waitFor();
      await page.locator(`${tid('webhook-create')}:not([disabled])`).waitFor();
      await page.waitForTimeout(500);
      const made = (await ok(srv, 'GET', '/v1/webhooks')).webhooks.filter((x) => x.name === 'dbl');
      assert.equal(made.length, 1, 'one webhook');
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('a queue pause double-clicked is sent once; its button waits for the answer', async () => {
    const srv = await startServer();
    try {
      await submit(srv, { queue: 'dq' });
      const page = await openPage(browser, srv, { hash: '#/queues' });
      await live(page);
      await page.locator(tid('queue-pause-dq')).waitFor();
      let sent = 0;
      await page.route('**/v1/queues/dq/pause', async (route) => {
        sent++;
        await new Promise((r) => setTimeout(r, 700));
        await route.continue().catch(() => {});
      });
      await page.dblclick(tid('queue-pause-dq'));
      assert.equal(await page.locator(tid('queue-pause-dq')).isDisabled(), true, 'disabled while it runs');
      await attrIs(page, tid('queue-state-dq'), 'data-state', 'paused');
      await page.locator(`${tid('queue-resume-dq')}:not([disabled])`).waitFor();
      await page.waitForTimeout(500);
      assert.equal(sent, 1, 'one pause sent');
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('a bulk count or a delete answered after the viewer moved on does not pull the page back', async () => {
    const srv = await startServer();
    try {
      const t = await submit(srv, { name: 'moved-on', queue: 'mo' });
      await ok(srv, 'POST', `/v1/tasks/${t.id}/cancel`);
      const other = await submit(srv, { name: 'elsewhere', queue: 'mo' });
      const page = await openPage(browser, srv, { hash: '#/tasks?queue=mo' });
      await live(page);
      await page.locator(tid(`task-row-${t.id}`)).waitFor();
      const late = async (route) => {
        await new Promise((r) => setTimeout(r, 800));
        await route.continue().catch(() => {});
      };
      await page.route('**/v1/tasks/bulk', late);
      await page.selectOption(tid('bulk-action'), 'cancel');
      await page.click(tid('bulk-apply'));
      await page.click(tid('nav-queues'));
      await page.locator(tid('queues-table')).waitFor();
      await page.waitForTimeout(1500);
      assert.equal(await page.locator(tid('confirm-dialog')).isVisible(), false, 'no dialog over the queues');
      assert.equal((await ok(srv, 'GET', `/v1/tasks/${other.id}`)).phase, 'pending');

      // A delete whose answer comes after the viewer opened another task.
      await page.goto(`${srv.url}/#/tasks/${t.id}`);
      await page.locator(`${tid('action-delete')}:not([disabled])`).waitFor();
      await page.route(`**/v1/tasks/${t.id}`, (route) => (route.request().method() === 'DELETE' ? late(route) : route.continue()));
      await page.click(tid('action-delete'));
      await page.click(tid('confirm-ok'));
      await page.evaluate((id) => { location.hash = `#/tasks/${id}`; }, other.id);
      await attrIs(page, tid('task-phase'), 'data-phase', 'pending');
      await until(async () => (await v1(srv, 'GET', `/v1/tasks/${t.id}`)).status === 404, 'the delete done');
      await page.waitForTimeout(500);
      assert.match(page.url(), new RegExp(`#/tasks/${other.id}$`), 'still on the task the viewer opened');
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('a refused token is named with the server\'s reason on the sign-in form', async () => {
    const srv = await startServer({ tokens: true });
    try {
      const short = await ok(srv, 'POST', '/v1/tokens', { role: 'reader', namespace: 'default', name: 'short', expires_in: '1s' });
      await new Promise((r) => setTimeout(r, 1500));
      const page = await openPage(browser, srv, { token: short.secret, hash: '#/queues' });
      await textIs(page, tid('login-error'), /^The saved token was refused: the token has expired\.$/);
      await page.fill(tid('login-token'), short.secret);
      await page.click(tid('login-submit'));
      await textIs(page, tid('login-error'), /^That token was refused: the token has expired\.$/);
      await page.closeAll();

      // Revoked while the page is open: back to the form, saying why.
      const reader = await ok(srv, 'POST', '/v1/tokens', { role: 'reader', namespace: 'default', name: 'gone-soon' });
      const p2 = await openPage(browser, srv, { token: reader.secret, hash: '#/tasks' });
      await live(p2);
      await p2.locator(tid('tasks-table')).waitFor();
      await ok(srv, 'DELETE', `/v1/tokens/${reader.id}`);
      // The next call (or the stream, if the server cuts it first) learns of it.
      await p2.evaluate(() => { location.hash = '#/queues'; });
      await textIs(p2, tid('login-error'), /^The server refused the token: the token is not valid\.$/);
      assert.deepEqual(p2.errors, []);
      await p2.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('children collapsed and opened again while read: the late first answer does not take their live updates', async () => {
    const srv = await startServer();
    try {
      const parent = await submit(srv, { name: 'tree-top' });
      const child = await submit(srv, { name: 'tree-mid', parent_id: parent.id, queue: 'mid' });
      const grand = await submit(srv, { name: 'tree-leaf', parent_id: child.id, queue: 'leaf' });
      const page = await openPage(browser, srv, { hash: `#/tasks/${parent.id}` });
      await live(page);
      await page.locator(tid(`child-${child.id}`)).waitFor();
      let reads = 0;
      await page.route(`**/v1/tasks?parent_id=${child.id}*`, async (route) => {
        if (reads++ === 0) await new Promise((r) => setTimeout(r, 1500));
        await route.continue().catch(() => {});
      });
      const toggle = page.getByRole('button', { name: 'Children of tree-mid' });
      await toggle.click(); // open: its read answers late
      await toggle.click(); // closed
      await toggle.click(); // open again: answers at once
      await page.locator(tid(`child-${grand.id}`)).waitFor();
      await page.waitForTimeout(2000); // the first answer has come by now
      const c = await claim(srv, 'leaf');
      await heartbeat(srv, c, { progress: { ratio: 0.5 } });
      await attrIs(page, `${tid(`child-${grand.id}`)} [role="progressbar"]`, 'aria-valuenow', '50');
      assert.equal(await page.locator(tid(`child-${grand.id}`)).count(), 1);
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('a sign-in double-clicked signs in once', async () => {
    const srv = await startServer({ tokens: true });
    try {
      const page = await openPage(browser, srv, { hash: '#/queues' });
      await page.locator(tid('login')).waitFor();
      const asked = [];
      page.on('request', (r) => { if (/\/v1\/(whoami|queues|events)$/.test(new URL(r.url()).pathname)) asked.push(new URL(r.url()).pathname); });
      await page.fill(tid('login-token'), srv.token);
      await page.dblclick(tid('login-submit'));
      await live(page);
      await page.locator(tid('queues-table')).waitFor();
      await page.waitForTimeout(500);
      assert.deepEqual(asked.filter((p) => p === '/v1/whoami'), ['/v1/whoami'], 'one sign-in');
      assert.deepEqual(asked.filter((p) => p === '/v1/events'), ['/v1/events'], 'one stream');
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('a token or webhook made after the viewer left its page still shows its secret once', async () => {
    const srv = await startServer({ tokens: true });
    try {
      const page = await openPage(browser, srv, { token: srv.token, hash: '#/tokens' });
      await live(page);
      const late = async (route) => {
        await new Promise((r) => setTimeout(r, 800));
        await route.continue().catch(() => {});
      };
      await page.route('**/v1/tokens', (route) => (route.request().method() === 'POST' ? late(route) : route.continue()));
      await page.route('**/v1/webhooks', (route) => (route.request().method() === 'POST' ? late(route) : route.continue()));
      await page.locator(tid('tokens-table')).waitFor();
      await page.fill(tid('token-name'), 'made-late');
      await page.click(tid('token-create'));
      await page.click(tid('nav-queues'));
      await page.locator(tid('queues-table')).waitFor();
      const secret = (await page.locator(tid('late-secret-value')).textContent()).trim();
      assert.match(secret, /^tm_[0-9a-f]{16}_[0-9a-f]{64}$/);
      assert.equal((await v1(srv, 'GET', '/v1/whoami', undefined, secret)).json.name, 'made-late', 'the secret of the token made');

      await page.click(tid('nav-webhooks'));
      await page.locator(tid('webhook-form')).waitFor();
      await page.fill(tid('webhook-url'), 'https://hooks.example.com/late');
      await page.click(tid('webhook-create'));
      await page.click(tid('nav-queues'));
      await page.locator(tid('queues-table')).waitFor();
      await textIs(page, tid('late-secret'), /^Webhook [0-9a-f]+ \(to https:\/\/hooks\.example\.com\/late\) was made after you left its page/);
      assert.ok((await page.locator(tid('late-secret-value')).textContent()).trim().length > 0);
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('a read of the task that fails after a newer one succeeded is not reported', async () => {
    const srv = await startServer();
    try {
      const t = await submit(srv, { name: 'old-failure' });
      const context = await browser.newContext();
      let reads = 0;
      // The first read answers last, and fails.
      await context.route(`**/v1/tasks/${t.id}`, async (route) => {
        if (reads++) return route.continue();
        await new Promise((r) => setTimeout(r, 6000));
        return route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unavailable', message: 'storage unavailable; try again' } }) }).catch(() => {});
      });
      const page = await context.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${srv.url}/#/tasks/${t.id}`);
      await live(page);
      // A drop and a return read the task again; that read answers first.
      await srv.stop();
      await page.locator(tid('banner-disconnected')).waitFor({ state: 'visible' });
      await srv.start();
      await page.locator(tid('banner-disconnected')).waitFor({ state: 'hidden', timeout: 20000 });
      await until(async () => reads >= 2, 'the second read');
      await attrIs(page, tid('task-phase'), 'data-phase', 'pending');
      await page.waitForTimeout(6500); // the first read's failure has come by now
      assert.equal(await page.locator(tid('task-note')).isVisible(), false, 'no failure reported');
      assert.deepEqual(errors, []);
      await context.close();
    } finally {
      await srv.close();
    }
  });

  test('a filter input the server refused is unmarked once a read of the list succeeds', async () => {
    const srv = await startServer();
    try {
      await submit(srv, { name: 'marked', queue: 'mk' });
      const context = await browser.newContext();
      let reads = 0;
      // The first read of the list is refused, naming the queue (as a storage
      // timeout or a bad value would); the next one is answered.
      await context.route('**/v1/tasks?*', (route) => {
        if (!new URL(route.request().url()).searchParams.has('queue') || reads++) return route.continue();
        return route.fulfill({ status: 400, contentType: 'application/json', body: JSON.stringify({ error: { code: 'invalid_argument', message: "'queue' is not a queue name", field: 'queue' } }) });
      });
      const page = await context.newPage();
      await page.goto(`${srv.url}/#/tasks?queue=mk`);
      await textIs(page, tid('tasks-status'), /Could not read the tasks: 'queue' is not a queue name/);
      assert.equal(await page.getAttribute(tid('filter-queue'), 'aria-invalid'), 'true');
      await page.click(tid('filter-apply'));
      await textIs(page, tid('tasks-status'), /1 task on this page/);
      assert.equal(await page.getAttribute(tid('filter-queue'), 'aria-invalid'), null);
      await context.close();
    } finally {
      await srv.close();
    }
  });

  test('deliveries read again on a double click are read once', async () => {
    const srv = await startServer();
    try {
      const w = await ok(srv, 'POST', '/v1/webhooks', { url: 'https://hooks.example.com/d', name: 'reads' });
      const page = await openPage(browser, srv, { hash: `#/webhooks/${w.id}` });
      await live(page);
      await page.locator(`${tid('deliveries-refresh')}:not([disabled])`).waitFor();
      let reads = 0;
      await page.route(`**/v1/webhooks/${w.id}/deliveries*`, async (route) => {
        reads++;
        await new Promise((r) => setTimeout(r, 700));
        await route.continue().catch(() => {});
      });
      await page.dblclick(tid('deliveries-refresh'));
      assert.equal(await page.locator(tid('deliveries-refresh')).isDisabled(), true, 'disabled while it reads');
      await page.locator(`${tid('deliveries-refresh')}:not([disabled])`).waitFor();
      await page.waitForTimeout(300);
      assert.equal(reads, 1);
      await textIs(page, tid('deliveries'), /No deliveries yet/);
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('a token revoked while an older read of the list is on its way stays shown revoked', async () => {
    const srv = await startServer({ tokens: true });
    try {
      const other = await ok(srv, 'POST', '/v1/tokens', { role: 'reader', namespace: 'default', name: 'to-revoke' });
      const page = await openPage(browser, srv, { token: srv.token, hash: '#/tokens' });
      await live(page);
      await page.locator(tid(`token-revoke-${other.id}`)).waitFor();
      let slow = false;
      await page.route('**/v1/tokens', async (route) => {
        if (route.request().method() === 'GET' && slow) {
          // Read now, answered late: the list as it is before the revoke.
          slow = false;
          const response = await route.fetch();
          await new Promise((r) => setTimeout(r, 1500));
          await route.fulfill({ response }).catch(() => {});
          return;
        }
        await route.continue().catch(() => {});
      });
      slow = true;
      await page.fill(tid('token-name'), 'made-meanwhile');
      await page.click(tid('token-create')); // its read of the list answers late
      await page.locator(tid('token-secret')).waitFor();
      await page.click(tid(`token-revoke-${other.id}`));
      await page.click(tid('confirm-ok'));
      await textIs(page, `${tid(`token-row-${other.id}`)} ${tid('token-status')}`, /revoked/);
      await page.waitForTimeout(2000); // the late read has come by now
      assert.match(await page.textContent(`${tid(`token-row-${other.id}`)} ${tid('token-status')}`), /revoked/);
      assert.equal(await page.locator(tid(`token-revoke-${other.id}`)).count(), 0, 'no Revoke for a revoked token');
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('an older read of the queues or the task list answering last is not drawn over a newer one', async () => {
    const srv = await startServer();
    try {
      await submit(srv, { queue: 'rq', name: 'first' });
      const page = await openPage(browser, srv, { hash: '#/queues' });
      await live(page);
      await page.locator(tid('queue-pause-rq')).waitFor();
      // The next read is made at once and answered late: what it holds is old by then.
      let slow = null;
      const lateOnce = async (route) => {
        if (route.request().method() === 'GET' && slow && new URL(route.request().url()).pathname === slow) {
          slow = null;
          const response = await route.fetch();
          await new Promise((r) => setTimeout(r, 1500));
          await route.fulfill({ response }).catch(() => {});
          return;
        }
        await route.continue().catch(() => {});
      };
      await page.route('**/v1/queues', lateOnce);
      slow = '/v1/queues';
      await submit(srv, { queue: 'rq', name: 'second' }); // an event: the counts are read again
      await until(() => slow === null, 'the read of the counts');
      await page.click(tid('queue-pause-rq'));
      await attrIs(page, tid('queue-state-rq'), 'data-state', 'paused');
      await page.waitForTimeout(2000);
      assert.equal(await page.getAttribute(tid('queue-state-rq'), 'data-state'), 'paused');

      await page.route('**/v1/tasks?*', lateOnce);
      await page.goto(`${srv.url}/#/tasks?queue=rq`);
      await until(async () => (await page.locator('tbody tr[data-task-id]').count()) === 2, 'two tasks');
      slow = '/v1/tasks';
      await page.click(tid('filter-apply')); // the same list read again, answered late
      await until(() => slow === null, 'the late read');
      const third = await submit(srv, { queue: 'rq', name: 'third' });
      await page.click(tid('filter-apply')); // read again: answered at once
      await page.locator(tid(`task-row-${third.id}`)).waitFor();
      await page.waitForTimeout(2000);
      assert.equal(await page.locator(tid(`task-row-${third.id}`)).count(), 1, 'the newer list stays');
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('an older read of the attempts answering last is not drawn over a newer one', async () => {
    const srv = await startServer();
    try {
      const t = await submit(srv, { name: 'attempted' });
      const page = await openPage(browser, srv, { hash: `#/tasks/${t.id}` });
      await live(page);
      await textIs(page, tid('attempts'), /Not claimed yet/);
      let slow = true;
      await page.route(`**/v1/tasks/${t.id}/attempts`, async (route) => {
        if (!slow) return route.continue().catch(() => {});
        // Read now (the attempt running), answered after the next read.
        slow = false;
        const response = await route.fetch();
        fetched = true;
        await new Promise((r) => setTimeout(r, 3000));
        await route.fulfill({ response }).catch(() => {});
      });
      let fetched = false;
      const c = await claim(srv);
      await until(() => fetched, 'the read of the running attempt');
      await finish(srv, c, 'complete');
      await textIs(page, tid('attempt-outcome'), /completed/);
      await page.waitForTimeout(3500);
      assert.match(await page.textContent(tid('attempt-outcome')), /completed/);
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('a list whose reload failed offers no Next page until a reload succeeds', async () => {
    const srv = await startServer();
    try {
      await ok(srv, 'POST', '/v1/tasks/batch', { tasks: Array.from({ length: 55 }, (_, i) => ({ type: 'page', name: `p-${i}`, queue: 'pq' })) });
      const page = await openPage(browser, srv, { hash: '#/tasks?queue=pq' });
      await live(page);
      await until(async () => (await page.locator('tbody tr[data-task-id]').count()) === 50, 'a first page of 50');
      await page.locator(tid('next-page')).waitFor();
      await srv.stop();
      await page.locator(tid('banner-disconnected')).waitFor({ state: 'visible' });
      await page.click(tid('filter-apply')); // the same filter: read again, and fail
      await textIs(page, tid('tasks-status'), /Could not read the tasks: the server does not answer/);
      assert.equal(await page.locator(tid('next-page')).count(), 0, 'no Next page from the list before');
      await srv.start();
      await page.locator(tid('banner-disconnected')).waitFor({ state: 'hidden', timeout: 20000 });
      await until(async () => (await page.locator('tbody tr[data-task-id]').count()) === 50, 'the page read again');
      await page.click(tid('next-page'));
      await until(async () => (await page.locator('tbody tr[data-task-id]').count()) === 5, 'a second page of 5');
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });
});

describe('addresses', () => {
  test('a task address that is not a task id asks the server nothing and says there is no such task', async () => {
    const srv = await startServer({ tokens: true });
    try {
      await ok(srv, 'POST', '/v1/schedules', { name: 'nightly', interval_seconds: 3600, task: { type: 'job' } });
      const t = await submit(srv, { name: 'real-one' });
      // The URL parser reads '\' as '/' and resolves dot segments: before,
      // the first one made the page read /v1/schedules/nightly as a task,
      // and its Pause button paused the schedule.
      const crafted = ['..\\schedules\\nightly', '..%5Cschedules%5Cnightly', '%2e%2e/%2e%2e/schedules/nightly',
        `${t.id}/../../schedules/nightly`, '..', t.id.slice(0, 31), t.id.toUpperCase(), `${t.id}%2F..`];
      for (const c of crafted) {
        const page = await openPage(browser, srv, { token: srv.token, hash: `#/tasks/${c}` });
        await live(page);
        // What a viewer would do with the page: press Pause if it is offered.
        const shown = page.locator(`${tid('task-missing')}, ${tid('action-pause')}:not([disabled])`).first();
        await shown.waitFor();
        if (await page.locator(tid('action-pause')).count()) {
          await page.click(tid('action-pause'));
          await page.waitForTimeout(500);
        }
        const sched = await ok(srv, 'GET', '/v1/schedules/nightly');
        assert.equal(sched.paused, false, `the schedule is not paused by '${c}'`);
        assert.deepEqual(page.apiCalls.filter((r) => !['GET /v1/whoami', 'GET /v1/tokens', 'GET /v1/events'].includes(r)), [],
          `no API call but the app's own for '${c}'`);
        assert.equal(await page.locator('h1').textContent(), 'No such task', c);
        assert.match(await page.textContent(tid('task-missing')), /is not a task id/);
        assert.deepEqual(page.errors, []);
        await page.closeAll();
      }
      // A task id opens its task, and its calls stay under /v1/tasks/ID.
      const page = await openPage(browser, srv, { token: srv.token, hash: `#/tasks/${t.id}` });
      await live(page);
      await attrIs(page, tid('task-phase'), 'data-phase', 'pending');
      for (const r of page.apiCalls) {
        if (!['GET /v1/whoami', 'GET /v1/tokens', 'GET /v1/events'].includes(r)) {
          assert.match(r, new RegExp(`^GET /v1/tasks(/${t.id}(/attempts|/events)?)?$`), r);
        }
      }
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });
});

describe('formatting', () => {
  test('durations are rounded before they are split, and never below 0', async () => {
    const srv = await startServer();
    try {
      const page = await openPage(browser, srv, { hash: '#/queues' });
      await live(page);
      const cases = [[-4000, '0 ms'], [0, '0 ms'], [850, '850 ms'], [999.6, '1.0 s'], [9500, '9.5 s'], [9960, '10 s'],
        [42000, '42 s'], [59600, '1 min 0 s'], [65000, '1 min 5 s'], [119600, '2 min 0 s'], [3599600, '1 h 0 min'],
        [7380000, '2 h 3 min']];
      const got = await page.evaluate(async (ms) => {
        const { fmtDuration } = await import('/ui/dom.js');
        return ms.map((v) => fmtDuration(v));
      }, cases.map(([v]) => v));
      assert.deepEqual(got, cases.map(([, s]) => s));
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });
});

describe('the task page', () => {
  /** Opens the page of task id with its read (GET /v1/tasks/ID) answered changed by edit(task). */
  async function openEdited(srv, id, edit) {
    const page = await openPage(browser, srv, { hash: '#/queues' });
    await live(page);
    await page.route((u) => u.pathname === `/v1/tasks/${id}`, async (route) => {
      const r = await route.fetch();
      const t = await r.json();
      edit(t);
      t.version = 1000; // newer than what the task's stream brings
      await route.fulfill({ response: r, json: t });
    });
    await page.evaluate((x) => { location.hash = `#/tasks/${x}`; }, id);
    return page;
  }

  test('a task in a phase the page does not know offers no action', async () => {
    const srv = await startServer();
    try {
      const t = await submit(srv, { name: 'odd-phase' });
      const page = await openEdited(srv, t.id, (x) => { x.phase = 'mystery'; });
      await attrIs(page, tid('task-phase'), 'data-phase', 'mystery');
      for (const a of ['cancel', 'retry', 'pause', 'resume', 'delete']) {
        assert.equal(await page.locator(tid(`action-${a}`)).isDisabled(), true, `${a} is disabled`);
      }
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });

  test('a fault in drawing the task is not reported as the server\'s, and goes to the console', async () => {
    const srv = await startServer();
    try {
      const t = await submit(srv, { name: 'bad-draw' });
      const page = await openEdited(srv, t.id, (x) => { delete x.progress; });
      await textIs(page, tid('task-note'), /Could not show the task/);
      const note = await page.textContent(tid('task-note'));
      assert.doesNotMatch(note, /Could not read|TypeError|Cannot read|undefined/, note);
      await until(() => page.errors.some((e) => /could not show the task/.test(e)), 'the fault in the console');
      assert.equal(page.errors.length, 1, page.errors.join('\n'));
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });
});

describe('start-up', () => {
  // ITEM6TEST: before, every failure but a 401 was "The server does not answer".
  test('a start-up that fails says what its answer means: refused, busy, another status, or no answer', async () => {
    const srv = await startServer();
    // A browser that reaches 127.0.0.1 under another name, as a page renamed by DNS would.
    const renamed = await launch(['--host-resolver-rules=MAP taskmill.test 127.0.0.1']);
    try {
      const context = await renamed.newContext();
      const page = await context.newPage();
      await page.goto(`http://taskmill.test:${srv.port}/#/queues`);
      // Open mode refuses a request for a host that is neither localhost nor an IP address.
      await textIs(page, '#main h1', /^The server refused this page$/);
      await textIs(page, tid('start-failed-text'), /localhost or an IP address only/);
      await context.close();
      const cases = [
        [(r) => r.fulfill({ status: 503, headers: { 'Retry-After': '1' }, json: { error: { code: 'unavailable', message: 'too busy' } } }),
          /^The server is busy or unavailable$/, /Try again in a moment. The server said: too busy/],
        [(r) => r.fulfill({ status: 500, json: { error: { code: 'internal', message: 'disk on fire' } } }),
          /^The server answered with an error \(500\)$/, /disk on fire/],
        [(r) => r.abort('connectionrefused'), /^The server does not answer$/, /No answer came/],
      ];
      for (const [answer, title, text] of cases) {
        const p = await openPage(browser, srv, { setup: (pg) => pg.route('**/v1/whoami', answer) });
        await textIs(p, '#main h1', title);
        await textIs(p, tid('start-failed-text'), text);
        await p.closeAll();
      }
    } finally {
      await renamed.close();
      await srv.close();
    }
  });
});

describe('stream refused', () => {
  // ITEM7TEST: before, a 429 read "Disconnected from the server" and was tried again after 0.5 s.
  test('a stream refused for too many streams says so and is tried again after the server\'s Retry-After', async () => {
    const srv = await startServer({ args: ['--max-streams', '1'] });
    const held = new AbortController();
    try {
      // The one stream the server holds.
      const r = await fetch(`${srv.url}/v1/events`, { signal: held.signal });
      assert.equal(r.status, 200);
      const again = await fetch(`${srv.url}/v1/events`);
      assert.equal(again.status, 429);
      assert.equal(again.headers.get('retry-after'), '1');
      await again.text();
      // When the page asks for its stream, by its own clock.
      const page = await openPage(browser, srv, {
        setup: (p) => p.addInitScript(() => {
          const f = window.fetch;
          window.__tries = [];
          window.fetch = function (u, ...rest) {
            if (String(u).startsWith('/v1/events')) window.__tries.push(performance.now());
            return f.call(this, u, ...rest);
          };
        }),
      });
      const tries = () => page.evaluate(() => window.__tries);
      await attrIs(page, tid('live-state'), 'data-state', 'busy');
      await page.locator(tid('banner-disconnected')).waitFor({ state: 'visible' });
      await textIs(page, tid('banner-disconnected'), /too many event streams open.*Trying again in 1 s/);
      assert.doesNotMatch(await page.textContent(tid('banner-disconnected')), /Disconnected/);
      await until(async () => (await tries()).length >= 4, 'four tries', 10000);
      const at = await tries();
      for (let i = 1; i < at.length; i++) assert.ok(at[i] - at[i - 1] >= 950, `try ${i} came ${Math.round(at[i] - at[i - 1])} ms after the one before`);
      // The place freed (writes tell the server its reader is gone: events), the page is live again.
      held.abort();
      await until(async () => {
        await submit(srv, { name: 'wake-the-stream' });
        await new Promise((r) => setTimeout(r, 250));
        return (await page.getAttribute(tid('live-state'), 'data-state')) === 'live';
      }, 'the page live again', 20000);
      await page.locator(tid('banner-disconnected')).waitFor({ state: 'hidden' });
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      held.abort();
      await srv.close();
    }
  });
});

describe('running times', () => {
  // ITEM8TEST: before, "Running for" and the running attempt's "Took" were drawn once and stood still.
  test('"Running for" and the running attempt\'s "Took" count on, in place, without a call to the server', async () => {
    const srv = await startServer();
    try {
      const t = await submit(srv, { name: 'ticking' });
      await claim(srv);
      const page = await openPage(browser, srv, { hash: `#/tasks/${t.id}` });
      await live(page);
      // Found by their labels: the test ids are new.
      const runningFor = `${tid('timings')} dt:text-is("Running for") + dd`;
      const took = `${tid('attempt-row')} td:nth-child(5)`;
      await page.locator(runningFor).waitFor();
      await page.locator(took).waitFor();
      // The nodes drawn now must be the ones counting later: nothing is drawn again.
      await page.evaluate(() => {
        window.__timings = document.querySelector('[data-testid="timings"] dl');
        window.__attempts = document.querySelector('[data-testid="attempts-table"]');
      });
      const calls = page.apiCalls.length;
      const before = [await page.textContent(runningFor), await page.textContent(took)];
      await page.waitForTimeout(2200);
      const after = [await page.textContent(runningFor), await page.textContent(took)];
      assert.notEqual(after[0], before[0], `Running for: ${before[0]} then ${after[0]}`);
      assert.notEqual(after[1], before[1], `Took: ${before[1]} then ${after[1]}`);
      assert.match(after[0], /^\d+(\.\d)? s$/);
      assert.equal(await page.evaluate(() => window.__timings === document.querySelector('[data-testid="timings"] dl')), true, 'the timings were not drawn again');
      assert.equal(await page.evaluate(() => window.__attempts === document.querySelector('[data-testid="attempts-table"]')), true, 'the attempts were not drawn again');
      assert.equal(page.apiCalls.length, calls, 'no call to the server');
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });
});

describe('time filters', () => {
  // ITEM9TEST: before, the seconds of a time taken from a link were dropped, so Apply changed the filter.
  test('a time filter from a link keeps its seconds and milliseconds through Apply unless it is edited', async () => {
    const srv = await startServer();
    try {
      const after = '2026-01-02T03:04:05.678Z';
      const before = '2099-03-04T05:06:07Z';
      const page = await openPage(browser, srv, { hash: `#/tasks?created_after=${after}&updated_before=${before}` });
      await live(page);
      await page.locator(tid('tasks-status')).waitFor();
      // The field shows the seconds (in the viewer's zone).
      const shown = await page.inputValue(tid('filter-created-after'));
      assert.equal(shown, await page.evaluate((iso) => {
        const d = new Date(iso);
        const p = (n) => String(n).padStart(2, '0');
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
      }, after));
      const hashParams = () => page.evaluate(() => Object.fromEntries(new URLSearchParams(location.hash.split('?')[1] || '')));
      // Another field edited, so that Apply's new address shows it has run.
      await page.fill(tid('filter-queue'), 'tq');
      await page.click(tid('filter-apply'));
      await until(async () => (await hashParams()).queue === 'tq', 'the queue in the address');
      assert.deepEqual(await hashParams(), { created_after: after, updated_before: before, queue: 'tq' }, 'Apply keeps the times as they were');
      // An edited field is sent as edited, to the second.
      await page.fill(tid('filter-created-after'), '2026-01-02T03:04:09');
      await page.click(tid('filter-apply'));
      const want = await page.evaluate(() => new Date('2026-01-02T03:04:09').toISOString());
      await until(async () => (await hashParams()).created_after === want, 'the edited time in the address');
      assert.equal((await hashParams()).updated_before, before);
      assert.deepEqual(page.errors, []);
      await page.closeAll();
    } finally {
      await srv.close();
    }
  });
});
