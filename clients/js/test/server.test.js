// EventSource and listen.js against raw scripted HTTP servers on 127.0.0.1:
// real sockets, bodies cut across writes, refusals, reconnections.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { EventSource, CLOSED, OPEN } from "../ssekit-client.js";
import { serve, vectors, waitFor, nextEvent } from "./helpers.js";

// listen.js is a Node command: under Deno (deno test) it still runs on node.
const nodeCommand = globalThis.Deno ? "node" : process.execPath;

const listenJS = fileURLToPath(new URL("../bin/listen.js", import.meta.url));

function sse(res, status = 200, headers = {}) {
  res.writeHead(status, { "content-type": "text/event-stream", "cache-control": "no-cache", ...headers });
  res.flushHeaders();
}

test("every vector over a real socket, its bytes cut across writes", async () => {
  const srv = await serve(async (req, res) => {
    const v = vectors[Number(new URL(req.url, "http://x").searchParams.get("v"))];
    const b = new TextEncoder().encode(v.input);
    sse(res);
    const cut = Math.floor(b.length / 3);
    for (const part of [b.subarray(0, cut), b.subarray(cut, 2 * cut), b.subarray(2 * cut)]) {
      res.write(part);
      await new Promise((r) => setTimeout(r, 2));
    }
    res.end();
  });
  try {
    for (let i = 0; i < vectors.length; i++) {
      const v = vectors[i];
      const es = new EventSource(`${srv.url}/?v=${i}`, { reconnect: false });
      const got = [];
      for (const t of new Set(v.events.map((e) => e.type))) es.addEventListener(t, (e) => got.push({ type: e.type, data: e.data, id: e.lastEventId }));
      const err = await nextEvent(es, "error");
      assert.equal(err.kind, "end", v.name);
      assert.deepEqual(got, v.events, v.name);
      assert.equal(es.lastEventId, v.last_event_id, v.name);
    }
  } finally {
    await srv.close();
  }
});

test("reconnects after a dropped connection with Last-Event-ID, the server's retry and the token of the moment", async () => {
  let token = 0;
  const srv = await serve((req, res, n) => {
    sse(res);
    if (n === 0) {
      res.write("retry: 10\nid: a1\ndata: one\n\n");
      setTimeout(() => res.socket.destroy(), 20); // a network failure, not a clean end
    } else if (n === 1) {
      res.end(); // a clean end: reconnect again
    } else res.write(`id: a${n + 1}\ndata: again\n\n`);
  });
  try {
    const es = new EventSource(srv.url + "/s", { headers: async () => ({ Authorization: "Bearer t" + ++token }) });
    const got = [];
    es.onmessage = (e) => got.push(e.lastEventId + " " + e.data);
    await waitFor(() => got.length === 2, 10000, "two messages");
    es.close();
    assert.deepEqual(got, ["a1 one", "a3 again"]);
    assert.deepEqual(srv.requests.map((r) => r.headers["last-event-id"]), [undefined, "a1", "a1"]);
    assert.deepEqual(srv.requests.map((r) => r.headers.authorization), ["Bearer t1", "Bearer t2", "Bearer t3"]);
    assert.equal(srv.requests[0].headers.accept, "text/event-stream");
  } finally {
    await srv.close();
  }
});

test("POST with a JSON body, LLM style, and a 503 with Retry-After on the way", async () => {
  const srv = await serve((req, res, n) => {
    if (n === 0) {
      res.writeHead(503, { "retry-after": "0", "content-type": "text/plain" });
      return res.end("deploying");
    }
    sse(res);
    res.write('data: {"delta":"Hel"}\n\ndata: {"delta":"lo"}\n\ndata: [DONE]\n\n');
    res.end();
  });
  try {
    const body = JSON.stringify({ stream: true, messages: [{ role: "user", content: "hi" }] });
    const es = new EventSource(srv.url + "/v1/chat", { body, headers: { "Content-Type": "application/json" }, reconnect: true });
    const errors = [], data = [];
    es.onerror = (e) => errors.push(e);
    es.onmessage = (e) => { data.push(e.data); if (e.data === "[DONE]") es.close(); };
    await waitFor(() => es.readyState === CLOSED, 10000, "[DONE]");
    assert.equal(errors[0].status, 503);
    assert.equal(errors[0].retryAfter, 0);
    assert.match(errors[0].message, /503 Service Unavailable: deploying/);
    assert.deepEqual(data, ['{"delta":"Hel"}', '{"delta":"lo"}', "[DONE]"]);
    for (const r of srv.requests) {
      assert.equal(r.method, "POST");
      assert.equal(r.body, body);
      assert.equal(r.headers["content-type"], "application/json");
    }
  } finally {
    await srv.close();
  }
});

test("204 and 403 end the stream for good over HTTP", async () => {
  for (const [code, want] of [[204, /^204 No Content/], [403, /^403 Forbidden: not yours$/]]) {
    const srv = await serve((req, res) => { res.writeHead(code, { "content-type": "text/plain" }); res.end(code === 204 ? undefined : "not yours\n"); });
    try {
      const es = new EventSource(srv.url);
      const e = await nextEvent(es, "error");
      assert.equal(e.status, code);
      assert.equal(e.willReconnect, false);
      assert.match(e.message, want);
      assert.equal(es.readyState, CLOSED);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(srv.requests.length, 1);
    } finally {
      await srv.close();
    }
  }
});

test("a stalled connection is dropped after the inactivity timeout", async () => {
  const srv = await serve((req, res, n) => {
    sse(res);
    if (n === 0) res.write("id: 1\ndata: x\n\n"); // then silence
    else res.write("data: back\n\n");
  });
  try {
    const es = new EventSource(srv.url, { timeout: 500, retry: 10 });
    const first = await nextEvent(es, "message");
    assert.equal(first.lastEventId, "1");
    const e = await nextEvent(es, "error");
    assert.equal(e.kind, "timeout");
    await waitFor(() => srv.requests.length >= 2, 5000, "the reconnection");
    assert.equal(srv.requests[1].headers["last-event-id"], "1");
    es.close();
  } finally {
    await srv.close();
  }
});

// run starts listen.js and resolves with its stdout, stderr and exit code.
function run(args, ms = 20000) {
  return new Promise((resolve, reject) => {
    const p = spawn(nodeCommand, [listenJS, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    const t = setTimeout(() => { p.kill(); reject(new Error("listen.js did not exit: " + stderr)); }, ms);
    p.on("exit", (code) => { clearTimeout(t); resolve({ stdout, stderr, code }); });
  });
}

test("listen.js --json: one object per event, retry when set, exit 0 at the end", async () => {
  const srv = await serve((req, res) => {
    sse(res);
    res.end('retry: 5\ndata: a\n\nevent: tick\nid: 7\ndata: b\ndata: "c"\n\n: note\nid\n\ndata:\n\n');
  });
  try {
    const { stdout, stderr, code } = await run(["--json", srv.url, "--no-reconnect", "-H", "X-Test: 1"]);
    assert.equal(code, 0, stderr);
    assert.equal(stdout, [
      '{"type":"message","data":"a","id":"","retry":5}',
      '{"type":"tick","data":"b\\n\\"c\\"","id":"7"}',
      '{"type":"message","data":"","id":""}',
      "",
    ].join("\n"));
    assert.equal(srv.requests[0].headers["x-test"], "1");
  } finally {
    await srv.close();
  }
});

test("listen.js exit codes: 1 on refusal, wrong type and no server; 2 on bad flags; 124 on timeout; 0 on 204 and --max-events", async () => {
  const srv = await serve((req, res) => {
    const p = new URL(req.url, "http://x").pathname;
    if (p === "/404") { res.writeHead(404); return res.end("no such stream"); }
    if (p === "/204") { res.writeHead(204); return res.end(); }
    if (p === "/json") { res.writeHead(200, { "content-type": "application/json" }); return res.end("{}"); }
    sse(res);
    res.write("data: 1\n\ndata: 2\n\ndata: 3\n\n");
  });
  try {
    let r = await run(["--json", srv.url + "/404"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /404 Not Found: no such stream/);
    assert.equal(r.stdout, "");
    r = await run(["--json", srv.url + "/json"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Content-Type is "application\/json"; want text\/event-stream/);
    r = await run(["--json", srv.url + "/204"]);
    assert.equal(r.code, 0, r.stderr);
    r = await run(["--json", "--max-events", "2", srv.url + "/s"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split("\n").length, 2);
    r = await run(["--json", "--timeout", "300ms", srv.url + "/s"]);
    assert.equal(r.code, 124);
    assert.equal(r.stdout.trim().split("\n").length, 3);
    for (const bad of [["--json"], ["--bogus", srv.url], ["ftp://x"], ["--max-events", "-1", srv.url], ["-H", "nocolon", srv.url], ["--timeout", "soon", srv.url]]) {
      r = await run(bad);
      assert.equal(r.code, 2, bad.join(" ") + ": " + r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, "one line: " + r.stderr);
    }
    // A port nobody listens on any more.
    r = await run(["--json", "http://127.0.0.1:9/"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot connect to/);
  } finally {
    await srv.close();
  }
});
