// tasks.js: the Tasks view. A filter form (phase, queue, type, namespace,
// name prefix, created and updated ranges, and the server's search `q`) kept
// in the hash, so a filtered list is a link; one page of GET /v1/tasks with
// cursor paging; rows updated in place from the live stream; and a bulk
// action on every task matching the filter (POST /v1/tasks/bulk: counted
// first, confirmed, then applied with the count the viewer confirmed).

import { api, qs } from './api.js';
import {
  h, add, clear, PHASES, timeEl, shortId, phaseBadge, pausedBadge, progressBar, setProgress,
  isoToLocalInput, localInputToIso, toast, confirmDialog, fmtNum, errText,
} from './dom.js';
import { latestByTask } from './live.js';

// The list's filters, in the order of the form; each is a GET /v1/tasks parameter.
const FILTERS = ['q', 'queue', 'type', 'namespace', 'name_prefix', 'parent_id', 'created_after', 'created_before', 'updated_after', 'updated_before'];
const TIME_FILTERS = new Set(['created_after', 'created_before', 'updated_after', 'updated_before']);
const PAGE = 50;

const BULK = {
  cancel: { verb: 'Cancel', done: 'cancelled' },
  retry: { verb: 'Retry', done: 'retried' },
  pause: { verb: 'Pause', done: 'paused' },
  resume: { verb: 'Resume', done: 'resumed' },
  delete: { verb: 'Delete', done: 'deleted' },
};

/** The filter as the route's params hold it: {phase, q, queue, ...} without paging. */
function filterOf(params) {
  const f = {};
  const phase = params.get('phase');
  if (phase) f.phase = phase;
  for (const k of FILTERS) {
    const v = params.get(k);
    if (v) f[k] = v;
  }
  return f;
}

function describeFilter(f) {
  const parts = Object.entries(f).map(([k, v]) => `${k.replace('_', ' ')} ${TIME_FILTERS.has(k) ? new Date(v).toLocaleString() : `'${v}'`}`);
  return parts.length ? parts.join(', ') : 'no filter: every task you can see';
}

/** Could a new task match the filter? (q is the server's; a new task might match it.) */
function mayMatch(t, f) {
  if (f.phase && !f.phase.split(',').includes(t.phase)) return false;
  if (f.queue && t.queue !== f.queue) return false;
  if (f.type && t.type !== f.type) return false;
  if (f.namespace && t.namespace !== f.namespace) return false;
  if (f.name_prefix && !(t.name || '').startsWith(f.name_prefix)) return false;
  if (f.parent_id && t.parent_id !== f.parent_id) return false;
  return true;
}

export function mount(root, route, ctx) {
  const params = route.params;
  const filter = filterOf(params);
  const order = params.get('order') === 'asc' ? 'asc' : 'desc';
  const cursor = params.get('cursor') || '';
  const rows = new Map(); // id -> {tr, task, cells}
  let gone = false;
  let loading = true;
  let early = []; // events that came while the page was loading
  let fresh = 0;

  // ---- the filter form ----
  // A time from the address as the field first showed it, and as the
  // address had it: one the viewer did not edit is sent back unchanged
  // (the field shows no milliseconds).
  const asGiven = new Map(); // filter -> [the field's first value, the address's value]
  const field = (k, label, attrs = {}) => {
    const v = params.get(k) || '';
    const input = h('input', {
      id: `f-${k}`, name: k, 'data-testid': `filter-${k.replace('_', '-')}`,
      value: TIME_FILTERS.has(k) ? isoToLocalInput(v) : v, ...attrs,
    });
    if (TIME_FILTERS.has(k) && input.value) asGiven.set(k, [input.value, v]);
    return h('label', { for: `f-${k}` }, label, input);
  };
  const phases = new Set((params.get('phase') || '').split(',').filter(Boolean));
  const phaseBoxes = PHASES.map((p) => h('label', { class: 'inline' },
    h('input', { type: 'checkbox', name: 'phase', value: p, checked: phases.has(p), 'data-testid': `filter-phase-${p}` }), p));
  const queueList = h('datalist', { id: 'queue-names' });
  const orderSel = h('select', { id: 'f-order', name: 'order', 'data-testid': 'filter-order' },
    h('option', { value: 'desc' }, 'newest first'), h('option', { value: 'asc' }, 'oldest first'));
  orderSel.value = order;
  const showNs = ctx.can.tokens; // only an admin token sees more than one namespace
  const more = ['namespace', 'name_prefix', 'parent_id', 'created_after', 'created_before', 'updated_after', 'updated_before']
    .some((k) => params.get(k)) || order === 'asc';
  const form = h('form', { class: 'panel', role: 'search', 'aria-label': 'Filter tasks', 'data-testid': 'filters' },
    h('div', { class: 'filters' },
      h('fieldset', {}, h('legend', {}, 'Phase (none ticked: any)'), phaseBoxes),
      field('q', 'Search name, params, error', { type: 'search', placeholder: 'text' }),
      field('queue', 'Queue', { list: 'queue-names', autocomplete: 'off' }),
      field('type', 'Type'),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'primary', 'data-testid': 'filter-apply' }, 'Apply'),
        h('button', {
          type: 'button', 'data-testid': 'filter-clear',
          onclick: () => {
            if (location.hash === '#/tasks') form.reset();
            else location.hash = '#/tasks';
          },
        }, 'Clear'))),
    h('details', { open: more, 'data-testid': 'more-filters' },
      h('summary', {}, 'More filters: namespace, name, times, order'),
      h('div', { class: 'filters' },
        showNs ? field('namespace', 'Namespace') : null,
        field('name_prefix', 'Name starts with'),
        field('parent_id', 'Children of task (id)', { pattern: '[0-9a-f]{32}' }),
        field('created_after', 'Created after', { type: 'datetime-local', step: '1' }),
        field('created_before', 'Created before', { type: 'datetime-local', step: '1' }),
        field('updated_after', 'Updated after', { type: 'datetime-local', step: '1' }),
        field('updated_before', 'Updated before', { type: 'datetime-local', step: '1' }),
        h('label', { for: 'f-order' }, 'Order', orderSel))),
    queueList);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const next = {};
    const ph = fd.getAll('phase');
    if (ph.length) next.phase = ph.join(',');
    for (const k of FILTERS) {
      const v = (fd.get(k) || '').trim();
      if (!v) continue;
      const given = asGiven.get(k);
      if (!TIME_FILTERS.has(k)) next[k] = v;
      else next[k] = given && given[0] === v ? given[1] : localInputToIso(v);
    }
    if (fd.get('order') === 'asc') next.order = 'asc';
    const target = `#/tasks${qs(next)}`;
    if (location.hash === target) reload();
    else location.hash = target;
  });

  // ---- bulk actions ----
  let bulk = null;
  let bulkBusy = false; // one bulk action at a time: a double click sends it once
  const bulkResult = h('p', { 'data-testid': 'bulk-result', role: 'status' });
  const bulkSel = h('select', { id: 'bulk-action', 'data-testid': 'bulk-action' });
  const bulkApply = h('button', {
    type: 'button', 'data-testid': 'bulk-apply',
    onclick: async () => {
      if (bulkBusy) return;
      bulkBusy = true;
      bulkApply.disabled = true;
      bulkSel.disabled = true;
      bulk.setAttribute('aria-busy', 'true');
      try {
        await runBulk(bulkSel.value);
      } finally {
        bulkBusy = false;
        bulkApply.disabled = false;
        bulkSel.disabled = false;
        bulk.removeAttribute('aria-busy');
        // The dialog gave the focus back to the button while it was disabled.
        if (!gone && (!document.activeElement || document.activeElement === document.body)) bulkApply.focus();
      }
    },
  }, 'Apply to all matching…');
  if (ctx.can.control) {
    const actions = Object.keys(BULK).filter((a) => a !== 'delete' || ctx.can.delete);
    bulkSel.append(...actions.map((a) => h('option', { value: a }, BULK[a].verb)));
    bulk = h('div', { class: 'bulk', role: 'group', 'aria-labelledby': 'bulk-h' },
      h('div', { class: 'row' },
        h('span', { id: 'bulk-h', class: 'bulk-title' }, 'Bulk action'),
        h('label', { for: 'bulk-action', class: 'inline' }, 'Action', bulkSel),
        bulkApply,
        h('span', { class: 'muted small' }, 'on every task the filter matches, not only this page; the count is confirmed first')),
      bulkResult);
  }

  /** Counts, confirms and applies one bulk action; the caller keeps its controls disabled meanwhile. */
  async function runBulk(action) {
    const body = { action, filter };
    bulkResult.textContent = 'Counting…';
    let n;
    let max = null;
    try {
      const r = await api('POST', '/v1/tasks/bulk', { ...body, dry_run: true });
      n = r.matched;
      max = r.max ?? null;
    } catch (e) {
      bulkResult.textContent = `Could not count the tasks: ${errText(e)}`;
      return;
    }
    // The viewer left this list while it was counted: no dialog over another view.
    if (gone) return;
    if (!n) {
      bulkResult.textContent = 'No task matches the filter.';
      return;
    }
    if (max !== null && n > max) {
      bulkResult.textContent = `The filter matches ${fmtNum(n)} tasks; one bulk action takes at most ${fmtNum(max)}. Narrow the filter.`;
      return;
    }
    bulkResult.textContent = '';
    const ok = await confirmDialog(`${BULK[action].verb} ${fmtNum(n)} task${n === 1 ? '' : 's'}?`,
      `${BULK[action].verb} every task matching: ${describeFilter(filter)}. That is ${fmtNum(n)} task${n === 1 ? '' : 's'} now; tasks whose phase does not allow it are skipped.`,
      `${BULK[action].verb} ${fmtNum(n)}`);
    if (!ok || gone) return;
    bulkResult.textContent = `${BULK[action].verb}: applying to ${fmtNum(n)} task${n === 1 ? '' : 's'}…`;
    try {
      const r = await api('POST', '/v1/tasks/bulk', { ...body, expected: n });
      bulkResult.textContent = `${BULK[action].done} ${fmtNum(r.changed)} of ${fmtNum(r.matched)} matching task${r.matched === 1 ? '' : 's'}` +
        (r.skipped ? ` (${fmtNum(r.skipped)} skipped: not in a phase that allows it).` : '.');
      reload();
    } catch (e) {
      bulkResult.textContent = e.status === 409
        ? 'The number of matching tasks changed since it was counted; nothing was done. Apply again to count afresh.'
        : `Could not ${action} the tasks: ${errText(e)}`;
    }
  }

  // ---- the list ----
  const status = h('p', { class: 'muted', role: 'status', 'data-testid': 'tasks-status' }, 'Loading…');
  const freshNote = h('div', { class: 'notice', hidden: true, 'data-testid': 'new-tasks' });
  const tbody = h('tbody', {});
  const table = h('table', { 'data-testid': 'tasks-table' },
    h('thead', {}, h('tr', {},
      ['Task', 'Queue', 'Phase', 'Progress', 'Attempt', 'Created', 'Updated'].map((c, i) =>
        h('th', { scope: 'col', class: i === 4 ? 'num hide-narrow' : i >= 5 || i === 1 ? 'hide-narrow' : '' }, c)))),
    tbody);
  const pager = h('nav', { class: 'actions', 'aria-label': 'Pages' });

  add(root,
    h('h1', {}, 'Tasks'),
    form,
    h('section', { class: 'panel', 'aria-label': 'Tasks matching the filter' }, bulk, freshNote, status, h('div', { class: 'scroll' }, table), pager),
  );

  function cellsFor(t) {
    const phase = h('td', { 'data-testid': 'task-phase' }, phaseBadge(t.phase), ' ',
      t.paused ? pausedBadge('task-paused') : null,
      t.awaiting_children ? h('span', { class: 'muted', title: 'completed by its worker; waits for its children' }, ' awaiting children') : null);
    const bar = progressBar(t.progress.ratio, { phase: t.phase, label: `Progress of ${t.name || t.type}`, testid: 'row-progress' });
    const counts = t.progress.processed + t.progress.processing + t.progress.pending;
    const pct = h('span', { class: 'pcts' }, `${t.progress.percent}%${counts ? ` · ${fmtNum(t.progress.processed)}/${fmtNum(counts)}` : ''}`);
    return {
      phase,
      progress: h('td', { class: 'cell-progress' }, bar, pct),
      attempt: h('td', { class: 'num hide-narrow' }, String(t.attempt)),
      updated: h('td', { class: 'hide-narrow' }, timeEl(t.updated_at)),
      bar, pct,
    };
  }

  function rowFor(t) {
    const c = cellsFor(t);
    const title = t.name || t.type;
    const tr = h('tr', { 'data-testid': `task-row-${t.id}`, 'data-task-id': t.id, class: t.paused ? 'paused' : '' },
      h('td', {},
        h('a', { href: `#/tasks/${encodeURIComponent(t.id)}`, 'data-testid': 'task-link' }, title),
        h('div', { class: 'id' }, shortId(t.id), t.name ? ` · ${t.type}` : '', showNs ? ` · ${t.namespace}` : '')),
      h('td', { class: 'hide-narrow' }, t.queue),
      c.phase, c.progress, c.attempt,
      h('td', { class: 'hide-narrow' }, timeEl(t.created_at)),
      c.updated);
    rows.set(t.id, { tr, task: t, c });
    return tr;
  }

  function updateRow(row, t) {
    const c = cellsFor(t);
    row.c.phase.replaceWith(c.phase);
    row.c.attempt.replaceWith(c.attempt);
    row.c.updated.replaceWith(c.updated);
    // The bar is kept, so its width moves smoothly.
    setProgress(row.c.bar, t.progress.ratio, t.phase);
    row.c.pct.replaceWith(c.pct);
    row.c = { ...c, progress: row.c.progress, bar: row.c.bar };
    row.task = t;
    row.tr.classList.toggle('paused', !!t.paused);
  }

  function apply(batch) {
    for (const [id, ev] of latestByTask(batch)) {
      const row = rows.get(id);
      if (!row) {
        if (ev.kind === 'task.created' && !cursor && order === 'desc' && mayMatch(ev.task, filter)) fresh++;
        continue;
      }
      if (ev.kind === 'task.deleted') {
        row.tr.classList.add('gone');
        row.tr.title = 'deleted';
        continue;
      }
      if (ev.task.truncated) continue; // the phase and progress are there; the rest is read on the task's page
      if ((ev.task.version || 0) > (row.task.version || 0)) updateRow(row, ev.task);
    }
    if (fresh) {
      clear(freshNote).append(`${fmtNum(fresh)} new task${fresh === 1 ? '' : 's'} may match the filter. `,
        h('button', { type: 'button', class: 'link', onclick: reload, 'data-testid': 'new-tasks-show' }, 'Show'));
      freshNote.hidden = false;
    }
  }

  /** The links to the first page (when not on it) and to the next (next: the list's next_cursor, or null). */
  function renderPager(next) {
    const base = { ...filter, order: order === 'asc' ? 'asc' : undefined };
    const nav = [];
    if (cursor) nav.push(h('a', { class: 'button', href: `#/tasks${qs(base)}`, 'data-testid': 'first-page' }, '« First page'));
    if (next) nav.push(h('a', { class: 'button', href: `#/tasks${qs({ ...base, cursor: next })}`, 'data-testid': 'next-page' }, 'Next page »'));
    clear(pager).append(...nav);
  }

  let readSeq = 0; // only the newest read is drawn (an older one may answer last)
  async function reload() {
    const seq = ++readSeq;
    loading = true;
    fresh = 0;
    freshNote.hidden = true;
    try {
      const r = await api('GET', `/v1/tasks${qs({ ...filter, order: order === 'asc' ? 'asc' : undefined, cursor, limit: PAGE })}`);
      if (gone || seq !== readSeq) return;
      rows.clear();
      clear(tbody).append(...r.tasks.map(rowFor));
      status.textContent = r.tasks.length
        ? `${r.tasks.length} task${r.tasks.length === 1 ? '' : 's'} on this page${r.next_cursor ? '; more on the next' : ''}.`
        : 'No task matches.';
      renderPager(r.next_cursor);
      markInvalid(null);
      loading = false;
      const pending = early;
      early = [];
      if (pending.length) apply(pending);
    } catch (e) {
      if (gone || seq !== readSeq) return;
      loading = false;
      status.textContent = '';
      clear(tbody);
      // The next page's cursor came with the list that is gone: no Next
      // until a read succeeds.
      renderPager(null);
      status.append(h('span', { class: 'error', role: 'alert' }, `Could not read the tasks: ${errText(e)}`));
      markInvalid(e.field);
    }
  }

  /** Marks the filter's input the server named as wrong (field), and only it; null: none. */
  function markInvalid(field) {
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    const input = field && form.querySelector(`[name="${CSS.escape(field)}"]`);
    if (input) input.setAttribute('aria-invalid', 'true');
  }

  api('GET', '/v1/queues').then((r) => {
    if (!gone) queueList.append(...(r.queues || []).map((q) => h('option', { value: q.name })));
  }).catch(() => {});
  reload();

  return {
    onevents(batch) {
      if (loading) for (const ev of batch) early.push(ev);
      else apply(batch);
    },
    refresh: reload,
    onreconnect: reload,
    unmount() {
      gone = true;
    },
  };
}
