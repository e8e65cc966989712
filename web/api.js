// api.js: every call the dashboard makes goes through api() here, with the
// viewer's token (kept in sessionStorage only: this tab's, though a closed
// tab reopened or a session restored brings it back; Sign out removes it).
// Errors come back as ApiError with the v1 error's code, message and field;
// a 401 also tells the app to ask for a token again.

const KEY = 'taskmill.token';

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

let unauthenticated = () => {};
export function onUnauthenticated(fn) {
  unauthenticated = fn;
}

export function getToken() {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function setToken(t) {
  try {
    if (t) sessionStorage.setItem(KEY, t);
    else sessionStorage.removeItem(KEY);
  } catch { /* storage disabled: the token lives for this page only */ }
}

export function authHeaders() {
  const t = getToken();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

/** Calls the v1 API; resolves to the parsed JSON (null for 204), throws ApiError. */
export async function api(method, path, body, { signal, quiet401 = false } = {}) {
  const headers = { Accept: 'application/json', ...authHeaders() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(path, {
      method, headers, signal, cache: 'no-store',
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'the server does not answer');
  }
  if (r.status === 204 || r.status === 304) return null;
  const text = await r.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch { /* not JSON */ }
  if (!r.ok) {
    const err = (json && json.error) || {};
    const e = new ApiError(r.status, err.code || `http_${r.status}`, err.message || r.statusText, err.field);
    if (r.status === 401 && !quiet401) unauthenticated(e);
    throw e;
  }
  return json;
}

/** A query string from an object, leaving out empty values. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}
