// webhooks.js: the Webhooks view (admin and client tokens). The webhooks
// of the viewer's namespace (GET /v1/webhooks), a form to add one (its
// secret is shown once), delete, and for the webhook in the hash
// (#/webhooks/ID) its latest deliveries and their outcomes.

import { api, qs } from './api.js';
import { h, add, clear, timeEl, toast, confirmDialog, errText, lateSecret, isId } from './dom.js';

const EVENTS = ['task.spawned', 'task.updated', 'task.completed', 'task.failed'];

export function mount(root, route) {
  const selected = route.id;
  let gone = false;
  const list = h('div', { class: 'scroll', 'data-testid': 'webhooks' }, h('p', { class: 'muted' }, 'Loading…'));
  const deliveries = h('div', { class: 'scroll', 'data-testid': 'deliveries' });
  const created = h('div', { 'data-testid': 'webhook-created', role: 'status' });

  const url = h('input', { id: 'wh-url', type: 'url', required: true, placeholder: 'https://example.com/hook', 'data-testid': 'webhook-url' });
  const name = h('input', { id: 'wh-name', 'data-testid': 'webhook-name' });
  // Disabled while an add waits for its answer: a double click adds one webhook, not two.
  const createBtn = h('button', { type: 'submit', class: 'primary', 'data-testid': 'webhook-create' }, 'Add webhook');
  let creating = false;
  const boxes = EVENTS.map((e) => h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'events', value: e, checked: true }), e));
  const form = h('form', { class: 'panel', 'aria-labelledby': 'wh-new-h', 'data-testid': 'webhook-form' },
    h('h2', { id: 'wh-new-h' }, 'Add a webhook'),
    h('div', { class: 'filters' },
      h('label', { for: 'wh-url' }, 'URL', url),
      h('label', { for: 'wh-name' }, 'Name (optional)', name),
      h('fieldset', {}, h('legend', {}, 'Events'), boxes)),
    h('div', { class: 'actions' }, createBtn),
    created);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (creating) return;
    const events = boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
    creating = true;
    createBtn.disabled = true;
    try {
      const w = await api('POST', '/v1/webhooks', { url: url.value.trim(), name: name.value.trim() || undefined, events });
      if (gone) {
        lateSecret(`Webhook ${w.id} (to ${w.url})`, w.secret || '');
        return;
      }
      clear(created).append(h('p', {}, `Webhook ${w.id} added. Its signing secret, shown this once:`),
        h('div', { class: 'secret', 'data-testid': 'webhook-secret' }, w.secret || ''));
      url.value = '';
      name.value = '';
      load();
    } catch (e) {
      clear(created).append(h('p', { class: 'error', role: 'alert' }, `Could not add the webhook: ${errText(e)}`));
    } finally {
      creating = false;
      createBtn.disabled = false;
      if (!gone && document.activeElement === document.body) createBtn.focus();
    }
  });

  // Disabled while the deliveries are read: a double click reads them once.
  const readAgain = h('button', { type: 'button', onclick: () => loadDeliveries(), 'data-testid': 'deliveries-refresh' }, 'Read again');

  add(root, h('h1', {}, 'Webhooks'),
    h('section', { class: 'panel', 'aria-label': 'Webhooks' }, list),
    selected ? h('section', { class: 'panel', 'aria-labelledby': 'dl-h' },
      h('div', { class: 'row' }, h('h2', { id: 'dl-h' }, `Deliveries of ${selected}`),
        readAgain),
      deliveries) : null,
    form);

  // Only the newest read of each list is drawn: an older one answering
  // last would show the list as it was (without a webhook just added).
  let listSeq = 0;
  let deliveriesSeq = 0;

  async function load() {
    const seq = ++listSeq;
    try {
      const r = await api('GET', '/v1/webhooks');
      if (gone || seq !== listSeq) return;
      const ws = r.webhooks || [];
      if (!ws.length) {
        clear(list).append(h('p', { class: 'muted' }, 'No webhooks yet.'));
        return;
      }
      clear(list).append(h('table', { 'data-testid': 'webhooks-table' },
        h('thead', {}, h('tr', {}, ['Name', 'URL', 'Namespace', 'Events', 'Created', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, ws.map((w) => h('tr', { 'data-testid': `webhook-row-${w.id}`, 'aria-current': w.id === selected ? 'true' : null },
          h('th', { scope: 'row' }, h('a', { href: `#/webhooks/${encodeURIComponent(w.id)}` }, w.name || w.id)),
          h('td', { class: 'mono' }, w.url),
          h('td', {}, w.namespace || 'all'),
          h('td', {}, (w.events || []).join(', ')),
          h('td', {}, timeEl(w.created_at)),
          h('td', {}, h('div', { class: 'actions' },
            h('a', { class: 'button', href: `#/webhooks/${encodeURIComponent(w.id)}`, 'data-testid': `webhook-deliveries-${w.id}` }, 'Deliveries'),
            h('button', {
              type: 'button', class: 'danger', 'data-testid': `webhook-delete-${w.id}`, 'aria-label': `Delete webhook ${w.name || w.id}`,
              onclick: (ev) => remove(w, ev.currentTarget),
            }, 'Delete'))))))));
    } catch (e) {
      if (!gone && seq === listSeq) clear(list).append(h('p', { class: 'error', role: 'alert' }, `Could not read the webhooks: ${errText(e)}`));
    }
  }

  async function loadDeliveries() {
    if (!selected) return;
    if (!isId(selected)) {
      // A dot segment or a backslash in the address would send the read elsewhere.
      clear(deliveries).append(h('p', { class: 'error', role: 'alert' }, `'${selected}' is not a webhook id.`));
      return;
    }
    const seq = ++deliveriesSeq;
    readAgain.disabled = true;
    try {
      const r = await api('GET', `/v1/webhooks/${encodeURIComponent(selected)}/deliveries${qs({ limit: 100 })}`);
      if (gone || seq !== deliveriesSeq) return;
      const ds = r.deliveries || [];
      clear(deliveries).append(ds.length ? h('table', { 'data-testid': 'deliveries-table' },
        h('thead', {}, h('tr', {}, ['Event', 'Outcome', 'Attempts', 'Last HTTP status', 'Last error', 'Next attempt', 'Created', 'Updated'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, ds.map((d) => h('tr', { 'data-testid': 'delivery-row' },
          h('td', {}, d.event, ' ', h('span', { class: 'id' }, `#${d.seq}`)),
          h('td', {}, h('span', { class: `badge ph-${{ delivered: 'completed', failed: 'failed', pending: 'pending' }[d.status] || 'pending'}`, 'data-testid': 'delivery-status' }, d.status)),
          h('td', { class: 'num' }, String(d.attempts)),
          h('td', { class: 'num' }, d.last_status ? String(d.last_status) : '—'),
          h('td', { class: 'error' }, d.last_error || ''),
          h('td', {}, timeEl(d.next_attempt_at)),
          h('td', {}, timeEl(d.created_at)),
          h('td', {}, timeEl(d.updated_at))))))
        : h('p', { class: 'muted' }, 'No deliveries yet.'));
    } catch (e) {
      if (!gone && seq === deliveriesSeq) clear(deliveries).append(h('p', { class: 'error', role: 'alert' }, `Could not read the deliveries: ${errText(e)}`));
    } finally {
      if (seq === deliveriesSeq) {
        readAgain.disabled = false;
        if (!gone && document.activeElement === document.body) readAgain.focus();
      }
    }
  }

  const removing = new Set(); // webhook ids whose delete waits for its answer
  async function remove(w, button) {
    if (removing.has(w.id)) return;
    const ok = await confirmDialog('Delete this webhook?', `Delete the webhook to ${w.url}? Its pending deliveries are dropped.`, 'Delete');
    if (!ok || removing.has(w.id)) return;
    removing.add(w.id);
    button.disabled = true;
    try {
      await api('DELETE', `/v1/webhooks/${encodeURIComponent(w.id)}`);
      toast('Webhook deleted.');
      if (w.id === selected && !gone) location.hash = '#/webhooks';
      else load();
    } catch (e) {
      toast(`Could not delete the webhook: ${errText(e)}`, true);
    } finally {
      removing.delete(w.id);
      button.disabled = false;
    }
  }

  load();
  loadDeliveries();
  return {
    // A signing secret just made is on screen: it is shown this once.
    holdsSecret: () => !!created.querySelector('[data-testid="webhook-secret"]'),
    refresh() {
      load();
      loadDeliveries();
    },
    onreconnect() {
      load();
      loadDeliveries();
    },
    unmount() {
      gone = true;
    },
  };
}
