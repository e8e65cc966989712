// dom.js: small helpers to build DOM nodes, format times and values, and
// show the shared pieces (phase badges, progress bars, confirm dialog,
// toasts). No framework: views build nodes with h() and update them in place.

const SVGNS = 'http://www.w3.org/2000/svg';

function applyAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k in el && typeof v !== 'string' && !(el instanceof SVGElement)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** h('button', {class: 'x', onclick: f, 'data-testid': 'y'}, 'text', child, [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

/** The same for SVG elements. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

/** Appends children as h() does (skipping null and false, flattening arrays). */
export function add(el, ...children) {
  append(el, children);
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

// ---- times: the viewer's zone on screen, UTC in the tooltip ----

const dateFmt = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
});
const clockFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hour12: false });

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : dateFmt.format(d);
}

export function fmtClock(ms) {
  return clockFmt.format(new Date(ms));
}

/** <time> in the local zone; the title shows UTC. */
export function timeEl(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: iso, title: `${iso.replace('T', ' ').replace('Z', '')} UTC` }, fmtTime(iso));
}

/**
 * A duration for people: '850 ms', '9.5 s', '42 s', '1 min 5 s', '2 h 3 min'.
 * Rounded once, to the unit shown, before it is split (59.6 s is '1 min
 * 0 s', never '60 s'); below 0 (a clock ahead of the server's) is 0.
 */
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  ms = Math.max(0, ms);
  if (Math.round(ms) < 1000) return `${Math.round(ms)} ms`;
  const tenths = Math.round(ms / 100);
  if (tenths < 100) return `${(tenths / 10).toFixed(1)} s`;
  const sec = Math.round(ms / 1000);
  if (sec < 60) return `${sec} s`;
  const m = Math.floor(sec / 60);
  if (m < 60) return `${m} min ${sec % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function fmtNum(n) {
  return n === null || n === undefined ? '—' : Number(n).toLocaleString();
}

/**
 * ISO UTC -> the value of an <input type="datetime-local" step="1"> in the
 * viewer's zone, with its seconds when it has any (its milliseconds are
 * not shown: the Tasks view keeps a value it did not change as it was).
 */
export function isoToLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n, w = 2) => String(n).padStart(w, '0');
  const sec = d.getSeconds() || d.getMilliseconds() ? `:${p(d.getSeconds())}` : '';
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}${sec}`;
}

/** The value of a datetime-local input (viewer's zone) -> ISO UTC, or ''. */
export function localInputToIso(v) {
  if (!v) return '';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

/**
 * Is s an id as the v1 API takes a task's or a webhook's in a path: 32
 * lowercase hex digits (src/common/id.c's id_is_valid; an id prefix is
 * only a list filter)? Nothing else from an address goes into such a path.
 */
export function isId(s) {
  return typeof s === 'string' && /^[0-9a-f]{32}$/.test(s);
}

export function shortId(id) {
  return id ? `${id.slice(0, 8)}…${id.slice(-4)}` : '';
}

export function prettyJson(v) {
  return h('pre', { class: 'json' }, JSON.stringify(v, null, 2));
}

// ---- task pieces ----

export const PHASES = ['pending', 'waiting', 'running', 'stopping', 'completed', 'failed', 'cancelled'];
export const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export function phaseBadge(phase, testid) {
  return h('span', { class: `badge ph-${phase}`, 'data-testid': testid, 'data-phase': phase }, phase);
}

export function pausedBadge(testid) {
  return h('span', { class: 'badge paused', 'data-testid': testid, title: 'paused: not handed to workers' }, 'paused');
}

/** A progress bar with role=progressbar; ratio 0..1. */
export function progressBar(ratio, { big = false, label = 'Progress', phase = '', testid } = {}) {
  const pct = Math.max(0, Math.min(100, Math.floor((ratio || 0) * 100)));
  const fill = h('div', { class: 'fill' });
  fill.style.width = `${(ratio || 0) * 100}%`;
  const cls = ['bar'];
  if (big) cls.push('big');
  if (phase === 'completed') cls.push('done');
  if (phase === 'failed') cls.push('bad');
  return h('div', {
    class: cls.join(' '), role: 'progressbar', 'aria-label': label,
    'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(pct),
    'data-testid': testid, 'data-ratio': String(ratio || 0),
  }, fill);
}

/** Updates a bar made by progressBar in place (keeps its CSS transition). */
export function setProgress(bar, ratio, phase) {
  const pct = Math.max(0, Math.min(100, Math.floor((ratio || 0) * 100)));
  bar.firstChild.style.width = `${(ratio || 0) * 100}%`;
  bar.setAttribute('aria-valuenow', String(pct));
  bar.dataset.ratio = String(ratio || 0);
  bar.classList.toggle('done', phase === 'completed');
  bar.classList.toggle('bad', phase === 'failed');
}

// ---- toasts and the confirm dialog ----

let toastTimer = null;
export function toast(msg, bad = false) {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.classList.toggle('bad', bad);
  t.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => t.classList.remove('show'), bad ? 8000 : 4000);
}

/**
 * Shows a one-time secret (a token's, a webhook's) whose answer came after
 * the viewer left the view that asked for it: on top of the view shown
 * now, until dismissed or the next view, so it is not lost unseen.
 */
export function lateSecret(what, secret) {
  const box = h('div', { class: 'notice', role: 'alert', 'data-testid': 'late-secret' },
    h('p', {}, `${what} was made after you left its page. Its secret is shown this once: copy it now.`),
    h('div', { class: 'secret', tabindex: '0', 'data-testid': 'late-secret-value' }, secret),
    h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => box.remove() }, 'Done')));
  document.getElementById('main').prepend(box);
}

/** Shows the modal confirm dialog; resolves true when confirmed. */
export function confirmDialog(title, message, okLabel = 'Confirm') {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-message').textContent = message;
  const ok = dlg.querySelector('[value="ok"]');
  ok.textContent = okLabel;
  const back = document.activeElement;
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => {
      if (back && back.isConnected) back.focus();
      resolve(dlg.returnValue === 'ok');
    }, { once: true });
    dlg.showModal();
    dlg.querySelector('[value="cancel"]').focus();
  });
}

/**
 * A trailing throttle: call() runs fn at most once per ms, and always once
 * more after the last call. For re-reads driven by events (not a poll: with
 * no events, nothing runs).
 */
export function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  return {
    call() {
      if (timer) return;
      const wait = Math.max(0, last + ms - Date.now());
      timer = setTimeout(() => {
        timer = null;
        last = Date.now();
        fn();
      }, wait);
    },
    cancel() {
      clearTimeout(timer);
      timer = null;
    },
  };
}

/**
 * A short text for an error caught from api(): the server's own message. A
 * 403 without a field is the token's role refused (the message names the
 * role and the call); one with a field is a request refused for its
 * Origin or Host (open mode), which the message says as it is.
 */
export function errText(e) {
  if (!e) return '';
  const msg = e.message || String(e);
  if (e.status === 403 && !e.field) return `this token's role may not do that (${msg})`;
  return msg;
}
