// app.js: the dashboard's entry point. It finds out who the viewer is
// (GET /v1/whoami; a 401 asks for a token, kept in sessionStorage only),
// follows the one live stream (/v1/events) for every view, shows the
// disconnected banner while that stream is down, and routes the hash
// (#/queues, #/tasks?..., #/tasks/ID, #/webhooks[/ID], #/tokens) to a view.
//
// A view is a module with mount(main, route, ctx) returning
// {unmount?, onevents?(batch), refresh?()}; ctx holds the session (role and
// what it may do), and the helpers views share.

import { api, ApiError, getToken, setToken, onUnauthenticated } from './api.js';
import { EventStream } from './live.js';
import { h, clear, errText, isId } from './dom.js';
import * as queuesView from './queues.js';
import * as tasksView from './tasks.js';
import * as taskView from './task.js';
import * as webhooksView from './webhooks.js';
import * as tokensView from './tokens.js';

const main = () => document.getElementById('main');

/** What each role may do (docs/security.md's table); the server refuses the rest anyway. */
function permsOf(role) {
  return {
    read: role !== 'worker',
    control: role === 'admin' || role === 'client',
    delete: role === 'admin',
    queuePause: role === 'admin',
    webhooks: role === 'admin' || role === 'client',
    tokens: role === 'admin',
  };
}

const ctx = {
  session: null,
  can: permsOf('reader'),
  stream: null,
  liveState: 'connecting',
  tokenNames: new Map(), // token id -> name, for admins (the timeline's actor)
  /** Who caused an event: a token (by name when known), open mode, or the server. */
  actorLabel(actor) {
    if (actor === null || actor === undefined) return 'server';
    if (actor === 'open') return 'open mode';
    const n = ctx.tokenNames.get(actor);
    return n ? `${n} (${actor})` : `token ${actor}`;
  },
};

let current = null; // {name, route, view}

// ---- the live stream and the banner ----

const DOWN_TEXT = 'Disconnected from the server. Reconnecting… What you see may be out of date.';

function setLive(state) {
  const prev = ctx.liveState;
  ctx.liveState = state;
  const el = document.getElementById('live');
  el.dataset.state = state;
  el.textContent = { live: 'live', down: 'disconnected', busy: 'server busy', connecting: 'connecting', off: 'not live' }[state];
  const banner = document.getElementById('banner');
  banner.hidden = state !== 'down' && state !== 'busy';
  banner.dataset.state = state;
  if (state === 'down') banner.textContent = DOWN_TEXT;
  // Back after a drop or a refusal: the stream resumed from its
  // Last-Event-ID, so no event was lost, but a view whose reads failed
  // meanwhile reads again.
  if ((prev === 'down' || prev === 'busy') && state === 'live' && current && current.view.onreconnect) current.view.onreconnect();
}

/** The banner while the server refuses the stream for holding too many (429): when it is tried again. */
function setBusy(ms, error) {
  const s = Math.max(1, Math.round(ms / 1000));
  document.getElementById('banner').textContent = 'The server has too many event streams open, so this page is not live. ' +
    `Trying again in ${s} s, as the server asked. What you see may be out of date.${error && error.message ? ` (${error.message})` : ''}`;
}

function startStream() {
  if (ctx.stream) ctx.stream.stop();
  if (!ctx.can.read) {
    setLive('off');
    return Promise.resolve();
  }
  let firstUp;
  const up = new Promise((resolve) => { firstUp = resolve; });
  ctx.stream = new EventStream('/v1/events', {
    onevents: (batch) => {
      if (current && current.view.onevents) current.view.onevents(batch);
    },
    onstate: (st) => {
      setLive(st);
      if (st !== 'connecting') firstUp();
    },
    onbusy: setBusy,
    onpruned: () => {
      if (current && current.view.refresh) current.view.refresh();
    },
    onstatus: (status, error) => {
      if (status === 401) signedOut(refusedText(error));
      firstUp();
    },
  }).start();
  // The views read their state once the stream is subscribed, so nothing
  // that changes after their read is missed; a slow start does not block them.
  return Promise.race([up, new Promise((r) => setTimeout(r, 2000))]);
}

// ---- who is looking ----

/** What the sign-in form says of a token the server refused (a 401's error: its message says why). */
function refusedText(error, what = 'The server refused the token') {
  return error && error.message ? `${what}: ${error.message}.` : `${what} (revoked or expired?).`;
}

function whoami() {
  return api('GET', '/v1/whoami', undefined, { quiet401: true });
}

function renderIdentity() {
  const s = ctx.session;
  const el = document.getElementById('identity');
  document.getElementById('signout').hidden = !getToken();
  if (!s) {
    el.textContent = '';
    return;
  }
  if (s.open) {
    el.textContent = 'open mode (admin)';
    el.title = 'No API token exists yet: anyone on this host acts as admin.';
  } else {
    el.textContent = `${s.role} · ${s.namespace ? `namespace ${s.namespace}` : 'all namespaces'}${s.name ? ` · token "${s.name}"` : ''}`;
    el.title = s.role === 'admin' ? 'Admin tokens see every namespace.' : `This token sees namespace '${s.namespace}' only.`;
  }
  el.dataset.role = s.role;
  for (const a of document.querySelectorAll('#nav a')) {
    const v = a.dataset.view;
    a.hidden = (v === 'webhooks' && !ctx.can.webhooks) || (v === 'tokens' && !ctx.can.tokens) ||
      ((v === 'queues' || v === 'tasks') && !ctx.can.read);
  }
}

// The message a view kept on screen after an involuntary sign-out will
// show on the sign-in form (null: no view is kept).
let held = null;

/**
 * Back to the sign-in form. An involuntary one (the token was refused, or
 * open mode ended) keeps a view that shows a one-time secret on screen
 * (a token just made: the first one ends open mode) with a notice and a
 * way on, so the secret is not lost before it is copied.
 */
function signedOut(message, voluntary = false) {
  const wasOpen = !!(ctx.session && ctx.session.open);
  if (ctx.stream) ctx.stream.stop();
  ctx.stream = null;
  setToken(null);
  ctx.session = null;
  ctx.tokenNames.clear();
  if (wasOpen && !voluntary) message = 'This server needs a token now: open mode ended when the first token was made.';
  renderIdentity();
  setLive('off');
  if (held !== null && !voluntary) return;
  if (!voluntary && current && current.view.holdsSecret && current.view.holdsSecret()) {
    held = message || '';
    document.getElementById('nav').hidden = true;
    main().prepend(h('div', { class: 'notice', role: 'alert', 'data-testid': 'signin-needed' },
      `${held || 'The server refused the token.'} Copy the secret shown below now: it is not shown again. Then `,
      h('button', { type: 'button', class: 'link', 'data-testid': 'signin-now', onclick: leaveHeld }, 'sign in'), '.'));
    return;
  }
  held = null;
  unmountCurrent();
  showLogin(message);
}

function leaveHeld() {
  const message = held;
  held = null;
  unmountCurrent();
  showLogin(message);
}

function showLogin(message) {
  document.getElementById('nav').hidden = true;
  // Masked, but not a password: password managers ignore autocomplete=off
  // and offer to save what a form of type=password sent (the form going
  // away reads as a sign-in done); a one-time code is not saved.
  const input = h('input', {
    id: 'token', type: 'password', autocomplete: 'one-time-code', spellcheck: 'false', required: true,
    placeholder: 'tm_…', 'data-testid': 'login-token',
  });
  const err = h('p', { class: 'error', 'data-testid': 'login-error', role: 'alert' }, message || '');
  const submit = h('button', { class: 'primary', type: 'submit', 'data-testid': 'login-submit' }, 'Sign in');
  const form = h('form', { class: 'panel login', 'data-testid': 'login' },
    h('h1', {}, 'Sign in'),
    h('p', {}, 'This server needs an API token. It is kept in this tab only (sessionStorage) and sent with each API call. Sign out to forget it: a closed tab reopened can still have it.'),
    h('label', { for: 'token' }, 'API token', input),
    err,
    h('div', { class: 'actions' }, submit));
  // One sign-in at a time: a double click would start the views twice.
  let signingIn = false;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (!t || signingIn) return;
    signingIn = true;
    submit.disabled = true;
    setToken(t);
    try {
      await boot();
    } catch (e) {
      setToken(null);
      err.textContent = e.status === 401 ? refusedText(e, 'That token was refused') : errText(e);
    } finally {
      signingIn = false;
      submit.disabled = false;
    }
  });
  clear(main()).append(form);
  input.focus();
}

// ---- routing ----

function parseRoute() {
  const raw = location.hash.replace(/^#/, '') || '/queues';
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean);
  const params = new URLSearchParams(query);
  // A task's page takes exactly a task id: anything else (a dot segment, a
  // backslash the URL parser reads as '/', a '%') would make its API paths
  // point somewhere else. The view says there is no such task.
  if (parts[0] === 'tasks' && parts[1]) {
    const ok = parts.length === 2 && isId(parts[1]);
    return { name: 'task', id: ok ? parts[1] : null, raw: parts.slice(1).join('/'), params };
  }
  if (parts[0] === 'webhooks') return { name: 'webhooks', id: parts[1] || null, params };
  if (['queues', 'tasks', 'tokens'].includes(parts[0])) return { name: parts[0], params };
  return { name: 'queues', params };
}

/** The views only some roles may see (ctx.can's key is the view's name), and what the others may not do. */
const REFUSED = {
  webhooks: 'see or change webhooks: only admin and client tokens may',
  tokens: 'see or make tokens: only admin tokens may',
};

const views = { queues: queuesView, tasks: tasksView, task: taskView, webhooks: webhooksView, tokens: tokensView };

function unmountCurrent() {
  if (current && current.view.unmount) current.view.unmount();
  current = null;
}

function route() {
  if (!ctx.session) {
    if (held !== null) leaveHeld();
    return;
  }
  const r = parseRoute();
  const prevName = current && current.name;
  unmountCurrent();
  for (const a of document.querySelectorAll('#nav a')) {
    const on = a.dataset.view === r.name || (r.name === 'task' && a.dataset.view === 'tasks');
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const m = clear(main());
  if (!ctx.can.read && r.name !== 'task') {
    showWorkerHome(m);
    return;
  }
  const title = { queues: 'Queues', tasks: 'Tasks', task: 'Task', webhooks: 'Webhooks', tokens: 'Tokens' }[r.name];
  document.title = `${title} · taskmill`;
  if (REFUSED[r.name] && !ctx.can[r.name]) {
    // Reached by a link or a typed address: say why up front rather than
    // show a form the server would refuse.
    m.append(h('section', { class: 'panel' }, h('h1', {}, title),
      h('p', { 'data-testid': 'role-refused' }, `A '${ctx.session.role}' token may not ${REFUSED[r.name]}.`)));
    current = { name: r.name, route: r, view: {} };
  } else {
    current = { name: r.name, route: r, view: views[r.name].mount(m, r, ctx) || {} };
  }
  // Moving to another view puts the focus on its content (for keyboards
  // and screen readers); paging within a view leaves it where it was.
  if (prevName && prevName !== r.name) m.focus();
}

/** A worker token may read a task by its id, and nothing else the views list. */
function showWorkerHome(m) {
  const input = h('input', { id: 'task-id', required: true, pattern: '[0-9a-f]{32}', spellcheck: 'false', 'data-testid': 'task-id-input' });
  const form = h('form', { class: 'panel' },
    h('h1', {}, 'A worker token'),
    h('p', {}, 'Worker tokens claim and work tasks; they cannot list tasks or queues. You can open a task by its id.'),
    h('label', { for: 'task-id' }, 'Task id', input),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Open')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    location.hash = `#/tasks/${encodeURIComponent(input.value.trim())}`;
  });
  m.append(form);
  current = { name: 'worker', route: null, view: {} };
}

// ---- start ----

async function boot() {
  const who = await whoami();
  ctx.session = who;
  ctx.can = permsOf(who.role);
  document.getElementById('nav').hidden = false;
  renderIdentity();
  if (ctx.can.tokens) {
    api('GET', '/v1/tokens').then((r) => {
      for (const t of r.tokens || []) ctx.tokenNames.set(t.id, t.name || t.role);
    }).catch(() => {});
  }
  await startStream();
  route();
}

async function start() {
  onUnauthenticated((e) => signedOut(refusedText(e)));
  window.addEventListener('hashchange', route);
  document.getElementById('signout').addEventListener('click', () => signedOut('', true));
  // The skip link moves the focus; following its href would change the route.
  document.querySelector('.skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    main().focus();
  });
  try {
    await boot();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      const had = getToken();
      setToken(null);
      showLogin(had ? refusedText(e, 'The saved token was refused') : '');
      return;
    }
    const why = startFailure(e);
    clear(main()).append(h('div', { class: 'panel', 'data-testid': 'start-failed', 'data-status': String(e.status ?? '') },
      h('h1', { 'data-testid': 'start-failed-title' }, why.title),
      h('p', { class: 'error', 'data-testid': 'start-failed-text' }, why.text),
      h('button', { onclick: () => location.reload() }, 'Try again')));
  }
}

/**
 * What stopped the page at start-up, said as what it is: no answer at
 * all, a refusal (403: open mode refuses a page reached under another
 * name or from another origin), the server busy (429, 503), or any other
 * status; a fault of the page itself is not the server's.
 */
function startFailure(e) {
  if (!(e instanceof ApiError)) {
    console.error('taskmill: the page could not start', e);
    return { title: 'The page could not start', text: 'A fault in this page stopped it (the browser console has the details).' };
  }
  const said = e.message ? `The server said: ${e.message}` : '';
  if (e.status === 0) return { title: 'The server does not answer', text: 'No answer came: is it running, and is this its address?' };
  if (e.status === 403) return { title: 'The server refused this page', text: `${said}${e.field ? ` (${e.field})` : ''}` };
  if (e.status === 429 || e.status === 503) {
    return { title: 'The server is busy or unavailable', text: `Try again in a moment. ${said}`.trim() };
  }
  return { title: `The server answered with an error (${e.status})`, text: said };
}

start();
