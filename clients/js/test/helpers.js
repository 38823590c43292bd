// Helpers of the node tests: a fake clock, a scripted fetch, and raw
// scripted HTTP servers on 127.0.0.1.
import http from "node:http";
import { fileURLToPath } from "node:url";
import { readFileSync } from "node:fs";

export const vectorsPath = fileURLToPath(new URL("../../../testdata/sse-vectors.json", import.meta.url));
export const vectors = JSON.parse(readFileSync(vectorsPath, "utf8"));

/** A clock whose time moves only by advance(); random() is scripted. */
export class FakeClock {
  constructor(randoms = []) {
    this.t = 0;
    this.timers = new Map();
    this.seq = 0;
    this.randoms = randoms;
    this.delays = []; // every setTimeout delay asked, in order
  }
  now() { return this.t; }
  random() { return this.randoms.length ? this.randoms.shift() : 0.5; }
  setTimeout(f, ms) {
    const id = ++this.seq;
    this.delays.push(ms);
    this.timers.set(id, { at: this.t + ms, f });
    return id;
  }
  clearTimeout(id) { this.timers.delete(id); }
  /** Moves time on by ms, running the timers that fall due, in order. */
  async advance(ms) {
    const end = this.t + ms;
    for (;;) {
      await settle();
      let next = null;
      for (const [id, tm] of this.timers) if (tm.at <= end && (!next || tm.at < next[1].at)) next = [id, tm];
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].f();
    }
    this.t = end;
    await settle();
  }
  bind() {
    return { now: () => this.now(), random: () => this.random(), setTimeout: (f, ms) => this.setTimeout(f, ms), clearTimeout: (id) => this.clearTimeout(id) };
  }
}

/** Lets pending promise callbacks and I/O callbacks run. */
export async function settle(rounds = 20) {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

/**
 * scriptedFetch answers each call with the next of responses: a function
 * (url, init) => Response, or an Error to reject with. calls records
 * {url, init}.
 */
export function scriptedFetch(responses) {
  const calls = [];
  const f = async (url, init) => {
    calls.push({ url, init });
    const r = responses.shift();
    if (!r) return new Promise(() => {}); // hangs: no more scripted answers
    if (r instanceof Error) throw r;
    return r(url, init);
  };
  f.calls = calls;
  return f;
}

/** A 200 event stream whose body is the given chunks (strings or bytes), then its end. */
export function streamResponse(chunks, headers = {}, { end = true } = {}) {
  const enc = new TextEncoder();
  let ctrl;
  const body = new ReadableStream({
    start(c) {
      ctrl = c;
      for (const ch of chunks) c.enqueue(typeof ch === "string" ? enc.encode(ch) : ch);
      if (end) c.close();
    },
  });
  const res = new Response(body, { status: 200, headers: { "content-type": "text/event-stream", ...headers } });
  res.push = (s) => ctrl.enqueue(enc.encode(s));
  res.end = () => ctrl.close();
  return res;
}

/**
 * serve starts a raw HTTP server on 127.0.0.1 whose handler is called for
 * each request with (req, res, n) where n counts requests from 0. It
 * returns {url, requests, close}.
 */
export async function serve(handler) {
  const requests = [];
  const sockets = new Set();
  const server = http.createServer(async (req, res) => {
    let body = "";
    for await (const c of req) body += c;
    const n = requests.length;
    requests.push({ method: req.method, url: req.url, headers: req.headers, body });
    handler(req, res, n);
  });
  server.on("connection", (s) => { sockets.add(s); s.on("close", () => sockets.delete(s)); });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    requests,
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(r); }),
  };
}

/** waitFor polls cond until true, or throws after ms. */
export async function waitFor(cond, ms = 10000, what = "condition") {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** nextEvent resolves with the next event of type on target, or rejects after ms. */
export function nextEvent(target, type, ms = 10000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no " + type + " event within " + ms + " ms")), ms);
    target.addEventListener(type, (e) => { clearTimeout(t); resolve(e); }, { once: true });
  });
}
