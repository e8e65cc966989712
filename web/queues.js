// queues.js: the Queues view. Counts per queue and phase (GET /v1/queues),
// each queue's state with a pause/resume button for admins, and for one
// queue at a time the server's statistics (GET /v1/queues/Q/stats) as
// charts: throughput, failures and queue latency over the last hour or day.
// Events re-read the counts (at most once a second) and the charts (at
// most every 5 s): the page stays current without polling.

import { api, qs } from './api.js';
import { h, add, clear, PHASES, fmtNum, toast, throttle, errText } from './dom.js';
import { chart } from './charts.js';

export function mount(root, route, ctx) {
  let queues = [];
  let selected = route.params.get('queue') || null;
  let range = route.params.get('range') === 'day' ? 'day' : 'hour';
  let gone = false;

  const tableBox = h('div', { class: 'scroll', 'data-testid': 'queues' }, h('p', { class: 'muted' }, 'Loading…'));
  const queueSelect = h('select', { id: 'stats-queue', 'data-testid': 'stats-queue' });
  const rangeButtons = ['hour', 'day'].map((r) => h('button', {
    type: 'button', 'aria-pressed': String(r === range), 'data-testid': `stats-range-${r}`,
    onclick: () => {
      range = r;
      for (const b of rangeButtons) b.setAttribute('aria-pressed', String(b.dataset.range === r));
      loadStats();
    },
    'data-range': r,
  }, r === 'hour' ? 'Last hour' : 'Last day'));
  const chartsBox = h('div', { class: 'charts', 'data-testid': 'charts' });
  const statsNote = h('p', { class: 'muted', 'data-testid': 'stats-note' });

  add(root, 
    h('h1', {}, 'Queues'),
    h('section', { class: 'panel', 'aria-label': 'Queues and their tasks per phase' }, tableBox),
    h('section', { class: 'panel', 'aria-labelledby': 'stats-h' },
      h('h2', { id: 'stats-h' }, 'Statistics'),
      h('div', { class: 'row' },
        h('label', { for: 'stats-queue' }, 'Queue', queueSelect),
        h('div', { class: 'tabs', role: 'group', 'aria-label': 'Time range' }, rangeButtons)),
      statsNote,
      chartsBox),
  );
  queueSelect.addEventListener('change', () => {
    selected = queueSelect.value;
    loadStats();
  });

  function renderTable() {
    const head = h('tr', {},
      h('th', { scope: 'col' }, 'Queue'),
      h('th', { scope: 'col' }, 'State'),
      PHASES.map((p) => h('th', { scope: 'col', class: 'num' }, p)),
      h('th', { scope: 'col', class: 'num' }, 'paused tasks'),
      h('th', { scope: 'col', class: 'num' }, 'total'),
      ctx.can.queuePause ? h('th', { scope: 'col' }, h('span', { class: 'hide-narrow' }, 'Actions')) : null);
    const rows = queues.map((q) => {
      const paused = q.state === 'paused';
      const link = (phase, n) => h('a', { href: `#/tasks${qs({ queue: q.name, phase })}` }, fmtNum(n));
      return h('tr', { 'data-testid': `queue-row-${q.name}`, 'data-queue': q.name },
        h('th', { scope: 'row' }, h('a', { href: `#/tasks${qs({ queue: q.name })}` }, q.name)),
        h('td', {}, h('span', {
          class: `badge ${paused ? 'queue-paused' : 'ph-completed'}`, 'data-testid': `queue-state-${q.name}`,
          'data-state': q.state || 'active',
          title: paused ? 'paused: workers get none of its tasks' : 'active',
        }, q.state || 'active')),
        PHASES.map((p) => h('td', { class: 'num', 'data-testid': `queue-count-${q.name}-${p}` }, link(p, q.counts ? q.counts[p] : 0))),
        h('td', { class: 'num' }, fmtNum(q.paused)),
        h('td', { class: 'num' }, link(undefined, q.total)),
        ctx.can.queuePause ? h('td', {}, h('button', {
          type: 'button', 'data-testid': `queue-${paused ? 'resume' : 'pause'}-${q.name}`, 'data-queue-btn': q.name,
          'aria-label': `${paused ? 'Resume' : 'Pause'} queue ${q.name}`, disabled: toggling.has(q.name),
          onclick: () => toggleQueue(q.name, paused ? 'resume' : 'pause'),
        }, paused ? 'Resume' : 'Pause')) : null);
    });
    const table = h('table', { 'data-testid': 'queues-table' },
      h('caption', { class: 'muted' },
        'Counts link to the tasks they count. A paused queue keeps its tasks but hands none to workers.'),
      h('thead', {}, head), h('tbody', {}, rows));
    // Keep the focus on a queue's pause/resume button across a re-render.
    const a = document.activeElement;
    const focused = a && tableBox.contains(a) && a.dataset ? a.dataset.queueBtn : null;
    clear(tableBox).append(table);
    if (focused) {
      const again = tableBox.querySelector(`[data-queue-btn="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
  }

  function renderSelect() {
    const names = queues.map((q) => q.name);
    if (!selected || !names.includes(selected)) {
      const busiest = [...queues].sort((a, b) => (b.total || 0) - (a.total || 0))[0];
      selected = busiest ? busiest.name : 'default';
    }
    const have = [...queueSelect.options].map((o) => o.value).join('\n');
    if (have !== names.join('\n')) {
      clear(queueSelect).append(...names.map((n) => h('option', { value: n }, n)));
    }
    queueSelect.value = selected;
  }

  let queuesSeq = 0; // only the newest read is drawn (an older one may answer last)
  async function loadQueues() {
    const seq = ++queuesSeq;
    try {
      const r = await api('GET', '/v1/queues');
      if (gone || seq !== queuesSeq) return;
      queues = r.queues || [];
      renderTable();
      const first = !queueSelect.options.length;
      renderSelect();
      if (first) loadStats();
    } catch (e) {
      if (gone || seq !== queuesSeq) return;
      clear(tableBox).append(h('p', { class: 'error', role: 'alert' }, `Could not read the queues: ${errText(e)}`));
    }
  }

  let statsSeq = 0; // only the newest read is drawn (an older one may answer last)
  async function loadStats() {
    if (!selected) return;
    const q = selected;
    const seq = ++statsSeq;
    try {
      const r = await api('GET', `/v1/queues/${encodeURIComponent(q)}/stats${qs({ range })}`);
      if (gone || seq !== statsSeq) return;
      renderCharts(r);
    } catch (e) {
      if (gone || seq !== statsSeq) return;
      clear(chartsBox);
      statsNote.textContent = e.status === 404 ? 'No statistics for this queue.' : `Could not read the statistics: ${errText(e)}`;
    }
  }

  function renderCharts(r) {
    const b = r.buckets || [];
    const times = b.map((x) => Date.parse(x.at));
    const perMin = (r.bucket_seconds || 60) / 60;
    const completed = b.map((x) => (x.completed || 0) / perMin);
    const failed = b.map((x) => x.failed || 0);
    const submitted = b.map((x) => (x.submitted || 0) / perMin);
    const avg = b.map((x) => x.latency_ms_avg ?? null);
    const max = b.map((x) => x.latency_ms_max ?? null);
    const sum = (a) => a.reduce((s, v) => s + (v || 0), 0);
    const totalDone = b.reduce((s, x) => s + (x.completed || 0), 0);
    const totalFailed = sum(failed);
    const bucket = `${Math.round((r.bucket_seconds || 60) / 60)} min`;
    statsNote.textContent = `${r.queue}, ${range === 'hour' ? 'last hour' : 'last day'}, in ${bucket} buckets: ` +
      `${fmtNum(totalDone)} completed, ${fmtNum(totalFailed)} failed, ${fmtNum(b.reduce((s, x) => s + (x.submitted || 0), 0))} submitted.`;
    const fig = (title, legend, svg) => h('figure', { class: 'chart' }, h('figcaption', {}, title), svg, legend);
    const peak = Math.max(0, ...completed);
    clear(chartsBox).append(
      fig('Throughput (tasks a minute)',
        h('div', { class: 'legend' }, h('span', { class: 'k0' }, 'completed'), h('span', { class: 'k1' }, 'submitted')),
        chart({
          times, unit: '/min', testid: 'chart-throughput',
          label: `Throughput of ${r.queue}: ${fmtNum(totalDone)} completed, at most ${peak.toFixed(1)} a minute`,
          series: [{ name: 'completed/min', values: completed }, { name: 'submitted/min', values: submitted }],
        })),
      fig(`Failures (per ${bucket})`, null,
        chart({
          times, testid: 'chart-failures', label: `Failures of ${r.queue}: ${fmtNum(totalFailed)}`,
          series: [{ name: 'failed', values: failed, kind: 'bar' }],
        })),
      fig('Queue latency (ready to claimed)',
        h('div', { class: 'legend' }, h('span', { class: 'k0' }, 'average'), h('span', { class: 'k1' }, 'maximum')),
        chart({
          times, unit: 'ms', testid: 'chart-latency',
          label: `Queue latency of ${r.queue}`,
          series: [{ name: 'average', values: avg }, { name: 'maximum', values: max }],
        })),
    );
  }

  // Queues whose pause or resume waits for its answer: their button is
  // disabled until the counts are read again (a double click sends one).
  const toggling = new Set();
  async function toggleQueue(name, action) {
    if (toggling.has(name)) return;
    const a = document.activeElement;
    const hadFocus = !!(a && a.dataset && a.dataset.queueBtn === name);
    toggling.add(name);
    renderTable();
    try {
      await api('POST', `/v1/queues/${encodeURIComponent(name)}/${action}`);
      toast(`Queue ${name} ${action === 'pause' ? 'paused' : 'resumed'}.`);
    } catch (e) {
      toast(`Could not ${action} queue ${name}: ${errText(e)}`, true);
    } finally {
      toggling.delete(name);
    }
    await loadQueues();
    // Disabled, the button lost the focus: give it to the new one.
    if (hadFocus && !gone && document.activeElement === document.body) {
      const again = tableBox.querySelector(`[data-queue-btn="${CSS.escape(name)}"]`);
      if (again) again.focus();
    }
  }

  const countsLater = throttle(loadQueues, 1000);
  const statsLater = throttle(loadStats, 5000);
  loadQueues();

  return {
    onevents(batch) {
      countsLater.call();
      if (batch.some((ev) => ev.task && ev.task.queue === selected && /completed|failed|created/.test(ev.kind))) statsLater.call();
    },
    refresh() {
      loadQueues();
      loadStats();
    },
    onreconnect() {
      loadQueues();
      loadStats();
    },
    unmount() {
      gone = true;
      countsLater.cancel();
      statsLater.cancel();
    },
  };
}
