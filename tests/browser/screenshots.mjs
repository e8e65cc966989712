// Takes the dashboard's screenshots in docs/screenshots/ (1280×800, and one
// at a phone's 390 px): starts a server with tokens, fills it with a few
// queues of work (a worker run from here completes and fails tasks over a
// few minutes, so the charts have something to draw), a webhook with its
// deliveries and some tokens, then signs in as admin and shoots each view.
//
//   cd tests/browser && TASKMILL_BIN=../../build/taskmill node screenshots.mjs [--minutes N]
//
// N (default 3) is how long the worker spreads its work; 0 takes the
// pictures at once.
import { createServer } from 'node:http';
import { mkdirSync } from 'node:fs';
import { startServer, ok, submit, claim, heartbeat, finish, launch, openPage, live } from './server.mjs';

const out = new URL('../../docs/screenshots/', import.meta.url).pathname;
const mi = process.argv.indexOf('--minutes');
const minutes = mi > 0 ? Number(process.argv[mi + 1]) : 3;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

mkdirSync(out, { recursive: true });
const receiver = createServer((req, res) => {
  req.resume();
  req.on('end', () => { res.writeHead(204); res.end(); });
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
const srv = await startServer({ tokens: true, args: ['--webhook-allow-private', '--webhook-backoff-ms', '2000'] });

try {
  // Tokens.
  await ok(srv, 'POST', '/v1/tokens', { role: 'client', namespace: 'default', name: 'ci-pipeline' });
  await ok(srv, 'POST', '/v1/tokens', { role: 'reader', namespace: 'default', name: 'grafana' });
  await ok(srv, 'POST', '/v1/tokens', { role: 'worker', namespace: 'default', name: 'render-farm', expires_in: '90d' });
  const old = await ok(srv, 'POST', '/v1/tokens', { role: 'client', namespace: 'default', name: 'old-laptop' });
  await ok(srv, 'DELETE', `/v1/tokens/${old.id}`);

  // Webhooks: one that answers, one that does not.
  const hook = await ok(srv, 'POST', '/v1/webhooks', { url: `http://127.0.0.1:${receiver.address().port}/taskmill`, name: 'ops-bot' });
  await ok(srv, 'POST', '/v1/webhooks', { url: 'http://127.0.0.1:9/unreachable', name: 'legacy-crm', events: ['task.failed'] });

  // The emails queue, paused, with work waiting.
  for (let i = 0; i < 14; i++) await submit(srv, { type: 'send-email', queue: 'emails', name: `newsletter-batch-${i + 1}` });
  await ok(srv, 'POST', '/v1/queues/emails/pause');

  // A steady trickle of reports and thumbnails, completed and failed over the minutes given.
  const rounds = Math.max(1, Math.round(minutes * 6));
  for (let r = 0; r < rounds; r++) {
    const n = 2 + (r % 4);
    for (let i = 0; i < n; i++) await submit(srv, { type: 'report', queue: 'reports', name: `daily-report-${r}-${i}`, params: { region: ['eu', 'us', 'apac'][i % 3] } });
    await sleep(150 + (r % 3) * 200);
    for (let i = 0; i < n; i++) {
      const c = await claim(srv, 'reports', 'report-worker-1');
      if (!c) break;
      if ((r + i) % 5 === 0) await finish(srv, c, 'fail', { error: 'upstream timeout (HTTP 504 from warehouse)', retryable: false });
      else await finish(srv, c, 'complete', { result: { rows: 1200 + r * 10 + i } });
    }
    if (minutes > 0) await sleep((minutes * 60000) / rounds);
  }
  await submit(srv, { type: 'report', queue: 'reports', name: 'quarterly-report', paused: true });

  // A photo album: a parent and its children, some done, two running.
  const album = await submit(srv, { type: 'album', queue: 'images', name: 'album-2026-summer', params: { album: 'summer', photos: 12 } });
  const albumClaim = await claim(srv, 'images', 'img-worker-1');
  for (let i = 1; i <= 12; i++) await submit(srv, { type: 'resize', queue: 'images', name: `photo-${String(i).padStart(2, '0')}.jpg`, parent_id: album.id, params: { sizes: [320, 1280] } });
  for (let i = 0; i < 7; i++) await finish(srv, await claim(srv, 'images', `img-worker-${1 + (i % 3)}`), 'complete');
  const running = [await claim(srv, 'images', 'img-worker-2'), await claim(srv, 'images', 'img-worker-3')];
  await heartbeat(srv, running[0], { progress: { ratio: 0.7, message: 'writing 1280 px' } });
  await heartbeat(srv, running[1], { progress: { ratio: 0.2, message: 'decoding' } });
  await heartbeat(srv, albumClaim, { messages: [{ level: 'INFO', text: 'split into 12 photos' }] });

  // The star: a transcode with items, messages and attributes, on its second attempt.
  const video = await submit(srv, {
    type: 'transcode', queue: 'video', name: 'trailer-2026.mov', priority: -5, max_retries: 3,
    params: { source: 's3://media/raw/trailer-2026.mov', renditions: ['1080p', '720p', '480p'], codec: 'h264' },
    target: { id: 'asset-7781', type: 'video', name: 'Summer trailer' }, launcher: 'ci-pipeline',
  });
  const first = await claim(srv, 'video', 'gpu-node-4');
  await heartbeat(srv, first, { progress: { ratio: 0.12, message: 'probing' } });
  await finish(srv, first, 'fail', { error: 'CUDA error: out of memory on gpu-node-4' });
  await ok(srv, 'POST', `/v1/tasks/${video.id}/pause`);
  await ok(srv, 'POST', `/v1/tasks/${video.id}/resume`);
  let second = null;
  for (let i = 0; i < 60 && !second; i++) {
    second = await claim(srv, 'video', 'gpu-node-7');
    if (!second) await sleep(250);
  }
  await heartbeat(srv, second, {
    progress: { ratio: 0.1, message: 'pass 1 of 3: analysing' },
    messages: [{ level: 'INFO', text: 'retrying on gpu-node-7 after an out-of-memory error' }],
  });
  await heartbeat(srv, second, {
    progress: { ratio: 0.63, message: 'pass 2 of 3: encoding 720p', processed: 1, processing: 1, pending: 1 },
    items: [
      { name: '1080p.mp4', progress: 1, message: 'done, 412 MB' },
      { name: '720p.mp4', progress: 0.58, message: 'encoding at 2.4x' },
      { name: '480p.mp4', progress: 0, message: null },
    ],
    messages: [
      { level: 'INFO', text: '1080p rendition written (412 MB)' },
      { level: 'WARN', text: 'audio track 2 has no language tag; using "und"' },
    ],
    attributes: { codec: 'h264', fps: 24, gpu: 'gpu-node-7', bitrate_kbps: { '1080p': 8000, '720p': 5000, '480p': 2500 } },
  });
  for (let i = 0; i < 5; i++) await submit(srv, { type: 'transcode', queue: 'video', name: `clip-${i + 1}.mov` });

  // Let the webhook sender deliver, then shoot.
  await sleep(3000);
  const browser = await launch();
  const shots = [
    ['queues', '#/queues?queue=reports'],
    ['tasks', '#/tasks'],
    ['task', `#/tasks/${video.id}`],
    ['task-children', `#/tasks/${album.id}`],
    ['webhooks', `#/webhooks/${hook.id}`],
    ['tokens', '#/tokens'],
  ];
  for (const [name, hash] of shots) {
    const page = await openPage(browser, srv, { token: srv.token, hash });
    await live(page);
    await page.locator('main h1').waitFor();
    await sleep(1200); // the charts and tables read after the stream is up
    await page.screenshot({ path: `${out}${name}.png` });
    if (page.errors.length) console.error(name, page.errors);
    await page.closeAll();
    console.log(`docs/screenshots/${name}.png`);
  }
  const phone = await openPage(browser, srv, { token: srv.token, hash: `#/tasks/${video.id}`, width: 390, height: 844 });
  await live(phone);
  await sleep(1200);
  await phone.screenshot({ path: `${out}task-phone.png` });
  await phone.closeAll();
  console.log('docs/screenshots/task-phone.png');
  await browser.close();
} finally {
  await srv.close();
  receiver.close();
}
