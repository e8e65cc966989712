// live.js: reads an SSE stream of the v1 API (/v1/events, /v1/tasks/ID/events)
// with fetch() and a ReadableStream, because EventSource cannot send the
// Authorization header. It parses the stream itself, resumes with
// Last-Event-ID after any drop (with a capped backoff: the only timer that
// calls the server, and only while the stream is down), and hands events to
// its listener in batches, once per animation frame, so a burst of
// thousands of events costs one render. No polling: while connected, the
// server pushes.
//
// States (onstate): 'connecting' before the first connection is up,
// 'live' while subscribed, 'down' while reconnecting after a drop,
// 'busy' while the server refuses it for holding too many streams (429:
// --max-streams, or the token's share), tried again after its
// Retry-After, 'off' when the role may not read the stream (403) or it
// was stopped.

import { authHeaders } from './api.js';

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
// The server sends a keep-alive comment every 15 s by default; a stream
// silent for much longer than that is dead (a network that dropped it
// without a word), so it is cut and resumed.
const SILENCE_MS = 45000;
// The longest Retry-After followed (a longer one is taken as this).
const RETRY_AFTER_MAX_MS = 300000;

/** A Retry-After header's wait in ms (seconds, or an HTTP date), or null. */
export function retryAfterMs(v) {
  if (!v) return null;
  const ms = /^\s*\d+\s*$/.test(v) ? Number(v) * 1000 : Date.parse(v) - Date.now();
  if (Number.isNaN(ms)) return null;
  return Math.min(Math.max(ms, 0), RETRY_AFTER_MAX_MS);
}

export class EventStream {
  /**
   * path: the stream's URL (with its own filters); opts:
   *   onevents(batch)  each batch of parsed events {seq, kind, task, ...}
   *   onstate(state)   'connecting' | 'live' | 'down' | 'busy' | 'off'
   *   onbusy(ms, error) refused for too many streams (429): tried again in ms
   *   onpruned(err)    the server pruned events we asked for, or the resume
   *                    point is past its log (a restored store): re-read state
   *   onstatus(status, error) a refusal that ends the stream (401, 403,
   *                    404), with the v1 error's {code, message, field} (or null)
   *   lastId           start after this sequence (else: from now)
   */
  constructor(path, opts = {}) {
    this.path = path;
    this.opts = opts;
    this.lastId = opts.lastId ?? null;
    this.state = 'connecting';
    this.queue = [];
    this.flushScheduled = false;
    this.stopped = false;
    this.ctrl = null;
    this.silenceTimer = null;
    this.wake = null;
  }

  start() {
    this.run();
    return this;
  }

  stop() {
    this.stopped = true;
    if (this.ctrl) this.ctrl.abort();
    if (this.wake) this.wake();
    clearTimeout(this.silenceTimer);
    this.setState('off');
  }

  /** Cuts the connection and resumes at once (after a token change, say). */
  reconnect() {
    if (this.ctrl) this.ctrl.abort();
    if (this.wake) this.wake();
  }

  setState(st) {
    if (st === this.state) return;
    this.state = st;
    if (this.opts.onstate) this.opts.onstate(st);
  }

  sleep(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  async run() {
    let backoff = BACKOFF_MIN_MS;
    let quickRetry = true;
    while (!this.stopped) {
      const ctrl = new AbortController();
      this.ctrl = ctrl;
      let subscribed = false;
      try {
        const headers = { Accept: 'text/event-stream', ...authHeaders() };
        if (this.lastId !== null) headers['Last-Event-ID'] = String(this.lastId);
        const r = await fetch(this.path, { headers, signal: ctrl.signal, cache: 'no-store' });
        if (r.status === 401 || r.status === 403 || r.status === 404) {
          // Refused for good: the app asks for a token, or the role may not
          // follow this stream, or the task is gone.
          let error = null;
          try {
            error = (await r.json()).error || null;
          } catch { /* not JSON, or aborted */ }
          // Stopped while the body was read (signed out, or replaced by a
          // new stream): the refusal is no longer this page's business.
          if (this.stopped) return;
          if (this.opts.onstatus) this.opts.onstatus(r.status, error);
          this.stopped = true;
          this.setState('off');
          return;
        }
        if (r.status === 400 && this.lastId !== null) {
          // The resume point is past the store's newest event (a restored or
          // another store): its events are not there to read. Start again
          // from now and re-read the state, as for pruned events; retrying
          // the same point would skip the events it should have seen.
          let error = null;
          try {
            error = (await r.json()).error || null;
          } catch { /* not JSON, or aborted */ }
          if (this.stopped) return;
          if (error && error.field === 'Last-Event-ID') {
            this.lastId = null;
            if (this.opts.onpruned) this.opts.onpruned(error);
            continue;
          }
          throw new Error(`stream answered ${r.status}`);
        }
        if (r.status === 429) {
          // Too many streams open on the server: not a drop. Wait as long
          // as it asks (at least the backoff's first step), then try again.
          let error = null;
          try {
            error = (await r.json()).error || null;
          } catch { /* not JSON, or aborted */ }
          if (this.stopped) return;
          const wait = Math.max(retryAfterMs(r.headers.get('Retry-After')) ?? backoff, BACKOFF_MIN_MS);
          backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
          this.setState('busy');
          if (this.opts.onbusy) this.opts.onbusy(wait, error);
          await this.sleep(wait);
          continue;
        }
        if (!r.ok || !r.body) throw new Error(`stream answered ${r.status}`);
        await this.read(r.body, ctrl, () => {
          subscribed = true;
          backoff = BACKOFF_MIN_MS;
          quickRetry = true;
          this.setState('live');
        });
      } catch { /* dropped, refused or aborted: resume below */ }
      clearTimeout(this.silenceTimer);
      if (this.stopped) return;
      // A stream that ends once (the server cut a slow reader, say) is
      // resumed at once without alarming anyone; if that fails too, the
      // banner goes up and the backoff starts.
      if (subscribed && quickRetry) {
        quickRetry = false;
        continue;
      }
      this.setState('down');
      await this.sleep(backoff);
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    }
  }

  armSilence(ctrl) {
    clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => ctrl.abort(), SILENCE_MS);
  }

  async read(body, ctrl, onopen) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    let ev = { id: null, event: '', data: [] };
    let opened = false;
    this.armSilence(ctrl);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      this.armSilence(ctrl);
      if (!opened) {
        opened = true;
        onopen();
      }
      buf += decoder.decode(value, { stream: true });
      let start = 0;
      for (;;) {
        let i = start;
        while (i < buf.length && buf[i] !== '\n' && buf[i] !== '\r') i++;
        if (i >= buf.length) break;
        // A '\r' at the very end may be half of a "\r\n" split across chunks.
        if (buf[i] === '\r' && i + 1 >= buf.length) break;
        const line = buf.slice(start, i);
        start = i + (buf[i] === '\r' && buf[i + 1] === '\n' ? 2 : 1);
        if (line === '') {
          this.dispatch(ev);
          ev = { id: null, event: '', data: [] };
          continue;
        }
        if (line[0] === ':') continue; // a comment: the greeting or a keep-alive
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val[0] === ' ') val = val.slice(1);
        if (field === 'data') ev.data.push(val);
        else if (field === 'event') ev.event = val;
        else if (field === 'id') ev.id = val;
      }
      buf = buf.slice(start);
    }
  }

  dispatch(ev) {
    if (ev.id !== null && /^\d+$/.test(ev.id)) this.lastId = Number(ev.id);
    if (!ev.data.length) return;
    let data;
    try {
      data = JSON.parse(ev.data.join('\n'));
    } catch {
      return;
    }
    if (ev.event === 'error') {
      if (data && data.error && data.error.code === 'events_pruned' && this.opts.onpruned) this.opts.onpruned(data.error);
      return;
    }
    if (!data.kind) data.kind = ev.event;
    this.queue.push(data);
    this.scheduleFlush();
  }

  scheduleFlush() {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // A hidden tab gets no animation frames; a timer keeps the queue short.
    if (document.hidden) setTimeout(() => this.flush(), 250);
    else requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length && this.opts.onevents && !this.stopped) this.opts.onevents(batch);
  }
}

/** The newest event per task id of a batch (the one with the highest version). */
export function latestByTask(batch) {
  const m = new Map();
  for (const ev of batch) {
    const t = ev.task;
    if (!t || !t.id) continue;
    const prev = m.get(t.id);
    if (!prev || (ev.version ?? t.version) >= (prev.version ?? prev.task.version)) m.set(t.id, ev);
  }
  return m;
}
