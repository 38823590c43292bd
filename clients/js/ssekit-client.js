// @ssekit/client: the browser's EventSource, plus what it cannot do.
//
// One ES module with no imports and no build step; it runs in browsers,
// Node 20+ and Deno (anything with fetch and streamed response bodies). The
// ssekit hub serves this same file at /ssekit-client.js.
//
//   import { EventSource } from "https://hub.example/ssekit-client.js";
//   const es = new EventSource(url, { headers: { Authorization: "Bearer " + token }, share: true });
//   es.onmessage = (e) => console.log(e.lastEventId, e.data);
//
// Parsing follows the WHATWG HTML standard, section 9.2 (server-sent
// events) exactly. Full API: docs/client-js.md.

export const CONNECTING = 0;
export const OPEN = 1;
export const CLOSED = 2;

const HISTORY_GAP = "ssekit-history-gap";
const EARLIEST = "earliest";
const ERROR_BODY_LIMIT = 4096;
const HEALTHY_MS = 60000;
const NO_EVENT_TIMEOUT = 0;

// ---------------------------------------------------------------------------
// The parser.

/**
 * createParser returns a streaming parser of text/event-stream. feed() takes
 * decoded text in pieces of any size; reset() starts a new stream (a new
 * connection). Callbacks: onEvent({type, data, id, retry}) per dispatched
 * event (retry only when the block set a valid one), onRetry(ms) as soon as
 * a valid retry field is seen, onComment(text), onId(id) when the last event
 * ID string changes at dispatch.
 */
export function createParser(cb = {}) {
  let buf = ""; // an incomplete line
  let skipLF = false; // the previous piece ended with CR
  let data = null; // the data buffer; null when empty
  let type = "";
  let idBuf = ""; // the last event ID buffer
  let lastId = ""; // the last event ID string, committed at dispatch
  let blockRetry = -1;
  let first = true; // before the first character: strip one BOM

  function line(s) {
    if (s === "") return dispatch();
    const c = s.indexOf(":");
    if (c === 0) {
      if (cb.onComment) cb.onComment(s.slice(1).replace(/^ /, ""));
      return;
    }
    let name = s, value = "";
    if (c > 0) {
      name = s.slice(0, c);
      value = s.charCodeAt(c + 1) === 32 ? s.slice(c + 2) : s.slice(c + 1);
    }
    switch (name) {
      case "data":
        data = data === null ? value : data + "\n" + value;
        break;
      case "event":
        type = value;
        break;
      case "id":
        if (value.indexOf("\0") < 0) idBuf = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) {
          blockRetry = parseInt(value, 10);
          if (cb.onRetry) cb.onRetry(blockRetry);
        }
        break;
    }
  }

  function dispatch() {
    if (lastId !== idBuf) {
      lastId = idBuf;
      if (cb.onId) cb.onId(lastId);
    }
    const retry = blockRetry;
    blockRetry = -1;
    if (data === null) {
      type = "";
      return;
    }
    const ev = { type: type || "message", data, id: lastId };
    if (retry >= 0) ev.retry = retry;
    data = null;
    type = "";
    if (cb.onEvent) cb.onEvent(ev);
  }

  function feed(text) {
    if (first && text.length > 0) {
      first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    let i = 0;
    const n = text.length;
    if (skipLF && n > 0) {
      skipLF = false;
      if (text.charCodeAt(0) === 10) i = 1;
    }
    while (i < n) {
      let lf = text.indexOf("\n", i);
      let cr = text.indexOf("\r", i);
      let end, next;
      if (cr < 0 && lf < 0) {
        buf += i === 0 ? text : text.slice(i);
        return;
      }
      if (cr >= 0 && (lf < 0 || cr < lf)) {
        end = cr;
        if (cr + 1 === n) {
          skipLF = true;
          next = n;
        } else next = text.charCodeAt(cr + 1) === 10 ? cr + 2 : cr + 1;
      } else {
        end = lf;
        next = lf + 1;
      }
      const s = text.slice(i, end);
      if (buf !== "") {
        const whole = buf + s;
        buf = "";
        line(whole);
      } else line(s);
      i = next;
    }
  }

  function reset() {
    buf = "";
    skipLF = false;
    data = null;
    type = "";
    blockRetry = -1;
    first = true;
  }

  return {
    feed,
    reset,
    /** The last event ID string; setting it also sets the buffer. */
    get lastEventId() { return lastId; },
    set lastEventId(v) { lastId = idBuf = String(v); },
    /** Characters held for an incomplete line. */
    get pending() { return buf.length; },
  };
}

// ---------------------------------------------------------------------------
// Events.

const BaseMessageEvent = typeof MessageEvent === "function" ? MessageEvent : class extends Event {
  constructor(type, init = {}) {
    super(type);
    this.data = init.data;
    this.lastEventId = init.lastEventId || "";
    this.origin = init.origin || "";
  }
};

function messageEvent(type, data, id, origin) {
  return new BaseMessageEvent(type, { data, lastEventId: id, origin });
}

/**
 * The event of an "error": the reason in words, and whether the source
 * will reconnect and after how long. status is the HTTP status (0 for a
 * network error or timeout); kind is one of "network" (no answer, or the
 * connection broke), "end" (the server ended the stream), "timeout" (no
 * data for options.timeout), "status" (a refusing HTTP status) and
 * "content-type" (a 200 that is not an event stream).
 */
export class ErrorEvent extends Event {
  constructor(init) {
    super("error");
    this.message = init.message || "";
    this.status = init.status || 0;
    this.willReconnect = !!init.willReconnect;
    this.delay = init.delay >= 0 ? init.delay : -1;
    this.retryAfter = init.retryAfter >= 0 ? init.retryAfter : -1;
    this.kind = init.kind || "";
  }
}

/**
 * The event of a "historygap": the server could not resume after the
 * lastEventId the client sent, so updates may have been missed and the app
 * should refetch its state. resumedAfter is what the server resumed from.
 */
export class HistoryGapEvent extends Event {
  constructor(lastEventId, resumedAfter) {
    super("historygap");
    this.lastEventId = lastEventId;
    this.resumedAfter = resumedAfter;
  }
}

// ---------------------------------------------------------------------------
// Timing.

const realClock = {
  now: () => Date.now(),
  setTimeout: (f, ms) => setTimeout(f, ms),
  clearTimeout: (t) => clearTimeout(t),
  random: () => Math.random(),
};

/**
 * backoffDelay is the wait before reconnection attempt n (0 for the first
 * after a stream that was healthy): "full jitter", a uniform wait in
 * [0, min(cap, retry * 2^n)]. random() returns a number in [0, 1).
 */
export function backoffDelay(retry, cap, n, random = Math.random) {
  const window = Math.min(cap, retry * Math.pow(2, Math.min(n, 30)));
  return Math.floor(random() * (Math.max(window, 0) + 1));
}

/** parseRetryAfter reads Retry-After (seconds or an HTTP date) as ms, or -1. */
export function parseRetryAfter(v, now = Date.now()) {
  if (v == null || v === "") return -1;
  v = String(v).trim();
  if (/^[0-9]+$/.test(v)) return parseInt(v, 10) * 1000;
  const t = Date.parse(v);
  return isNaN(t) ? -1 : Math.max(0, t - now);
}

// ---------------------------------------------------------------------------
// EventSource.

function isEventStream(ct) {
  return (ct || "").split(";")[0].trim().toLowerCase() === "text/event-stream";
}

function headerObject(h) {
  const out = {};
  if (!h) return out;
  if (typeof h.forEach === "function" && !Array.isArray(h)) h.forEach((v, k) => { out[k] = v; });
  else if (Array.isArray(h)) for (const [k, v] of h) out[k] = v;
  else for (const k of Object.keys(h)) out[k] = h[k];
  return out;
}

function baseURL() {
  return typeof location !== "undefined" && location.href ? location.href : undefined;
}

/**
 * EventSource is the browser's interface (constructor, readyState,
 * onopen/onmessage/onerror, addEventListener by type, close(), lastEventId
 * on events) with options the browser's lacks: see docs/client-js.md.
 */
export class EventSource extends EventTarget {
  constructor(url, options = {}) {
    super();
    if (url === undefined) throw new TypeError("EventSource: a URL is required");
    const o = options || {};
    this.url = new URL(String(url), baseURL()).href;
    this.withCredentials = !!o.withCredentials;
    this.options = o;
    this.readyState = CONNECTING;
    this._clock = o.clock || realClock;
    this._retry = o.retry > 0 ? o.retry : 3000;
    this._cap = o.maxRetry > 0 ? o.maxRetry : 30000;
    this._maxRetryAfter = o.maxRetryAfter > 0 ? o.maxRetryAfter : 600000;
    this._timeout = o.timeout >= 0 ? o.timeout : NO_EVENT_TIMEOUT;
    this._fails = 0;
    this._attempt = 0;
    this._timer = null;
    this._abort = null;
    this._lastId = o.lastEventId ? String(o.lastEventId) : "";
    this._origin = new URL(this.url).origin;
    this._share = null;
    if (o.share && !o._inWorker) {
      this._share = startShare(this, o);
      if (this._share) return;
    }
    this._schedule(0);
  }

  /** The last event ID string, sent as Last-Event-ID on a reconnection. */
  get lastEventId() { return this._lastId; }

  /** The reconnection time in ms (the server's retry, or the default). */
  get retry() { return this._retry; }

  close() {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    if (this._timer !== null) this._clock.clearTimeout(this._timer);
    this._timer = null;
    if (this._abort) this._abort.abort();
    this._abort = null;
    if (this._share) this._share.close();
  }

  _emit(ev) {
    if (this.readyState === CLOSED && ev.type !== "error") return;
    this.dispatchEvent(ev);
  }

  // _schedule runs the next attempt after ms.
  _schedule(ms) {
    if (this.readyState === CLOSED) return;
    this._timer = this._clock.setTimeout(() => { this._timer = null; this._connect(); }, ms);
  }

  async _request() {
    const o = this.options;
    const attempt = this._attempt++;
    let h = typeof o.headers === "function"
      ? await o.headers({ attempt, lastEventId: this._lastId, url: this.url })
      : o.headers;
    const headers = headerObject(h);
    if (!Object.keys(headers).some((k) => k.toLowerCase() === "accept")) headers.Accept = "text/event-stream";
    if (this._lastId !== "") headers["Last-Event-ID"] = this._lastId;
    const init = {
      method: o.method || (o.body != null ? "POST" : "GET"),
      headers,
      credentials: o.credentials || (this.withCredentials ? "include" : "same-origin"),
      cache: "no-store",
      redirect: "follow",
    };
    if (o.body != null) init.body = typeof o.body === "function" ? await o.body({ attempt }) : o.body;
    return init;
  }

  async _connect() {
    if (this.readyState === CLOSED) return;
    this.readyState = CONNECTING;
    const abort = new AbortController();
    this._abort = abort;
    const sentId = this._lastId;
    let opened = false, openedAt = 0, gotEvent = false, ended = false, res;
    let idle = null;
    const clock = this._clock;
    const armIdle = () => {
      if (this._timeout <= 0) return;
      if (idle !== null) clock.clearTimeout(idle);
      idle = clock.setTimeout(() => abort.abort(new Error("timeout")), this._timeout);
    };
    try {
      const init = await this._request();
      if (abort.signal.aborted || this.readyState === CLOSED) return;
      init.signal = abort.signal;
      const f = this.options.fetch || globalThis.fetch;
      armIdle();
      res = await f(this.url, init);
      if (res.status !== 200) return await this._refused(res);
      if (!isEventStream(res.headers.get("content-type"))) {
        const ct = res.headers.get("content-type");
        return this._fail(res.status, ct ? `Content-Type is "${ct}"; want text/event-stream` : "response has no Content-Type; want text/event-stream", "content-type");
      }
      if (!res.body) throw new Error("response has no body");
      opened = true;
      openedAt = clock.now();
      this.readyState = OPEN;
      this._emit(new Event("open"));
      if (sentId !== "" && sentId !== EARLIEST) {
        const after = res.headers.get("mercure-last-event-id") || res.headers.get("last-event-id");
        if (after === EARLIEST) this._gap(sentId, EARLIEST);
      }
      let gapSeen = this._gapSent;
      const parser = createParser({
        onRetry: (ms) => { this._retry = ms; },
        onId: (id) => { this._lastId = id; },
        onComment: (text) => { if (this.options.onComment) this.options.onComment(text); },
        onEvent: (e) => {
          if (this.readyState !== OPEN || abort.signal.aborted) return;
          gotEvent = true;
          this._fails = 0;
          if (e.type === HISTORY_GAP && !gapSeen) {
            gapSeen = true;
            let d = {};
            try { d = JSON.parse(e.data); } catch { /* not ours */ }
            this._gap(d.lastEventID || sentId, d.resumedAfter || EARLIEST);
          }
          const ev = messageEvent(e.type, e.data, e.id, this._origin);
          if (e.retry !== undefined) ev.retry = e.retry;
          this._emit(ev);
        },
      });
      parser.lastEventId = this._lastId;
      const reader = res.body.getReader();
      // An abort (close, timeout) ends a read even of a body fetch did not make.
      abort.signal.addEventListener("abort", () => reader.cancel().catch(() => {}), { once: true });
      const dec = new TextDecoder("utf-8", { ignoreBOM: true }); // the parser strips the one BOM
      armIdle();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        armIdle();
        parser.feed(dec.decode(value, { stream: true }));
        if (this.readyState !== OPEN || abort.signal.aborted) break;
      }
      parser.feed(dec.decode());
      if (abort.signal.aborted) throw new Error("aborted");
      ended = true;
      throw new Error("the server ended the stream");
    } catch (err) {
      if (this.readyState === CLOSED || this._abort !== abort) return;
      let kind = ended ? "end" : abort.signal.aborted ? "timeout" : "network";
      let msg = kind === "timeout"
        ? "no data arrived for " + this._timeout + " ms"
        : (err && err.message) || String(err);
      if (!opened && kind !== "timeout") msg = "cannot connect: " + msg;
      if (!gotEvent && !(opened && clock.now() - openedAt >= HEALTHY_MS)) this._fails++;
      else this._fails = 1;
      this._reconnect(msg, 0, -1, kind);
    } finally {
      if (idle !== null) clock.clearTimeout(idle);
      if (this._abort === abort) {
        abort.abort();
        this._abort = null;
      }
      this._gapSent = false;
    }
  }

  _gap(lastEventId, resumedAfter) {
    if (this._gapSent) return;
    this._gapSent = true;
    this._emit(new HistoryGapEvent(lastEventId, resumedAfter));
  }

  async _refused(res) {
    const status = res.status;
    let text = "";
    try { text = await readStart(res, ERROR_BODY_LIMIT); } catch { /* the reason is the status */ }
    let msg = status + (res.statusText ? " " + res.statusText : "");
    text = text.trim().replace(/\s+/g, " ");
    if (text) msg += ": " + (text.length > 200 ? text.slice(0, 200) + "…" : text);
    if (status === 429 || status >= 500) {
      this._fails++;
      return this._reconnect(msg, status, parseRetryAfter(res.headers.get("retry-after"), this._clock.now()), "status");
    }
    if (status === 204) msg = "204 No Content: the server ended the stream for good";
    this._fail(status, msg, "status");
  }

  _reconnect(message, status, retryAfter, kind) {
    if (this.readyState === CLOSED) return;
    if (this.options.reconnect === false) return this._fail(status, message, kind);
    let delay = retryAfter >= 0
      ? Math.min(retryAfter, this._maxRetryAfter)
      : backoffDelay(this._retry, this._cap, Math.max(0, this._fails - 1), this._clock.random || Math.random);
    this.readyState = CONNECTING;
    this._emit(new ErrorEvent({ message, status, willReconnect: true, delay, retryAfter, kind }));
    this._schedule(delay);
  }

  _fail(status, message, kind) {
    this.readyState = CLOSED;
    this._emit(new ErrorEvent({ message, status, willReconnect: false, kind }));
  }
}

EventSource.CONNECTING = CONNECTING;
EventSource.OPEN = OPEN;
EventSource.CLOSED = CLOSED;
for (const [k, v] of Object.entries({ CONNECTING, OPEN, CLOSED })) Object.defineProperty(EventSource.prototype, k, { value: v });
// The event handler attributes, as in the browser: a listener added when
// the attribute is first set, calling whatever it holds then.
for (const t of ["open", "message", "error"]) {
  Object.defineProperty(EventSource.prototype, "on" + t, {
    get() { return (this._on && this._on[t]) || null; },
    set(f) {
      if (!this._on) this._on = {};
      if (!(t in this._on)) this.addEventListener(t, (e) => { const h = this._on[t]; if (h) h.call(this, e); });
      this._on[t] = typeof f === "function" ? f : null;
    },
  });
}

// readStart reads up to limit bytes of a response body as text.
async function readStart(res, limit) {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let text = "", n = 0;
  try {
    while (n < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.length;
      text += dec.decode(value.subarray(0, Math.max(0, limit - (n - value.length))), { stream: true });
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  return text;
}

// ---------------------------------------------------------------------------
// Mercure helpers.

/**
 * mercureURL builds a subscribe URL: hub plus topic (string or array), and
 * the draft-08 matchers match, match_urlpattern (strings or arrays), and
 * last_event_id (lastEventID for draft-07 hubs with legacy: true).
 */
export function mercureURL(hub, sel = {}) {
  const u = new URL(String(hub), baseURL());
  const add = (name, v) => {
    if (v == null) return;
    for (const x of Array.isArray(v) ? v : [v]) u.searchParams.append(name, String(x));
  };
  add("topic", sel.topic);
  add("match", sel.match);
  add("match_urlpattern", sel.match_urlpattern || sel.matchURLPattern);
  if (sel.lastEventId != null || sel.last_event_id != null) {
    add(sel.legacy ? "lastEventID" : "last_event_id", sel.lastEventId != null ? sel.lastEventId : sel.last_event_id);
  }
  return u.href;
}

/**
 * parseLinks reads a Link header into [{url, rel: [..], params}], URLs
 * resolved against base.
 */
export function parseLinks(header, base) {
  const out = [];
  if (!header) return out;
  const re = /<([^>]*)>((?:\s*;\s*[^;,=\s]+(?:\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^;,\s]*))?)*)\s*(?:,|$)/g;
  let m;
  while ((m = re.exec(header)) !== null) {
    const params = {};
    const pr = /;\s*([^;,=\s]+)(?:\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;,\s]*)))?/g;
    let p;
    while ((p = pr.exec(m[2])) !== null) {
      params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3] || "";
    }
    let url = m[1];
    try { url = new URL(m[1], base).href; } catch { /* keep as given */ }
    out.push({ url, rel: (params.rel || "").toLowerCase().split(/\s+/).filter(Boolean), params });
    if (m[0] === "") re.lastIndex++;
  }
  return out;
}

/**
 * discover fetches a resource and returns what its Link headers say:
 * {hubs: [hub URLs], self, topic}, the topic being the self URL (or the
 * resource's own) as Mercure's discovery says.
 */
export async function discover(url, options = {}) {
  const f = options.fetch || globalThis.fetch;
  const res = await f(String(url), { method: options.method || "GET", headers: headerObject(options.headers), credentials: options.credentials || "same-origin" });
  if (res.body && res.body.cancel) res.body.cancel().catch(() => {});
  const links = parseLinks(res.headers.get("link"), res.url || String(url));
  const hubs = links.filter((l) => l.rel.includes("mercure")).map((l) => l.url);
  const self = links.find((l) => l.rel.includes("self"));
  return { hubs, self: self ? self.url : "", topic: self ? self.url : res.url || String(url), status: res.status };
}

/**
 * subscriptionsTopic is the topic selector of the Mercure subscription
 * events of topic (all topics when omitted) for subscriber (all when
 * omitted), as a URI template.
 */
export function subscriptionsTopic(topic, subscriber) {
  const part = (v, name) => (v == null ? "{" + name + "}" : encodeURIComponent(v));
  return "/.well-known/mercure/subscriptions/" + part(topic, "topic") + "/" + part(subscriber, "subscriber");
}

/**
 * subscribeSubscriptions opens an EventSource on the hub's subscription
 * events and dispatches each as a "subscription" event whose subscription
 * property is the parsed JSON-LD object ({id, topic, subscriber, active,
 * payload}); the messages are dispatched as usual too.
 */
export function subscribeSubscriptions(hub, { topic, subscriber, ...options } = {}) {
  const es = new EventSource(mercureURL(hub, { topic: subscriptionsTopic(topic, subscriber) }), options);
  es.addEventListener("message", (e) => {
    let s;
    try { s = JSON.parse(e.data); } catch { return; }
    if (!s || s.type !== "Subscription") return;
    const ev = new Event("subscription");
    ev.subscription = s;
    ev.lastEventId = e.lastEventId;
    es.dispatchEvent(ev);
  });
  return es;
}

// ---------------------------------------------------------------------------
// One connection for all tabs (share: true).
//
// Tabs of one origin that open the same stream (the same share key: by
// default method, URL and body) share one connection. With a SharedWorker
// (where the browser has it and this module is of the page's origin) the
// worker holds the connection and each tab has a port. Otherwise the tabs
// elect a leader with Web Locks; the leader connects and relays every
// event to the others on a BroadcastChannel. When the leader tab goes, the
// lock passes to another tab, which resumes from the last event id it was
// relayed: replay fills what the old leader got but did not relay, and ids
// already seen (under the old leader) are dropped, so nothing is lost or
// shown twice.

const hasDOM = typeof window !== "undefined" && typeof document !== "undefined";

function shareKey(es, o) {
  if (typeof o.share === "string" && o.share !== "worker" && o.share !== "leader") return o.share;
  if (o.shareKey) return String(o.shareKey);
  return JSON.stringify([o.method || (o.body != null ? "POST" : "GET"), es.url, typeof o.body === "string" ? o.body : ""]);
}

function serializableOptions(o) {
  const out = {};
  for (const k of ["method", "credentials", "withCredentials", "retry", "maxRetry", "maxRetryAfter", "timeout", "lastEventId", "reconnect"]) {
    if (o[k] !== undefined) out[k] = o[k];
  }
  if (typeof o.body === "string") out.body = o.body;
  if (o.headers && typeof o.headers !== "function") out.headers = headerObject(o.headers);
  return out;
}

function startShare(es, o) {
  const key = shareKey(es, o);
  const mode = o.share === "worker" || o.share === "leader" ? o.share : "";
  if (mode !== "leader" && typeof SharedWorker === "function" && moduleURL && typeof location !== "undefined") {
    try {
      if (new URL(moduleURL).origin === location.origin) return workerShare(es, o, key);
    } catch { /* fall back to leader election */ }
  }
  if (mode !== "worker" && typeof BroadcastChannel === "function" && typeof navigator !== "undefined" && navigator.locks) {
    return leaderShare(es, o, key);
  }
  return null; // no sharing here: a connection of its own
}

// moduleURL is where this module was loaded from; a SharedWorker runs it.
const moduleURL = (() => { try { return import.meta.url; } catch { return ""; } })();

// Delivering relayed events to a tab's EventSource, with the dedupe of
// ids seen under another relay epoch.
function relayReceiver(es) {
  const seen = new Map(); // id -> epoch, the last 512 ids
  return (m) => {
    switch (m.t) {
      case "open":
        if (es.readyState === CLOSED) return;
        if (es.readyState !== OPEN) {
          es.readyState = OPEN;
          es._emit(new Event("open"));
        }
        return;
      case "error":
        if (es.readyState === CLOSED) return;
        es.readyState = m.willReconnect ? CONNECTING : CLOSED;
        es._emit(new ErrorEvent(m));
        if (!m.willReconnect) es.close();
        return;
      case "gap":
        es._emit(new HistoryGapEvent(m.lastEventId, m.resumedAfter));
        return;
      case "retry":
        es._retry = m.ms;
        return;
      case "event": {
        if (es.readyState === CLOSED) return;
        if (m.id !== "") {
          const e = seen.get(m.id);
          if (e !== undefined && e !== m.epoch) return; // shown already, relayed by an earlier leader
          seen.set(m.id, m.epoch);
          if (seen.size > 512) seen.delete(seen.keys().next().value);
        }
        es._lastId = m.id;
        const ev = messageEvent(m.type, m.data, m.id, es._origin);
        if (m.retry !== undefined) ev.retry = m.retry;
        if (es.readyState !== OPEN) {
          es.readyState = OPEN;
          es._emit(new Event("open"));
        }
        es._emit(ev);
      }
    }
  };
}

// relaySource opens a real connection whose every event and state change
// goes to send(message); it is the leader's, or the worker's.
function relaySource(url, o, send, epoch) {
  const src = new EventSource(url, { ...o, share: false, _inWorker: true });
  const wrap = src._emit.bind(src);
  src._emit = (ev) => {
    if (ev.type === "open") send({ t: "open" });
    else if (ev.type === "error") send({ t: "error", message: ev.message, status: ev.status, willReconnect: ev.willReconnect, delay: ev.delay, retryAfter: ev.retryAfter, kind: ev.kind });
    else if (ev.type === "historygap") send({ t: "gap", lastEventId: ev.lastEventId, resumedAfter: ev.resumedAfter });
    else if (ev instanceof BaseMessageEvent) {
      const m = { t: "event", type: ev.type, data: ev.data, id: ev.lastEventId, epoch };
      if (ev.retry !== undefined) m.retry = ev.retry;
      send(m);
    }
    wrap(ev);
  };
  return src;
}

function randomId() {
  return (globalThis.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now();
}

function leaderShare(es, o, key) {
  const name = "ssekit:" + key;
  const chan = new BroadcastChannel(name);
  const receive = relayReceiver(es);
  const stop = new AbortController();
  let src = null;
  let leading = false;
  es.shareMode = "leader";
  es.isLeader = false;
  chan.onmessage = (e) => {
    const m = e.data;
    if (!m) return;
    if (m.t === "hello") {
      if (leading && src && src.readyState === OPEN) chan.postMessage({ t: "open" });
      return;
    }
    if (!leading) receive(m);
  };
  chan.postMessage({ t: "hello" });
  navigator.locks.request(name, { signal: stop.signal }, () => {
    if (es.readyState === CLOSED) return;
    leading = true;
    es.isLeader = true;
    const epoch = randomId();
    const opts = { ...o, lastEventId: es._lastId || o.lastEventId };
    src = relaySource(es.url, opts, (m) => {
      chan.postMessage(m);
      receive(m);
    }, epoch);
    es._emit(new Event("leader"));
    return new Promise((resolve) => {
      es._releaseLock = resolve;
      if (es.readyState === CLOSED) resolve();
    });
  }).catch(() => { /* aborted: the tab closed before it led */ });
  const close = () => {
    stop.abort();
    if (src) src.close();
    chan.close();
    if (es._releaseLock) es._releaseLock();
  };
  if (hasDOM) addEventListener("pagehide", close, { once: true });
  return { close };
}

function workerShare(es, o, key) {
  let worker;
  try {
    worker = new SharedWorker(moduleURL, { type: "module", name: "ssekit-client" });
  } catch {
    return o.share === "worker" ? null : leaderShareOrNull(es, o, key);
  }
  const port = worker.port;
  const receive = relayReceiver(es);
  const id = randomId();
  es.shareMode = "worker";
  port.onmessage = async (e) => {
    const m = e.data;
    if (m.t === "headers") {
      let h = {};
      try { h = headerObject(await o.headers({ attempt: m.attempt, lastEventId: m.lastEventId, url: es.url })); } catch { /* none */ }
      port.postMessage({ t: "headers", n: m.n, headers: h });
      return;
    }
    receive(m);
  };
  port.start();
  // A lock held for the tab's life tells the worker when the tab is gone.
  const life = "ssekit-port:" + id;
  let release, closed = false;
  const hello = (withLife) => {
    if (!closed) port.postMessage({ t: "open", id, key, url: es.url, options: serializableOptions(o), headerFn: typeof o.headers === "function", life: withLife ? life : "" });
  };
  if (typeof navigator !== "undefined" && navigator.locks) {
    // Only once the tab holds its lock may the worker wait on it.
    navigator.locks.request(life, () => new Promise((r) => { release = r; hello(true); })).catch(() => {});
  } else hello(false);
  const close = () => {
    closed = true;
    port.postMessage({ t: "close", id });
    port.close();
    if (release) release();
  };
  if (hasDOM) addEventListener("pagehide", close, { once: true });
  return { close };
}

function leaderShareOrNull(es, o, key) {
  return typeof BroadcastChannel === "function" && typeof navigator !== "undefined" && navigator.locks ? leaderShare(es, o, key) : null;
}

// The SharedWorker: one connection per share key, its events to every port.
if (typeof SharedWorkerGlobalScope === "function" && globalThis instanceof SharedWorkerGlobalScope) {
  const streams = new Map(); // key -> {src, ports: Map(id -> port)}
  const drop = (key, id) => {
    const s = streams.get(key);
    if (!s || !s.ports.delete(id)) return;
    s.headerPorts.delete(id);
    if (s.ports.size === 0) {
      s.src.close();
      streams.delete(key);
    }
  };
  const pending = new Map();
  let n = 0;
  // askHeaders has a tab with a headers function compute them; a tab gone
  // meanwhile is replaced by the next after 5 s.
  const askHeaders = (s, info) => new Promise((resolve) => {
    const tried = new Set();
    const next = () => {
      const p = [...s.headerPorts.entries()].find(([id]) => !tried.has(id));
      if (!p) return resolve({});
      tried.add(p[0]);
      const k = ++n;
      const t = setTimeout(() => { pending.delete(k); next(); }, 5000);
      pending.set(k, (h) => { clearTimeout(t); resolve(h); });
      p[1].postMessage({ t: "headers", n: k, attempt: info.attempt, lastEventId: info.lastEventId });
    };
    next();
  });
  globalThis.onconnect = (ce) => {
    const port = ce.ports[0];
    port.onmessage = (e) => {
      const m = e.data;
      if (m.t === "headers") {
        const r = pending.get(m.n);
        if (r) { pending.delete(m.n); r(m.headers); }
        return;
      }
      if (m.t === "close") {
        for (const [key, s] of streams) if (s.ports.has(m.id)) drop(key, m.id);
        return;
      }
      if (m.t !== "open") return;
      let s = streams.get(m.key);
      if (!s) {
        const opts = { ...m.options };
        s = { ports: new Map(), headerPorts: new Map(), open: false };
        const str = s;
        if (m.headerFn) opts.headers = (info) => askHeaders(str, info);
        const send = (msg) => {
          if (msg.t === "open") s.open = true;
          if (msg.t === "error") s.open = false;
          for (const p of s.ports.values()) p.postMessage(msg);
        };
        s.src = relaySource(m.url, opts, send, "worker");
        streams.set(m.key, s);
      } else if (s.open) port.postMessage({ t: "open" });
      s.ports.set(m.id, port);
      if (m.headerFn) s.headerPorts.set(m.id, port);
      if (m.life && navigator.locks) navigator.locks.request(m.life, () => drop(m.key, m.id)).catch(() => {});
    };
    port.start();
  };
}
