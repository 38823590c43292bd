// Reconnection, backoff, refusals, headers per attempt, POST bodies,
// history gaps and the inactivity timeout, with a scripted fetch and a fake
// clock: no test waits for real time to pass.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventSource, backoffDelay, parseRetryAfter, CONNECTING, OPEN, CLOSED } from "../ssekit-client.js";
import { FakeClock, scriptedFetch, streamResponse, settle } from "./helpers.js";

function open(responses, options = {}, randoms = []) {
  const clock = new FakeClock(randoms);
  const fetch = scriptedFetch(responses);
  const es = new EventSource("http://127.0.0.1:1/s", { fetch, clock: clock.bind(), ...options });
  const log = [];
  es.addEventListener("open", () => log.push("open"));
  es.addEventListener("message", (e) => log.push("msg " + e.lastEventId + " " + e.data));
  es.addEventListener("error", (e) => log.push(`error ${e.status} ${e.willReconnect ? "retry " + e.delay : "final"}: ${e.message}`));
  es.addEventListener("historygap", (e) => log.push(`gap ${e.lastEventId} ${e.resumedAfter}`));
  return { es, clock, fetch, log };
}

const status = (code, body = "", headers = {}) => () => new Response(body || null, { status: code, headers });

test("backoffDelay is full jitter in [0, min(cap, retry*2^n)]", () => {
  assert.equal(backoffDelay(1000, 30000, 0, () => 0), 0);
  assert.equal(backoffDelay(1000, 30000, 0, () => 0.999999), 1000);
  assert.equal(backoffDelay(1000, 30000, 3, () => 0.999999), 8000);
  assert.equal(backoffDelay(1000, 30000, 10, () => 0.999999), 30000);
  assert.equal(backoffDelay(1000, 30000, 1000, () => 0.5), 15000);
});

test("parseRetryAfter reads seconds and HTTP dates", () => {
  assert.equal(parseRetryAfter("7"), 7000);
  assert.equal(parseRetryAfter(new Date(60000).toUTCString(), 0), 60000);
  assert.equal(parseRetryAfter("soon"), -1);
  assert.equal(parseRetryAfter(null), -1);
});

test("the drop-in interface: readyState, handlers, constants, url", async () => {
  const { es, clock, log } = open([() => streamResponse(["id: 1\ndata: a\n\n"], {}, { end: false })]);
  assert.equal(es.readyState, CONNECTING);
  assert.equal(EventSource.OPEN, OPEN);
  assert.equal(es.CLOSED, CLOSED);
  assert.equal(es.url, "http://127.0.0.1:1/s");
  assert.equal(es.withCredentials, false);
  let onmsg = null, onopen = 0;
  es.onopen = () => onopen++;
  es.onmessage = (e) => { onmsg = e; };
  await clock.advance(0);
  assert.equal(es.readyState, OPEN);
  assert.equal(onopen, 1);
  assert.equal(onmsg.data, "a");
  assert.equal(onmsg.lastEventId, "1");
  assert.equal(onmsg.origin, "http://127.0.0.1:1");
  assert.ok(typeof es.onmessage === "function");
  es.close();
  assert.equal(es.readyState, CLOSED);
  assert.deepEqual(log, ["open", "msg 1 a"]);
});

test("network errors and ends reconnect with backoff, Last-Event-ID on every attempt", async () => {
  const { es, clock, fetch, log } = open([
    () => streamResponse(["retry: 1000\nid: e1\ndata: one\n\n"]), // then the stream ends
    new TypeError("fetch failed"),
    new TypeError("fetch failed"),
    new TypeError("fetch failed"),
    () => streamResponse(["id: e2\ndata: two\n\n"], {}, { end: false }),
  ], {}, [0.5, 0.5, 0.5, 0.5]);
  await clock.advance(0);
  assert.deepEqual(log.slice(0, 3), ["open", "msg e1 one", "error 0 retry 500: the server ended the stream"]);
  // After an event, the first wait is in [0, retry]; then the window doubles.
  await clock.advance(500);
  await clock.advance(1000); // 2nd failure: window 2000, half of it
  await clock.advance(2000); // 3rd: window 4000
  await clock.advance(4000);
  assert.equal(es.readyState, OPEN);
  assert.deepEqual(fetch.calls.map((c) => c.init.headers["Last-Event-ID"]), [undefined, "e1", "e1", "e1", "e1"]);
  assert.deepEqual(log.filter((l) => l.startsWith("error")).map((l) => l.split(":")[0]), [
    "error 0 retry 500", "error 0 retry 1000", "error 0 retry 2000", "error 0 retry 4000"]);
  assert.equal(log.at(-1), "msg e2 two");
  es.close();
});

test("the backoff is capped by maxRetry", async () => {
  const errs = Array.from({ length: 12 }, () => new TypeError("fetch failed"));
  const { es, clock } = open(errs, { retry: 1000, maxRetry: 5000 }, Array(12).fill(0.999999));
  const delays = [];
  es.addEventListener("error", (e) => delays.push(e.delay));
  await clock.advance(0);
  for (let i = 0; i < 10; i++) await clock.advance(5000);
  assert.deepEqual(delays.slice(0, 5), [1000, 2000, 4000, 5000, 5000]);
  assert.ok(delays.every((d) => d <= 5000));
  es.close();
});

test("the headers function is called before every attempt", async () => {
  let n = 0;
  const headers = async ({ attempt, lastEventId }) => ({ Authorization: `Bearer t${++n}`, "X-Attempt": String(attempt), "X-Last": lastEventId });
  const { es, clock, fetch } = open([
    () => streamResponse(["id: 1\ndata: a\n\n"]),
    status(503),
    () => streamResponse([":ok\n\n"], {}, { end: false }),
  ], { headers }, [0, 0, 0]);
  await clock.advance(0);
  await clock.advance(10000);
  await clock.advance(10000);
  assert.deepEqual(fetch.calls.map((c) => c.init.headers.Authorization), ["Bearer t1", "Bearer t2", "Bearer t3"]);
  assert.deepEqual(fetch.calls.map((c) => c.init.headers["X-Attempt"]), ["0", "1", "2"]);
  assert.deepEqual(fetch.calls.map((c) => c.init.headers["X-Last"]), ["", "1", "1"]);
  assert.equal(es.readyState, OPEN);
  es.close();
});

test("method, body and credentials are sent on every attempt", async () => {
  const body = JSON.stringify({ stream: true });
  const { es, clock, fetch } = open([status(502), () => streamResponse([], {}, { end: false })], { body, headers: { "Content-Type": "application/json" }, credentials: "include" }, [0]);
  await clock.advance(0);
  await clock.advance(5000);
  assert.equal(fetch.calls.length, 2);
  for (const c of fetch.calls) {
    assert.equal(c.init.method, "POST");
    assert.equal(c.init.body, body);
    assert.equal(c.init.credentials, "include");
    assert.equal(c.init.headers["Content-Type"], "application/json");
    assert.equal(c.init.headers.Accept, "text/event-stream");
  }
  es.close();
  const w = open([() => streamResponse([], {}, { end: false })], { withCredentials: true, method: "PUT" });
  await w.clock.advance(0);
  assert.equal(w.fetch.calls[0].init.credentials, "include");
  assert.equal(w.fetch.calls[0].init.method, "PUT");
  w.es.close();
});

test("204 ends the stream for good", async () => {
  const { es, clock, fetch, log } = open([status(204)]);
  await clock.advance(0);
  await clock.advance(60000);
  assert.equal(es.readyState, CLOSED);
  assert.equal(fetch.calls.length, 1);
  assert.deepEqual(log, ["error 204 final: 204 No Content: the server ended the stream for good"]);
});

test("4xx other than 429 ends it with the status and the body's reason", async () => {
  const { es, clock, fetch, log } = open([status(401, "subscribing needs a token\n", { "content-type": "text/plain" })]);
  await clock.advance(0);
  await clock.advance(60000);
  assert.equal(es.readyState, CLOSED);
  assert.equal(fetch.calls.length, 1);
  assert.equal(log[0], "error 401 final: 401: subscribing needs a token");
});

test("a Content-Type that is not text/event-stream ends it", async () => {
  const { es, clock, log } = open([status(200, "{}", { "content-type": "application/json" })]);
  await clock.advance(0);
  assert.equal(es.readyState, CLOSED);
  assert.equal(log[0], 'error 200 final: Content-Type is "application/json"; want text/event-stream');
});

test("5xx and 429 reconnect, honouring Retry-After", async () => {
  const { es, clock, fetch, log } = open([
    status(503, "overloaded", { "retry-after": "7" }),
    status(429, "", { "retry-after": "2" }),
    status(500),
    () => streamResponse(["data: ok\n\n"], {}, { end: false }),
  ], {}, [0.25]);
  await clock.advance(0);
  assert.equal(log[0], "error 503 retry 7000: 503: overloaded");
  assert.equal(es.readyState, CONNECTING);
  await clock.advance(6999);
  assert.equal(fetch.calls.length, 1, "Retry-After is waited in full");
  await clock.advance(1);
  assert.equal(fetch.calls.length, 2);
  assert.equal(log[1], "error 429 retry 2000: 429");
  await clock.advance(2000);
  assert.equal(log[2], "error 500 retry 3000: 500"); // third failure, window 12000, a quarter
  await clock.advance(3000);
  assert.equal(es.readyState, OPEN);
  assert.equal(log.at(-1), "msg  ok");
  es.close();
});

test("a huge Retry-After is bounded by maxRetryAfter", async () => {
  const { es, clock } = open([status(503, "", { "retry-after": "999999999" })], { maxRetryAfter: 60000 });
  let delay;
  es.addEventListener("error", (e) => { delay = e.delay; });
  await clock.advance(0);
  assert.equal(delay, 60000);
  es.close();
});

test("reconnect: false ends on the first error", async () => {
  const { es, clock, log } = open([() => streamResponse(["data: a\n\n"])], { reconnect: false });
  await clock.advance(0);
  assert.equal(es.readyState, CLOSED);
  assert.deepEqual(log, ["open", "msg  a", "error 0 final: the server ended the stream"]);
});

test("history gap: the hub's event and its earliest header become one historygap event", async () => {
  const gapEvent = 'event: ssekit-history-gap\ndata: {"lastEventID":"old","resumedAfter":"earliest"}\n\n';
  const { es, clock, log } = open([
    () => streamResponse([gapEvent, "id: 5\ndata: five\n\n"], { "mercure-last-event-id": "earliest" }),
    () => streamResponse([gapEvent], {}, { end: false }),
  ], { lastEventId: "old" }, [0.5]);
  const inBand = [];
  es.addEventListener("ssekit-history-gap", (e) => inBand.push(e.data));
  await clock.advance(0);
  assert.deepEqual(log.slice(0, 3), ["open", "gap old earliest", "msg 5 five"]);
  assert.equal(inBand.length, 1, "the hub's own event is dispatched too, as a native EventSource would");
  await clock.advance(10000);
  assert.equal(log.filter((l) => l.startsWith("gap")).length, 2, "a gap on the next connection is told again");
  es.close();
});

test("a known Last-Event-ID is no gap", async () => {
  const { es, clock, log } = open([() => streamResponse([], { "mercure-last-event-id": "7" }, { end: false })], { lastEventId: "7" });
  await clock.advance(0);
  assert.deepEqual(log, ["open"]);
  es.close();
});

test("the inactivity timeout drops a silent connection and reconnects", async () => {
  let res;
  const { es, clock, fetch, log } = open([
    () => (res = streamResponse(["data: a\n\n"], {}, { end: false })),
    () => streamResponse([], {}, { end: false }),
  ], { timeout: 20000 }, [0]);
  await clock.advance(0);
  await clock.advance(15000);
  res.push(": heartbeat\n\n");
  await settle();
  await clock.advance(15000);
  assert.equal(fetch.calls.length, 1, "a heartbeat restarts the timer");
  await clock.advance(5000);
  assert.ok(log.includes("error 0 retry 0: no data arrived for 20000 ms"), log.join("\n"));
  await clock.advance(1);
  assert.equal(fetch.calls.length, 2);
  es.close();
});

test("a connection that never answers times out too", async () => {
  const { es, clock, fetch } = open([() => new Promise(() => {}), () => streamResponse([], {}, { end: false })], { timeout: 1000 }, [0.5]);
  // The scripted fetch hangs, but the abort signal is the way out: honour it.
  const f = fetch;
  es.options.fetch = (url, init) => new Promise((resolve, reject) => {
    f(url, init).then(resolve, reject);
    init.signal.addEventListener("abort", () => reject(new Error("aborted")));
  });
  await clock.advance(0);
  await clock.advance(1000);
  assert.equal(es.readyState, CONNECTING);
  await clock.advance(3000);
  assert.equal(f.calls.length, 2);
  es.close();
});

test("close stops everything: no more attempts", async () => {
  const { es, clock, fetch } = open([new TypeError("x"), new TypeError("x")]);
  await clock.advance(0);
  es.close();
  await clock.advance(100000);
  assert.equal(fetch.calls.length, 1);
  assert.equal(clock.timers.size, 0);
});
