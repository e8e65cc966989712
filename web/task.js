// task.js: one task's page. Its phase and progress (ratio, percent,
// message, item counts), per-item progress, messages by level, attempts
// (GET /v1/tasks/ID/attempts), lease and timings, params, result, returns
// and attributes; its children as a tree with their progress (GET
// /v1/tasks?parent_id=); its event timeline with who caused each event;
// and the actions the viewer's role may take.
//
// Live: the task's own stream (/v1/tasks/ID/events?since=0) fills the
// timeline from the log and then follows it; each event carries the task,
// and a newer version re-renders the sections whose data changed. The
// app's stream (/v1/events) brings the children's changes.

import { api, qs } from './api.js';
import {
  h, add, clear, timeEl, shortId, phaseBadge, pausedBadge, progressBar, setProgress, prettyJson,
  PHASES, TERMINAL, toast, confirmDialog, fmtNum, fmtDuration, throttle, errText, isId,
} from './dom.js';
import { EventStream, latestByTask } from './live.js';

const LEVELS = ['INFO', 'WARN', 'ERROR'];
const TIMELINE_MAX = 2000; // entries kept on the page; older ones are dropped from view
const CHILDREN_PAGE = 200;

/** Which controls a phase allows (docs/api.md §3.2, §7.5, §7.6); none for a phase it does not know. */
function legal(t) {
  if (!PHASES.includes(t.phase)) return { cancel: false, retry: false, pause: false, resume: false, delete: false };
  const term = TERMINAL.has(t.phase);
  return {
    cancel: ['pending', 'waiting', 'running'].includes(t.phase),
    retry: t.phase === 'failed' || t.phase === 'cancelled',
    pause: !term && !t.paused,
    resume: !term && !!t.paused,
    delete: term,
  };
}

/** Puts the focus on a box's control again: the same one, or its counterpart (alt: Resume for Pause), or the first one enabled. */
function refocus(box, focusId, alt) {
  const find = (id) => id && box.querySelector(`[data-testid="${CSS.escape(id)}"]:not([disabled])`);
  const again = find(focusId) || find(alt[focusId]) || box.querySelector('button:not([disabled])');
  if (again) again.focus();
}

/** Replaces a section's content only when its data changed (keeps focus and scroll elsewhere). */
const sigs = new WeakMap();
function section(box, data, build, alt = {}) {
  const sig = JSON.stringify(data);
  if (sigs.get(box) === sig) return;
  sigs.set(box, sig);
  const a = document.activeElement;
  const focusId = a && box.contains(a) && a.dataset ? a.dataset.testid : null;
  clear(box).append(...[].concat(build()).filter(Boolean));
  if (focusId) refocus(box, focusId, alt);
}

// The action whose button had the focus, and the one that takes it when that one is disabled.
const ACTION_ALT = { 'action-pause': 'action-resume', 'action-resume': 'action-pause', 'action-cancel': 'action-retry' };

function jsonPanel(key, title, value) {
  return h('section', { class: 'panel', 'aria-labelledby': `${key}-h`, 'data-testid': key },
    h('h2', { id: `${key}-h` }, title), prettyJson(value));
}

function summary(ev, actorLabel) {
  const t = ev.task || {};
  const k = ev.kind.replace(/^task\./, '');
  let what;
  switch (k) {
    case 'created': what = `created in queue ${t.queue}`; break;
    case 'progress': what = `${t.progress ? `${t.progress.percent}%` : ''}${t.progress && t.progress.message ? ` · ${t.progress.message}` : ''}`; break;
    case 'message': {
      const m = t.messages && t.messages[t.messages.length - 1];
      what = m ? `${m.level}: ${m.text}` : 'message';
      break;
    }
    case 'lease': what = `lease extended to ${t.lease ? new Date(t.lease.expires_at).toLocaleTimeString() : '?'}`; break;
    case 'running': what = `claimed by ${t.lease ? t.lease.worker : '?'} (attempt ${t.attempt})`; break;
    case 'failed': case 'waiting': what = t.error ? `error: ${t.error}` : ''; break;
    default: what = '';
  }
  return { k, what, actor: actorLabel(ev.actor) };
}

/** The page of a route whose id is not a task id: it asks the server nothing. */
function missing(root, what) {
  add(clear(root), h('p', {}, h('a', { href: '#/tasks' }, '« Tasks')),
    h('h1', {}, 'No such task'),
    h('p', { 'data-testid': 'task-missing' }, what));
}

export function mount(root, route, ctx) {
  const id = route.id;
  if (!isId(id)) {
    missing(root, `'${route.raw || ''}' is not a task id (32 lowercase hex digits).`);
    return {};
  }
  const path = `/v1/tasks/${encodeURIComponent(id)}`; // encoded anyway: what goes into a path is encoded
  let task = null;
  let gone = false;
  let deleted = false;
  let msgLevel = 'all';
  let showBeats = false;
  let pruned = false; // the server's retention removed some of this task's events
  let readFailed = false; // the note says a read of the task failed
  let drawFailed = false; // the note says this page failed to show the task
  let acting = null; // the action whose request is on its way, or null
  const timeline = []; // events, oldest first
  const seen = new Set();
  const children = new Map(); // id -> {li, task, bar, parts}
  const childLists = new Map(); // parent id -> ul of its loaded children

  const head = h('div', { 'data-testid': 'task-head' });
  const actions = h('div', { class: 'actions task-actions', 'data-testid': 'task-actions', role: 'group', 'aria-label': 'Actions on this task' });
  const note = h('div', { class: 'notice', hidden: true, 'data-testid': 'task-note', role: 'status' });
  const bar = progressBar(0, { big: true, label: 'Progress of this task', testid: 'progress-bar' });
  const progressText = h('div', { class: 'progress-line' });
  const items = h('div', { 'data-testid': 'items' });
  const messages = h('div', { 'data-testid': 'messages' });
  const attempts = h('div', { class: 'scroll', 'data-testid': 'attempts' }, h('p', { class: 'muted' }, 'Loading…'));
  const timings = h('div', { 'data-testid': 'timings' });
  const errorBox = h('div', { 'data-testid': 'task-error' });
  const data = h('div', { class: 'grid4', 'data-testid': 'task-data' });
  const kidsHead = h('p', { class: 'muted', 'data-testid': 'children-summary' });
  const kids = h('ul', { class: 'tree', 'data-testid': 'children', 'aria-label': 'Children' });
  // Shown once the task has children (a leaf task has no use for it).
  const kidsBox = h('section', { class: 'panel', 'aria-labelledby': 'children-h', hidden: true },
    h('h2', { id: 'children-h' }, 'Children'), kidsHead, kids);
  const timelineList = h('ol', { class: 'plain timeline', 'data-testid': 'timeline', 'aria-label': 'Events, newest first' });
  const timelineNote = h('p', { class: 'muted', 'data-testid': 'timeline-note' });
  const beats = h('input', { type: 'checkbox', id: 'tl-beats', 'data-testid': 'timeline-heartbeats' });
  beats.addEventListener('change', () => {
    showBeats = beats.checked;
    renderTimeline(true);
  });

  add(root,
    h('p', {}, h('a', { href: '#/tasks' }, '« Tasks')),
    head, note,
    ctx.can.control ? actions : null,
    h('section', { class: 'panel', 'aria-labelledby': 'progress-h' },
      h('h2', { id: 'progress-h' }, 'Progress'), bar, progressText, errorBox),
    kidsBox,
    h('div', { class: 'grid2' },
      h('section', { class: 'panel', 'aria-labelledby': 'items-h' }, h('h2', { id: 'items-h' }, 'Items'), items),
      h('section', { class: 'panel', 'aria-labelledby': 'messages-h' }, h('h2', { id: 'messages-h' }, 'Messages'), messages)),
    h('div', { class: 'grid2' },
      h('section', { class: 'panel', 'aria-labelledby': 'timings-h' }, h('h2', { id: 'timings-h' }, 'Lease and timings'), timings),
      h('section', { class: 'panel', 'aria-labelledby': 'attempts-h' }, h('h2', { id: 'attempts-h' }, 'Attempts'), attempts)),
    h('section', { 'aria-label': 'Data' }, data),
    h('section', { class: 'panel', 'aria-labelledby': 'timeline-h' },
      h('h2', { id: 'timeline-h' }, 'Timeline'),
      h('label', { class: 'inline', for: 'tl-beats' }, beats, 'Show heartbeats (progress and lease events)'),
      timelineNote, timelineList),
  );

  // ---- rendering ----

  // "Running for" and a running attempt's "Took" count on by themselves:
  // once a second the ticker rewrites each such span in place (nothing is
  // drawn again, nothing is asked of the server).
  const since = (iso) => h('span', { 'data-since': iso }, fmtDuration(Date.now() - Date.parse(iso)));
  const ticker = setInterval(() => {
    for (const el of root.querySelectorAll('[data-since]')) el.textContent = fmtDuration(Date.now() - Date.parse(el.dataset.since));
  }, 1000);

  function render() {
    if (!task) return;
    const t = task;
    section(head, [t.name, t.type, t.phase, t.paused, t.completion_status, t.queue, t.namespace, t.priority, t.awaiting_children], () => [
      h('h1', {}, t.name || t.type, ' ', phaseBadge(t.phase, 'task-phase'), ' ', t.paused ? pausedBadge('task-paused') : null),
      h('p', { class: 'muted' },
        h('span', { class: 'mono', 'data-testid': 'task-id' }, t.id), ' · type ', t.type, ' · queue ',
        h('a', { href: `#/tasks${qs({ queue: t.queue })}` }, t.queue), ' · namespace ', t.namespace,
        ' · priority ', String(t.priority),
        t.completion_status ? [' · ', h('strong', { 'data-testid': 'completion-status' }, t.completion_status)] : null,
        t.awaiting_children ? ' · completed by its worker, waiting for its children' : null),
      t.description ? h('p', {}, t.description) : null,
    ]);
    if (ctx.can.control) renderActions(t);
    setProgress(bar, t.progress.ratio, t.phase);
    const p = t.progress;
    section(progressText, [p, t.phase], () => [
      h('span', { class: 'pct', 'data-testid': 'progress-percent' }, `${p.percent}%`),
      h('span', { class: 'muted', 'data-testid': 'progress-ratio', title: 'ratio' }, `ratio ${p.ratio}`),
      h('span', { 'data-testid': 'progress-message' }, p.message || ''),
      h('span', { 'data-testid': 'progress-counts' },
        `processed ${fmtNum(p.processed)} · processing ${fmtNum(p.processing)} · pending ${fmtNum(p.pending)}`),
      h('span', { class: 'muted' }, 'updated ', timeEl(p.updated_at)),
    ]);
    section(errorBox, [t.error], () => (t.error ? h('p', { class: 'error' }, h('strong', {}, 'Last error: '), h('span', { 'data-testid': 'error-text' }, t.error)) : null));
    section(items, t.items, () => renderItems(t.items));
    section(messages, [t.messages, msgLevel], () => renderMessages(t.messages));
    section(timings, [t.lease, t.created_at, t.scheduled_at, t.started_at, t.updated_at, t.completed_at, t.attempt, t.retries, t.max_retries, t.version, t.parent_id, t.launcher], () => renderTimings(t));
    section(data, [t.params, t.result, t.returns, t.attributes, t.target, t.definition], () => [
      jsonPanel('params', 'Params', t.params),
      jsonPanel('result', 'Result', t.result),
      jsonPanel('returns', 'Returns', t.returns),
      jsonPanel('attributes', 'Attributes', t.attributes),
      t.target ? jsonPanel('target', 'Target', t.target) : null,
      t.definition ? jsonPanel('definition', 'Definition', t.definition) : null,
    ]);
    const c = t.progress;
    const n = c.processed + c.processing + c.pending;
    kidsHead.textContent = children.size || n
      ? `Rolled up from the children: ${fmtNum(c.processed)} processed, ${fmtNum(c.processing)} processing, ${fmtNum(c.pending)} pending.`
      : '';
  }

  function renderActions(t) {
    const can = legal(t);
    const list = ['cancel', 'retry', 'pause', 'resume'].concat(ctx.can.delete ? ['delete'] : []);
    // While an action runs, every button waits for its answer (a double click sends it once).
    section(actions, [can, deleted, list, acting], () => list.map((a) => h('button', {
      type: 'button', 'data-testid': `action-${a}`, class: a === 'delete' ? 'danger' : '',
      disabled: deleted || !can[a] || acting !== null,
      title: acting ? `waiting for the answer to ${acting}` : can[a] ? '' : `not possible while the task is ${t.phase}${t.paused ? ' and paused' : ''}`,
      onclick: () => act(a),
    }, a[0].toUpperCase() + a.slice(1))), ACTION_ALT);
    actions.setAttribute('aria-busy', String(acting !== null));
  }

  function renderItems(list) {
    if (!list.length) return h('p', { class: 'muted' }, 'No items.');
    const shown = list.slice(0, 500);
    return [
      h('div', { class: 'scroll' }, h('table', { 'data-testid': 'items-table' },
        h('thead', {}, h('tr', {}, ['Item', 'Progress', '', 'Message', 'Updated'].map((c, i) => h('th', { scope: 'col', class: i === 4 ? 'hide-narrow' : '' }, c)))),
        h('tbody', {}, shown.map((it) => h('tr', { 'data-testid': 'item-row' },
          h('th', { scope: 'row' }, it.name),
          h('td', { class: 'cell-progress' }, progressBar(it.progress, { label: `Progress of ${it.name}` })),
          h('td', { class: 'num' }, `${Math.floor((it.progress || 0) * 100)}%`),
          h('td', {}, it.message || ''),
          h('td', { class: 'hide-narrow' }, timeEl(it.updated_at))))))),
      list.length > shown.length ? h('p', { class: 'muted' }, `${list.length - shown.length} more items are in the task's JSON.`) : null,
    ];
  }

  function renderMessages(list) {
    const counts = { all: list.length };
    for (const l of LEVELS) counts[l] = list.filter((m) => m.level === l).length;
    const tabs = h('div', { class: 'tabs', role: 'group', 'aria-label': 'Show messages of level' },
      ['all', ...LEVELS].map((l) => h('button', {
        type: 'button', 'aria-pressed': String(msgLevel === l), 'data-testid': `messages-level-${l}`,
        onclick: () => {
          msgLevel = l;
          render();
        },
      }, `${l === 'all' ? 'All' : l} (${counts[l]})`)));
    const shown = list.filter((m) => msgLevel === 'all' || m.level === msgLevel).slice(-300).reverse();
    return [tabs, shown.length
      ? h('ul', { class: 'plain msgs', 'aria-label': 'Messages, newest first' }, shown.map((m) => h('li', { 'data-testid': 'message', 'data-level': m.level },
        h('span', { class: 'muted' }, timeEl(m.at)),
        h('span', { class: `badge lvl-${m.level}` }, m.level),
        h('span', {}, m.text),
        m.key ? h('span', { class: 'muted mono' }, m.key) : null)))
      : h('p', { class: 'muted' }, 'No messages.')];
  }

  function renderTimings(t) {
    const dl = [];
    const kv = (k, v, testid) => dl.push(h('dt', {}, k), h('dd', { 'data-testid': testid }, v));
    kv('Lease', t.lease ? [t.lease.worker, ' until ', timeEl(t.lease.expires_at)] : 'none', 'lease');
    kv('Attempt', `${t.attempt}; automatic retries ${t.retries} of ${t.max_retries}`, 'attempt');
    kv('Created', timeEl(t.created_at));
    if (t.scheduled_at) kv('Scheduled', timeEl(t.scheduled_at));
    kv('Started', timeEl(t.started_at));
    kv('Updated', timeEl(t.updated_at));
    kv('Finished', timeEl(t.completed_at));
    if (t.started_at && t.completed_at) kv('Ran for', fmtDuration(Date.parse(t.completed_at) - Date.parse(t.started_at)), 'ran-for');
    else if (t.started_at) kv('Running for', since(t.started_at), 'running-for');
    kv('Version', String(t.version));
    if (t.parent_id) kv('Parent', h('a', { href: `#/tasks/${encodeURIComponent(t.parent_id)}`, class: 'mono' }, shortId(t.parent_id)));
    if (t.launcher) kv('Launcher', t.launcher);
    return h('dl', { class: 'kv' }, dl);
  }

  // ---- attempts ----

  let attemptsSeq = 0; // only the newest read is drawn: an older one answering last shows an attempt as it was
  async function loadAttempts() {
    const seq = ++attemptsSeq;
    if (!ctx.can.read) {
      // GET /v1/tasks/ID/attempts is for the roles that may list (not workers).
      section(attempts, 'refused', () => h('p', { class: 'muted' },
        `A '${ctx.session.role}' token may not read the attempt history: only admin, client and reader tokens may.`));
      return;
    }
    try {
      const r = await api('GET', `${path}/attempts`);
      if (gone || seq !== attemptsSeq) return;
      const list = r.attempts || [];
      section(attempts, list, () => (list.length ? h('table', { 'data-testid': 'attempts-table' },
        h('thead', {}, h('tr', {}, ['#', 'Worker', 'Started', 'Ended', 'Took', 'Outcome', 'Error'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, list.map((a) => h('tr', { 'data-testid': 'attempt-row' },
          h('td', { class: 'num' }, String(a.attempt)),
          h('td', {}, a.worker || '—'),
          h('td', {}, timeEl(a.started_at)),
          h('td', {}, timeEl(a.ended_at)),
          a.started_at && !a.ended_at
            ? h('td', { class: 'num', 'data-testid': 'attempt-took' }, since(a.started_at))
            : h('td', { class: 'num', 'data-testid': 'attempt-took' }, a.started_at ? fmtDuration(Date.parse(a.ended_at) - Date.parse(a.started_at)) : '—'),
          h('td', { 'data-testid': 'attempt-outcome' }, h('span', { class: `badge ph-${{ completed: 'completed', failed: 'failed', running: 'running', cancelled: 'cancelled' }[a.outcome] || 'stopping'}` }, a.outcome)),
          h('td', { class: 'error' }, a.error || '')))))
        : h('p', { class: 'muted' }, 'Not claimed yet.')));
    } catch (e) {
      if (gone || seq !== attemptsSeq) return;
      section(attempts, ['err', e.message], () => h('p', { class: 'muted' }, `The attempt history is not available: ${errText(e)}`));
    }
  }
  const attemptsLater = throttle(loadAttempts, 1000);

  // ---- children ----

  function childNode(t) {
    const b = progressBar(t.progress.ratio, { phase: t.phase, label: `Progress of ${t.name || t.type}` });
    const pct = h('span', { class: 'muted' }, `${t.progress.percent}%`);
    const phase = h('span', {}, phaseBadge(t.phase), t.paused ? [' ', pausedBadge()] : null);
    const toggle = h('button', { type: 'button', class: 'link', 'aria-expanded': 'false', 'aria-label': `Children of ${t.name || t.type}` }, '▸ children');
    const li = h('li', { 'data-testid': `child-${t.id}`, 'data-task-id': t.id },
      h('div', { class: 'node' },
        h('span', {}, h('a', { href: `#/tasks/${encodeURIComponent(t.id)}` }, t.name || t.type), ' ', h('span', { class: 'id' }, shortId(t.id))),
        phase, b, h('span', {}, pct, ' ', toggle)));
    const node = { li, task: t, bar: b, pct, phase };
    toggle.addEventListener('click', async () => {
      const open = toggle.getAttribute('aria-expanded') === 'true';
      toggle.textContent = open ? '▸ children' : '▾ children';
      if (open) {
        toggle.setAttribute('aria-expanded', 'false');
        const ul = childLists.get(t.id);
        if (ul) ul.remove();
        childLists.delete(t.id);
        return;
      }
      toggle.setAttribute('aria-expanded', 'true');
      const ul = h('ul', { class: 'tree' });
      li.append(ul);
      childLists.set(t.id, ul);
      await loadChildren(t.id, ul);
    });
    children.set(t.id, node);
    return li;
  }

  function updateChild(node, t) {
    setProgress(node.bar, t.progress.ratio, t.phase);
    node.pct.textContent = `${t.progress.percent}%`;
    const phase = h('span', {}, phaseBadge(t.phase), t.paused ? [' ', pausedBadge()] : null);
    node.phase.replaceWith(phase);
    node.phase = phase;
    node.task = t;
  }

  const childReads = new WeakMap(); // ul -> the number of its newest read
  async function loadChildren(parent, ul) {
    const seq = (childReads.get(ul) || 0) + 1;
    childReads.set(ul, seq);
    // Only the newest read of a list still shown is drawn: a list collapsed
    // (and opened again) meanwhile, or read again since, drops the answer,
    // which would take the live updates of the children shown.
    const stale = () => gone || childLists.get(parent) !== ul || childReads.get(ul) !== seq;
    try {
      const r = await api('GET', `/v1/tasks${qs({ parent_id: parent, order: 'asc', limit: CHILDREN_PAGE })}`);
      if (stale()) return;
      clear(ul).append(...r.tasks.map(childNode));
      if (r.tasks.length && ul === kids) kidsBox.hidden = false;
      if (!r.tasks.length) ul.append(h('li', { class: 'muted' }, 'No children.'));
      if (r.next_cursor) ul.append(h('li', {}, h('a', { href: `#/tasks${qs({ parent_id: parent })}` }, `More children: see them all in the task list`)));
    } catch (e) {
      if (stale()) return;
      clear(ul).append(h('li', { class: 'muted' }, `The children cannot be listed: ${errText(e)}`));
      if (ul === kids) kidsBox.hidden = false;
    }
  }

  // ---- timeline ----

  function renderTimeline(all) {
    const visible = (ev) => showBeats || !/^task\.(progress|lease)$/.test(ev.kind);
    if (all) clear(timelineList);
    const start = all ? 0 : renderTimeline.done || 0;
    for (let i = start; i < timeline.length; i++) {
      const ev = timeline[i];
      if (!visible(ev)) continue;
      const s = summary(ev, ctx.actorLabel);
      timelineList.prepend(h('li', { 'data-testid': 'timeline-entry', 'data-kind': ev.kind, 'data-seq': String(ev.seq) },
        h('span', { class: 'muted' }, timeEl(ev.at)),
        h('span', { class: 'kind' }, s.k),
        ev.cause ? h('span', { class: 'muted' }, `(${ev.cause})`) : null,
        h('span', {}, s.what),
        h('span', { class: 'actor', 'data-testid': 'timeline-actor', 'data-actor': ev.actor ?? '' }, `by ${s.actor}`)));
    }
    renderTimeline.done = timeline.length;
    while (timelineList.children.length > TIMELINE_MAX) timelineList.lastElementChild.remove();
    const hidden = timeline.filter((ev) => !visible(ev)).length;
    timelineNote.textContent = `${fmtNum(timeline.length)} event${timeline.length === 1 ? '' : 's'}` +
      (hidden ? ` (${fmtNum(hidden)} heartbeats hidden)` : '') + '.' +
      (pruned ? ' Older events were removed by the server\'s retention.' : '');
  }

  // ---- live ----

  function takeTask(t) {
    if (!t || t.truncated) {
      refetch.call();
      return;
    }
    if (task && (t.version || 0) <= (task.version || 0)) return;
    if ((readFailed || drawFailed) && !deleted) note.hidden = true; // what failed is here now
    readFailed = false;
    drawFailed = false;
    const phaseChanged = !task || task.phase !== t.phase || task.attempt !== t.attempt;
    task = t;
    try {
      render();
    } catch (e) {
      // A fault of this page, not the server's: its message means nothing
      // to the viewer and must not read as an answer. The console has it.
      console.error('taskmill: could not show the task', e);
      drawFailed = true;
      if (!deleted) {
        note.hidden = false;
        note.textContent = 'Could not show the task: this page failed to draw it (the browser console has the details).';
      }
    }
    if (phaseChanged) attemptsLater.call();
  }

  const stream = ctx.can.read ? new EventStream(`${path}/events?since=0`, {
    onevents(batch) {
      for (const ev of batch) {
        if (seen.has(ev.seq)) continue;
        seen.add(ev.seq);
        timeline.push(ev);
        if (ev.kind === 'task.deleted') {
          deleted = true;
          note.hidden = false;
          note.textContent = 'This task was deleted. What you see is its last state.';
        }
      }
      if (timeline.length > TIMELINE_MAX * 2) {
        timeline.splice(0, timeline.length - TIMELINE_MAX);
        renderTimeline(true);
      } else {
        renderTimeline(false);
      }
      const last = batch[batch.length - 1];
      if (last && last.task && !loading) takeTask(last.task);
      else if (last && last.task) early = last.task;
      // Deleted: no action applies any more (the event may bring no newer version).
      if (deleted && task && ctx.can.control) renderActions(task);
    },
    onpruned() {
      pruned = true;
      refetch.call();
      renderTimeline(false);
    },
    onstatus(status, error) {
      const why = error && error.message ? `: ${error.message}` : ` (${status})`;
      timelineNote.textContent = status === 403 ? `This token's role may not read the event log${why}.` : `The timeline is not available${why}.`;
    },
  }) : null;
  if (!stream) timelineNote.textContent = 'This token may not read the event log.';

  let loading = true;
  let early = null;
  let loadSeq = 0; // only the newest read counts: an older one failing last must not say the task cannot be read
  async function load() {
    const seq = ++loadSeq;
    let t;
    // Only the read is tried here: what fails in drawing it is not the server's.
    try {
      t = await api('GET', path);
    } catch (e) {
      if (gone || seq !== loadSeq) return;
      loading = false;
      if (e.status === 404 && deleted) return; // the note says so already
      if (e.status === 404 && !task) {
        missing(root, `There is no task '${id}' that this token can see.`);
        gone = true;
        if (stream) stream.stop();
        return;
      }
      note.hidden = false;
      note.textContent = `Could not read the task: ${errText(e)}`;
      readFailed = true;
      return;
    }
    if (gone || seq !== loadSeq) return;
    loading = false;
    if (task && t.version <= task.version) return;
    task = null;
    takeTask(t);
    if (early) takeTask(early);
    early = null;
    loadAttempts();
  }
  const refetch = throttle(load, 1000);

  async function act(a) {
    if (acting) return;
    if (a === 'delete') {
      const ok = await confirmDialog('Delete this task?', `Delete '${task.name || task.type}' (${task.id})? It cannot be undone.`, 'Delete');
      if (!ok || acting) return;
    }
    const had = actions.contains(document.activeElement) ? document.activeElement.dataset.testid : null;
    acting = a;
    renderActions(task);
    try {
      const r = await api(a === 'delete' ? 'DELETE' : 'POST', a === 'delete' ? path : `${path}/${a}`);
      if (a === 'delete') {
        toast('Task deleted.');
        if (!gone) location.hash = '#/tasks'; // not when the viewer went elsewhere meanwhile
        return;
      }
      toast({ cancel: r.phase === 'stopping' ? 'Cancel requested: the worker stops at its next heartbeat.' : 'Task cancelled.', retry: 'Task queued again.', pause: 'Task paused.', resume: 'Task resumed.' }[a]);
      takeTask(r);
    } catch (e) {
      toast(`Could not ${a} the task: ${errText(e)}`, true);
    } finally {
      acting = null;
      if (!gone && task) {
        renderActions(task);
        // Disabled, the button lost the focus: give it back (or to its counterpart).
        const f = document.activeElement;
        if (had && (!f || f === document.body || actions.contains(f))) refocus(actions, had, ACTION_ALT);
      }
    }
  }

  load();
  if (ctx.can.read) {
    loadChildren(id, kids);
    childLists.set(id, kids);
  }
  if (stream) stream.start();

  return {
    // The app's stream: the children (at every level shown) and this task too.
    onevents(batch) {
      for (const [cid, ev] of latestByTask(batch)) {
        if (cid === id) continue; // the task's own stream has it
        const node = children.get(cid);
        if (node) {
          if (ev.kind === 'task.deleted') node.li.remove();
          else if (!ev.task.truncated && (ev.task.version || 0) > (node.task.version || 0)) updateChild(node, ev.task);
          continue;
        }
        const ul = ev.kind === 'task.created' && childLists.get(ev.task.parent_id);
        if (ul) {
          const empty = ul.querySelector('li.muted');
          if (empty) empty.remove();
          ul.append(childNode(ev.task));
          if (ul === kids) kidsBox.hidden = false;
        }
      }
    },
    refresh() {
      load();
      loadChildren(id, kids);
    },
    onreconnect() {
      load();
      loadChildren(id, kids);
    },
    unmount() {
      gone = true;
      clearInterval(ticker);
      if (stream) stream.stop();
      attemptsLater.cancel();
      refetch.cancel();
    },
  };
}
