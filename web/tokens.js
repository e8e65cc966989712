// tokens.js: the Tokens view (admin tokens only). Every token (GET
// /v1/tokens: never a secret), a form that creates one and shows its bearer
// string this once, and revoke (DELETE /v1/tokens/ID), which the server
// honours on the token's very next request.

import { api } from './api.js';
import { h, add, clear, timeEl, toast, confirmDialog, errText, lateSecret } from './dom.js';

const ROLES = ['reader', 'client', 'worker', 'admin'];

export function mount(root, _route, ctx) {
  let gone = false;
  const list = h('div', { class: 'scroll', 'data-testid': 'tokens' }, h('p', { class: 'muted' }, 'Loading…'));
  const created = h('div', { 'data-testid': 'token-created', role: 'status' });
  const role = h('select', { id: 'tk-role', 'data-testid': 'token-role' }, ROLES.map((r) => h('option', { value: r }, r)));
  const ns = h('input', { id: 'tk-ns', value: 'default', required: true, pattern: '[A-Za-z0-9._\\-]{1,64}', 'data-testid': 'token-namespace' });
  const name = h('input', { id: 'tk-name', 'data-testid': 'token-name' });
  const expires = h('input', { id: 'tk-exp', placeholder: 'e.g. 90d, 12h', 'data-testid': 'token-expires' });
  // Disabled while a create waits for its answer: a double click makes one token, not two.
  const createBtn = h('button', { type: 'submit', class: 'primary', 'data-testid': 'token-create' }, 'Create token');
  let creating = false;
  const form = h('form', { class: 'panel', 'aria-labelledby': 'tk-new-h', 'data-testid': 'token-form' },
    h('h2', { id: 'tk-new-h' }, 'Create a token'),
    ctx.session && ctx.session.open
      ? h('p', { class: 'notice' }, 'The server is in open mode. The first token ends it: from then on every call needs a token, and this page asks for one. Copy the new admin token before you leave this page.')
      : null,
    h('div', { class: 'filters' },
      h('label', { for: 'tk-role' }, 'Role', role),
      h('label', { for: 'tk-ns' }, 'Namespace', ns),
      h('label', { for: 'tk-name' }, 'Name (optional)', name),
      h('label', { for: 'tk-exp' }, 'Expires in (optional)', expires)),
    h('div', { class: 'actions' }, createBtn),
    created);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (creating) return;
    const body = { role: role.value, namespace: ns.value.trim() };
    if (name.value.trim()) body.name = name.value.trim();
    if (expires.value.trim()) body.expires_in = expires.value.trim();
    creating = true;
    createBtn.disabled = true;
    try {
      const t = await api('POST', '/v1/tokens', body);
      ctx.tokenNames.set(t.id, t.name || t.role);
      if (gone) {
        lateSecret(`Token ${t.id} (${t.role}, namespace ${t.namespace})`, t.secret);
        return;
      }
      const secret = h('div', { class: 'secret', 'data-testid': 'token-secret', tabindex: '0' }, t.secret);
      const copy = h('button', {
        type: 'button', 'data-testid': 'token-copy',
        onclick: async () => {
          try {
            await navigator.clipboard.writeText(t.secret);
            toast('Copied.');
          } catch {
            getSelection().selectAllChildren(secret);
            toast('Select and copy the token by hand.');
          }
        },
      }, 'Copy');
      clear(created).append(
        h('p', {}, h('strong', {}, `Token ${t.id} (${t.role}, namespace ${t.namespace}) created.`),
          ' This is the only time its secret is shown: copy it now.'),
        secret, h('div', { class: 'actions' }, copy));
      name.value = '';
      expires.value = '';
      load();
    } catch (e) {
      clear(created).append(h('p', { class: 'error', role: 'alert' }, `Could not create the token: ${errText(e)}`));
    } finally {
      creating = false;
      createBtn.disabled = false;
      if (!gone && document.activeElement === document.body) createBtn.focus();
    }
  });

  add(root, h('h1', {}, 'Tokens'), form, h('section', { class: 'panel', 'aria-label': 'Tokens' }, list));

  let loadSeq = 0; // only the newest read is drawn: an older one answering last would show a token revoked since as active
  async function load() {
    const seq = ++loadSeq;
    try {
      const r = await api('GET', '/v1/tokens');
      if (gone || seq !== loadSeq) return;
      const ts = r.tokens || [];
      for (const t of ts) ctx.tokenNames.set(t.id, t.name || t.role);
      clear(list).append(ts.length ? h('table', { 'data-testid': 'tokens-table' },
        h('thead', {}, h('tr', {}, ['Id', 'Name', 'Role', 'Namespace', 'Status', 'Created', 'Expires', 'Revoked', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, ts.map((t) => h('tr', { 'data-testid': `token-row-${t.id}` },
          h('th', { scope: 'row', class: 'mono' }, t.id),
          h('td', {}, t.name || ''),
          h('td', {}, t.role),
          h('td', {}, t.namespace),
          h('td', { 'data-testid': 'token-status' }, h('span', { class: `badge ph-${t.status === 'active' ? 'completed' : 'cancelled'}` }, t.status)),
          h('td', {}, timeEl(t.created_at)),
          h('td', {}, timeEl(t.expires_at)),
          h('td', {}, timeEl(t.revoked_at)),
          h('td', {}, t.status === 'active' ? h('button', {
            type: 'button', class: 'danger', 'data-testid': `token-revoke-${t.id}`,
            'aria-label': `Revoke token ${t.name || t.id}`, onclick: (ev) => revoke(t, ev.currentTarget),
          }, 'Revoke') : null)))))
        : h('p', { class: 'muted' }, 'No tokens: the server is in open mode.'));
    } catch (e) {
      if (!gone && seq === loadSeq) clear(list).append(h('p', { class: 'error', role: 'alert' }, `Could not read the tokens: ${errText(e)}`));
    }
  }

  const revoking = new Set(); // token ids whose revoke waits for its answer
  async function revoke(t, button) {
    if (revoking.has(t.id)) return;
    const mine = ctx.session && ctx.session.token_id === t.id;
    const ok = await confirmDialog('Revoke this token?',
      `Revoke ${t.name || t.id} (${t.role}, namespace ${t.namespace})? Every call with it is refused from now on.${mine ? ' It is the token this page uses: you will have to sign in again.' : ''}`,
      'Revoke');
    if (!ok || revoking.has(t.id)) return;
    revoking.add(t.id);
    button.disabled = true;
    try {
      await api('DELETE', `/v1/tokens/${encodeURIComponent(t.id)}`);
      toast('Token revoked.');
    } catch (e) {
      toast(`Could not revoke the token: ${errText(e)}`, true);
    } finally {
      revoking.delete(t.id);
      button.disabled = false;
    }
    load();
  }

  load();
  return {
    // The bearer string just made is on screen: it is shown this once.
    holdsSecret: () => !!created.querySelector('[data-testid="token-secret"]'),
    refresh: load,
    onreconnect: load,
    unmount() {
      gone = true;
    },
  };
}
